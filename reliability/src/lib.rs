#![warn(missing_docs)]
//! Reliability runs of the real `migrations` binary against a real PostgreSQL (see
//! `RELIABILITY.md` at the top of the workspace for the figures and how to reproduce them):
//!
//! - [`crash`]: `up`, `up --single-transaction`, `down --all`, `redo` and `repair` killed with
//!   `SIGKILL` at random instants over a mixed set of transactional and no-transaction
//!   migrations; after every kill nothing is half-applied (the state equals a clean run's at
//!   the versions the history records), no lock is left, and a rerun (with `repair` when the
//!   history holds a failed no-transaction migration) must complete and leave the schema (a
//!   [`migrations_core::Snapshot`]), the data and the history exactly as a clean run does.
//! - [`faults`]: the server restarted (`pg_ctl restart -m immediate`) and the runner's session
//!   killed (`pg_terminate_backend`) in the middle of a migration, on a cluster started here
//!   ([`cluster`]): one clear error line and exit 1, no advisory lock left, rerun completes.
//! - [`network`]: the connection cut or stalled mid-statement by a proxy of our own
//!   ([`proxy`]), with the same expectations, and how long a stalled runner takes to end.
//! - [`disk`]: the data directory on a small tmpfs that fills up during a migration (root
//!   only): one clear error (SQLSTATE 53100), nothing half-applied, rerun completes once the
//!   space is freed.
//! - [`concurrency`]: many `migrations up` processes at once on one database: every migration
//!   applied exactly once, every process exits 0.
//!
//! The heavy versions run from the `reliability` binary (not in CI); `tests/smoke.rs` runs
//! small versions in the normal test suite.

pub mod bin;
pub mod check;
pub mod cluster;
pub mod concurrency;
pub mod crash;
pub mod disk;
pub mod faults;
pub mod network;
pub mod proxy;
pub mod rng;
pub mod sets;

/// The outcome of one reliability run: figures, and every inconsistency found (empty when
/// everything held).
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// What was run, for example `crash loop`.
    pub name: String,
    /// Figures as `(label, value)`, in print order.
    pub figures: Vec<(String, String)>,
    /// Each inconsistency or unexpected outcome, described in one line.
    pub inconsistencies: Vec<String>,
}

impl Summary {
    /// An empty summary of the run called `name`.
    pub fn new(name: &str) -> Summary {
        Summary {
            name: name.to_owned(),
            ..Summary::default()
        }
    }

    /// Adds a figure.
    pub fn figure(&mut self, label: &str, value: impl ToString) {
        self.figures.push((label.to_owned(), value.to_string()));
    }

    /// Records an inconsistency (and prints it at once on stderr).
    pub fn fail(&mut self, what: String) {
        eprintln!("INCONSISTENCY: {what}");
        self.inconsistencies.push(what);
    }

    /// Prints the figures and the inconsistencies.
    pub fn print(&self) {
        println!("== {}", self.name);
        for (label, value) in &self.figures {
            println!("  {label}: {value}");
        }
        println!("  inconsistencies: {}", self.inconsistencies.len());
        for i in &self.inconsistencies {
            println!("    - {i}");
        }
    }
}
