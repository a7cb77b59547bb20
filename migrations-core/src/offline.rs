//! Offline SQL (Alembic's `--sql`): a script a DBA runs with `psql`, bookkeeping included, for
//! databases the runner cannot reach. Pure: it reads no database, so it cannot know what is
//! applied; the caller says which range to write.

use std::cmp::Ordering;

use migrations_format::Version;

use crate::embedded::{Migration, Migrations, Script};
use crate::history::State;
use crate::plan::Direction;
use crate::sql::{quote_literal, Names, NewRow};

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
        "cannot write {direction} {version} {name}: line {line}: {}",
        crate::error::refusal_text(.what)
    )]
    RefusedInTransaction {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: String,
        /// `"up"` or `"down"`.
        direction: &'static str,
        /// 1-based line of the statement in the script.
        line: u32,
        /// The construct, for example `COMMIT`.
        what: String,
    },
    /// A down script was asked for a migration that has no down file.
    #[error("cannot revert {version} {name}: it has no down file")]
    NoDown {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: String,
    },
}

/// Writes the script. Run it with `psql -X -f <file>`: it sets `ON_ERROR_STOP` itself, takes
/// the migrations lock first, without waiting (if another runner holds it, psql stops with
/// SQLSTATE 55P03 and a non-zero exit before anything is created), creates the history tables,
/// applies each migration with its history row in one transaction (no-transaction ones
/// statement by statement, with a `running` row first), and releases the lock.
pub fn offline_script(
    migrations: &Migrations,
    names: &Names,
    range: OfflineRange,
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
                from.as_deref()
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

    let key = names.lock_key();
    let mut out = String::new();
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
                name: m.name().to_owned(),
            })?,
        };
        out.push_str(&format!(
            "-- {} {} {}\n",
            range.direction.as_str(),
            m.version_digits(),
            m.name()
        ));
        if let Some(refusal) = script.refused_in_transaction() {
            return Err(OfflineError::RefusedInTransaction {
                version: m.version(),
                name: m.name().to_owned(),
                direction: range.direction.as_str(),
                line: refusal.line(),
                what: refusal.what().to_owned(),
            });
        }
        if script.no_transaction() {
            out.push_str(&no_transaction_block(m, script, names, range.direction));
        } else {
            out.push_str("BEGIN;\n");
            out.push_str(script.sql());
            out.push_str("\n;\n");
            out.push_str(&bookkeeping(m, script, names, range.direction));
            out.push_str("COMMIT;\n\n");
        }
    }
    out.push_str(&format!("SELECT pg_advisory_unlock({key});\n"));
    Ok(out)
}

/// The lock guard, first in the script: take the runner's advisory lock without waiting, or
/// stop psql with an error (SQLSTATE 55P03, `lock_not_available`) before anything is created.
/// A `DO` block, because psql's `\quit` always exits 0 (it takes no exit code), so only a
/// server error under `ON_ERROR_STOP` makes psql fail. The lock is a session lock: it outlives
/// the `DO` block's transaction and is released at the end of the script, or when psql exits.
fn lock_guard(names: &Names) -> String {
    let key = names.lock_key();
    let message = quote_literal(&format!(
        "another migration runner holds the migrations lock (advisory lock {key}, for {}); \
         this script changed nothing",
        names.history()
    ));
    let hint = quote_literal(&format!(
        "rerun the script when the other runner is done; find it with: SELECT pid FROM pg_locks \
         WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = {key}"
    ));
    let body = format!(
        "BEGIN\n    IF NOT pg_try_advisory_lock({key}) THEN\n        RAISE EXCEPTION USING \
         ERRCODE = '55P03',\n            MESSAGE = {message},\n            HINT = {hint};\n    \
         END IF;\nEND\n"
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

fn bookkeeping(m: &Migration, script: &Script, names: &Names, direction: Direction) -> String {
    let record = match direction {
        Direction::Up => names.insert_row(&NewRow {
            version: m.version(),
            version_digits: m.version_digits(),
            name: m.name(),
            checksum: m.checksum(),
            no_transaction: m.no_transaction(),
            state: State::Applied,
            execution_ms: None,
            statements_done: None,
            statements_total: None,
        }),
        Direction::Down => names.delete_row(m.version()),
    };
    let audit = names.audit_insert(
        direction.as_str(),
        Some(m.version()),
        Some(m.name()),
        Some(script.checksum()),
        Some("offline script"),
    );
    format!("{record};\n{audit};\n")
}

fn no_transaction_block(
    m: &Migration,
    script: &Script,
    names: &Names,
    direction: Direction,
) -> String {
    let mut out = String::new();
    let statements: Vec<&str> = script.statements().collect();
    if direction == Direction::Up {
        out.push_str(&names.insert_row(&NewRow {
            version: m.version(),
            version_digits: m.version_digits(),
            name: m.name(),
            checksum: m.checksum(),
            no_transaction: true,
            state: State::Running,
            execution_ms: Some(0),
            statements_done: Some(0),
            statements_total: Some(statements.len()),
        }));
        out.push_str(";\n");
    }
    for (i, statement) in statements.iter().enumerate() {
        out.push_str(statement);
        out.push_str(";\n");
        if direction == Direction::Up {
            out.push_str(&names.progress(m.version(), i + 1));
            out.push_str(";\n");
        }
    }
    match direction {
        Direction::Up => {
            out.push_str(&names.finish_no_transaction(m.version(), 0));
            out.push_str(";\n");
            out.push_str(&names.audit_insert(
                "up",
                Some(m.version()),
                Some(m.name()),
                Some(script.checksum()),
                Some("offline script"),
            ));
            out.push_str(";\n\n");
        }
        Direction::Down => {
            out.push_str(&bookkeeping(m, script, names, direction));
            out.push('\n');
        }
    }
    out
}
