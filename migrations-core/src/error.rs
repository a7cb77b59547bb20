//! The runner's errors. Each says what happened, to which migration, and what to do.

use std::time::Duration;

use crate::db::DbError;
use crate::plan::{Direction, PlanError};

/// Why a run (or another operation of [`Migrator`](crate::Migrator)) failed. Each message says
/// what happened, to which migration, and what to do; [`Error::is_drift`] picks out the drift
/// refusal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The planner refused: drift, an unknown target, a migration without a down file.
    /// Nothing was run.
    #[error(transparent)]
    Plan(#[from] PlanError),

    /// A migration's SQL failed; its transaction was rolled back (or, for a no-transaction
    /// migration, it is recorded as failed).
    ///
    /// `up 20240101000000 create_users failed at statement 3 of 5
    /// (migrations/20240101000000_create_users/up.sql:12): relation "users" already exists
    /// (SQLSTATE 42P07)`
    #[error(
        "{} {spelling} {name} failed{}: {source}{}",
        .direction.as_str(),
        location(.file, .statement),
        .note.as_deref().map(|n| format!("; {n}")).unwrap_or_default()
    )]
    Migration {
        /// The migration's version.
        version: i64,
        /// The version as the migration's file name writes it (`2025-08-01-000015`, `0004`):
        /// the message shows this one.
        spelling: String,
        /// The migration's name.
        name: String,
        /// Which script was running (shown as `up` or `down`).
        direction: Direction,
        /// The script's file, as the user knows it (see [`Script::path`](crate::Script::path)).
        file: String,
        /// The statement that failed; `None` when the failure came after the script's last
        /// statement (its bookkeeping, or a deferred constraint checked at `COMMIT`), or when
        /// the connection was lost during a transactional script (which statement was running
        /// died with the session).
        statement: Option<Location>,
        /// The server's error.
        source: DbError,
        /// What the runner adds to the server's error: that the single transaction of several
        /// migrations was rolled back, that the file's own transaction block was, that an
        /// invalid index was left behind, or, when there is no `statement`, why.
        note: Option<String>,
    },

    /// A migration kept hitting `lock_timeout`.
    #[error(
        "{} {spelling} {name} could not take its locks: lock_timeout expired on each of \
         {attempts} attempts{}: {source}; another session holds a conflicting lock on the \
         objects it changes; find it in pg_locks / pg_stat_activity, or raise --lock-timeout",
        .direction.as_str(),
        statement_at(.file, .statement)
    )]
    LockTimeout {
        /// The migration's version.
        version: i64,
        /// The version as the migration's file name writes it: the message shows this one.
        spelling: String,
        /// The migration's name.
        name: String,
        /// Which script was running (shown as `up` or `down`).
        direction: Direction,
        /// The script's file, as the user knows it.
        file: String,
        /// The statement that waited, when known.
        statement: Option<Location>,
        /// How many times it was tried (the first run and the retries).
        attempts: u32,
        /// The last attempt's error (SQLSTATE 55P03).
        source: DbError,
    },

    /// Another runner held the migrations lock for longer than `lock_wait`.
    #[error(
        "another migration runner{} has held the migrations lock (advisory lock {key}) for \
         over {waited:?}; wait for it to finish, or raise --lock-wait",
        .holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    LockWait {
        /// The advisory lock key (see [`Names::lock_key`](crate::Names::lock_key)), to find
        /// the holder in `pg_locks`.
        key: i64,
        /// How long this runner waited before giving up.
        waited: Duration,
        /// Who held the lock when the wait ended (`None` if it was let go meanwhile).
        holder: Option<crate::report::LockHolder>,
    },

    /// The backend changed during the run: a transaction-pooling proxy is in between.
    #[error(
        "transaction pooler detected: the server session changed during the run (backend pid \
         {before} then {after}), so the migrations lock is not held; use a direct or \
         session-pooled connection (the pooler's server session may keep the lock until the \
         pool reconnects)"
    )]
    PoolerDetected {
        /// The backend pid at the start of the run.
        before: i64,
        /// The backend pid seen later in the same run.
        after: i64,
    },

    /// The history table was written by a newer binary.
    #[error(
        "the history table {table} has format {found}, newer than this release of migrations \
         understands ({supported}); upgrade the migrations CLI, or the service's \
         migrations-core"
    )]
    NewerHistoryFormat {
        /// The history table, schema-qualified.
        table: String,
        /// The format recorded in the table's comment.
        found: u32,
        /// The newest format this binary understands.
        supported: u32,
    },

    /// A table with the history table's name exists but is not ours.
    #[error(
        "{table} exists but is not a migrations history table; choose another --schema or \
         --table"
    )]
    NotAHistoryTable {
        /// The table, schema-qualified.
        table: String,
    },

    /// `wait_until_migrated` timed out with migrations still not applied.
    #[error(
        "the database is not migrated yet after {}: still pending: {}; the runner (`migrations \
         up`, or the service that migrates) has not finished, or is not running",
        crate::error::seconds(*.waited),
        .shown.join(", ")
    )]
    WaitTimeout {
        /// How long it waited.
        waited: std::time::Duration,
        /// The migrations still not applied, in version order: version and name.
        pending: Vec<(i64, String)>,
        /// The same as people read them: the version as its file writes it
        /// (`2025-08-01-000015 create_users`, `0004 index`), then the name.
        shown: Vec<String>,
    },

    /// The history table of an older format could not be upgraded (under the lock, before
    /// anything ran).
    #[error(
        "cannot upgrade the history table {table} from format {from} to format {to}: {source}; \
         the upgrade adds columns, so run it once as the table's owner (for example `migrations \
         up` with the owner's connection)"
    )]
    UpgradeHistory {
        /// The history table, schema-qualified.
        table: String,
        /// The format found.
        from: u32,
        /// The format this binary writes.
        to: u32,
        /// The server's error (often insufficient_privilege: not the table's owner).
        source: DbError,
    },

    /// The history table could not be created.
    #[error(
        "cannot create the history table {table}: {source}; grant the right \
         (`GRANT CREATE ON SCHEMA {schema} TO <role>`) or choose a schema the role owns with \
         --schema"
    )]
    CreateHistory {
        /// The history table, schema-qualified.
        table: String,
        /// The schema it was to be created in (the one the role needs `CREATE` on).
        schema: String,
        /// The server's error (often insufficient_privilege).
        source: DbError,
    },

    /// The history table's schema cannot be used by this role (`USAGE` on it is missing), so
    /// the history could not even be looked for.
    #[error(
        "cannot look for the history table {table}: {source}; grant the right \
         (`GRANT USAGE ON SCHEMA {schema} TO <role>`, and `CREATE` on it to create the table) or \
         choose a schema the role can use with --schema"
    )]
    HistorySchemaAccess {
        /// The history table, schema-qualified.
        table: String,
        /// Its schema, quoted as SQL writes it.
        schema: String,
        /// The server's error (insufficient_privilege).
        source: DbError,
    },

    /// A down script that runs in a transaction holds a statement PostgreSQL refuses inside
    /// one, or transaction control (`COMMIT`, ...) that would break it.
    #[error(
        "{} {spelling} {name}: line {line}: {}",
        .direction.as_str(),
        refusal_text(.what)
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
        /// The construct, for example `CREATE INDEX CONCURRENTLY`.
        what: String,
    },

    /// Grouped mode cannot hold a no-transaction migration.
    #[error(
        "{spelling} {name} runs outside a transaction, so it cannot be part of a single \
         transaction; run without --single-transaction, or apply up to the version before it"
    )]
    GroupedNoTransaction {
        /// The no-transaction migration's version.
        version: i64,
        /// The version as the migration's file name writes it: the message shows this one.
        spelling: String,
        /// The no-transaction migration's name.
        name: String,
    },

    /// Another tool's history could not be adopted as it is; nothing was recorded.
    #[error("cannot adopt {table}; nothing was recorded:{}", .problems.iter().map(|p| format!("\n  {p}")).collect::<String>())]
    Adopt {
        /// The other tool's history table (`__diesel_schema_migrations`, `_sqlx_migrations`).
        table: String,
        /// One line per row that could not be adopted, with the reason.
        problems: Vec<String>,
    },

    /// The runner could not connect (only when it connects itself: `Migrator::connect_and_run`).
    #[cfg(feature = "connect")]
    #[error(transparent)]
    Connect(#[from] crate::connect::ConnectError),

    /// A placeholder has no value, or a value cannot go where its placeholder sits (see
    /// [`Migrator::placeholder`](crate::Migrator::placeholder)); each problem names its file
    /// and line. Nothing was run.
    #[error("{0}")]
    Placeholder(migrations_format::LoadError),

    /// A repeatable migration's SQL failed; its transaction was rolled back (the versioned
    /// migrations and the repeatables before it stay applied).
    #[error(
        "repeatable {name} failed ({file}{}): {source}; fix the file and run up again",
        .line.map(|l| format!(":{l}")).unwrap_or_default()
    )]
    Repeatable {
        /// The repeatable's name.
        name: String,
        /// Its file, as the user knows it.
        file: String,
        /// The line the server's error points at, when it gave a position.
        line: Option<u32>,
        /// The server's error.
        source: DbError,
    },

    /// A bookkeeping query failed.
    #[error("{context}: {source}")]
    Db {
        /// What the runner was doing, for example `updating the history`.
        context: String,
        /// The server's (or the connection's) error.
        source: DbError,
    },
}

/// Where in a script a statement is: its number among the script's statements and its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based number of the statement in the script.
    pub number: usize,
    /// How many statements the script holds.
    pub total: usize,
    /// 1-based line of the file: where the statement starts, or, for a syntax error, where the
    /// server found it.
    pub line: u32,
}

fn location(file: &str, statement: &Option<Location>) -> String {
    match statement {
        Some(_) => statement_at(file, statement),
        // After the last statement, or the session was lost: the note says which.
        None => format!(" ({file})"),
    }
}

fn statement_at(file: &str, statement: &Option<Location>) -> String {
    match statement {
        Some(Location {
            number,
            total,
            line,
        }) => format!(" at statement {number} of {total} ({file}:{line})"),
        None => String::new(),
    }
}

/// Why the statement `what` (a name from the loader, such as `CREATE INDEX CONCURRENTLY` or
/// `COMMIT`) cannot run in the transaction the runner wraps its file in, and the fix.
pub(crate) fn refusal_text(what: &str) -> String {
    const MARK: &str = "add `-- migrations:no-transaction` as the first line of the file";
    match migrations_format::sql::TransactionControlKind::from_name(what) {
        Some(kind) => kind.refusal(MARK),
        None => format!("{what} cannot run inside a transaction block; {MARK}"),
    }
}

impl Error {
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(DbError) -> Error {
        let context = context.into();
        move |source| Error::Db { context, source }
    }

    /// The drift refusal, when this is one (the CLI exits 3 for it).
    pub fn is_drift(&self) -> bool {
        matches!(self, Error::Plan(PlanError::Drift(_)))
    }
}

/// The version of `m` as its file name (or diesel's folder name) writes it (`2025-08-01-000015`,
/// `0004`), the spelling people read in every message (docs/cli.md, "Output formats"); its
/// digits when the path does not say (a down stored in the history, a file named otherwise).
pub(crate) fn spelling(m: &crate::Migration) -> String {
    m.file_spelling()
        .unwrap_or_else(|| m.version_digits().to_owned())
}

/// A duration for messages: `1.5s`, `250ms`.
fn seconds(d: std::time::Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
