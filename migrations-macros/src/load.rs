//! Resolving the directory against the calling crate and loading it with the shared format code.

use std::path::PathBuf;

use migrations_format::{load_dir_with, Directory, LoadOptions};

use crate::input::Input;

/// Tests that run the macro through `trybuild` point this at the real crate: under trybuild,
/// `CARGO_MANIFEST_DIR` is a generated project that holds no fixtures. Not for users.
const MANIFEST_DIR_OVERRIDE: &str = "MIGRATIONS_MACROS_MANIFEST_DIR";

pub fn load(input: &Input) -> syn::Result<Directory> {
    let manifest_dir = std::env::var_os(MANIFEST_DIR_OVERRIDE)
        .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR"))
        .map(PathBuf::from)
        .ok_or_else(|| {
            syn::Error::new(
                input.span,
                "CARGO_MANIFEST_DIR is not set; embed_migrations! must be built by cargo",
            )
        })?;
    let options = LoadOptions {
        // Problems name files as the user wrote the path, not by absolute path.
        shown_as: Some(PathBuf::from(&input.dir)),
        require_down: input.require_down,
        allow_empty_up: false,
    };
    load_dir_with(&manifest_dir.join(&input.dir), &options).map_err(|error| {
        let mut problems = error
            .problems
            .iter()
            .map(|p| syn::Error::new(input.span, format!("migrations: {p}")));
        // One compile error per problem, so the user fixes them all in one pass.
        let mut combined = problems.next().unwrap_or_else(|| {
            syn::Error::new(input.span, "migrations: the directory did not load")
        });
        for more in problems {
            combined.combine(more);
        }
        combined
    })
}
