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
