//! Behaviour that needs more than one operating-system process, on a real PostgreSQL: a runner
//! killed with `SIGKILL` in the middle of a migration (SPEC 3.3: a crash leaves a transactional
//! migration applied and recorded, or neither, and both outcomes are reached on purpose; a
//! no-transaction one `failed` until `repair`),
//! and eight runners started at once on one database (SPEC 3.2: each migration applied exactly
//! once, every runner exits successfully).
//!
//! # Child processes
//!
//! A runner in another process is this same test binary run again
//! (`std::env::current_exe()`) as `<binary> processes::child_runner --exact --ignored
//! --nocapture --test-threads=1` (the name derived from this module's path), so that only the
//! test [`child_runner`] runs in it. The parent hands it its work through environment variables
//! (`MIGRATIONS_CHILD_*`: the database URL, the migrations directory, the driver, and optional
//! ready/gate/waiting/report files). `child_runner` is `#[ignore]`d, so a normal `cargo test`
//! run skips it.
//! In a child it runs `up` and reports by its exit status: libtest exits 0 when the test passes
//! and non-zero when it panics, so a failing `up` is a non-zero exit. The child never calls
//! `test_db()`: it uses the parent's database, on the parent's cluster.
//!
//! Every wait here is bounded; a child still running at its deadline is killed and the test
//! fails with the child's output.

// As in the library: a run returns at most one error, so its size costs nothing (the shared
// helpers in `common` return `Result<_, Error>`).
#![allow(clippy::result_large_err)]

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{column, runtime, scalar, table_exists, Dir, Driver};
use migrations_core::plan::Status;
use migrations_core::{DriftKind, Error, Event, Migrations, Migrator, Operation, Report};
use migrations_tests::{test_db, TestDb};

const ENV_URL: &str = "MIGRATIONS_CHILD_URL";
const ENV_DIR: &str = "MIGRATIONS_CHILD_DIR";
const ENV_DRIVER: &str = "MIGRATIONS_CHILD_DRIVER";
/// The child creates this file once it is connected.
const ENV_READY: &str = "MIGRATIONS_CHILD_READY";
/// The child waits for this file before it runs `up`, so that many children start together.
const ENV_GATE: &str = "MIGRATIONS_CHILD_GATE";
/// The child writes what its run did here.
const ENV_REPORT: &str = "MIGRATIONS_CHILD_REPORT";
/// The child creates this file when it finds the migrations lock taken and starts to poll.
const ENV_WAITING: &str = "MIGRATIONS_CHILD_WAITING";

/// How long a child may take to start and connect, and to wait at the gate.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long the concurrency tests give their children in all.
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// How long a killed runner's server session may take to go away (it finishes the statement
/// it is in, a `pg_sleep(3)`, before it finds its client gone).
const BACKEND_GONE_LIMIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------------
// The child side.

/// The child side, run only by the tests below in a child process (ignored in a normal run,
/// so it is reported as ignored rather than passing without doing anything): connects,
/// optionally signals readiness and waits at the gate, runs `up` and writes a report. A failed
/// `up` panics, so the child process exits non-zero.
#[test]
#[ignore = "run by the crash and concurrency tests of this file in a child process"]
fn child_runner() {
    let url = std::env::var(ENV_URL)
        .expect("child_runner is run by other tests of this file, with MIGRATIONS_CHILD_URL set");
    let dir = PathBuf::from(std::env::var(ENV_DIR).expect("MIGRATIONS_CHILD_DIR is not set"));
    let driver = match std::env::var(ENV_DRIVER).as_deref() {
        Ok("async") => Driver::Async,
        Ok("sync") | Err(_) => Driver::Sync,
        Ok(other) => panic!("unknown driver {other}"),
    };
    let migrations = Migrations::from_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    let waited = Arc::new(AtomicBool::new(false));
    let seen = waited.clone();
    let waiting_file = std::env::var(ENV_WAITING).ok();
    let mut migrator = Migrator::new(&migrations)
        .lock_wait(RUN_LIMIT)
        .on_event(move |e| {
            if let Event::WaitingForLock { .. } = e {
                seen.store(true, Ordering::SeqCst);
                if let Some(path) = &waiting_file {
                    fs::write(path, "").unwrap();
                }
            }
        });
    let result: Result<Report, Error> = match driver {
        Driver::Sync => {
            let mut client = postgres::Client::connect(&url, postgres::NoTls)
                .unwrap_or_else(|e| panic!("child cannot connect: {e}"));
            ready_then_gate();
            migrator.run(&mut client)
        }
        Driver::Async => {
            let rt = runtime();
            let mut client = rt.block_on(common::connect_async(&url));
            ready_then_gate();
            rt.block_on(migrator.run_async(&mut client))
        }
    };
    let report = result.unwrap_or_else(|e| panic!("child runner: up failed: {e}"));
    if let Ok(path) = std::env::var(ENV_REPORT) {
        let ran: Vec<String> = report.ran.iter().map(|r| r.version.to_string()).collect();
        let text = format!(
            "waited={}\nfast={}\nran={}\n",
            waited.load(Ordering::SeqCst),
            report.up_to_date_fast,
            ran.join(",")
        );
        fs::write(path, text).unwrap();
    }
}

fn ready_then_gate() {
    if let Ok(ready) = std::env::var(ENV_READY) {
        fs::write(ready, "").unwrap();
    }
    if let Ok(gate) = std::env::var(ENV_GATE) {
        let started = Instant::now();
        while !Path::new(&gate).exists() {
            assert!(
                started.elapsed() < START_LIMIT,
                "child runner: the gate {gate} never opened"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The parent side.

/// A child runner process, its output going to a file.
struct Child {
    label: String,
    process: std::process::Child,
    log: PathBuf,
    report: PathBuf,
    ready: PathBuf,
    waiting: PathBuf,
}

/// Files and options of children.
struct Spawn<'a> {
    db: &'a TestDb,
    migrations: &'a Path,
    work: &'a Path,
    gate: Option<&'a Path>,
}

impl Spawn<'_> {
    fn child(&self, label: &str, driver: Driver) -> Child {
        let log = self.work.join(format!("{label}.log"));
        let report = self.work.join(format!("{label}.report"));
        let ready = self.work.join(format!("{label}.ready"));
        let waiting = self.work.join(format!("{label}.waiting"));
        let out = fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                common::test_name(module_path!(), "child_runner").as_str(),
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_URL, self.db.url())
            .env(ENV_DIR, self.migrations)
            .env(
                ENV_DRIVER,
                match driver {
                    Driver::Sync => "sync",
                    Driver::Async => "async",
                },
            )
            .env(ENV_READY, &ready)
            .env(ENV_REPORT, &report)
            .env(ENV_WAITING, &waiting)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if let Some(gate) = self.gate {
            command.env(ENV_GATE, gate);
        }
        let process = command.spawn().expect("cannot start a child runner");
        Child {
            label: label.to_owned(),
            process,
            log,
            report,
            ready,
            waiting,
        }
    }
}

impl Child {
    fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test (after killing the child) if it has exited.
    fn assert_running(&mut self, what: &str) {
        if let Some(status) = self.process.try_wait().unwrap() {
            panic!(
                "child {} exited ({status}) before {what}; its output:\n{}",
                self.label,
                self.output()
            );
        }
    }

    fn sigkill(&mut self) {
        let pid = self.process.id() as libc::pid_t;
        // SAFETY: `pid` is our own child, not yet reaped (so the id cannot have been reused).
        let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!(rc, 0, "kill({pid}, SIGKILL) failed");
        let status = self.process.wait().unwrap();
        assert!(!status.success(), "the child was killed: {status}");
    }

    /// Freezes the child (SIGSTOP) and returns once it is stopped: from then on it reads and
    /// sends nothing, but its connection stays open.
    fn sigstop(&mut self) {
        let pid = self.process.id() as libc::pid_t;
        // SAFETY: `pid` is our own child, not yet reaped (so the id cannot have been reused).
        let rc = unsafe { libc::kill(pid, libc::SIGSTOP) };
        assert_eq!(rc, 0, "kill({pid}, SIGSTOP) failed");
        let mut status = 0;
        // SAFETY: as above; WUNTRACED reports the stop without reaping the child.
        let waited = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) };
        assert_eq!(waited, pid, "waitpid({pid}) failed");
        assert!(
            libc::WIFSTOPPED(status),
            "child {} ended instead of stopping (status {status}); its output:\n{}",
            self.label,
            self.output()
        );
    }

    /// Waits (bounded) until the child has created `file`.
    fn wait_for_file(&mut self, file: &Path, what: &str) {
        let started = Instant::now();
        while !file.exists() {
            self.assert_running(what);
            assert!(
                started.elapsed() < START_LIMIT,
                "child {} was not {what} within {START_LIMIT:?}; its output:\n{}",
                self.label,
                self.output()
            );
            std::thread::sleep(POLL);
        }
    }

    fn kill_quietly(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Child {
    /// A test that fails part-way leaves no runner behind.
    fn drop(&mut self) {
        if let Ok(None) = self.process.try_wait() {
            self.kill_quietly();
        }
    }
}

/// Waits until every child has exited, killing them all if `limit` passes first.
fn wait_all(children: &mut [Child], limit: Duration) -> Vec<ExitStatus> {
    let started = Instant::now();
    let mut statuses: Vec<Option<ExitStatus>> = vec![None; children.len()];
    loop {
        for (child, status) in children.iter_mut().zip(statuses.iter_mut()) {
            if status.is_none() {
                *status = child.process.try_wait().unwrap();
            }
        }
        if statuses.iter().all(Option::is_some) {
            return statuses.into_iter().map(Option::unwrap).collect();
        }
        if started.elapsed() > limit {
            let mut text = String::new();
            for (child, status) in children.iter_mut().zip(&statuses) {
                if status.is_none() {
                    child.kill_quietly();
                    text.push_str(&format!(
                        "\n--- {} (killed) ---\n{}",
                        child.label,
                        child.output()
                    ));
                }
            }
            panic!("child runners still running after {limit:?}:{text}");
        }
        std::thread::sleep(POLL);
    }
}

/// The server process of the session (in this test's database, not ours) whose query contains
/// `needle` and is running now. Polls until there is one, failing if `child` exits first.
fn wait_for_query(db: &TestDb, child: &mut Child, needle: &str) -> i32 {
    let mut client = db.connect();
    let started = Instant::now();
    loop {
        let row = client
            .query_opt(
                "SELECT pid FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                   AND state = 'active' AND strpos(query, $1) > 0",
                &[&needle],
            )
            .unwrap();
        if let Some(row) = row {
            return row.get(0);
        }
        child.assert_running(&format!("running `{needle}`"));
        assert!(
            started.elapsed() < START_LIMIT,
            "no session ran `{needle}` within {START_LIMIT:?}; child output:\n{}",
            child.output()
        );
        std::thread::sleep(POLL);
    }
}

/// The server process of the session (in this test's database) whose query contains `needle`
/// and which waits for a lock on `relation` held by another session. Polls until there is one,
/// failing if `child` exits first.
fn wait_blocked_on(db: &TestDb, child: &mut Child, relation: &str, needle: &str) -> i32 {
    let mut client = db.connect();
    let started = Instant::now();
    loop {
        let row = client
            .query_opt(
                "SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid \
                 WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() \
                   AND NOT l.granted AND l.relation = to_regclass($1) \
                   AND strpos(a.query, $2) > 0",
                &[&relation, &needle],
            )
            .unwrap();
        if let Some(row) = row {
            return row.get(0);
        }
        child.assert_running(&format!("waiting for a lock on {relation}"));
        assert!(
            started.elapsed() < START_LIMIT,
            "no session waited for {relation} within {START_LIMIT:?}; child output:\n{}",
            child.output()
        );
        std::thread::sleep(POLL);
    }
}

/// Waits (bounded) until migration `version`'s history row is committed in `state`.
fn wait_for_row(db: &TestDb, version: i64, state: &str) {
    let started = Instant::now();
    let query = format!("SELECT state FROM public.migrations_history WHERE version = {version}");
    while scalar(db, &query).as_deref() != Some(state) {
        assert!(
            started.elapsed() < START_LIMIT,
            "the history row of {version} was not committed as {state} within {START_LIMIT:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// Waits until the server process `pid` has ended (it holds the migrations lock and, for a
/// transactional migration, an open transaction until then).
fn wait_backend_gone(db: &TestDb, pid: i32) {
    let mut client = db.connect();
    let started = Instant::now();
    loop {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        assert!(
            started.elapsed() < BACKEND_GONE_LIMIT,
            "the killed runner's session (pid {pid}) is still there after {BACKEND_GONE_LIMIT:?}"
        );
        std::thread::sleep(POLL);
    }
}

fn history_exists(db: &TestDb) -> bool {
    table_exists(db, "public.migrations_history")
}

fn count(db: &TestDb, sql: &str) -> i64 {
    scalar(db, sql).unwrap().parse().unwrap()
}

fn history_rows(db: &TestDb) -> i64 {
    if history_exists(db) {
        count(db, "SELECT count(*) FROM public.migrations_history")
    } else {
        0
    }
}

fn audit_ups(db: &TestDb) -> i64 {
    if table_exists(db, "public.migrations_history_audit") {
        count(
            db,
            "SELECT count(*) FROM public.migrations_history_audit WHERE event = 'up'",
        )
    } else {
        0
    }
}

// ---------------------------------------------------------------------------------------------
// Crash atomicity.
//
// A transactional migration is one round trip: BEGIN, the script, its history row and audit
// event, COMMIT. A runner killed before the server commits leaves neither the schema change nor
// the row; killed after, both. Where the kill lands is decided on the server's side, never by a
// sleep: the runner's transaction is held at a lock this test holds (in the script, or at the
// history row written after the whole script), and the test kills the runner there, or freezes
// it there (SIGSTOP), lets the server commit, and kills it then.

/// Migration 1 makes the table the script waits on; migration 2 is the one the child runs.
const GATE: &str = "CREATE TABLE gate (x int);\n";
/// Statement 2 waits while the test holds `gate`; the lock-timeout directive keeps it waiting
/// (the run's default of 5 s could give up before the test is done with it).
const THROUGH_GATE: &str = "-- migrations:lock-timeout=5min\nCREATE TABLE a ();\n\
                            INSERT INTO gate VALUES (1);\nCREATE TABLE b ();\n";

/// Where the child's transaction is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeldAt {
    /// In the user's script: `INSERT INTO gate` waits for the test's lock on `gate`.
    Script,
    /// After the whole script: the history row's `INSERT` waits for the test's lock on the
    /// history table.
    HistoryRow,
}

/// What the test does to the held runner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    /// SIGKILL while its transaction waits: the server must roll it back.
    Now,
    /// SIGSTOP, so the runner can neither read the answer nor send anything more; release the
    /// lock; wait until the server has committed; then SIGKILL.
    AfterCommit,
}

/// A runner killed at a point chosen on the server's side; the outcome is decided by where:
/// killed before the COMMIT ran, neither schema nor row; after, both. Either way the next `up`
/// finishes the job, so the migration is applied exactly once.
fn crash_in_transactional(driver: Driver, held_at: HeldAt, kill: Kill) {
    let db = test_db();
    let dir = Dir::new(&[("1_gate.up.sql", GATE), ("2_crash.up.sql", THROUGH_GATE)]);
    let migrations = dir.load();
    driver
        .execute(&db, &migrations, &Operation::Up { to: Some(1) }, |m| m)
        .unwrap();
    let relation = match held_at {
        HeldAt::Script => "public.gate",
        HeldAt::HistoryRow => "public.migrations_history",
    };
    // SHARE conflicts with the ROW EXCLUSIVE an INSERT takes, and with nothing a runner reads.
    let mut holder = db.connect();
    holder
        .batch_execute(&format!("BEGIN; LOCK TABLE {relation} IN SHARE MODE"))
        .unwrap();

    let work = tempfile::tempdir().unwrap();
    let spawn = Spawn {
        db: &db,
        migrations: dir.path(),
        work: work.path(),
        gate: None,
    };
    let mut child = spawn.child("crash", driver);
    let backend = wait_blocked_on(&db, &mut child, relation, "INSERT INTO gate VALUES (1)");
    let committed = match kill {
        Kill::Now => {
            child.sigkill();
            // The runner sets client_connection_check_interval, so the server finds its client
            // gone even while it waits for a lock, and ends the session. The lock is still
            // held here, so the transaction cannot have reached its COMMIT.
            wait_backend_gone(&db, backend);
            holder.batch_execute("COMMIT").unwrap();
            false
        }
        Kill::AfterCommit => {
            child.sigstop();
            holder.batch_execute("COMMIT").unwrap();
            // The COMMIT travels in the same query string as the script: the server finishes
            // it without hearing from the (frozen) runner again.
            wait_for_row(&db, 2, "applied");
            child.sigkill();
            wait_backend_gone(&db, backend);
            assert!(
                !child.report.exists(),
                "the runner never saw the answer; its output:\n{}",
                child.output()
            );
            true
        }
    };

    let (a, b, row) = (
        table_exists(&db, "a"),
        table_exists(&db, "b"),
        scalar(
            &db,
            "SELECT state FROM public.migrations_history WHERE version = 2",
        ),
    );
    eprintln!("{driver:?}, held at {held_at:?}, killed {kill:?}: a={a} b={b} row={row:?}");
    if committed {
        assert_eq!(
            (a, b, row.as_deref()),
            (true, true, Some("applied")),
            "committed: the schema and its history row"
        );
        assert_eq!(audit_ups(&db), 2);
    } else {
        assert_eq!(
            (a, b, row.as_deref()),
            (false, false, None),
            "rolled back: neither the schema nor a history row"
        );
        assert_eq!(audit_ups(&db), 1);
    }
    let gate_rows = if committed { "1" } else { "0" };
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM gate"),
        Some(gate_rows.into())
    );

    // The next run finishes the job: the migration is applied exactly once.
    let report = driver.up(&db, &migrations).unwrap();
    let ran: Vec<i64> = report.ran.iter().map(|r| r.version).collect();
    assert_eq!(ran, if committed { vec![] } else { vec![2] });
    assert_eq!(
        column(
            &db,
            "SELECT version || ' ' || state FROM public.migrations_history ORDER BY version"
        ),
        vec![Some("1 applied".to_owned()), Some("2 applied".to_owned())]
    );
    assert!(table_exists(&db, "a") && table_exists(&db, "b"));
    assert_eq!(scalar(&db, "SELECT count(*) FROM gate"), Some("1".into()));
    assert_eq!(audit_ups(&db), 2);
    assert!(driver.up(&db, &migrations).unwrap().up_to_date_fast);
}

#[test]
fn killed_in_its_script_rolls_back_sync() {
    crash_in_transactional(Driver::Sync, HeldAt::Script, Kill::Now);
}

#[test]
fn killed_in_its_script_rolls_back_async() {
    crash_in_transactional(Driver::Async, HeldAt::Script, Kill::Now);
}

#[test]
fn killed_at_its_history_row_rolls_back_sync() {
    crash_in_transactional(Driver::Sync, HeldAt::HistoryRow, Kill::Now);
}

#[test]
fn killed_at_its_history_row_rolls_back_async() {
    crash_in_transactional(Driver::Async, HeldAt::HistoryRow, Kill::Now);
}

#[test]
fn killed_after_the_commit_is_sent_stays_applied_and_recorded_sync() {
    crash_in_transactional(Driver::Sync, HeldAt::HistoryRow, Kill::AfterCommit);
}

#[test]
fn killed_after_the_commit_is_sent_stays_applied_and_recorded_async() {
    crash_in_transactional(Driver::Async, HeldAt::HistoryRow, Kill::AfterCommit);
}

/// A runner killed during statement 2 of a no-transaction migration: the next run finds the
/// `running` row with no lock holder, records it as `failed` ("the runner stopped ... during
/// statement 2 of 3") and refuses; `repair` clears it; the next `up` runs the file again from
/// its first statement. With `if_not_exists` the file is written to be rerun and completes at
/// once; without, the rerun fails at statement 1 (table a exists) until a is dropped.
fn crash_in_no_transaction(driver: Driver, if_not_exists: bool) {
    let db = test_db();
    let create = if if_not_exists {
        "CREATE TABLE IF NOT EXISTS"
    } else {
        "CREATE TABLE"
    };
    let file = format!(
        "-- migrations:no-transaction\n{create} a ();\nSELECT pg_sleep(3);\n{create} b ();\n"
    );
    let dir = Dir::new(&[("1_nt.up.sql", &file)]);
    let migrations = dir.load();
    assert!(migrations.get(1).unwrap().no_transaction());
    let work = tempfile::tempdir().unwrap();
    let spawn = Spawn {
        db: &db,
        migrations: dir.path(),
        work: work.path(),
        gate: None,
    };
    let mut child = spawn.child("crash", driver);
    let backend = wait_for_query(&db, &mut child, "pg_sleep(3)");
    child.sigkill();
    wait_backend_gone(&db, backend);

    // Half done, and the history says so.
    assert!(table_exists(&db, "a"));
    assert!(!table_exists(&db, "b"));
    assert_eq!(
        scalar(
            &db,
            "SELECT state || ' ' || statements_done || '/' || statements_total \
             FROM public.migrations_history WHERE version = 1"
        ),
        Some("running 1/3".into())
    );

    // The next run sees a dead runner's row and refuses, naming where it stopped.
    let err = driver.up(&db, &migrations).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, Error::Plan(p) if p.drift_kinds() == vec![DriftKind::Failed]),
        "{text}"
    );
    assert!(
        text.contains("failed: no-transaction migrations that failed part-way"),
        "{text}"
    );
    assert!(
        text.contains(
            "\n  1 nt: failed at statement 2 of 3: the runner stopped (killed, crashed or lost \
             its connection) during statement 2 of 3"
        ),
        "{text}"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT state || ' ' || statements_done || ' ' || error \
             FROM public.migrations_history WHERE version = 1"
        ),
        Some(
            "failed 1 the runner stopped (killed, crashed or lost its connection) during \
             statement 2 of 3"
                .into()
        )
    );
    assert_eq!(driver.status(&db, &migrations)[0].status, Status::Failed);
    // It keeps refusing: nothing runs until repair.
    assert!(driver.up(&db, &migrations).unwrap_err().is_drift());
    assert!(!table_exists(&db, "b"));

    let repaired = driver.repair(&db, &migrations, Some(1), false).unwrap();
    assert_eq!(repaired, vec!["1 nt: cleared failed state".to_owned()]);
    assert_eq!(history_rows(&db), 0);

    if !if_not_exists {
        // The file runs again from statement 1, which finds table a there.
        let err = driver.up(&db, &migrations).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                &err,
                Error::Migration {
                    version: 1,
                    statement: Some(migrations_core::Location {
                        number: 1,
                        total: 3,
                        line: 2
                    }),
                    ..
                }
            ),
            "{text}"
        );
        assert!(
            text.starts_with(&format!(
                "up 1 nt failed at statement 1 of 3 ({}:2): relation \"a\" already exists",
                dir.path().join("1_nt.up.sql").display()
            )),
            "{text}"
        );
        driver.repair(&db, &migrations, Some(1), false).unwrap();
        db.connect().batch_execute("DROP TABLE a").unwrap();
    }
    let report = driver.up(&db, &migrations).unwrap();
    assert_eq!(report.ran.len(), 1);
    assert!(report.ran[0].no_transaction);
    assert_eq!(
        column(
            &db,
            "SELECT state || ' ' || statements_done || '/' || statements_total \
             FROM public.migrations_history"
        ),
        vec![Some("applied 3/3".to_owned())]
    );
    assert!(table_exists(&db, "a") && table_exists(&db, "b"));
    assert_eq!(audit_ups(&db), 1);
    assert!(driver.up(&db, &migrations).unwrap().up_to_date_fast);
}

#[test]
fn crash_in_no_transaction_migration_then_repair_sync() {
    crash_in_no_transaction(Driver::Sync, false);
}

#[test]
fn crash_in_no_transaction_migration_then_repair_async() {
    crash_in_no_transaction(Driver::Async, false);
}

#[test]
fn crash_in_rerunnable_no_transaction_migration_then_repair_sync() {
    crash_in_no_transaction(Driver::Sync, true);
}

#[test]
fn crash_in_rerunnable_no_transaction_migration_then_repair_async() {
    crash_in_no_transaction(Driver::Async, true);
}

// ---------------------------------------------------------------------------------------------
// Concurrency.

/// Ten migrations: a table with rows, a concurrent index on it (no-transaction), a slow one so
/// that runners overlap, and assorted DDL.
fn ten() -> Dir {
    Dir::new(&[
        (
            "01_items.up.sql",
            "CREATE TABLE items (id int PRIMARY KEY, owner int NOT NULL, note text);\n\
             INSERT INTO items SELECT g, g % 100, md5(g::text) FROM generate_series(1, 20000) g;\n",
        ),
        (
            "02_owners.up.sql",
            "CREATE TABLE owners (id int PRIMARY KEY, name text NOT NULL);",
        ),
        (
            "03_slow.up.sql",
            "SELECT pg_sleep(0.5);\n\
             ALTER TABLE items ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();\n",
        ),
        (
            "04_items_owner.up.sql",
            "-- migrations:no-transaction\n\
             CREATE INDEX CONCURRENTLY IF NOT EXISTS items_owner ON items (owner);\n",
        ),
        (
            "05_seed_owners.up.sql",
            "INSERT INTO owners SELECT g, 'owner ' || g FROM generate_series(0, 99) g;",
        ),
        (
            "06_fk.up.sql",
            "ALTER TABLE items ADD CONSTRAINT items_owner_fk \
             FOREIGN KEY (owner) REFERENCES owners;",
        ),
        (
            "07_view.up.sql",
            "CREATE VIEW item_counts AS SELECT owner, count(*) AS n FROM items GROUP BY owner;",
        ),
        (
            "08_function.up.sql",
            "CREATE FUNCTION item_total() RETURNS bigint LANGUAGE sql STABLE \
             AS $$ SELECT count(*) FROM items $$;",
        ),
        ("09_mood.up.sql", "CREATE TYPE mood AS ENUM ('ok', 'meh');"),
        (
            "10_owner_mood.up.sql",
            "ALTER TABLE owners ADD COLUMN mood mood NOT NULL DEFAULT 'ok';",
        ),
    ])
}

/// What a child's report file says.
#[derive(Debug)]
struct ChildReport {
    waited: bool,
    fast: bool,
    ran: Vec<i64>,
}

fn read_report(child: &Child) -> ChildReport {
    let text = fs::read_to_string(&child.report).unwrap_or_else(|e| {
        panic!(
            "child {} wrote no report ({e}); output:\n{}",
            child.label,
            child.output()
        )
    });
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in the report of {}: {text}", child.label))
            .to_owned()
    };
    ChildReport {
        waited: field("waited") == "true",
        fast: field("fast") == "true",
        ran: field("ran")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect(),
    }
}

/// Starts one child per driver and lets them all connect. Then, while this test holds the
/// migrations lock itself, opens the gate so they all run `up` at once, waits until every one
/// of them has found the lock taken and is polling for it, and lets go: all of them race for
/// the lock at the same moment, and the winner's run (a `pg_sleep(0.5)` and a concurrent
/// index build among them) overlaps the others' polling. Checks that every child succeeded and
/// each migration was applied exactly once.
fn concurrent_up(drivers: &[Driver]) {
    let db = test_db();
    let dir = ten();
    let migrations = dir.load();
    assert_eq!(migrations.len(), 10);
    let work = tempfile::tempdir().unwrap();
    let gate = work.path().join("gate");
    let spawn = Spawn {
        db: &db,
        migrations: dir.path(),
        work: work.path(),
        gate: Some(&gate),
    };
    let mut children: Vec<Child> = drivers
        .iter()
        .enumerate()
        .map(|(i, d)| spawn.child(&format!("runner{i}-{d:?}"), *d))
        .collect();

    // Everyone connected; the lock taken here; go; everyone waiting; let go.
    for child in &mut children {
        let ready = child.ready.clone();
        child.wait_for_file(&ready, "connected");
    }
    let key = Migrator::new(&migrations).lock_key();
    let mut holder = db.connect();
    let taken: bool = holder
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .unwrap()
        .get(0);
    assert!(taken);
    fs::write(&gate, "").unwrap();
    let go = Instant::now();
    for child in &mut children {
        let waiting = child.waiting.clone();
        child.wait_for_file(&waiting, "waiting for the lock");
    }
    let unlocked: bool = holder
        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
        .unwrap()
        .get(0);
    assert!(unlocked);
    let statuses = wait_all(&mut children, RUN_LIMIT);
    let elapsed = go.elapsed();

    let mut failures = String::new();
    for (child, status) in children.iter().zip(&statuses) {
        if !status.success() {
            failures.push_str(&format!(
                "\n--- {} exited {status} ---\n{}",
                child.label,
                child.output()
            ));
        }
    }
    assert!(failures.is_empty(), "child runners failed:{failures}");

    let reports: Vec<ChildReport> = children.iter().map(read_report).collect();
    for (child, report) in children.iter().zip(&reports) {
        eprintln!("{}: {report:?}", child.label);
    }
    eprintln!(
        "{} runners done in {elapsed:?}: {} waited for the lock, {} found nothing to do without it",
        children.len(),
        reports.iter().filter(|r| r.waited).count(),
        reports.iter().filter(|r| r.fast).count()
    );

    // Each migration ran in exactly one runner, in order.
    let mut ran: Vec<i64> = reports.iter().flat_map(|r| r.ran.clone()).collect();
    ran.sort_unstable();
    let all: Vec<i64> = migrations.iter().map(|m| m.version()).collect();
    assert_eq!(
        ran, all,
        "each migration applied exactly once across runners"
    );
    // The lock is held for a whole run, so one runner applied them all; the others waited,
    // then found nothing to do.
    assert_eq!(
        reports.iter().filter(|r| !r.ran.is_empty()).count(),
        1,
        "{reports:?}"
    );
    assert!(reports.iter().all(|r| r.waited && !r.fast), "{reports:?}");

    // The database agrees.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM public.migrations_history WHERE state = 'applied'"
        ),
        10
    );
    assert_eq!(history_rows(&db), 10);
    assert_eq!(audit_ups(&db), 10);
    assert_eq!(
        scalar(
            &db,
            "SELECT (indisvalid AND indisready)::text FROM pg_index \
             WHERE indexrelid = 'items_owner'::regclass"
        ),
        Some("true".into())
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM pg_index WHERE NOT indisvalid"),
        Some("0".into())
    );
    assert_eq!(scalar(&db, "SELECT item_total()"), Some("20000".into()));
    let report = Driver::Sync.up(&db, &migrations).unwrap();
    assert!(report.up_to_date_fast);
}

#[test]
fn concurrent_runners_sync() {
    concurrent_up(&[Driver::Sync; 8]);
}

#[test]
fn concurrent_runners_async() {
    concurrent_up(&[Driver::Async; 8]);
}

#[test]
fn concurrent_runners_mixed_drivers() {
    let mut drivers = vec![Driver::Sync; 4];
    drivers.extend([Driver::Async; 4]);
    concurrent_up(&drivers);
}
