//! Behind a transaction-pooling PgBouncer a session advisory lock is unsafe: the runner must
//! notice that its server session changed and stop, before it changes anything.
//!
//! Needs the `pgbouncer` binary (Debian package `pgbouncer`; `.ci/run` installs it). The test
//! fails, with that instruction, when it is missing: a skipped safety test would prove nothing.

#![allow(clippy::result_large_err)] // the core's error is returned once per run

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{scalar, table_exists, Dir};
use migrations_core::{Error, Migrator};
use migrations_tests::test_db;

struct Bouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pgbouncer_binary() -> String {
    for candidate in ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"] {
        if Path::new(candidate).exists() {
            return candidate.to_owned();
        }
    }
    panic!("pgbouncer is not installed: apt-get install pgbouncer (the pooler test needs it)");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Starts PgBouncer in transaction mode in front of the test database, with two server
/// connections used in turn, so consecutive transactions of one client land on different
/// server sessions.
fn start_bouncer(db_url: &str, db_name: &str) -> Bouncer {
    let binary = pgbouncer_binary();
    let url = db_url.strip_prefix("postgres://").unwrap();
    let host_port = url.split('@').nth(1).unwrap().split('/').next().unwrap();
    let (host, port) = host_port.rsplit_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let listen = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "[databases]\n{db_name} = host={host} port={port} dbname={db_name} user=postgres\n\n\
         [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {listen}\nauth_type = trust\n\
         auth_file = {dir}/users.txt\npool_mode = transaction\nserver_round_robin = 1\n\
         default_pool_size = 2\nmin_pool_size = 2\n\
         ignore_startup_parameters = extra_float_digits,options,application_name\n\
         unix_socket_dir =\nlogfile = {dir}/pgbouncer.log\n",
        dir = dir.path().display()
    );
    std::fs::write(dir.path().join("pgbouncer.ini"), config).unwrap();
    std::fs::write(dir.path().join("users.txt"), "\"postgres\" \"\"\n").unwrap();
    let ini = dir.path().join("pgbouncer.ini");
    let mut command = if is_root() {
        // PgBouncer refuses to run as root.
        Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &binary]).arg(&ini);
        c
    } else {
        let mut c = Command::new(&binary);
        c.arg(&ini);
        c
    };
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pgbouncer starts");
    let bouncer = Bouncer {
        child,
        port: listen,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", listen)).is_err() {
        assert!(
            Instant::now() < deadline,
            "pgbouncer did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    bouncer
}

#[test]
fn transaction_pooler_is_detected_before_anything_runs() {
    let db = test_db();
    let bouncer = start_bouncer(db.url(), db.name());
    let via_pooler = format!(
        "postgres://postgres@127.0.0.1:{}/{}",
        bouncer.port,
        db.name()
    );

    // Two server sessions, both idle: round robin hands them out in turn.
    let mut a = postgres::Client::connect(&via_pooler, postgres::NoTls).unwrap();
    let mut b = postgres::Client::connect(&via_pooler, postgres::NoTls).unwrap();
    let mut ta = a.transaction().unwrap();
    let mut tb = b.transaction().unwrap();
    let pa: i32 = ta.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let pb: i32 = tb.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    assert_ne!(pa, pb, "the pool holds two server sessions");
    ta.commit().unwrap();
    tb.commit().unwrap();
    drop(b);

    let dir = Dir::new(&[("1_t.up.sql", "CREATE TABLE t (x int);")]);
    let m = dir.load();
    let err = Migrator::new(&m).run(&mut a).unwrap_err();
    assert!(matches!(err, Error::PoolerDetected { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("transaction pooler detected: the server session changed during the run"),
        "{err}"
    );
    assert!(!table_exists(&db, "t"), "nothing ran");
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'migrations_history'"
        ),
        Some("0".into())
    );

    // The same migrations through a direct connection run fine.
    Migrator::new(&m).run(&mut db.connect()).unwrap();
    assert!(table_exists(&db, "t"));
}
