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
//! `pg_config --bindir`; the newest `/usr/lib/postgresql/*/bin` (versions compared as
//! numbers). Only `initdb` and `postgres` are used (the server is run directly, not through
//! `pg_ctl`, which only [`Cluster::promote`] runs). The cluster is a [`Cluster`] made by
//! [`ClusterBuilder`]'s defaults ([`cluster`]); a test, the reliability runs or the benchmarks
//! make one of their own with other settings, `pg_hba.conf` lines, as a standby, restartable.
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
//!   with trust authentication and superuser `postgres`, and settings for fast tests (lines
//!   added to `postgresql.conf`):
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
use std::fmt;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postgres::{Client, NoTls};

pub mod cluster;
mod pgbouncer;
mod tls;

pub use cluster::{server_bin_dir, Cluster, ClusterBuilder};
pub use pgbouncer::PgBouncer;
pub use tls::TestTls;

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

/// The throwaway cluster started by this process (see the crate documentation): a
/// [`Cluster`] made with [`ClusterBuilder`]'s defaults.
pub type LocalServer = Cluster;

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
    static OWN: OnceLock<Result<Cluster, String>> = OnceLock::new();
    if let Some(server) = local_server() {
        return server;
    }
    match OWN.get_or_init(|| off_runtime(|| ClusterBuilder::new().start())) {
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
    Local(Result<Box<Cluster>, String>),
}

static BACKEND: OnceLock<Backend> = OnceLock::new();

fn backend() -> &'static Backend {
    BACKEND.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Backend::External(external_admin_url(url.trim())),
        _ => Backend::Local(off_runtime(|| ClusterBuilder::new().start()).map(Box::new)),
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
        Backend::Local(Ok(server)) => server.admin_url().to_owned(),
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

/// Copies the directory tree `from` into `to` (made if missing): files and folders, no links.
/// Panics naming the path that failed (a test helper: a half-made copy proves nothing).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("creating {}: {e}", to.display()));
    let entries = fs::read_dir(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_dir(&source, &target);
        } else {
            fs::copy(&source, &target).unwrap_or_else(|e| {
                panic!("copying {} to {}: {e}", source.display(), target.display())
            });
        }
    }
}

/// A temporary copy of the corpus with a `migrations.toml` that ignores its stray
/// `data_oauth_github.sql`, ready to load.
pub fn corpus_copy() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&corpus_dir(), copy.path());
    fs::write(
        copy.path().join("migrations.toml"),
        "ignore = [\"data_oauth_github.sql\"]\n",
    )
    .unwrap();
    copy
}

/// The data round trip's example (issue 14), shared by the library's and the CLI's tests: a
/// `users` table, and a migration that moves `email` into `contact`, whose down
/// ([`lossy_pair::LOSSY_DOWN`]) brings `email` back with its type and NOT NULL, but empty.
pub mod lossy_pair {
    /// `users` with an identity key and a NOT NULL `email`.
    pub const USERS_UP: (&str, &str) = (
        "1_users.up.sql",
        "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL);\n",
    );
    /// Its down.
    pub const USERS_DOWN: (&str, &str) = ("1_users.down.sql", "DROP TABLE users;\n");
    /// Copies `email` into a new `contact` and drops `email`.
    pub const CONTACT_UP: (&str, &str) = (
        "2_contact.up.sql",
        "ALTER TABLE users ADD COLUMN contact text;\n\
         UPDATE users SET contact = email;\n\
         ALTER TABLE users DROP COLUMN email;\n",
    );
    /// The issue's down: `email` comes back with its type and NOT NULL, but empty.
    pub const LOSSY_DOWN: &str = "ALTER TABLE users ADD COLUMN email text NOT NULL DEFAULT '';\n\
         ALTER TABLE users ALTER COLUMN email DROP DEFAULT;\n\
         ALTER TABLE users DROP COLUMN contact;\n";
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
    index public.users_email_ix: extra after down
  up again failed: relation \"users_email_ix\" already exists (SQLSTATE 42P07) (statement 2 of 2, line 2)
FAIL 4 posts_body: down left differences:
    column public.posts.title: missing after down
  up again left differences:
    column public.posts.title: missing after up again
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
