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
}

impl Report {
    /// Nothing was run.
    pub fn is_empty(&self) -> bool {
        self.ran.is_empty()
    }
}
