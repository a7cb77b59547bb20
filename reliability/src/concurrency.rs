//! Many `migrations up` processes started at once on one fresh database (SPEC 3.2): exactly
//! one applies each migration, the others wait for the lock and then find nothing to do, and
//! every process exits 0.
//!
//! Exactly once is checked three ways: each migration inserts its version into `applied_log`
//! (a second run would add a second row, or fail on its `ADD COLUMN`), the audit table holds
//! one `up` event per version, and the processes' outputs together report each version
//! applied once.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use migrations_tests::test_db;

use crate::bin::{wait, Cli};
use crate::check::{self, advisory_locks, compare, read_state};
use crate::{sets, Summary};

#[derive(Debug, Clone)]
/// Settings of a concurrency run.
pub struct Options {
    /// Processes started together in each trial.
    pub processes: usize,
    /// Trials, each on a fresh database.
    pub trials: usize,
    /// Print one line per trial.
    pub verbose: bool,
}

/// Runs the trials and returns what was found.
pub fn run(bin: &Path, options: &Options) -> Summary {
    let mut summary = Summary::new("concurrency (N processes at once)");
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("migrations");
    let set = sets::concurrency_set();
    sets::write(&dir, &set);
    let versions: Vec<u32> = set.iter().map(|m| m.0).collect();

    let reference_db = test_db();
    let clean = Cli::new(bin, reference_db.url(), &dir).run(&["up"]);
    if clean.code != Some(0) {
        summary.fail(format!("the clean run failed: {}", clean.describe()));
        return summary;
    }
    let reference = match read_state(reference_db.url()) {
        Ok(s) => s,
        Err(e) => {
            summary.fail(e);
            return summary;
        }
    };
    drop(reference_db);

    let started = Instant::now();
    let mut processes_run = 0usize;
    let mut waited_total = 0usize;
    let mut slowest = std::time::Duration::ZERO;
    for trial in 1..=options.trials {
        let db = test_db();
        let cli = Cli::new(bin, db.url(), &dir);
        let t0 = Instant::now();
        let children: Vec<_> = (0..options.processes).map(|_| cli.spawn(&["up"])).collect();
        let outcomes: Vec<_> = children.into_iter().map(|c| wait(c, t0)).collect();
        processes_run += outcomes.len();
        slowest = slowest.max(t0.elapsed());
        let mut applied_by_output: BTreeMap<u32, usize> = BTreeMap::new();
        for (i, o) in outcomes.iter().enumerate() {
            if o.code != Some(0) {
                summary.fail(format!("trial {trial}, process {i}: {}", o.describe()));
            }
            for line in o.stdout.lines() {
                // `up 3 b (12 ms)`
                let mut words = line.split_whitespace();
                if words.next() == Some("up") {
                    if let Some(v) = words.next().and_then(|v| v.parse().ok()) {
                        *applied_by_output.entry(v).or_default() += 1;
                    }
                }
            }
            if o.stdout.starts_with("nothing to do") {
                waited_total += 1;
            }
        }
        let expected: BTreeMap<u32, usize> = versions.iter().map(|v| (*v, 1)).collect();
        if applied_by_output != expected {
            summary.fail(format!(
                "trial {trial}: the outputs report {applied_by_output:?} applications, expected each once"
            ));
        }
        match read_state(db.url()) {
            Ok(state) => {
                for p in compare(&reference, &state) {
                    summary.fail(format!("trial {trial}: {p}"));
                }
            }
            Err(e) => summary.fail(format!("trial {trial}: {e}")),
        }
        match audit_ups(db.url()) {
            Ok(ups) => {
                let want: Vec<(i64, i64)> = versions.iter().map(|v| (i64::from(*v), 1)).collect();
                if ups != want {
                    summary.fail(format!("trial {trial}: audit `up` events {ups:?}"));
                }
            }
            Err(e) => summary.fail(format!("trial {trial}: {e}")),
        }
        if let Ok(mut admin) = check::connect(db.admin_url()) {
            match advisory_locks(&mut admin, db.name()) {
                Ok(0) => {}
                Ok(n) => summary.fail(format!("trial {trial}: {n} advisory lock(s) left")),
                Err(e) => summary.fail(format!("trial {trial}: {e}")),
            }
        }
        if options.verbose {
            println!(
                "trial {trial}: {} processes in {:?}",
                options.processes,
                t0.elapsed()
            );
        }
    }
    summary.figure("processes per trial", options.processes);
    summary.figure("trials", options.trials);
    summary.figure("processes run", processes_run);
    summary.figure(
        "processes that found nothing to do (waited, then up to date)",
        waited_total,
    );
    summary.figure("slowest trial", format!("{} ms", slowest.as_millis()));
    summary.figure(
        "wall time",
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    );
    summary
}

/// `(version, number of up events)` from the audit table.
fn audit_ups(url: &str) -> Result<Vec<(i64, i64)>, String> {
    let mut client = check::connect(url)?;
    Ok(client
        .query(
            "SELECT version, count(*) FROM public.migrations_history_audit \
             WHERE event = 'up' GROUP BY 1 ORDER BY 1",
            &[],
        )
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}
