#![warn(missing_docs)]
//! `embed_migrations!`: a thin shell over `migrations-format`, as a pipeline of one stage per
//! file: `input` parses the call, `load` resolves and loads the directory with the shared
//! format code, `expand` writes the constant. Every problem becomes a compile error pointing at
//! the macro's path argument and naming the file and line.
//!
//! Use it through `migrations-core`, which re-exports it; the generated code names only
//! `::migrations_core` paths.

use proc_macro::TokenStream;

mod expand;
mod input;
mod load;

/// Expands to a constant `migrations_core::Migrations` holding a migrations directory read at
/// compile time: each file's normalised SQL, SHA-256 checksum and transaction mode. Call it as
/// `migrations_core::embed_migrations!`; the generated code names only `::migrations_core`
/// paths, so a crate that uses this one directly must depend on `migrations-core` anyway.
///
/// Arguments: an optional path string, relative to the calling crate's `Cargo.toml` (default
/// `migrations`), then the options `require_down` (every migration needs a down file) and
/// `verify_lock` (the directory must agree with its `migrations.lock`: a locked migration
/// edited, renamed or removed, one inserted below the newest locked one, or a missing lock file
/// is a compile error). Every problem in the directory is a compile error naming the file and
/// line.
#[proc_macro]
pub fn embed_migrations(tokens: TokenStream) -> TokenStream {
    let result = syn::parse::<input::Input>(tokens)
        .and_then(|input| load::load(&input).map(|loaded| expand::expand(&input, &loaded)));
    match result {
        Ok(expanded) => expanded.into(),
        // Several errors are several `compile_error!` invocations: a block makes them one
        // expression, so each is reported as written.
        Err(error) => {
            let errors = error.to_compile_error();
            quote::quote! { { #errors } }.into()
        }
    }
}
