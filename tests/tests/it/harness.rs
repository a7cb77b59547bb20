//! Tests of the test harness itself, against a real PostgreSQL.
//!
//! Some tests re-run this test binary in a child process (`std::env::current_exe()`)
//! with one `harness::child_helper_*` test selected and environment variables set; those helpers
//! are `#[ignore]`d and do nothing unless `MIGRATIONS_TESTS_CHILD` is set.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use migrations_tests::{local_server, redact_url, test_db, TestDb};
use postgres::{Client, NoTls};

const CHILD_ENV: &str = "MIGRATIONS_TESTS_CHILD";
const MARKER: &str = "HARNESS-CHILD";

fn database_exists(admin_url: &str, name: &str) -> bool {
    let mut admin = Client::connect(admin_url, NoTls).expect("connect to the admin database");
    let row = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .expect("query pg_database");
    row.get::<_, i64>(0) == 1
}

fn current_database(client: &mut Client) -> String {
    client
        .query_one("SELECT current_database()", &[])
        .expect("SELECT current_database()")
        .get(0)
}

/// Waits up to `timeout` for `cond`; returns whether it became true.
fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port_accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

fn process_exists(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

// ---------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------

/// Re-runs this test binary with only the ignored helper test `helper` (a function of this
/// module) selected.
fn spawn_child(helper: &str, mode: &str, envs: &[(&str, String)], remove_db_url: bool) -> Child {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        test_name(helper).as_str(),
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, mode)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if remove_db_url {
        cmd.env_remove("DATABASE_URL");
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn the test binary as a child")
}

/// A helper's name as libtest knows it in this binary, for `--exact`: this module's path
/// without the crate's name (`harness::child_helper_exit_normally` in the test binary `it`).
/// Derived, not written out, so that moving this file cannot make every child run no test.
fn test_name(helper: &str) -> String {
    migrations_tests::libtest_name(module_path!(), helper)
}

/// Collects the child's stdout and stderr lines on background threads.
fn line_channel(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx2.send(line);
        }
    });
    rx
}

/// Waits for the child's `HARNESS-CHILD key=value ...` line and parses it.
fn wait_for_marker(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
) -> std::collections::HashMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(at) = line.find(MARKER) {
                    return line[at + MARKER.len()..]
                        .split_whitespace()
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                }
                seen.push(line);
            }
            Err(_) => panic!(
                "the child test process printed no {MARKER} line; its output:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// Waits for the child to exit and returns (success, all output).
fn finish_child(
    mut child: Child,
    rx: mpsc::Receiver<String>,
    mut seen: Vec<String>,
) -> (bool, String) {
    let status = child.wait().expect("wait for child");
    // The reader threads end at EOF, closing the channel.
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        seen.push(line);
    }
    (status.success(), seen.join("\n"))
}

fn child_mode() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

fn print_server_marker() {
    let server = local_server().expect("child runs without DATABASE_URL");
    println!(
        "{MARKER} dir={} pid={} port={}",
        server.dir().display(),
        server.pid(),
        server.port()
    );
}

#[test]
#[ignore = "helper: run in a child process by watchdog_cleans_up_after_sigkill"]
fn child_helper_hold_cluster() {
    if child_mode().as_deref() != Some("hold") {
        return;
    }
    let db = test_db();
    db.connect()
        .batch_execute("CREATE TABLE held (id int)")
        .expect("create table");
    print_server_marker();
    // Wait to be killed (bounded, in case the parent is gone).
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
#[ignore = "helper: run in a child process by cluster_is_removed_at_normal_exit"]
fn child_helper_exit_normally() {
    if child_mode().as_deref() != Some("exit") {
        return;
    }
    let db = test_db();
    db.connect()
        .batch_execute("CREATE TABLE t (id int)")
        .expect("create table");
    print_server_marker();
}

#[test]
#[ignore = "helper: run in a child process by database_url_mode_uses_the_given_server"]
fn child_helper_database_url() {
    if child_mode().as_deref() != Some("url") {
        return;
    }
    assert!(
        local_server().is_none(),
        "with DATABASE_URL set, no local cluster may be started"
    );
    let given = std::env::var("DATABASE_URL").expect("DATABASE_URL is set");
    let db = test_db();
    let expected_prefix = std::env::var("EXPECT_URL_PREFIX").expect("EXPECT_URL_PREFIX");
    assert_eq!(
        db.url(),
        format!(
            "{expected_prefix}/{}{}",
            db.name(),
            std::env::var("EXPECT_URL_SUFFIX").unwrap_or_default()
        ),
        "per-test URL built from {}",
        redact_url(&given)
    );
    assert_eq!(
        db.admin_url(),
        std::env::var("EXPECT_ADMIN_URL").expect("EXPECT_ADMIN_URL")
    );
    let mut client = db.connect();
    assert_eq!(current_database(&mut client), db.name());
    client
        .batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
        .expect("use the database");
    assert!(database_exists(db.admin_url(), db.name()));
    println!("{MARKER} name={}", db.name());
}

#[test]
#[ignore = "helper: run in a child process by unreachable_database_url_is_reported_redacted"]
fn child_helper_bad_database_url() {
    if child_mode().as_deref() != Some("bad") {
        return;
    }
    println!("{MARKER} starting=1");
    let _db = test_db();
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn two_databases_are_distinct_and_usable() {
    let a = test_db();
    let b = TestDb::new();
    assert_ne!(a.name(), b.name());
    assert_ne!(a.url(), b.url());
    assert_eq!(a.admin_url(), b.admin_url());

    let mut ca = a.connect();
    let mut cb = b.connect();
    assert_eq!(current_database(&mut ca), a.name());
    assert_eq!(current_database(&mut cb), b.name());

    ca.batch_execute("CREATE TABLE only_in_a (id int); INSERT INTO only_in_a VALUES (1), (2)")
        .expect("create in a");
    let n: i64 = ca
        .query_one("SELECT count(*) FROM only_in_a", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    let in_b: i64 = cb
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'only_in_a'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(in_b, 0, "databases must not share tables");

    // The databases start empty: no user tables.
    let user_tables: i64 = cb
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(user_tables, 0);

    // The URL also parses as a tokio-postgres config, and names the database.
    let config: postgres::Config = a.url().parse().expect("url parses as a config");
    assert_eq!(config.get_dbname(), Some(a.name()));
}

#[test]
fn parallel_threads_each_get_their_own_database() {
    let handles: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let db = test_db();
                let mut c = db.connect();
                c.batch_execute(&format!(
                    "CREATE TABLE t{i} (id int); INSERT INTO t{i} VALUES ({i})"
                ))
                .expect("create table");
                let v: i32 = c
                    .query_one(&format!("SELECT id FROM t{i}"), &[])
                    .unwrap()
                    .get(0);
                assert_eq!(v, i);
                c.batch_execute(&format!("DROP TABLE t{i}"))
                    .expect("drop table");
                (db.name().to_string(), db.admin_url().to_string())
            })
        })
        .collect();
    let results: Vec<(String, String)> = handles
        .into_iter()
        .map(|h| h.join().expect("thread panicked"))
        .collect();
    let names: std::collections::HashSet<&String> = results.iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 8, "names must be unique: {names:?}");
    for (name, admin) in &results {
        assert!(!database_exists(admin, name), "{name} was not dropped");
    }
}

#[test]
fn dropping_removes_the_database_even_with_open_connections() {
    let db = test_db();
    let name = db.name().to_string();
    let admin = db.admin_url().to_string();
    assert!(database_exists(&admin, &name));
    // An open connection must not prevent the drop (WITH (FORCE)).
    let mut open = db.connect();
    open.batch_execute("SELECT 1").unwrap();
    drop(db);
    assert!(!database_exists(&admin, &name));
    assert!(
        open.batch_execute("SELECT 1").is_err(),
        "the forced drop terminates open connections"
    );
}

#[test]
fn a_panicking_test_still_drops_its_database() {
    let seen = std::sync::Mutex::new(None::<(String, String)>);
    let result = std::panic::catch_unwind(|| {
        let db = test_db();
        *seen.lock().unwrap() = Some((db.name().to_string(), db.admin_url().to_string()));
        db.connect()
            .batch_execute("CREATE TABLE t (id int)")
            .unwrap();
        panic!("deliberate failure inside a test");
    });
    assert!(result.is_err());
    let (name, admin) = seen.lock().unwrap().clone().expect("the test ran");
    assert!(!database_exists(&admin, &name), "{name} survived a panic");
}

#[test]
fn works_inside_an_async_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (name, admin) = rt.block_on(async {
        let db = test_db();
        let out = (db.name().to_string(), db.admin_url().to_string());
        drop(db); // dropping inside the runtime must not panic either
        out
    });
    assert!(!database_exists(&admin, &name));
}

#[test]
fn url_for_database_points_at_another_database() {
    let db = test_db();
    // Stay within PostgreSQL's 63-byte identifiers; the name's start is unique.
    let extra = format!("{}_extra", &db.name()[..30]);
    let mut admin = db.connect_admin();
    admin
        .batch_execute(&format!("CREATE DATABASE \"{extra}\""))
        .unwrap();
    let mut c = Client::connect(&db.url_for_database(&extra), NoTls).unwrap();
    assert_eq!(current_database(&mut c), extra);
    drop(c);
    admin
        .batch_execute(&format!("DROP DATABASE \"{extra}\" WITH (FORCE)"))
        .unwrap();
}

fn assert_cluster_gone(dir: &Path, port: u16, pid: u32) {
    assert!(
        eventually(Duration::from_secs(20), || !dir.exists()),
        "cluster directory {} still exists",
        dir.display()
    );
    assert!(
        eventually(Duration::from_secs(20), || !port_accepts(port)),
        "port {port} still accepts connections"
    );
    assert!(
        eventually(Duration::from_secs(20), || !process_exists(pid)),
        "postmaster {pid} still runs"
    );
}

fn parse_marker(info: &std::collections::HashMap<String, String>) -> (PathBuf, u32, u16) {
    (
        PathBuf::from(&info["dir"]),
        info["pid"].parse().expect("pid"),
        info["port"].parse().expect("port"),
    )
}

#[test]
fn watchdog_cleans_up_after_sigkill() {
    // The child runs without DATABASE_URL, so it starts a cluster of its own in every setup.
    let mut child = spawn_child("child_helper_hold_cluster", "hold", &[], true);
    let rx = line_channel(&mut child);
    let mut seen = Vec::new();
    let info = wait_for_marker(&rx, &mut seen);
    let (dir, pid, port) = parse_marker(&info);
    assert!(
        dir.join("data").join("PG_VERSION").is_file(),
        "{}",
        dir.display()
    );
    assert!(port_accepts(port));
    assert!(process_exists(pid));

    child.kill().expect("SIGKILL the child");
    let _ = child.wait();
    assert_cluster_gone(&dir, port, pid);
}

#[test]
fn cluster_is_removed_at_normal_exit() {
    // The child runs without DATABASE_URL, so it starts a cluster of its own in every setup.
    let mut child = spawn_child("child_helper_exit_normally", "exit", &[], true);
    let rx = line_channel(&mut child);
    let mut seen = Vec::new();
    let info = wait_for_marker(&rx, &mut seen);
    let (dir, pid, port) = parse_marker(&info);
    let (ok, output) = finish_child(child, rx, seen);
    assert!(ok, "child failed:\n{output}");
    assert_cluster_gone(&dir, port, pid);
}

#[test]
fn database_url_mode_uses_the_given_server() {
    let db = test_db(); // whatever server this process uses
    let admin = db.admin_url().to_string();
    let (scheme_host, query) = match local_server() {
        // Local cluster: also exercise a password (trust auth ignores it) and query params.
        Some(server) => (
            format!(
                "postgres://postgres:not-a-secret@127.0.0.1:{}",
                server.port()
            ),
            "?connect_timeout=10&application_name=harness".to_string(),
        ),
        None => {
            eprintln!("DATABASE_URL is set: testing the child against it as given");
            let (before_query, query) = match admin.split_once('?') {
                Some((b, q)) => (b.to_string(), format!("?{q}")),
                None => (admin.clone(), String::new()),
            };
            let prefix = before_query
                .rsplit_once('/')
                .map(|(p, _)| p.to_string())
                .expect("admin URL has a database");
            (prefix, query)
        }
    };

    // 1. A URL naming the maintenance database, with query parameters.
    let given = format!("{scheme_host}/postgres{query}");
    let mut child = spawn_child(
        "child_helper_database_url",
        "url",
        &[
            ("DATABASE_URL", given.clone()),
            ("EXPECT_URL_PREFIX", scheme_host.clone()),
            ("EXPECT_URL_SUFFIX", query.clone()),
            ("EXPECT_ADMIN_URL", given.clone()),
        ],
        false,
    );
    let rx = line_channel(&mut child);
    let mut seen = Vec::new();
    let info = wait_for_marker(&rx, &mut seen);
    let (ok, output) = finish_child(child, rx, seen);
    assert!(ok, "child failed:\n{output}");
    let name = &info["name"];
    assert!(
        !database_exists(&admin, name),
        "child's {name} was not dropped"
    );

    // 2. A URL without a database: the admin database defaults to `postgres`.
    if local_server().is_some() {
        let mut child = spawn_child(
            "child_helper_database_url",
            "url",
            &[
                ("DATABASE_URL", scheme_host.clone()),
                ("EXPECT_URL_PREFIX", scheme_host.clone()),
                ("EXPECT_ADMIN_URL", format!("{scheme_host}/postgres")),
            ],
            false,
        );
        let rx = line_channel(&mut child);
        let mut seen = Vec::new();
        let info = wait_for_marker(&rx, &mut seen);
        let (ok, output) = finish_child(child, rx, seen);
        assert!(ok, "child failed:\n{output}");
        assert!(!database_exists(&admin, &info["name"]));
    }
}

#[test]
fn unreachable_database_url_is_reported_redacted() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let url = "postgres://postgres:supersecret@127.0.0.1:1/postgres".to_string();
    let mut child = spawn_child(
        "child_helper_bad_database_url",
        "bad",
        &[("DATABASE_URL", url)],
        false,
    );
    let rx = line_channel(&mut child);
    let mut seen = Vec::new();
    wait_for_marker(&rx, &mut seen);
    let (ok, output) = finish_child(child, rx, seen);
    assert!(!ok, "the child should fail:\n{output}");
    assert!(
        output.contains("postgres://postgres:***@127.0.0.1:1/postgres"),
        "the message names the (redacted) server:\n{output}"
    );
    assert!(
        output.contains("DATABASE_URL"),
        "the message says what to check:\n{output}"
    );
    assert!(
        !output.contains("supersecret"),
        "password leaked:\n{output}"
    );
}

/// The lock-count helper that every "no lock left" check uses sees a lock held by another
/// session (for keys with the high bit set too), and stops seeing it once released.
#[test]
fn advisory_lock_holders_sees_a_held_lock() {
    let db = test_db();
    for key in [42_i64, -7_046_029_254_386_353_131, i64::MAX, i64::MIN] {
        assert_eq!(db.advisory_lock_holders(key), 0, "{key}");
        let mut holder = db.connect();
        holder
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .unwrap();
        assert_eq!(db.advisory_lock_holders(key), 1, "{key}");
        assert_eq!(db.advisory_lock_holders(key ^ 1), 0, "{key}");
        holder
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .unwrap();
        assert_eq!(db.advisory_lock_holders(key), 0, "{key}");
    }
}
