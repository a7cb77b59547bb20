//! Code generation only: a constant `Migrations` naming `::migrations_core` paths.

use proc_macro2::TokenStream;
use quote::quote;

use migrations_format::{statement_ranges, Directory, SqlFile};

use crate::input::Input;

pub fn expand(_input: &Input, directory: &Directory) -> TokenStream {
    // `include_bytes!` of every file read makes rustc rebuild the crate when one is edited. All
    // of them sit in one function nothing calls: rustc records each file when it expands the
    // macro, but evaluates no constant and generates no code for it, so the bytes never reach
    // the binary (the normalised text below does). One `const _` per file instead cost 20,000
    // constant evaluations at 10,000 migrations (~15% of the crate's compile time).
    let tracked = directory.inputs.iter().filter_map(|path| {
        let path = path.to_str()?;
        Some(quote! { let _ = include_bytes!(#path); })
    });
    let migrations = directory.migrations.iter().map(|m| {
        let version = m.version.value();
        let digits = m.version.digits();
        let name = &m.name;
        let up = script(&m.up);
        let down = match &m.down {
            Some(down) => {
                let down = script(down);
                quote! { ::core::option::Option::Some(#down) }
            }
            None => quote! { ::core::option::Option::None },
        };
        let (post_deploy, breaking) = (
            m.up.directives.post_deploy.is_some(),
            m.up.directives.breaking.is_some(),
        );
        // The deploy directives only when set, so most expansions stay as they were.
        let migration = if post_deploy || breaking {
            quote! {
                ::migrations_core::Migration::__new_deploy(
                    #version, #digits, #name, #up, #down, #post_deploy, #breaking,
                )
            }
        } else {
            quote! {
                ::migrations_core::Migration::__new(#version, #digits, #name, #up, #down)
            }
        };
        // Each migration its own constant item: rustc type-checks and evaluates it alone, so
        // the work on one is freed before the next. One expression holding all of them was
        // type-checked as one body: at 10,000 migrations rustc peaked at 1.7 GB, and this halves it.
        quote! { { const M: ::migrations_core::Migration = #migration; M } }
    });
    let chain_digest = migrations_format::chain_digest(
        directory
            .migrations
            .iter()
            .map(|m| {
                (
                    m.version.value(),
                    m.up.checksum.to_hex(),
                    m.up.no_transaction,
                )
            })
            .collect::<Vec<_>>()
            .iter()
            .map(|(v, c, n)| (*v, c.as_str(), *n)),
    );
    let run = &directory.settings.run;
    let text = |value: &Option<String>| match value {
        Some(v) => quote! { ::core::option::Option::Some(#v) },
        None => quote! { ::core::option::Option::None },
    };
    let (schema, table, search_path) =
        (text(&run.schema), text(&run.table), text(&run.search_path));
    // Validated when the settings were read.
    let durations = run.durations().unwrap_or_default();
    let lock_timeout = optional_ms(durations.lock_timeout);
    let statement_timeout = optional_ms(durations.statement_timeout);
    let lock_wait = optional_ms(durations.lock_wait);
    let record_schema = directory.settings.record_schema;
    let repeatables = directory.repeatables.iter().map(|r| {
        let name = &r.name;
        let script = script(&r.file);
        quote! { ::migrations_core::Repeatable::__new(#name, #script) }
    });
    let placeholders = directory
        .settings
        .placeholders
        .iter()
        .map(|(name, value)| quote! { (#name, #value) });
    quote! {
        {
            #[allow(dead_code)]
            fn __migrations_track_files() {
                #(#tracked)*
            }
            // A const item, so the array (whose fields have destructors) lives for 'static.
            const MIGRATIONS: &[::migrations_core::Migration] = &[#(#migrations),*];
            ::migrations_core::Migrations::__from_static(
                MIGRATIONS, #chain_digest, #schema, #table, #search_path,
                #lock_timeout, #statement_timeout, #lock_wait, #record_schema,
                &[#(#placeholders),*],
                {
                    const REPEATABLES: &[::migrations_core::Repeatable] = &[#(#repeatables),*];
                    REPEATABLES
                },
            )
        }
    }
}

fn script(file: &SqlFile) -> TokenStream {
    let sql = &file.text;
    let checksum = file.checksum.to_hex();
    let no_transaction = file.no_transaction;
    let lock_timeout = optional_ms(file.directives.lock_timeout);
    let statement_timeout = optional_ms(file.directives.statement_timeout);
    // Every script is split: a no-transaction one is sent statement by statement, and for a
    // transactional one the ranges say which statement failed, with no parsing at run time.
    let ranges: Vec<TokenStream> = statement_ranges(&file.text)
        .into_iter()
        .map(|(start, end)| quote! { (#start, #end) })
        .collect();
    // As the user wrote the directory (relative to the crate), for error messages.
    let path = file.path.to_string_lossy();
    let path = if cfg!(windows) {
        path.replace('\\', "/")
    } else {
        path.into_owned()
    };
    let refused = match file.non_transactional.first() {
        Some(s) => {
            let line = s.line;
            let what = s.what;
            quote! { ::core::option::Option::Some((#line, #what)) }
        }
        None => quote! { ::core::option::Option::None },
    };
    let lossy_down = match &file.directives.lossy_down {
        Some(reason) => quote! { ::core::option::Option::Some(#reason) },
        None => quote! { ::core::option::Option::None },
    };
    quote! {
        ::migrations_core::Script::__new(
            #sql, #checksum, #no_transaction, #lock_timeout, #statement_timeout,
            &[#(#ranges),*], #refused, #path, #lossy_down,
        )
    }
}

fn optional_ms(duration: Option<std::time::Duration>) -> TokenStream {
    match duration {
        Some(d) => {
            let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            quote! { ::core::option::Option::Some(#ms) }
        }
        None => quote! { ::core::option::Option::None },
    }
}
