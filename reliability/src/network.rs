//! Network faults between the runner and the server, through a proxy of our own
//! ([`Proxy`]), on a cluster started here:
//!
//! - **cut**: both sides of the connection closed while `migrations up` is inside a
//!   migration's statement;
//! - **stall**: the proxy stops forwarding in both directions (both sockets stay open) at
//!   such an instant, as a hung middlebox does.
//!
//! Each fault lands in a transactional migration (2) and in a no-transaction one (3): the
//! runner's session is found inside that migration's `'fault window'` `pg_sleep` through
//! `pg_stat_activity` (where the runner's advisory lock is also seen held, which shows that
//! the lock query can see one), and the fault comes a further 0–1000 ms (seeded) later.
//! Expected, each counted by code: the runner ends by itself (for a stall: within
//! [`Options::stall_limit`], and how long it took is measured) with exit 1 and one clear
//! `error:` line naming the migration; nothing half-applied (the history and the schema agree
//! with a clean run stopped at the same version); the advisory lock released (polled, with a
//! bound: the server notices a closed client within `client_connection_check_interval`);
//! and a rerun (`up`, with `repair` when the history holds a `failed` row) that completes and
//! leaves the database equal to a clean run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::bin::{clear_error_line, named_statement, wait, Cli, Outcome};
use crate::check::{self, compare, migrations_locks, read_state, rerun, State};
use crate::cluster::{self, Cluster};
use crate::faults::runner_in_window;
use crate::proxy::Proxy;
use crate::rng::Rng;
use crate::{sets, Summary};

/// Settings of a network-fault run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Trials in all, spread evenly over (cut, stall) × (transactional, no-transaction).
    pub trials: usize,
    /// Seed of the extra delays (printed).
    pub seed: u64,
    /// How long a stalled runner is given to end by itself before it counts as hung.
    pub stall_limit: Duration,
    /// Only this fault (both migration kinds), for the smoke tests.
    pub only: Option<NetFault>,
    /// Print one line per trial.
    pub verbose: bool,
}

/// The length of the `pg_sleep` the faults land in.
const WINDOW_SECONDS: f64 = 1.5;
/// How long a cut runner may take to exit (it reads end-of-file at once).
const CUT_LIMIT: Duration = Duration::from_secs(30);
/// How long the server may take to notice a dead session and release its lock.
const LOCK_LIMIT: Duration = Duration::from_secs(30);
/// How long the lock of a killed runner's session, orphaned behind a stalled proxy, is
/// watched before the proxy is cut to free it.
const ORPHAN_OBSERVATION: Duration = Duration::from_secs(5);

/// The kind of network fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NetFault {
    /// Both sides closed.
    Cut,
    /// Nothing forwarded any more, sockets left open.
    Stall,
}

/// The trial plan: fault, migration version, its name, its kind.
const COMBOS: [(NetFault, u32, &str, &str); 4] = [
    (NetFault::Cut, 2, "posts", "transactional"),
    (NetFault::Cut, 3, "indexes", "no-transaction"),
    (NetFault::Stall, 2, "posts", "transactional"),
    (NetFault::Stall, 3, "indexes", "no-transaction"),
];

/// Runs the trials and returns what was found.
pub fn run(bin: &Path, options: &Options) -> Summary {
    let mut summary = Summary::new("network faults (proxy: cut, stall)");
    println!(
        "network faults: {} trials, seed {}, stall limit {:?}",
        options.trials, options.seed, options.stall_limit
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

    // References: a clean run stopped after each version, so that the state after a fault
    // can be compared with the clean state at the version the history records.
    let references = match references(bin, &cluster, &dir, &set) {
        Ok(r) => r,
        Err(e) => {
            summary.fail(e);
            return summary;
        }
    };
    let full = references.last().expect("non-empty set").clone();

    let mut rng = Rng::new(options.seed);
    let mut counts: BTreeMap<String, Tally> = BTreeMap::new();
    let mut messages = BTreeMap::new();
    let started = Instant::now();
    for trial in 1..=options.trials {
        let combos: Vec<_> = COMBOS
            .iter()
            .filter(|c| options.only.is_none_or(|f| f == c.0))
            .collect();
        let &(fault, version, name, kind) = combos[(trial - 1) % combos.len()];
        let label = format!("trial {trial}: {fault:?} during {kind} migration {version}");
        let extra = Duration::from_millis(rng.below(1000));
        let tally = counts.entry(format!("{fault:?}, {kind}")).or_default();
        tally.trials += 1;
        let t = Trial {
            bin,
            cluster: &cluster,
            dir: &dir,
            db: format!("net_{trial}"),
            fault,
            version,
            name,
            statement: window_statement(&set, version),
            extra,
            options,
        };
        match t.run(&references, &full, tally) {
            Ok(line) => {
                let line = line.replace(&dir.display().to_string(), "<dir>");
                *messages
                    .entry(format!("{fault:?}, {kind}: {}", mask_digits(&line)))
                    .or_insert(0usize) += 1;
                if options.verbose {
                    println!("{label}: ok: {line}");
                }
            }
            Err(problems) => {
                for p in problems {
                    summary.fail(format!("{label}: {p}"));
                }
            }
        }
    }
    summary.figure("seed", options.seed);
    summary.figure("trials", options.trials);
    for (what, t) in &counts {
        summary.figure(&format!("{what}: trials"), t.trials);
        summary.figure(
            &format!("{what}: runner ended by itself, exit 1, one clear line"),
            t.clear,
        );
        summary.figure(
            &format!("{what}: lock seen held mid-statement (pg_locks query)"),
            t.lock_seen,
        );
        summary.figure(
            &format!("{what}: runner still waiting at the limit (killed)"),
            t.hung,
        );
        summary.figure(
            &format!(
                "{what}: lock still held {} s after such a kill (orphaned session behind the stall)",
                ORPHAN_OBSERVATION.as_secs()
            ),
            t.orphan_held_lock,
        );
        if let (Some(min), Some(max)) = (t.ended_min, t.ended_max) {
            summary.figure(
                &format!("{what}: runner ended after the fault in"),
                format!("{} to {} ms", min.as_millis(), max.as_millis()),
            );
        }
        if let Some(max) = t.lock_max {
            summary.figure(
                &format!("{what}: lock released after the runner ended within"),
                format!("{} ms", max.as_millis()),
            );
        }
        summary.figure(
            &format!("{what}: state after the fault = clean run at the recorded version"),
            t.consistent_after_fault,
        );
        for (k, n) in &t.applied_after_fault {
            summary.figure(&format!("{what}: history after the fault: {k} applied"), n);
        }
        summary.figure(
            &format!("{what}: inside the no-transaction migration (row running/failed)"),
            t.partial_notx,
        );
        summary.figure(
            &format!("{what}: rerun completed, state = clean run"),
            t.rerun_ok,
        );
        summary.figure(&format!("{what}: reruns that needed repair"), t.repairs);
    }
    for (m, n) in &messages {
        summary.figure("error line", format!("{m} (×{n})"));
    }
    summary.figure(
        "wall time",
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    );
    summary
}

/// Per (fault, kind): what held, counted.
#[derive(Debug, Default)]
struct Tally {
    trials: usize,
    clear: usize,
    lock_seen: usize,
    ended_min: Option<Duration>,
    ended_max: Option<Duration>,
    lock_max: Option<Duration>,
    consistent_after_fault: usize,
    partial_notx: usize,
    hung: usize,
    orphan_held_lock: usize,
    /// How many migrations the history recorded after the fault, when consistent.
    applied_after_fault: BTreeMap<usize, usize>,
    rerun_ok: usize,
    repairs: usize,
}

/// The clean states after each version (see [`check::references`]), on database
/// `reference` of the cluster, where the lock query is also shown to see a held lock.
fn references(
    bin: &Path,
    cluster: &Cluster,
    dir: &Path,
    set: &[sets::Migration],
) -> Result<Vec<State>, String> {
    cluster.create_database("reference")?;
    let url = cluster.url("reference");
    let out = check::references(bin, &url, dir, set)?;
    let mut admin = check::connect(&cluster.url("postgres"))?;
    check::prove_lock_query(&url, &mut admin, "reference")?;
    Ok(out)
}

struct Trial<'a> {
    bin: &'a Path,
    cluster: &'a Cluster,
    dir: &'a Path,
    db: String,
    fault: NetFault,
    version: u32,
    name: &'a str,
    /// The statement (1-based) of the migration the fault hits: its `'fault window'` sleep.
    statement: u64,
    extra: Duration,
    options: &'a Options,
}

impl Trial<'_> {
    /// One trial; `Ok(error line)` when everything held, else every problem found.
    fn run(
        &self,
        references: &[State],
        full: &State,
        tally: &mut Tally,
    ) -> Result<String, Vec<String>> {
        let mut problems = Vec::new();
        self.cluster
            .create_database(&self.db)
            .map_err(|e| vec![e])?;
        let direct = self.cluster.url(&self.db);
        let mut admin = check::connect(&self.cluster.url("postgres")).map_err(|e| vec![e])?;
        let proxy = Proxy::start(self.cluster.port()).map_err(|e| vec![e.to_string()])?;
        let through = format!("postgres://postgres@127.0.0.1:{}/{}", proxy.port(), self.db);
        let cli = Cli::new(self.bin, &through, self.dir);

        let t0 = Instant::now();
        let mut child = cli.spawn(&["up"]);
        if let Err(e) = runner_in_window(&direct, &mut admin, &mut child, &self.db, self.version) {
            let _ = child.kill();
            return Err(vec![format!(
                "{e} (runner: {})",
                wait(child, t0).describe()
            )]);
        }
        match migrations_locks(&mut admin, &self.db) {
            Ok(1) => tally.lock_seen += 1,
            Ok(n) => problems.push(format!(
                "the runner is mid-statement but pg_locks shows {n} rows for its lock"
            )),
            Err(e) => problems.push(e),
        }
        std::thread::sleep(self.extra);
        match self.fault {
            NetFault::Cut => proxy.cut(),
            NetFault::Stall => proxy.stall(),
        }
        let faulted = Instant::now();
        let limit = match self.fault {
            NetFault::Cut => CUT_LIMIT,
            NetFault::Stall => self.options.stall_limit,
        };
        let outcome = match wait_bounded(child, t0, limit) {
            Ok(outcome) => {
                let ended = faulted.elapsed();
                tally.ended_min = Some(tally.ended_min.map_or(ended, |m| m.min(ended)));
                tally.ended_max = Some(tally.ended_max.map_or(ended, |m| m.max(ended)));
                Some(outcome)
            }
            Err(outcome) => {
                tally.hung += 1;
                problems.push(format!(
                    "the runner did not end by itself within {limit:?} of the {:?} (killed; {})",
                    self.fault,
                    outcome.describe()
                ));
                None
            }
        };
        let mut line = String::new();
        if let Some(outcome) = &outcome {
            match clear_error_line(outcome, Some(self.version), &[self.name]) {
                Ok(l) => {
                    // A line that names a statement must name the one the fault hit.
                    match named_statement(&l) {
                        Some(n) if n != self.statement => problems.push(format!(
                            "the error names statement {n}, but the fault hit statement {} \
                             (the `'fault window'` pg_sleep): {l}",
                            self.statement
                        )),
                        _ => tally.clear += 1,
                    }
                    line = l;
                }
                Err(e) => problems.push(e),
            }
        }
        // The runner is gone; its server session must go too and release the lock (the
        // server notices a closed client within client_connection_check_interval, or at
        // once when idle). A runner that had to be killed left a stalled proxy behind, which
        // passes on nothing, not even the close: its session is then expected to stay, and
        // how long it holds the lock is measured over a short bound before the proxy is cut.
        let bound = if outcome.is_some() {
            LOCK_LIMIT
        } else {
            ORPHAN_OBSERVATION
        };
        let released_at = Instant::now();
        match check::wait_lock_released(&mut admin, &self.db, bound) {
            Ok(_) => {
                let took = released_at.elapsed();
                tally.lock_max = Some(tally.lock_max.map_or(took, |m| m.max(took)));
            }
            Err(e) => {
                if outcome.is_some() {
                    problems.push(e);
                } else {
                    tally.orphan_held_lock += 1;
                }
                // Free the session so the trial can go on.
                proxy.cut();
                if let Err(e) = check::wait_lock_released(&mut admin, &self.db, LOCK_LIMIT) {
                    problems.push(format!("{e}, even after the proxy was cut"));
                }
            }
        }
        if let Err(e) = check::wait_runner_sessions_gone(&mut admin, &self.db, LOCK_LIMIT) {
            problems.push(e);
        }

        // Nothing half-applied: with no row running or failed, the state is the clean run's
        // at the version the history records.
        match after_fault_state(&direct, references) {
            Ok(AfterFault::Consistent(k)) => {
                tally.consistent_after_fault += 1;
                *tally.applied_after_fault.entry(k).or_default() += 1;
            }
            Ok(AfterFault::InsideNoTransaction) => tally.partial_notx += 1,
            Ok(AfterFault::Differs(d)) => problems.extend(d),
            Err(e) => problems.push(e),
        }

        // The rerun, on a direct connection.
        let direct_cli = Cli::new(self.bin, &direct, self.dir);
        match rerun(&direct_cli, &["up"], &direct) {
            Ok(r) => {
                tally.repairs += r.repairs;
                match read_state(&direct) {
                    Ok(state) => {
                        let d = compare(full, &state);
                        if d.is_empty() {
                            tally.rerun_ok += 1;
                        }
                        problems.extend(d);
                    }
                    Err(e) => problems.push(e),
                }
            }
            Err(e) => problems.push(e),
        }
        match migrations_locks(&mut admin, &self.db) {
            Ok(0) => {}
            Ok(n) => problems.push(format!("{n} lock row(s) left after the rerun")),
            Err(e) => problems.push(e),
        }
        if problems.is_empty() {
            Ok(line)
        } else {
            Err(problems)
        }
    }
}

/// Waits for `child` at most `limit`; past it, kills it and returns its output as `Err`.
fn wait_bounded(
    mut child: std::process::Child,
    t0: Instant,
    limit: Duration,
) -> Result<Outcome, Outcome> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return Ok(wait(child, t0));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(wait(child, t0));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a fault left, before any rerun.
pub enum AfterFault {
    /// No row running or failed, and the state equals the clean run's at the applied
    /// versions (how many).
    Consistent(usize),
    /// A no-transaction migration was interrupted part-way (its row is `running` or
    /// `failed`): allowed by SPEC 3.3, and `repair` + `up` must then complete it.
    InsideNoTransaction,
    /// The differences found.
    Differs(Vec<String>),
}

/// Compares the state at `url` with `references[k]`, `k` being the number of applied rows
/// (the versions of the sets are `1..=n`, applied in order).
pub fn after_fault_state(url: &str, references: &[State]) -> Result<AfterFault, String> {
    let state = read_state(url)?;
    if state.history.iter().any(|(_, s)| s != "applied") {
        return Ok(AfterFault::InsideNoTransaction);
    }
    let applied: Vec<i64> = state.history.iter().map(|(v, _)| *v).collect();
    let k = applied.len();
    if applied != (1..=k as i64).collect::<Vec<_>>() || k >= references.len() {
        return Ok(AfterFault::Differs(vec![format!(
            "the history holds versions {applied:?}, not a prefix of the set"
        )]));
    }
    let d = compare(&references[k], &state);
    Ok(if d.is_empty() {
        AfterFault::Consistent(k)
    } else {
        AfterFault::Differs(
            d.into_iter()
                .map(|p| format!("half-applied (history says {k} applied): {p}"))
                .collect(),
        )
    })
}

/// The position (1-based) of the statement holding `'fault window'` in migration `version`
/// of `set` (one statement per line there; comment lines do not count).
pub(crate) fn window_statement(set: &[sets::Migration], version: u32) -> u64 {
    let sql = &set
        .iter()
        .find(|m| m.0 == version)
        .expect("a version of the set")
        .3;
    let statements = sql
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"));
    let mut n = 0;
    for line in statements {
        n += 1;
        if line.contains("fault window") {
            return n;
        }
    }
    panic!("migration {version} has no 'fault window' statement")
}

/// The error line with its numbers of three digits or more (durations, process ids, file
/// numbers) replaced by `#`, so that lines that differ only in those are counted together;
/// versions, statement numbers, lines and SQLSTATEs stay.
pub(crate) fn mask_digits(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if !c.is_ascii_digit() {
            out.push(c);
            continue;
        }
        let mut number = String::from(c);
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_alphanumeric()) {
            number.push(*d);
            chars.next();
        }
        if number.len() >= 3 && !out.ends_with("SQLSTATE ") {
            out.push('#');
        } else {
            out.push_str(&number);
        }
    }
    out
}
