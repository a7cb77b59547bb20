//! `migrations`: a thin binary over `migrations-core` and `migrations-format`. `main` → `run` →
//! one exit code, decided in [`exit`].

mod cli;
mod commands;
mod context;
mod exit;
mod logger;
mod output;
mod redact;
mod sets;
mod spelling;

use std::io::Write;

fn main() {
    let cli = parse_args();
    logger::init(cli.global.debug, cli.global.quiet);
    let code = match commands::run(&cli) {
        Ok(()) => exit::Code::Ok,
        Err(error) => {
            report(&cli, &error);
            error.code()
        }
    };
    std::process::exit(code as i32);
}

/// The command line, or exit as clap does. clap quotes arguments it rejects, so a URL given
/// without `--database-url` goes through the redaction before it is printed.
fn parse_args() -> cli::Cli {
    cli::parse().unwrap_or_else(|mut e| {
        suggest_other_tools_words(&mut e);
        let plain = e.render().to_string();
        let redacted = crate::redact::redact_text(&plain);
        if redacted == plain {
            e.exit()
        }
        if e.use_stderr() {
            eprint!("{redacted}");
        } else {
            // Ignored: a reader that closed the pipe (`--help | head`) is not an error.
            let _ = write!(std::io::stdout(), "{redacted}");
        }
        std::process::exit(e.exit_code())
    })
}

/// Other tools' names for `up` and `down` (Alembic's `upgrade`, Rails' `migrate`/`rollback`,
/// ...) are too far from ours for clap's spelling suggestion: say which command is meant, in
/// clap's own `tip:` line. Not aliases: one name per command keeps help and scripts plain.
fn suggest_other_tools_words(e: &mut clap::Error) {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::InvalidSubcommand {
        return;
    }
    let Some(ContextValue::String(typed)) = e.get(ContextKind::InvalidSubcommand) else {
        return;
    };
    let meant = match typed.as_str() {
        "migrate" | "apply" | "upgrade" | "deploy" => "up",
        "rollback" | "revert" | "downgrade" | "undo" => "down",
        _ => return,
    };
    e.insert(
        ContextKind::SuggestedSubcommand,
        ContextValue::Strings(vec![meant.to_owned()]),
    );
}

/// One clear message on stderr (and, in JSON mode, an error document on stdout). Findings
/// were printed by the command itself.
fn report(cli: &cli::Cli, error: &exit::Error) {
    if matches!(error, exit::Error::Findings | exit::Error::Reported(_)) {
        return;
    }
    // A run that stopped part-way: the error itself, plus what was done before it.
    let (error, partial) = match error {
        exit::Error::Partial(p) => (&p.error, Some(p)),
        error => (error, None),
    };
    let message = crate::redact::redact_text(&error.to_string());
    eprintln!("error: {message}");
    for note in partial.iter().flat_map(|p| &p.notes) {
        eprintln!("{}", crate::redact::redact_text(note));
    }
    if cli.global.format == cli::Format::Json {
        let mut doc = serde_json::json!({
            "error": { "kind": error.kind(), "message": message, "exit_code": error.code() as i32 }
        });
        // A migration's failure also says where, field by field (docs/cli.md).
        if let Some(object) = doc.get_mut("error").and_then(|e| e.as_object_mut()) {
            object.extend(error.migration_fields());
        }
        if let (Some(p), Some(fields)) = (partial, doc.as_object_mut()) {
            // The run's fields (`command`, `ran`, ...) beside the error object.
            let mut all = p.document.clone();
            all.append(fields);
            *fields = all;
        }
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
    }
}
