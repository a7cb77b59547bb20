//! The fleet run: every target gets exactly the single run (its own connection, lock and drift
//! checks), at most `jobs` at a time, the canary first, then the waves.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::targets::{FleetError, Target};
use crate::embedded::Migrations;
use crate::error::Error;
use crate::migrator::Migrator;
use crate::plan::{Operation, PlanError, Status};
use crate::report::Ran;

/// What to do on each target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Run an operation (normally `Operation::Up { to: None }`) as
    /// [`Migrator::execute_async`] does.
    Run(Operation),
    /// Read each target's status: pending and drifted migrations, changing nothing.
    Status,
    /// Check each database against the migrations: drift (edited, missing, failed,
    /// out-of-order) fails the target; pending migrations do not.
    Verify,
    /// Wait, up to the timeout, until each target has every migration, as
    /// [`Migrator::wait_until_migrated_async`] does (no lock, nothing written).
    Wait {
        /// How long to wait for each target.
        timeout: Duration,
    },
}

impl Action {
    fn writes(&self) -> bool {
        matches!(self, Action::Run(_))
    }
}

/// Where a target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetState {
    /// Migrations ran on it.
    Migrated,
    /// Nothing to do: it has every migration (for `status`: nothing pending or drifted).
    Current,
    /// `status`/`verify`: migrations are pending (not an error).
    Pending,
    /// Drift (or a database too new for these migrations): refused, nothing ran.
    Drift,
    /// The run failed: connection, SQL error, lock wait, timeout.
    Failed,
    /// Not started: the canary failed, or `fail_fast` stopped the run first.
    Skipped,
}

impl TargetState {
    /// A stable identifier for output and JSON: `migrated`, `current`, `pending`, `drift`,
    /// `failed`, `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Migrated => "migrated",
            TargetState::Current => "current",
            TargetState::Pending => "pending",
            TargetState::Drift => "drift",
            TargetState::Failed => "failed",
            TargetState::Skipped => "skipped",
        }
    }

    /// Whether the target stopped on an error (drift or failure). Skipped ones did not run.
    pub fn is_error(self) -> bool {
        matches!(self, TargetState::Drift | TargetState::Failed)
    }
}

/// What happened on one target.
#[derive(Debug)]
#[non_exhaustive]
pub struct TargetReport {
    /// The target's name.
    pub name: String,
    /// The tenant schema, for a tenant target.
    pub tenant: Option<String>,
    /// The target's labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Where it ended.
    pub state: TargetState,
    /// The stage it ran in: 0 for the canary, then the waves from 1.
    pub stage: usize,
    /// The migrations that ran (for [`Action::Run`]), in order.
    pub applied: Vec<Ran>,
    /// `(version, name)` of the migrations not applied (status, verify) or still pending
    /// when the wait ended.
    pub pending: Vec<(i64, String)>,
    /// `(version, name, status)` of the drifted migrations (status, verify).
    pub drifted: Vec<(i64, String, Status)>,
    /// From connecting to closing the connection.
    pub duration: Duration,
    /// The error that ended it (its message never holds a password: connection errors are
    /// redacted by [`crate::connect`], and targets are named without one).
    pub error: Option<Error>,
    /// Why a skipped target did not run.
    pub skipped_because: Option<String>,
}

/// The whole run.
#[derive(Debug)]
#[non_exhaustive]
pub struct FleetReport {
    /// One report per target, in the targets' order.
    pub targets: Vec<TargetReport>,
    /// Wall time of the run.
    pub duration: Duration,
    /// The most connections the run held at once (never above [`Fleet::jobs`]).
    pub peak_connections: usize,
}

impl FleetReport {
    /// How many targets ended in `state`.
    pub fn count(&self, state: TargetState) -> usize {
        self.targets.iter().filter(|t| t.state == state).count()
    }

    /// Whether every target ran without error (skipped ones count as errors: they did not
    /// get their migrations).
    pub fn all_ok(&self) -> bool {
        self.targets
            .iter()
            .all(|t| !t.state.is_error() && t.state != TargetState::Skipped)
    }
}

/// Counts while the run goes, for a live summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Targets in the run.
    pub total: usize,
    /// Targets running now.
    pub running: usize,
    /// Targets that ended without error.
    pub ok: usize,
    /// Targets that ended with an error.
    pub failed: usize,
    /// Targets that will not run.
    pub skipped: usize,
}

type Configure<'m> = Box<dyn Fn(Migrator<'m>, &Target) -> Migrator<'m> + 'm>;
type OnProgress<'m> = Box<dyn FnMut(&Progress, Option<&TargetReport>) + 'm>;

/// A fleet run: the same migrations on many targets. See the [module docs](super).
///
/// ```no_run
/// use migrations_core::fleet::{Action, Fleet, Target};
/// use migrations_core::connect::ConnectOptions;
/// use migrations_core::{embed_migrations, Migrations, Operation};
/// static MIGRATIONS: Migrations = embed_migrations!("tests/fixtures/doc");
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Target::database("app", ConnectOptions {
///     url: Some("postgres://app@db/app".into()),
///     ..ConnectOptions::default()
/// });
/// let tenants = migrations_core::fleet::list_tenants(&registry, "select schema_name from tenants").await?;
/// let targets: Vec<Target> = tenants.iter().map(|t| registry.tenant(t)).collect();
/// let report = Fleet::new(&MIGRATIONS, targets)
///     .jobs(8)
///     .canary(1)
///     .run_async(&Action::Run(Operation::Up { to: None }))
///     .await;
/// for t in &report.targets {
///     println!("{} {} {:?}", t.name, t.state.as_str(), t.error);
/// }
/// # Ok(())
/// # }
/// ```
pub struct Fleet<'m> {
    migrations: &'m Migrations,
    targets: Vec<Target>,
    jobs: usize,
    canary: usize,
    wave_size: Option<usize>,
    fail_fast: bool,
    configure: Configure<'m>,
    on_progress: Option<OnProgress<'m>>,
}

impl<'m> Fleet<'m> {
    /// A run of `migrations` over `targets` (in this order), one at a time until
    /// [`Fleet::jobs`] says otherwise.
    pub fn new(migrations: &'m Migrations, targets: Vec<Target>) -> Fleet<'m> {
        Fleet {
            migrations,
            targets,
            jobs: 1,
            canary: 0,
            wave_size: None,
            fail_fast: false,
            configure: Box::new(|m, _| m),
            on_progress: None,
        }
    }

    /// How many targets run at once (at least 1): also the most connections the run holds.
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// The first `k` targets run first, alone (at most `jobs` at a time); if any of them
    /// fails, no other target starts.
    pub fn canary(mut self, k: usize) -> Self {
        self.canary = k;
        self
    }

    /// After the canary, the targets run in waves of `n`: a wave starts when the previous one
    /// has ended. With [`Fleet::fail_fast`], no wave starts after a failure.
    pub fn wave_size(mut self, n: usize) -> Self {
        self.wave_size = (n > 0).then_some(n);
        self
    }

    /// After the first target that fails, start no other (those running finish: stopping a
    /// migration half-way is never safer than letting it end). Off by default: a failing
    /// target is reported and the others go on.
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Settings of each target's [`Migrator`] (timeouts, phase, placeholders, ...), applied
    /// after the tenant's own (schema, `search_path`, `${tenant}`), so they may override them.
    pub fn configure(
        mut self,
        configure: impl Fn(Migrator<'m>, &Target) -> Migrator<'m> + 'm,
    ) -> Self {
        self.configure = Box::new(configure);
        self
    }

    /// Called when a target starts (`None`) and ends (its report), with the counts.
    pub fn on_progress(
        mut self,
        callback: impl FnMut(&Progress, Option<&TargetReport>) + 'm,
    ) -> Self {
        self.on_progress = Some(Box::new(callback));
        self
    }

    /// The blocking twin of [`Fleet::run_async`]: runs it on a Tokio runtime of its own.
    /// Refused inside a runtime (it would block that runtime's thread): call
    /// [`Fleet::run_async`] there.
    pub fn run(self, action: &Action) -> Result<FleetReport, FleetError> {
        Ok(super::targets::runtime()?.block_on(self.run_async(action)))
    }

    /// Runs `action` on every target and reports each one. A target's failure never stops
    /// the others, unless [`Fleet::fail_fast`] or the canary says so.
    ///
    /// The targets run as futures of this one task (no `Send` or `'static` asked of the
    /// migrations): the work is the servers', the client only waits.
    pub async fn run_async(mut self, action: &Action) -> FleetReport {
        let started = Instant::now();
        let total = self.targets.len();
        let canary = self.canary.min(total);
        // Stages: the canary, then the waves (one wave: all the rest).
        let mut stages: Vec<std::ops::Range<usize>> = Vec::new();
        if canary > 0 {
            stages.push(0..canary);
        }
        let wave = self.wave_size.unwrap_or(total.max(1));
        let mut at = canary;
        while at < total {
            stages.push(at..(at + wave).min(total));
            at += wave;
        }
        let reports: RefCell<Vec<Option<TargetReport>>> =
            RefCell::new((0..total).map(|_| None).collect());
        let shared = Shared {
            progress: RefCell::new(Progress {
                total,
                ..Progress::default()
            }),
            on_progress: RefCell::new(self.on_progress.take()),
            open: Cell::new(0),
            peak: Cell::new(0),
            stop: RefCell::new(None),
        };
        for (number, stage) in stages.iter().enumerate() {
            let stage_number = if canary > 0 { number } else { number + 1 };
            if shared.stop.borrow().is_none() {
                let next = Cell::new(stage.start);
                let workers = self.jobs.min(stage.len());
                let work = (0..workers).map(|_| async {
                    loop {
                        if shared.stop.borrow().is_some() {
                            break;
                        }
                        let i = next.get();
                        if i >= stage.end {
                            break;
                        }
                        next.set(i + 1);
                        shared.started();
                        let report = self
                            .one(&self.targets[i], action, stage_number, &shared)
                            .await;
                        if report.state.is_error() && self.fail_fast {
                            shared
                                .stop_because(format!("--fail-fast: {} failed first", report.name));
                        }
                        shared.ended(&report);
                        reports.borrow_mut()[i] = Some(report);
                    }
                });
                join_all(work.collect()).await;
                let canary_failed = number == 0
                    && canary > 0
                    && reports.borrow()[stage.clone()]
                        .iter()
                        .flatten()
                        .any(|r| r.state.is_error());
                if canary_failed {
                    shared.stop_because("the canary failed".to_owned());
                }
            }
            // What did not start is skipped, with the reason.
            let why = shared.stop.borrow().clone();
            if let Some(why) = why {
                for i in stage.clone() {
                    if reports.borrow()[i].is_none() {
                        let target = &self.targets[i];
                        let report = TargetReport {
                            skipped_because: Some(why.clone()),
                            ..TargetReport::new(target, TargetState::Skipped, stage_number)
                        };
                        shared.ended(&report);
                        reports.borrow_mut()[i] = Some(report);
                    }
                }
            }
        }
        FleetReport {
            targets: reports.into_inner().into_iter().flatten().collect(),
            duration: started.elapsed(),
            peak_connections: shared.peak.get(),
        }
    }

    /// One target: connect, the single run, close (and wait until the session is gone, so a
    /// worker's next connection never overlaps its last).
    async fn one(
        &self,
        target: &Target,
        action: &Action,
        stage: usize,
        shared: &Shared<'m>,
    ) -> TargetReport {
        let started = Instant::now();
        let mut report = TargetReport::new(target, TargetState::Failed, stage);
        let outcome = async {
            let (mut client, task) =
                crate::connect::connect_async_owned(target.connect_options()).await?;
            shared.opened();
            let result = self.act(&mut client, target, action, &mut report).await;
            drop(client);
            let _ = task.await;
            shared.closed();
            result
        }
        .await;
        if let Err(error) = outcome {
            report.state = match &error {
                Error::Plan(PlanError::Drift(_)) | Error::Plan(PlanError::Incompatible { .. }) => {
                    TargetState::Drift
                }
                _ => TargetState::Failed,
            };
            if let Error::WaitTimeout { pending, .. } = &error {
                report.pending = pending.clone();
            }
            report.error = Some(error);
        }
        report.duration = started.elapsed();
        report
    }

    async fn act(
        &self,
        client: &mut tokio_postgres::Client,
        target: &Target,
        action: &Action,
        report: &mut TargetReport,
    ) -> Result<(), Error> {
        let mut migrator = Migrator::new(self.migrations);
        if let Some(schema) = target.tenant_schema() {
            if action.writes() {
                // A new tenant's schema: its history goes there, so it must exist first.
                let sql = format!(
                    "CREATE SCHEMA IF NOT EXISTS {}",
                    crate::sql::quote_ident(schema)
                );
                client.batch_execute(&sql).await.map_err(|e| Error::Db {
                    context: format!("creating the tenant's schema {schema}"),
                    source: crate::db::from_pg(&e),
                })?;
            }
            migrator = migrator
                .schema(schema)
                .search_path(format!("{}, public", crate::sql::quote_ident(schema)))
                .placeholder("tenant", schema);
        }
        let mut migrator = (self.configure)(migrator, target);
        match action {
            Action::Run(operation) => {
                let ran = migrator.execute_async(client, operation).await?;
                report.state = if ran.ran.is_empty() {
                    TargetState::Current
                } else {
                    TargetState::Migrated
                };
                report.applied = ran.ran;
            }
            Action::Status | Action::Verify => {
                for line in migrator.status_async(client).await? {
                    match line.status {
                        Status::Applied | Status::Future | Status::PendingPost => {}
                        Status::Pending | Status::Running => {
                            report.pending.push((line.version, line.name))
                        }
                        other => report.drifted.push((line.version, line.name, other)),
                    }
                }
                report.state = if !report.drifted.is_empty() {
                    TargetState::Drift
                } else if !report.pending.is_empty() {
                    TargetState::Pending
                } else {
                    TargetState::Current
                };
            }
            Action::Wait { timeout } => {
                migrator.wait_until_migrated_async(client, *timeout).await?;
                report.state = TargetState::Current;
            }
        }
        Ok(())
    }
}

impl TargetReport {
    fn new(target: &Target, state: TargetState, stage: usize) -> TargetReport {
        TargetReport {
            name: target.name().to_owned(),
            tenant: target.tenant_schema().map(str::to_owned),
            labels: target.labels().clone(),
            state,
            stage,
            applied: Vec::new(),
            pending: Vec::new(),
            drifted: Vec::new(),
            duration: Duration::ZERO,
            error: None,
            skipped_because: None,
        }
    }
}

/// What the workers of one task share: counts, the connection gauge, the stop reason.
struct Shared<'m> {
    progress: RefCell<Progress>,
    on_progress: RefCell<Option<OnProgress<'m>>>,
    open: Cell<usize>,
    peak: Cell<usize>,
    stop: RefCell<Option<String>>,
}

impl Shared<'_> {
    fn tell(&self, report: Option<&TargetReport>) {
        let progress = *self.progress.borrow();
        if let Some(callback) = self.on_progress.borrow_mut().as_mut() {
            callback(&progress, report);
        }
    }

    fn started(&self) {
        self.progress.borrow_mut().running += 1;
        self.tell(None);
    }

    fn ended(&self, report: &TargetReport) {
        {
            let mut p = self.progress.borrow_mut();
            match report.state {
                TargetState::Skipped => p.skipped += 1,
                state => {
                    p.running -= 1;
                    if state.is_error() {
                        p.failed += 1;
                    } else {
                        p.ok += 1;
                    }
                }
            }
        }
        self.tell(Some(report));
    }

    fn opened(&self) {
        self.open.set(self.open.get() + 1);
        self.peak.set(self.peak.get().max(self.open.get()));
    }

    fn closed(&self) {
        self.open.set(self.open.get() - 1);
    }

    fn stop_because(&self, why: String) {
        let mut stop = self.stop.borrow_mut();
        if stop.is_none() {
            *stop = Some(why);
        }
    }
}

/// Polls every future until all are done (the workers of a stage), on the caller's task.
async fn join_all<F: Future<Output = ()>>(futures: Vec<F>) {
    let mut futures: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for slot in futures.iter_mut() {
            if let Some(future) = slot {
                if future.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    pending = true;
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await
}
