//! What a run reports: per-migration events while it runs, and a report at the end.

use std::time::Duration;

use crate::plan::{Direction, Drift};

/// Something that happened during a run, given to the `on_event` callback as it happens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Another runner holds the migrations lock; this one polls until it is free.
    WaitingForLock { key: i64 },
    /// Drift allowed by its policy (for example `future` rows), reported once per run.
    Warning(&'a Drift),
    /// A migration starts.
    Started {
        version: i64,
        name: &'a str,
        direction: Direction,
        no_transaction: bool,
    },
    /// A migration hit `lock_timeout` and will be tried again after a pause.
    Retrying {
        version: i64,
        name: &'a str,
        attempt: u32,
        after: Duration,
    },
    /// A migration finished.
    Finished {
        version: i64,
        name: &'a str,
        direction: Direction,
        duration: Duration,
    },
}

/// One migration that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub version: i64,
    pub name: String,
    pub direction: Direction,
    pub no_transaction: bool,
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
