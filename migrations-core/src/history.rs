//! What the history table says: one row per version that is applied, running or failed.

use std::fmt;

/// The state of a history row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A no-transaction migration is running, or its runner died while it ran.
    Running,
    Applied,
    /// A no-transaction migration failed part-way; `repair` clears it.
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Applied => "applied",
            State::Failed => "failed",
        }
    }

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
    pub version: i64,
    /// The version's digits as written (dashes dropped), so rows unknown to this binary still
    /// sort by the rule of SPEC section 1.
    pub version_digits: String,
    pub name: String,
    /// SHA-256 of the up file when it was applied.
    pub checksum: String,
    pub no_transaction: bool,
    pub state: State,
    /// When it was applied, as the server prints a `timestamptz`.
    pub applied_at: String,
    pub execution_ms: Option<i64>,
    pub applied_by: String,
    /// No-transaction migrations: statements done and in all.
    pub statements_done: Option<i32>,
    pub statements_total: Option<i32>,
    /// The server's error, for a failed migration.
    pub error: Option<String>,
    /// Invalid indexes left by a failed `CONCURRENTLY` statement, which `repair` drops.
    pub invalid_indexes: Vec<String>,
}

/// One row of the append-only audit table: every up, down, repair and baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: i64,
    /// When, as the server prints a `timestamptz`.
    pub at: String,
    /// `current_user` of the session that did it.
    pub by: String,
    /// `up`, `down`, `up-failed`, `down-failed`, `repair`, `baseline`, ...
    pub event: String,
    pub version: Option<i64>,
    pub name: Option<String>,
    pub checksum: Option<String>,
    pub detail: Option<String>,
}
