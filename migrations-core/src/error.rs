//! The runner's errors. Each says what happened, to which migration, and what to do.

use std::time::Duration;

use crate::db::DbError;
use crate::plan::{Direction, PlanError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The planner refused: drift, an unknown target, a migration without a down file.
    /// Nothing was run.
    #[error(transparent)]
    Plan(#[from] PlanError),

    /// A migration's SQL failed; its transaction was rolled back (or, for a no-transaction
    /// migration, it is recorded as failed).
    #[error("{direction} {version} {name} failed{}: {source}", statement_context(.statement))]
    Migration {
        version: i64,
        name: String,
        direction: &'static str,
        /// Where: (statement number from 1, statements in all, line) for a no-transaction
        /// script; (0, 0, line) for a transactional one when the server gave a position.
        statement: Option<(usize, usize, u32)>,
        source: DbError,
    },

    /// A transactional migration kept hitting `lock_timeout`.
    #[error(
        "{direction} {version} {name} could not take its locks: lock_timeout expired on each of \
         {attempts} attempts ({source}); another session holds a conflicting lock on the objects \
         it changes; find it in pg_locks / pg_stat_activity, or raise --lock-timeout"
    )]
    LockTimeout {
        version: i64,
        name: String,
        direction: &'static str,
        attempts: u32,
        source: DbError,
    },

    /// Another runner held the migrations lock for longer than `lock_wait`.
    #[error(
        "another migration runner has held the migrations lock (advisory lock {key}) for over \
         {waited:?}; wait for it to finish, or raise --lock-wait"
    )]
    LockWait { key: i64, waited: Duration },

    /// The backend changed during the run: a transaction-pooling proxy is in between.
    #[error(
        "transaction pooler detected: the server session changed during the run (backend pid \
         {before} then {after}), so the migrations lock is not held; use a direct or \
         session-pooled connection (the pooler's server session may keep the lock until the \
         pool reconnects)"
    )]
    PoolerDetected { before: i64, after: i64 },

    /// The history table was written by a newer binary.
    #[error(
        "the history table {table} has format {found}, newer than this binary understands \
         ({supported}); run a newer migrations binary"
    )]
    NewerHistoryFormat {
        table: String,
        found: u32,
        supported: u32,
    },

    /// A table with the history table's name exists but is not ours.
    #[error(
        "{table} exists but is not a migrations history table; choose another --schema or \
         --table"
    )]
    NotAHistoryTable { table: String },

    /// The history table could not be created.
    #[error(
        "cannot create the history table {table}: {source}; grant the right \
         (`GRANT CREATE ON SCHEMA {schema} TO <role>`) or choose a schema the role owns with \
         --schema"
    )]
    CreateHistory {
        table: String,
        schema: String,
        source: DbError,
    },

    /// A down script holds a statement PostgreSQL refuses inside a transaction.
    #[error(
        "{direction} {version} {name}: line {line}: {what} cannot run inside a transaction \
         block; add `-- migrations:no-transaction` as the first line of the file"
    )]
    RefusedInTransaction {
        version: i64,
        name: String,
        direction: &'static str,
        line: u32,
        what: String,
    },

    /// Grouped mode cannot hold a no-transaction migration.
    #[error(
        "{version} {name} runs outside a transaction, so it cannot be part of a single \
         transaction; run without --single-transaction, or apply up to the version before it"
    )]
    GroupedNoTransaction { version: i64, name: String },

    /// Another tool's history could not be adopted as it is; nothing was recorded.
    #[error("cannot adopt {table}; nothing was recorded:{}", .problems.iter().map(|p| format!("\n  {p}")).collect::<String>())]
    Adopt {
        table: String,
        problems: Vec<String>,
    },

    /// The runner could not connect (only when it connects itself: `Migrator::connect_and_run`).
    #[cfg(feature = "connect")]
    #[error(transparent)]
    Connect(#[from] crate::connect::ConnectError),

    /// A bookkeeping query failed.
    #[error("{context}: {source}")]
    Db { context: String, source: DbError },
}

fn statement_context(statement: &Option<(usize, usize, u32)>) -> String {
    match statement {
        // A transactional script is one query: only the line is known.
        Some((0, _, line)) => format!(" at line {line}"),
        Some((n, total, line)) => format!(" at statement {n} of {total} (line {line})"),
        None => String::new(),
    }
}

impl Error {
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(DbError) -> Error {
        let context = context.into();
        move |source| Error::Db { context, source }
    }

    pub(crate) fn direction_str(direction: Direction) -> &'static str {
        direction.as_str()
    }

    /// The drift refusal, when this is one (the CLI exits 3 for it).
    pub fn is_drift(&self) -> bool {
        matches!(self, Error::Plan(PlanError::Drift(_)))
    }
}
