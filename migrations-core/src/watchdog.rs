//! A stall watchdog for a connection the caller owns (the CLI's, for example).
//!
//! When the path to the server stops passing bytes without closing (a hung proxy or pooler, a
//! middlebox that still acknowledges), the client waits for an answer forever: no read timeout
//! exists in the driver, TCP keepalives see a healthy peer, and the server's own guards see a
//! healthy client. Meanwhile the server session, idle once it has finished what it was sent,
//! keeps the migrations lock, so every other runner waits and fails.
//!
//! The watchdog tells that case apart on a second connection: while the runner has a query
//! outstanding (the `Migrator`, given [`Migrator::watch`](crate::Migrator::watch), says so), it
//! reads the runner's backend in `pg_stat_activity` every [`StallTiming::interval`]. A backend
//! that is not `active` (it sent its answer, or never got the query), is blocked writing its
//! answer (`ClientWrite`), or is gone, for [`StallTiming::grace`] and at least two checks, while
//! the client is still waiting, means the answer will never arrive. The watchdog then ends the
//! runner's session (`pg_terminate_backend`, which also frees the migrations lock and rolls back
//! an open transaction), reads the history, and hands a [`Stall`] to the caller's callback.
//!
//! The runner's own thread stays blocked in the driver (nothing can reach its socket): the
//! callback decides what happens next. The CLI prints one error line and exits. A library
//! caller with a borrowed client cannot be interrupted this way; with the async driver, race
//! the run against a channel the callback signals and drop the run's future.
//!
//! The second connection is opened only once a query has been outstanding for one
//! [`StallTiming::interval`], so a run of quick queries costs nothing. If that connection stalls
//! too (a pooler that stalls every connection), the watchdog can see nothing and does nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::connect::{connect, ConnectOptions, Target};
use crate::db::{block_on, from_pg, InFlight, SyncConn};
use crate::error::Error;
use crate::history::AppliedMigration;
use crate::sql::Names;

/// How often the watchdog checks, and how long the runner's backend must be quiet while the
/// client waits before the connection counts as stalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallTiming {
    /// Time between two checks (default 2 s).
    pub interval: Duration,
    /// How long the backend must have been quiet (idle, blocked writing its answer, or gone)
    /// while the client waits (default 10 s). At least two checks always see it.
    pub grace: Duration,
}

impl Default for StallTiming {
    fn default() -> Self {
        StallTiming {
            interval: Duration::from_secs(2),
            grace: Duration::from_secs(10),
        }
    }
}

/// What the watchdog found and did when the runner's connection stalled.
#[derive(Debug)]
#[non_exhaustive]
pub struct Stall {
    /// Where the runner connected (`host:port`, several joined by `, `).
    pub endpoint: String,
    /// The runner's backend pid.
    pub pid: i32,
    /// How long the client had been waiting for its answer.
    pub waited: Duration,
    /// How long ago the server finished the query (from `pg_stat_activity.state_change`), when
    /// the backend was idle; `None` when it was gone or still writing its answer.
    pub finished_ago: Option<Duration>,
    /// The backend's state when the stall was decided (`idle`, `idle in transaction`, ...),
    /// `None` when it was gone.
    pub state: Option<String>,
    /// Whether `pg_terminate_backend` ended the session (and the backend is gone now, so the
    /// migrations lock is free). `false` when it was already gone, or the call failed.
    pub terminated: bool,
    /// The history read after the session ended (empty when there is no history table yet).
    pub history: Result<Vec<AppliedMigration>, Error>,
}

/// A running watchdog; dropping it stops it. See the [module documentation](self).
pub struct Watchdog {
    in_flight: Arc<InFlight>,
    stop: Arc<AtomicBool>,
}

impl Watchdog {
    /// Starts watching the session of `runner` (its backend pid is read now). `options` are
    /// the ones `runner` was connected with: the watchdog opens its own connection with them
    /// when it needs one. `names` says where the history is, read after a stall. `on_stall` is
    /// called at most once, on the watchdog's thread.
    pub fn start(
        options: &ConnectOptions,
        runner: &mut postgres::Client,
        names: Names,
        timing: StallTiming,
        on_stall: impl FnOnce(Stall) + Send + 'static,
    ) -> Result<Watchdog, Error> {
        // The start time tells the runner's session from a later one that reuses its pid (as
        // epoch seconds: the text of a timestamptz depends on each session's TimeZone).
        let row = runner
            .simple_query(
                "SELECT pg_backend_pid(), EXTRACT(epoch FROM backend_start)::text \
                 FROM pg_stat_activity \
                 WHERE pid = pg_backend_pid()",
            )
            .map_err(|e| Error::Db {
                context: "reading the session's backend pid".to_owned(),
                source: from_pg(&e),
            })
            .map(crate::db::rows_of)?
            .into_iter()
            .next()
            .unwrap_or_default();
        let pid = row
            .first()
            .cloned()
            .flatten()
            .and_then(|pid| pid.parse::<i32>().ok())
            .unwrap_or(0);
        let backend_start = row.get(1).cloned().flatten().unwrap_or_default();
        let endpoint = Target::resolve(options)
            .map(|t| {
                t.endpoints()
                    .iter()
                    .map(|e| e.address())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|_| "the server".to_owned());
        let watchdog = Watchdog {
            in_flight: Arc::default(),
            stop: Arc::default(),
        };
        let watch = Watch {
            options: options.clone(),
            pid,
            backend_start,
            names,
            timing,
            endpoint,
            in_flight: watchdog.in_flight.clone(),
            stop: watchdog.stop.clone(),
        };
        thread::Builder::new()
            .name("migrations-stall-watchdog".to_owned())
            .spawn(move || {
                if let Some(stall) = watch.run() {
                    on_stall(stall);
                }
            })
            .map_err(|e| Error::Db {
                context: "starting the stall watchdog".to_owned(),
                source: crate::db::DbError::runner(e.to_string(), None),
            })?;
        Ok(watchdog)
    }

    pub(crate) fn in_flight(&self) -> Arc<InFlight> {
        self.in_flight.clone()
    }
}

impl Drop for Watchdog {
    /// Stops the thread at its next wake-up (not joined: it may be waiting on a stalled
    /// connection of its own, and must not hold the caller up).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct Watch {
    options: ConnectOptions,
    pid: i32,
    backend_start: String,
    names: Names,
    timing: StallTiming,
    endpoint: String,
    in_flight: Arc<InFlight>,
    stop: Arc<AtomicBool>,
}

/// The runner's backend as one check saw it: `None` when it is gone.
struct Seen {
    /// `None` when the server hides it (another role's session without `pg_read_all_stats`):
    /// then nothing is known, and nothing is done.
    state: Option<String>,
    wait_event: Option<String>,
    idle_for: Option<Duration>,
}

impl Watch {
    /// Sleeps `d` in short steps; `false` once the watchdog was dropped.
    fn pause(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
        }
        !self.stop.load(Ordering::SeqCst)
    }

    fn run(&self) -> Option<Stall> {
        let mut client: Option<postgres::Client> = None;
        // The outstanding query seen quiet, when it was first seen so, and how many checks.
        let mut quiet: Option<(u64, Instant, u32)> = None;
        loop {
            if !self.pause(self.timing.interval) {
                return None;
            }
            let Some((query, since)) = self.in_flight.outstanding() else {
                quiet = None;
                continue;
            };
            if since.elapsed() < self.timing.interval {
                quiet = None;
                continue;
            }
            if client.is_none() {
                match connect(&self.options) {
                    Ok(c) => client = Some(c),
                    Err(e) => {
                        log::debug!("stall watchdog: cannot connect: {e}");
                        continue;
                    }
                }
            }
            let conn = client.as_mut()?;
            let seen = match self.look(conn) {
                Ok(seen) => seen,
                Err(e) => {
                    log::debug!("stall watchdog: reading pg_stat_activity: {e}");
                    client = None;
                    continue;
                }
            };
            // The runner got its answer meanwhile: what was seen is about another query.
            if self.in_flight.outstanding().map(|o| o.0) != Some(query) {
                quiet = None;
                continue;
            }
            let is_quiet = match &seen {
                None => true,
                Some(s) => match s.state.as_deref() {
                    None => false,
                    Some("active") => s.wait_event.as_deref() == Some("ClientWrite"),
                    Some(_) => true,
                },
            };
            if !is_quiet {
                quiet = None;
                continue;
            }
            let (first, checks) = match quiet {
                Some((q, first, checks)) if q == query => (first, checks + 1),
                _ => (Instant::now(), 1),
            };
            quiet = Some((query, first, checks));
            // The server's own clock says how long it has been idle; never longer than the
            // client has waited (a query that never arrived finds the backend idle since the
            // one before it).
            let server_quiet = seen
                .as_ref()
                .and_then(|s| s.idle_for)
                .map(|d| d.min(since.elapsed()));
            let quiet_for = server_quiet.unwrap_or_default().max(first.elapsed());
            if checks < 2 || quiet_for < self.timing.grace {
                continue;
            }
            return Some(self.end_session(conn, since, seen));
        }
    }

    fn look(&self, conn: &mut postgres::Client) -> Result<Option<Seen>, postgres::Error> {
        let row = conn.query_opt(
            "SELECT state, wait_event, \
                    CASE WHEN state LIKE 'idle%' \
                         THEN EXTRACT(epoch FROM clock_timestamp() - state_change)::float8 END \
             FROM pg_stat_activity \
             WHERE pid = $1 AND EXTRACT(epoch FROM backend_start)::text = $2",
            &[&self.pid, &self.backend_start],
        )?;
        Ok(row.map(|r| Seen {
            state: r.get(0),
            wait_event: r.get(1),
            idle_for: r
                .get::<_, Option<f64>>(2)
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64),
        }))
    }

    /// Ends the runner's session, waits (a few seconds at most) until it is gone, and reads
    /// the history as the session left it.
    fn end_session(
        &self,
        conn: &mut postgres::Client,
        since: Instant,
        seen: Option<Seen>,
    ) -> Stall {
        let terminated = seen.is_some()
            && conn
                .query_opt(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE pid = $1 AND EXTRACT(epoch FROM backend_start)::text = $2",
                    &[&self.pid, &self.backend_start],
                )
                .ok()
                .flatten()
                .is_some_and(|r| r.get::<_, bool>(0));
        if terminated {
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                match conn.query_opt(
                    "SELECT 1 FROM pg_stat_activity \
                     WHERE pid = $1 AND EXTRACT(epoch FROM backend_start)::text = $2",
                    &[&self.pid, &self.backend_start],
                ) {
                    Ok(Some(_)) => thread::sleep(Duration::from_millis(50)),
                    _ => break,
                }
            }
        }
        let history = block_on(crate::engine::read_history_if_any(
            &mut SyncConn(conn),
            &self.names,
        ));
        Stall {
            endpoint: self.endpoint.clone(),
            pid: self.pid,
            waited: since.elapsed(),
            finished_ago: seen.as_ref().and_then(|s| s.idle_for),
            state: seen.and_then(|s| s.state),
            terminated,
            history,
        }
    }
}
