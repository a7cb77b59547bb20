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
//! outright (`SIGKILL`) leaves its scratch database behind: the next check on that server drops
//! it, once no session is connected to it and its process is gone (its comment names the pid
//! and host; one of another host, after an hour), and lists it in
//! [`RoundTripReport::stale_dropped`].
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod data;
mod render;
mod run;
mod stale;

pub use data::{DataChange, ObservedLock, Unfilled};

use crate::db::{block_on, DbError};
use crate::embedded::Migrations;
use crate::migrator::Migrator;
use crate::snapshot::{Difference, Snapshot};
use crate::sql::Names;

/// The name a file gives in a header `-- migrations:lint-ignore max-lock` to take a lock over
/// [`Options::max_lock`] on purpose: the lock is still reported, and does not fail the check.
pub const MAX_LOCK_RULE: &str = "max-lock";

/// The default [`Options::jobs`] is the machine's cores, at most this many.
const MAX_JOBS: usize = 4;

/// Each part of a split check holds at least this many migrations (a part's setup applies every
/// migration before it, which is cheap but not free).
#[cfg(feature = "connect")]
const MIN_PER_JOB: usize = 20;

/// How the round trip runs. Built with [`Options::new`] and its methods.
pub struct Options<'a> {
    settings: Settings,
    on_result: Option<ResultCallback<'a>>,
}

/// Everything of [`Options`] but the callback: what each parallel worker gets a copy of.
#[derive(Clone)]
struct Settings {
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
    placeholders: Result<migrations_format::Placeholders, String>,
    interrupt: Option<Interrupt>,
    jobs: usize,
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
            .field("from", &self.settings.from)
            .field("to", &self.settings.to)
            .field("schema", &self.settings.schema)
            .field("table", &self.settings.table)
            .field("search_path", &self.settings.search_path)
            .field("template", &self.settings.template)
            .finish_non_exhaustive()
    }
}

impl<'a> Options<'a> {
    /// Every migration; the history tables where the migrations' `[run]` settings put them
    /// (default `public.migrations_history`).
    pub fn new() -> Options<'a> {
        let settings = Settings {
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
            placeholders: Ok(migrations_format::Placeholders::new()),
            interrupt: None,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_JOBS)),
        };
        Options {
            settings,
            on_result: None,
        }
    }

    /// How many scratch databases the history is split across, each checked by its own
    /// thread and server session (default: the machine's cores, at most 4). A part after the
    /// first starts from a fresh database where every migration before it is applied
    /// unchecked, and its tables are filled there, so each part is checked on the schema the
    /// real chain gives it. Used by [`check`] and [`check_async`] (the parts are futures
    /// polled together) when the range holds at least `2 * MIN_PER_JOB` (40) migrations;
    /// [`check_with`] (one connection of yours) runs one part. 1 checks the whole range on
    /// one database.
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.settings.jobs = jobs.max(1);
        self
    }

    /// Check from this version on (it is checked); the migrations before it are applied
    /// without a check. It must be one of the set's versions.
    pub fn from(mut self, version: i64) -> Self {
        self.settings.from = Some(version);
        self
    }

    /// Check up to this version (it is checked); the migrations after it are not applied.
    pub fn to(mut self, version: i64) -> Self {
        self.settings.to = Some(version);
        self
    }

    /// Schema of the history tables (left out of the snapshots).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.settings.schema = Some(schema.into());
        self
    }

    /// Name of the history table (it and `<table>_audit` are left out of the snapshots).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.settings.table = Some(table.into());
        self
    }

    /// `search_path` for the migrations' SQL (as [`Migrator::search_path`]).
    pub fn search_path(mut self, path: impl Into<String>) -> Self {
        self.settings.search_path = Some(path.into());
        self
    }

    /// `lock_timeout` for each migration (as [`Migrator::lock_timeout`]; default: the
    /// migrations' `[run]` settings, else 5s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.settings.lock_timeout = Some(timeout);
        self
    }

    /// `statement_timeout` for each migration (as [`Migrator::statement_timeout`]; zero means
    /// none, the default unless the `[run]` settings say otherwise).
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.settings.statement_timeout = Some(timeout);
        self
    }

    /// The template of the scratch database (default: the server's, `template1`).
    pub fn template(mut self, template: impl Into<String>) -> Self {
        self.settings.template = Some(template.into());
        self
    }

    /// Do not report columns that came back in another order (a down that adds a dropped
    /// column again puts it last; PostgreSQL cannot put it back in place without rebuilding
    /// the table). Off by default: `SELECT *` and `INSERT` without a column list see the order.
    pub fn ignore_column_order(mut self, ignore: bool) -> Self {
        self.settings.ignore_column_order = ignore;
        self
    }

    /// Check the schema only: no generated rows, no data comparison, no lock observation (the
    /// CLI's `--schema-only`). Off by default.
    pub fn schema_only(mut self, schema_only: bool) -> Self {
        self.settings.schema_only = schema_only;
        self
    }

    /// How many rows each empty table is given before a migration (default 3).
    pub fn rows(mut self, rows: usize) -> Self {
        self.settings.rows = rows;
        self
    }

    /// Fail a migration whose up takes a lock stronger than `mode` on a table that existed
    /// before it (`ACCESS EXCLUSIVE`, `share update exclusive`, `RowExclusiveLock`... any
    /// spelling of PostgreSQL's eight table lock modes; the CLI's `--max-lock`). A mode that is
    /// none of them makes the check return [`Error::LockMode`].
    pub fn max_lock(mut self, mode: impl Into<String>) -> Self {
        self.settings.max_lock = Some(mode.into());
        self
    }

    /// The value of the `${name}` placeholder, over the set's `[placeholders]` (as
    /// [`Migrator::placeholder`]): the round trip runs the substituted SQL.
    /// A set already resolved ([`Migrations::with_placeholders`]) is run as it is.
    pub fn placeholder(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        if let Ok(values) = &mut self.settings.placeholders {
            if let Err(why) = values.insert(name, value) {
                self.settings.placeholders = Err(why);
            }
        }
        self
    }

    /// What differs from `expected` to `actual` that fails the check, and apart, the
    /// differences that are the clock's, not the migration's (see [`render::frozen_clock`]).
    fn compare(
        &self,
        expected: &Snapshot,
        actual: &Snapshot,
    ) -> (Vec<Difference>, Vec<Difference>) {
        let differences = expected.diff(actual);
        let differences = if self.settings.ignore_column_order {
            render::without_column_order(differences)
        } else {
            differences
        };
        differences
            .into_iter()
            .partition(|d| !render::frozen_clock(d))
    }

    /// Stops the check (dropping the scratch database) when triggered, e.g. on Ctrl-C.
    pub fn interrupt(mut self, interrupt: &Interrupt) -> Self {
        self.settings.interrupt = Some(interrupt.clone());
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
        if let Some(schema) = self
            .settings
            .schema
            .as_deref()
            .or(defaults.schema.as_deref())
        {
            names.schema = schema.to_owned();
        }
        if let Some(table) = self.settings.table.as_deref().or(defaults.table.as_deref()) {
            names.table = table.to_owned();
        }
        names
    }

    fn migrator<'m>(&self, migrations: &'m Migrations) -> Migrator<'m> {
        let mut migrator = Migrator::new(migrations);
        if let Some(schema) = &self.settings.schema {
            migrator = migrator.schema(schema.clone());
        }
        if let Some(table) = &self.settings.table {
            migrator = migrator.table(table.clone());
        }
        if let Some(path) = &self.settings.search_path {
            migrator = migrator.search_path(path.clone());
        }
        if let Some(t) = self.settings.lock_timeout {
            migrator = migrator.lock_timeout(t);
        }
        if let Some(t) = self.settings.statement_timeout {
            migrator = migrator.statement_timeout(t);
        }
        // The check runs every down, lossy ones included: it reports them as acknowledged.
        // And every up, post-deployment ones included (`-- migrations:phase=post`).
        migrator
            .allow_data_loss(true)
            .phase(crate::plan::Phase::All)
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
    /// The running query of each scratch database (one per parallel part), by its name.
    cancel: Mutex<Vec<(String, postgres::CancelToken)>>,
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
        let tokens = self.0.cancel.lock().map(|t| t.clone()).unwrap_or_default();
        for (name, token) in tokens {
            if let Err(e) = token.cancel_query(postgres::NoTls) {
                log::warn!("could not cancel the query of the scratch database {name}: {e}");
            }
        }
    }

    /// Whether [`Interrupt::trigger`] was called (on this handle or a clone).
    pub fn is_triggered(&self) -> bool {
        self.0.triggered.load(Ordering::SeqCst)
    }

    fn set_token(&self, database: &str, token: Option<postgres::CancelToken>) {
        if let Ok(mut tokens) = self.0.cancel.lock() {
            tokens.retain(|(name, _)| name != database);
            if let Some(token) = token {
                tokens.push((database.to_owned(), token));
            }
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
    #[error("the round trip of {spelling} {name} could not run: {source}")]
    Run {
        /// The migration's version.
        version: i64,
        /// The version as the migration's file name writes it: the message shows this one.
        spelling: String,
        /// The migration's name.
        name: String,
        /// The runner's error.
        source: Box<crate::Error>,
    },
    /// The [`Interrupt`] was triggered; the scratch database (named) was dropped.
    #[error("interrupted; the scratch database {0} was dropped")]
    Interrupted(String),
    /// A placeholder value given to [`Options::placeholder`] is refused, or a `${name}` of the
    /// migrations has no value (the problems, with file and line).
    #[error("the migrations' placeholders cannot be substituted: {0}")]
    Placeholder(String),
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
    /// The version as the migration's file name writes it (`2025-08-01-000015`, `0004`): the
    /// text shows this one.
    pub spelling: String,
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
    /// The locks stronger than [`Options::max_lock`] (these fail the migration, unless the up
    /// file's header says `-- migrations:lint-ignore max-lock`).
    pub locks_over: Vec<ObservedLock>,
    /// The strongest lock the down took on each table that existed before the up
    /// (transactional downs; observed in a rolled-back transaction before the real down). Not
    /// held against [`Options::max_lock`]: a rollback is rare and chosen.
    pub down_locks: Vec<ObservedLock>,
    /// The up failed on the generated rows (the server's error) and passed once the tables
    /// were emptied: a warning (it fails on a database with rows too), and this migration's
    /// data was not checked.
    pub fails_with_rows: Option<String>,
    /// Differences that come from the clock, not from the migration: a view or a default
    /// that froze `now()` / `'now'` into a timestamp when it was created reads another time on
    /// each run. Reported as non-deterministic; they do not fail the check.
    pub non_deterministic: Vec<Difference>,
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
        let (v, n) = (self.spelling.as_str(), &self.name);
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
        for d in &self.non_deterministic {
            write!(
                f,
                "\n  note: non-deterministic, not a failure: {d} (a timestamp frozen from \
                 now() when it was created)"
            )?;
        }
        Ok(())
    }
}

impl MigrationCheck {
    fn outcome_text(&self, f: &mut fmt::Formatter<'_>, v: &str, n: &str) -> fmt::Result {
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
                    for line in render::lines(after_down, "after down") {
                        write!(f, "\n    {line}")?;
                    }
                }
                if let Some(error) = redo_error {
                    part(f, &format!("up again failed: {error}"))?;
                }
                if !after_redo.is_empty() {
                    part(f, "up again left differences:")?;
                    for line in render::lines(after_redo, "after up again") {
                        write!(f, "\n    {line}")?;
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
    /// The version as the migration's file name writes it (`2025-08-01-000015`, `0004`): the
    /// text shows this one.
    pub spelling: String,
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
    /// The version as the migration's file name writes it (`2025-08-01-000015`, `0004`): the
    /// text shows this one.
    pub spelling: String,
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
    /// Scratch databases of earlier checks that were killed (`SIGKILL`) before they could
    /// drop them, dropped by this one (see [the module documentation](self)).
    pub stale_dropped: Vec<String>,
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
            .map(|m| format!("{} {} {} ms", m.spelling, m.name, m.duration.as_millis()))
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
                stopped.spelling,
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
    let server = crate::connect::ConnectOptions {
        url: Some(url.to_owned()),
        ..crate::connect::ConnectOptions::default()
    };
    check_on(&server, migrations, options)
}

/// [`check`] with the server given as [`ConnectOptions`](crate::connect::ConnectOptions) (the
/// CLI's way: its flags, `sslmode`, timeouts); the scratch databases are reached with the same
/// options, another `database`. The history is split across [`Options::jobs`] scratch
/// databases.
#[cfg(feature = "connect")]
pub fn check_on(
    server: &crate::connect::ConnectOptions,
    migrations: &Migrations,
    options: Options<'_>,
) -> Result<RoundTripReport, Error> {
    run::run_parallel(server, migrations, options)
}

/// Runs the round trip with a connection of your own to the server (`admin`, used to create
/// and drop the scratch database) and a way to connect to another database on the same server
/// by name (`connect`).
pub fn check_with<F, E>(
    admin: &mut postgres::Client,
    connect: F,
    migrations: &Migrations,
    options: Options<'_>,
) -> Result<RoundTripReport, Error>
where
    F: FnMut(&str) -> Result<postgres::Client, E>,
    E: fmt::Display,
{
    block_on(run::run(
        run::SyncServer { admin, connect },
        migrations,
        options,
    ))
}

/// Schema differences as the round trip words them, one line each: a table missing or extra as a
/// whole is one line with its column count (`table public.x (31 columns): missing after down`),
/// `missing`/`extra` followed by `when` (`after down`, `after up again`), other differences
/// as [`Difference`] displays them.
pub fn difference_lines(differences: &[Difference], when: &str) -> Vec<String> {
    render::lines(differences, when)
}

/// Async twin of [`check`]: the same check (one implementation, over `tokio_postgres`), for a
/// `#[tokio::test]` or a service that runs on Tokio. Its scratch database is dropped on every
/// exit path; if the future is dropped half-way, the drop is handed to the runtime (and a
/// database left behind anyway is dropped by the next check, as a killed run's is).
/// [`Options::interrupt`] is checked between steps (dropping the future stops it at once).
/// The history is split across [`Options::jobs`] scratch databases as [`check`]'s is, the
/// parts polled together on the caller's task (the server runs their sessions in parallel).
///
/// ```no_run
/// use migrations_core::{embed_migrations, roundtrip, Migrations};
/// static MIGRATIONS: Migrations = embed_migrations!("tests/fixtures/doc");
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let url = std::env::var("DATABASE_URL")?;
/// let report = roundtrip::check_async(&url, &MIGRATIONS, roundtrip::Options::new()).await?;
/// report.assert_passed();
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "connect")]
pub async fn check_async(
    url: &str,
    migrations: &Migrations,
    options: Options<'_>,
) -> Result<RoundTripReport, Error> {
    use crate::connect::ConnectOptions;
    let server = ConnectOptions {
        url: Some(url.to_owned()),
        ..ConnectOptions::default()
    };
    run::run_parallel_async(&server, migrations, options).await
}
