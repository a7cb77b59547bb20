//! What a run reports: per-migration events while it runs, and a report at the end.

use std::time::Duration;

use crate::plan::{Direction, Drift};

/// Something that happened during a run, given to the `on_event` callback as it happens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Another runner holds the migrations lock; this one polls until it is free.
    WaitingForLock {
        /// The advisory lock key, to find the holder in `pg_locks`.
        key: i64,
        /// Who holds it, read from `pg_locks` and `pg_stat_activity` when the wait began;
        /// `None` when the holder let go in between or could not be read.
        holder: Option<LockHolder>,
    },
    /// Drift allowed by its policy (for example `future` rows), reported once per run.
    Warning(&'a Drift),
    /// A migration starts.
    Started {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: &'a str,
        /// Whether its up or its down script runs.
        direction: Direction,
        /// Whether the script runs outside a transaction, statement by statement.
        no_transaction: bool,
    },
    /// A migration hit `lock_timeout` and will be tried again after a pause.
    Retrying {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: &'a str,
        /// The attempt that just hit `lock_timeout`, from 1.
        attempt: u32,
        /// The pause before the next attempt (doubled at each retry).
        after: Duration,
    },
    /// A migration finished.
    Finished {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: &'a str,
        /// Whether its up or its down script ran.
        direction: Direction,
        /// How long the script took (for a transactional migration, its successful attempt).
        duration: Duration,
    },
}

/// The session that holds the migrations lock, as the server reports it: enough to find the
/// other runner (a deploy, a `psql` session) and to decide whether to wait or end it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// The holder's backend pid (for `pg_terminate_backend`).
    pub pid: i32,
    /// Its `application_name` (`migrations` for the CLI; empty when it set none).
    pub application_name: String,
    /// When its session started, the closest PostgreSQL records to when the lock was taken
    /// (it does not record when an advisory lock was granted). `None` when the server hides
    /// it: another role's session, seen without `pg_read_all_stats`.
    pub since: Option<std::time::SystemTime>,
}

impl LockHolder {
    /// [`since`](Self::since) in RFC 3339, UTC, to the millisecond
    /// (`2025-08-01T00:00:15.123Z`), the spelling of every time the CLI prints.
    pub fn since_rfc3339(&self) -> Option<String> {
        let since = self.since?.duration_since(std::time::UNIX_EPOCH).ok()?;
        let t = migrations_format::version::utc_timestamp(since.as_secs());
        Some(format!(
            "{}-{}-{}T{}:{}:{}.{:03}Z",
            &t[..4],
            &t[4..6],
            &t[6..8],
            &t[8..10],
            &t[10..12],
            &t[12..14],
            since.subsec_millis()
        ))
    }
}

/// `pid 4242, application_name "deploy", session started 2025-08-01T00:00:15.123Z`: how
/// messages name the holder.
impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {}, application_name {:?}",
            self.pid, self.application_name
        )?;
        if let Some(since) = self.since_rfc3339() {
            write!(f, ", session started {since}")?;
        }
        Ok(())
    }
}

/// One migration that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// The migration's version.
    pub version: i64,
    /// The migration's name.
    pub name: String,
    /// Whether it was applied (up) or reverted (down).
    pub direction: Direction,
    /// Whether the script ran outside a transaction, statement by statement.
    pub no_transaction: bool,
    /// How long the script took, as measured by the runner (with `single_transaction`, the
    /// group's time shared equally among its migrations).
    pub duration: Duration,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// What ran, in order.
    pub ran: Vec<Ran>,
    /// Drift that was allowed (for example applied versions newer than this binary knows).
    pub warnings: Vec<Drift>,
    /// The warm-start check found everything applied, so no lock was taken.
    pub up_to_date_fast: bool,
    /// Wall time of the whole run, connecting excluded.
    pub duration: Duration,
    /// The repeatable migrations applied after the versioned ones, in order.
    pub repeatables: Vec<crate::repeatable::RanRepeatable>,
}

impl Report {
    /// Nothing was run.
    pub fn is_empty(&self) -> bool {
        self.ran.is_empty() && self.repeatables.is_empty()
    }
}
