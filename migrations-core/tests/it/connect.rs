//! `migrations_core::connect` against a real PostgreSQL (the `migrations-tests` harness).
//!
//! - Environment variables are only set in child processes: some tests re-run this binary with
//!   the `#[ignore]`d `connect::child_connect` test selected and `PG*` variables set; it does
//!   nothing unless `CONNECT_TEST_CHILD` is set.
//! - Timing and protocol behaviour (a server that starts listening late, one that answers
//!   "the database system is starting up", one that refuses TLS) use small TCP proxies in front
//!   of the real server.
//! - Every test here uses a cluster of the test process's own (`own_server`: the harness's
//!   throwaway cluster, also started when `DATABASE_URL` is set), so none is skipped: its
//!   `pg_hba.conf` gets `scram-sha-256` lines for one role, and TLS is
//!   switched on with a CA and server certificate made by `rcgen`, then the configuration is
//!   reloaded. Other tests of this process are unaffected: other roles keep trust
//!   authentication, and plain connections stay allowed.
//! - Decisions by SQLSTATE, not by the server's words: a cluster of the test's own whose
//!   `lc_messages` is German (`de_DE.UTF-8`; the test fails, saying how to install it, when the
//!   locale is missing), started as a standby that answers 57P03, then promoted.

#![cfg(feature = "connect")]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use migrations_core::connect::{
    connect, connect_async, describe_target, redact, ConnectError, ConnectErrorKind,
    ConnectOptions, Host, SslMode, Target,
};
use migrations_core::roundtrip;
use migrations_tests::{own_server, Cluster, ClusterBuilder, LocalServer, TestDb, TestTls};

const CHILD_ENV: &str = "CONNECT_TEST_CHILD";
const PW_ROLE: &str = "mt_connect_pw";
const PW: &str = "s3cret-pw";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn opts(url: &str) -> ConnectOptions {
    ConnectOptions {
        url: Some(url.to_string()),
        ..ConnectOptions::default()
    }
}

fn opts_timeout(url: &str, timeout: Duration) -> ConnectOptions {
    ConnectOptions {
        url: Some(url.to_string()),
        connect_timeout: timeout,
        ..ConnectOptions::default()
    }
}

fn one_string(client: &mut postgres::Client, sql: &str) -> String {
    client.query_one(sql, &[]).unwrap().get(0)
}

fn ssl_in_use(client: &mut postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
}

/// The pieces of a harness URL `postgres://user[:password]@host:port/db[?params]`.
struct UrlParts {
    userinfo: String,
    rest: String,
}

fn url_parts(url: &str) -> UrlParts {
    let body = url.split_once("://").expect("a URL").1;
    let (userinfo, after) = body.rsplit_once('@').unwrap_or(("", body));
    let rest = after.find(['/', '?']).map_or("", |i| &after[i..]);
    UrlParts {
        userinfo: userinfo.to_string(),
        rest: rest.to_string(),
    }
}

/// `url` pointed at another host and port (user, password, database and parameters kept).
fn url_at(url: &str, host: &str, port: u16) -> String {
    let parts = url_parts(url);
    let at = if parts.userinfo.is_empty() { "" } else { "@" };
    format!(
        "postgres://{}{at}{host}:{port}{}",
        parts.userinfo, parts.rest
    )
}

/// `url` with a query parameter added.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// The password in a URL's user info, percent-decoded.
fn url_password(url: &str) -> Option<String> {
    let userinfo = url_parts(url).userinfo;
    let (_, pw) = userinfo.split_once(':')?;
    let mut out = Vec::new();
    let b = pw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = pw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Some(String::from_utf8(out).unwrap())
}

/// The resolved TCP address of a database on [`own_server`] (whose URLs are TCP ones).
fn server_addr(db: &TestDb) -> SocketAddr {
    let target = Target::resolve(&opts(db.url())).unwrap();
    let endpoint = &target.endpoints()[0];
    match endpoint.host() {
        Host::Tcp(host) => (host.as_str(), endpoint.port())
            .to_socket_addrs()
            .unwrap()
            .find(SocketAddr::is_ipv4)
            .expect("an IPv4 address"),
        other => panic!("own_server's URLs are TCP URLs, not {other:?}"),
    }
}

/// Runs `f` on a thread of its own: the set-ups use the blocking client, also when the first
/// test to need them is async.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|s| s.spawn(f).join().unwrap())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `unwrap_err` for results whose `Ok` has no `Debug` (the clients).
trait Failure {
    fn failure(self) -> ConnectError;
}

impl<T> Failure for Result<T, ConnectError> {
    fn failure(self) -> ConnectError {
        match self {
            Ok(_) => panic!("connected, but an error was expected"),
            Err(e) => e,
        }
    }
}

fn assert_no_secret(e: &ConnectError, secret: &str) {
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(secret), "the password shows: {shown}");
}

// ---------------------------------------------------------------------------------------
// Child processes (for environment variables)
// ---------------------------------------------------------------------------------------

/// Runs `child_connect` in a child process with exactly these `PG*`-style variables (the
/// parent's `PG*` and `DATABASE_URL` are removed), and asserts it passed.
fn run_child(vars: &[(&str, String)]) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        crate::common::test_name(module_path!(), "child_connect").as_str(),
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (key, _) in std::env::vars() {
        if key.starts_with("PG") || key == "DATABASE_URL" || key.starts_with("CHILD_") {
            cmd.env_remove(key);
        }
    }
    cmd.env(CHILD_ENV, "1");
    for (key, value) in vars {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed ({vars:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        vars = vars
            .iter()
            .map(|(k, v)| if k.contains("PASSWORD") {
                (*k, "***")
            } else {
                (*k, v.as_str())
            })
            .collect::<Vec<_>>()
    );
}

/// Child side: connects with `CHILD_URL` (or none: DATABASE_URL/PG* only) and checks the outcome
/// against `CHILD_EXPECT` (`ok` or the `ConnectErrorKind` in `{:?}` form), `CHILD_EXPECT_DB`,
/// `CHILD_EXPECT_APP` and `CHILD_EXPECT_MESSAGE` (a substring); an error must not show
/// `PGPASSWORD`, the test role's password or `CHILD_SECRET`.
#[test]
#[ignore = "run by other tests in a child process"]
fn child_connect() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let var = |name: &str| std::env::var(name).ok();
    let options = ConnectOptions {
        url: var("CHILD_URL"),
        connect_timeout: Duration::from_secs(5),
        application_name: Some("fallback-app".into()),
        database: None,
    };
    let expect = var("CHILD_EXPECT").unwrap_or_else(|| "ok".into());
    match connect(&options) {
        Ok(mut client) => {
            assert_eq!(expect, "ok", "connected, but expected {expect}");
            if let Some(db) = var("CHILD_EXPECT_DB") {
                assert_eq!(
                    one_string(&mut client, "SELECT current_database()::text"),
                    db
                );
            }
            if let Some(app) = var("CHILD_EXPECT_APP") {
                assert_eq!(
                    one_string(&mut client, "SELECT current_setting('application_name')"),
                    app
                );
            }
            if let Some(user) = var("CHILD_EXPECT_USER") {
                assert_eq!(one_string(&mut client, "SELECT current_user::text"), user);
            }
        }
        Err(e) => {
            assert_eq!(format!("{:?}", e.kind()), expect, "{e}");
            if let Some(message) = var("CHILD_EXPECT_MESSAGE") {
                assert!(e.to_string().contains(&message), "{e}");
            }
            for secret in [var("PGPASSWORD"), Some(PW.to_string()), var("CHILD_SECRET")]
                .into_iter()
                .flatten()
            {
                assert_no_secret(&e, &secret);
            }
        }
    }
}

/// `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE` (and `PGPASSWORD` when the harness URL has one)
/// for the test database.
fn pg_vars(db: &TestDb) -> Vec<(&'static str, String)> {
    let target = Target::resolve(&opts(db.url())).unwrap();
    let endpoint = &target.endpoints()[0];
    let host = match endpoint.host() {
        Host::Tcp(h) => h.clone(),
        Host::Unix(dir) => dir.display().to_string(),
        other => panic!("a new kind of host to pass as PGHOST: {other:?}"),
    };
    let mut vars = vec![
        ("PGHOST", host),
        ("PGPORT", endpoint.port().to_string()),
        ("PGUSER", target.user().to_string()),
        ("PGDATABASE", target.database().to_string()),
        ("PGPASSFILE", "/nonexistent/pgpass".to_string()),
    ];
    if let Some(pw) = url_password(db.url()) {
        vars.push(("PGPASSWORD", pw));
    }
    vars
}

// ---------------------------------------------------------------------------------------
// Tiny TCP proxies in front of the real server
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Behaviour {
    /// Forward everything.
    Forward,
    /// Answer `SSLRequest` with `N` (no TLS here), then forward.
    RefuseTls,
    /// Answer every startup with SQLSTATE 57P03 "the database system is starting up".
    StartingUp,
}

struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on 127.0.0.1 after `listen_after`; behaves as `first` for `first_for`, then as
    /// `then`.
    fn start(
        upstream: SocketAddr,
        listen_after: Duration,
        first: Behaviour,
        first_for: Duration,
        then: Behaviour,
    ) -> Proxy {
        let port = free_port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        thread::spawn(move || {
            thread::sleep(listen_after);
            let listener = TcpListener::bind(("127.0.0.1", port)).expect("proxy bind");
            listener.set_nonblocking(true).unwrap();
            let started = Instant::now();
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let behaviour = if started.elapsed() < first_for {
                            first
                        } else {
                            then
                        };
                        thread::spawn(move || {
                            let _ = serve(client, upstream, behaviour);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => return,
                }
            }
        });
        Proxy { port, stop }
    }

    fn forward(upstream: SocketAddr, behaviour: Behaviour) -> Proxy {
        Proxy::start(
            upstream,
            Duration::ZERO,
            behaviour,
            Duration::MAX,
            behaviour,
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one untyped startup-phase packet (length-prefixed).
fn read_packet(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if !(8..=10_000).contains(&len) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad packet"));
    }
    let mut packet = vec![0u8; len];
    packet[..4].copy_from_slice(&(len as u32).to_be_bytes());
    stream.read_exact(&mut packet[4..])?;
    Ok(packet)
}

/// `SSLRequest` or `GSSENCRequest`.
fn is_encryption_request(packet: &[u8]) -> bool {
    packet.len() == 8
        && matches!(
            &packet[4..8],
            [0x04, 0xd2, 0x16, 0x2f] | [0x04, 0xd2, 0x16, 0x30]
        )
}

fn serve(mut client: TcpStream, upstream: SocketAddr, behaviour: Behaviour) -> io::Result<()> {
    match behaviour {
        Behaviour::Forward => pipe(client, TcpStream::connect(upstream)?),
        Behaviour::RefuseTls => {
            let mut packet = read_packet(&mut client)?;
            while is_encryption_request(&packet) {
                client.write_all(b"N")?;
                packet = read_packet(&mut client)?;
            }
            let mut server = TcpStream::connect(upstream)?;
            server.write_all(&packet)?;
            pipe(client, server)
        }
        Behaviour::StartingUp => {
            let mut packet = read_packet(&mut client)?;
            while is_encryption_request(&packet) {
                client.write_all(b"N")?;
                packet = read_packet(&mut client)?;
            }
            let mut fields = Vec::new();
            for (tag, value) in [
                (b'S', "FATAL"),
                (b'V', "FATAL"),
                (b'C', "57P03"),
                (b'M', "the database system is starting up"),
            ] {
                fields.push(tag);
                fields.extend_from_slice(value.as_bytes());
                fields.push(0);
            }
            fields.push(0);
            let mut message = vec![b'E'];
            message.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
            message.extend_from_slice(&fields);
            client.write_all(&message)?;
            client.shutdown(Shutdown::Both)
        }
    }
}

fn pipe(client: TcpStream, server: TcpStream) -> io::Result<()> {
    let (mut client_r, mut server_w) = (client.try_clone()?, server.try_clone()?);
    let up = thread::spawn(move || {
        let _ = io::copy(&mut client_r, &mut server_w);
        let _ = server_w.shutdown(Shutdown::Write);
    });
    let (mut server_r, mut client_w) = (server, client);
    let _ = io::copy(&mut server_r, &mut client_w);
    let _ = client_w.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Connecting
// ---------------------------------------------------------------------------------------

#[test]
fn connects_with_a_url() {
    let db = TestDb::on_own_server();
    let mut client = connect(&opts(db.url())).unwrap();
    assert_eq!(
        one_string(&mut client, "SELECT current_database()::text"),
        db.name()
    );
    // A timeout too large for the clock is no problem.
    let options = ConnectOptions {
        connect_timeout: Duration::MAX,
        ..opts(db.url())
    };
    connect(&options).unwrap();
    // user@host:port/database, exactly; with a password in the URL, still without it.
    let described = describe_target(&opts(db.url())).unwrap();
    let expected = format!("postgres@127.0.0.1:{}/{}", own_server().port(), db.name());
    assert_eq!(described, expected);
    let with_password = db
        .url()
        .replacen("postgres@", "postgres:hunter2-in-url@", 1);
    assert_ne!(with_password, db.url());
    assert_eq!(describe_target(&opts(&with_password)).unwrap(), expected);
}

#[tokio::test]
async fn connects_async_with_a_url() {
    let db = TestDb::on_own_server();
    let client = connect_async(&opts(db.url())).await.unwrap();
    let row = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), db.name());
}

#[test]
fn sends_the_application_name() {
    let db = TestDb::on_own_server();
    let options = ConnectOptions {
        application_name: Some("migrations-test".into()),
        ..opts(db.url())
    };
    let mut client = connect(&options).unwrap();
    assert_eq!(
        one_string(&mut client, "SELECT current_setting('application_name')"),
        "migrations-test"
    );
    // The URL's own application_name wins over the program's fallback.
    let options = ConnectOptions {
        application_name: Some("migrations-test".into()),
        ..opts(&with_param(db.url(), "application_name=from-url"))
    };
    let mut client = connect(&options).unwrap();
    assert_eq!(
        one_string(&mut client, "SELECT current_setting('application_name')"),
        "from-url"
    );
}

#[tokio::test]
async fn the_blocking_connect_refuses_to_run_inside_a_runtime() {
    let e = connect(&opts("postgres://u@127.0.0.1:1/db")).failure();
    assert_eq!(e.kind(), ConnectErrorKind::Runtime);
    assert!(e.to_string().contains("connect_async"), "{e}");
}

#[test]
fn connects_with_pg_variables_only() {
    let db = TestDb::on_own_server();
    let mut vars = pg_vars(&db);
    vars.push(("PGAPPNAME", "from-pgappname".into()));
    vars.push(("CHILD_EXPECT_DB", db.name().into()));
    vars.push(("CHILD_EXPECT_APP", "from-pgappname".into()));
    run_child(&vars);

    // Without PGAPPNAME, the program's fallback name is used.
    let mut vars = pg_vars(&db);
    vars.push(("CHILD_EXPECT_APP", "fallback-app".into()));
    run_child(&vars);
}

#[test]
fn the_environment_fills_what_the_url_leaves_out() {
    let db = TestDb::on_own_server();
    let target = Target::resolve(&opts(db.url())).unwrap();
    // The URL names only the database; host, port and user come from PG*.
    let mut vars = pg_vars(&db);
    vars.retain(|(k, _)| *k != "PGDATABASE");
    vars.push(("CHILD_URL", format!("postgres:///{}", db.name())));
    vars.push(("CHILD_EXPECT_DB", db.name().into()));
    vars.push(("CHILD_EXPECT_USER", target.user().into()));
    run_child(&vars);
    // And DATABASE_URL alone works too.
    run_child(&[
        ("DATABASE_URL", db.url().to_string()),
        ("CHILD_EXPECT_DB", db.name().to_string()),
    ]);
}

#[test]
fn no_url_and_no_variables_is_explained() {
    run_child(&[
        ("CHILD_EXPECT", "NoTarget".into()),
        (
            "CHILD_EXPECT_MESSAGE",
            "no database URL: pass --database-url, set DATABASE_URL or the PG* variables".into(),
        ),
    ]);
}

#[test]
fn connects_over_a_unix_socket() {
    let server = own_server();
    let socket = server.dir().join(format!(".s.PGSQL.{}", server.port()));
    if !socket.exists() {
        eprintln!(
            "skipped: the harness put no socket in {}",
            server.dir().display()
        );
        return;
    }
    let db = TestDb::on_own_server();
    for mode in ["prefer", "require", "disable"] {
        // TLS is never used over a Unix socket (as in libpq), so even `require` connects.
        let url = format!(
            "postgres://postgres@/{}?host={}&port={}&sslmode={mode}",
            db.name(),
            server.dir().display(),
            server.port()
        );
        let mut client = connect(&opts(&url)).unwrap_or_else(|e| panic!("{mode}: {e}"));
        let local: bool = client
            .query_one("SELECT inet_server_addr() IS NULL", &[])
            .unwrap()
            .get(0);
        assert!(local, "{mode}: not a Unix-socket connection");
    }
    // No such socket: retried as "not up yet", then a clear message.
    let url = format!(
        "postgres://postgres@/db?host={}&port=1",
        server.dir().display()
    );
    let e = connect(&opts_timeout(&url, Duration::from_millis(300))).failure();
    assert_eq!(e.kind(), ConnectErrorKind::Unreachable);
    assert!(
        e.to_string()
            .contains(".s.PGSQL.1 (no such socket) after 300ms"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Connection strings as libpq writes them (parsed by tokio_postgres::Config): key=value pairs,
// host lists, IPv6 literals, Unix socket directories, percent-encoding, connect_timeout
// ---------------------------------------------------------------------------------------

fn current(client: &mut postgres::Client) -> (String, String, String) {
    let row = client
        .query_one(
            "SELECT current_database()::text, current_user::text, \
                    current_setting('application_name')",
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[test]
fn key_value_connection_strings() {
    let server = own_server();
    let db = TestDb::on_own_server();
    let port = server.port();
    let name = db.name();
    // Spaces around `=`, a quoted value with a space, an escaped quote.
    let kv = format!(
        "host=127.0.0.1 port = {port} user=postgres dbname='{name}' \
         application_name='kv app \\'x\\''"
    );
    let mut client = connect(&opts(&kv)).unwrap();
    assert_eq!(
        current(&mut client),
        (name.to_string(), "postgres".into(), "kv app 'x'".into())
    );
    assert_eq!(
        describe_target(&opts(&kv)).unwrap(),
        format!("postgres@127.0.0.1:{port}/{name}")
    );
    // A password, and what tokio_postgres does not know (verify-full, sslrootcert), in the same
    // syntax.
    let (_, tls) = tls_server();
    password_role();
    let kv = format!(
        "host=localhost port={port} user={PW_ROLE} password='{PW}' dbname=postgres \
         sslmode=verify-full sslrootcert='{}'",
        tls.ca.display()
    );
    let mut client = connect(&opts(&kv)).unwrap();
    assert!(ssl_in_use(&mut client));
    assert_eq!(current(&mut client).1, PW_ROLE);
    let e = connect(&opts(&kv.replace(PW, "wrong-kv-pw"))).failure();
    assert_eq!(e.kind(), ConnectErrorKind::Authentication);
    assert_no_secret(&e, "wrong-kv-pw");
    let shown = format!("{:?}", opts(&kv));
    assert!(
        shown.contains("password=***") && !shown.contains(PW),
        "{shown}"
    );
}

#[tokio::test]
async fn key_value_connection_strings_async() {
    let db = TestDb::on_own_server();
    let kv = format!(
        "host=127.0.0.1 port={} user=postgres dbname={}",
        own_server().port(),
        db.name()
    );
    let client = connect_async(&opts(&kv)).await.unwrap();
    let row = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), db.name());
}

#[test]
fn host_lists_are_tried_in_turn() {
    let port = own_server().port();
    let db = TestDb::on_own_server();
    let name = db.name();
    // Nothing listens on port 1: the next server of the list is tried.
    for conn in [
        format!("postgres://postgres@127.0.0.1:1,127.0.0.1:{port}/{name}"),
        format!("postgres:///{name}?host=127.0.0.1,127.0.0.1&port=1,{port}&user=postgres"),
        format!("host=127.0.0.1,localhost port=1,{port} user=postgres dbname={name}"),
    ] {
        let mut client =
            connect(&opts_timeout(&conn, Duration::ZERO)).unwrap_or_else(|e| panic!("{conn}: {e}"));
        assert_eq!(current(&mut client).0, name, "{conn}");
    }
    assert_eq!(
        describe_target(&opts(&format!(
            "postgres://postgres@127.0.0.1:1,127.0.0.1:{port}/{name}"
        )))
        .unwrap(),
        format!("postgres@127.0.0.1:1,127.0.0.1:{port}/{name}")
    );
    // None answers: each is named, with its reason.
    let e = connect(&opts_timeout(
        "host=127.0.0.1,127.0.0.1 port=1,2 user=u dbname=d",
        Duration::ZERO,
    ))
    .failure();
    assert_eq!(e.kind(), ConnectErrorKind::Unreachable);
    assert_eq!(
        e.to_string(),
        "could not connect to 127.0.0.1:1 (connection refused), 127.0.0.1:2 (connection \
         refused): is the server running?"
    );
}

/// A listener on the IPv6 loopback address forwarding to the server (which listens on
/// 127.0.0.1 only), for the rest of the process.
fn ipv6_forwarder(upstream: SocketAddr) -> u16 {
    let listener = TcpListener::bind("[::1]:0")
        .expect("this test needs the IPv6 loopback address ::1 (enable IPv6 on `lo`)");
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            thread::spawn(move || serve(client, upstream, Behaviour::Forward));
        }
    });
    port
}

#[test]
fn ipv6_literal_hosts() {
    let db = TestDb::on_own_server();
    let port = ipv6_forwarder(server_addr(&db));
    let name = db.name();
    for conn in [
        format!("postgres://postgres@[::1]:{port}/{name}"),
        format!("postgres://postgres@%5B::1%5D:{port}/{name}")
            .replace("%5B", "[")
            .replace("%5D", "]"),
        format!("postgres:///{name}?host=::1&port={port}&user=postgres"),
        format!("host=::1 port={port} user=postgres dbname={name}"),
    ] {
        let mut client =
            connect(&opts_timeout(&conn, Duration::ZERO)).unwrap_or_else(|e| panic!("{conn}: {e}"));
        assert_eq!(current(&mut client).0, name, "{conn}");
        assert_eq!(
            describe_target(&opts(&conn)).unwrap(),
            format!("postgres@[::1]:{port}/{name}")
        );
    }
}

#[test]
fn unix_socket_directories() {
    let server = own_server();
    let dir = server.dir().display().to_string();
    assert!(
        server
            .dir()
            .join(format!(".s.PGSQL.{}", server.port()))
            .exists(),
        "the harness puts the server's socket in {dir}"
    );
    let db = TestDb::on_own_server();
    let name = db.name();
    let encoded: String = dir.replace('/', "%2F");
    for conn in [
        format!(
            "host={dir} port={} user=postgres dbname={name}",
            server.port()
        ),
        format!(
            "host='{dir}' port={} user=postgres dbname={name} sslmode=require",
            server.port()
        ),
        // The directory percent-encoded in the URL's host.
        format!("postgres://postgres@{encoded}:{}/{name}", server.port()),
    ] {
        let mut client = connect(&opts(&conn)).unwrap_or_else(|e| panic!("{conn}: {e}"));
        let local: bool = client
            .query_one("SELECT inet_server_addr() IS NULL", &[])
            .unwrap()
            .get(0);
        assert!(local, "{conn}: not a Unix-socket connection");
        assert_eq!(
            describe_target(&opts(&conn)).unwrap(),
            format!("postgres@{dir}:{}/{name}", server.port())
        );
    }
}

#[test]
fn percent_encoded_urls_are_decoded() {
    let db = TestDb::on_own_server();
    let addr = server_addr(&db);
    let every_byte: String = db.name().bytes().map(|b| format!("%{b:02X}")).collect();
    let url = format!(
        "postgres://post%67res@127.0.0.1:{}/{every_byte}?application_name=a%20b%26c%3Dd\
         &options=-c%20search_path%3Dmt_pct",
        addr.port()
    );
    let mut client = connect(&opts(&url)).unwrap();
    assert_eq!(
        current(&mut client),
        (db.name().to_string(), "postgres".into(), "a b&c=d".into())
    );
    assert_eq!(one_string(&mut client, "SHOW search_path"), "mt_pct");
    // An encoded password (`-` as %2D) authenticates.
    let server = password_role();
    let encoded = PW.replace('-', "%2D");
    assert_ne!(encoded, PW);
    connect(&opts(&pw_url(server, Some(&encoded)))).unwrap();
}

/// A listener that accepts connections and never says a word, for the rest of the process.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for client in listener.incoming().flatten() {
            held.push(client);
        }
    });
    port
}

#[tokio::test]
async fn connect_timeout_bounds_each_attempt() {
    let port = silent_server();
    // Each attempt ends after connect_timeout (2s); the wait goes on to the options' 3s, and the
    // attempt that started before then ends after 2s more.
    for conn in [
        format!("postgres://u@127.0.0.1:{port}/db?connect_timeout=2"),
        format!("host=127.0.0.1 port={port} user=u dbname=db connect_timeout=2"),
    ] {
        let started = Instant::now();
        let e = connect_async(&opts_timeout(&conn, Duration::from_secs(3)))
            .await
            .failure();
        let elapsed = started.elapsed();
        assert_eq!(e.kind(), ConnectErrorKind::Unreachable);
        assert_eq!(
            e.to_string(),
            format!(
                "could not connect to 127.0.0.1:{port} (no answer within 2s) after 3s: is the \
                 server running?"
            )
        );
        assert!(
            elapsed >= Duration::from_millis(3900) && elapsed < Duration::from_secs(7),
            "{elapsed:?}"
        );
    }
    // Without it, one attempt may take the whole wait.
    let started = Instant::now();
    let e = connect_async(&opts_timeout(
        &format!("postgres://u@127.0.0.1:{port}/db"),
        Duration::from_secs(3),
    ))
    .await
    .failure();
    assert!(
        e.to_string().contains("(no answer within 3s) after 3s"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(6));
}

// ---------------------------------------------------------------------------------------
// Failing clearly, at once when waiting cannot help, and never showing the password
// ---------------------------------------------------------------------------------------

#[test]
fn a_closed_port_fails_after_the_timeout() {
    let url = "postgres://u:s3cret-in-url@127.0.0.1:1/db";
    let started = Instant::now();
    let e = connect(&opts_timeout(url, Duration::from_secs(1))).failure();
    let elapsed = started.elapsed();
    assert_eq!(e.kind(), ConnectErrorKind::Unreachable);
    assert_eq!(
        e.to_string(),
        "could not connect to 127.0.0.1:1 (connection refused) after 1s: is the server running?"
    );
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert_no_secret(&e, "s3cret-in-url");

    // A zero timeout makes one attempt.
    let started = Instant::now();
    let e = connect(&opts_timeout(url, Duration::ZERO)).failure();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(
        e.to_string(),
        "could not connect to 127.0.0.1:1 (connection refused): is the server running?"
    );
}

#[tokio::test]
async fn a_closed_port_fails_after_the_timeout_async() {
    let url = "postgres://u:s3cret-in-url@127.0.0.1:1/db";
    let started = Instant::now();
    let e = connect_async(&opts_timeout(url, Duration::from_secs(1)))
        .await
        .failure();
    let elapsed = started.elapsed();
    assert_eq!(
        e.to_string(),
        "could not connect to 127.0.0.1:1 (connection refused) after 1s: is the server running?"
    );
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    assert_no_secret(&e, "s3cret-in-url");
}

#[test]
fn a_missing_database_fails_at_once() {
    let db = TestDb::on_own_server();
    let target = Target::resolve(&opts(db.url())).unwrap();
    let endpoint = &target.endpoints()[0];
    let Host::Tcp(host) = endpoint.host() else {
        panic!("own_server's URLs are TCP URLs");
    };
    let password = url_password(db.url()).unwrap_or_else(|| "s3cret-in-url".to_string());
    let url = format!(
        "postgres://{}:{}@{host}:{}/mt_no_such_database",
        target.user(),
        password,
        endpoint.port()
    );
    let started = Instant::now();
    let e = connect(&opts_timeout(&url, Duration::from_secs(10))).failure();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e.kind(), ConnectErrorKind::DatabaseNotFound);
    assert_eq!(e.sqlstate(), Some("3D000"));
    assert!(
        e.to_string()
            .starts_with("database \"mt_no_such_database\" does not exist at "),
        "{e}"
    );
    assert!(e.to_string().contains("check the database name"), "{e}");
    assert_no_secret(&e, &password);
}

#[test]
fn an_unknown_host_fails_at_once() {
    let started = Instant::now();
    let e = connect(&opts_timeout(
        "postgres://u:s3cret-in-url@no-such-host.invalid/db",
        Duration::from_secs(10),
    ))
    .failure();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(e.kind(), ConnectErrorKind::UnknownHost, "{e}");
    assert!(e.to_string().contains("no-such-host.invalid"), "{e}");
    assert_no_secret(&e, "s3cret-in-url");
}

#[test]
fn an_invalid_url_is_explained_without_the_password() {
    let e = connect(&opts("postgres://u:s3cret-in-url@host:port/db")).failure();
    assert_eq!(e.kind(), ConnectErrorKind::InvalidConfig);
    assert_eq!(
        e.to_string(),
        "invalid database URL: invalid value for option `port` (percent-encode @ : / ? # % in \
         the user name and password)"
    );
    assert_no_secret(&e, "s3cret-in-url");
    let e = connect(&opts("postgres://u:s3cret-in-url@host/db?sslmode=verify")).failure();
    assert!(e.to_string().contains("verify-full"), "{e}");
    assert_no_secret(&e, "s3cret-in-url");
}

// ---------------------------------------------------------------------------------------
// Waiting for a server that is not up yet
// ---------------------------------------------------------------------------------------

#[test]
fn waits_for_a_server_that_starts_listening() {
    let db = TestDb::on_own_server();
    let upstream = server_addr(&db);
    let proxy = Proxy::start(
        upstream,
        Duration::from_secs(1),
        Behaviour::Forward,
        Duration::ZERO,
        Behaviour::Forward,
    );
    let url = url_at(db.url(), "127.0.0.1", proxy.port);
    let started = Instant::now();
    let mut client = connect(&opts_timeout(&url, Duration::from_secs(10))).unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(
        one_string(&mut client, "SELECT current_database()::text"),
        db.name()
    );
}

#[tokio::test]
async fn waits_for_a_server_that_starts_listening_async() {
    let db = TestDb::on_own_server();
    let upstream = server_addr(&db);
    let proxy = Proxy::start(
        upstream,
        Duration::from_secs(1),
        Behaviour::Forward,
        Duration::ZERO,
        Behaviour::Forward,
    );
    let url = url_at(db.url(), "127.0.0.1", proxy.port);
    let started = Instant::now();
    let client = connect_async(&opts_timeout(&url, Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    let row = client.query_one("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
}

#[test]
fn waits_while_the_database_system_is_starting_up() {
    let db = TestDb::on_own_server();
    let upstream = server_addr(&db);
    // 57P03 for a second, then the real server.
    let proxy = Proxy::start(
        upstream,
        Duration::ZERO,
        Behaviour::StartingUp,
        Duration::from_secs(1),
        Behaviour::Forward,
    );
    let url = url_at(db.url(), "127.0.0.1", proxy.port);
    let started = Instant::now();
    let mut client = connect(&opts_timeout(&url, Duration::from_secs(10))).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        one_string(&mut client, "SELECT current_database()::text"),
        db.name()
    );

    // Starting up for ever: give up after the timeout, saying so.
    let proxy = Proxy::forward(upstream, Behaviour::StartingUp);
    let url = url_at(db.url(), "127.0.0.1", proxy.port);
    let started = Instant::now();
    let e = connect(&opts_timeout(&url, Duration::from_millis(700))).failure();
    assert!(started.elapsed() >= Duration::from_millis(650));
    assert_eq!(e.kind(), ConnectErrorKind::Unreachable);
    assert_eq!(
        e.to_string(),
        format!(
            "could not connect to 127.0.0.1:{} (the database system is starting up) after \
             700ms: the server is still starting: wait longer (a larger connect timeout)",
            proxy.port
        )
    );
}

// ---------------------------------------------------------------------------------------
// Passwords (the harness cluster with scram-sha-256 for one role)
// ---------------------------------------------------------------------------------------

/// Gives `PW_ROLE` a password and makes the server ask for it (scram-sha-256), once per
/// process.
fn password_role() -> &'static LocalServer {
    static READY: OnceLock<()> = OnceLock::new();
    let server = own_server();
    READY.get_or_init(|| {
        off_runtime(|| {
            let mut admin = postgres::Client::connect(server.admin_url(), postgres::NoTls).unwrap();
            admin
                .batch_execute(&format!(
                    "SET password_encryption = 'scram-sha-256';
                 DO $$ BEGIN
                   IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PW_ROLE}') THEN
                     CREATE ROLE {PW_ROLE} LOGIN;
                   END IF;
                 END $$;
                 ALTER ROLE {PW_ROLE} PASSWORD '{PW}';"
                ))
                .unwrap();
            let hba = server.data_dir().join("pg_hba.conf");
            let old = std::fs::read_to_string(&hba).unwrap();
            let new = format!(
                "host all {PW_ROLE} 127.0.0.1/32 scram-sha-256\n\
             host all {PW_ROLE} ::1/128 scram-sha-256\n\
             local all {PW_ROLE} scram-sha-256\n{old}"
            );
            server.replace_file(&hba, new.as_bytes(), 0o600);
            admin.batch_execute("SELECT pg_reload_conf()").unwrap();
            // Wait until the reload took effect: a connection without password is refused.
            let url = format!("postgres://{PW_ROLE}@127.0.0.1:{}/postgres", server.port());
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match connect(&opts_timeout(&url, Duration::ZERO)) {
                    Err(e) if e.kind() == ConnectErrorKind::PasswordRequired => break,
                    _ if Instant::now() > deadline => {
                        panic!("pg_hba.conf reload did not take effect")
                    }
                    _ => thread::sleep(Duration::from_millis(50)),
                }
            }
        })
    });
    server
}

fn pw_url(server: &LocalServer, password: Option<&str>) -> String {
    match password {
        Some(pw) => format!(
            "postgres://{PW_ROLE}:{pw}@127.0.0.1:{}/postgres",
            server.port()
        ),
        None => format!("postgres://{PW_ROLE}@127.0.0.1:{}/postgres", server.port()),
    }
}

#[test]
fn a_password_in_the_url_authenticates() {
    let server = password_role();
    let mut client = connect(&opts(&pw_url(server, Some(PW)))).unwrap();
    assert_eq!(
        one_string(&mut client, "SELECT current_user::text"),
        PW_ROLE
    );
    // Percent-encoded the same.
    let encoded = PW.replace('-', "%2D");
    connect(&opts(&pw_url(server, Some(&encoded)))).unwrap();
}

#[test]
fn a_wrong_password_fails_at_once_and_is_not_shown() {
    let server = password_role();
    let wrong = "wrong-hunter2-pw";
    let started = Instant::now();
    let e = connect(&opts_timeout(
        &pw_url(server, Some(wrong)),
        Duration::from_secs(10),
    ))
    .failure();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e.kind(), ConnectErrorKind::Authentication);
    assert_eq!(e.sqlstate(), Some("28P01"));
    assert_eq!(
        e.to_string(),
        format!(
            "password authentication failed for user \"{PW_ROLE}\" at \
             {PW_ROLE}@127.0.0.1:{}/postgres: check the password (PGPASSWORD, .pgpass or the URL)",
            server.port()
        )
    );
    assert_no_secret(&e, wrong);
}

#[tokio::test]
async fn a_wrong_password_fails_at_once_async() {
    let server = password_role();
    let e = connect_async(&opts(&pw_url(server, Some("wrong-hunter2-pw"))))
        .await
        .failure();
    assert_eq!(e.kind(), ConnectErrorKind::Authentication);
    assert_no_secret(&e, "wrong-hunter2-pw");
}

#[test]
fn a_missing_password_is_explained() {
    let server = password_role();
    run_child(&[
        ("CHILD_URL", pw_url(server, None)),
        ("PGPASSFILE", "/nonexistent/pgpass".into()),
        ("CHILD_EXPECT", "PasswordRequired".into()),
        (
            "CHILD_EXPECT_MESSAGE",
            format!("asks for a password for user \"{PW_ROLE}\" and none was given"),
        ),
    ]);
}

/// Every shape of connection string a user writes, with a password that is wrong (so that the
/// error paths quote the most): the error's `Display` and `Debug`, and the options' `Debug`,
/// never show any of it; the error says what is wrong.
#[test]
fn odd_connection_strings_never_show_the_password() {
    const ODD: &str = "Odd5ecr3tQ";
    let check = |url: &str, kind: ConnectErrorKind, message: &str| {
        let options = opts_timeout(url, Duration::ZERO);
        assert!(!format!("{options:?}").contains(ODD), "{options:?}");
        let e = connect(&options).failure();
        assert_eq!(e.kind(), kind, "{url}: {e}");
        assert!(e.to_string().contains(message), "{url}: {e}");
        assert_no_secret(&e, ODD);
    };
    // Not a URL: described, never quoted.
    for url in [
        format!("postgresql//app:{ODD}@db/prod"),
        format!("postgres:/app:{ODD}@db/prod"),
        format!("postgres:app:{ODD}@db/prod"),
        format!("app:{ODD}@db/prod"),
        format!("//app:{ODD}@db/prod"),
        format!("host=db password='a {ODD}"),
        format!("host=db password=a {ODD}"),
        format!("host=db password='a\\'b {ODD} c' port=x"),
        format!("host = db password = {ODD} sslmode=verify"),
        format!("postgres://app:{ODD}%zz@db/prod"),
        format!("postgres://app:{ODD}@db:x/prod"),
        format!("postgres://app@db/prod?sslmode=bogus&password={ODD}"),
    ] {
        check(&url, ConnectErrorKind::InvalidConfig, "");
    }
    let server = password_role();
    let port = server.port();
    let refused = format!("password authentication failed for user \"{PW_ROLE}\"");
    for url in [
        // Unencoded `@`, `:` and `/` in the password.
        format!("postgres://{PW_ROLE}:{ODD}@x:y/z@127.0.0.1:{port}/postgres"),
        format!("postgres://{PW_ROLE}:{ODD}%40%3A%2F%25@127.0.0.1:{port}/postgres"),
        format!("postgres://{PW_ROLE}@127.0.0.1:{port}/postgres?password={ODD}"),
        format!("postgres://{PW_ROLE}@127.0.0.1:{port}/postgres?pass%77ord={ODD}"),
        format!("postgres://{PW_ROLE}:{ODD}@127.0.0.1:1,127.0.0.1:{port}/postgres"),
        // The host name inside the password: the host still shows, the password does not.
        format!("postgres://{PW_ROLE}:127.0.0.1{ODD}@127.0.0.1:{port}/postgres"),
        // key=value pairs, quoted, escaped, spaced.
        format!("host=127.0.0.1 port={port} user={PW_ROLE} dbname=postgres password={ODD}"),
        format!(
            "password='a \\'{ODD} b' host = 127.0.0.1 port={port} user={PW_ROLE} dbname=postgres"
        ),
        format!(
            "host=127.0.0.1,127.0.0.1 port=1,{port} user={PW_ROLE} password={ODD} dbname=postgres"
        ),
    ] {
        check(&url, ConnectErrorKind::Authentication, &refused);
        check(
            &url,
            ConnectErrorKind::Authentication,
            "at mt_connect_pw@127.0.0.1:",
        );
    }
    // An IPv6 host where nothing listens: refused (or no IPv6 here).
    let e = connect(&opts_timeout(
        &format!("postgres://{PW_ROLE}:{ODD}@[::1]:1/postgres"),
        Duration::ZERO,
    ))
    .failure();
    assert!(e.to_string().contains("[::1]:1"), "{e}");
    assert_no_secret(&e, ODD);
    // PGPASSWORD and .pgpass, in a child process (they come from the environment).
    run_child(&[
        ("CHILD_URL", pw_url(server, None)),
        ("PGPASSWORD", format!("{ODD}-env")),
        ("CHILD_EXPECT", "Authentication".into()),
        ("CHILD_SECRET", ODD.into()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let passfile = dir.path().join("pgpass");
    std::fs::write(&passfile, format!("*:*:*:{PW_ROLE}:{ODD}-pgpass\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    run_child(&[
        ("CHILD_URL", pw_url(server, None)),
        ("PGPASSFILE", passfile.display().to_string()),
        ("CHILD_EXPECT", "Authentication".into()),
        ("CHILD_EXPECT_MESSAGE", refused.clone()),
        ("CHILD_SECRET", ODD.into()),
    ]);
}

#[test]
fn pgpassword_supplies_the_password() {
    let server = password_role();
    run_child(&[
        ("CHILD_URL", pw_url(server, None)),
        ("PGPASSWORD", PW.into()),
        ("CHILD_EXPECT_USER", PW_ROLE.into()),
    ]);
    // PGPASSWORD wrong: the error does not show it.
    run_child(&[
        ("CHILD_URL", pw_url(server, None)),
        ("PGPASSWORD", "wrong-from-env".into()),
        ("CHILD_EXPECT", "Authentication".into()),
    ]);
}

#[test]
fn pgpass_supplies_the_password() {
    use std::os::unix::fs::PermissionsExt;
    let server = password_role();
    let dir = tempfile::tempdir().unwrap();
    let passfile = dir.path().join("pgpass");
    let port = server.port();
    std::fs::write(
        &passfile,
        format!(
            "# comment\n\
             127.0.0.1:{port}:postgres:someone_else:nope\n\
             127.0.0.1:{other}:*:{PW_ROLE}:wrong-port\n\
             127.0.0.1:{port}:*:{PW_ROLE}:{PW}\n\
             *:*:*:*:wrong-fallback\n",
            other = port.wrapping_add(1)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let passfile_str = passfile.display().to_string();
    run_child(&[
        ("CHILD_URL", pw_url(server, None)),
        ("PGPASSFILE", passfile_str.clone()),
        ("CHILD_EXPECT_USER", PW_ROLE.into()),
    ]);
    // Through ~/.pgpass, with wildcards and an escaped colon in the password of another line.
    let home = tempfile::tempdir().unwrap();
    let dotfile = home.path().join(".pgpass");
    std::fs::write(
        &dotfile,
        format!("*:*:other:*:a\\:b\n*:{port}:*:{PW_ROLE}:{PW}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&dotfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    run_child(&[
        ("CHILD_URL", pw_url(server, None)),
        ("HOME", home.path().display().to_string()),
        ("CHILD_EXPECT_USER", PW_ROLE.into()),
    ]);
    // Group/world-readable: ignored, as libpq does.
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    run_child(&[
        ("CHILD_URL", pw_url(server, None)),
        ("PGPASSFILE", passfile_str),
        ("CHILD_EXPECT", "PasswordRequired".into()),
    ]);
}

// ---------------------------------------------------------------------------------------
// A server that speaks German: decisions by SQLSTATE, not by the server's words
// ---------------------------------------------------------------------------------------

/// The locale of [`TranslatedServer`]'s messages.
const TRANSLATED_LOCALE: &str = "de_DE.UTF-8";
const DE_ROLE: &str = "mt_connect_de_pw";
const DE_PW: &str = "richtig-pw-de";

/// Fails (never skips) when the locale is not installed, saying how to install it.
fn require_translated_locale() {
    let listed = Command::new("locale")
        .arg("-a")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                let l = l.trim().to_ascii_lowercase();
                l == "de_de.utf8" || l == "de_de.utf-8"
            })
        })
        .unwrap_or(false);
    assert!(
        listed,
        "this test needs the locale {TRANSLATED_LOCALE} (`locale -a` does not list it): as \
         root, `apt-get install -y locales`, uncomment `de_DE.UTF-8 UTF-8` in /etc/locale.gen \
         and run `locale-gen` (.ci/run does this)"
    );
}

/// A cluster of this test's own whose server has `lc_messages=de_DE.UTF-8` (the harness's
/// cluster is shared by this process's tests, which read English messages). It starts as a
/// standby with `hot_standby=off` ([`ClusterBuilder::standby`]), so it answers every connection
/// with SQLSTATE 57P03 until promoted. Dropped (or when the test process dies), the server gets
/// an immediate shutdown and its directory is removed.
struct TranslatedServer {
    cluster: Cluster,
    port: u16,
}

impl TranslatedServer {
    fn start() -> TranslatedServer {
        require_translated_locale();
        let cluster = ClusterBuilder::new()
            .setting("lc_messages", TRANSLATED_LOCALE)
            .hba_line(&format!("host all {DE_ROLE} 127.0.0.1/32 scram-sha-256"))
            .standby()
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        TranslatedServer {
            port: cluster.port(),
            cluster,
        }
    }

    fn url(&self, user: &str, password: Option<&str>, database: &str) -> String {
        let password = password.map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "postgres://{user}{password}@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// What the server itself says to a connection (tokio_postgres directly, not the code
    /// under test): its error, when it refuses.
    fn refusal(
        &self,
        user: &str,
        password: Option<&str>,
        database: &str,
    ) -> Option<postgres::error::DbError> {
        let mut config = postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(user)
            .dbname(database)
            .connect_timeout(Duration::from_secs(5));
        if let Some(password) = password {
            config.password(password);
        }
        match off_runtime(|| config.connect(postgres::NoTls)) {
            Ok(_) => None,
            Err(e) => e.as_db_error().cloned(),
        }
    }

    /// Waits until the standby answers (with 57P03), and returns its message.
    fn wait_for_standby(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(e) = self.refusal("postgres", None, "postgres") {
                assert_eq!(
                    e.code(),
                    &postgres::error::SqlState::CANNOT_CONNECT_NOW,
                    "{e}"
                );
                return e.message().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "the translated server did not answer within 60 s; its log ({}):\n{}",
                self.cluster.log_file().display(),
                std::fs::read_to_string(self.cluster.log_file()).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ends the standby's recovery: from then on it accepts connections.
    fn promote(&self) {
        self.cluster.promote().unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A server whose `lc_messages` is German: a server that is not accepting connections yet
/// (57P03: a standby with hot standby off, then promoted), a wrong password (28P01) and a
/// missing database (3D000) get the same kind, SQLSTATE and advice as from an English server,
/// through the blocking and the async entry points. The server's own words are quoted, and
/// the test checks they really are not English (else it would prove nothing).
#[tokio::test]
async fn a_translated_server_is_classified_by_sqlstate() {
    let server = off_runtime(TranslatedServer::start);
    let port = server.port;

    // 57P03: retried until the timeout, then "still starting", whatever the server's words.
    let not_now = off_runtime(|| server.wait_for_standby());
    assert_ne!(
        not_now, "the database system is not accepting connections",
        "the server's messages are not translated"
    );
    let expected = format!(
        "could not connect to 127.0.0.1:{port} ({not_now}) after 700ms: the server is still \
         starting: wait longer (a larger connect timeout)"
    );
    let url = server.url("postgres", None, "postgres");
    let started = Instant::now();
    let e = off_runtime(|| connect(&opts_timeout(&url, Duration::from_millis(700)))).failure();
    assert!(started.elapsed() >= Duration::from_millis(650));
    assert_eq!(e.kind(), ConnectErrorKind::Unreachable);
    assert_eq!(e.to_string(), expected);
    let started = Instant::now();
    let e = connect_async(&opts_timeout(&url, Duration::from_millis(700)))
        .await
        .failure();
    assert!(started.elapsed() >= Duration::from_millis(650));
    assert_eq!(e.kind(), ConnectErrorKind::Unreachable);
    assert_eq!(e.to_string(), expected);

    // Waited for: promoted after a second, the waiting connect gets through.
    let started = Instant::now();
    let (client, ()) = off_runtime(|| {
        thread::scope(|s| {
            let promote = s.spawn(|| {
                thread::sleep(Duration::from_secs(1));
                server.promote();
            });
            let client = connect(&opts_timeout(&url, Duration::from_secs(30)));
            (client, promote.join().unwrap())
        })
    });
    let mut client = client.unwrap_or_else(|e| panic!("{e}"));
    assert!(started.elapsed() >= Duration::from_millis(900));
    let (lc_messages, client) = off_runtime(move || {
        let lc = one_string(&mut client, "SHOW lc_messages");
        client
            .batch_execute(&format!(
                "SET password_encryption = 'scram-sha-256';
                 CREATE ROLE {DE_ROLE} LOGIN PASSWORD '{DE_PW}';"
            ))
            .unwrap();
        (lc, client)
    });
    assert_eq!(lc_messages, TRANSLATED_LOCALE);
    off_runtime(move || client.close().unwrap());

    // 28P01: a wrong password.
    let wrong = "falsches-pw-de";
    let said = server
        .refusal(DE_ROLE, Some(wrong), "postgres")
        .expect("the server refuses a wrong password");
    assert_eq!(said.code().code(), "28P01");
    assert_ne!(
        said.message(),
        format!("password authentication failed for user \"{DE_ROLE}\""),
        "the server's messages are not translated"
    );
    let expected = format!(
        "{} at {DE_ROLE}@127.0.0.1:{port}/postgres: check the password (PGPASSWORD, .pgpass or \
         the URL)",
        said.message()
    );
    let url = server.url(DE_ROLE, Some(wrong), "postgres");
    let sync = off_runtime(|| connect(&opts(&url))).failure();
    let with_async = connect_async(&opts(&url)).await.failure();
    for e in [sync, with_async] {
        assert_eq!(e.kind(), ConnectErrorKind::Authentication, "{e}");
        assert_eq!(e.sqlstate(), Some("28P01"));
        assert_eq!(e.to_string(), expected);
        assert_no_secret(&e, wrong);
    }
    // The right one works, also against this server.
    let url = server.url(DE_ROLE, Some(DE_PW), "postgres");
    off_runtime(|| connect(&opts(&url)).map(drop)).unwrap();

    // 3D000: a missing database.
    let said = server
        .refusal("postgres", None, "no_such_db_de")
        .expect("the server refuses a missing database");
    assert_eq!(said.code().code(), "3D000");
    assert_ne!(
        said.message(),
        "database \"no_such_db_de\" does not exist",
        "the server's messages are not translated"
    );
    let expected = format!(
        "{} at 127.0.0.1:{port}: create it, or check the database name (PGDATABASE or the URL)",
        said.message()
    );
    let url = server.url("postgres", None, "no_such_db_de");
    let started = Instant::now();
    let sync = off_runtime(|| connect(&opts_timeout(&url, Duration::from_secs(10)))).failure();
    let with_async = connect_async(&opts_timeout(&url, Duration::from_secs(10)))
        .await
        .failure();
    assert!(started.elapsed() < Duration::from_secs(5), "not retried");
    for e in [sync, with_async] {
        assert_eq!(e.kind(), ConnectErrorKind::DatabaseNotFound, "{e}");
        assert_eq!(e.sqlstate(), Some("3D000"));
        assert_eq!(e.to_string(), expected);
    }
}

// ---------------------------------------------------------------------------------------
// TLS (the process's own cluster with ssl = on: `LocalServer::tls` in the harness)
// ---------------------------------------------------------------------------------------

/// TLS switched on in the test process's own cluster (once per process, by the harness).
fn tls_server() -> (&'static LocalServer, &'static TestTls) {
    let server = own_server();
    (server, server.tls())
}

/// A URL of the test database on the TLS server at `host`, with extra parameters.
fn tls_url(server: &LocalServer, db: &TestDb, host: &str, params: &str) -> String {
    format!(
        "postgres://postgres:not-needed-pw@{host}:{}/{}?{params}",
        server.port(),
        db.name()
    )
}

fn tls_connect(url: &str) -> Result<bool, ConnectError> {
    connect(&opts_timeout(url, Duration::from_secs(5))).map(|mut c| ssl_in_use(&mut c))
}

#[test]
fn sslmode_disable_prefer_and_require() {
    let (server, _) = tls_server();
    let db = TestDb::on_own_server();
    assert!(!tls_connect(&tls_url(server, &db, "127.0.0.1", "sslmode=disable")).unwrap());
    // prefer is the default, and uses TLS when the server offers it.
    assert!(tls_connect(&tls_url(server, &db, "127.0.0.1", "")).unwrap());
    assert!(tls_connect(&tls_url(server, &db, "127.0.0.1", "sslmode=prefer")).unwrap());
    // require encrypts without checking the certificate (it is for localhost, from an unknown CA).
    assert!(tls_connect(&tls_url(server, &db, "127.0.0.1", "sslmode=require")).unwrap());
}

#[test]
fn sslmode_verify_full_with_the_ca() {
    let (server, tls) = tls_server();
    let db = TestDb::on_own_server();
    let params = format!("sslmode=verify-full&sslrootcert={}", tls.ca.display());
    assert!(tls_connect(&tls_url(server, &db, "localhost", &params)).unwrap());
}

#[tokio::test]
async fn sslmode_verify_full_with_the_ca_async() {
    let (server, tls) = tls_server();
    let db = TestDb::on_own_server();
    let params = format!("sslmode=verify-full&sslrootcert={}", tls.ca.display());
    let client = connect_async(&opts(&tls_url(server, &db, "localhost", &params)))
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
}

#[test]
fn sslmode_verify_full_rejects_a_wrong_host_name() {
    let (server, tls) = tls_server();
    let db = TestDb::on_own_server();
    let params = format!("sslmode=verify-full&sslrootcert={}", tls.ca.display());
    let started = Instant::now();
    let e = tls_connect(&tls_url(server, &db, "127.0.0.1", &params)).failure();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(e.kind(), ConnectErrorKind::Tls);
    assert_eq!(
        e.to_string(),
        format!(
            "TLS connection to 127.0.0.1:{} failed (sslmode=verify-full): the server certificate \
             is not valid for host name \"127.0.0.1\": connect with a name the certificate lists, \
             or use sslmode=verify-ca",
            server.port()
        )
    );
    assert_no_secret(&e, "not-needed-pw");
    // verify-ca checks the chain only.
    let params = format!("sslmode=verify-ca&sslrootcert={}", tls.ca.display());
    assert!(tls_connect(&tls_url(server, &db, "127.0.0.1", &params)).unwrap());
}

#[test]
fn sslmode_verify_rejects_a_wrong_ca() {
    let (server, tls) = tls_server();
    let db = TestDb::on_own_server();
    for mode in ["verify-full", "verify-ca", "require"] {
        let params = format!("sslmode={mode}&sslrootcert={}", tls.wrong_ca.display());
        let e = tls_connect(&tls_url(server, &db, "localhost", &params)).failure();
        assert_eq!(e.kind(), ConnectErrorKind::Tls, "{mode}: {e}");
        let message = e.to_string();
        assert!(
            message.contains(&format!(
                "the server certificate is not signed by the CA in \"{}\"",
                tls.wrong_ca.display()
            )),
            "{mode}: {message}"
        );
        assert!(message.contains(&format!("(sslmode={mode})")), "{message}");
    }
    // prefer falls back to a plain connection when the TLS handshake fails, as libpq does.
    let params = format!("sslmode=prefer&sslrootcert={}", tls.wrong_ca.display());
    assert!(!tls_connect(&tls_url(server, &db, "localhost", &params)).unwrap());
    // verify-full without a root certificate uses the platform's CAs, which do not know ours.
    let e = tls_connect(&tls_url(server, &db, "localhost", "sslmode=verify-full")).failure();
    assert_eq!(e.kind(), ConnectErrorKind::Tls);
    assert!(
        e.to_string()
            .contains("not signed by the platform's trusted CAs"),
        "{e}"
    );
    // A root certificate file that does not exist.
    let e = tls_connect(&tls_url(
        server,
        &db,
        "localhost",
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    ))
    .failure();
    assert_eq!(e.kind(), ConnectErrorKind::InvalidConfig);
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}

#[test]
fn scram_with_channel_binding_over_tls() {
    let (server, tls) = tls_server();
    password_role();
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}&channel_binding=require",
        pw_url(server, Some(PW)).replace("127.0.0.1", "localhost"),
        tls.ca.display()
    );
    let mut client = connect(&opts(&url)).unwrap();
    assert!(ssl_in_use(&mut client));
    assert_eq!(
        one_string(&mut client, "SELECT current_user::text"),
        PW_ROLE
    );
}

#[test]
fn a_server_without_tls() {
    let db = TestDb::on_own_server();
    let upstream = server_addr(&db);
    let proxy = Proxy::forward(upstream, Behaviour::RefuseTls);
    let url = url_at(db.url(), "127.0.0.1", proxy.port);
    // require fails at once, saying why.
    let started = Instant::now();
    let e = connect(&opts_timeout(
        &with_param(&url, "sslmode=require"),
        Duration::from_secs(10),
    ))
    .failure();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(e.kind(), ConnectErrorKind::Tls);
    assert_eq!(
        e.to_string(),
        format!(
            "the server at 127.0.0.1:{} does not support TLS, and sslmode=require requires it: \
             enable ssl on the server, or use sslmode=prefer or sslmode=disable",
            proxy.port
        )
    );
    // prefer and disable connect without it.
    for mode in ["prefer", "disable"] {
        let mut client = connect(&opts(&with_param(&url, &format!("sslmode={mode}")))).unwrap();
        assert!(!ssl_in_use(&mut client), "{mode}");
    }
    assert_eq!(
        "require".parse::<SslMode>().unwrap(),
        SslMode::Require,
        "SslMode parses libpq spellings"
    );
}

/// `roundtrip::check` takes the same connection strings as `connect`: `verify-full` (which
/// `postgres::Config` refuses) and `key=value` pairs, for the server and the scratch database.
#[test]
fn the_round_trip_connects_as_connect_does() {
    let (server, tls) = tls_server();
    let db = TestDb::on_own_server();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_t.up.sql"), "CREATE TABLE t (id int);\n").unwrap();
    std::fs::write(dir.path().join("1_t.down.sql"), "DROP TABLE t;\n").unwrap();
    let migrations = migrations_core::Migrations::from_dir(dir.path()).unwrap();
    let full = format!("sslmode=verify-full&sslrootcert={}", tls.ca.display());
    let kv = format!(
        "host=localhost port={} user=postgres dbname={} sslmode=verify-full sslrootcert='{}'",
        server.port(),
        db.name(),
        tls.ca.display()
    );
    for conn in [tls_url(server, &db, "localhost", &full), kv] {
        let report = roundtrip::check(&conn, &migrations, roundtrip::Options::new())
            .unwrap_or_else(|e| panic!("{conn}: {e}"));
        assert!(report.passed(), "{conn}: {report}");
        assert_eq!(report.migrations.len(), 1);
    }
    // It fails as connect does: the certificate is for localhost, not 127.0.0.1.
    let e = roundtrip::check(
        &tls_url(server, &db, "127.0.0.1", &full),
        &migrations,
        roundtrip::Options::new(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot connect to the server: TLS connection to 127.0.0.1:{} failed \
             (sslmode=verify-full): the server certificate is not valid for host name \
             \"127.0.0.1\": connect with a name the certificate lists, or use sslmode=verify-ca",
            server.port()
        )
    );
}

// ---------------------------------------------------------------------------------------
// Redaction and description
// ---------------------------------------------------------------------------------------

#[test]
fn redacts_passwords() {
    assert_eq!(
        redact("postgres://app:s3cret@db:5432/app"),
        "postgres://app:***@db:5432/app"
    );
    assert_eq!(redact("postgres://app@db/app"), "postgres://app@db/app");
    assert_eq!(
        redact("postgresql://db/app?user=app&password=s3cret&sslmode=require"),
        "postgresql://db/app?user=app&password=***&sslmode=require"
    );
    assert_eq!(redact("postgres://a:b@c:d@h/x"), "postgres://a:***@h/x");
    assert_eq!(redact("postgres://a:p?w@h/x"), "postgres://a:***@h/x");
    assert_eq!(redact("host=h password=s3cret"), "host=h password=***");
    // Not a URL nor key=value pairs: no telling where a password would be, so none of it.
    assert_eq!(redact("not a url"), "***");
    assert_eq!(redact("postgresql//app:s3cret@db/prod"), "***");
    // Never panics, whatever the input.
    for s in [
        "",
        "@",
        ":",
        "://",
        "postgres://:@",
        "password",
        "password=",
        "password='",
        "\u{1F600}@:password=\u{e9}",
    ] {
        let _ = redact(s);
    }
    let options = opts("postgres://app:s3cret@db/app");
    assert!(!format!("{options:?}").contains("s3cret"));
    let target = Target::resolve(&options).unwrap();
    assert!(!format!("{target:?}").contains("s3cret"));
}

#[test]
fn describes_the_target() {
    assert_eq!(
        describe_target(&opts("postgres://app:s3cret@db.example:6432/appdb")).unwrap(),
        "app@db.example:6432/appdb"
    );
    assert_eq!(
        describe_target(&opts("postgres://app@[::1],other:7/appdb")).unwrap(),
        "app@[::1]:5432,other:7/appdb"
    );
    assert_eq!(
        describe_target(&opts("postgres://app@/appdb?host=/run/sock&port=6000")).unwrap(),
        "app@/run/sock:6000/appdb"
    );
}
