//! The round trip itself, written once as `async` code over [`Conn`] (as the engine is): the
//! sync check drives it with `block_on` over `postgres::Client`s, the async one awaits it over
//! `tokio_postgres::Client`s. What differs between the two is only how a scratch database is
//! reached: [`Server`].

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use super::data;
use super::stale;
use super::{
    Error, Interrupt, MigrationCheck, NotChecked, Options, Outcome, RoundTripReport, Stopped,
};
use crate::db::{Conn, DbError};
use crate::embedded::{Migration, Migrations};
use crate::plan::{Direction, DownTarget, Operation};
use crate::snapshot::{self, Snapshot};
use crate::sql::{quote_ident, Names};

/// How the check reaches the server: a maintenance connection (create and drop databases) and
/// a way to connect to a scratch database by name.
pub(crate) trait Server {
    /// A connection to a scratch database.
    type Client;

    /// The maintenance connection, as a [`Conn`].
    fn admin(&mut self) -> impl Conn + '_;

    /// Connects to the database `name` on the same server.
    fn connect(&mut self, name: &str) -> impl Future<Output = Result<Self::Client, String>>;

    /// A scratch connection as a [`Conn`].
    fn conn(client: &mut Self::Client) -> impl Conn + '_;

    /// What [`Interrupt::trigger`] cancels the running query with (the sync client's).
    fn cancel_token(client: &Self::Client) -> Option<postgres::CancelToken>;

    /// Drops the database where nothing can be awaited: a panic unwinding through the check, or
    /// the async check's future dropped half-way.
    fn drop_abandoned(&mut self, name: &str);

    /// A blocking connection to the database `name`, for a [`LockWatch`] thread.
    fn watcher(&mut self, name: &str) -> Option<postgres::Client>;
}

/// Watches, from a second session on its own thread, the table locks another backend holds
/// while it runs a no-transaction up (which cannot run inside the probe's transaction): polls
/// `pg_locks` back to back until [`LockWatch::finish`] (best effort: a lock held for less than
/// one poll can be missed).
pub(crate) struct LockWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(u32, usize, Instant, Instant)>>,
}

impl LockWatch {
    fn start(mut client: postgres::Client, pid: &str) -> LockWatch {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let sql = crate::sql::relation_locks("", pid);
        let thread = std::thread::spawn(move || {
            // (table oid, mode) -> first and last seen.
            let mut seen: std::collections::BTreeMap<(u32, usize), (Instant, Instant)> =
                Default::default();
            loop {
                let last = stopped.load(Ordering::SeqCst);
                let Ok(messages) = client.simple_query(&sql) else {
                    break;
                };
                let now = Instant::now();
                for message in messages {
                    if let postgres::SimpleQueryMessage::Row(row) = message {
                        let oid = row.get(0).and_then(|o| o.parse().ok());
                        let mode = row
                            .get(1)
                            .and_then(|m| data::LOCK_MODES.iter().position(|x| *x == m));
                        if let (Some(oid), Some(mode)) = (oid, mode) {
                            seen.entry((oid, mode)).or_insert((now, now)).1 = now;
                        }
                    }
                }
                // No pause: a lock held for less than one poll (a fraction of a millisecond
                // here) is missed, and the watch lasts only as long as the up.
                if last {
                    break;
                }
            }
            seen.into_iter()
                .map(|((oid, mode), (first, last))| (oid, mode, first, last))
                .collect()
        });
        LockWatch { stop, thread }
    }

    /// The strongest mode seen on each table of `before`, and for how long it was seen.
    fn finish(self, before: &std::collections::BTreeMap<u32, String>) -> Vec<super::ObservedLock> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let seen = self.thread.join().unwrap_or_default();
        let seen = seen
            .into_iter()
            .map(|(oid, mode, first, last)| (oid, mode, last.duration_since(first)));
        data::strongest_locks(seen, before)
    }
}

/// The sync check's server: the caller's `postgres::Client` and its way to connect.
pub(crate) struct SyncServer<'c, F> {
    pub(crate) admin: &'c mut postgres::Client,
    pub(crate) connect: F,
}

impl<F, E> Server for SyncServer<'_, F>
where
    F: FnMut(&str) -> Result<postgres::Client, E>,
    E: fmt::Display,
{
    type Client = postgres::Client;

    fn admin(&mut self) -> impl Conn + '_ {
        crate::db::SyncConn(&mut *self.admin)
    }

    async fn connect(&mut self, name: &str) -> Result<postgres::Client, String> {
        (self.connect)(name).map_err(|e| e.to_string())
    }

    fn conn(client: &mut postgres::Client) -> impl Conn + '_ {
        crate::db::SyncConn(client)
    }

    fn cancel_token(client: &postgres::Client) -> Option<postgres::CancelToken> {
        Some(client.cancel_token())
    }

    fn drop_abandoned(&mut self, name: &str) {
        crate::db::block_on(drop_database(&mut self.admin(), name));
    }

    fn watcher(&mut self, name: &str) -> Option<postgres::Client> {
        (self.connect)(name).ok()
    }
}

/// The async check's server: its own maintenance client (shared with a task that drops an
/// abandoned scratch database) and the connection options.
#[cfg(feature = "connect")]
pub(crate) struct AsyncServer {
    pub(crate) admin: std::sync::Arc<tokio_postgres::Client>,
    pub(crate) options: crate::connect::ConnectOptions,
}

#[cfg(feature = "connect")]
impl Server for AsyncServer {
    type Client = tokio_postgres::Client;

    fn admin(&mut self) -> impl Conn + '_ {
        crate::db::AsyncConn(&self.admin)
    }

    async fn connect(&mut self, name: &str) -> Result<tokio_postgres::Client, String> {
        crate::connect::connect_async(&crate::connect::ConnectOptions {
            database: Some(name.to_owned()),
            ..self.options.clone()
        })
        .await
        .map_err(|e| e.to_string())
    }

    fn conn(client: &mut tokio_postgres::Client) -> impl Conn + '_ {
        crate::db::AsyncConn(client)
    }

    fn cancel_token(_: &tokio_postgres::Client) -> Option<postgres::CancelToken> {
        // Dropping the async check's future is how it is stopped.
        None
    }

    fn drop_abandoned(&mut self, name: &str) {
        // Nothing can be awaited here: hand the drop to the runtime, if there still is one
        // (else the next check finds the database stale and drops it).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let admin = self.admin.clone();
            let name = name.to_owned();
            runtime.spawn(async move {
                drop_database(&mut crate::db::AsyncConn(&admin), &name).await;
            });
        }
    }

    fn watcher(&mut self, name: &str) -> Option<postgres::Client> {
        // A blocking client, connected on a thread of its own (no runtime there).
        let options = crate::connect::ConnectOptions {
            database: Some(name.to_owned()),
            ..self.options.clone()
        };
        std::thread::spawn(move || crate::connect::connect(&options).ok())
            .join()
            .ok()
            .flatten()
    }
}

/// `DROP DATABASE ... WITH (FORCE)` (plain `DROP DATABASE` before PostgreSQL 13).
async fn drop_database<C: Conn>(admin: &mut C, name: &str) {
    let quoted = quote_ident(name);
    let forced = admin
        .simple(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        .await;
    let result = match forced {
        // Before PostgreSQL 13 there is no FORCE (a syntax error); PostgreSQL waits a few
        // seconds for the closed sessions itself.
        Err(e) if e.code.as_deref() == Some("42601") => admin
            .simple(&format!("DROP DATABASE IF EXISTS {quoted}"))
            .await
            .map(drop),
        other => other.map(drop),
    };
    match result {
        Ok(()) => log::debug!("dropped the scratch database {name}"),
        Err(e) => log::error!("could not drop the scratch database {name}: {e}; drop it by hand"),
    }
}

/// The whole check: the scratch database created, stale ones of killed runs dropped, every
/// migration of the range checked, the scratch database dropped (on every exit path).
pub(crate) async fn run<S: Server>(
    server: S,
    migrations: &Migrations,
    mut options: Options<'_>,
) -> Result<RoundTripReport, Error> {
    let started = Instant::now();
    let migrations = resolve(migrations, &options)?;
    let migrations: &Migrations = &migrations;
    let list: Vec<&Migration> = migrations.iter().collect();
    let max_lock = match &options.settings.max_lock {
        Some(mode) => {
            Some(data::parse_lock_mode(mode).ok_or_else(|| Error::LockMode(mode.clone()))?)
        }
        None => None,
    };
    let (first, last) = range(&list, &options)?;
    let mut scratch = Scratch {
        server,
        name: stale::scratch_name(),
        client: None,
        interrupt: options.settings.interrupt.clone(),
        template: options.settings.template.clone(),
        live: false,
        prepared: (false, false),
    };
    let stale_dropped = stale::drop_stale(&mut scratch.server.admin()).await;
    scratch.create().await?;
    let mut report = RoundTripReport {
        migrations: Vec::new(),
        stopped: None,
        database: scratch.name.clone(),
        restarts: 0,
        duration: Duration::ZERO,
        stale_dropped,
    };
    let result = check_range(
        &mut scratch,
        migrations,
        &list,
        first,
        last,
        max_lock,
        &mut options,
        &mut report,
    )
    .await;
    scratch.drop_database().await;
    result?;
    scratch.check_interrupt()?;
    report.duration = started.elapsed();
    Ok(report)
}

/// The positions in `list` of the first migration to check and of the one after the last.
fn range(list: &[&Migration], options: &Options<'_>) -> Result<(usize, usize), Error> {
    let position = |v: i64| {
        list.iter()
            .position(|m| m.version() == v)
            .ok_or(Error::UnknownVersion(v))
    };
    let first = options
        .settings
        .from
        .map(position)
        .transpose()?
        .unwrap_or(0);
    let last = match options.settings.to {
        Some(v) => position(v)? + 1,
        None => list.len(),
    };
    Ok((first, last))
}

/// What a part of a split check tells the thread that reports.
#[cfg(feature = "connect")]
enum Message {
    Checked(usize, Box<MigrationCheck>),
    Done(usize),
}

/// The check split into [`Options::jobs`] parts of the history, each on its own scratch
/// database, connection and thread (the server does the work: two sessions use two cores).
/// Part `j > 0` is a check from its first migration, whose setup applies every migration
/// before it unchecked. The callback sees the results in order: a part's are held until the
/// parts before it are done. When a part stops (an up failed), the parts after it are
/// dropped from the report and their migrations listed as not checked, as a single check
/// would have done.
#[cfg(feature = "connect")]
pub(crate) fn run_parallel(
    server: &crate::connect::ConnectOptions,
    migrations: &Migrations,
    mut options: Options<'_>,
) -> Result<RoundTripReport, Error> {
    use crate::connect::{connect, ConnectOptions};
    let started = Instant::now();
    let resolved = resolve(migrations, &options)?;
    let migrations: &Migrations = &resolved;
    let list: Vec<&Migration> = migrations.iter().collect();
    let (first, last) = range(&list, &options)?;
    let jobs = part_count(&options, first, last);
    let connect_admin = || {
        connect(server).map_err(|e| Error::Connect {
            what: "the server".to_owned(),
            message: e.to_string(),
        })
    };
    let scratch_connect = |database: &str| {
        connect(&ConnectOptions {
            database: Some(database.to_owned()),
            ..server.clone()
        })
    };
    if jobs == 1 {
        let mut admin = connect_admin()?;
        let server = SyncServer {
            admin: &mut admin,
            connect: scratch_connect,
        };
        return crate::db::block_on(run(server, migrations, options));
    }
    let bounds = split(&list, first, last, jobs);
    let (tx, rx) = std::sync::mpsc::channel::<Message>();
    let reports: Vec<Result<RoundTripReport, Error>> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for j in 0..jobs {
            let settings = part_settings(&options, &list, &bounds, j);
            let tx = tx.clone();
            let connect_admin = &connect_admin;
            let scratch_connect = &scratch_connect;
            let (from, to) = (bounds[j], bounds[j + 1]);
            handles.push(scope.spawn(move || {
                let report = (|| {
                    let mut admin = connect_admin()?;
                    let results = tx.clone();
                    let options = Options {
                        settings,
                        on_result: Some(Box::new(move |check: &MigrationCheck| {
                            let _ = results.send(Message::Checked(j, Box::new(check.clone())));
                        })),
                    };
                    let server = SyncServer {
                        admin: &mut admin,
                        connect: scratch_connect,
                    };
                    crate::db::block_on(run(server, migrations, options))
                })();
                // How balanced the split was (see `split`).
                log::debug!(
                    "part {} of {jobs} (migrations {} to {to}) took {} ms",
                    j + 1,
                    from + 1,
                    started.elapsed().as_millis()
                );
                let _ = tx.send(Message::Done(j));
                report
            }));
        }
        drop(tx);
        // Report each part's results once the parts before it are done, so they come in order.
        let mut held: Vec<Vec<MigrationCheck>> = vec![Vec::new(); jobs];
        let mut done = vec![false; jobs];
        let mut current = 0;
        for message in rx {
            match message {
                Message::Checked(j, check) => held[j].push(*check),
                Message::Done(j) => done[j] = true,
            }
            release_in_order(&mut held, &mut current, |j| done[j], &mut options);
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    merge(reports, &list, &bounds, started)
}

/// [`run_parallel`] for the async check: the parts are futures polled together on the
/// caller's task, each with its own maintenance and scratch sessions (the server runs them on
/// as many cores). Results reach the callback in order, as with the sync check.
#[cfg(feature = "connect")]
pub(crate) async fn run_parallel_async(
    server: &crate::connect::ConnectOptions,
    migrations: &Migrations,
    mut options: Options<'_>,
) -> Result<RoundTripReport, Error> {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::task::Poll;
    let started = Instant::now();
    let resolved = resolve(migrations, &options)?;
    let migrations: &Migrations = &resolved;
    let list: Vec<&Migration> = migrations.iter().collect();
    let (first, last) = range(&list, &options)?;
    let jobs = part_count(&options, first, last);
    let connect_admin = || async {
        let admin = crate::connect::connect_async(server)
            .await
            .map_err(|e| Error::Connect {
                what: "the server".to_owned(),
                message: e.to_string(),
            })?;
        Ok::<_, Error>(AsyncServer {
            admin: std::sync::Arc::new(admin),
            options: server.clone(),
        })
    };
    if jobs == 1 {
        return run(connect_admin().await?, migrations, options).await;
    }
    let bounds = split(&list, first, last, jobs);
    // Each part's results, until the parts before it are done.
    let held: Rc<RefCell<Vec<Vec<MigrationCheck>>>> = Rc::new(RefCell::new(vec![Vec::new(); jobs]));
    let mut parts = Vec::new();
    for j in 0..jobs {
        let settings = part_settings(&options, &list, &bounds, j);
        let held = held.clone();
        let part = Options {
            settings,
            on_result: Some(Box::new(move |check: &MigrationCheck| {
                held.borrow_mut()[j].push(check.clone());
            })),
        };
        let connect_admin = &connect_admin;
        parts.push(Box::pin(async move {
            run(connect_admin().await?, migrations, part).await
        }));
    }
    let mut reports: Vec<Option<Result<RoundTripReport, Error>>> =
        (0..jobs).map(|_| None).collect();
    let mut current = 0;
    std::future::poll_fn(|cx| {
        for (part, report) in parts.iter_mut().zip(reports.iter_mut()) {
            if report.is_none() {
                if let Poll::Ready(done) = part.as_mut().poll(cx) {
                    *report = Some(done);
                }
            }
        }
        release_in_order(
            &mut held.borrow_mut(),
            &mut current,
            |j| reports[j].is_some(),
            &mut options,
        );
        if reports.iter().all(Option::is_some) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    let reports = reports.into_iter().flatten().collect();
    merge(reports, &list, &bounds, started)
}

/// How many parts a check of migrations `first..last` is split into: the configured jobs,
/// with at least `MIN_PER_JOB` migrations per part, and one at least.
#[cfg(feature = "connect")]
fn part_count(options: &Options<'_>, first: usize, last: usize) -> usize {
    options
        .settings
        .jobs
        .min((last - first) / super::MIN_PER_JOB)
        .max(1)
}

/// The settings of part `j`: the check's own, limited to the part's migrations (the first
/// part keeps the check's own start).
#[cfg(feature = "connect")]
fn part_settings(
    options: &Options<'_>,
    list: &[&Migration],
    bounds: &[usize],
    j: usize,
) -> super::Settings {
    let mut settings = options.settings.clone();
    if j > 0 {
        settings.from = Some(list[bounds[j]].version());
    }
    settings.to = Some(list[bounds[j + 1] - 1].version());
    settings
}

/// Hands the held results of the parts to the caller's callback in order, from part
/// `current` on: all of a part's results so far, then the next part's once this one is
/// `done`.
#[cfg(feature = "connect")]
fn release_in_order(
    held: &mut [Vec<MigrationCheck>],
    current: &mut usize,
    done: impl Fn(usize) -> bool,
    options: &mut Options<'_>,
) {
    while *current < held.len() {
        if let Some(callback) = options.on_result.as_mut() {
            for check in held[*current].drain(..) {
                callback(&check);
            }
        }
        if !done(*current) {
            break;
        }
        *current += 1;
    }
}

/// The parts' reports as one check's: in order, a part after one that stopped listed as not
/// checked (a single check would not have reached it), an unfillable table reported once.
#[cfg(feature = "connect")]
fn merge(
    reports: Vec<Result<RoundTripReport, Error>>,
    list: &[&Migration],
    bounds: &[usize],
    started: Instant,
) -> Result<RoundTripReport, Error> {
    let mut parts = reports.into_iter().enumerate();
    let mut report = match parts.next() {
        Some((_, report)) => report?,
        None => unreachable!("jobs is at least 2 here"),
    };
    for (j, part) in parts {
        if let Some(stopped) = &mut report.stopped {
            // A part before stopped: a single check would not have reached this one.
            stopped
                .not_checked
                .extend(not_checked(&list[bounds[j]..bounds[j + 1]]));
            continue;
        }
        let part = part?;
        report.migrations.extend(part.migrations);
        report.stopped = part.stopped;
        report.restarts += part.restarts;
        report.stale_dropped.extend(part.stale_dropped);
    }
    // A table that cannot be filled is reported once per check, where it is first found.
    let mut unfillable: std::collections::BTreeSet<String> = Default::default();
    for m in &mut report.migrations {
        m.unfilled.retain(|u| unfillable.insert(u.table.clone()));
    }
    report.duration = started.elapsed();
    Ok(report)
}

/// Where the parts of a split check start and end (`jobs + 1` bounds, `first` to `last`):
/// parts of equal estimated cost, not of equal length. A migration costs a fixed part and a
/// part that grows with the schema it runs on (three snapshots, the rows of every table), so
/// the last parts of a history are the expensive ones: crates.io split in two equal halves
/// took 13 s and 39 s (one session each). The schema's size at a migration is estimated from
/// the files: the `CREATE`s less the `DROP`s of every up before it.
#[cfg(feature = "connect")]
fn split(list: &[&Migration], first: usize, last: usize, jobs: usize) -> Vec<usize> {
    // The fixed part, in objects of schema (fitted on crates.io: 5).
    const FIXED: u64 = 5;
    let mut size: u64 = 0;
    let mut weights = Vec::with_capacity(last - first);
    for (i, m) in list.iter().enumerate().take(last) {
        let (creates, drops) = create_drop_count(m.up().sql());
        size = (size + creates).saturating_sub(drops);
        if i >= first {
            weights.push(FIXED + size);
        }
    }
    bounds_by_weight(&weights, first, jobs)
}

/// `jobs + 1` bounds over `weights` (one per migration, the first at index `first`) cutting
/// it into parts of about equal weight, each of one migration at least.
#[cfg(any(feature = "connect", test))]
fn bounds_by_weight(weights: &[u64], first: usize, jobs: usize) -> Vec<usize> {
    let last = first + weights.len();
    let total: u64 = weights.iter().sum();
    let mut bounds = vec![first];
    let mut sum = 0;
    for (k, w) in weights.iter().enumerate() {
        let j = bounds.len() as u64;
        // Each part keeps at least one migration.
        if j < jobs as u64
            && sum >= total * j / jobs as u64
            && first + k > *bounds.last().unwrap_or(&first)
        {
            bounds.push(first + k);
        }
        sum += w;
    }
    if bounds.len() < jobs {
        // One migration outweighs a whole part: parts of equal length.
        return (0..=jobs)
            .map(|j| first + (last - first) * j / jobs)
            .collect();
    }
    bounds.push(last);
    bounds
}

/// How many `CREATE` and `DROP` words a script holds (comments and strings included: an
/// estimate).
#[cfg(any(feature = "connect", test))]
fn create_drop_count(sql: &str) -> (u64, u64) {
    let mut counts = (0, 0);
    for word in sql.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
        if word.eq_ignore_ascii_case("create") {
            counts.0 += 1;
        } else if word.eq_ignore_ascii_case("drop") {
            counts.1 += 1;
        }
    }
    counts
}

/// The set with its placeholders substituted once, as the engine runs it (each step's migrator
/// would resolve the whole set again).
fn resolve<'m>(
    migrations: &'m Migrations,
    options: &Options<'_>,
) -> Result<Cow<'m, Migrations>, Error> {
    if migrations.placeholders_resolved() || !migrations.holds_placeholders() {
        return Ok(Cow::Borrowed(migrations));
    }
    let values = options
        .settings
        .placeholders
        .as_ref()
        .map_err(|why| Error::Placeholder(why.clone()))?;
    migrations
        .with_placeholders(values)
        .map(Cow::Owned)
        .map_err(|e| Error::Placeholder(e.to_string()))
}

#[allow(clippy::too_many_arguments)]
async fn check_range<S: Server>(
    scratch: &mut Scratch<S>,
    migrations: &Migrations,
    list: &[&Migration],
    first: usize,
    last: usize,
    max_lock: Option<usize>,
    options: &mut Options<'_>,
    report: &mut RoundTripReport,
) -> Result<(), Error> {
    if first > 0 && first < last {
        let below = list[first - 1].version();
        let mut migrator = options.migrator(migrations);
        let applied = migrator
            .execute_on(&mut scratch.conn()?, &Operation::Up { to: Some(below) })
            .await;
        applied.map_err(|e| scratch.interrupted_or(Error::Setup(Box::new(e))))?;
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
            scratch,
            migrations,
            migration,
            options,
            max_lock,
            previous.take(),
        )
        .await?;
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
                spelling: crate::error::spelling(migration),
                name: migration.name().to_owned(),
                reason: "its up failed".to_owned(),
                not_checked: not_checked(&list[index + 1..last]),
            });
            break;
        }
        if restart {
            // Start over: a fresh database with every migration up to this one applied.
            report.restarts += 1;
            scratch.recreate().await?;
            let mut migrator = options.migrator(migrations);
            let up = Operation::Up {
                to: Some(migration.version()),
            };
            let applied = migrator.execute_on(&mut scratch.conn()?, &up).await;
            if let Err(e) = applied {
                let e = scratch.interrupted_or(Error::Setup(Box::new(e)));
                if matches!(e, Error::Interrupted(_)) {
                    return Err(e);
                }
                report.stopped = Some(Stopped {
                    version: migration.version(),
                    spelling: crate::error::spelling(migration),
                    name: migration.name().to_owned(),
                    reason: format!("starting over on a fresh database failed: {e}"),
                    not_checked: not_checked(&list[index + 1..last]),
                });
                break;
            }
        }
        index += 1;
    }
    // Repeatables (`R__<name>.sql`) follow the versioned migrations: applied once, on the
    // schema the last one leaves, so one that no longer fits it fails the test. (They are not
    // re-applied after each step.)
    if report.stopped.is_none() && last == list.len() && !migrations.repeatables().is_empty() {
        let mut migrator = options.migrator(migrations);
        let applied = migrator
            .execute_on(&mut scratch.conn()?, &Operation::Up { to: None })
            .await;
        applied.map_err(|e| scratch.interrupted_or(Error::Setup(Box::new(e))))?;
    }
    Ok(())
}

/// Whether the file's header says `-- migrations:lint-ignore <rule>` (for the whole file).
fn lint_ignores(sql: &str, rule: &str) -> bool {
    migrations_format::directive::parse_header(sql)
        .is_ok_and(|d| d.lint_ignore.iter().any(|(r, _)| r == rule))
}

fn not_checked(rest: &[&Migration]) -> Vec<NotChecked> {
    rest.iter()
        .map(|m| NotChecked {
            version: m.version(),
            spelling: crate::error::spelling(m),
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

async fn check_one<S: Server>(
    scratch: &mut Scratch<S>,
    migrations: &Migrations,
    migration: &Migration,
    options: &Options<'_>,
    max_lock: Option<usize>,
    previous: Option<Snapshot>,
) -> Result<Checked, Error> {
    let started = Instant::now();
    let version = migration.version();
    let migrator = options.migrator(migrations);
    let names = &options.names(migrations);
    let up = Operation::Up { to: Some(version) };
    let mut check = MigrationCheck {
        version,
        spelling: crate::error::spelling(migration),
        name: migration.name().to_owned(),
        outcome: Outcome::Passed,
        duration: Duration::ZERO,
        lossy_up: Vec::new(),
        unfilled: Vec::new(),
        locks: Vec::new(),
        locks_over: Vec::new(),
        down_locks: Vec::new(),
        fails_with_rows: None,
        non_deterministic: Vec::new(),
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
    let mut before_catalog = None;
    let before = if options.settings.schema_only {
        None
    } else {
        let catalog = scratch.catalog(names).await?;
        let data = scratch.data(&catalog).await?;
        let (unfilled, inserted) = scratch.fill(&catalog, &data, options.settings.rows).await?;
        check.unfilled = unfilled;
        let data = if inserted {
            scratch.data(&catalog).await?
        } else {
            data
        };
        before_catalog = Some(catalog);
        Some(data)
    };
    // The locks each transactional step holds before its COMMIT, read in the step's own batch.
    let held: crate::engine::LockSink = Default::default();
    let mut migrator = migrator.observe_locks(held.clone());
    let held_by = |direction: Direction, before: &data::Data| {
        let steps = held.lock().unwrap_or_else(|e| e.into_inner());
        steps
            .iter()
            .rev()
            .find(|s| s.version == version && s.direction == direction)
            .map(|step| data::step_locks(step, &before.oids()))
            .unwrap_or_default()
    };

    let s0 = match previous {
        Some(s) => s,
        None => scratch.snapshot(names).await?,
    };
    let mut before = before;
    // A no-transaction up is watched from a second session while it runs.
    let watch = match &before {
        Some(_) if migration.up().no_transaction() => scratch.watch_locks().await,
        _ => None,
    };
    let applied = scratch.execute(&mut migrator, &up).await?;
    if let (Some(watch), Some(data)) = (watch, &before) {
        check.locks = watch.finish(&data.oids());
    } else if let (Ok(_), Some(data)) = (&applied, &before) {
        check.locks = held_by(Direction::Up, data);
    }
    if let Some(max) = max_lock {
        if !lint_ignores(migration.up().sql(), super::MAX_LOCK_RULE) {
            check.locks_over = check
                .locks
                .iter()
                .filter(|l| data::LOCK_MODES.iter().position(|m| *m == l.mode) > Some(max))
                .cloned()
                .collect();
        }
    }
    if let Err(e) = applied {
        let error = scratch.finding(migration, e)?;
        // Our rows may be what the up cannot take (a NOT NULL column added without a
        // default): a transactional up was rolled back, so empty the tables and try again.
        if before.is_none() || migration.up().no_transaction() {
            return Ok(done(check, Outcome::UpFailed { error }, false, None));
        }
        scratch.empty_tables(names).await?;
        if let Err(again) = scratch.execute(&mut migrator, &up).await? {
            log::debug!("{version}: the up failed on empty tables too: {again}");
            return Ok(done(check, Outcome::UpFailed { error }, false, None));
        }
        check.fails_with_rows = Some(error);
        before = None;
    }
    let s1 = scratch.snapshot(names).await?;
    if let (Some(before), Some(catalog)) = (&before, &before_catalog) {
        // The columns the up kept, by name and type, read with the catalog of before the up.
        let after_up = scratch.data(&catalog.surviving(&s0, &s1)).await?;
        check.lossy_up = data::compare(before, &after_up, true);
    }
    let Some(down_script) = migration.down() else {
        return Ok(done(check, Outcome::NoDown, false, Some(s1)));
    };
    let down = Operation::Down(DownTarget::Count(1));
    let reverted = scratch.execute(&mut migrator, &down).await?;
    if let (Ok(_), Some(before)) = (&reverted, &before) {
        // The down's locks on the tables that were there before the up.
        check.down_locks = held_by(Direction::Down, before);
    }
    if let Err(e) = reverted {
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
    let s2 = scratch.snapshot(names).await?;
    let (after_down, frozen) = options.compare(&s0, &s2);
    check.non_deterministic.extend(frozen);
    let lost = match (&before, &before_catalog) {
        (Some(before), Some(catalog)) if after_down.is_empty() => {
            // The schema is S0 again, so the catalog read before the up still describes it.
            let after = scratch.data(catalog).await?;
            data::compare(before, &after, false)
        }
        _ => Vec::new(),
    };
    if let Err(e) = scratch.execute(&mut migrator, &up).await? {
        let error = scratch.finding(migration, e)?;
        let outcome = Outcome::Mismatch {
            after_down,
            after_redo: Vec::new(),
            redo_error: Some(error),
        };
        return Ok(done(check, outcome, true, None));
    }
    let s3 = scratch.snapshot(names).await?;
    let (after_redo, frozen) = options.compare(&s1, &s3);
    check.non_deterministic.extend(frozen);
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

/// The scratch database: created by [`Scratch::create`], dropped by
/// [`Scratch::drop_database`], or by `Drop` when the check is abandoned (a panic unwinding,
/// the async check's future dropped).
pub(crate) struct Scratch<S: Server> {
    server: S,
    name: String,
    client: Option<S::Client>,
    interrupt: Option<Interrupt>,
    template: Option<String>,
    /// Created and not dropped yet.
    live: bool,
    /// The snapshot and catalog queries are prepared in the current session.
    prepared: (bool, bool),
}

impl<S: Server> Scratch<S> {
    async fn create(&mut self) -> Result<(), Error> {
        self.check_interrupt()?;
        let mut sql = format!("CREATE DATABASE {}", quote_ident(&self.name));
        if let Some(template) = &self.template {
            sql.push_str(&format!(" TEMPLATE {}", quote_ident(template)));
        }
        self.server
            .admin()
            .simple(&sql)
            .await
            .map_err(|source| Error::CreateDatabase {
                name: self.name.clone(),
                source,
            })?;
        self.live = true;
        // Who made it, for the check that drops the databases of killed runs.
        let marker = stale::marker_sql(&self.name);
        if let Err(e) = self.server.admin().simple(&marker).await {
            log::debug!("could not mark the scratch database {}: {e}", self.name);
        }
        log::debug!("created the scratch database {}", self.name);
        let client = self
            .server
            .connect(&self.name)
            .await
            .map_err(|message| Error::Connect {
                what: format!("the scratch database {}", self.name),
                message,
            })?;
        if let Some(interrupt) = &self.interrupt {
            interrupt.set_token(&self.name, S::cancel_token(&client));
        }
        self.client = Some(client);
        self.prepared = (false, false);
        // A trigger that came while connecting found no query to cancel.
        self.check_interrupt()
    }

    async fn recreate(&mut self) -> Result<(), Error> {
        self.drop_database().await;
        self.create().await
    }

    async fn drop_database(&mut self) {
        if let Some(interrupt) = &self.interrupt {
            interrupt.set_token(&self.name, None);
        }
        // Close our own session first, so the drop does not have to end it.
        drop(self.client.take());
        if self.live {
            drop_database(&mut self.server.admin(), &self.name).await;
            self.live = false;
        }
    }

    /// Starts a [`LockWatch`] on the scratch session (`None` when a second session cannot be
    /// had: the locks are then not observed).
    async fn watch_locks(&mut self) -> Option<LockWatch> {
        let pid = self
            .conn()
            .ok()?
            .simple("SELECT pg_backend_pid()")
            .await
            .ok()?;
        let pid = pid.first()?.first()?.clone()?;
        let client = self.server.watcher(&self.name)?;
        Some(LockWatch::start(client, &pid))
    }

    /// Runs an operation through the engine: the migration's failure inside, the check's
    /// (interrupted, no connection) outside.
    async fn execute(
        &mut self,
        migrator: &mut crate::migrator::Migrator<'_>,
        operation: &Operation,
    ) -> Result<Result<crate::Report, crate::Error>, Error> {
        Ok(migrator.execute_on(&mut self.conn()?, operation).await)
    }

    /// The scratch connection, unless the interrupt was triggered.
    fn conn(&mut self) -> Result<impl Conn + '_, Error> {
        self.check_interrupt()?;
        match self.client.as_mut() {
            Some(client) => Ok(S::conn(client)),
            None => Err(Error::Connect {
                what: format!("the scratch database {}", self.name),
                message: "no connection".to_owned(),
            }),
        }
    }

    pub(crate) fn check_interrupt(&self) -> Result<(), Error> {
        match &self.interrupt {
            Some(i) if i.is_triggered() => Err(Error::Interrupted(self.name.clone())),
            _ => Ok(()),
        }
    }

    /// `Interrupted` when the interrupt was triggered (the error is its consequence).
    fn interrupted_or(&self, error: Error) -> Error {
        self.check_interrupt().err().unwrap_or(error)
    }

    fn data_error(&self, source: DbError) -> Error {
        self.interrupted_or(Error::Data {
            database: self.name.clone(),
            source,
        })
    }

    async fn catalog(&mut self, names: &Names) -> Result<data::Catalog, Error> {
        let mut prepared = self.prepared.1;
        let result = data::Catalog::read(&mut self.conn()?, names, &mut prepared).await;
        self.prepared.1 = prepared;
        result.map_err(|e| self.data_error(e))
    }

    async fn data(&mut self, catalog: &data::Catalog) -> Result<data::Data, Error> {
        let result = data::Data::read(&mut self.conn()?, catalog).await;
        result.map_err(|e| self.data_error(e))
    }

    /// Deletes every row of every table (`TRUNCATE ... CASCADE`). Not `DELETE`, even though
    /// it is cheaper: a deleted row stays in the table until no snapshot can see it, and
    /// `CREATE INDEX` evaluates its expressions on such rows too, so an up that fails on our
    /// rows failed again on the empty tables whenever an autovacuum worker held a snapshot.
    async fn empty_tables(&mut self, names: &Names) -> Result<(), Error> {
        let catalog = self.catalog(names).await?;
        let sql = catalog.truncate_sql();
        if sql.is_empty() {
            return Ok(());
        }
        let result = self.conn()?.simple(&sql).await;
        result.map(drop).map_err(|e| self.data_error(e))
    }

    async fn fill(
        &mut self,
        catalog: &data::Catalog,
        data: &data::Data,
        rows: usize,
    ) -> Result<(Vec<super::Unfilled>, bool), Error> {
        let result = data::fill(&mut self.conn()?, catalog, data, rows).await;
        result.map_err(|e| self.data_error(e))
    }

    async fn snapshot(&mut self, names: &Names) -> Result<Snapshot, Error> {
        let mut prepared = self.prepared.0;
        let result = snapshot::read_prepared(&mut self.conn()?, names, &mut prepared).await;
        self.prepared.0 = prepared;
        result.map_err(|source| {
            self.interrupted_or(Error::Snapshot {
                database: self.name.clone(),
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
                spelling: crate::error::spelling(migration),
                name: migration.name().to_owned(),
                source: Box::new(e),
            }),
        }
    }
}

impl<S: Server> Drop for Scratch<S> {
    fn drop(&mut self) {
        if let Some(interrupt) = &self.interrupt {
            interrupt.set_token(&self.name, None);
        }
        drop(self.client.take());
        if self.live {
            self.server.drop_abandoned(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_of_equal_weight() {
        // Equal weights: equal halves.
        assert_eq!(bounds_by_weight(&[1; 10], 0, 2), [0, 5, 10]);
        // A schema that grows along the history: the later migrations cost more, so the
        // first part holds more of them (crates.io: 192 of 285).
        let growing: Vec<u64> = (1..=100).collect();
        let bounds = bounds_by_weight(&growing, 0, 2);
        assert_eq!(bounds, [0, 71, 100]);
        let halves = (
            growing[..71].iter().sum::<u64>(),
            growing[71..].iter().sum::<u64>(),
        );
        assert!(halves.0.abs_diff(halves.1) < 100, "{halves:?}");
        // From a later start, in three parts.
        assert_eq!(bounds_by_weight(&[1; 9], 20, 3), [20, 23, 26, 29]);
        // One migration outweighs a part: parts of equal length, none empty.
        assert_eq!(bounds_by_weight(&[1, 1, 1, 1000], 0, 3), [0, 1, 2, 4]);
    }

    #[test]
    fn creates_and_drops_are_counted_as_words() {
        let sql = "CREATE TABLE a (x int);\ncreate index a_ix ON a (x);\n\
                   DROP INDEX old_ix; -- dropped\nALTER TABLE a ADD created_at date;";
        assert_eq!(create_drop_count(sql), (2, 1));
    }
}
