//! Directives: `-- migrations:...` comment lines at the top of a file, before any SQL.
//!
//! Each covers the file it stands in (up and down are separate files). sqlx's
//! `-- no-transaction` header line means the same as `-- migrations:no-transaction`, so a sqlx
//! project can move over without editing its files.

use std::time::Duration;

/// The prefix that marks a comment as ours. Any comment starting with it must be a known
/// directive: a typo must not be silently ignored.
pub const PREFIX: &str = "migrations:";

/// Directives read from one file's header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// Line of the `no-transaction` directive, when there is one.
    pub no_transaction: Option<u32>,
    /// `lock-timeout=<duration>`: the file's `lock_timeout`, overriding the run's; `None` when
    /// the file does not set one.
    pub lock_timeout: Option<Duration>,
    /// `statement-timeout=<duration>`: the file's `statement_timeout`, overriding the run's;
    /// `None` when the file does not set one (zero means no timeout).
    pub statement_timeout: Option<Duration>,
    /// Lint rules silenced for the whole file, with the line that silenced them.
    pub lint_ignore: Vec<(String, u32)>,
    /// `lossy-down <reason>`: this down cannot restore the data its up changed, on purpose
    /// (the reason, as written). `migrations test` reports the loss as acknowledged, and
    /// `down`/`redo` over it refuse without `--allow-data-loss`.
    pub lossy_down: Option<String>,
    /// Line of `phase=post`: a post-deployment (contract) migration, run only when asked
    /// (`up --phase post|all`), never by a plain `up` while older binaries may still run.
    /// Read from the up file.
    pub post_deploy: Option<u32>,
    /// Line of `breaking`: binaries that lack this migration must not run against a database
    /// where it is applied (the compatibility floor). Read from the up file.
    pub breaking: Option<u32>,
}

/// A directive that could not be read, with the 1-based line it stands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectiveError {
    /// The 1-based line of the directive in the file.
    pub line: u32,
    /// What is wrong with it and how to write it instead.
    pub message: String,
}

/// What one directive comment says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Directive {
    /// `no-transaction`: run the file statement by statement, outside a transaction block.
    NoTransaction,
    /// `lock-timeout=<duration>`: `lock_timeout` while this file runs.
    LockTimeout(Duration),
    /// `statement-timeout=<duration>`: `statement_timeout` while this file runs (zero: none).
    StatementTimeout(Duration),
    /// `lint-ignore <rule>[, <rule>...]`: lint rules silenced, by name, for the statement that
    /// follows (or for the whole file when in the header).
    LintIgnore(Vec<String>),
    /// `lossy-down <reason>`: a down that cannot restore data on purpose, and why.
    LossyDown(String),
    /// `phase=post` (or `phase=pre`, the default): whether the migration is a
    /// post-deployment one.
    Phase {
        /// `true` for `phase=post`.
        post: bool,
    },
    /// `breaking`: binaries that lack this migration must not run once it is applied.
    Breaking,
}

const KNOWN: &str = "no-transaction, lock-timeout=<duration>, statement-timeout=<duration>, \
                     lint-ignore <rule>, lossy-down <reason>, \
                     phase=post, breaking";

/// Reads a comment's text (after `--`, untrimmed). Returns `None` for an ordinary comment.
pub fn parse_comment(comment: &str) -> Option<Result<Directive, String>> {
    let body = comment.trim();
    let rest = body.strip_prefix(PREFIX)?;
    let rest = rest.trim();
    // `key`, `key=value`, `key = value` or `key value`.
    let key_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(rest.len());
    let (key, value) = rest.split_at(key_end);
    let value = value.trim();
    let value = value.strip_prefix('=').map(str::trim).unwrap_or(value);
    let value = (!value.is_empty()).then_some(value);
    let result = match (key, value) {
        ("no-transaction", None) => Ok(Directive::NoTransaction),
        ("lock-timeout", Some(v)) => parse_duration(v).map(Directive::LockTimeout),
        ("statement-timeout", Some(v)) => parse_duration(v).map(Directive::StatementTimeout),
        ("lint-ignore", Some(v)) if !v.is_empty() => Ok(Directive::LintIgnore(
            v.split([',', ' '])
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
        ("phase", Some("post")) => Ok(Directive::Phase { post: true }),
        ("phase", Some("pre")) => Ok(Directive::Phase { post: false }),
        ("phase", _) => Err(
            "`phase` takes `post` (a post-deployment migration: `-- migrations:phase=post`); \
             without it a migration runs before deployment"
                .to_owned(),
        ),
        ("breaking", None) => Ok(Directive::Breaking),
        ("breaking", Some(_)) => Err("`breaking` takes no value".to_owned()),
        ("lossy-down", Some(v)) => Ok(Directive::LossyDown(v.to_owned())),
        ("lossy-down", None) => Err(
            "`lossy-down` needs a reason, for example `-- migrations:lossy-down the dropped \
             column's values cannot be recovered`"
                .to_owned(),
        ),
        ("no-transaction", Some(_)) => Err("`no-transaction` takes no value".to_owned()),
        ("lock-timeout" | "statement-timeout", None) => Err(format!(
            "`{key}` needs a duration, for example `-- migrations:{key}=5s`"
        )),
        ("lint-ignore", _) => Err(
            "`lint-ignore` needs a rule name, for example `-- migrations:lint-ignore require-concurrent-index`"
                .to_owned(),
        ),
        _ => Err(format!(
            "unknown directive `-- {body}`; known directives: {KNOWN}"
        )),
    };
    Some(result)
}

/// Parses `500ms`, `5s`, `0.5s`, `2min`, `1h`, `1d` or `0`. A bare number other than `0` is
/// refused: PostgreSQL would read it as milliseconds, a reader might not. A fraction must come
/// to whole milliseconds (`1.5s`, not `0.5ms`): PostgreSQL's timeouts count milliseconds, and a
/// value rounded down to `0` would turn the timeout off.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let not_a_duration =
        || format!("`{text}` is not a duration; write for example `5s`, `0.5s` or `2min`");
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    // `5.` and `.5` are refused along with `1.2.3`: a typo more often than a duration.
    if whole.is_empty()
        || (number.contains('.') && fraction.is_empty())
        || fraction.contains('.')
        || fraction.len() > 9
    {
        return Err(not_a_duration());
    }
    let n: u64 = whole.parse().map_err(|_| not_a_duration())?;
    let fraction_digits: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| not_a_duration())?
    };
    let millis_per_unit: u64 = match unit.trim() {
        "" if n == 0 && fraction_digits == 0 => 0,
        "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "`{text}` is not a duration; give a unit: ms, s, min, h or d (for example `5s`)"
            ))
        }
    };
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction_millis = u128::from(fraction_digits) * u128::from(millis_per_unit);
    if fraction_millis % scale != 0 {
        return Err(format!(
            "`{text}` is finer than a millisecond; PostgreSQL counts timeouts in whole \
             milliseconds"
        ));
    }
    let fraction_millis = u64::try_from(fraction_millis / scale).unwrap_or(u64::MAX);
    n.checked_mul(millis_per_unit)
        .and_then(|m| m.checked_add(fraction_millis))
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long a duration"))
}

/// Reads the header of a normalised file: the leading lines that are blank or `--` comments.
/// Stops at the first other line (SQL, or a `/*` comment). Returns the directives and the
/// number of header lines.
pub fn parse_header(text: &str) -> Result<Directives, Vec<DirectiveError>> {
    let mut directives = Directives::default();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index as u32 + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let Some(comment) = trimmed.strip_prefix("--") else {
            break;
        };
        if comment.trim() == "no-transaction" {
            // sqlx's spelling.
            set_once(
                &mut directives.no_transaction,
                line_no,
                line_no,
                &mut errors,
                "no-transaction",
            );
            continue;
        }
        let Some(parsed) = parse_comment(comment) else {
            continue;
        };
        match parsed {
            Err(message) => errors.push(DirectiveError {
                line: line_no,
                message,
            }),
            Ok(Directive::NoTransaction) => set_once(
                &mut directives.no_transaction,
                line_no,
                line_no,
                &mut errors,
                "no-transaction",
            ),
            Ok(Directive::LockTimeout(d)) => set_once(
                &mut directives.lock_timeout,
                d,
                line_no,
                &mut errors,
                "lock-timeout",
            ),
            Ok(Directive::StatementTimeout(d)) => set_once(
                &mut directives.statement_timeout,
                d,
                line_no,
                &mut errors,
                "statement-timeout",
            ),
            Ok(Directive::LintIgnore(rules)) => directives
                .lint_ignore
                .extend(rules.into_iter().map(|r| (r, line_no))),
            // `phase=pre` is the default, written out: nothing to record.
            Ok(Directive::Phase { post: false }) => {}
            Ok(Directive::Phase { post: true }) => set_once(
                &mut directives.post_deploy,
                line_no,
                line_no,
                &mut errors,
                "phase",
            ),
            Ok(Directive::Breaking) => set_once(
                &mut directives.breaking,
                line_no,
                line_no,
                &mut errors,
                "breaking",
            ),
            Ok(Directive::LossyDown(reason)) => set_once(
                &mut directives.lossy_down,
                reason,
                line_no,
                &mut errors,
                "lossy-down",
            ),
        }
    }
    if errors.is_empty() {
        Ok(directives)
    } else {
        Err(errors)
    }
}

fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    line: u32,
    errors: &mut Vec<DirectiveError>,
    name: &str,
) {
    if slot.is_some() {
        errors.push(DirectiveError {
            line,
            message: format!("`{name}` is given twice; keep one"),
        });
    } else {
        *slot = Some(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_directives_and_sqlx_spelling() {
        let d = parse_header(
            "-- a comment\n\n-- migrations:no-transaction\n-- migrations:lock-timeout=5s\n\
             --migrations:statement-timeout = 2min\n-- migrations:lint-ignore a, b\nSELECT 1;\n\
             -- migrations:whatever after SQL is not the header's business\n",
        )
        .unwrap();
        assert_eq!(d.no_transaction, Some(3));
        assert_eq!(d.lock_timeout, Some(Duration::from_secs(5)));
        assert_eq!(d.statement_timeout, Some(Duration::from_secs(120)));
        assert_eq!(d.lint_ignore, vec![("a".into(), 6), ("b".into(), 6)]);

        let sqlx =
            parse_header("-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);").unwrap();
        assert_eq!(sqlx.no_transaction, Some(1));
    }

    #[test]
    fn header_ends_at_first_sql_or_block_comment() {
        let d = parse_header("SELECT 1;\n-- migrations:no-transaction\n").unwrap();
        assert_eq!(d.no_transaction, None);
        let d = parse_header("/* x */\n-- migrations:no-transaction\n").unwrap();
        assert_eq!(d.no_transaction, None);
    }

    #[test]
    fn refuses_unknown_malformed_and_repeated_directives() {
        let errors = parse_header(
            "-- migrations:no-transacton\n-- migrations:lock-timeout=5\n\
             -- migrations:lock-timeout\n-- migrations:no-transaction\n-- migrations:no-transaction\n",
        )
        .unwrap_err();
        let lines: Vec<u32> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 5]);
        assert!(errors[0]
            .message
            .contains("unknown directive `-- migrations:no-transacton`"));
        assert!(errors[0].message.contains("no-transaction"));
        assert!(errors[1].message.contains("give a unit"));
        assert!(errors[2].message.contains("needs a duration"));
        assert!(errors[3].message.contains("given twice"));
    }

    #[test]
    fn lossy_down_keeps_its_reason_and_needs_one() {
        let d = parse_header(
            "-- migrations:lossy-down the emails were moved to contacts; they cannot come back\n\
             ALTER TABLE users DROP COLUMN contact;\n",
        )
        .unwrap();
        assert_eq!(
            d.lossy_down.as_deref(),
            Some("the emails were moved to contacts; they cannot come back")
        );
        let errors = parse_header("-- migrations:lossy-down\n").unwrap_err();
        assert_eq!(errors[0].line, 1);
        assert!(errors[0].message.contains("`lossy-down` needs a reason"));
        let twice = parse_header("-- migrations:lossy-down a\n-- migrations:lossy-down b\n");
        assert!(twice.unwrap_err()[0].message.contains("given twice"));
    }

    #[test]
    fn phase_and_breaking() {
        let d = parse_header(
            "-- contract\n-- migrations:phase=post\n-- migrations:breaking\nDROP TABLE t;\n",
        )
        .unwrap();
        assert_eq!(d.post_deploy, Some(2));
        assert_eq!(d.breaking, Some(3));
        let pre = parse_header("-- migrations:phase = pre\nSELECT 1;\n").unwrap();
        assert_eq!(pre.post_deploy, None);
        let errors = parse_header(
            "-- migrations:phase=later\n-- migrations:breaking yes\n-- migrations:phase=post\n\
             -- migrations:phase=post\n-- migrations:breaking\n-- migrations:breaking\n",
        )
        .unwrap_err();
        let lines: Vec<u32> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 4, 6]);
        assert!(errors[0].message.contains("`phase` takes `post`"));
        assert!(errors[1].message.contains("`breaking` takes no value"));
        assert!(errors[2].message.contains("`phase` is given twice"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.25min"), Ok(Duration::from_millis(75_000)));
        assert_eq!(parse_duration("0.0"), Ok(Duration::ZERO));
        assert_eq!(
            parse_duration("0.5ms"),
            Err(
                "`0.5ms` is finer than a millisecond; PostgreSQL counts timeouts in whole \
                 milliseconds"
                    .to_owned()
            )
        );
        for bad in ["5.", ".5s", "1.2.3s", "0.5", "1.0000000001s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("18446744073709551615d").is_err());
    }
}
