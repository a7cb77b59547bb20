//! Server faults in the middle of a migration, on a cluster started here ([`Cluster`]):
//!
//! - **restart**: `pg_ctl restart -m immediate` (every backend killed, crash recovery on
//!   start) while `migrations up` is inside a migration;
//! - **terminate**: `pg_terminate_backend` of the runner's session while it is inside a
//!   migration;
//! - **starting**: the server is down when `up` starts and comes back 1.5 s later, inside
//!   `--connect-timeout` (SPEC 3.6: a bounded wait for a server that is starting).
//!
//! Each fault is injected during a transactional migration (2) and during a no-transaction one
//! (3); the runner is found inside the `pg_sleep` of that migration through `pg_stat_activity`,
//! and the fault comes after a further random delay. Expected: exit 1 with exactly one line on
//! stderr (`error: ...`), no advisory lock in `pg_locks` afterwards, and a rerun (`up`, with
//! `repair` when a no-transaction migration is reported failed) that completes and leaves the
//! database equal to a clean run. For **starting**: exit 0 and the same state.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::bin::{clear_error_line, named_statement, wait, Cli, Outcome};
use crate::check::{self, compare, read_state, State};
use crate::cluster::{self, Cluster};
use crate::network::{mask_digits, window_statement};
use crate::rng::Rng;
use crate::{sets, Summary};

#[derive(Debug, Clone)]
/// Settings of a server-fault run.
pub struct Options {
    /// Rounds of each (fault, migration kind) pair.
    pub rounds: usize,
    /// Seed of the extra delays (printed).
    pub seed: u64,
    /// Print one line per round.
    pub verbose: bool,
}

/// The length of the `pg_sleep` the faults land in.
const WINDOW_SECONDS: f64 = 1.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Restart,
    Terminate,
}

/// Runs the rounds and returns what was found.
pub fn run(bin: &Path, options: &Options) -> Summary {
    let mut summary = Summary::new("server faults (restart -m immediate, pg_terminate_backend)");
    println!(
        "server faults: {} rounds each, seed {}",
        options.rounds, options.seed
    );
    let cluster = match cluster::start() {
        Ok(c) => c,
        Err(e) => {
            summary.fail(format!("could not start a cluster: {e}"));
            return summary;
        }
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("migrations");
    let set = sets::fault_set(WINDOW_SECONDS);
    sets::write(&dir, &set);

    // The reference: a clean run on the same cluster.
    let mut reference = None;
    if let Err(e) = cluster.create_database("reference") {
        summary.fail(e);
        return summary;
    }
    let clean = cli(bin, &cluster, "reference", &dir).run(&["up"]);
    if clean.code == Some(0) {
        match read_state(&cluster.url("reference")) {
            Ok(state) => reference = Some(state),
            Err(e) => summary.fail(format!("reading the clean run: {e}")),
        }
    } else {
        summary.fail(format!("the clean run failed: {}", clean.describe()));
    }
    let Some(reference) = reference else {
        return summary;
    };

    let mut rng = Rng::new(options.seed);
    let mut injected = 0usize;
    let mut repairs = 0usize;
    let mut messages: BTreeSet<String> = BTreeSet::new();
    let mut round_no = 0usize;
    let started = Instant::now();
    for fault in [Fault::Restart, Fault::Terminate] {
        for (version, kind) in [(2, "transactional"), (3, "no-transaction")] {
            for _ in 0..options.rounds {
                round_no += 1;
                let label =
                    format!("{fault:?} during {kind} migration {version} (round {round_no})");
                let db = format!("fault_{round_no}");
                if let Err(e) = cluster.create_database(&db) {
                    summary.fail(format!("{label}: {e}"));
                    continue;
                }
                let cli = cli(bin, &cluster, &db, &dir);
                let extra = Duration::from_millis(rng.below(1000));
                let outcome = match inject(&cluster, &cli, &db, version, fault, extra) {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        summary.fail(format!("{label}: {e}"));
                        continue;
                    }
                };
                injected += 1;
                let name = if version == 2 { "posts" } else { "indexes" };
                let statement = window_statement(&set, version);
                match clear_error_line(&outcome, Some(version), &[name]) {
                    Ok(line) => {
                        if let Some(n) = named_statement(&line).filter(|n| *n != statement) {
                            summary.fail(format!(
                                "{label}: the error names statement {n}, but the fault hit \
                                 statement {statement}: {line}"
                            ));
                        }
                        let line = line.replace(&dir.display().to_string(), "<dir>");
                        messages.insert(format!("{fault:?}, {kind}: {}", mask_digits(&line)));
                    }
                    // An error that does not say what was interrupted is a failure of the run.
                    Err(e) => summary.fail(format!("{label}: {e}")),
                }
                after_fault(
                    &cluster,
                    &cli,
                    &db,
                    &reference,
                    &label,
                    &mut summary,
                    &mut repairs,
                    options.verbose,
                );
            }
        }
    }

    // The server is down when `up` starts, and comes back within --connect-timeout.
    for _ in 0..options.rounds {
        round_no += 1;
        let label = format!("server starting when up starts (round {round_no})");
        let db = format!("fault_{round_no}");
        if let Err(e) = cluster.create_database(&db) {
            summary.fail(format!("{label}: {e}"));
            continue;
        }
        let mut cli = cli(bin, &cluster, &db, &dir);
        cli.flags = vec!["--connect-timeout".to_owned(), "30s".to_owned()];
        if let Err(e) = cluster.stop() {
            summary.fail(format!("{label}: {e}"));
            break;
        }
        let t0 = Instant::now();
        let child = cli.spawn(&["up"]);
        std::thread::sleep(Duration::from_millis(1500));
        if let Err(e) = cluster.start() {
            summary.fail(format!("{label}: {e}"));
            break;
        }
        injected += 1;
        let outcome = wait(child, t0);
        if outcome.code != Some(0) {
            summary.fail(format!(
                "{label}: up did not wait for the server: {}",
                outcome.describe()
            ));
            continue;
        }
        match read_state(&cluster.url(&db)) {
            Ok(state) => {
                for p in compare(&reference, &state) {
                    summary.fail(format!("{label}: {p}"));
                }
            }
            Err(e) => summary.fail(format!("{label}: {e}")),
        }
        if options.verbose {
            println!("{label}: up waited and completed in {:?}", outcome.elapsed);
        }
    }

    summary.figure("seed", options.seed);
    summary.figure("faults injected", injected);
    summary.figure("reruns that needed repair", repairs);
    for m in &messages {
        summary.figure("error line", m);
    }
    summary.figure(
        "wall time",
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    );
    summary
}

fn cli(bin: &Path, cluster: &Cluster, db: &str, dir: &Path) -> Cli {
    let mut cli = Cli::new(bin, &cluster.url(db), dir);
    cli.flags = vec!["--connect-timeout".to_owned(), "0".to_owned()];
    cli
}

/// Starts `up`, waits until it is inside migration `version`'s `pg_sleep`, waits `extra`
/// more (within the sleep), injects the fault, and returns the runner's outcome.
fn inject(
    cluster: &Cluster,
    cli: &Cli,
    db: &str,
    version: u32,
    fault: Fault,
    extra: Duration,
) -> Result<Outcome, String> {
    let mut admin = check::connect(&cluster.url("postgres"))?;
    let t0 = Instant::now();
    let mut child = cli.spawn(&["up"]);
    match fault_while_running(cluster, &mut admin, &mut child, db, version, fault, extra) {
        Ok(()) => Ok(wait(child, t0)),
        Err(e) => {
            let _ = child.kill();
            let outcome = wait(child, t0);
            Err(format!("{e} (runner: {})", outcome.describe()))
        }
    }
}

/// The part of [`inject`] that runs while the child does; the child has exited when it
/// returns `Ok`.
fn fault_while_running(
    cluster: &Cluster,
    admin: &mut postgres::Client,
    child: &mut std::process::Child,
    db: &str,
    version: u32,
    fault: Fault,
    extra: Duration,
) -> Result<(), String> {
    let pid = runner_in_window(&cluster.url(db), admin, child, db, version)?;
    std::thread::sleep(extra);
    match fault {
        Fault::Restart => cluster.restart()?,
        Fault::Terminate => {
            let done: bool = admin
                .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                .map_err(|e| e.to_string())?
                .get(0);
            if !done {
                return Err(format!("pg_terminate_backend({pid}) found no such session"));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(child.try_wait(), Ok(Some(_))) {
        if Instant::now() > deadline {
            return Err("the runner did not exit within 60 s of the fault".to_owned());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Waits until the runner (`child`, on database `db`) is inside the `'fault window'`
/// `pg_sleep` of migration `version` (sleeping: `wait_event = 'PgSleep'`, since the query
/// text of a transactional migration is its whole script, earlier statements included) (the running migration is the lowest version not yet
/// applied), and returns its server process id. `db_url` is a direct connection to `db`.
pub(crate) fn runner_in_window(
    db_url: &str,
    admin: &mut postgres::Client,
    child: &mut std::process::Child,
    db: &str,
    version: u32,
) -> Result<i32, String> {
    let t0 = Instant::now();
    loop {
        let row = admin
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
                 AND application_name = 'migrations' AND state = 'active' \
                 AND query LIKE '%fault window%' AND wait_event = 'PgSleep'",
                &[&db],
            )
            .map_err(|e| e.to_string())?;
        if let Some(row) = row {
            let pid: i32 = row.get(0);
            let mut client = check::connect(db_url)?;
            let applied: i64 = client
                .query_one(
                    "SELECT count(*) FROM public.migrations_history WHERE state = 'applied'",
                    &[],
                )
                .map_err(|e| e.to_string())?
                .get(0);
            if applied + 1 == i64::from(version) {
                return Ok(pid);
            }
        }
        if let Ok(Some(_)) = child.try_wait() {
            return Err(format!("up ended before migration {version} was seen"));
        }
        if t0.elapsed() > Duration::from_secs(60) {
            return Err(format!("migration {version} never started"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// After a fault: no advisory lock left, and a rerun completes and matches the clean run.
#[allow(clippy::too_many_arguments)]
fn after_fault(
    cluster: &Cluster,
    cli: &Cli,
    db: &str,
    reference: &State,
    label: &str,
    summary: &mut Summary,
    repairs: &mut usize,
    verbose: bool,
) {
    let mut admin = match check::connect(&cluster.url("postgres")) {
        Ok(c) => c,
        Err(e) => {
            summary.fail(format!("{label}: {e}"));
            return;
        }
    };
    if let Err(e) = check::wait_lock_released(&mut admin, db, Duration::from_secs(30)) {
        summary.fail(format!("{label}: after the fault: {e}"));
    }
    let steps = match check::rerun(cli, &["up"], &cluster.url(db)) {
        Ok(r) => {
            *repairs += r.repairs;
            r.steps
        }
        Err(e) => {
            summary.fail(format!("{label}: {e}"));
            return;
        }
    };
    match read_state(&cluster.url(db)) {
        Ok(state) => {
            for p in compare(reference, &state) {
                summary.fail(format!("{label}: {p}"));
            }
        }
        Err(e) => summary.fail(format!("{label}: {e}")),
    }
    match check::migrations_locks(&mut admin, db) {
        Ok(0) => {}
        Ok(n) => summary.fail(format!(
            "{label}: {n} row(s) for the migrations lock left after the rerun"
        )),
        Err(e) => summary.fail(format!("{label}: {e}")),
    }
    if verbose {
        println!("{label}: rerun {}", steps.join(" -> "));
    }
}
