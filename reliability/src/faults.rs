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

use crate::bin::{wait, Cli, Outcome};
use crate::check::{self, advisory_locks, compare, read_state, State};
use crate::cluster::Cluster;
use crate::rng::Rng;
use crate::{sets, Summary};

#[derive(Debug, Clone)]
pub struct Options {
    /// Rounds of each (fault, migration kind) pair.
    pub rounds: usize,
    pub seed: u64,
    pub verbose: bool,
}

/// The length of the `pg_sleep` the faults land in.
const WINDOW_SECONDS: f64 = 1.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Restart,
    Terminate,
}

pub fn run(bin: &Path, options: &Options) -> Summary {
    let mut summary = Summary::new("server faults (restart -m immediate, pg_terminate_backend)");
    println!(
        "server faults: {} rounds each, seed {}",
        options.rounds, options.seed
    );
    let cluster = match Cluster::start(&[], &[], &[]) {
        Ok(c) => c,
        Err(e) => {
            summary.fail(format!("could not start a cluster: {e}"));
            return summary;
        }
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("migrations");
    sets::write(&dir, &sets::fault_set(WINDOW_SECONDS));

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
    let mut unclear: BTreeSet<String> = BTreeSet::new();
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
                let lines: Vec<&str> = outcome.stderr.lines().collect();
                if outcome.code != Some(1) || lines.len() != 1 || !lines[0].starts_with("error: ") {
                    summary.fail(format!(
                        "{label}: expected exit 1 and one `error:` line, got {}",
                        outcome.describe()
                    ));
                }
                if let Some(line) = lines.first() {
                    messages.insert(format!("{fault:?}, {kind}: {line}"));
                    // Clear means: it names the migration that was interrupted.
                    if !line.contains(&format!("up {version} ")) {
                        unclear.insert(format!(
                            "{fault:?} during {kind} migration {version}: {line}"
                        ));
                    }
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
        if let Err(e) = cluster.stop_immediate() {
            summary.fail(format!("{label}: {e}"));
            break;
        }
        let t0 = Instant::now();
        let child = cli.spawn(&["up"]);
        std::thread::sleep(Duration::from_millis(1500));
        if let Err(e) = cluster.start_again() {
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
    // Not a consistency failure, but reported: an error line that does not say which
    // migration was interrupted (see RELIABILITY.md, findings).
    for m in &unclear {
        summary.figure("finding: error line does not name the migration", m);
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
    let t0 = Instant::now();
    let pid = loop {
        let row = admin
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
                 AND application_name = 'migrations' AND state = 'active' \
                 AND query LIKE '%fault window%'",
                &[&db],
            )
            .map_err(|e| e.to_string())?;
        if let Some(row) = row {
            let pid: i32 = row.get(0);
            // Which migration: the running one is the lowest version not yet applied.
            let mut client = check::connect(&cluster.url(db))?;
            let applied: i64 = client
                .query_one(
                    "SELECT count(*) FROM public.migrations_history WHERE state = 'applied'",
                    &[],
                )
                .map_err(|e| e.to_string())?
                .get(0);
            if applied + 1 == i64::from(version) {
                break pid;
            }
        }
        if let Ok(Some(_)) = child.try_wait() {
            return Err(format!("up ended before migration {version} was seen"));
        }
        if t0.elapsed() > Duration::from_secs(60) {
            return Err(format!("migration {version} never started"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(extra);
    match fault {
        Fault::Restart => cluster.restart_immediate()?,
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
    match advisory_locks(&mut admin, db) {
        Ok(0) => {}
        Ok(n) => summary.fail(format!(
            "{label}: {n} advisory lock(s) left after the fault"
        )),
        Err(e) => summary.fail(format!("{label}: {e}")),
    }
    let mut steps = Vec::new();
    let mut done = false;
    for _ in 0..4 {
        let up = cli.run(&["up"]);
        match up.code {
            Some(0) => {
                steps.push("up");
                done = true;
                break;
            }
            Some(3) if up.stderr.contains("failed") => {
                steps.push("up refused (failed)");
                let repair = cli.run(&["repair"]);
                if repair.code != Some(0) {
                    summary.fail(format!("{label}: repair failed: {}", repair.describe()));
                    return;
                }
                *repairs += 1;
                steps.push("repair");
            }
            _ => {
                summary.fail(format!("{label}: the rerun failed: {}", up.describe()));
                return;
            }
        }
    }
    if !done {
        summary.fail(format!("{label}: the rerun did not complete ({steps:?})"));
        return;
    }
    match read_state(&cluster.url(db)) {
        Ok(state) => {
            for p in compare(reference, &state) {
                summary.fail(format!("{label}: {p}"));
            }
        }
        Err(e) => summary.fail(format!("{label}: {e}")),
    }
    match advisory_locks(&mut admin, db) {
        Ok(0) => {}
        Ok(n) => summary.fail(format!(
            "{label}: {n} advisory lock(s) left after the rerun"
        )),
        Err(e) => summary.fail(format!("{label}: {e}")),
    }
    if verbose {
        println!("{label}: rerun {}", steps.join(" -> "));
    }
}
