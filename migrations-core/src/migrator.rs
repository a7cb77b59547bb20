//! The service-facing API: configure a [`Migrator`], then run it on a `postgres::Client` (sync)
//! or a `tokio_postgres::Client` (async). Both drive the same engine.

use std::time::Duration;

use crate::db::Conn;
use crate::embedded::Migrations;
use crate::engine::{self, Config, Maintenance, Tool};
use crate::error::Error;
use crate::plan::{DownTarget, DriftPolicy, Operation, Phase, Plan, Policy, StatusLine};
use crate::report::{Event, Report};
use crate::sql::Names;
use crate::AppliedMigration;

/// Defaults of SPEC section 3.3: a few seconds of `lock_timeout`, so a migration never queues
/// behind a long transaction while blocking every other query on the table; no
/// `statement_timeout`, since a concurrent index build legitimately takes hours.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `statement_timeout` of each migration: zero, which PostgreSQL reads as no timeout.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::ZERO;
/// How long a runner waits by default for another runner's migrations lock before failing with
/// [`Error::LockWait`]: 10 minutes.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(600);
pub const DEFAULT_LOCK_RETRIES: u32 = 3;
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(500);
/// Default schema of the history and audit tables.
pub const DEFAULT_SCHEMA: &str = "public";
/// Default name of the history table (the audit table is `migrations_history_audit`).
pub const DEFAULT_TABLE: &str = "migrations_history";

/// Applies, reverts and inspects migrations.
///
/// ```no_run
/// use migrations_core::{embed_migrations, Migrations, Migrator};
/// static MIGRATIONS: Migrations = embed_migrations!("tests/fixtures/doc");
///
/// let mut client = postgres::Client::connect("postgres://localhost/app", postgres::NoTls)?;
/// let report = Migrator::new(&MIGRATIONS).run(&mut client)?;
/// for ran in &report.ran {
///     println!("applied {} {} in {:?}", ran.version, ran.name, ran.duration);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Migrator<'a> {
    migrations: &'a Migrations,
    config: Config,
    events: Option<Callback<'a>>,
    /// Set by [`Migrator::watch`]: tells a stall watchdog while a query is outstanding.
    in_flight: Option<std::sync::Arc<crate::db::InFlight>>,
    /// Set by [`Migrator::placeholder`]: over the set's `[placeholders]`; a bad name is kept
    /// to be reported by the run (a builder method does not fail).
    placeholders: Result<migrations_format::Placeholders, String>,
}

type Callback<'a> = Box<dyn FnMut(&Event<'_>) + Send + 'a>;

impl<'a> Migrator<'a> {
    /// A migrator with the defaults of SPEC 3, overridden by the directory's `[run]` settings
    /// (`migrations.toml`), themselves overridden by the methods below.
    pub fn new(migrations: &'a Migrations) -> Migrator<'a> {
        let defaults = migrations.run_defaults();
        let ms = Duration::from_millis;
        Migrator {
            migrations,
            config: Config {
                names: Names {
                    schema: defaults
                        .schema
                        .as_deref()
                        .unwrap_or(DEFAULT_SCHEMA)
                        .to_owned(),
                    table: defaults
                        .table
                        .as_deref()
                        .unwrap_or(DEFAULT_TABLE)
                        .to_owned(),
                },
                lock_timeout: defaults.lock_timeout_ms.map_or(DEFAULT_LOCK_TIMEOUT, ms),
                statement_timeout: defaults
                    .statement_timeout_ms
                    .map_or(DEFAULT_STATEMENT_TIMEOUT, ms),
                lock_wait: defaults.lock_wait_ms.map_or(DEFAULT_LOCK_WAIT, ms),
                lock_poll: Duration::from_millis(250),
                lock_retries: DEFAULT_LOCK_RETRIES,
                retry_backoff: DEFAULT_RETRY_BACKOFF,
                search_path: defaults.search_path.as_deref().map(str::to_owned),
                policy: DriftPolicy::default(),
                grouped: false,
                record_schema: defaults.record_schema,
                phase: Phase::Pre,
                stored_downs: false,
                allow_data_loss: false,
                observe_locks: None,
            },
            events: None,
            in_flight: None,
            placeholders: Ok(migrations_format::Placeholders::new()),
        }
    }

    /// The value of the `${name}` placeholder (over `[placeholders]` in `migrations.toml`;
    /// names are case-insensitive). Each run substitutes every script before anything runs:
    /// a placeholder without a value, or a value that cannot go where its placeholder sits
    /// (where SQL code goes, only a plain identifier or number; see
    /// [`migrations_format::placeholder`]), is [`Error::Placeholder`]. Checksums are those of
    /// the files as written, so every value shares one history checksum.
    pub fn placeholder(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        if let Ok(values) = &mut self.placeholders {
            if let Err(why) = values.insert(name, value) {
                self.placeholders = Err(why);
            }
        }
        self
    }

    /// Several [`Migrator::placeholder`] values at once.
    pub fn placeholders<N: AsRef<str>, V: Into<String>>(
        mut self,
        values: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        for (name, value) in values {
            self = self.placeholder(name, value);
        }
        self
    }

    /// The set to run: its scripts with the placeholders substituted (the set itself when it
    /// holds none, or is already resolved).
    fn resolved(&self) -> Result<std::borrow::Cow<'a, Migrations>, Error> {
        let set: &'a Migrations = self.migrations;
        let values = self.placeholders.as_ref().map_err(|why| {
            Error::Placeholder(migrations_format::LoadError {
                problems: vec![migrations_format::Problem {
                    kind: migrations_format::ProblemKind::Placeholder,
                    path: "Migrator::placeholder".into(),
                    line: None,
                    message: why.clone(),
                }],
            })
        })?;
        if set.placeholders_resolved() || !set.holds_placeholders() {
            return Ok(std::borrow::Cow::Borrowed(set));
        }
        set.with_placeholders(values)
            .map(std::borrow::Cow::Owned)
            .map_err(Error::Placeholder)
    }

    /// Run downs whose file says `-- migrations:lossy-down <reason>` (off by default: a `down`
    /// or `redo` over one is refused with [`crate::plan::PlanError::LossyDown`], naming the
    /// reason, and nothing runs). The CLI's `--allow-data-loss`.
    pub fn allow_data_loss(mut self, allow: bool) -> Self {
        self.config.allow_data_loss = allow;
        self
    }

    /// Each transactional step (run one by one, not grouped) adds the relation locks its
    /// session held just before `COMMIT` to `sink` (the round trip's observed locks).
    #[cfg(feature = "postgres")]
    pub(crate) fn observe_locks(mut self, sink: engine::LockSink) -> Self {
        self.config.observe_locks = Some(sink);
        self
    }

    /// The schema of the history tables (default `public`). It does not change `search_path`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.config.names.schema = schema.into();
        self
    }

    /// The history table's name (default `migrations_history`; the audit table is named after
    /// it with `_audit`).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.config.names.table = table.into();
        self
    }

    /// `search_path` for the migrations' own SQL; the caller's session keeps its own.
    pub fn search_path(mut self, search_path: impl Into<String>) -> Self {
        self.config.search_path = Some(search_path.into());
        self
    }

    /// `lock_timeout` for each migration (a file's `lock-timeout` directive wins).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.config.lock_timeout = timeout;
        self
    }

    /// `statement_timeout` for each migration (a file's directive wins); zero means none.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.config.statement_timeout = timeout;
        self
    }

    /// How long to wait for another runner's lock before giving up (default 10 minutes).
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.config.lock_wait = wait;
        self
    }

    /// How many times a migration that hit `lock_timeout` is tried again, and the first pause
    /// (doubled on each retry).
    pub fn lock_retries(mut self, retries: u32, first_backoff: Duration) -> Self {
        self.config.lock_retries = retries;
        self.config.retry_backoff = first_backoff;
        self
    }

    /// What to do about each kind of drift (defaults: SPEC 3.4).
    pub fn drift_policy(mut self, policy: DriftPolicy) -> Self {
        self.config.policy = policy;
        self
    }

    /// Apply pending migrations even when some are below the highest applied version.
    pub fn allow_out_of_order(mut self, allow: bool) -> Self {
        self.config.policy.out_of_order = if allow { Policy::Warn } else { Policy::Error };
        self
    }

    /// Run every pending migration in one transaction: all or nothing. No-transaction
    /// migrations cannot take part; a plan holding one is refused.
    pub fn single_transaction(mut self, grouped: bool) -> Self {
        self.config.grouped = grouped;
        self
    }

    /// Which migrations an `up` applies: [`Phase::Pre`] (the default) leaves post-deployment
    /// migrations (`-- migrations:phase=post`) pending, [`Phase::Post`] applies only those,
    /// [`Phase::All`] everything. Also what [`Migrator::wait_until_migrated`] waits for.
    pub fn phase(mut self, phase: Phase) -> Self {
        self.config.phase = phase;
        self
    }

    /// Let a `down` revert applied migrations this binary lacks (an older release after a
    /// rollback) with the down script the database stored when each was applied. Each such
    /// revert is audited with `stored down`. Off by default: a `down` over a migration it
    /// lacks is refused, naming `stored_downs`.
    pub fn stored_downs(mut self, allow: bool) -> Self {
        self.config.stored_downs = allow;
        self
    }

    /// After an `up` that applies something, store a schema snapshot beside the history, for
    /// `migrations verify --schema-drift` (also `record_schema = true` in `migrations.toml`).
    pub fn record_schema(mut self, record: bool) -> Self {
        self.config.record_schema = record;
        self
    }

    /// Called for each [`Event`] as it happens (a migration starting, finishing, retrying).
    /// A panic in the callback releases the migrations lock, then goes on.
    pub fn on_event(mut self, callback: impl FnMut(&Event<'_>) + Send + 'a) -> Self {
        self.events = Some(Box::new(callback));
        self
    }

    /// Lets `watchdog` see when this migrator's queries are outstanding, so it can end a run
    /// whose connection stalled (see [`crate::watchdog`]). Only for a connection the caller
    /// owns and will not use again: the watchdog terminates that session on a stall.
    #[cfg(feature = "connect")]
    pub fn watch(mut self, watchdog: &crate::watchdog::Watchdog) -> Self {
        self.in_flight = Some(watchdog.in_flight());
        self
    }

    /// The advisory lock key this migrator uses (fixed by schema and table).
    pub fn lock_key(&self) -> i64 {
        self.config.names.lock_key()
    }

    /// The stored chain digests with which this migrator's plain `up` has nothing to do: what
    /// [`is_up_to_date`](Migrator::is_up_to_date) compares the history's digest with, for a
    /// caller that keeps them between runs and checks without loading the set
    /// ([`Migrator::is_digest_current`]; the CLI's warm start). The set's own digest and, for
    /// [`Phase::Pre`], each state with the newest post-deployment migrations still pending.
    /// `None` when the check needs more than the digest (repeatable migrations).
    pub fn current_digests(&self) -> Option<Vec<[u8; 32]>> {
        use migrations_format::checksum::{chain_item, xor_into};
        if !self.migrations.repeatables().is_empty() {
            return None;
        }
        let all =
            *migrations_format::Checksum::from_hex(self.migrations.chain_digest())?.as_bytes();
        let mut digests = vec![all];
        if self.config.phase == Phase::Pre {
            let mut pending = all;
            for m in self.migrations.iter().rev().filter(|m| m.post_deploy()) {
                xor_into(
                    &mut pending,
                    &chain_item(m.version(), m.checksum(), m.no_transaction()),
                );
                digests.push(pending);
            }
        }
        Some(digests)
    }

    fn parts(&mut self) -> (&Migrations, &Config, Callback<'_>) {
        let events: Callback<'_> = match self.events.as_mut() {
            Some(callback) => Box::new(|e: &Event<'_>| callback(e)),
            None => Box::new(|_: &Event<'_>| {}),
        };
        (self.migrations, &self.config, events)
    }
}

// The one path of every operation, generic over the connection: the sync and async methods
// below only wrap their client in its adapter (`db::SyncConn`, `db::AsyncConn`) and call one of
// these.
impl Migrator<'_> {
    /// Also the round trip's (`roundtrip/run.rs`), which drives one connection of either kind.
    pub(crate) async fn execute_on<C: Conn>(
        &mut self,
        conn: &mut C,
        operation: &Operation,
    ) -> Result<Report, Error> {
        let in_flight = self.in_flight.clone();
        let conn = &mut crate::db::Watched {
            conn,
            in_flight: in_flight.as_deref(),
        };
        // The warm check reads checksums only, which placeholders leave as written: it comes
        // before resolving them, which scans every script's text (O(size of the set) at every
        // start). The repeatables' checksums come in the same round trip.
        let started = std::time::Instant::now();
        if *operation == (Operation::Up { to: None })
            && engine::up_to_date_with_repeatables(conn, self.migrations, &self.config).await
        {
            return Ok(Report {
                up_to_date_fast: true,
                duration: started.elapsed(),
                ..Report::default()
            });
        }
        let resolved = self.resolved()?;
        let (_, config, mut events) = self.parts();
        let mut report = engine::run(conn, &resolved, config, operation, &mut *events).await?;
        // Repeatables follow a complete `up` (not `up --to`, `down` or `redo`).
        if *operation == (Operation::Up { to: None }) {
            report.repeatables = crate::repeatable::apply(conn, &resolved, config).await?;
            // The versioned history was current (the engine's check found it so), but a
            // repeatable ran: the run did something, under the lock, so it was not the warm
            // start's no-op.
            if !report.repeatables.is_empty() {
                report.up_to_date_fast = false;
            }
        }
        Ok(report)
    }

    async fn repeatable_status_on<C: Conn>(
        &self,
        conn: &mut C,
    ) -> Result<Vec<crate::RepeatableStatus>, Error> {
        crate::repeatable::status(conn, self.migrations, &self.config.names).await
    }

    async fn maintain_on<C: Conn>(
        &mut self,
        conn: &mut C,
        operation: Maintenance,
    ) -> Result<Vec<String>, Error> {
        let in_flight = self.in_flight.clone();
        let conn = &mut crate::db::Watched {
            conn,
            in_flight: in_flight.as_deref(),
        };
        let (migrations, config, mut events) = self.parts();
        engine::maintain(conn, migrations, config, &operation, &mut *events).await
    }

    async fn plan_on<C: Conn>(&self, conn: &mut C, operation: &Operation) -> Result<Plan, Error> {
        let resolved = self.resolved()?;
        engine::dry_run(conn, &resolved, &self.config, operation).await
    }

    async fn history_on<C: Conn>(&self, conn: &mut C) -> Result<Vec<AppliedMigration>, Error> {
        engine::read_history_if_any(conn, &self.config.names).await
    }

    async fn status_on<C: Conn>(&self, conn: &mut C) -> Result<Vec<StatusLine>, Error> {
        let history = self.history_on(conn).await?;
        Ok(crate::plan::status(self.migrations, &history))
    }

    async fn wait_on<C: Conn>(
        &self,
        conn: &mut C,
        timeout: Duration,
    ) -> Result<crate::Ready, Error> {
        crate::ready::wait_until_migrated(
            conn,
            self.migrations,
            &self.config,
            timeout,
            self.config.lock_poll,
        )
        .await
    }

    /// The warm check of [`Migrator::execute_on`]'s plain `up`, alone.
    async fn is_up_to_date_on<C: Conn>(&self, conn: &mut C) -> bool {
        engine::up_to_date_with_repeatables(conn, self.migrations, &self.config).await
    }

    /// The warm check from digests kept since an earlier run ([`Migrator::current_digests`]).
    async fn is_digest_current_on<C: Conn>(
        conn: &mut C,
        names: &Names,
        digests: &[[u8; 32]],
    ) -> bool {
        let Ok(rows) = conn.simple(&names.warm_check()).await else {
            return false;
        };
        rows.first()
            .and_then(|r| r.first())
            .and_then(|c| c.as_deref())
            .and_then(crate::sql::parse_digest_bits)
            .is_some_and(|stored| digests.contains(&stored))
    }

    async fn audit_on<C: Conn>(&self, conn: &mut C) -> Result<Vec<crate::AuditEvent>, Error> {
        engine::read_audit(conn, &self.config.names).await
    }
}

/// The sync driver: `postgres::Client`. The engine's futures complete inside `poll` here, so
/// they are driven without a runtime.
#[cfg(feature = "postgres")]
mod sync_driver {
    use super::*;
    use crate::db::{block_on, SyncConn};

    impl Migrator<'_> {
        /// Applies every pending migration: what a service calls on start.
        ///
        /// When everything is already applied this is one query and takes no lock
        /// ([`Report::up_to_date_fast`]). Otherwise it takes the migrations lock (waiting up to
        /// [`lock_wait`](Migrator::lock_wait) for another runner), creates the history tables
        /// if needed, refuses drift before running anything ([`Error::is_drift`]), and applies
        /// each migration with its history row. On error, migrations applied before the
        /// failing one stay applied; the failing one is rolled back (or, run outside a
        /// transaction, recorded as failed until `repair`).
        ///
        /// ```no_run
        /// use migrations_core::{embed_migrations, Migrations, Migrator};
        /// static MIGRATIONS: Migrations = embed_migrations!("tests/fixtures/doc");
        ///
        /// let url = std::env::var("DATABASE_URL")?;
        /// let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
        /// let report = Migrator::new(&MIGRATIONS).run(&mut client)?;
        /// println!("{} applied in {:?}", report.ran.len(), report.duration);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn run(&mut self, client: &mut postgres::Client) -> Result<Report, Error> {
            self.execute(client, &Operation::Up { to: None })
        }

        /// Runs an operation: up to a version, down, redo.
        pub fn execute(
            &mut self,
            client: &mut postgres::Client,
            operation: &Operation,
        ) -> Result<Report, Error> {
            block_on(self.execute_on(&mut SyncConn(client), operation))
        }

        /// Connects with `options`, applies every pending migration, and closes the connection
        /// (the lock goes with it on every exit path).
        ///
        /// A connection that stalls (stops passing bytes without closing) blocks this call:
        /// the driver has no read timeout. To bound it, connect yourself and run with a
        /// [`Watchdog`](crate::watchdog::Watchdog) ([`Migrator::watch`]), as the CLI does: it
        /// ends the stalled session, which frees the lock, and tells your callback, which
        /// decides what to do with the blocked thread.
        #[cfg(feature = "connect")]
        pub fn connect_and_run(
            &mut self,
            options: &crate::connect::ConnectOptions,
        ) -> Result<Report, Error> {
            let mut client = crate::connect::connect(options)?;
            self.run(&mut client)
        }

        /// Reverts applied migrations, newest first.
        pub fn down(
            &mut self,
            client: &mut postgres::Client,
            target: DownTarget,
        ) -> Result<Report, Error> {
            self.execute(client, &Operation::Down(target))
        }

        /// Clears failed rows (all, or one version), dropping the invalid indexes they name, so
        /// the next `up` runs those files again; with `accept_checksum`, also records the
        /// current checksum of edited migrations. Returns one line per change; all are audited.
        pub fn repair(
            &mut self,
            client: &mut postgres::Client,
            version: Option<i64>,
            accept_checksum: bool,
        ) -> Result<Vec<String>, Error> {
            let operation = Maintenance::Repair {
                version,
                accept_checksum,
            };
            block_on(self.maintain_on(&mut SyncConn(client), operation))
        }

        /// Records every migration up to `version` as applied without running it, for a
        /// database that already has that schema.
        pub fn baseline(
            &mut self,
            client: &mut postgres::Client,
            version: i64,
        ) -> Result<Vec<String>, Error> {
            let operation = Maintenance::Baseline { version };
            block_on(self.maintain_on(&mut SyncConn(client), operation))
        }

        /// Imports the history of a database that diesel or sqlx managed: its rows (all of
        /// them, or with `Some(version)` those up to it) are recorded as applied, diesel's on
        /// trust, sqlx's after checking their SHA-384 against the files and refusing rows sqlx
        /// marked failed. Nothing runs; an up of comments alone is adopted like any other.
        pub fn adopt(
            &mut self,
            client: &mut postgres::Client,
            tool: Tool,
            version: Option<i64>,
        ) -> Result<Vec<String>, Error> {
            let operation = Maintenance::Adopt { tool, version };
            block_on(self.maintain_on(&mut SyncConn(client), operation))
        }

        /// Appends an event to the audit table (creating the history tables if needed), under
        /// the migrations lock. The CLI records `lock-rewrite` this way.
        pub fn record_audit(
            &mut self,
            client: &mut postgres::Client,
            event: &str,
            version: Option<i64>,
            name: Option<&str>,
            checksum: Option<&str>,
            detail: Option<&str>,
        ) -> Result<(), Error> {
            let operation = Maintenance::record(event, version, name, checksum, detail);
            block_on(self.maintain_on(&mut SyncConn(client), operation)).map(|_| ())
        }

        /// What `operation` would do, without the lock and without changing anything.
        pub fn plan(
            &self,
            client: &mut postgres::Client,
            operation: &Operation,
        ) -> Result<Plan, Error> {
            block_on(self.plan_on(&mut SyncConn(client), operation))
        }

        /// Waits until the database has every migration this set carries (of the
        /// [`phase`](Migrator::phase): the pre-deployment ones by default), for replicas and
        /// init containers that must not migrate. Takes no lock and writes nothing (a
        /// read-only role is enough); the first look is the one-query warm check. Returns at
        /// once with the runner's refusal on drift or a database this set is too old for
        /// ([`PlanError::Incompatible`](crate::plan::PlanError::Incompatible)), and with
        /// [`Error::WaitTimeout`] when `timeout` passes first.
        ///
        /// ```no_run
        /// use std::time::Duration;
        /// use migrations_core::{embed_migrations, Migrations, Migrator};
        /// static MIGRATIONS: Migrations = embed_migrations!("tests/fixtures/doc");
        ///
        /// let mut client = postgres::Client::connect("postgres://localhost/app", postgres::NoTls)?;
        /// Migrator::new(&MIGRATIONS).wait_until_migrated(&mut client, Duration::from_secs(300))?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn wait_until_migrated(
            &self,
            client: &mut postgres::Client,
            timeout: Duration,
        ) -> Result<crate::Ready, Error> {
            block_on(self.wait_on(&mut SyncConn(client), timeout))
        }

        /// Whether a plain `up` (of this migrator's phase) has nothing to do, by the warm-start
        /// check alone: one query reading one row (and the repeatable migrations' checksums,
        /// when the set has some), no lock, nothing written. `false` means "cannot tell this
        /// way" (something pending, a repeatable new or changed, drift, no history yet, an
        /// older history format, an error): take the run, which decides and reports. The CLI
        /// asks it before reading the files' text.
        pub fn is_up_to_date(&self, client: &mut postgres::Client) -> bool {
            block_on(self.is_up_to_date_on(&mut SyncConn(client)))
        }

        /// [`is_up_to_date`](Migrator::is_up_to_date) without the set: whether the history
        /// `names` names holds one of `digests`, kept since an earlier run
        /// ([`Migrator::current_digests`] of the same set, phase and `[run]` settings). The
        /// same one query; `false` means "cannot tell this way".
        pub fn is_digest_current(
            client: &mut postgres::Client,
            names: &Names,
            digests: &[[u8; 32]],
        ) -> bool {
            block_on(Migrator::is_digest_current_on(
                &mut SyncConn(client),
                names,
                digests,
            ))
        }

        /// Every migration, known or recorded, with its state.
        pub fn status(&self, client: &mut postgres::Client) -> Result<Vec<StatusLine>, Error> {
            block_on(self.status_on(&mut SyncConn(client)))
        }

        /// Every repeatable migration, known or recorded, with its state (applied, changed,
        /// pending, missing), in name order.
        pub fn repeatable_status(
            &self,
            client: &mut postgres::Client,
        ) -> Result<Vec<crate::RepeatableStatus>, Error> {
            block_on(self.repeatable_status_on(&mut SyncConn(client)))
        }

        /// The audit events, oldest first (none when there is no history table yet).
        pub fn audit(
            &self,
            client: &mut postgres::Client,
        ) -> Result<Vec<crate::AuditEvent>, Error> {
            block_on(self.audit_on(&mut SyncConn(client)))
        }

        /// The history table's rows (none when it does not exist yet).
        pub fn history(
            &self,
            client: &mut postgres::Client,
        ) -> Result<Vec<AppliedMigration>, Error> {
            block_on(self.history_on(&mut SyncConn(client)))
        }
    }
}

/// The async driver: `tokio_postgres::Client`. If the future is dropped mid-run, discard the
/// client: its session may still hold the migrations lock or an open transaction until it
/// closes.
#[cfg(feature = "tokio-postgres")]
mod async_driver {
    use super::*;
    use crate::db::AsyncConn;

    impl Migrator<'_> {
        /// Applies every pending migration: the async twin of [`Migrator::run`], with the same
        /// steps and guarantees. If the future is dropped mid-run, discard the client (its
        /// session may still hold the migrations lock).
        ///
        /// ```no_run
        /// use migrations_core::{embed_migrations, Migrations, Migrator};
        /// static MIGRATIONS: Migrations = embed_migrations!("tests/fixtures/doc");
        ///
        /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
        /// let url = std::env::var("DATABASE_URL")?;
        /// let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        /// tokio::spawn(async move {
        ///     if let Err(e) = connection.await {
        ///         eprintln!("connection error: {e}");
        ///     }
        /// });
        /// let report = Migrator::new(&MIGRATIONS).run_async(&mut client).await?;
        /// println!("{} applied in {:?}", report.ran.len(), report.duration);
        /// # Ok(())
        /// # }
        /// ```
        pub async fn run_async(
            &mut self,
            client: &mut tokio_postgres::Client,
        ) -> Result<Report, Error> {
            self.execute_async(client, &Operation::Up { to: None })
                .await
        }

        /// Runs an operation: up to a version, down, redo.
        pub async fn execute_async(
            &mut self,
            client: &mut tokio_postgres::Client,
            operation: &Operation,
        ) -> Result<Report, Error> {
            self.execute_on(&mut AsyncConn(client), operation).await
        }

        /// Connects with `options`, applies every pending migration, and closes the connection.
        /// The runner owns this connection: if the future is dropped mid-run, the connection
        /// closes with it, and the server releases the migrations lock and rolls back the
        /// open transaction.
        /// A connection that stalls (stops passing bytes without closing) is not noticed here,
        /// and dropping the future then reaches nobody: the session keeps the lock until the
        /// stall ends. [`crate::watchdog`] tells that case apart and ends the session.
        #[cfg(feature = "connect")]
        pub async fn connect_and_run_async(
            &mut self,
            options: &crate::connect::ConnectOptions,
        ) -> Result<Report, Error> {
            let mut client = crate::connect::connect_async(options).await?;
            self.run_async(&mut client).await
        }

        /// Reverts applied migrations, newest first.
        pub async fn down_async(
            &mut self,
            client: &mut tokio_postgres::Client,
            target: DownTarget,
        ) -> Result<Report, Error> {
            self.execute_async(client, &Operation::Down(target)).await
        }

        /// Async twin of [`Migrator::repair`].
        pub async fn repair_async(
            &mut self,
            client: &mut tokio_postgres::Client,
            version: Option<i64>,
            accept_checksum: bool,
        ) -> Result<Vec<String>, Error> {
            let operation = Maintenance::Repair {
                version,
                accept_checksum,
            };
            self.maintain_on(&mut AsyncConn(client), operation).await
        }

        /// Async twin of [`Migrator::baseline`].
        pub async fn baseline_async(
            &mut self,
            client: &mut tokio_postgres::Client,
            version: i64,
        ) -> Result<Vec<String>, Error> {
            let operation = Maintenance::Baseline { version };
            self.maintain_on(&mut AsyncConn(client), operation).await
        }

        /// Async twin of [`Migrator::adopt`].
        pub async fn adopt_async(
            &mut self,
            client: &mut tokio_postgres::Client,
            tool: Tool,
            version: Option<i64>,
        ) -> Result<Vec<String>, Error> {
            let operation = Maintenance::Adopt { tool, version };
            self.maintain_on(&mut AsyncConn(client), operation).await
        }

        /// What `operation` would do, without the lock and without changing anything.
        pub async fn plan_async(
            &self,
            client: &mut tokio_postgres::Client,
            operation: &Operation,
        ) -> Result<Plan, Error> {
            self.plan_on(&mut AsyncConn(client), operation).await
        }

        /// Async twin of [`Migrator::record_audit`].
        pub async fn record_audit_async(
            &mut self,
            client: &mut tokio_postgres::Client,
            event: &str,
            version: Option<i64>,
            name: Option<&str>,
            checksum: Option<&str>,
            detail: Option<&str>,
        ) -> Result<(), Error> {
            let operation = Maintenance::record(event, version, name, checksum, detail);
            self.maintain_on(&mut AsyncConn(client), operation)
                .await
                .map(|_| ())
        }

        /// Every migration, known or recorded, with its state.
        pub async fn status_async(
            &self,
            client: &mut tokio_postgres::Client,
        ) -> Result<Vec<StatusLine>, Error> {
            self.status_on(&mut AsyncConn(client)).await
        }

        /// Async twin of [`Migrator::is_up_to_date`].
        pub async fn is_up_to_date_async(&self, client: &mut tokio_postgres::Client) -> bool {
            self.is_up_to_date_on(&mut AsyncConn(client)).await
        }

        /// Async twin of [`Migrator::is_digest_current`].
        pub async fn is_digest_current_async(
            client: &mut tokio_postgres::Client,
            names: &Names,
            digests: &[[u8; 32]],
        ) -> bool {
            Migrator::is_digest_current_on(&mut AsyncConn(client), names, digests).await
        }

        /// Async twin of [`Migrator::wait_until_migrated`]: sleeps with tokio between looks.
        pub async fn wait_until_migrated_async(
            &self,
            client: &mut tokio_postgres::Client,
            timeout: Duration,
        ) -> Result<crate::Ready, Error> {
            self.wait_on(&mut AsyncConn(client), timeout).await
        }

        /// Async twin of [`Migrator::repeatable_status`].
        pub async fn repeatable_status_async(
            &self,
            client: &mut tokio_postgres::Client,
        ) -> Result<Vec<crate::RepeatableStatus>, Error> {
            self.repeatable_status_on(&mut AsyncConn(client)).await
        }

        /// Async twin of [`Migrator::audit`].
        pub async fn audit_async(
            &self,
            client: &mut tokio_postgres::Client,
        ) -> Result<Vec<crate::AuditEvent>, Error> {
            self.audit_on(&mut AsyncConn(client)).await
        }

        /// Async twin of [`Migrator::history`].
        pub async fn history_async(
            &self,
            client: &mut tokio_postgres::Client,
        ) -> Result<Vec<AppliedMigration>, Error> {
            self.history_on(&mut AsyncConn(client)).await
        }
    }
}

/// The sqlx driver (feature `sqlx`): a `sqlx::PgConnection`, or one taken from a `PgPool`.
/// Same engine, same steps and guarantees as [`Migrator::run_async`].
///
/// A connection borrowed this way goes back to its owner (the pool) after the run. If the
/// future is dropped mid-run, close that connection instead of returning it to the pool
/// (`PoolConnection::close`): its session may still hold the migrations lock or an open
/// transaction. [`Migrator::run_sqlx_pool`] does this for you.
#[cfg(feature = "sqlx")]
mod sqlx_driver {
    use super::*;
    use crate::db_sqlx::SqlxConn;

    impl Migrator<'_> {
        /// Applies every pending migration on a sqlx connection: what a sqlx service calls on
        /// start, without opening a second client. A connection from a pool works too
        /// (`&mut pool.acquire().await?` derefs to `&mut PgConnection`).
        ///
        /// ```no_run
        /// use migrations_core::{embed_migrations, Migrations, Migrator};
        /// static MIGRATIONS: Migrations = embed_migrations!("tests/fixtures/doc");
        ///
        /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
        /// let pool = sqlx::PgPool::connect(&std::env::var("DATABASE_URL")?).await?;
        /// let mut conn = pool.acquire().await?;
        /// let report = Migrator::new(&MIGRATIONS).run_sqlx(&mut conn).await?;
        /// println!("{} applied in {:?}", report.ran.len(), report.duration);
        /// # Ok(())
        /// # }
        /// ```
        pub async fn run_sqlx(&mut self, conn: &mut sqlx::PgConnection) -> Result<Report, Error> {
            self.execute_sqlx(conn, &Operation::Up { to: None }).await
        }

        /// Applies every pending migration on a connection of its own taken out of `pool`
        /// (detached, so the pool opens another in its place), then closes it. If the future
        /// is dropped mid-run, that connection closes with it, and the server releases the
        /// migrations lock and rolls back the open transaction: nothing half-done goes back
        /// into the pool.
        pub async fn run_sqlx_pool(&mut self, pool: &sqlx::PgPool) -> Result<Report, Error> {
            use sqlx::Connection as _;
            let mut conn = pool
                .acquire()
                .await
                .map_err(|e| Error::Db {
                    context: "taking a connection from the sqlx pool".to_owned(),
                    source: crate::db_sqlx::from_sqlx(&e),
                })?
                .detach();
            let result = self.run_sqlx(&mut conn).await;
            // A failed close only loses the goodbye message: the session ends with the socket.
            let _ = conn.close().await;
            result
        }

        /// Runs an operation (up to a version, down, redo) on a sqlx connection.
        pub async fn execute_sqlx(
            &mut self,
            conn: &mut sqlx::PgConnection,
            operation: &Operation,
        ) -> Result<Report, Error> {
            self.execute_on(&mut SqlxConn(conn), operation).await
        }

        /// Reverts applied migrations, newest first, on a sqlx connection.
        pub async fn down_sqlx(
            &mut self,
            conn: &mut sqlx::PgConnection,
            target: DownTarget,
        ) -> Result<Report, Error> {
            self.execute_sqlx(conn, &Operation::Down(target)).await
        }

        /// What `operation` would do, without the lock and without changing anything.
        pub async fn plan_sqlx(
            &self,
            conn: &mut sqlx::PgConnection,
            operation: &Operation,
        ) -> Result<Plan, Error> {
            self.plan_on(&mut SqlxConn(conn), operation).await
        }

        /// Every migration, known or recorded, with its state.
        pub async fn status_sqlx(
            &self,
            conn: &mut sqlx::PgConnection,
        ) -> Result<Vec<StatusLine>, Error> {
            self.status_on(&mut SqlxConn(conn)).await
        }

        /// The history table's rows (none when it does not exist yet).
        pub async fn history_sqlx(
            &self,
            conn: &mut sqlx::PgConnection,
        ) -> Result<Vec<AppliedMigration>, Error> {
            self.history_on(&mut SqlxConn(conn)).await
        }

        /// Async twin of [`Migrator::repair`] on a sqlx connection.
        pub async fn repair_sqlx(
            &mut self,
            conn: &mut sqlx::PgConnection,
            version: Option<i64>,
            accept_checksum: bool,
        ) -> Result<Vec<String>, Error> {
            let operation = Maintenance::Repair {
                version,
                accept_checksum,
            };
            self.maintain_on(&mut SqlxConn(conn), operation).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use migrations_format::checksum::{chain_item, xor_into};

    /// The digests kept for each phase: the whole chain, and for the pre-deployment phase the
    /// chain without its newest post-deployment migrations, one more each time (the states
    /// after which `engine::digest_is_current` finds nothing to do; the CLI's tests check
    /// both against a database, `warm_start.rs`).
    #[test]
    fn the_kept_digests_are_the_chain_and_its_pending_post_deployment_suffixes() {
        let mut set = Migrations::for_tests(&[
            ("1", "a", "c1", false, true),
            ("2", "post_b", "c2", false, true),
            ("3", "c", "c3", true, true),
        ]);
        let last = Migrations::for_tests(&[("4", "post_d", "c4", false, false)]);
        // Inserting computes the chain digest.
        set.insert(last.iter().next().unwrap().clone());
        let all = *migrations_format::Checksum::from_hex(set.chain_digest())
            .unwrap()
            .as_bytes();
        let mut without_4 = all;
        xor_into(&mut without_4, &chain_item(4, "c4", false));
        let mut without_2_4 = without_4;
        xor_into(&mut without_2_4, &chain_item(2, "c2", false));
        let kept = |phase| Migrator::new(&set).phase(phase).current_digests().unwrap();
        assert_eq!(kept(Phase::Pre), [all, without_4, without_2_4]);
        assert_eq!(kept(Phase::Post), [all]);
        assert_eq!(kept(Phase::All), [all]);
    }
}
