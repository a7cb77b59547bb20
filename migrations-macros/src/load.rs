//! Resolving the directory against the calling crate and loading it with the shared format code.

use std::path::{Path, PathBuf};

use migrations_format::{load_dir_with, lockfile, Directory, LoadOptions, LOCK_FILE};

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
        // The checksum cache is the CLI's: the build reads every file (and tracks it).
        ..LoadOptions::default()
    };
    let root = manifest_dir.join(&input.dir);
    let mut directory = load_dir_with(&root, &options).map_err(|error| {
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
    })?;
    check_fixed_placeholders(input, &directory)?;
    if input.verify_lock || directory.settings.verify_lock {
        verify_lock(input, &root, &mut directory)?;
    }
    Ok(directory)
}

/// Checks the directory against its `migrations.lock`: every finding but an unlocked new
/// migration is a compile error. The lock file joins the tracked inputs, so editing it rebuilds.
fn verify_lock(input: &Input, root: &Path, directory: &mut Directory) -> syn::Result<()> {
    let path = root.join(LOCK_FILE);
    let shown = directory.root.join(LOCK_FILE);
    let error = |message: String| syn::Error::new(input.span, format!("migrations: {message}"));
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
            error(format!(
                "{}: not valid UTF-8; restore it from version control, then run `migrations lock`",
                shown.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(error(format!(
                "{}: not found, and `verify_lock` is on: run `migrations lock` to create it, and \
                 commit it",
                shown.display()
            )))
        }
        Err(e) => return Err(error(format!("{}: cannot read: {e}", shown.display()))),
    };
    directory.inputs.push(path);
    let lock =
        lockfile::parse(&text).map_err(|e| combine(e.located(&shown).into_iter().map(error)))?;
    let findings = lockfile::verify(&lock, directory);
    let errors: Vec<syn::Error> = findings
        .iter()
        .filter(|f| f.is_error())
        .map(|f| error(f.to_string()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(combine(errors.into_iter()))
    }
}

/// One compile error per item, so the user fixes them all in one pass.
fn combine(errors: impl Iterator<Item = syn::Error>) -> syn::Error {
    errors
        .reduce(|mut combined, more| {
            combined.combine(more);
            combined
        })
        .unwrap_or_else(|| syn::Error::new(proc_macro2::Span::call_site(), "migrations: error"))
}

/// The values `[placeholders]` fixes at build time must fit where their placeholders sit (a
/// plain identifier where SQL code goes): a value that cannot is a compile error, not a
/// failure at the service's start. Placeholders without a value here may get one at run time
/// (`Migrator::placeholder`), which checks them before anything runs.
fn check_fixed_placeholders(input: &Input, directory: &Directory) -> syn::Result<()> {
    let Ok(values) = directory.settings.placeholder_values() else {
        return Ok(()); // reported by the loader
    };
    if values.is_empty() {
        return Ok(());
    }
    let files = directory
        .migrations
        .iter()
        .flat_map(|m| std::iter::once(&m.up).chain(m.down.as_ref()))
        .chain(directory.repeatables.iter().map(|r| &r.file));
    let mut errors = Vec::new();
    for file in files {
        if let Err(problems) = migrations_format::placeholder::substitute(&file.text, &values) {
            errors.extend(problems.into_iter().filter(|p| !p.unset).map(|p| {
                syn::Error::new(
                    input.span,
                    format!(
                        "migrations: {}:{}: {} ([placeholders] in migrations.toml)",
                        file.path.display(),
                        p.line,
                        p.message
                    ),
                )
            }));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(combine(errors.into_iter()))
    }
}
