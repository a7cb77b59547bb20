//! Repeatable migrations (`R__<name>.sql`, Flyway's spelling): views, functions, grants that
//! are written whole and applied again whenever the file changes.
//!
//! After the versioned migrations of an `up` without a target, each repeatable that is new or
//! whose checksum differs from the one recorded runs, in name order, in its own transaction
//! with its row in `<table>_repeatable` (name, checksum, applied_at, applied_by,
//! execution_ms), under the migrations lock. The table is separate from the versioned history
//! (whose format it leaves alone) and created if missing. When nothing is due, this is one
//! query and takes no lock.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use crate::db::{Conn, DbError};
use crate::embedded::{Migrations, Script};
use crate::engine::Config;
use crate::error::Error;
use crate::sql::{quote_ident, quote_literal, Names};

/// One repeatable migration: its name (the file name between `R__` and `.sql`) and its
/// script (always transactional).
#[derive(Debug, Clone)]
pub struct Repeatable {
    name: Cow<'static, str>,
    script: Script,
}

impl Repeatable {
    #[doc(hidden)]
    pub const fn __new(name: &'static str, script: Script) -> Repeatable {
        Repeatable {
            name: Cow::Borrowed(name),
            script,
        }
    }

    #[cfg(feature = "load")]
    pub(crate) fn from_source(source: &migrations_format::RepeatableSource) -> Repeatable {
        Repeatable {
            name: Cow::Owned(source.name.clone()),
            script: Script::from_file(&source.file),
        }
    }

    /// The same repeatable with another script (its placeholders substituted).
    pub(crate) fn with_script(&self, script: Script) -> Repeatable {
        Repeatable {
            name: self.name.clone(),
            script,
        }
    }

    /// The name: `views` for `R__views.sql`. Repeatables run in the order of their names.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The script.
    pub fn script(&self) -> &Script {
        &self.script
    }

    /// SHA-256 of the file as written: it runs again whenever this changes.
    pub fn checksum(&self) -> &str {
        self.script.checksum()
    }
}

/// Where a repeatable stands against the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RepeatableState {
    /// Applied with the checksum the file has now.
    Applied,
    /// Applied, but the file changed since: the next `up` applies it again.
    Changed,
    /// Never applied: the next `up` applies it.
    Pending,
    /// Recorded by the database, but the migrations have no such file (removed or renamed):
    /// what it created stays; nothing runs.
    Missing,
}

impl RepeatableState {
    /// `applied`, `changed`, `pending` or `missing`, as the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            RepeatableState::Applied => "applied",
            RepeatableState::Changed => "changed",
            RepeatableState::Pending => "pending",
            RepeatableState::Missing => "missing",
        }
    }
}

/// A repeatable migration and its state ([`Migrator::repeatable_status`](crate::Migrator)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatableStatus {
    /// The repeatable's name.
    pub name: String,
    /// Its state.
    pub state: RepeatableState,
    /// The file's checksum (the recorded one for [`RepeatableState::Missing`]).
    pub checksum: String,
    /// When it was last applied, in RFC 3339, UTC, to the millisecond
    /// (`2025-08-01T00:00:15.123Z`); `None` when pending.
    pub applied_at: Option<String>,
}

/// A repeatable migration a run applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RanRepeatable {
    /// The repeatable's name.
    pub name: String,
    /// Whether it was applied before (with another checksum).
    pub changed: bool,
    /// How long its script took.
    pub duration: Duration,
}

/// The repeatables' table: `"schema"."<table>_repeatable"`.
pub(crate) fn table(names: &Names) -> String {
    format!(
        "{}.{}",
        quote_ident(&names.schema),
        quote_ident(&format!("{}_repeatable", names.table))
    )
}

/// The recorded rows, `(name, checksum, applied_at)`; none when the table does not exist.
async fn recorded<C: Conn>(
    conn: &mut C,
    names: &Names,
) -> Result<Vec<(String, String, Option<String>)>, Error> {
    let regclass = quote_literal(&table(names));
    let exists = conn
        .simple(&format!("SELECT to_regclass({regclass}) IS NOT NULL"))
        .await
        .map_err(|source| db("looking for the repeatable migrations' table", source))?;
    if first(&exists) != Some("t") {
        return Ok(Vec::new());
    }
    let rows = conn
        .simple(&format!(
            "SELECT name, checksum, {} FROM {} ORDER BY name",
            crate::sql::rfc3339("applied_at"),
            table(names)
        ))
        .await
        .map_err(|source| db("reading the repeatable migrations' table", source))?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let mut row = row.into_iter();
            Some((row.next()??, row.next()??, row.next().flatten()))
        })
        .collect())
}

fn first(rows: &[Vec<Option<String>>]) -> Option<&str> {
    rows.first()?.first()?.as_deref()
}

fn db(context: &str, source: DbError) -> Error {
    Error::Db {
        context: context.to_owned(),
        source,
    }
}

/// Every repeatable of the set, and every recorded one the set lacks, with its state.
pub(crate) async fn status<C: Conn>(
    conn: &mut C,
    migrations: &Migrations,
    names: &Names,
) -> Result<Vec<RepeatableStatus>, Error> {
    let rows = recorded(conn, names).await?;
    let mut out: Vec<RepeatableStatus> = migrations
        .repeatables()
        .iter()
        .map(|r| {
            let row = rows.iter().find(|(name, _, _)| name == r.name());
            RepeatableStatus {
                name: r.name().to_owned(),
                state: match row {
                    None => RepeatableState::Pending,
                    Some((_, checksum, _)) if checksum == r.checksum() => RepeatableState::Applied,
                    Some(_) => RepeatableState::Changed,
                },
                checksum: r.checksum().to_owned(),
                applied_at: row.and_then(|(_, _, at)| at.clone()),
            }
        })
        .collect();
    for (name, checksum, applied_at) in rows {
        if !migrations.repeatables().iter().any(|r| r.name() == name) {
            out.push(RepeatableStatus {
                name,
                state: RepeatableState::Missing,
                checksum,
                applied_at,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Applies the repeatables that are new or changed, in name order, each in its own
/// transaction with its row. One query and no lock when none is due.
pub(crate) async fn apply<C: Conn>(
    conn: &mut C,
    migrations: &Migrations,
    config: &Config,
) -> Result<Vec<RanRepeatable>, Error> {
    if migrations.repeatables().is_empty() {
        return Ok(Vec::new());
    }
    if due(migrations, &recorded(conn, &config.names).await?).is_empty() {
        return Ok(Vec::new());
    }
    let key = config.names.lock_key();
    // A session-level advisory lock outlives this transaction; `SET LOCAL` bounds the wait
    // without touching the session's own `lock_timeout`.
    let wait_ms = config.lock_wait.as_millis().max(1);
    conn.simple(&format!(
        "BEGIN; SET LOCAL lock_timeout = {wait_ms}; SELECT pg_advisory_lock({key}); COMMIT"
    ))
    .await
    .map_err(|source| Error::Db {
        context: format!(
            "waiting for the migrations lock (advisory lock {key}) to apply the repeatable \
                 migrations; another runner held it for over {:?}",
            config.lock_wait
        ),
        source,
    })?;
    let result = apply_locked(conn, migrations, config).await;
    if result.is_err() {
        // A failed script leaves its transaction aborted until it is rolled back.
        let _ = conn.simple("ROLLBACK").await;
    }
    let _ = conn
        .simple(&format!("SELECT pg_advisory_unlock({key})"))
        .await;
    result
}

/// The statements that record a repeatable as applied, in its transaction: its row (inserted
/// or updated) and an `apply-repeatable` audit event with `detail`.
fn record(names: &Names, repeatable: &Repeatable, detail: &str) -> String {
    format!(
        "INSERT INTO {table} (name, checksum, execution_ms) VALUES ({name}, {checksum}, \
         (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint)\n  ON CONFLICT (name) \
         DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now(), applied_by = \
         current_user, execution_ms = EXCLUDED.execution_ms;\nINSERT INTO {audit} (event, name, \
         checksum, detail) VALUES ('apply-repeatable', {name}, {checksum}, {detail});\n",
        table = table(names),
        audit = names.audit(),
        name = quote_literal(repeatable.name()),
        checksum = quote_literal(repeatable.checksum()),
        detail = quote_literal(detail),
    )
}

fn create_table(names: &Names) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  name text PRIMARY KEY,\n  checksum text NOT NULL,\n  \
         applied_at timestamptz NOT NULL DEFAULT now(),\n  applied_by text NOT NULL DEFAULT \
         current_user,\n  execution_ms bigint NOT NULL\n)",
        table(names)
    )
}

/// The repeatables for the offline script (`migrations sql`), after its versioned steps and
/// under its lock: the script cannot know which are due, so psql decides, each in a `\if` on
/// whether the table holds its name with its checksum.
pub(crate) fn offline(migrations: &Migrations, names: &Names) -> String {
    if migrations.repeatables().is_empty() {
        return String::new();
    }
    let mut out = format!(
        "-- Repeatable migrations: each runs when new or changed.\n{};\n\n",
        create_table(names)
    );
    for r in migrations.repeatables() {
        out.push_str(&format!(
            "-- repeatable {name}\nSELECT NOT EXISTS (SELECT 1 FROM {table} WHERE name = {lit} \
             AND checksum = {checksum}) AS migrations_repeatable_due \\gset\n\\if \
             :migrations_repeatable_due\nBEGIN;\n{sql}\n;\n{record}COMMIT;\n\\endif\n\n",
            name = r.name(),
            table = table(names),
            lit = quote_literal(r.name()),
            checksum = quote_literal(r.checksum()),
            sql = r.script().sql(),
            record = record(names, r, "offline script"),
        ));
    }
    out
}

/// The repeatables that are new (`false`) or changed (`true`) against the recorded rows.
fn due<'m>(
    migrations: &'m Migrations,
    rows: &[(String, String, Option<String>)],
) -> Vec<(&'m Repeatable, bool)> {
    migrations
        .repeatables()
        .iter()
        .filter_map(
            |r| match rows.iter().find(|(name, _, _)| name == r.name()) {
                None => Some((r, false)),
                Some((_, checksum, _)) if checksum != r.checksum() => Some((r, true)),
                Some(_) => None,
            },
        )
        .collect()
}

async fn apply_locked<C: Conn>(
    conn: &mut C,
    migrations: &Migrations,
    config: &Config,
) -> Result<Vec<RanRepeatable>, Error> {
    let names = &config.names;
    conn.simple(&create_table(names))
        .await
        .map_err(|source| db("creating the repeatable migrations' table", source))?;
    // Read again under the lock: another runner may have applied them meanwhile.
    let rows = recorded(conn, names).await?;
    let mut ran = Vec::new();
    for (repeatable, changed) in due(migrations, &rows) {
        let script = repeatable.script();
        let mut prefix = String::from("BEGIN;\n");
        prefix.push_str(&format!(
            "SET LOCAL lock_timeout = {};\nSET LOCAL statement_timeout = {};\n",
            script
                .lock_timeout_ms()
                .unwrap_or(config.lock_timeout.as_millis() as u64),
            script
                .statement_timeout_ms()
                .unwrap_or(config.statement_timeout.as_millis() as u64),
        ));
        if let Some(path) = &config.search_path {
            prefix.push_str(&format!(
                "SELECT set_config('search_path', {}, true);\n",
                quote_literal(path)
            ));
        }
        let record = format!(
            ";\n{}COMMIT",
            record(names, repeatable, if changed { "changed" } else { "new" })
        );
        let started = Instant::now();
        let batch = format!("{prefix}{}{record}", script.sql());
        if let Err(source) = conn.simple(&batch).await {
            let line = source
                .position
                .and_then(|p| batch.char_indices().nth(p.saturating_sub(1) as usize))
                .map(|(byte, _)| byte)
                .filter(|byte| *byte >= prefix.len() && *byte < prefix.len() + script.sql().len())
                .map(|byte| script.line_at(byte - prefix.len()));
            return Err(Error::Repeatable {
                name: repeatable.name().to_owned(),
                file: script.path().to_owned(),
                line,
                source,
            });
        }
        ran.push(RanRepeatable {
            name: repeatable.name().to_owned(),
            changed,
            duration: started.elapsed(),
        });
    }
    Ok(ran)
}
