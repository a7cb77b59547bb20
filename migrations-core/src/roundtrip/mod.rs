//! The round trip (SPEC section 7): prove that every down undoes its up, on a scratch database.
//!
//! For each migration in order: snapshot S0, up, snapshot S1, down, expect S0, up again,
//! expect S1. Ups and downs go through the engine ([`Migrator`]), exactly as `migrations up`
//! and `migrations down` run them; snapshots are [`Snapshot`]s.
//!
//! ```no_run
//! use migrations_core::{embed_migrations, roundtrip, Migrations};
//! static MIGRATIONS: Migrations = embed_migrations!("tests/fixtures/doc");
//!
//! #[test]
//! fn every_down_undoes_its_up() {
//!     // A server where the test may create databases (it does not touch the one named).
//!     let url = std::env::var("DATABASE_URL").unwrap();
//!     roundtrip::check(&url, &MIGRATIONS, roundtrip::Options::new()).unwrap().assert_passed();
//! }
//! ```
//!
//! # The scratch database
//!
//! `CREATE DATABASE` with a unique name (`migrations_test_<pid>_<time>_<n>`) on the server of
//! the given connection (from its default template, as the real database was, unless
//! [`Options::template`] says otherwise), dropped (`DROP DATABASE ... WITH (FORCE)`) at the end:
//! on success, on error, and when a panic unwinds through the check (a guard's `Drop`). For
//! Ctrl-C, pass an [`Interrupt`] and trigger it from a signal handler: the query running on the
//! scratch database is cancelled, the check stops at once and drops the database before
//! returning [`Error::Interrupted`] (the `migrations test` command does this). A process killed
//! outright (`SIGKILL`) leaves its scratch database behind; it is recognisable by its name.
//!
//! # When something fails
//!
//! - The **up** fails: reported, and the check stops there (nothing after it can be applied);
//!   the migrations after it are listed as not checked.
//! - The **down** fails: reported with the server's error. A transactional down was rolled back,
//!   so the database is still in state S1 and the check goes on with the next migration. A
//!   no-transaction down may have stopped part-way (and is recorded as failed), so the check
//!   starts over on a fresh scratch database, applies every migration up to this one without
//!   checking them, and goes on from there.
//! - The down leaves **differences** (S0 not restored), or the second up fails or leaves
//!   differences (S1 not restored): reported object by object. When the database is not in
//!   state S1 afterwards, the check starts over as above, so each later migration is checked on
//!   the schema the real chain gives it.
//! - A migration without a down is applied and reported as not checked (`skip`).
//!
//! The sync API works on `postgres::Client`, which cannot run inside a Tokio runtime: in a
//! `#[tokio::test]`, call it through `tokio::task::spawn_blocking`.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod data;

pub use data::{DataChange, ObservedLock, Unfilled};

use crate::db::{block_on, DbError, SyncConn};
use crate::embedded::{Migration, Migrations};
use crate::migrator::Migrator;
use crate::plan::{DownTarget, Operation};
use crate::snapshot::{Change, Difference, Snapshot};
use crate::sql::{quote_ident, Names};

/// How the round trip runs. Built with [`Options::new`] and its methods.
pub struct Options<'a> {
    from: Option<i64>,
    to: Option<i64>,
    schema: Option<String>,
    table: Option<String>,
    search_path: Option<String>,
    lock_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
    template: Option<String>,
    ignore_column_order: bool,
    schema_only: bool,
    rows: usize,
    max_lock: Option<String>,
    interrupt: Option<Interrupt>,
    on_result: Option<ResultCallback<'a>>,
}

type ResultCallback<'a> = Box<dyn FnMut(&MigrationCheck) + 'a>;

impl Default for Options<'_> {
    fn default() -> Self {
        Options::new()
    }
}

impl fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("schema", &self.schema)
            .field("table", &self.table)
            .field("search_path", &self.search_path)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl<'a> Options<'a> {
    /// Every migration; the history tables where the migrations' `[run]` settings put them
    /// (default `public.migrations_history`).
    pub fn new() -> Options<'a> {
        Options {
            from: None,
            to: None,
            schema: None,
            table: None,
            search_path: None,
            lock_timeout: None,
            statement_timeout: None,
            template: None,
            ignore_column_order: false,
            schema_only: false,
            rows: 3,
            max_lock: None,
            interrupt: None,
            on_result: None,
        }
    }

    /// Check from this version on (it is checked); the migrations before it are applied
    /// without a check. It must be one of the set's versions.
    pub fn from(mut self, version: i64) -> Self {
        self.from = Some(version);
        self
    }

    /// Check up to this version (it is checked); the migrations after it are not applied.
    pub fn to(mut self, version: i64) -> Self {
        self.to = Some(version);
        self
    }

    /// Schema of the history tables (left out of the snapshots).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Name of the history table (it and `<table>_audit` are left out of the snapshots).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }

    /// `search_path` for the migrations' SQL (as [`Migrator::search_path`]).
    pub fn search_path(mut self, path: impl Into<String>) -> Self {
        self.search_path = Some(path.into());
        self
    }

    /// `lock_timeout` for each migration (as [`Migrator::lock_timeout`]; default: the
    /// migrations' `[run]` settings, else 5s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// `statement_timeout` for each migration (as [`Migrator::statement_timeout`]; zero means
    /// none, the default unless the `[run]` settings say otherwise).
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// The template of the scratch database (default: the server's, `template1`).
    pub fn template(mut self, template: impl Into<String>) -> Self {
        self.template = Some(template.into());
        self
    }

    /// Do not report columns that came back in another order (a down that adds a dropped
    /// column again puts it last; PostgreSQL cannot put it back in place without rebuilding
    /// the table). Off by default: `SELECT *` and `INSERT` without a column list see the order.
    pub fn ignore_column_order(mut self, ignore: bool) -> Self {
        self.ignore_column_order = ignore;
        self
    }

    /// Check the schema only: no generated rows, no data comparison, no lock observation (the
    /// CLI's `--schema-only`). Off by default.
    pub fn schema_only(mut self, schema_only: bool) -> Self {
        self.schema_only = schema_only;
        self
    }

    /// How many rows each empty table is given before a migration (default 3).
    pub fn rows(mut self, rows: usize) -> Self {
        self.rows = rows;
        self
    }

    /// Fail a migration whose up takes a lock stronger than `mode` on a table that existed
    /// before it (`ACCESS EXCLUSIVE`, `share update exclusive`, `RowExclusiveLock`... any
    /// spelling of PostgreSQL's eight table lock modes; the CLI's `--max-lock`). A mode that is
    /// none of them makes the check return [`Error::LockMode`].
    pub fn max_lock(mut self, mode: impl Into<String>) -> Self {
        self.max_lock = Some(mode.into());
        self
    }

    fn compare(&self, expected: &Snapshot, actual: &Snapshot) -> Vec<Difference> {
        let mut differences = expected.diff(actual);
        if self.ignore_column_order {
            differences.retain(|d| !matches!(d.change, Change::ColumnOrder { .. }));
        }
        differences
    }

    /// Stops the check (dropping the scratch database) when triggered, e.g. on Ctrl-C.
    pub fn interrupt(mut self, interrupt: &Interrupt) -> Self {
        self.interrupt = Some(interrupt.clone());
        self
    }

    /// Called with each migration's result as soon as it is known (for live output).
    pub fn on_result(mut self, callback: impl FnMut(&MigrationCheck) + 'a) -> Self {
        self.on_result = Some(Box::new(callback));
        self
    }

    /// Where the history tables are: these options, else the migrations' `[run]` settings,
    /// else the defaults (as `Migrator::new` decides).
    fn names(&self, migrations: &Migrations) -> Names {
        let defaults = migrations.run_defaults();
        let mut names = Names::default();
        if let Some(schema) = self.schema.as_deref().or(defaults.schema.as_deref()) {
            names.schema = schema.to_owned();
        }
        if let Some(table) = self.table.as_deref().or(defaults.table.as_deref()) {
            names.table = table.to_owned();
        }
        names
    }

    fn migrator<'m>(&self, migrations: &'m Migrations) -> Migrator<'m> {
        let mut migrator = Migrator::new(migrations);
        if let Some(schema) = &self.schema {
            migrator = migrator.schema(schema.clone());
        }
        if let Some(table) = &self.table {
            migrator = migrator.table(table.clone());
        }
        if let Some(path) = &self.search_path {
            migrator = migrator.search_path(path.clone());
        }
        if let Some(t) = self.lock_timeout {
            migrator = migrator.lock_timeout(t);
        }
        if let Some(t) = self.statement_timeout {
            migrator = migrator.statement_timeout(t);
        }
        // The check runs every down, lossy ones included: it reports them as acknowledged.
        // And every up, post-deployment ones included (`-- migrations:phase=post`).
        migrator
            .allow_data_loss(true)
            .phase(crate::plan::Phase::All)
    }

    /// What the lock probe's transaction sets first, as the engine's step would.
    fn session_sql(&self) -> String {
        let mut sql = String::new();
        if let Some(path) = &self.search_path {
            sql.push_str(&format!("SET LOCAL search_path TO {path};\n"));
        }
        let timeout = self.lock_timeout.unwrap_or(Duration::from_secs(5));
        sql.push_str(&format!(
            "SET LOCAL lock_timeout = '{}ms';\n",
            timeout.as_millis().max(1)
        ));
        sql
    }
}

/// Stops a running check from another thread (a Ctrl-C handler): [`Interrupt::trigger`]
/// cancels the query running on the scratch database and makes the check return
/// [`Error::Interrupted`] after dropping the database.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<InterruptState>);

#[derive(Default)]
struct InterruptState {
    triggered: AtomicBool,
    cancel: Mutex<Option<postgres::CancelToken>>,
}

impl fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interrupt")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

impl Interrupt {
    /// A handle not yet triggered; clone it into the signal handler and pass it to
    /// [`Options::interrupt`].
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Asks the check to stop; cancels the scratch database's running query (best effort: the
    /// cancel request goes without TLS, as libpq's does when it cannot).
    pub fn trigger(&self) {
        self.0.triggered.store(true, Ordering::SeqCst);
        let token = self.0.cancel.lock().ok().and_then(|t| t.clone());
        if let Some(token) = token {
            if let Err(e) = token.cancel_query(postgres::NoTls) {
                log::warn!("could not cancel the scratch database's query: {e}");
            }
        }
    }

    /// Whether [`Interrupt::trigger`] was called (on this handle or a clone).
    pub fn is_triggered(&self) -> bool {
        self.0.triggered.load(Ordering::SeqCst)
    }

    fn set_token(&self, token: Option<postgres::CancelToken>) {
        if let Ok(mut slot) = self.0.cancel.lock() {
            *slot = token;
        }
    }
}

/// Why a check could not be carried out (as opposed to a migration failing it, which is in
/// the [`RoundTripReport`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection string is invalid, or connecting to the server or to the scratch database
    /// failed.
    #[error("cannot connect to {what}: {message}")]
    Connect {
        /// `the server`, or `the scratch database <name>`.
        what: String,
        /// The client library's error.
        message: String,
    },
    /// `CREATE DATABASE` failed, usually because the role lacks `CREATEDB`.
    #[error(
        "cannot create the scratch database {name}: {source}; the role needs CREATEDB (or give \
         a server where it has it)"
    )]
    CreateDatabase {
        /// The scratch database's name.
        name: String,
        /// The server's error.
        source: DbError,
    },
    /// A schema snapshot of the scratch database could not be read.
    #[error("cannot read the schema of the scratch database {database}: {source}")]
    Snapshot {
        /// The scratch database's name.
        database: String,
        /// The server's error.
        source: DbError,
    },
    /// [`Options::from`] or [`Options::to`] names a version (carried) that is not in the set.
    #[error("version {0} is not one of the migrations")]
    UnknownVersion(i64),
    /// Applying the migrations below [`Options::from`], which are not checked, failed.
    #[error("applying the migrations before the checked range failed: {0}")]
    Setup(Box<crate::Error>),
    /// The runner itself failed on a migration (for example a bookkeeping query), as opposed
    /// to the migration's SQL failing, which the report records.
    #[error("the round trip of {version} {name} could not run: {source}")]
    Run {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: String,
        /// The runner's error.
        source: Box<crate::Error>,
    },
    /// The [`Interrupt`] was triggered; the scratch database (named) was dropped.
    #[error("interrupted; the scratch database {0} was dropped")]
    Interrupted(String),
    /// [`Options::max_lock`] names no table lock mode (the text given).
    #[error(
        "`{0}` is not a table lock mode; give one of ACCESS SHARE, ROW SHARE, ROW EXCLUSIVE, \
         SHARE UPDATE EXCLUSIVE, SHARE, SHARE ROW EXCLUSIVE, EXCLUSIVE, ACCESS EXCLUSIVE"
    )]
    LockMode(String),
    /// Reading or filling the scratch database's tables failed (not a migration's fault).
    #[error("cannot read or fill the tables of the scratch database {database}: {source}")]
    Data {
        /// The scratch database's name.
        database: String,
        /// The server's error.
        source: DbError,
    },
}

/// One migration's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationCheck {
    /// The migration's version.
    pub version: i64,
    /// The migration's name.
    pub name: String,
    /// What the round trip found; [`Outcome::is_failure`] says whether it fails the check.
    pub outcome: Outcome,
    /// Up, down, up and the snapshots.
    pub duration: Duration,
    /// Values of columns that kept their name and type, changed by the up (a truncation, a
    /// rounding cast, deleted rows): warnings, so a lossy up is a decision.
    pub lossy_up: Vec<DataChange>,
    /// Tables that could not be given rows before this migration, with why (each table once
    /// per check: where it is first found).
    pub unfilled: Vec<Unfilled>,
    /// The strongest lock the up took on each table that existed before it (transactional
    /// ups; empty for a no-transaction up and with [`Options::schema_only`]).
    pub locks: Vec<ObservedLock>,
    /// The locks stronger than [`Options::max_lock`] (these fail the migration).
    pub locks_over: Vec<ObservedLock>,
    /// The up failed on the generated rows (the server's error) and passed once the tables
    /// were emptied: a warning (it fails on a database with rows too), and this migration's
    /// data was not checked.
    pub fails_with_rows: Option<String>,
}

impl MigrationCheck {
    /// Whether this migration fails the check: its outcome, or a lock over the maximum.
    pub fn is_failure(&self) -> bool {
        self.outcome.is_failure() || !self.locks_over.is_empty()
    }
}

/// What the round trip of one migration found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The down restored S0 and the second up restored S1.
    Passed,
    /// No down file: applied, not checked.
    NoDown,
    /// The up itself failed (the check stops here).
    UpFailed {
        /// The server's error, with the statement and line where known.
        error: String,
    },
    /// The down failed, with the server's error.
    DownFailed {
        /// The server's error, with the statement and line where known.
        error: String,
    },
    /// The schema came back, but the down did not restore the rows that were there before the
    /// up: "down loses data".
    DataLoss {
        /// Per table and column, how many rows differ, with an example.
        changes: Vec<DataChange>,
    },
    /// As [`Outcome::DataLoss`], but the down file says `-- migrations:lossy-down <reason>`:
    /// reported, not a failure.
    AcknowledgedLoss {
        /// The directive's reason.
        reason: String,
        /// What the down did not restore.
        changes: Vec<DataChange>,
    },
    /// The down ran but did not restore S0 (`after_down`), or the second up failed
    /// (`redo_error`) or did not restore S1 (`after_redo`).
    Mismatch {
        /// What differs from S0 after the down (empty when the down restored it).
        after_down: Vec<Difference>,
        /// What differs from S1 after the second up (empty when it restored S1 or failed).
        after_redo: Vec<Difference>,
        /// The second up's error, when it failed.
        redo_error: Option<String>,
    },
}

impl Outcome {
    /// Whether this fails the check (a missing down does not).
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            Outcome::Passed | Outcome::NoDown | Outcome::AcknowledgedLoss { .. }
        )
    }

    /// A stable word for machines: `ok`, `no_down`, `up_failed`, `down_failed`, `mismatch`,
    /// `data_loss`, `acknowledged_loss`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Passed => "ok",
            Outcome::NoDown => "no_down",
            Outcome::UpFailed { .. } => "up_failed",
            Outcome::DownFailed { .. } => "down_failed",
            Outcome::Mismatch { .. } => "mismatch",
            Outcome::DataLoss { .. } => "data_loss",
            Outcome::AcknowledgedLoss { .. } => "acknowledged_loss",
        }
    }
}

impl fmt::Display for MigrationCheck {
    /// `ok 1 users`, `skip 4 seed: no down file, applied without a check`, or
    /// `FAIL 2 posts: ...` followed by indented lines (differences indented by four spaces).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (v, n) = (self.version, &self.name);
        self.outcome_text(f, v, n)?;
        for lock in &self.locks_over {
            write!(
                f,
                "\n  takes {lock}, stronger than the maximum allowed (--max-lock)"
            )?;
        }
        for change in &self.lossy_up {
            write!(f, "\n  warning: up changes data: {change}")?;
        }
        for u in &self.unfilled {
            write!(f, "\n  warning: {u}")?;
        }
        if let Some(error) = &self.fails_with_rows {
            write!(
                f,
                "\n  warning: the up fails on tables with rows ({error}); its data was not \
                 checked (it passed on empty tables)"
            )?;
        }
        Ok(())
    }
}

impl MigrationCheck {
    fn outcome_text(&self, f: &mut fmt::Formatter<'_>, v: i64, n: &str) -> fmt::Result {
        let failed = if self.locks_over.is_empty() {
            "ok"
        } else {
            "FAIL"
        };
        match &self.outcome {
            Outcome::Passed => write!(f, "{failed} {v} {n}"),
            Outcome::DataLoss { changes } => {
                write!(f, "FAIL {v} {n}: down loses data:")?;
                for c in changes {
                    write!(f, "\n    {c}")?;
                }
                Ok(())
            }
            Outcome::AcknowledgedLoss { reason, changes } => {
                write!(
                    f,
                    "{failed} {v} {n}: down loses data, acknowledged (lossy-down: {reason}):"
                )?;
                for c in changes {
                    write!(f, "\n    {c}")?;
                }
                Ok(())
            }
            Outcome::NoDown => write!(f, "skip {v} {n}: no down file, applied without a check"),
            Outcome::UpFailed { error } => write!(f, "FAIL {v} {n}: up failed: {error}"),
            Outcome::DownFailed { error } => write!(f, "FAIL {v} {n}: down failed: {error}"),
            Outcome::Mismatch {
                after_down,
                after_redo,
                redo_error,
            } => {
                write!(f, "FAIL {v} {n}:")?;
                let mut first = true;
                let mut part = |f: &mut fmt::Formatter<'_>, text: &str| {
                    let r = if first {
                        write!(f, " {text}")
                    } else {
                        write!(f, "\n  {text}")
                    };
                    first = false;
                    r
                };
                if !after_down.is_empty() {
                    part(f, "down left differences:")?;
                    for d in after_down {
                        write!(f, "\n    {d}")?;
                    }
                }
                if let Some(error) = redo_error {
                    part(f, &format!("up again failed: {error}"))?;
                }
                if !after_redo.is_empty() {
                    part(f, "up again left differences:")?;
                    for d in after_redo {
                        write!(f, "\n    {d}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Where the check stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The version of the migration the check stopped at.
    pub version: i64,
    /// That migration's name.
    pub name: String,
    /// Why it stopped, for example `its up failed`.
    pub reason: String,
    /// The migrations after it, not checked.
    pub not_checked: Vec<NotChecked>,
}

/// A migration the check did not reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotChecked {
    /// The migration's version.
    pub version: i64,
    /// The migration's name.
    pub name: String,
}

/// The outcome of a round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundTripReport {
    /// Each migration checked, in order.
    pub migrations: Vec<MigrationCheck>,
    /// Set when the check could not go on to the end.
    pub stopped: Option<Stopped>,
    /// The scratch database's name (dropped by now).
    pub database: String,
    /// How many times the check started over on a fresh scratch database.
    pub restarts: usize,
    /// Wall time of the whole check, scratch database creation included.
    pub duration: Duration,
}

impl RoundTripReport {
    /// No migration failed the check and it ran to the end.
    pub fn passed(&self) -> bool {
        self.stopped.is_none() && self.failures().next().is_none()
    }

    /// The migrations that failed.
    pub fn failures(&self) -> impl Iterator<Item = &MigrationCheck> + '_ {
        self.migrations.iter().filter(|m| m.is_failure())
    }

    /// The `n` slowest migrations, slowest first.
    pub fn slowest(&self, n: usize) -> Vec<&MigrationCheck> {
        let mut all: Vec<&MigrationCheck> = self.migrations.iter().collect();
        all.sort_by_key(|m| std::cmp::Reverse(m.duration));
        all.truncate(n);
        all
    }

    /// One line on where the time went: the whole check, the mean per migration and the
    /// slowest three (`time: 4.1 s, 14 ms per migration; slowest: 20 foo 310 ms, ...`).
    pub fn timing(&self) -> String {
        let per = self
            .duration
            .checked_div(self.migrations.len().max(1) as u32)
            .unwrap_or_default();
        let slowest: Vec<String> = self
            .slowest(3)
            .iter()
            .map(|m| format!("{} {} {} ms", m.version, m.name, m.duration.as_millis()))
            .collect();
        format!(
            "time: {:.1} s, {} ms per migration; slowest: {}",
            self.duration.as_secs_f64(),
            per.as_millis(),
            slowest.join(", ")
        )
    }

    /// Panics with the whole report unless [`RoundTripReport::passed`] (for a service's tests).
    #[track_caller]
    pub fn assert_passed(&self) {
        if !self.passed() {
            panic!("the round trip of the migrations failed:\n{self}");
        }
    }

    /// One line: `3 migrations checked: 1 ok, 2 failed, 1 without a down file`.
    pub fn summary(&self) -> String {
        let count =
            |f: fn(&Outcome) -> bool| self.migrations.iter().filter(|m| f(&m.outcome)).count();
        let total = self.migrations.len();
        let mut line = format!(
            "{total} migration{} checked: {} ok, {} failed",
            if total == 1 { "" } else { "s" },
            self.migrations
                .iter()
                .filter(|m| m.outcome == Outcome::Passed && !m.is_failure())
                .count(),
            self.failures().count(),
        );
        let acknowledged = count(|o| matches!(o, Outcome::AcknowledgedLoss { .. }));
        if acknowledged > 0 {
            line.push_str(&format!(", {acknowledged} with acknowledged data loss"));
        }
        let no_down = count(|o| *o == Outcome::NoDown);
        if no_down > 0 {
            line.push_str(&format!(", {no_down} without a down file"));
        }
        if let Some(stopped) = &self.stopped {
            line.push_str(&format!(
                "; stopped at {} {} ({}), {} not checked",
                stopped.version,
                stopped.name,
                stopped.reason,
                stopped.not_checked.len()
            ));
        }
        line
    }
}

impl fmt::Display for RoundTripReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.migrations {
            writeln!(f, "{m}")?;
        }
        write!(f, "{}", self.summary())
    }
}

/// Runs the round trip on a scratch database created on the server `url` names (the database
/// it names is only used to connect; the role must be allowed to create databases).
///
/// `url` is a connection string as the `migrations` CLI takes it, resolved by the same code
/// ([`crate::connect`]): a `postgres://` URL or `key=value` pairs, the `PG*` variables and
/// `.pgpass` for what it leaves out (an empty `url`: `DATABASE_URL`, else the `PG*` variables),
/// `sslmode` up to `verify-full`, and a bounded wait for a server that is still starting. The
/// scratch database is reached with the same settings and credentials. Needs the `connect`
/// feature (a dev-dependency's features do not reach the service build); without it, use
/// [`check_with`] with connections of your own.
///
/// `Err` means the check could not be carried out (no connection, no `CREATEDB`, ...); a
/// migration that fails its round trip is in the report instead: see
/// [`RoundTripReport::passed`] and [`RoundTripReport::assert_passed`].
///
/// ```no_run
/// use migrations_core::{embed_migrations, roundtrip, Migrations};
/// static MIGRATIONS: Migrations = embed_migrations!("tests/fixtures/doc");
///
/// let url = std::env::var("DATABASE_URL")?;
/// let report = roundtrip::check(&url, &MIGRATIONS, roundtrip::Options::new())?;
/// println!("{report}"); // one line per migration, then a summary
/// if !report.passed() {
///     std::process::exit(1);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "connect")]
pub fn check(
    url: &str,
    migrations: &Migrations,
    options: Options<'_>,
) -> Result<RoundTripReport, Error> {
    use crate::connect::{connect, ConnectOptions};
    let server = ConnectOptions {
        url: Some(url.to_owned()),
        ..ConnectOptions::default()
    };
    let mut admin = connect(&server).map_err(|e| Error::Connect {
        what: "the server".to_owned(),
        message: e.to_string(),
    })?;
    check_with(
        &mut admin,
        |database| {
            connect(&ConnectOptions {
                database: Some(database.to_owned()),
                ..server.clone()
            })
        },
        migrations,
        options,
    )
}

/// Runs the round trip with a connection of your own to the server (`admin`, used to create
/// and drop the scratch database) and a way to connect to another database on the same server
/// by name (`connect`).
pub fn check_with<F, E>(
    admin: &mut postgres::Client,
    connect: F,
    migrations: &Migrations,
    mut options: Options<'_>,
) -> Result<RoundTripReport, Error>
where
    F: FnMut(&str) -> Result<postgres::Client, E>,
    E: fmt::Display,
{
    let started = Instant::now();
    let list: Vec<&Migration> = migrations.iter().collect();
    let position = |v: i64| {
        list.iter()
            .position(|m| m.version() == v)
            .ok_or(Error::UnknownVersion(v))
    };
    let max_lock = match &options.max_lock {
        Some(mode) => {
            Some(data::parse_lock_mode(mode).ok_or_else(|| Error::LockMode(mode.clone()))?)
        }
        None => None,
    };
    let first = options.from.map(position).transpose()?.unwrap_or(0);
    let last = match options.to {
        Some(v) => position(v)? + 1,
        None => list.len(),
    };
    let mut scratch = Scratch {
        admin,
        connect,
        name: scratch_name(),
        client: None,
        interrupt: options.interrupt.clone(),
        template: options.template.clone(),
    };
    scratch.create()?;
    let mut report = RoundTripReport {
        migrations: Vec::new(),
        stopped: None,
        database: scratch.name.clone(),
        restarts: 0,
        duration: Duration::ZERO,
    };
    if first > 0 && first < last {
        let below = list[first - 1].version();
        let mut migrator = options.migrator(migrations);
        let client = scratch.client()?;
        migrator
            .execute(client, &Operation::Up { to: Some(below) })
            .map_err(|e| scratch.interrupted_or(Error::Setup(Box::new(e))))?;
    }
    let mut index = first;
    // The schema after one migration is the next one's "before" (filling tables changes no
    // schema): one snapshot fewer per migration.
    let mut previous: Option<Snapshot> = None;
    // A table that cannot be filled is reported once, where it is first found.
    let mut unfillable: std::collections::BTreeSet<String> = Default::default();
    while index < last {
        let migration = list[index];
        let checked = check_one(
            &mut scratch,
            migrations,
            migration,
            &options,
            max_lock,
            previous.take(),
        )?;
        let restart = checked.restart;
        previous = if restart { None } else { checked.after };
        let mut result = checked.check;
        result
            .unfilled
            .retain(|u| unfillable.insert(u.table.clone()));
        if let Some(callback) = options.on_result.as_mut() {
            callback(&result);
        }
        let up_failed = matches!(result.outcome, Outcome::UpFailed { .. });
        report.migrations.push(result);
        if up_failed {
            report.stopped = Some(Stopped {
                version: migration.version(),
                name: migration.name().to_owned(),
                reason: "its up failed".to_owned(),
                not_checked: not_checked(&list[index + 1..last]),
            });
            break;
        }
        if restart {
            // Start over: a fresh database with every migration up to this one applied.
            report.restarts += 1;
            scratch.recreate()?;
            let mut migrator = options.migrator(migrations);
            let client = scratch.client()?;
            let applied = migrator.execute(
                client,
                &Operation::Up {
                    to: Some(migration.version()),
                },
            );
            if let Err(e) = applied {
                let e = scratch.interrupted_or(Error::Setup(Box::new(e)));
                if matches!(e, Error::Interrupted(_)) {
                    return Err(e);
                }
                report.stopped = Some(Stopped {
                    version: migration.version(),
                    name: migration.name().to_owned(),
                    reason: format!("starting over on a fresh database failed: {e}"),
                    not_checked: not_checked(&list[index + 1..last]),
                });
                break;
            }
        }
        index += 1;
    }
    scratch.check_interrupt()?;
    drop(scratch);
    report.duration = started.elapsed();
    Ok(report)
}

fn not_checked(rest: &[&Migration]) -> Vec<NotChecked> {
    rest.iter()
        .map(|m| NotChecked {
            version: m.version(),
            name: m.name().to_owned(),
        })
        .collect()
}

struct Checked {
    check: MigrationCheck,
    /// The database is not in the state the chain needs (this migration applied, S1).
    restart: bool,
    /// The schema the database is left in, when known.
    after: Option<Snapshot>,
}

fn check_one<F, E>(
    scratch: &mut Scratch<'_, F>,
    migrations: &Migrations,
    migration: &Migration,
    options: &Options<'_>,
    max_lock: Option<usize>,
    previous: Option<Snapshot>,
) -> Result<Checked, Error>
where
    F: FnMut(&str) -> Result<postgres::Client, E>,
    E: fmt::Display,
{
    let started = Instant::now();
    let version = migration.version();
    let mut migrator = options.migrator(migrations);
    let names = &options.names(migrations);
    let up = Operation::Up { to: Some(version) };
    let mut check = MigrationCheck {
        version,
        name: migration.name().to_owned(),
        outcome: Outcome::Passed,
        duration: Duration::ZERO,
        lossy_up: Vec::new(),
        unfilled: Vec::new(),
        locks: Vec::new(),
        locks_over: Vec::new(),
        fails_with_rows: None,
    };
    let done = |mut check: MigrationCheck, outcome: Outcome, restart: bool, after| {
        check.outcome = outcome;
        check.duration = started.elapsed();
        Checked {
            check,
            restart,
            after,
        }
    };

    // Rows in every table, read back; the locks the up takes on the tables they are in.
    let before = if options.schema_only {
        None
    } else {
        let catalog = scratch.catalog(names)?;
        let data = scratch.data(&catalog)?;
        let (unfilled, inserted) = scratch.fill(&catalog, &data, options.rows)?;
        check.unfilled = unfilled;
        let data = if inserted {
            scratch.data(&catalog)?
        } else {
            data
        };
        if !migration.up().no_transaction() {
            let session = options.session_sql();
            let oids = data.oids();
            let sql = migration.up().sql();
            let observed = scratch
                .with_conn(|conn| block_on(data::observe_locks(conn, sql, &oids, &session)))?;
            // An up that fails here fails for real just below, where it is reported.
            check.locks = observed.unwrap_or_default();
            if let Some(max) = max_lock {
                check.locks_over = check
                    .locks
                    .iter()
                    .filter(|l| data::LOCK_MODES.iter().position(|m| *m == l.mode) > Some(max))
                    .cloned()
                    .collect();
            }
        }
        Some(data)
    };

    let s0 = match previous {
        Some(s) => s,
        None => scratch.snapshot(names)?,
    };
    let mut before = before;
    if let Err(e) = migrator.execute(scratch.client()?, &up) {
        let error = scratch.finding(migration, e)?;
        // Our rows may be what the up cannot take (a NOT NULL column added without a
        // default): a transactional up was rolled back, so empty the tables and try again.
        if before.is_none() || migration.up().no_transaction() {
            return Ok(done(check, Outcome::UpFailed { error }, false, None));
        }
        scratch.empty_tables(names)?;
        if migrator.execute(scratch.client()?, &up).is_err() {
            return Ok(done(check, Outcome::UpFailed { error }, false, None));
        }
        check.fails_with_rows = Some(error);
        before = None;
    }
    if let Some(before) = &before {
        let after_up = scratch.read_data(names)?;
        check.lossy_up = data::compare(before, &after_up, true);
    }
    let s1 = scratch.snapshot(names)?;
    let Some(down_script) = migration.down() else {
        return Ok(done(check, Outcome::NoDown, false, Some(s1)));
    };
    let down = Operation::Down(DownTarget::Count(1));
    if let Err(e) = migrator.execute(scratch.client()?, &down) {
        let error = scratch.finding(migration, e)?;
        // A transactional down was rolled back: the database is still at S1.
        let partial = down_script.no_transaction();
        return Ok(done(
            check,
            Outcome::DownFailed { error },
            partial,
            Some(s1),
        ));
    }
    let s2 = scratch.snapshot(names)?;
    let after_down = options.compare(&s0, &s2);
    let lost = match &before {
        Some(before) if after_down.is_empty() => {
            let after = scratch.read_data(names)?;
            data::compare(before, &after, false)
        }
        _ => Vec::new(),
    };
    if let Err(e) = migrator.execute(scratch.client()?, &up) {
        let error = scratch.finding(migration, e)?;
        let outcome = Outcome::Mismatch {
            after_down,
            after_redo: Vec::new(),
            redo_error: Some(error),
        };
        return Ok(done(check, outcome, true, None));
    }
    let s3 = scratch.snapshot(names)?;
    let after_redo = options.compare(&s1, &s3);
    if after_down.is_empty() && after_redo.is_empty() {
        let outcome = match (lost.is_empty(), down_script.lossy_down()) {
            (true, _) => Outcome::Passed,
            (false, Some(reason)) => Outcome::AcknowledgedLoss {
                reason: reason.to_owned(),
                changes: lost,
            },
            (false, None) => Outcome::DataLoss { changes: lost },
        };
        return Ok(done(check, outcome, false, Some(s3)));
    }
    let restart = !after_redo.is_empty();
    Ok(done(
        check,
        Outcome::Mismatch {
            after_down,
            after_redo,
            redo_error: None,
        },
        restart,
        (!restart).then_some(s3),
    ))
}

/// A unique scratch database name: `migrations_test_<pid>_<unix time>_<n>`.
fn scratch_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "migrations_test_{}_{secs}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The scratch database: created on construction, dropped by `Drop` (also when a panic
/// unwinds).
struct Scratch<'c, F> {
    admin: &'c mut postgres::Client,
    connect: F,
    name: String,
    client: Option<postgres::Client>,
    interrupt: Option<Interrupt>,
    template: Option<String>,
}

impl<F, E> Scratch<'_, F>
where
    F: FnMut(&str) -> Result<postgres::Client, E>,
    E: fmt::Display,
{
    fn create(&mut self) -> Result<(), Error> {
        self.check_interrupt()?;
        let mut sql = format!("CREATE DATABASE {}", quote_ident(&self.name));
        if let Some(template) = &self.template {
            sql.push_str(&format!(" TEMPLATE {}", quote_ident(template)));
        }
        self.admin
            .batch_execute(&sql)
            .map_err(|e| Error::CreateDatabase {
                name: self.name.clone(),
                source: crate::db::from_pg(&e),
            })?;
        log::debug!("created the scratch database {}", self.name);
        let client = (self.connect)(&self.name).map_err(|e| Error::Connect {
            what: format!("the scratch database {}", self.name),
            message: e.to_string(),
        })?;
        if let Some(interrupt) = &self.interrupt {
            interrupt.set_token(Some(client.cancel_token()));
        }
        self.client = Some(client);
        // A trigger that came while connecting found no query to cancel.
        self.check_interrupt()
    }

    fn recreate(&mut self) -> Result<(), Error> {
        self.drop_database();
        self.create()
    }

    fn client(&mut self) -> Result<&mut postgres::Client, Error> {
        self.check_interrupt()?;
        self.client.as_mut().ok_or_else(|| Error::Connect {
            what: format!("the scratch database {}", self.name),
            message: "no connection".to_owned(),
        })
    }

    fn check_interrupt(&self) -> Result<(), Error> {
        match &self.interrupt {
            Some(i) if i.is_triggered() => Err(Error::Interrupted(self.name.clone())),
            _ => Ok(()),
        }
    }

    /// `Interrupted` when the interrupt was triggered (the error is its consequence).
    fn interrupted_or(&self, error: Error) -> Error {
        self.check_interrupt().err().unwrap_or(error)
    }

    /// Runs `f` on the scratch database's connection, as the engine's sync adapter.
    fn with_conn<T>(&mut self, f: impl FnOnce(&mut SyncConn<'_>) -> T) -> Result<T, Error> {
        let client = self.client()?;
        Ok(f(&mut SyncConn(client)))
    }

    fn data_error(&self, source: DbError) -> Error {
        self.interrupted_or(Error::Data {
            database: self.name.clone(),
            source,
        })
    }

    fn catalog(&mut self, names: &Names) -> Result<data::Catalog, Error> {
        let result = self.with_conn(|c| block_on(data::Catalog::read(c, names)))?;
        result.map_err(|e| self.data_error(e))
    }

    fn data(&mut self, catalog: &data::Catalog) -> Result<data::Data, Error> {
        let result = self.with_conn(|c| block_on(data::Data::read(c, catalog)))?;
        result.map_err(|e| self.data_error(e))
    }

    /// Deletes every row of every table (`TRUNCATE ... CASCADE`).
    fn empty_tables(&mut self, names: &Names) -> Result<(), Error> {
        let catalog = self.catalog(names)?;
        let sql = catalog.truncate_sql();
        if sql.is_empty() {
            return Ok(());
        }
        let result = self.with_conn(|c| block_on(crate::db::Conn::simple(c, &sql)))?;
        result.map(drop).map_err(|e| self.data_error(e))
    }

    /// The rows of every table there is now.
    fn read_data(&mut self, names: &Names) -> Result<data::Data, Error> {
        let catalog = self.catalog(names)?;
        self.data(&catalog)
    }

    fn fill(
        &mut self,
        catalog: &data::Catalog,
        data: &data::Data,
        rows: usize,
    ) -> Result<(Vec<Unfilled>, bool), Error> {
        let result = self.with_conn(|c| block_on(data::fill(c, catalog, data, rows)))?;
        result.map_err(|e| self.data_error(e))
    }

    fn snapshot(&mut self, names: &Names) -> Result<Snapshot, Error> {
        let name = self.name.clone();
        let result = Snapshot::read(self.client()?, names);
        result.map_err(|source| {
            self.interrupted_or(Error::Snapshot {
                database: name,
                source,
            })
        })
    }

    /// A migration's failure as a finding (its text), or the operational error that stops the
    /// whole check (the connection broke, the interrupt was triggered, bookkeeping failed).
    fn finding(&self, migration: &Migration, error: crate::Error) -> Result<String, Error> {
        self.check_interrupt()?;
        match error {
            crate::Error::Migration {
                statement, source, ..
            } if !source.is_connection_error() => Ok(match statement {
                Some(crate::Location {
                    number,
                    total,
                    line,
                }) => format!("{source} (statement {number} of {total}, line {line})"),
                None => source.to_string(),
            }),
            crate::Error::RefusedInTransaction { line, what, .. } => Ok(format!(
                "line {line}: {}",
                crate::error::refusal_text(&what)
            )),
            e @ (crate::Error::LockTimeout { .. } | crate::Error::Plan(_)) => Ok(e.to_string()),
            e => Err(Error::Run {
                version: migration.version(),
                name: migration.name().to_owned(),
                source: Box::new(e),
            }),
        }
    }
}

impl<F> Scratch<'_, F> {
    fn drop_database(&mut self) {
        if let Some(interrupt) = &self.interrupt {
            interrupt.set_token(None);
        }
        // Close our own session first, so the drop does not have to end it.
        drop(self.client.take());
        let name = quote_ident(&self.name);
        let forced = self
            .admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        let result = match forced {
            // Before PostgreSQL 13 there is no FORCE (syntax error); PostgreSQL waits a few
            // seconds for the closed sessions itself.
            Err(e) if e.code() == Some(&postgres::error::SqlState::SYNTAX_ERROR) => self
                .admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name}")),
            other => other,
        };
        match result {
            Ok(()) => log::debug!("dropped the scratch database {}", self.name),
            Err(e) => log::error!(
                "could not drop the scratch database {}: {e}; drop it by hand",
                self.name
            ),
        }
    }
}

impl<F> Drop for Scratch<'_, F> {
    fn drop(&mut self) {
        self.drop_database();
    }
}
