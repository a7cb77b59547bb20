//! Passwords never reach the terminal: every message the CLI prints on stderr (errors, `-v`
//! log lines, clap's complaints about the command line) and the JSON error document pass
//! through [`redact_text`].
//!
//! Two layers, so that no single parsing mistake shows a password:
//! 1. what the user gave as it was given: the value of `--database-url`, every other
//!    command-line argument that looks like a connection string (it holds `://`, `password`,
//!    or a `:` before an `@`), `DATABASE_URL` and `PGPASSWORD`,
//!    replaced wherever it appears verbatim (a connection string by its redacted form, which for
//!    a shape that is not a URL nor `key=value` pairs is `***` whole; a password by `***`);
//! 2. then [`migrations_core::connect::redact_text`]: the password of any URL and any
//!    `password=` value left in the text.
//!
//! The library's own messages never quote a connection string; this is the net under that.

use std::sync::OnceLock;

use migrations_core::connect;

/// Values shorter than this are not searched for (they would mangle ordinary words).
const MIN_LEN: usize = 4;

/// `(text as given, what to print instead)`, longest first.
fn sensitive() -> &'static [(String, String)] {
    static SENSITIVE: OnceLock<Vec<(String, String)>> = OnceLock::new();
    SENSITIVE.get_or_init(|| {
        let args = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned());
        let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        collect(args, env("DATABASE_URL"), env("PGPASSWORD"))
    })
}

/// What [`sensitive`] holds, from the arguments and the two variables.
fn collect(
    args: impl Iterator<Item = String>,
    database_url: Option<String>,
    pgpassword: Option<String>,
) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    let mut add = |raw: &str, replacement: String| {
        if raw.len() >= MIN_LEN && raw != replacement && !found.iter().any(|(r, _)| r == raw) {
            found.push((raw.to_string(), replacement));
        }
    };
    let mut after_flag = false;
    for arg in args {
        // The value of `--database-url` is a connection string whatever it looks like; any
        // other argument only when it looks like one (a `:` before an `@`, as in
        // `user:secret@host`; not a path such as a CI workspace `job@2`).
        let is_value = std::mem::replace(&mut after_flag, arg == "--database-url");
        let looks_like = arg.contains("://")
            || arg.to_ascii_lowercase().contains("password")
            || arg.rfind('@').is_some_and(|at| arg[..at].contains(':'));
        if !(is_value || looks_like) {
            continue;
        }
        // `--database-url=...`: the value on its own too (it is what a message would quote).
        match arg.strip_prefix("--").and_then(|a| a.split_once('=')) {
            Some((flag, value)) => {
                add(value, connect::redact(value));
                add(&arg, format!("--{flag}={}", connect::redact(value)));
            }
            None => add(&arg, connect::redact(&arg)),
        }
    }
    if let Some(url) = database_url {
        add(&url, connect::redact(&url));
    }
    if let Some(password) = pgpassword {
        add(&password, "***".to_string());
    }
    found.sort_by_key(|(raw, _)| std::cmp::Reverse(raw.len()));
    found
}

/// `text` with every password hidden (see the module documentation).
pub fn redact_text(text: &str) -> String {
    redact_with(text, sensitive())
}

fn redact_with(text: &str, sensitive: &[(String, String)]) -> String {
    let mut text = text.to_string();
    for (raw, replacement) in sensitive {
        if text.contains(raw.as_str()) {
            text = text.replace(raw.as_str(), replacement);
        }
    }
    connect::redact_text(&text)
}

#[cfg(test)]
mod tests {
    use super::{collect, redact_with};

    #[test]
    fn hides_passwords_in_text() {
        let text =
            "could not reach postgres://app:s3cret@db:5432/x (refused); also password=hunter2 here";
        let red = redact_with(text, &[]);
        assert_eq!(
            red,
            "could not reach postgres://app:***@db:5432/x (refused); also password=*** here"
        );
        assert_eq!(redact_with("no secrets here", &[]), "no secrets here");
        // A -v line: the closing `")` stays.
        let line = r#"connecting (ConnectOptions { url: Some("postgres://u:***@h/d?password=***"), connect_timeout: 0ns })"#;
        assert_eq!(redact_with(line, &[]), line);
    }

    #[test]
    fn hides_what_the_user_gave_verbatim() {
        let args = [
            "up",
            "u:S3cr3tX@h/d",
            "--database-url=postgresql//app:S3cr3tY@db/prod",
            "--to",
            "3",
            "host=h password='a S3cr3tZ'",
            "--dir",
            "/ci/workspace/job@2/migrations",
            "--database-url",
            "S3cr3tU",
        ]
        .map(String::from);
        let sensitive = collect(
            args.into_iter(),
            Some("postgres:/u:S3cr3tW@h/d".into()),
            Some("pgpassword-S3cr3tV".into()),
        );
        for (text, expected) in [
            (
                "error: unexpected argument 'u:S3cr3tX@h/d' found",
                "error: unexpected argument '***' found",
            ),
            ("bad: postgresql//app:S3cr3tY@db/prod", "bad: ***"),
            (
                "arg --database-url=postgresql//app:S3cr3tY@db/prod",
                "arg --database-url=***",
            ),
            ("x host=h password='a S3cr3tZ' y", "x host=h password=*** y"),
            ("url postgres:/u:S3cr3tW@h/d.", "url ***."),
            ("the password pgpassword-S3cr3tV.", "the password ***."),
            ("version 3 of up", "version 3 of up"),
            (
                "/ci/workspace/job@2/migrations/1_x.up.sql: bad",
                "/ci/workspace/job@2/migrations/1_x.up.sql: bad",
            ),
            ("it was S3cr3tU", "it was ***"),
        ] {
            assert_eq!(redact_with(text, &sensitive), expected, "{text}");
        }
    }
}
