//! Real-PostgreSQL test harness for the workspace (SPEC section 8).
//!
//! Every test that needs a database calls [`test_db`] and gets a fresh, empty database
//! of its own, dropped again (`DROP DATABASE ... WITH (FORCE)`) when the returned
//! [`TestDb`] is dropped, also when the test panics. There is no mock: it is always a
//! real server, chosen as follows.
//!
//! # With `DATABASE_URL`
//!
//! When `DATABASE_URL` is set (and not empty), it must be a `postgres://` or
//! `postgresql://` URL of a role that may create databases. The harness connects to it
//! as the *admin* connection (if the URL names no database, the `postgres` database is
//! used), runs `CREATE DATABASE "<unique name>"` for each test, and hands the test the
//! same URL with the database name replaced (user, password, host, port and query
//! parameters are kept; a `dbname` query parameter is removed). Names are unique across
//! threads and processes (`mt_<pid>_<counter>_<random>_<test name>`). Passwords are never
//! printed: every message shows URLs through [`redact_url`].
//!
//! # Without `DATABASE_URL`: a throwaway cluster per test process
//!
//! The first [`test_db`] call of a process starts one PostgreSQL cluster, shared by all
//! threads (tests) of that process, from the local server binaries. They are looked up
//! in this order: the directory in `MIGRATIONS_TEST_PG_BINDIR`; `initdb` on `PATH`;
//! `pg_config --bindir`; the newest `/usr/lib/postgresql/*/bin`. Only `initdb` and
//! `postgres` are used (the server is run directly, not through `pg_ctl`).
//!
//! * **Where.** Everything lives under a base directory: `MIGRATIONS_TEST_TMPDIR` if set,
//!   else `/dev/shm` when it is writable with at least 2 GiB free (a RAM file system: making
//!   a cluster's and each database's ~1000 files there is several times faster than on a
//!   disk), else `$TMPDIR` (`std::env::temp_dir()`).
//! * **Template.** `initdb` is slow, so it runs once per machine and user: into a temporary
//!   directory beside `<base>/migrations-tests-template-v1-<version>-<uid>`, which is then
//!   renamed into place (atomic; concurrent processes serialize on a `.lock` file, and a
//!   lost race is harmless). Each process copies that template (`cp -a`) into its own
//!   `<base>/migrations-tests-pg-<pid>-<n>-<random>/data`.
//! * **Server.** `postgres` listens on `127.0.0.1` on a free port (found by binding port 0;
//!   if the port is taken before the server binds it, the start is retried on a new port),
//!   with trust authentication and superuser `postgres`, and settings for fast tests:
//!   `fsync=off`, `synchronous_commit=off`, `full_page_writes=off`, `wal_level=minimal`,
//!   `max_connections=200`, `shared_buffers=32MB`, `autovacuum=off`, `jit=off`. Its log is
//!   `postgres.log` in the cluster directory. Readiness: the harness waits (at most 60 s)
//!   until `postmaster.pid` says `ready`, as `pg_ctl -w` does, then checks over TCP that
//!   the port is served by its own data directory; a failure panics with the tail of the
//!   log.
//! * **Root.** When the process runs as root, `initdb`, the server and the watchdog run as
//!   the `postgres` user (which must exist; installing PostgreSQL creates it), and the
//!   directories are `chown`ed to it.
//! * **Cleanup.** Rust never drops statics, so the server is started by a small watchdog
//!   (`/bin/sh`) whose standard input is a pipe held open by the test process. The watchdog
//!   starts `postgres` in the background and blocks reading that pipe. When the test
//!   process ends, *however* it ends (normal exit, panic, `SIGKILL`), the kernel closes the
//!   pipe, the watchdog reads end-of-file, stops the server with an immediate shutdown
//!   (`SIGQUIT`: the data is thrown away, so nothing is worth a checkpoint, and the
//!   postmaster itself `SIGKILL`s backends that do not exit within 5 s), waits for it and
//!   removes the cluster directory.
//!   The watchdog runs in its own process group so a terminal's Ctrl-C reaches only the
//!   test process, and it ignores `SIGINT`/`SIGTERM`/`SIGHUP`.
//!
//! # Environment variables
//!
//! | variable | effect |
//! | --- | --- |
//! | `DATABASE_URL` | use this server instead of starting a cluster |
//! | `MIGRATIONS_TEST_PG_BINDIR` | directory holding `initdb` and `postgres` to use |
//! | `MIGRATIONS_TEST_TMPDIR` | base directory for the template and the clusters (default: `/dev/shm` if big enough, else `$TMPDIR`); when running as root, the `postgres` user must be able to reach it |
//! | `MIGRATIONS_TEST_DEBUG` | when set, print the harness's steps and timings to stderr |
//!
//! # Async tests
//!
//! [`test_db`] and dropping a [`TestDb`] do their admin work on a separate thread, so they
//! also work inside a Tokio runtime (`#[tokio::test]`). [`TestDb::connect`] returns a
//! blocking [`postgres::Client`], which cannot be used inside a runtime; use
//! `tokio_postgres::connect(db.url(), NoTls)` there.
//!
//! # Example
//!
//! ```no_run
//! let db = migrations_tests::test_db();
//! let mut client = db.connect();
//! client.batch_execute("CREATE TABLE t (id int)").unwrap();
//! // `db` drops the database when it goes out of scope.
//! ```

use std::collections::hash_map::RandomState;
use std::ffi::{CString, OsStr};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::{chown, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postgres::{Client, NoTls};

mod pgbouncer;
mod tls;

pub use pgbouncer::PgBouncer;
pub use tls::TestTls;

/// How long to wait for a started server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times to retry a server start that lost its port to another process.
const PORT_ATTEMPTS: usize = 5;
/// Bump when the way the template is made changes, so old templates are not reused.
const TEMPLATE_FORMAT: &str = "v1";
/// Settings passed to `postgres` on its command line (besides port, address and socket dir).
const SERVER_SETTINGS: &[&str] = &[
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "wal_level=minimal",
    "max_wal_senders=0",
    "max_connections=200",
    "shared_buffers=32MB",
    "autovacuum=off",
    "jit=off",
    "logging_collector=off",
];

/// Shell script run as the watchdog. Arguments: postgres binary, data dir, cluster dir,
/// log file, then the server's own arguments.
const WATCHDOG_SCRIPT: &str = r#"
postgres_bin=$1; data=$2; dir=$3; log=$4
shift 4
"$postgres_bin" -D "$data" "$@" </dev/null >>"$log" 2>&1 &
pid=$!
trap '' INT TERM HUP PIPE
echo "$pid"
exec >/dev/null 2>&1
while read -r _line; do :; done
kill -QUIT "$pid"
wait "$pid"
case "$dir" in
  /*migrations-tests-pg-*) rm -rf -- "$dir" ;;
esac
"#;

// ---------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------

/// Counts the holders of a bigint advisory lock (`$1`) in the current database: PostgreSQL
/// stores its high half in `classid`, its low half in `objid` and 1 in `objsubid`.
const ADVISORY_LOCK_HOLDERS: &str = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
     AND granted AND objsubid = 1 \
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
     AND ((classid::bigint << 32) | objid::bigint) = $1";

/// [`TestDb::advisory_lock_holders`] for the database at `url`, for code that cannot borrow
/// the `TestDb` (a `'static` callback). Blocking: call it off any async runtime's threads.
pub fn advisory_lock_holders(url: &str, key: i64) -> i64 {
    let mut client = connect_or_panic(url, "the test database");
    client
        .query_one(ADVISORY_LOCK_HOLDERS, &[&key])
        .unwrap_or_else(|e| panic!("counting advisory lock holders: {e}"))
        .get(0)
}

/// A fresh, empty database for one test; dropped (with `WITH (FORCE)`) when this value is
/// dropped. See the crate documentation for where the server comes from.
pub struct TestDb {
    name: String,
    url: String,
    admin_url: String,
}

/// Creates a fresh, empty database for the calling test. Same as [`TestDb::new`].
///
/// Panics with an explanation (what to install or set) if no server can be had.
pub fn test_db() -> TestDb {
    TestDb::new()
}

impl TestDb {
    /// Creates a fresh, empty database (see [`test_db`]).
    pub fn new() -> TestDb {
        TestDb::create_on(backend_admin_url())
    }

    /// Creates a fresh, empty database on [`own_server`]: for tests that reconfigure the
    /// server or need its files, so they run even when `DATABASE_URL` points elsewhere.
    pub fn on_own_server() -> TestDb {
        TestDb::create_on(own_server().admin_url().to_owned())
    }

    fn create_on(admin_url: String) -> TestDb {
        let name = unique_database_name();
        let url = url_with_database(&admin_url, &name).unwrap_or_else(|e| panic!("{e}"));
        let started = Instant::now();
        {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            off_runtime(move || create_database(&admin_url, &name));
        }
        debug(&format!(
            "created database {name} in {:?}",
            started.elapsed()
        ));
        TestDb {
            name,
            url,
            admin_url,
        }
    }

    /// URL of this test's database, `postgres://user@host:port/dbname[?params]`, usable by
    /// `postgres::Client::connect(url, NoTls)` and `tokio_postgres::connect`. It may contain
    /// a password (from `DATABASE_URL`): print it only through [`redact_url`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Name of this test's database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// URL of the maintenance database on the same server (the one the harness uses to
    /// create and drop databases), for tests that create extra databases or terminate
    /// backends. Do not drop or alter it.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// URL of another database `name` on the same server, with the same credentials and
    /// parameters as [`TestDb::url`] (the database itself is not created).
    pub fn url_for_database(&self, name: &str) -> String {
        url_with_database(&self.admin_url, name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Opens a blocking connection to this test's database. Panics with a clear message
    /// if that fails. Not usable inside a Tokio runtime (use `tokio_postgres` there).
    pub fn connect(&self) -> Client {
        connect_or_panic(&self.url, "the test database")
    }

    /// How many sessions (other than none: the calling connection is a fresh one) hold the
    /// session-level advisory lock `key` (the migrations lock is
    /// `Migrator::lock_key()`) in this test's database. The harness's own test shows it
    /// counts a lock held by another session, so a check for 0 can fail.
    pub fn advisory_lock_holders(&self, key: i64) -> i64 {
        advisory_lock_holders(&self.url, key)
    }

    /// Opens a blocking connection to the maintenance database ([`TestDb::admin_url`]).
    pub fn connect_admin(&self) -> Client {
        connect_or_panic(&self.admin_url, "the maintenance database")
    }
}

impl Default for TestDb {
    fn default() -> Self {
        TestDb::new()
    }
}

impl fmt::Debug for TestDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDb")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let result = std::thread::Builder::new()
            .name("migrations-tests-dropdb".into())
            .spawn(move || drop_database(&admin_url, &name))
            .map_err(|e| format!("could not start a thread: {e}"))
            .and_then(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("the drop thread panicked".to_string()))
            });
        match result {
            Ok(()) => debug(&format!("dropped database {}", self.name)),
            Err(e) => eprintln!(
                "migrations-tests: could not drop test database \"{}\" on {}: {e}",
                self.name,
                redact_url(&self.admin_url)
            ),
        }
    }
}

/// The throwaway cluster started by this process (see the crate documentation).
pub struct LocalServer {
    dir: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    bin_dir: PathBuf,
    version: String,
    port: u16,
    pid: u32,
    admin_url: String,
    /// Held open for the life of the process; its closing tells the watchdog to clean up.
    _watchdog_stdin: ChildStdin,
    /// TLS, once switched on ([`LocalServer::tls`]).
    tls: OnceLock<tls::TestTls>,
}

impl LocalServer {
    /// The cluster directory (holds `data/` and `postgres.log`; removed at process exit).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    /// The server log.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }
    /// Directory of the PostgreSQL binaries in use (also holds `pg_dump`, `psql` when
    /// the distribution installs them there).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }
    /// Server version, e.g. `15.18`.
    pub fn version(&self) -> &str {
        &self.version
    }
    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// Process id of the postmaster.
    pub fn pid(&self) -> u32 {
        self.pid
    }
    /// URL of the `postgres` database as superuser `postgres`.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
}

impl fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalServer")
            .field("dir", &self.dir)
            .field("version", &self.version)
            .field("port", &self.port)
            .field("pid", &self.pid)
            .finish()
    }
}

/// The local throwaway cluster of this process, started if needed; `None` when
/// `DATABASE_URL` is set. Panics (with the reason) if the cluster could not be started.
pub fn local_server() -> Option<&'static LocalServer> {
    match backend() {
        Backend::External(_) => None,
        Backend::Local(Ok(server)) => Some(server),
        Backend::Local(Err(e)) => panic!("{e}"),
    }
}

/// A test's name as libtest knows it in an integration-test binary, for `<binary> <name>
/// --exact`: `module_path` (from `module_path!()` in the test's module) without its first
/// segment, the crate, then the test: `("it::processes", "child_runner")` gives
/// `processes::child_runner`. Derived, not written out, so that moving a test file cannot make
/// the child processes that select a helper test by name silently run no test.
pub fn libtest_name(module_path: &str, test: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{test}"),
        None => test.to_owned(),
    }
}

/// A throwaway cluster of this process's own, whatever `DATABASE_URL` says: for tests that
/// need to reconfigure the server (TLS, `pg_hba.conf`, passwords, Unix sockets, locales) or
/// to see its data directory. With no `DATABASE_URL` it is the same cluster as
/// [`local_server`]; with one, a second cluster is started from the local server binaries, so
/// such tests run in every setup instead of passing without doing anything. Panics (with what
/// to install) when no server binaries are found.
pub fn own_server() -> &'static LocalServer {
    static OWN: OnceLock<Result<LocalServer, String>> = OnceLock::new();
    if let Some(server) = local_server() {
        return server;
    }
    match OWN.get_or_init(|| off_runtime(start_local_server)) {
        Ok(server) => server,
        Err(e) => panic!(
            "{e}\n(this test needs a PostgreSQL cluster of its own even though DATABASE_URL is \
             set: install the server binaries, e.g. `apt-get install postgresql`)"
        ),
    }
}

/// `url` with any password replaced by `***` (in the user info and in a `password` query
/// parameter, or a `password=` keyword in a key/value connection string).
pub fn redact_url(url: &str) -> String {
    match split_url(url) {
        Some(parts) => {
            let mut out = String::from(parts.scheme);
            match parts.authority.rfind('@') {
                Some(at) => {
                    let userinfo = &parts.authority[..at];
                    match userinfo.find(':') {
                        Some(colon) => {
                            out.push_str(&userinfo[..colon]);
                            out.push_str(":***");
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push_str(&parts.authority[at..]);
                }
                None => out.push_str(parts.authority),
            }
            if let Some(db) = parts.database {
                out.push('/');
                out.push_str(db);
            }
            if let Some(query) = parts.query {
                out.push('?');
                let params: Vec<String> = query
                    .split('&')
                    .map(|p| match p.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                        _ => p.to_string(),
                    })
                    .collect();
                out.push_str(&params.join("&"));
            }
            out
        }
        // key=value pairs: hide each password value.
        None if url.contains('=') => redact_keyword_string(url),
        // Neither a URL nor key=value (`postgresql//u:p@h/d`, `u:p@h/d`): where a password
        // would be cannot be told, so nothing of it is shown.
        None => "***".to_owned(),
    }
}

/// `url` (a `postgres://` or `postgresql://` URL) with its database replaced by `database`;
/// `dbname` query parameters are removed. Errors (redacted) if `url` is not such a URL.
pub fn url_with_database(url: &str, database: &str) -> Result<String, String> {
    let parts = split_url(url).ok_or_else(|| {
        format!(
            "migrations-tests: `{}` is not a postgres:// or postgresql:// URL \
             (DATABASE_URL must be a URL such as postgres://user:password@localhost:5432/postgres)",
            redact_url(url)
        )
    })?;
    let mut out = format!("{}{}/{}", parts.scheme, parts.authority, database);
    if let Some(query) = parts.query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| {
                let key = p.split_once('=').map_or(*p, |(k, _)| k);
                !key.is_empty() && key != "dbname"
            })
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Backend selection
// ---------------------------------------------------------------------------------------

enum Backend {
    /// `DATABASE_URL` mode: the admin URL, or why `DATABASE_URL` is unusable.
    External(Result<String, String>),
    /// Throwaway cluster mode: the server, or why it could not be started.
    Local(Result<Box<LocalServer>, String>),
}

static BACKEND: OnceLock<Backend> = OnceLock::new();

fn backend() -> &'static Backend {
    BACKEND.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Backend::External(external_admin_url(url.trim())),
        _ => Backend::Local(off_runtime(start_local_server).map(Box::new)),
    })
}

fn external_admin_url(url: &str) -> Result<String, String> {
    let admin_url = match split_url(url) {
        // No database named: use the maintenance database `postgres`.
        Some(parts) if parts.database.is_none_or(str::is_empty) => {
            url_with_database(url, "postgres")?
        }
        Some(_) => url.to_string(),
        None => {
            return Err(format!(
                "migrations-tests: DATABASE_URL (`{}`) is not a postgres:// or postgresql:// \
                 URL; set it to e.g. postgres://user:password@localhost:5432/postgres, or unset \
                 it to use a throwaway local cluster",
                redact_url(url)
            ))
        }
    };
    debug(&format!("DATABASE_URL mode: {}", redact_url(&admin_url)));
    Ok(admin_url)
}

fn backend_admin_url() -> String {
    match backend() {
        Backend::External(Ok(admin_url)) => admin_url.clone(),
        Backend::Local(Ok(server)) => server.admin_url.clone(),
        Backend::External(Err(e)) | Backend::Local(Err(e)) => panic!("{e}"),
    }
}

/// Runs `f` on a fresh thread (outside any async runtime the caller may be in, since the
/// blocking `postgres` client starts its own), propagating panics.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    // Named like the calling thread, so a panic message names the test.
    let name = std::thread::current()
        .name()
        .unwrap_or("migrations-tests")
        .to_string();
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn_scoped(s, f)
            .unwrap_or_else(|e| panic!("migrations-tests: could not start a thread: {e}"));
        match handle.join() {
            Ok(v) => v,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    })
}

fn debug(msg: &str) {
    if std::env::var_os("MIGRATIONS_TEST_DEBUG").is_some() {
        eprintln!("migrations-tests [{}]: {msg}", std::process::id());
    }
}

// ---------------------------------------------------------------------------------------
// Databases
// ---------------------------------------------------------------------------------------

fn unique_database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = format!(
        "mt_{}_{}_{:06x}",
        std::process::id(),
        n,
        random_u64() & 0xff_ffff
    );
    // Append the test's name (libtest names the thread after it) to help find leftovers.
    if let Some(thread) = std::thread::current().name() {
        let mut suffix: String = thread
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        while suffix.contains("__") {
            suffix = suffix.replace("__", "_");
        }
        let suffix = suffix.trim_matches('_');
        let room = 63usize.saturating_sub(name.len() + 1);
        if !suffix.is_empty() && room > 0 && thread != "main" {
            // Keep the end of the name: the test function's own name is most telling.
            let start = suffix.len().saturating_sub(room);
            name.push('_');
            name.push_str(suffix[start..].trim_start_matches('_'));
        }
    }
    name
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.finish()
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn connect_or_panic(url: &str, what: &str) -> Client {
    Client::connect(url, NoTls).unwrap_or_else(|e| {
        panic!(
            "migrations-tests: could not connect to {what} at {}: {e}",
            redact_url(url)
        )
    })
}

fn create_database(admin_url: &str, name: &str) {
    let mut admin = Client::connect(admin_url, NoTls).unwrap_or_else(|e| {
        panic!(
            "migrations-tests: could not connect to the PostgreSQL server at {} to create a \
             test database: {e}{}",
            redact_url(admin_url),
            if std::env::var_os("DATABASE_URL").is_some() {
                " (check DATABASE_URL: the server must be running and the role must be \
                 allowed to create databases; unset DATABASE_URL to use a throwaway local \
                 cluster instead)"
            } else {
                ""
            }
        )
    });
    let sql = format!("CREATE DATABASE {}", quote_ident(name));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match admin.batch_execute(&sql) {
            Ok(()) => return,
            // "source database template1 is being accessed by other users": retry.
            Err(e)
                if e.code() == Some(&postgres::error::SqlState::OBJECT_IN_USE)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!(
                "migrations-tests: CREATE DATABASE {} failed on {}: {}{}",
                quote_ident(name),
                redact_url(admin_url),
                e,
                e.as_db_error()
                    .map(|d| format!(" ({})", d.message()))
                    .unwrap_or_default()
            ),
        }
    }
}

fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    let mut admin = Client::connect(admin_url, NoTls).map_err(|e| format!("connect: {e}"))?;
    let ident = quote_ident(name);
    match admin.batch_execute(&format!("DROP DATABASE IF EXISTS {ident} WITH (FORCE)")) {
        Ok(()) => Ok(()),
        // Servers before 13 have no WITH (FORCE): terminate the backends by hand.
        Err(e) if e.code() == Some(&postgres::error::SqlState::SYNTAX_ERROR) => {
            admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&name],
                )
                .map_err(|e| e.to_string())?;
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {ident}"))
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(match e.as_db_error() {
            Some(db) => format!("{e} ({})", db.message()),
            None => e.to_string(),
        }),
    }
}

// ---------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------

struct UrlParts<'a> {
    /// `postgres://` or `postgresql://`.
    scheme: &'a str,
    /// `user:password@host:port` (may be empty).
    authority: &'a str,
    /// The path without its `/`; `None` when there is no path.
    database: Option<&'a str>,
    /// The query without its `?`.
    query: Option<&'a str>,
}

/// Splits a libpq connection URI. Like libpq, the authority ends at the first `/` or `?`.
fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let scheme_len = ["postgresql://", "postgres://"]
        .iter()
        .find(|s| url.len() >= s.len() && url[..s.len()].eq_ignore_ascii_case(s))?
        .len();
    let (scheme, rest) = url.split_at(scheme_len);
    let (before_query, query) = match rest.find('?') {
        Some(q) => (&rest[..q], Some(&rest[q + 1..])),
        None => (rest, None),
    };
    let (authority, database) = match before_query.find('/') {
        Some(slash) => (&before_query[..slash], Some(&before_query[slash + 1..])),
        None => (before_query, None),
    };
    Some(UrlParts {
        scheme,
        authority,
        database,
        query,
    })
}

/// Redacts `password=value` in a key/value connection string (`host=x password='y z'`).
fn redact_keyword_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = find_ascii_ci(rest, "password") {
        let (head, tail) = rest.split_at(pos);
        out.push_str(head);
        let after_key = &tail["password".len()..];
        let trimmed = after_key.trim_start();
        let at_word_start = head
            .chars()
            .last()
            .is_none_or(|c| c.is_whitespace() || c == '&' || c == '?');
        if at_word_start && trimmed.starts_with('=') {
            out.push_str(&tail[.."password".len()]);
            out.push_str("=***");
            let value = trimmed[1..].trim_start();
            let consumed = if let Some(quoted) = value.strip_prefix('\'') {
                // Quoted value: runs to the next unescaped quote.
                let mut end = quoted.len();
                let mut escaped = false;
                for (i, c) in quoted.char_indices() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '\'' {
                        end = i + 1;
                        break;
                    }
                }
                1 + end
            } else {
                value
                    .find(|c: char| c.is_whitespace() || c == '&')
                    .unwrap_or(value.len())
            };
            rest = &value[consumed.min(value.len())..];
        } else {
            out.push_str(&tail[.."password".len()]);
            rest = after_key;
        }
    }
    out.push_str(rest);
    out
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

// ---------------------------------------------------------------------------------------
// The local cluster
// ---------------------------------------------------------------------------------------

/// The user the server runs as when this process is root.
#[derive(Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn postgres_user() -> Result<RunAs, String> {
    let name = CString::new("postgres").expect("no NUL");
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the given sizes; `result` tells whether `pwd`
    // was filled in.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(
            "migrations-tests: this test process runs as root, and PostgreSQL refuses to run \
             as root, so the harness runs it as the `postgres` user, but there is no such \
             user. Install the PostgreSQL server package (it creates the user, e.g. \
             `apt-get install postgresql-15`), create it (`useradd --system postgres`), run \
             the tests as another user, or set DATABASE_URL."
                .to_string(),
        );
    }
    Ok(RunAs {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

fn command_as(program: impl AsRef<OsStr>, run_as: Option<RunAs>) -> Command {
    let mut cmd = Command::new(program);
    // The `postgres` user may not be able to enter the caller's directory.
    cmd.current_dir("/");
    if let Some(user) = run_as {
        cmd.uid(user.uid).gid(user.gid);
    }
    cmd
}

fn chown_to(path: &Path, run_as: Option<RunAs>) -> Result<(), String> {
    if let Some(user) = run_as {
        chown(path, Some(user.uid), Some(user.gid))
            .map_err(|e| format!("migrations-tests: chown {}: {e}", path.display()))?;
    }
    Ok(())
}

const INSTALL_HINT: &str = "install the PostgreSQL server binaries (Debian/Ubuntu: \
    `apt-get install postgresql-15` or `apt-get install postgresql`; Fedora: \
    `dnf install postgresql-server`; macOS: `brew install postgresql`) and put their \
    directory on PATH or in MIGRATIONS_TEST_PG_BINDIR, or set DATABASE_URL to a server \
    where the role may create databases";

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("postgres").is_file()
}

/// The directory of the PostgreSQL server binaries a throwaway cluster is started from (the
/// lookup of the crate documentation), or why there is none and what to install: for programs
/// (the quickstart) that tell their user before [`test_db`] would panic.
pub fn server_bin_dir() -> Result<PathBuf, String> {
    find_bin_dir()
}

/// Finds the directory holding `initdb` and `postgres`.
fn find_bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("MIGRATIONS_TEST_PG_BINDIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if has_server_binaries(&dir) {
            return Ok(dir);
        }
        return Err(format!(
            "migrations-tests: MIGRATIONS_TEST_PG_BINDIR={} does not contain both `initdb` \
             and `postgres`; point it at the PostgreSQL server's bin directory (e.g. \
             /usr/lib/postgresql/15/bin) or unset it",
            dir.display()
        ));
    }
    // `initdb` on PATH; follow symlinks (Debian links some into /usr/bin or /usr/local/bin).
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if !initdb.is_file() {
                continue;
            }
            if let Some(real_dir) = fs::canonicalize(&initdb)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
            {
                if has_server_binaries(&real_dir) {
                    return Ok(real_dir);
                }
            }
            if has_server_binaries(&dir) {
                return Ok(dir);
            }
        }
    }
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
    {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server_binaries(&dir) {
                return Ok(dir);
            }
        }
    }
    let mut candidates: Vec<(Vec<u64>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: Vec<u64> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let bin = entry.path().join("bin");
            has_server_binaries(&bin).then_some((version, bin))
        })
        .collect();
    candidates.sort();
    if let Some((_, dir)) = candidates.pop() {
        return Ok(dir);
    }
    Err(format!(
        "migrations-tests: no PostgreSQL server binaries found (looked for `initdb` and \
         `postgres` in MIGRATIONS_TEST_PG_BINDIR, on PATH, via `pg_config --bindir` and under \
         /usr/lib/postgresql/*/bin). To run the database tests, {INSTALL_HINT}."
    ))
}

/// `15.18` from `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
fn server_version(bin_dir: &Path) -> Result<String, String> {
    let postgres = bin_dir.join("postgres");
    let out = Command::new(&postgres)
        .arg("--version")
        .current_dir("/")
        .output()
        .map_err(|e| {
            format!(
                "migrations-tests: could not run {}: {e}",
                postgres.display()
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .map(|w| {
            w.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect::<String>()
        })
        .filter(|v| !v.is_empty());
    version.ok_or_else(|| {
        format!(
            "migrations-tests: `{} --version` printed no version (got: {:?})",
            postgres.display(),
            text.trim()
        )
    })
}

/// Where the template and the clusters live: `MIGRATIONS_TEST_TMPDIR`; else `/dev/shm` when
/// it is a writable directory with at least 2 GiB free (a RAM file system: creating the
/// ~1000 files of a cluster and of each database is many times faster there than on a disk,
/// and Docker's default 64 MiB `/dev/shm` is too small and skipped); else `$TMPDIR`.
fn work_base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MIGRATIONS_TEST_TMPDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && free_bytes(shm).is_some_and(|free| free >= 2 << 30) {
        let c_path = CString::new("/dev/shm").expect("no NUL");
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
            return shm.to_path_buf();
        }
    }
    std::env::temp_dir()
}

fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out-pointer.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        random_u64() as u32
    )
}

fn template_is_complete(dir: &Path) -> bool {
    let data = dir.join("data");
    data.join("PG_VERSION").is_file() && data.join("global").join("pg_control").is_file()
}

/// Exclusive advisory lock, released when the file is closed.
fn lock_file(path: &Path) -> Result<File, String> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("migrations-tests: could not open {}: {e}", path.display()))?;
    loop {
        // SAFETY: the descriptor is valid for the life of `file`.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(file);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!(
                "migrations-tests: could not lock {}: {err}",
                path.display()
            ));
        }
    }
}

/// Returns the cached template cluster, making it with `initdb` if needed.
fn template_dir(
    base: &Path,
    bin_dir: &Path,
    version: &str,
    run_as: Option<RunAs>,
) -> Result<PathBuf, String> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let name = format!("migrations-tests-template-{TEMPLATE_FORMAT}-{version}-{uid}");
    let final_dir = base.join(&name);
    if template_is_complete(&final_dir) {
        return Ok(final_dir);
    }
    let _lock = lock_file(&base.join(format!("{name}.lock")))?;
    if template_is_complete(&final_dir) {
        return Ok(final_dir);
    }
    if final_dir.exists() {
        // Incomplete (e.g. partly removed by a temp cleaner): move it aside and rebuild.
        let stale = base.join(format!("{name}.stale-{}", unique_suffix()));
        if fs::rename(&final_dir, &stale).is_ok() {
            let _ = fs::remove_dir_all(&stale);
        }
    }
    let started = Instant::now();
    let tmp = base.join(format!("{name}.tmp-{}", unique_suffix()));
    fs::create_dir(&tmp)
        .map_err(|e| format!("migrations-tests: could not create {}: {e}", tmp.display()))?;
    let result = (|| {
        chown_to(&tmp, run_as)?;
        let initdb = bin_dir.join("initdb");
        let out = command_as(&initdb, run_as)
            .arg("-D")
            .arg(tmp.join("data"))
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("migrations-tests: could not run {}: {e}", initdb.display()))?;
        if !out.status.success() {
            return Err(format!(
                "migrations-tests: {} failed ({}) in {}:\n{}{}{}",
                initdb.display(),
                out.status,
                tmp.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                if run_as.is_some() {
                    "\n(running as root: the `postgres` user must be able to write there; \
                     set MIGRATIONS_TEST_TMPDIR to a directory it can reach, e.g. /tmp)"
                } else {
                    ""
                }
            ));
        }
        match fs::rename(&tmp, &final_dir) {
            Ok(()) => Ok(()),
            // Someone else won the race (possible where the lock is not honoured).
            Err(_) if template_is_complete(&final_dir) => {
                let _ = fs::remove_dir_all(&tmp);
                Ok(())
            }
            Err(e) => Err(format!(
                "migrations-tests: could not rename {} to {}: {e}",
                tmp.display(),
                final_dir.display()
            )),
        }
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result?;
    debug(&format!(
        "initdb template {} made in {:?}",
        final_dir.display(),
        started.elapsed()
    ));
    Ok(final_dir)
}

fn start_local_server() -> Result<LocalServer, String> {
    let started = Instant::now();
    let bin_dir = find_bin_dir()?;
    let version = server_version(&bin_dir)?;
    let run_as = if is_root() {
        Some(postgres_user()?)
    } else {
        None
    };
    let base = work_base_dir();
    let base = fs::create_dir_all(&base)
        .and_then(|()| fs::canonicalize(&base))
        .map_err(|e| {
            format!(
                "migrations-tests: cannot use {} for the throwaway cluster: {e} (set \
                 MIGRATIONS_TEST_TMPDIR to a writable directory)",
                base.display()
            )
        })?;
    debug(&format!("working under {}", base.display()));
    let template = template_dir(&base, &bin_dir, &version, run_as)?;
    let mut last_error = String::new();
    for attempt in 1..=PORT_ATTEMPTS {
        match try_start(&base, &bin_dir, &version, &template, run_as) {
            Ok(server) => {
                debug(&format!(
                    "cluster {} (PostgreSQL {}) on port {} ready in {:?} (attempt {attempt})",
                    server.dir.display(),
                    server.version,
                    server.port,
                    started.elapsed()
                ));
                return Ok(server);
            }
            Err(StartError::PortTaken(e)) => {
                debug(&format!("port taken, retrying: {e}"));
                last_error = e;
            }
            Err(StartError::Fatal(e)) => return Err(e),
        }
    }
    Err(format!(
        "migrations-tests: the PostgreSQL server could not bind a free port in {PORT_ATTEMPTS} \
         attempts; last failure:\n{last_error}"
    ))
}

enum StartError {
    PortTaken(String),
    Fatal(String),
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("migrations-tests: could not find a free port on 127.0.0.1: {e}"))
}

fn try_start(
    base: &Path,
    bin_dir: &Path,
    version: &str,
    template: &Path,
    run_as: Option<RunAs>,
) -> Result<LocalServer, StartError> {
    let fatal = StartError::Fatal;
    let dir = base.join(format!("migrations-tests-pg-{}", unique_suffix()));
    fs::create_dir(&dir).map_err(|e| {
        fatal(format!(
            "migrations-tests: could not create {}: {e}",
            dir.display()
        ))
    })?;
    let dir = fs::canonicalize(&dir).unwrap_or(dir);
    let data_dir = dir.join("data");
    let log_file = dir.join("postgres.log");

    let copy_started = Instant::now();
    let prepared = (|| {
        chown_to(&dir, run_as)?;
        let out = Command::new("cp")
            .arg("-a")
            .arg(template.join("data"))
            .arg(&data_dir)
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("migrations-tests: could not run `cp`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "migrations-tests: copying the template cluster {} failed: {}",
                template.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        free_port()
    })();
    debug(&format!(
        "copied the template into {} in {:?}",
        dir.display(),
        copy_started.elapsed()
    ));
    let port = match prepared {
        Ok(port) => port,
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            return Err(fatal(e));
        }
    };

    // The Unix socket goes into the cluster dir unless its path would be too long.
    let socket_dir = if dir.as_os_str().len() + 20 < 100 {
        dir.to_string_lossy().into_owned()
    } else {
        String::new()
    };
    let mut cmd = command_as("/bin/sh", run_as);
    cmd.arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("migrations-tests-watchdog")
        .arg(bin_dir.join("postgres"))
        .arg(&data_dir)
        .arg(&dir)
        .arg(&log_file)
        .arg("-p")
        .arg(port.to_string())
        .arg("-c")
        .arg("listen_addresses=127.0.0.1")
        .arg("-c")
        .arg(format!("unix_socket_directories={socket_dir}"));
    for setting in SERVER_SETTINGS {
        cmd.arg("-c").arg(setting);
    }
    cmd.env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Own process group: a terminal's Ctrl-C must not stop the cleanup.
        .process_group(0);
    // Do not let the watchdog and the server hold other descriptors this process inherited
    // without close-on-exec (a caller's output pipe, say) after the process is gone.
    let fd_limit = open_fd_limit();
    // SAFETY: the closure only makes async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(move || {
            set_cloexec_from(3, fd_limit);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        let _ = fs::remove_dir_all(&dir);
        fatal(format!("migrations-tests: could not start /bin/sh: {e}"))
    })?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let mut pid_line = String::new();
    let read = child
        .stdout
        .take()
        .map(|out| BufReader::new(out).read_line(&mut pid_line));
    let pid = match (read, pid_line.trim().parse::<u32>()) {
        (Some(Ok(_)), Ok(pid)) => pid,
        _ => {
            stop_watchdog(stdin, child);
            let _ = fs::remove_dir_all(&dir);
            return Err(fatal(format!(
                "migrations-tests: the server watchdog (/bin/sh) did not report the server's \
                 process id (got {:?})",
                pid_line.trim()
            )));
        }
    };
    let admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");

    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    match wait_ready(&admin_url, pid, &data_dir, major >= 10) {
        Ok(()) => {
            // The child handle is not needed; dropping it neither kills nor waits.
            drop(child);
            Ok(LocalServer {
                dir,
                data_dir,
                log_file,
                bin_dir: bin_dir.to_path_buf(),
                version: version.to_string(),
                port,
                pid,
                admin_url,
                _watchdog_stdin: stdin,
                tls: OnceLock::new(),
            })
        }
        Err(failure) => {
            let log = log_tail(&log_file, 30);
            stop_watchdog(stdin, child);
            let port_taken = [
                "could not bind",
                "Address already in use",
                "could not create any TCP/IP sockets",
            ]
            .iter()
            .any(|s| log.contains(s));
            let message = format!(
                "migrations-tests: the throwaway PostgreSQL server ({} -D {}, port {port}) \
                 {failure}. Server log ({}):\n{log}{}",
                bin_dir.join("postgres").display(),
                data_dir.display(),
                log_file.display(),
                if run_as.is_some() && !port_taken {
                    "\n(running as root: the server runs as the `postgres` user, which must be \
                     able to reach the directory; set MIGRATIONS_TEST_TMPDIR to a directory it can reach)"
                } else {
                    ""
                }
            );
            Err(if port_taken {
                StartError::PortTaken(message)
            } else {
                StartError::Fatal(message)
            })
        }
    }
}

fn open_fd_limit() -> libc::c_int {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if ok {
        libc::c_int::try_from(limit.rlim_cur.min(65_536)).unwrap_or(65_536)
    } else {
        4096
    }
}

/// Marks every descriptor from `first` on close-on-exec (runs between fork and exec).
fn set_cloexec_from(first: libc::c_int, limit: libc::c_int) {
    #[cfg(target_os = "linux")]
    {
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes descriptor flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first as libc::c_uint,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            )
        };
        if rc == 0 {
            return;
        }
    }
    for fd in first..limit {
        // SAFETY: fcntl on a possibly closed descriptor just fails with EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// Closes the watchdog's stdin (so it stops the server and removes the directory) and
/// waits for it.
fn stop_watchdog(stdin: ChildStdin, mut child: Child) {
    drop(stdin);
    let _ = child.wait();
}

/// Waits until the postmaster reports itself ready in `postmaster.pid` (as `pg_ctl -w`
/// does), then checks over TCP that the port is served by this very data directory.
///
/// Connecting before the server is ready could reach whatever else took the port meanwhile
/// (which may accept and never answer); once our postmaster is ready, it holds the port
/// (a failed bind is fatal for it), so the connection reaches it.
fn wait_ready(
    admin_url: &str,
    pid: u32,
    data_dir: &Path,
    has_status_line: bool,
) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let pid_file = data_dir.join("postmaster.pid");
    let mut last_error = String::from("no connection attempt yet");
    loop {
        if !process_alive(pid) {
            return Err("exited during startup".to_string());
        }
        let contents = fs::read_to_string(&pid_file).unwrap_or_default();
        let lines: Vec<&str> = contents.lines().collect();
        let ours = lines.first().and_then(|l| l.trim().parse::<u32>().ok()) == Some(pid);
        // Line 8 is the status (PostgreSQL 10 and later); older servers: try connecting.
        let ready = ours
            && if has_status_line {
                lines.get(7).is_some_and(|status| status.trim() == "ready")
            } else {
                lines.len() >= 6
            };
        if ready {
            match Client::connect(admin_url, NoTls) {
                Ok(mut client) => {
                    let theirs = client
                        .query_one("SHOW data_directory", &[])
                        .map(|row| row.get::<_, String>(0));
                    match theirs {
                        Ok(d) if same_path(Path::new(&d), data_dir) => return Ok(()),
                        Ok(d) => last_error = format!("port answered by another server (data {d})"),
                        Err(e) => last_error = e.to_string(),
                    }
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "did not accept connections within {} s (postmaster.pid status: {:?}; last \
                 connection error: {last_error})",
                READY_TIMEOUT.as_secs(),
                lines.get(7).map(|l| l.trim()).unwrap_or("none")
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b
        || match (fs::canonicalize(a), fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

/// Whether `pid` is a live (not zombie) process.
fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) if Path::new("/proc/self/stat").exists() => false,
        Err(_) => {
            // No procfs: fall back to kill(pid, 0), which cannot tell zombies apart.
            // SAFETY: signal 0 only checks for existence.
            let pid = libc::pid_t::try_from(pid).unwrap_or(libc::pid_t::MAX);
            unsafe { libc::kill(pid, 0) == 0 }
        }
    }
}

/// Last `lines` lines of a (possibly large) log file.
fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    if tail.trim().is_empty() {
        "(empty)".to_string()
    } else {
        tail
    }
}

/// The crates.io corpus (`corpus/crates.io/migrations`, vendored test data), or the directory in
/// `MIGRATIONS_CORPUS_DIR`. Panics, naming the path, when it is missing: a corpus test must
/// never pass by finding nothing.
pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("MIGRATIONS_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/crates.io/migrations")
        });
    assert!(
        dir.is_dir(),
        "the crates.io corpus is missing at {} (set MIGRATIONS_CORPUS_DIR to its migrations \
         directory)",
        dir.display()
    );
    dir
}

/// A temporary copy of the corpus with a `migrations.toml` that ignores its stray
/// `data_oauth_github.sql`, ready to load.
pub fn corpus_copy() -> tempfile::TempDir {
    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&corpus_dir(), copy.path());
    fs::write(
        copy.path().join("migrations.toml"),
        "ignore = [\"data_oauth_github.sql\"]\n",
    )
    .unwrap();
    copy
}

/// Round-trip fixtures shared by the library's and the CLI's tests: a correct pair, a down that
/// forgets an index, a down that drops a column its up did not add, a down that errors, and a
/// migration without a down.
pub const ROUND_TRIP_FIXTURES: &[(&str, &str)] = &[
    (
        "1_users.up.sql",
        "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);\n",
    ),
    ("1_users.down.sql", "DROP TABLE users;\n"),
    (
        "2_posts.up.sql",
        "CREATE TABLE posts (id int PRIMARY KEY, user_id int REFERENCES users, title text);\n\
         CREATE INDEX posts_user_ix ON posts (user_id);\n",
    ),
    ("2_posts.down.sql", "DROP TABLE posts;\n"),
    (
        "3_users_name.up.sql",
        "ALTER TABLE users ADD COLUMN name text;\nCREATE INDEX users_email_ix ON users (email);\n",
    ),
    (
        "3_users_name.down.sql",
        "ALTER TABLE users DROP COLUMN name;\n",
    ),
    (
        "4_posts_body.up.sql",
        "ALTER TABLE posts ADD COLUMN body text;\n",
    ),
    (
        "4_posts_body.down.sql",
        "ALTER TABLE posts DROP COLUMN body, DROP COLUMN title;\n",
    ),
    ("5_tags.up.sql", "CREATE TABLE tags (id int);\n"),
    ("5_tags.down.sql", "DROP TABLE tag;\n"),
    ("6_seed.up.sql", "INSERT INTO tags VALUES (1);\n"),
];

/// What the round trip reports for [`ROUND_TRIP_FIXTURES`] (the CLI prints it, plus a newline).
pub const ROUND_TRIP_REPORT: &str = "\
ok 1 users
ok 2 posts
FAIL 3 users_name: down left differences:
    index public.users_email_ix: unexpected
  up again failed: relation \"users_email_ix\" already exists (SQLSTATE 42P07) (statement 2 of 2, line 2)
FAIL 4 posts_body: down left differences:
    column public.posts.title: missing
  up again left differences:
    column public.posts.title: missing
FAIL 5 tags: down failed: table \"tag\" does not exist (SQLSTATE 42P01) (statement 1 of 1, line 1)
skip 6 seed: no down file, applied without a check
6 migrations checked: 2 ok, 3 failed, 1 without a down file";

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn replaces_database_in_urls() {
        let cases = [
            ("postgres://u@h:5432/db", "postgres://u@h:5432/x"),
            ("postgres://u@h:5432", "postgres://u@h:5432/x"),
            ("postgres://u@h:5432/", "postgres://u@h:5432/x"),
            (
                "postgresql://u:p@h/db?sslmode=disable",
                "postgresql://u:p@h/x?sslmode=disable",
            ),
            (
                "postgres://u@h/db?dbname=other&connect_timeout=5",
                "postgres://u@h/x?connect_timeout=5",
            ),
            (
                "postgres:///db?host=/run/postgresql",
                "postgres:///x?host=/run/postgresql",
            ),
            ("postgres://h?dbname=d", "postgres://h/x"),
        ];
        for (input, expected) in cases {
            assert_eq!(url_with_database(input, "x").unwrap(), expected, "{input}");
        }
        let err = url_with_database("host=h password=secret", "x").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert!(err.contains("DATABASE_URL"), "{err}");
    }

    #[test]
    fn redacts_passwords() {
        let cases = [
            ("postgres://u:secret@h:1/db", "postgres://u:***@h:1/db"),
            ("postgres://u:se:cr@et@h/db", "postgres://u:***@h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?password=secret&a=b",
                "postgres://h/db?password=***&a=b",
            ),
            (
                "host=h password=secret user=u",
                "host=h password=*** user=u",
            ),
            (
                "host=h password = 'se cr\\'et' user=u",
                "host=h password=*** user=u",
            ),
            // Shapes that are not URLs: nothing of them is shown.
            ("postgresql//app:S3cr3tX@db/prod", "***"),
            ("postgres:/u:p@h/d", "***"),
            ("u:p@h/d", "***"),
            ("//u:p@h/d", "***"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_url(input), expected, "{input}");
        }
    }

    #[test]
    fn database_names_are_unique_and_valid() {
        let names: std::collections::HashSet<String> =
            (0..1000).map(|_| unique_database_name()).collect();
        assert_eq!(names.len(), 1000);
        for n in &names {
            assert!(n.len() <= 63, "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{n}"
            );
        }
    }
}
