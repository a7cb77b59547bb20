//! What the history table says: one row per version that is applied, running or failed.

use std::fmt;

/// The state of a history row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// A no-transaction migration is running, or its runner died while it ran.
    Running,
    /// The migration is applied (and, for a transactional one, committed with this row).
    Applied,
    /// A no-transaction migration failed part-way; `repair` clears it.
    Failed,
}

impl State {
    /// `"running"`, `"applied"` or `"failed"`, as stored in the history table's `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Applied => "applied",
            State::Failed => "failed",
        }
    }

    /// Reads a `state` column value; `None` for anything but the three states.
    pub fn parse(text: &str) -> Option<State> {
        match text {
            "running" => Some(State::Running),
            "applied" => Some(State::Applied),
            "failed" => Some(State::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the history table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// The version's value (the table's primary key).
    pub version: i64,
    /// The version's digits as written (dashes dropped), so rows unknown to this binary still
    /// sort by the rule of SPEC section 1.
    pub version_digits: String,
    /// The migration's name when it was applied.
    pub name: String,
    /// SHA-256 of the up file when it was applied.
    pub checksum: String,
    /// Whether the up file ran outside a transaction when it was applied (a change is drift).
    pub no_transaction: bool,
    /// Applied, or (no-transaction migrations only) running or failed.
    pub state: State,
    /// When it was applied, in RFC 3339, UTC, to the millisecond (`2025-08-01T00:00:15.123Z`).
    pub applied_at: String,
    /// How long the up script took, in milliseconds (0 for a baselined or adopted row and
    /// while a no-transaction migration runs); `None` when the column is NULL.
    pub execution_ms: Option<i64>,
    /// `current_user` of the session that applied it.
    pub applied_by: String,
    /// No-transaction migrations: statements done and in all.
    pub statements_done: Option<i32>,
    /// No-transaction migrations: how many statements the script has (`None` for a
    /// transactional migration).
    pub statements_total: Option<i32>,
    /// The server's error, for a failed migration.
    pub error: Option<String>,
    /// Invalid indexes left by a failed `CONCURRENTLY` statement, which `repair` drops.
    pub invalid_indexes: Vec<String>,
    /// Whether the migration was `-- migrations:breaking` when applied: a binary that lacks it
    /// refuses to run (history format 2; `false` for rows of format 1).
    pub breaking: bool,
    /// The stored down script, when the migration had a down file when applied (history
    /// format 2): its checksum and whether it runs outside a transaction. The text itself is
    /// read only to run it (`down --stored-downs`). `None` for a row applied before stored
    /// downs existed, or without a down file.
    pub stored_down: Option<StoredDown>,
}

/// What the history keeps of a migration's down file, stored when the migration was applied,
/// so a binary that no longer has the file can still revert it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDown {
    /// SHA-256 of the normalised down file when the migration was applied.
    pub checksum: String,
    /// Whether the down file runs outside a transaction.
    pub no_transaction: bool,
}

/// One row of the append-only audit table: every up, down, repair and baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Increasing identity: the order the events happened in.
    pub id: i64,
    /// When, in RFC 3339, UTC, to the millisecond (`2025-08-01T00:00:15.123Z`).
    pub at: String,
    /// `current_user` of the session that did it.
    pub by: String,
    /// `up`, `down`, `up-failed`, `down-failed`, `repair`, `baseline`, ...
    pub event: String,
    /// The migration concerned; `None` for an event about no single migration.
    pub version: Option<i64>,
    /// The migration's name, when the event concerns one.
    pub name: Option<String>,
    /// The checksum of the script that ran (up or down), when there is one.
    pub checksum: Option<String>,
    /// Free text: the error of a failed step, what a repair dropped, where a row was adopted
    /// from, ...
    pub detail: Option<String>,
}
