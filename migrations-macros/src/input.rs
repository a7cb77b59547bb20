//! Parsing the macro's arguments: `embed_migrations!([path] [, option]...)`.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Token};

/// The directory used when no path is given.
pub const DEFAULT_DIR: &str = "migrations";

/// The call, with spans kept for error messages.
pub struct Input {
    /// The directory as written, relative to the crate's `Cargo.toml`.
    pub dir: String,
    /// Where errors about the directory point: the path literal, or the whole call.
    pub span: Span,
    /// Whether a path literal was given (or the default directory is used).
    pub path_given: bool,
    pub require_down: bool,
    /// Check the directory against `migrations.lock` (also on with `verify_lock = true` in
    /// `migrations.toml`).
    pub verify_lock: bool,
}

const OPTIONS: &str = "require_down, verify_lock";

impl Parse for Input {
    fn parse(stream: ParseStream) -> syn::Result<Input> {
        let mut input = Input {
            dir: DEFAULT_DIR.to_owned(),
            span: Span::call_site(),
            path_given: false,
            require_down: false,
            verify_lock: false,
        };
        if stream.peek(LitStr) {
            let lit: LitStr = stream.parse()?;
            if lit.value().trim().is_empty() {
                return Err(syn::Error::new(
                    lit.span(),
                    "the migrations path is empty; write a directory such as \"migrations\", or \
                     leave the argument out for ./migrations",
                ));
            }
            input.dir = lit.value();
            input.span = lit.span();
            input.path_given = true;
            if stream.is_empty() {
                return Ok(input);
            }
            stream.parse::<Token![,]>()?;
        }
        while !stream.is_empty() {
            let option: Ident = stream.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    format!(
                        "expected a path string or an option; usage: embed_migrations!(\"dir\", \
                         {OPTIONS})"
                    ),
                )
            })?;
            let flag = match option.to_string().as_str() {
                "require_down" => Some(&mut input.require_down),
                "verify_lock" => Some(&mut input.verify_lock),
                _ => None,
            };
            match flag {
                Some(flag) if !*flag => *flag = true,
                Some(_) => {
                    return Err(syn::Error::new(
                        option.span(),
                        format!("`{option}` is given twice"),
                    ))
                }
                None => {
                    let other = option.to_string();
                    let hint = if !input.path_given {
                        format!("; a path is a string literal: embed_migrations!(\"{other}\")")
                    } else {
                        String::new()
                    };
                    return Err(syn::Error::new(
                        option.span(),
                        format!("unknown option `{other}`; known options: {OPTIONS}{hint}"),
                    ));
                }
            }
            if !stream.is_empty() {
                stream.parse::<Token![,]>()?;
            }
        }
        Ok(input)
    }
}
