//! Reliability runs of the real `migrations` binary against a real PostgreSQL (see
//! `RELIABILITY.md` at the top of the workspace for the figures and how to reproduce them):
//!
//! - [`crash`]: `migrations up` killed with `SIGKILL` at random instants over a mixed set of
//!   transactional and no-transaction migrations; after every kill a rerun (with `repair` when
//!   it reports a failed no-transaction migration) must complete and leave the schema (a
//!   [`migrations_core::Snapshot`]), the data and the history exactly as a clean run does.
//! - [`faults`]: the server restarted (`pg_ctl restart -m immediate`) and the runner's session
//!   killed (`pg_terminate_backend`) in the middle of a migration, on a cluster started here
//!   ([`cluster`]): one clear error line and exit 1, no advisory lock left, rerun completes.
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
    pub fn new(name: &str) -> Summary {
        Summary {
            name: name.to_owned(),
            ..Summary::default()
        }
    }

    pub fn figure(&mut self, label: &str, value: impl ToString) {
        self.figures.push((label.to_owned(), value.to_string()));
    }

    pub fn fail(&mut self, what: String) {
        eprintln!("INCONSISTENCY: {what}");
        self.inconsistencies.push(what);
    }

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
