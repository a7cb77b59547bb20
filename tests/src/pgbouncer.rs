//! A real PgBouncer in transaction-pooling mode in front of one test database, for the tests of
//! the runner's pooler check (SPEC 3.2: behind a transaction pooler a session advisory lock is
//! unsafe, so a run whose server session changes must stop).
//!
//! Needs the `pgbouncer` binary (Debian package `pgbouncer`; `.ci/run` installs it). Starting
//! one panics with that instruction when it is missing: a skipped safety test proves nothing.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use crate::cluster::{chown_to, command_as, is_root, postgres_user};
use crate::{own_server, TestDb};

/// How long PgBouncer may take to listen.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A running PgBouncer (pool mode `transaction`) in front of one database of [`own_server`],
/// holding two server sessions that it hands out in turn: two consecutive transactions of one
/// client run in two different server sessions. Stopped when dropped.
pub struct PgBouncer {
    child: Child,
    port: u16,
    database: String,
    dir: tempfile::TempDir,
}

impl PgBouncer {
    /// Starts PgBouncer in front of `db`, which must live on [`own_server`] (make it with
    /// [`TestDb::on_own_server`]): PgBouncer logs in as the trusted superuser `postgres`.
    /// Returns once both server sessions are open. Panics with the reason (and PgBouncer's
    /// log) when it cannot start.
    pub fn start(db: &TestDb) -> PgBouncer {
        let server = own_server();
        assert_eq!(
            db.admin_url(),
            server.admin_url(),
            "PgBouncer needs a database on the harness's own cluster: use TestDb::on_own_server()"
        );
        let binary = binary();
        let dir = tempfile::tempdir().expect("a temporary directory for PgBouncer");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = format!(
            "[databases]\n\
             {db_name} = host=127.0.0.1 port={server_port} dbname={db_name} user=postgres\n\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {port}\n\
             auth_type = trust\nauth_file = {dir}/users.txt\n\
             pool_mode = transaction\n\
             ; idle server sessions are handed out oldest first, so one client's consecutive\n\
             ; transactions alternate between the two\n\
             server_round_robin = 1\ndefault_pool_size = 2\nmin_pool_size = 2\n\
             ignore_startup_parameters = extra_float_digits,options,application_name\n\
             unix_socket_dir =\nlogfile = {dir}/pgbouncer.log\n",
            db_name = db.name(),
            server_port = server.port(),
            dir = dir.path().display()
        );
        fs::write(dir.path().join("pgbouncer.ini"), config).expect("pgbouncer.ini written");
        fs::write(dir.path().join("users.txt"), "\"postgres\" \"\"\n").expect("users.txt");
        let ini = dir.path().join("pgbouncer.ini");
        // PgBouncer refuses to run as root: it runs as `postgres`, like the server. Started
        // directly (not through runuser), so that killing the child stops PgBouncer itself.
        let run_as = if is_root() {
            Some(postgres_user().unwrap_or_else(|e| panic!("{e}")))
        } else {
            None
        };
        chown_to(dir.path(), run_as).unwrap_or_else(|e| panic!("{e}"));
        for file in ["pgbouncer.ini", "users.txt"] {
            chown_to(&dir.path().join(file), run_as).unwrap_or_else(|e| panic!("{e}"));
        }
        let mut command = command_as(&binary, run_as);
        command.arg(&ini);
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let mut bouncer = PgBouncer {
            child,
            port,
            database: db.name().to_owned(),
            dir,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = bouncer.child.try_wait() {
                panic!("pgbouncer exited ({status}); its log:\n{}", bouncer.log());
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "pgbouncer did not listen within {START_LIMIT:?}; its log:\n{}",
                bouncer.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        bouncer.open_both_sessions();
        bouncer
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`: the database through the pooler.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{}",
            self.port, self.database
        )
    }

    /// Two clients in a transaction at once make PgBouncer open its second server session;
    /// both then stay in the pool. Checked: the two transactions ran in different sessions.
    fn open_both_sessions(&self) {
        let connect = || {
            Client::connect(&self.url(), NoTls)
                .unwrap_or_else(|e| panic!("cannot connect through pgbouncer: {e}"))
        };
        let (mut a, mut b) = (connect(), connect());
        let mut ta = a.transaction().expect("BEGIN through pgbouncer");
        let mut tb = b.transaction().expect("BEGIN through pgbouncer");
        let pid = |t: &mut postgres::Transaction<'_>| -> i32 {
            t.query_one("SELECT pg_backend_pid()", &[])
                .expect("pg_backend_pid() through pgbouncer")
                .get(0)
        };
        let (pa, pb) = (pid(&mut ta), pid(&mut tb));
        assert_ne!(pa, pb, "the pool holds two server sessions");
        ta.commit().expect("COMMIT through pgbouncer");
        tb.commit().expect("COMMIT through pgbouncer");
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    /// Stops PgBouncer; its server sessions close with it, and with them any advisory lock
    /// a run left in one of them.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> String {
    for candidate in ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"] {
        if Path::new(candidate).exists() {
            return candidate.to_owned();
        }
    }
    panic!("pgbouncer is not installed: apt-get install pgbouncer (the pooler tests need it)");
}
