//! The crash loop: a `migrations` command killed with `SIGKILL` at random instants, then rerun.
//!
//! Commands ([`Mode`]): `up`, `up --single-transaction`, `down --all`, `redo 4` and `repair`.
//! Each run gets a fresh database in the command's starting state (empty for `up`; the whole
//! set applied for `down` and `redo`, cloned from a template database; for `repair`, a
//! no-transaction migration recorded `failed` with an invalid index, also cloned). A clean run
//! of the command on such a database gives the duration `T`; each run starts the command and
//! kills it after a delay drawn uniformly from `[0, T)` (SplitMix64 from the printed seed).
//!
//! After each kill, counted by code:
//! - the killed process printed nothing on stderr, or exactly one clear `error:` line;
//! - once the killed runner's server session is gone, nobody holds the runner's advisory lock
//!   (`pg_locks`, for the migrations key; the run first shows that the query counts a held
//!   lock, [`check::prove_lock_query`]);
//! - nothing half-applied: when no history row is `running` or `failed`, the database equals a
//!   clean run stopped at the versions the history records (schema snapshot, row counts,
//!   `applied_log`, history); for `--single-transaction` that is all of them or none; for
//!   `repair`, the row is cleared only together with its invalid index and its audit event;
//! - the rerun completes: the same command again (`up` after `redo`, which has nothing left
//!   to redo in its own terms; for `repair`, the duplicate key fixed first, then `up`), with
//!   `repair` in between when the history holds a `failed` row (SPEC 3.3), and the database
//!   then equals the clean run's end state, with no lock left.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use migrations_tests::{test_db, TestDb};

use crate::bin::{clear_error_line, sigkill, wait, Cli, Outcome};
use crate::check::{
    self, compare, migrations_locks, read_state, rerun, wait_lock_released,
    wait_runner_sessions_gone, State,
};
use crate::rng::Rng;
use crate::{sets, Summary};

/// The command the crash loop kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `up` on an empty database.
    Up,
    /// `up --single-transaction` on an empty database (transactional migrations only).
    UpSingleTransaction,
    /// `down --all` on a database with the whole set applied.
    Down,
    /// `redo 4` on a database with the whole set applied (reverts 8, 7, 6, 5, applies them).
    Redo,
    /// `repair` of a `failed` no-transaction migration that left an invalid index.
    Repair,
}

impl Mode {
    /// Every mode, in the order `all` runs them.
    pub const ALL: [Mode; 5] = [
        Mode::Up,
        Mode::UpSingleTransaction,
        Mode::Down,
        Mode::Redo,
        Mode::Repair,
    ];

    /// The command line that is killed.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Mode::Up => &["up"],
            Mode::UpSingleTransaction => &["up", "--single-transaction"],
            Mode::Down => &["down", "--all"],
            Mode::Redo => &["redo", "4"],
            Mode::Repair => &["repair"],
        }
    }

    /// The command line of the rerun.
    fn rerun_args(self) -> &'static [&'static str] {
        match self {
            Mode::Up | Mode::Redo | Mode::Repair => &["up"],
            Mode::UpSingleTransaction => &["up", "--single-transaction"],
            Mode::Down => &["down", "--all"],
        }
    }

    /// Parses the command-line spelling (`up`, `up-single-transaction`, `down`, `redo`,
    /// `repair`).
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "up" => Mode::Up,
            "up-single-transaction" => Mode::UpSingleTransaction,
            "down" => Mode::Down,
            "redo" => Mode::Redo,
            "repair" => Mode::Repair,
            _ => return None,
        })
    }
}

/// Settings of a crash loop.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many kills must land (a run that finished before its kill does not count).
    pub runs: usize,
    /// Seed of the kill instants (printed).
    pub seed: u64,
    /// Print one line per run.
    pub verbose: bool,
    /// The command killed.
    pub mode: Mode,
    /// Scale of the sets' `pg_sleep`s: 1.0 for the figures; the smoke test uses less (the
    /// 1.2 s sleep that outlasts `client_connection_check_interval` then no longer does).
    pub sleep: f64,
}

/// How long a killed runner's server session may linger (client_connection_check_interval is
/// 1 s; a statement that never checks finishes first).
const SESSION_LIMIT: Duration = Duration::from_secs(60);
/// How long the lock may stay held once the session is gone (it goes with the session).
const LOCK_LIMIT: Duration = Duration::from_secs(10);

/// Everything a mode's runs share: the migrations, the clean references, the template.
struct Setup {
    _work: tempfile::TempDir,
    dir: std::path::PathBuf,
    /// Versions of the set, in order.
    versions: Vec<u32>,
    /// `references[k]`: the clean state with the first `k` versions applied.
    references: Vec<State>,
    /// The state the rerun must reach.
    end: State,
    /// The database each run is cloned from (`None`: runs start empty).
    template: Option<TestDb>,
    /// Duration of a clean run of the command: the kill window.
    window: Duration,
    /// Transactions a clean run of the command rolls back (`pg_stat_database`): more after a
    /// kill means the server rolled one back.
    clean_rollbacks: i64,
}

/// Runs the crash loop for `options.mode` and returns what was found.
pub fn run(bin: &Path, options: &Options) -> Summary {
    let mode = options.mode;
    let mut summary = Summary::new(&format!(
        "crash loop: `{}` (SIGKILL at random instants)",
        mode.args().join(" ")
    ));
    println!(
        "crash loop `{}`: {} kills, seed {} (reproduce the kill instants with --seed {})",
        mode.args().join(" "),
        options.runs,
        options.seed,
        options.seed
    );
    let setup = match prepare(bin, mode, options.sleep) {
        Ok(s) => s,
        Err(e) => {
            summary.fail(e);
            return summary;
        }
    };
    summary.figure(
        "migration set",
        format!(
            "{} migrations, versions {:?}",
            setup.versions.len(),
            setup.versions
        ),
    );
    println!(
        "clean run: {:?}; kills drawn uniformly in [0, {:?})",
        setup.window, setup.window
    );

    let mut rng = Rng::new(options.seed);
    let mut tally = Tally::default();
    let mut attempts = 0usize;
    let started = Instant::now();
    while tally.landed < options.runs && attempts < options.runs * 3 + 10 {
        attempts += 1;
        let delay = Duration::from_micros(rng.below(setup.window.as_micros() as u64));
        let label = format!("run {attempts} (kill at {} ms)", delay.as_millis());
        match one_run(bin, mode, &setup, delay, &mut tally) {
            Ok(Some(note)) => {
                if options.verbose {
                    println!("{label}: {note}");
                }
            }
            Ok(None) => {}
            Err(problems) => {
                for p in problems {
                    summary.fail(format!("{label}: {p}"));
                }
            }
        }
    }
    if tally.landed < options.runs {
        summary.fail(format!(
            "only {} of {} kills landed in {attempts} attempts",
            tally.landed, options.runs
        ));
    }
    summary.figure("seed", options.seed);
    summary.figure("clean run", format!("{} ms", setup.window.as_millis()));
    summary.figure("kills landed (runs)", tally.landed);
    summary.figure(
        "runs that finished before their kill (not counted)",
        tally.finished_first,
    );
    summary.figure(
        "killed runs that had printed one clear error line (the others: nothing)",
        tally.printed_error,
    );
    summary.figure(
        "lock released once the killed session was gone",
        format!("{}/{}", tally.lock_released, tally.landed),
    );
    summary.figure(
        "state after the kill = clean run at the recorded versions",
        tally.consistent_after_kill,
    );
    summary.figure(
        "kills inside a no-transaction migration (row running; allowed, SPEC 3.3)",
        tally.inside_notx,
    );
    summary.figure(
        "reruns completed, state = clean end state, no lock",
        format!("{}/{}", tally.rerun_ok, tally.landed),
    );
    summary.figure("reruns that needed repair", tally.repairs);
    for (place, n) in &tally.where_landed {
        summary.figure(&format!("  landed {place}"), n);
    }
    summary.figure(
        "wall time",
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    );
    summary
}

/// Counts over the runs of one mode.
#[derive(Debug, Default)]
struct Tally {
    landed: usize,
    finished_first: usize,
    printed_error: usize,
    lock_released: usize,
    consistent_after_kill: usize,
    inside_notx: usize,
    rerun_ok: usize,
    repairs: usize,
    where_landed: BTreeMap<String, usize>,
}

/// The set, the references and the template of `mode`, and a clean run to time the window.
fn prepare(bin: &Path, mode: Mode, sleep: f64) -> Result<Setup, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = work.path().join("migrations");
    let set = match mode {
        Mode::UpSingleTransaction => sets::grouped_set(sleep),
        Mode::Repair => sets::repair_set(),
        _ => sets::crash_set(sleep),
    };
    sets::write_with_downs(&dir, &set, &sets::crash_downs(sleep));
    let versions: Vec<u32> = set.iter().map(|m| m.0).collect();

    // References: one database stepped up version by version.
    let reference_db = test_db();
    let references = check::references(bin, reference_db.url(), &dir, &set)?;
    let mut admin = check::connect(reference_db.admin_url())?;
    check::prove_lock_query(reference_db.url(), &mut admin, reference_db.name())?;
    let full = references.last().expect("a non-empty set").clone();

    // The starting state of each run.
    let template = match mode {
        Mode::Up | Mode::UpSingleTransaction => None,
        Mode::Down | Mode::Redo => {
            let t = test_db();
            let up = Cli::new(bin, t.url(), &dir).run(&["up"]);
            if up.code != Some(0) {
                return Err(format!("preparing the template: {}", up.describe()));
            }
            Some(t)
        }
        Mode::Repair => {
            let t = test_db();
            let tcli = Cli::new(bin, t.url(), &dir);
            let up = tcli.run(&["up", "--to", "1"]);
            if up.code != Some(0) {
                return Err(format!("preparing the template: {}", up.describe()));
            }
            insert_duplicate(t.url())?;
            let failing = tcli.run(&["up"]);
            clear_error_line(&failing, Some(2), &["unique_k", "23505"])
                .map_err(|e| format!("the failing up that repair starts from: {e}"))?;
            let state = read_state(t.url())?;
            if state.invalid_indexes != [sets::REPAIR_INVALID_INDEX]
                || !state.history.contains(&(2, "failed".to_owned()))
            {
                return Err(format!(
                    "the failing up did not leave migration 2 failed with invalid index {}: \
                     history {:?}, invalid indexes {:?}",
                    sets::REPAIR_INVALID_INDEX,
                    state.history,
                    state.invalid_indexes
                ));
            }
            Some(t)
        }
    };

    // A clean run of the command, timed, and its end state checked.
    let db = fresh(template.as_ref())?;
    let cli = Cli::new(bin, db.url(), &dir);
    let mut admin = check::connect(db.admin_url())?;
    let before = rollbacks(&mut admin, db.name())?;
    let clean = cli.run(mode.args());
    // A backend's statistics are flushed when it exits.
    wait_runner_sessions_gone(&mut admin, db.name(), SESSION_LIMIT)?;
    let clean_rollbacks = rollbacks(&mut admin, db.name())? - before;
    if clean.code != Some(0) {
        return Err(format!("the clean run failed: {}", clean.describe()));
    }
    let (end, after_clean) = match mode {
        Mode::Down => (references[0].clone(), read_state(db.url())?),
        Mode::Repair => {
            fix_duplicate(db.url())?;
            let up = cli.run(&["up"]);
            if up.code != Some(0) {
                return Err(format!("up after a clean repair failed: {}", up.describe()));
            }
            (full.clone(), read_state(db.url())?)
        }
        _ => (full.clone(), read_state(db.url())?),
    };
    let d = compare(&end, &after_clean);
    if !d.is_empty() {
        return Err(format!(
            "a clean `{}` does not reach the expected state: {d:?}",
            mode.args().join(" ")
        ));
    }
    Ok(Setup {
        _work: work,
        dir,
        versions,
        references,
        end,
        template,
        window: clean.elapsed,
        clean_rollbacks,
    })
}

/// A fresh database for one run: empty, or a copy of `template`.
fn fresh(template: Option<&TestDb>) -> Result<TestDb, String> {
    let db = test_db();
    if let Some(t) = template {
        // CREATE DATABASE ... TEMPLATE copies the files: much faster than applying the set.
        let mut admin = check::connect(db.admin_url())?;
        // Two statements: a multi-statement string is one transaction, which DROP DATABASE
        // refuses.
        admin
            .batch_execute(&format!("DROP DATABASE \"{}\"", db.name()))
            .and_then(|()| {
                admin.batch_execute(&format!(
                    "CREATE DATABASE \"{}\" TEMPLATE \"{}\"",
                    db.name(),
                    t.name()
                ))
            })
            .map_err(|e| format!("cloning the template database: {}", check::pg_error(&e)))?;
    }
    Ok(db)
}

fn insert_duplicate(url: &str) -> Result<(), String> {
    check::connect(url)?
        .batch_execute("INSERT INTO items VALUES (0, 1, 'duplicate key')")
        .map_err(|e| e.to_string())
}

/// What an operator does once `repair` has cleared the failure: remove the bad data.
fn fix_duplicate(url: &str) -> Result<(), String> {
    check::connect(url)?
        .batch_execute("DELETE FROM items WHERE id = 0")
        .map_err(|e| e.to_string())
}

/// One run: `Ok(None)` when the command finished before its kill (successfully),
/// `Ok(Some(note))` when the kill landed and everything held, else every problem.
fn one_run(
    bin: &Path,
    mode: Mode,
    setup: &Setup,
    delay: Duration,
    tally: &mut Tally,
) -> Result<Option<String>, Vec<String>> {
    let db = fresh(setup.template.as_ref()).map_err(|e| vec![e])?;
    let cli = Cli::new(bin, db.url(), &setup.dir);
    let baseline_rollbacks = {
        let mut admin = check::connect(db.admin_url()).map_err(|e| vec![e])?;
        rollbacks(&mut admin, db.name()).map_err(|e| vec![e])?
    };
    let t0 = Instant::now();
    let mut child = cli.spawn(mode.args());
    let until = t0 + delay;
    while Instant::now() < until {
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(5)));
    }
    sigkill(&mut child);
    let killed = wait(child, t0);
    if killed.code.is_some() {
        // The run ended before the kill: it must have succeeded.
        tally.finished_first += 1;
        return if killed.code == Some(0) {
            Ok(None)
        } else {
            Err(vec![format!(
                "`{}` failed on its own: {}",
                mode.args().join(" "),
                killed.describe()
            )])
        };
    }
    tally.landed += 1;
    let mut problems = Vec::new();
    check_killed_output(&killed, tally, &mut problems);

    let mut admin = check::connect(db.admin_url()).map_err(|e| vec![e])?;
    if let Err(e) = wait_runner_sessions_gone(&mut admin, db.name(), SESSION_LIMIT) {
        problems.push(e);
    }
    match wait_lock_released(&mut admin, db.name(), LOCK_LIMIT) {
        Ok(_) => tally.lock_released += 1,
        Err(e) => problems.push(e),
    }

    // Where the kill landed, and nothing half-applied.
    let mut place = match landed_at(db.url()) {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!("reading the history after the kill: {e}"));
            return Err(problems);
        }
    };
    match rollbacks(&mut admin, db.name()) {
        Ok(n) if n - baseline_rollbacks > setup.clean_rollbacks => {
            place.push_str(", a transaction rolled back")
        }
        Ok(_) => {}
        Err(e) => problems.push(e),
    }
    let after_kill = if mode == Mode::Repair {
        check_repair_after_kill(db.url(), &mut place)
    } else {
        check_after_kill(db.url(), mode, setup)
    };
    match after_kill {
        Ok(AfterKill::Consistent) => tally.consistent_after_kill += 1,
        Ok(AfterKill::InsideNoTransaction) => tally.inside_notx += 1,
        Err(mut p) => problems.append(&mut p),
    }
    *tally.where_landed.entry(place.clone()).or_default() += 1;

    // The rerun.
    if mode == Mode::Repair {
        if let Err(e) = fix_duplicate(db.url()) {
            problems.push(e);
            return Err(problems);
        }
    }
    let steps = match rerun(&cli, mode.rerun_args(), db.url()) {
        Ok(r) => {
            tally.repairs += r.repairs;
            r.steps
        }
        Err(e) => {
            problems.push(format!("[{place}] {e}"));
            return Err(problems);
        }
    };
    let mut end_ok = true;
    match read_state(db.url()) {
        Ok(state) => {
            for p in compare(&setup.end, &state) {
                end_ok = false;
                problems.push(format!("[{place}] after the rerun {steps:?}: {p}"));
            }
        }
        Err(e) => {
            end_ok = false;
            problems.push(format!("reading the state: {e}"));
        }
    }
    match migrations_locks(&mut admin, db.name()) {
        Ok(0) => {}
        Ok(n) => {
            end_ok = false;
            problems.push(format!("{n} lock row(s) left after the rerun"));
        }
        Err(e) => problems.push(e),
    }
    if end_ok {
        tally.rerun_ok += 1;
    }
    if problems.is_empty() {
        Ok(Some(format!(
            "landed {place}; rerun: {}",
            steps.join(" -> ")
        )))
    } else {
        Err(problems)
    }
}

/// A killed process cannot print after the kill; if it had printed an error before, that
/// must be one clear `error:` line (warnings and progress are not errors).
fn check_killed_output(killed: &Outcome, tally: &mut Tally, problems: &mut Vec<String>) {
    let printed_error = killed
        .stderr
        .lines()
        .any(|l| l.trim_start().to_ascii_lowercase().starts_with("error"));
    if !printed_error {
        return;
    }
    // `clear_error_line` wants an exit code of 1; a killed run has none.
    let as_failed = Outcome {
        code: Some(1),
        ..killed.clone()
    };
    match clear_error_line(&as_failed, None, &[]) {
        Ok(_) => tally.printed_error += 1,
        Err(e) => problems.push(format!("the killed run printed: {e}")),
    }
}

enum AfterKill {
    Consistent,
    InsideNoTransaction,
}

/// Nothing half-applied after a kill of `up`, `up --single-transaction`, `down` or `redo`:
/// unless a no-transaction migration's row is `running`, the history holds the first `k`
/// versions of the set, `applied`, and the database equals the clean run's state at `k`.
fn check_after_kill(url: &str, mode: Mode, setup: &Setup) -> Result<AfterKill, Vec<String>> {
    let state = read_state(url).map_err(|e| vec![e])?;
    if let Some((v, s)) = state.history.iter().find(|(_, s)| s != "applied") {
        // A transactional migration never leaves such a row: only the no-transaction ones
        // write `running` before their first statement.
        let notx = matches!(v, 3 | 5 | 7) && mode != Mode::UpSingleTransaction;
        return if notx && s == "running" {
            Ok(AfterKill::InsideNoTransaction)
        } else {
            Err(vec![format!(
                "history row {v} is `{s}` after a kill of `{}`",
                mode.args().join(" ")
            )])
        };
    }
    let applied: Vec<i64> = state.history.iter().map(|(v, _)| *v).collect();
    let k = applied.len();
    let prefix: Vec<i64> = setup
        .versions
        .iter()
        .take(k)
        .map(|v| i64::from(*v))
        .collect();
    if applied != prefix {
        return Err(vec![format!(
            "the history holds {applied:?}, not the first {k} versions of the set"
        )]);
    }
    if mode == Mode::UpSingleTransaction && k != 0 && k != setup.versions.len() {
        return Err(vec![format!(
            "--single-transaction left {k} of {} migrations applied",
            setup.versions.len()
        )]);
    }
    let d = compare(&setup.references[k], &state);
    if d.is_empty() {
        Ok(AfterKill::Consistent)
    } else {
        Err(d
            .into_iter()
            .map(|p| format!("half-applied (history: {k} applied): {p}"))
            .collect())
    }
}

/// After a kill of `repair`: its one transaction (row deleted + audit event) committed or not,
/// and the invalid index (dropped before it) gone whenever the row is.
fn check_repair_after_kill(url: &str, place: &mut String) -> Result<AfterKill, Vec<String>> {
    let mut client = check::connect(url).map_err(|e| vec![e])?;
    let state = read_state(url).map_err(|e| vec![e])?;
    let audit: i64 = client
        .query_one(
            "SELECT count(*) FROM public.migrations_history_audit WHERE event = 'repair'",
            &[],
        )
        .map_err(|e| vec![e.to_string()])?
        .get(0);
    let index_left = state
        .invalid_indexes
        .iter()
        .any(|i| i == sets::REPAIR_INVALID_INDEX);
    let row = state
        .history
        .iter()
        .find(|(v, _)| *v == 2)
        .map(|(_, s)| s.clone());
    let mut problems = Vec::new();
    if state.history.first() != Some(&(1, "applied".to_owned())) {
        problems.push(format!("history row 1 changed: {:?}", state.history));
    }
    match row.as_deref() {
        Some("failed") => {
            *place = if index_left {
                "before repair dropped the invalid index".to_owned()
            } else {
                "after the invalid index was dropped, before the row was cleared".to_owned()
            };
            if audit != 0 {
                problems.push(format!(
                    "the row is still failed but the audit has {audit} repair event(s)"
                ));
            }
        }
        None => {
            *place = "after repair committed".to_owned();
            if index_left {
                problems.push("the row was cleared but the invalid index is left".to_owned());
            }
            if audit != 1 {
                problems.push(format!(
                    "the row was cleared but the audit has {audit} repair event(s), not 1"
                ));
            }
        }
        Some(other) => problems.push(format!("history row 2 is `{other}`")),
    }
    if problems.is_empty() {
        Ok(AfterKill::Consistent)
    } else {
        Err(problems)
    }
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
/// with `k` applied, or inside no-transaction migration `v` (up or down) after `d` of its `t`
/// statements.
fn landed_at(url: &str) -> Result<String, String> {
    let mut client = check::connect(url)?;
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('public.migrations_history') IS NOT NULL",
            &[],
        )
        .map_err(|e| e.to_string())?
        .get(0);
    if !exists {
        return Ok("before the history table existed".to_owned());
    }
    if let Some(row) = client
        .query_opt(
            "SELECT version, coalesce(statements_done, 0), coalesce(statements_total, 0), \
             coalesce(error, '') = 'down in progress', state::text \
             FROM public.migrations_history WHERE state::text = 'running'",
            &[],
        )
        .map_err(|e| e.to_string())?
    {
        let (v, d, t, down): (i64, i32, i32, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        return Ok(format!(
            "in no-transaction migration {v} ({}) after statement {d}/{t}",
            if down { "down" } else { "up" }
        ));
    }
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM public.migrations_history WHERE state::text = 'applied'",
            &[],
        )
        .map_err(|e| e.to_string())?
        .get(0);
    Ok(format!("with {n} applied"))
}
