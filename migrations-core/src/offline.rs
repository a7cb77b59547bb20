//! Offline SQL (Alembic's `--sql`): a script a DBA runs with `psql`, bookkeeping included, for
//! databases the runner cannot reach. Pure: it reads no database, so it cannot know what is
//! applied; the caller says which range to write.

use std::cmp::Ordering;

use migrations_format::Version;

use crate::embedded::{Migration, Migrations, Script};
use crate::plan::{Direction, Phase};
use crate::sql::{quote_literal, Names, StepSql};

/// The audit `detail` of every step the offline script records.
const OFFLINE_DETAIL: &str = "offline script";

/// Which migrations the script covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineRange {
    /// Up: start after this version (exclusive). Down: start at this version (inclusive).
    pub from: Option<i64>,
    /// Up: stop at this version (inclusive). Down: stop above this version (it stays applied).
    pub to: Option<i64>,
    /// Whether the script applies (up) or reverts (down) the range.
    pub direction: Direction,
}

/// Why no script could be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OfflineError {
    /// A bound of the range (carried) names no migration of the set.
    #[error("version {0} is not a migration of this set")]
    UnknownVersion(i64),
    /// `from` and `to` are both given and select nothing: for an up script `from` must be below
    /// `to` (after `from`, up to and including `to`); for a down script above it (from `from`
    /// down to, not including, `to`).
    #[error(
        "from {from} to {to} selects no migration: {}",
        match .direction {
            Direction::Up => "an up script applies the migrations after `from` up to and \
                              including `to`, so `from` must be below `to`",
            Direction::Down => "a down script reverts the migrations from `from` down to (not \
                                including) `to`, so `from` must be above `to`",
        }
    )]
    EmptyRange {
        /// The range's `from`.
        from: i64,
        /// The range's `to`.
        to: i64,
        /// The script's direction.
        direction: Direction,
    },
    /// A transactional script holds a statement that cannot run inside the script's
    /// `BEGIN ... COMMIT` (a `COMMIT` would commit half of it before its history row; a
    /// `CREATE INDEX CONCURRENTLY` fails). The runner refuses the same file before running it.
    #[error(
        "cannot write {} {spelling} {name}: line {line}: {}",
        .direction.as_str(),
        crate::error::refusal_text(.what)
    )]
    RefusedInTransaction {
        /// The migration's version.
        version: i64,
        /// The version as the migration's file name writes it: the message shows this one.
        spelling: String,
        /// The migration's name.
        name: String,
        /// Which script holds it (shown as `up` or `down`).
        direction: Direction,
        /// 1-based line of the statement in the script.
        line: u32,
        /// The construct, for example `COMMIT`.
        what: String,
    },
    /// The range holds a Rust-code migration (`Migrations::with_code`): a psql script cannot
    /// call a Rust function.
    #[error(
        "cannot write {} {version} {name}: it is a Rust-code migration, which only the \
         service that registers it can run; run it with the service, or end the script's \
         range before it",
        .direction.as_str()
    )]
    CodeMigration {
        /// The migration's version (a code migration's is written as its number).
        version: i64,
        /// The migration's name.
        name: String,
        /// The script's direction.
        direction: Direction,
    },
    /// A down script was asked for a migration that has no down file.
    #[error("cannot revert {spelling} {name}: it has no down file")]
    NoDown {
        /// The migration's version.
        version: i64,
        /// The version as the migration's file name writes it: the message shows this one.
        spelling: String,
        /// The migration's name.
        name: String,
    },
}

/// Writes the script. Run it with `psql -X -f <file>`: it sets `ON_ERROR_STOP` itself, takes
/// the migrations lock first, without waiting (if another runner holds it, psql stops with
/// SQLSTATE 55P03 and a non-zero exit before anything is created), creates the history tables,
/// applies each migration with its history row in one transaction (no-transaction ones
/// statement by statement between a `running` row, or a down's `down in progress` mark, and
/// the finish, with progress after each statement), and releases the lock. Every history and
/// audit statement is the runner's own (`StepSql`), so the script leaves the history the
/// runner would.
pub fn offline_script(
    migrations: &Migrations,
    names: &Names,
    range: OfflineRange,
) -> Result<String, OfflineError> {
    offline_script_with(migrations, names, range, Phase::Pre)
}

/// [`offline_script`] for one deploy phase: an up script holds the migrations of `phase` in
/// the range (`Phase::Pre`, the default, leaves out `-- migrations:phase=post` ones, as a
/// plain `up` does); a down script reverts the whole range whatever their phase. The history
/// rows store each down script (history format 2), as the runner's do.
pub fn offline_script_with(
    migrations: &Migrations,
    names: &Names,
    range: OfflineRange,
    phase: Phase,
) -> Result<String, OfflineError> {
    let digits = |v: i64| {
        migrations
            .get(v)
            .map(|m| m.version_digits().to_owned())
            .ok_or(OfflineError::UnknownVersion(v))
    };
    let from = range.from.map(digits).transpose()?;
    let to = range.to.map(digits).transpose()?;
    if let (Some(f), Some(t), Some(from), Some(to)) = (&from, &to, range.from, range.to) {
        // An inverted range is a mistake (often up and down mixed up), never an empty script
        // that "succeeds".
        let wanted = match range.direction {
            Direction::Up => Ordering::Less,
            Direction::Down => Ordering::Greater,
        };
        if Version::compare_digits(f, t) != wanted {
            return Err(OfflineError::EmptyRange {
                from,
                to,
                direction: range.direction,
            });
        }
    }
    let cmp = |m: &Migration, v: &str| Version::compare_digits(m.version_digits(), v);
    let mut chosen: Vec<&Migration> = migrations
        .iter()
        .filter(|m| match range.direction {
            Direction::Up => {
                phase.includes(m)
                    && from
                        .as_deref()
                        .is_none_or(|f| cmp(m, f) == Ordering::Greater)
                    && to.as_deref().is_none_or(|t| cmp(m, t) != Ordering::Greater)
            }
            Direction::Down => {
                from.as_deref()
                    .is_none_or(|f| cmp(m, f) != Ordering::Greater)
                    && to.as_deref().is_none_or(|t| cmp(m, t) == Ordering::Greater)
            }
        })
        .collect();
    if range.direction == Direction::Down {
        chosen.reverse();
    }

    // Reserved up front: grown by doubling, the script of one 100 MB migration took twice
    // its size (and a copy while growing) on top of the loaded file (issue 19).
    let sql_bytes: usize = chosen
        .iter()
        .filter_map(|m| match range.direction {
            Direction::Up => Some(m.up()),
            Direction::Down => m.down(),
        })
        .map(|s| s.sql().len())
        .sum();
    let mut out = String::with_capacity(sql_bytes + chosen.len() * STEP_BYTES + 16 * 1024);
    out.push_str(&format!(
        "-- Offline migration script ({}, {} migrations), written by `migrations sql`.\n\
         -- Run it with: psql -X -f <this file> <database>\n\
         -- It stops at the first error by itself (ON_ERROR_STOP is set below).\n\
         \\set ON_ERROR_STOP on\n\n",
        range.direction.as_str(),
        chosen.len()
    ));
    out.push_str(&lock_guard(names));
    out.push_str(&names.create());
    out.push_str("\n\n");
    for m in chosen {
        let script = match range.direction {
            Direction::Up => m.up(),
            Direction::Down => m.down().ok_or_else(|| OfflineError::NoDown {
                version: m.version(),
                spelling: crate::error::spelling(m),
                name: m.name().to_owned(),
            })?,
        };
        out.push_str(&format!(
            "-- {} {} {}\n",
            range.direction.as_str(),
            crate::error::spelling(m),
            m.name()
        ));
        if script.code().is_some() {
            return Err(OfflineError::CodeMigration {
                version: m.version(),
                name: m.name().to_owned(),
                direction: range.direction,
            });
        }
        if let Some(refusal) = script.refused_in_transaction() {
            return Err(OfflineError::RefusedInTransaction {
                version: m.version(),
                spelling: crate::error::spelling(m),
                name: m.name().to_owned(),
                direction: range.direction,
                line: refusal.line(),
                what: refusal.what().to_owned(),
            });
        }
        // The runner's own bookkeeping statements (see `StepSql`), so a step leaves the same
        // history whichever ran it.
        let step = StepSql::new(names, m, script, range.direction).detail(OFFLINE_DETAIL);
        if script.no_transaction() {
            let timeouts = file_timeouts(script);
            if !timeouts.is_empty() {
                out.push_str(&save_and_set(&timeouts));
            }
            no_transaction_block(&mut out, script, &step);
            if !timeouts.is_empty() {
                out.push_str(&restore(&timeouts));
            }
        } else {
            out.push_str("BEGIN;\n");
            for (param, ms) in file_timeouts(script) {
                // Ends with the transaction: nothing to restore.
                out.push_str(&format!("SET LOCAL {param} = '{ms}ms';\n"));
            }
            out.push_str(script.sql());
            out.push_str("\n;\n");
            out.push_str(PSQL_SESSION_IDENTITY);
            out.push_str(&step.commit(None));
            out.push_str("COMMIT;\n\n");
        }
    }
    if range.direction == Direction::Up && range.to.is_none() {
        out.push_str(&crate::repeatable::offline(migrations, names));
    }
    out.push_str(&format!("{};\n", names.unlock()));
    Ok(out)
}

/// The file's own timeout directives (`-- migrations:lock-timeout=`, `statement-timeout=`),
/// which the runner sets for that file alone. The script sets no timeout otherwise: the
/// DBA's session (`PGOPTIONS`, the role's or database's settings) decides, as for any psql
/// script; a directive is the file's author saying what this file needs, so it wins there.
fn file_timeouts(script: &Script) -> Vec<(&'static str, u64)> {
    [
        ("lock_timeout", script.lock_timeout_ms()),
        ("statement_timeout", script.statement_timeout_ms()),
    ]
    .into_iter()
    .filter_map(|(param, ms)| ms.map(|ms| (param, ms)))
    .collect()
}

/// psql variable that holds a setting's value from before a no-transaction file set its own.
fn saved_variable(param: &str) -> String {
    format!("migrations_saved_{param}")
}

/// For a no-transaction file (no transaction to scope a `SET LOCAL`): keep the session's
/// values in psql variables (`\gset`), then set the file's.
fn save_and_set(timeouts: &[(&str, u64)]) -> String {
    let mut out = String::from("SELECT ");
    for (i, (param, _)) in timeouts.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!(
            "current_setting('{param}') AS {}",
            saved_variable(param)
        ));
    }
    out.push_str(" \\gset\n");
    for (param, ms) in timeouts {
        out.push_str(&format!("SET {param} = '{ms}ms';\n"));
    }
    out
}

/// The session's values back after a no-transaction file with its own timeouts.
fn restore(timeouts: &[(&str, u64)]) -> String {
    timeouts
        .iter()
        .map(|(param, _)| format!("SET {param} = :'{}';\n", saved_variable(param)))
        .collect::<String>()
        + "\n"
}

/// psql's own session identity again (its authenticated user, and the role it started with):
/// before each bookkeeping statement, which a script's `SET ROLE` to a role that cannot write
/// the history would otherwise make fail, and after each migration, whose identity outlives
/// it no more than under the runner. Session-level, so it survives the step's `COMMIT`.
const PSQL_SESSION_IDENTITY: &str = "SET SESSION AUTHORIZATION DEFAULT;\nRESET ROLE;\n";

/// What the script holds per step besides the migration's SQL (its comment line, `BEGIN`,
/// the bookkeeping statements, `COMMIT`), more than enough for most: the reservation above.
const STEP_BYTES: usize = 2048;

/// The lock guard, first in the script: take the runner's advisory lock without waiting, or
/// stop psql with an error (SQLSTATE 55P03, `lock_not_available`) before anything is created.
/// A `DO` block, because psql's `\quit` always exits 0 (it takes no exit code), so only a
/// server error under `ON_ERROR_STOP` makes psql fail. The lock is a session lock: it outlives
/// the `DO` block's transaction and is released at the end of the script, or when psql exits.
fn lock_guard(names: &Names) -> String {
    let key = names.lock_key();
    // Named as the runner names it (`LockHolder`'s text), when the server shows who it is.
    let holder = names.lock_holder_text();
    let message = format!(
        "{} || coalesce(' (' || holder || ')', '') || {}",
        quote_literal("another migration runner"),
        quote_literal(&format!(
            " holds the migrations lock (advisory lock {key}, for {}); this script changed \
             nothing",
            names.history()
        ))
    );
    let hint = quote_literal(&format!(
        "rerun the script when the other runner is done; find it with: SELECT pid FROM pg_locks \
         WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = {key}"
    ));
    let body = format!(
        "DECLARE\n    holder text;\nBEGIN\n    IF NOT pg_try_advisory_lock({key}) THEN\n        \
         {holder} INTO holder;\n        RAISE EXCEPTION USING ERRCODE = '55P03',\n            \
         MESSAGE = {message},\n            HINT = {hint};\n    END IF;\nEND\n"
    );
    // A dollar-quote tag that the body (which holds the table's name) cannot end early.
    let mut tag = String::from("$migrations_lock$");
    while body.contains(&tag) {
        tag.insert(tag.len() - 1, '_');
    }
    format!(
        "-- One runner at a time: take the migrations lock before anything else, or stop here.\n\
         DO {tag}\n{body}{tag};\n\n"
    )
}

/// A no-transaction script as psql runs it, each statement on its own (psql sends each
/// statement as a query of its own, so none runs in an implicit transaction with another),
/// between the step's start, progress and finish, as the runner writes them.
///
/// Each progress is written as psql's own session (a statement may have taken a role that
/// cannot write the history), and the script's identity is given back for its next statement:
/// as the runner does, through psql variables here.
fn no_transaction_block(out: &mut String, script: &Script, step: &StepSql<'_>) {
    let statements = script.statements();
    out.push_str(&step.start(statements.len()));
    for (i, statement) in statements.enumerate() {
        out.push_str(statement);
        out.push_str(";\n");
        out.push_str(
            "SELECT current_setting('session_authorization') AS migrations_script_authorization, \
             current_setting('role') AS migrations_script_role \\gset\n",
        );
        out.push_str(PSQL_SESSION_IDENTITY);
        out.push_str(&step.progress(i + 1));
        out.push_str(
            "SELECT set_config('session_authorization', :'migrations_script_authorization', false) \
             AS migrations_ignored_authorization, \
             set_config('role', :'migrations_script_role', false) AS migrations_ignored_role \\gset\n",
        );
    }
    out.push_str(PSQL_SESSION_IDENTITY);
    out.push_str(&step.finish(None));
    out.push('\n');
}
