//! The crash loop: `migrations up` killed with `SIGKILL` at random instants, then rerun.
//!
//! Each run gets a fresh database. A clean run of the same set (on its own database) gives the
//! reference [`State`](crate::check::State) and the duration `T`; each run starts `migrations
//! up` and kills it after a delay drawn uniformly from `[0, T)` (SplitMix64 from the printed
//! seed). After the kill, once the killed runner's server session is gone, the history shows
//! where the kill landed; then `up` is run again, with `repair` in between when it refuses
//! because of a `failed` no-transaction migration (SPEC 3.3), until it succeeds (at most a few
//! rounds). The database must then equal the clean run: schema snapshot, row counts of every
//! table, each migration run exactly once (`applied_log`), every history row `applied`, no
//! invalid index, no advisory lock left.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use migrations_tests::test_db;

use crate::bin::{sigkill, wait, Cli};
use crate::check::{self, advisory_locks, compare, read_state, wait_runner_sessions_gone};
use crate::rng::Rng;
use crate::{sets, Summary};

#[derive(Debug, Clone)]
pub struct Options {
    /// How many kills must land (a run whose `up` finished before its kill does not count).
    pub runs: usize,
    pub seed: u64,
    /// Print one line per run.
    pub verbose: bool,
}

/// How many rounds of `up` (and `repair`) a rerun may take before it counts as stuck.
const RERUN_ROUNDS: usize = 4;
/// How long a killed runner's server session may linger (client_connection_check_interval is
/// 1 s; a statement that never checks finishes first).
const SESSION_LIMIT: Duration = Duration::from_secs(60);

pub fn run(bin: &Path, options: &Options) -> Summary {
    let mut summary = Summary::new("crash loop (SIGKILL at random instants)");
    println!(
        "crash loop: {} kills, seed {} (reproduce the kill instants with --seed {})",
        options.runs, options.seed, options.seed
    );
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("migrations");
    let set = sets::crash_set(1.0);
    sets::write(&dir, &set);
    let notx = set.iter().filter(|m| m.2).count();
    summary.figure(
        "migration set",
        format!(
            "{} migrations ({} transactional, {notx} no-transaction)",
            set.len(),
            set.len() - notx
        ),
    );

    // The reference: a clean run.
    let reference_db = test_db();
    let clean = Cli::new(bin, reference_db.url(), &dir).run(&["up"]);
    if clean.code != Some(0) {
        summary.fail(format!("the clean run failed: {}", clean.describe()));
        return summary;
    }
    let reference = match read_state(reference_db.url()) {
        Ok(state) => state,
        Err(e) => {
            summary.fail(format!("reading the clean run's state: {e}"));
            return summary;
        }
    };
    // Rolled-back transactions a clean run leaves in the statistics (none expected).
    let baseline_rollbacks = check::connect(reference_db.admin_url())
        .and_then(|mut admin| rollbacks(&mut admin, reference_db.name()))
        .unwrap_or(0);
    drop(reference_db);
    let window = clean.elapsed;
    println!(
        "clean run: {:?}; kills drawn uniformly in [0, {:?})",
        clean.elapsed, window
    );

    let mut rng = Rng::new(options.seed);
    let mut landed = 0usize;
    let mut finished_first = 0usize;
    let mut repairs = 0usize;
    let mut where_landed: BTreeMap<String, usize> = BTreeMap::new();
    let mut attempts = 0usize;
    let started = Instant::now();
    while landed < options.runs && attempts < options.runs * 3 + 10 {
        attempts += 1;
        let delay = Duration::from_micros(rng.below(window.as_micros() as u64));
        let db = test_db();
        let cli = Cli::new(bin, db.url(), &dir);
        let t0 = Instant::now();
        let mut child = cli.spawn(&["up"]);
        let until = t0 + delay;
        while Instant::now() < until {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(5)));
        }
        sigkill(&mut child);
        let killed = wait(child, t0);
        let label = format!("run {attempts} (kill at {} ms)", delay.as_millis());
        if killed.code.is_some() {
            // The run ended before the kill: it must have succeeded.
            finished_first += 1;
            if killed.code != Some(0) {
                summary.fail(format!(
                    "{label}: up failed on its own: {}",
                    killed.describe()
                ));
            }
            continue;
        }
        landed += 1;

        let mut admin = match check::connect(db.admin_url()) {
            Ok(c) => c,
            Err(e) => {
                summary.fail(format!("{label}: {e}"));
                continue;
            }
        };
        if let Err(e) = wait_runner_sessions_gone(&mut admin, db.name(), SESSION_LIMIT) {
            summary.fail(format!("{label}: {e}"));
        }
        let place = match landed_at(db.url()) {
            Ok(place) => match rollbacks(&mut admin, db.name()) {
                Ok(n) if n > baseline_rollbacks => format!("{place}, a transaction rolled back"),
                Ok(_) => place,
                Err(e) => {
                    summary.fail(format!("{label}: {e}"));
                    place
                }
            },
            Err(e) => {
                summary.fail(format!("{label}: reading the history after the kill: {e}"));
                continue;
            }
        };
        *where_landed.entry(place.clone()).or_default() += 1;

        // The rerun: up, with repair when a no-transaction migration is reported failed.
        let mut done = false;
        let mut steps = Vec::new();
        for _ in 0..RERUN_ROUNDS {
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
                        break;
                    }
                    repairs += 1;
                    steps.push("repair");
                }
                _ => {
                    summary.fail(format!(
                        "{label} [{place}]: the rerun failed: {}",
                        up.describe()
                    ));
                    break;
                }
            }
        }
        if !done {
            summary.fail(format!(
                "{label} [{place}]: the rerun did not complete ({steps:?})"
            ));
            continue;
        }
        match read_state(db.url()) {
            Ok(state) => {
                for problem in compare(&reference, &state) {
                    summary.fail(format!("{label} [{place}]: {problem}"));
                }
            }
            Err(e) => summary.fail(format!("{label}: reading the state: {e}")),
        }
        match advisory_locks(&mut admin, db.name()) {
            Ok(0) => {}
            Ok(n) => summary.fail(format!("{label}: {n} advisory lock(s) left")),
            Err(e) => summary.fail(format!("{label}: {e}")),
        }
        if options.verbose {
            println!("{label}: landed {place}; rerun: {}", steps.join(" -> "));
        }
    }
    if landed < options.runs {
        summary.fail(format!(
            "only {landed} of {} kills landed in {attempts} attempts",
            options.runs
        ));
    }
    summary.figure("seed", options.seed);
    summary.figure("clean run", format!("{} ms", clean.elapsed.as_millis()));
    summary.figure("kills landed (runs)", landed);
    summary.figure(
        "runs that finished before their kill (not counted)",
        finished_first,
    );
    summary.figure("reruns that needed repair", repairs);
    for (place, n) in &where_landed {
        summary.figure(&format!("  landed {place}"), n);
    }
    summary.figure(
        "wall time",
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    );
    summary
}

/// Transactions rolled back in database `dbname` (`pg_stat_database.xact_rollback`; a
/// backend's counts are flushed when it exits).
fn rollbacks(admin: &mut postgres::Client, dbname: &str) -> Result<i64, String> {
    admin
        .query_one(
            "SELECT xact_rollback FROM pg_stat_database WHERE datname = $1",
            &[&dbname],
        )
        .map(|r| r.get(0))
        .map_err(|e| e.to_string())
}

/// Where a kill landed, read from the history it left: before the history table existed,
/// between (or inside) transactional migrations with `k` applied, or inside no-transaction
/// migration `v` after `d` of its `t` statements.
fn landed_at(url: &str) -> Result<String, String> {
    let mut client = check::connect(url)?;
    let history = check::history(&mut client)?;
    if history.is_empty() {
        let exists: bool = client
            .query_one(
                "SELECT to_regclass('public.migrations_history') IS NOT NULL",
                &[],
            )
            .map_err(|e| e.to_string())?
            .get(0);
        return Ok(if exists {
            "with 0 applied".to_owned()
        } else {
            "before the history table existed".to_owned()
        });
    }
    if let Some(row) = client
        .query_opt(
            "SELECT version, coalesce(statements_done, 0), coalesce(statements_total, 0) \
             FROM public.migrations_history WHERE state::text <> 'applied'",
            &[],
        )
        .map_err(|e| e.to_string())?
    {
        let (v, d, t): (i64, i32, i32) = (row.get(0), row.get(1), row.get(2));
        return Ok(format!(
            "in no-transaction migration {v} after statement {d}/{t}"
        ));
    }
    Ok(format!("with {} applied", history.len()))
}
