//! Throwaway PostgreSQL clusters: the one implementation behind the harness's own cluster
//! ([`crate::local_server`], [`crate::own_server`]), the reliability runs' clusters that are
//! restarted and crashed at will, the benchmarks' cluster on the disk, and the tests' clusters
//! with settings of their own (a server that speaks German, a standby).
//!
//! [`ClusterBuilder`] finds the server binaries ([`server_bin_dir`]: versions compared as
//! numbers, so 15 beats 9.6), makes the data directory (a copy of a per-machine `initdb`
//! template, or `initdb` itself when the WAL goes elsewhere), adds `postgresql.conf` settings,
//! `pg_hba.conf` lines and files, picks a free port (retried when another process takes it
//! first) and starts `postgres` under a watchdog. When this process runs as root, the server
//! runs as the `postgres` user, looked up with the reentrant `getpwnam_r`.
//!
//! The watchdog (`/bin/sh`) is the server's parent and reads a pipe held by this process:
//! a `stop` or `start` line stops (immediate shutdown) or (re)starts the server; end of file,
//! which the kernel delivers however this process ends (also `SIGKILL`), stops the server and
//! removes the cluster directory. So a cluster never outlives its test process, even one that
//! is never dropped (a `static`).

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::fs::{chown, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use crate::{debug, random_u64, tls};

/// How long to wait for a started server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times to retry a server start that lost its port to another process.
const PORT_ATTEMPTS: usize = 5;
/// Bump when the way the template is made changes, so old templates are not reused.
const TEMPLATE_FORMAT: &str = "v1";
/// The cluster directories' name prefix; the watchdog removes only directories named so.
const CLUSTER_PREFIX: &str = "migrations-tests-pg-";
/// Default settings, for fast tests: the data is thrown away, so durability is not worth its
/// cost. A builder's [`ClusterBuilder::setting`] replaces one by name.
const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("wal_level", "minimal"),
    ("max_wal_senders", "0"),
    ("max_connections", "200"),
    ("shared_buffers", "32MB"),
    ("autovacuum", "off"),
    ("jit", "off"),
    ("logging_collector", "off"),
];

/// The watchdog. Arguments: postgres binary, data dir, cluster dir, log file, then the
/// server's own arguments. It prints the server's process id at each start and `stopped` after
/// each stop, and exits (stopping the server, removing the cluster directory) at end of file.
const WATCHDOG_SCRIPT: &str = r#"
postgres_bin=$1; data=$2; dir=$3; log=$4
shift 4
trap '' INT TERM HUP PIPE
pid=
start_server() {
  "$postgres_bin" -D "$data" "$@" </dev/null >>"$log" 2>&1 &
  pid=$!
  echo "$pid"
}
stop_server() {
  if [ -n "$pid" ]; then
    kill -QUIT "$pid" 2>/dev/null
    wait "$pid"
    pid=
  fi
}
start_server "$@"
while read -r command; do
  case "$command" in
    stop) stop_server; echo stopped ;;
    start) stop_server; start_server "$@" ;;
  esac
done
exec >/dev/null 2>&1
stop_server
case "$dir" in
  /*/migrations-tests-pg-*) rm -rf -- "$dir" ;;
esac
"#;

// ---------------------------------------------------------------------------------------
// The builder
// ---------------------------------------------------------------------------------------

/// How to make a throwaway cluster: settings, `pg_hba.conf` lines, files, where it lives.
/// [`ClusterBuilder::start`] makes and starts it. The defaults are the harness's own cluster:
/// trust authentication for superuser `postgres` on 127.0.0.1, the fast settings of the crate
/// documentation, under the harness's base directory.
///
/// ```no_run
/// use migrations_tests::ClusterBuilder;
/// let cluster = ClusterBuilder::new()
///     .setting("lc_messages", "de_DE.UTF-8")
///     .hba_line("host all app 127.0.0.1/32 scram-sha-256")
///     .start()
///     .unwrap();
/// let mut client = postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls).unwrap();
/// # let _ = &mut client;
/// // `cluster` stops the server and removes its directory when dropped.
/// ```
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    settings: Vec<(String, String)>,
    hba: Vec<String>,
    files: Vec<(String, Vec<u8>)>,
    base_dir: Option<PathBuf>,
    data_parent: Option<PathBuf>,
    standby: bool,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder::new()
    }
}

impl ClusterBuilder {
    /// The harness's defaults (see [`ClusterBuilder`]).
    pub fn new() -> ClusterBuilder {
        ClusterBuilder {
            settings: DEFAULT_SETTINGS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            hba: Vec::new(),
            files: Vec::new(),
            base_dir: None,
            data_parent: None,
            standby: false,
        }
    }

    /// Sets `name = 'value'` in `postgresql.conf`, replacing a default of the same name
    /// (`ALTER SYSTEM` can still change it, unlike a command-line setting). The port and the
    /// listen address are the builder's own.
    pub fn setting(mut self, name: &str, value: &str) -> ClusterBuilder {
        self.settings.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a line at the top of `pg_hba.conf` (so it wins over initdb's `trust` lines, which
    /// stay for everyone else).
    pub fn hba_line(mut self, line: &str) -> ClusterBuilder {
        self.hba.push(line.to_owned());
        self
    }

    /// Writes a file into the data directory (owned by the server's user, mode 0600) before
    /// the server starts.
    pub fn file(mut self, name: &str, contents: &[u8]) -> ClusterBuilder {
        self.files.push((name.to_owned(), contents.to_vec()));
        self
    }

    /// Makes the cluster under `dir` instead of the harness's base directory (`/dev/shm` when
    /// big enough, see the crate documentation): for example on a disk, where `fsync=on`
    /// means what it says.
    pub fn base_dir(mut self, dir: &Path) -> ClusterBuilder {
        self.base_dir = Some(dir.to_path_buf());
        self
    }

    /// Puts the data directory at `<parent>/data` (for example on a small file system meant
    /// to fill up), while the WAL stays in the cluster's own directory (`initdb --waldir`):
    /// a full WAL file system makes the server PANIC, a full data file system is an ordinary
    /// error (53100) for the statement that needed the space. Runs `initdb` (no template).
    pub fn data_dir_in(mut self, parent: &Path) -> ClusterBuilder {
        self.data_parent = Some(parent.to_path_buf());
        self
    }

    /// Starts the server as a standby (`standby.signal`, `hot_standby = off`): it answers
    /// every connection with SQLSTATE 57P03 until [`Cluster::promote`].
    pub fn standby(mut self) -> ClusterBuilder {
        self.standby = true;
        self.setting("hot_standby", "off")
    }

    /// Makes and starts the cluster; returns once it accepts connections (a standby: once
    /// the postmaster says it runs). The error says what failed, with the server log's tail,
    /// or what to install when there are no server binaries.
    pub fn start(&self) -> Result<Cluster, String> {
        let started = Instant::now();
        let bin_dir = find_bin_dir()?;
        let version = server_version(&bin_dir)?;
        let run_as = if is_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        let base = self.base_dir.clone().unwrap_or_else(work_base_dir);
        let base = fs::create_dir_all(&base)
            .and_then(|()| fs::canonicalize(&base))
            .map_err(|e| {
                format!(
                    "migrations-tests: cannot use {} for a throwaway cluster: {e} (set \
                     MIGRATIONS_TEST_TMPDIR to a writable directory)",
                    base.display()
                )
            })?;
        debug(&format!("working under {}", base.display()));
        let template = match self.data_parent {
            None => Some(template_dir(&base, &bin_dir, &version, run_as)?),
            Some(_) => None,
        };
        let server = Server {
            bin_dir: &bin_dir,
            version: &version,
            run_as,
        };
        let mut last_error = String::new();
        for attempt in 1..=PORT_ATTEMPTS {
            match self.try_start(&base, &server, template.as_deref()) {
                Ok(cluster) => {
                    debug(&format!(
                        "cluster {} (PostgreSQL {}) on port {} ready in {:?} (attempt {attempt})",
                        cluster.dir.display(),
                        cluster.version,
                        cluster.port,
                        started.elapsed()
                    ));
                    return Ok(cluster);
                }
                Err(StartError::PortTaken(e)) => {
                    debug(&format!("port taken, retrying: {e}"));
                    last_error = e;
                }
                Err(StartError::Fatal(e)) => return Err(e),
            }
        }
        Err(format!(
            "migrations-tests: the PostgreSQL server could not bind a free port in \
             {PORT_ATTEMPTS} attempts; last failure:\n{last_error}"
        ))
    }

    /// One attempt: a new cluster directory, its data, a free port, the server.
    fn try_start(
        &self,
        base: &Path,
        server: &Server<'_>,
        template: Option<&Path>,
    ) -> Result<Cluster, StartError> {
        let fatal = StartError::Fatal;
        let dir = base.join(format!("{CLUSTER_PREFIX}{}", unique_suffix()));
        fs::create_dir(&dir).map_err(|e| {
            fatal(format!(
                "migrations-tests: could not create {}: {e}",
                dir.display()
            ))
        })?;
        let dir = fs::canonicalize(&dir).unwrap_or(dir);
        let data_dir = match &self.data_parent {
            Some(parent) => parent.join("data"),
            None => dir.join("data"),
        };
        let log_file = dir.join("postgres.log");

        let prepare_started = Instant::now();
        let prepared = (|| {
            chown_to(&dir, server.run_as)?;
            match template {
                Some(template) => copy_template(template, &data_dir)?,
                None => {
                    let waldir = dir.join("wal");
                    initdb(
                        server,
                        &data_dir,
                        &[OsStr::new("--waldir"), waldir.as_os_str()],
                    )?;
                }
            }
            self.configure(&data_dir, server.run_as)?;
            free_port()
        })();
        debug(&format!(
            "prepared {} in {:?}",
            data_dir.display(),
            prepare_started.elapsed()
        ));
        let port = match prepared {
            Ok(port) => port,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                if self.data_parent.is_some() {
                    let _ = fs::remove_dir_all(&data_dir);
                }
                return Err(fatal(e));
            }
        };
        let cluster = Cluster {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            data_dir,
            log_file,
            bin_dir: server.bin_dir.to_path_buf(),
            version: server.version.to_owned(),
            port,
            run_as: server.run_as,
            external_data: self.data_parent.is_some(),
            watchdog: Mutex::new(None),
            tls: OnceLock::new(),
        };
        // Dropping `cluster` on failure stops the watchdog and removes the directories.
        let watchdog = cluster.spawn_watchdog().map_err(fatal)?;
        *cluster.watchdog.lock().unwrap_or_else(|e| e.into_inner()) = Some(watchdog);
        match cluster.wait_ready() {
            Ok(()) => Ok(cluster),
            Err(failure) => Err(cluster.start_failure(&failure)),
        }
    }

    /// Adds the settings to `postgresql.conf`, the hba lines to `pg_hba.conf`, and the files.
    fn configure(&self, data_dir: &Path, run_as: Option<RunAs>) -> Result<(), String> {
        let mut conf = String::from("\n# migrations-tests\n");
        for (name, value) in &self.settings {
            conf.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
        }
        let conf_file = data_dir.join("postgresql.conf");
        OpenOptions::new()
            .append(true)
            .open(&conf_file)
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(|e| format!("migrations-tests: writing {}: {e}", conf_file.display()))?;
        if !self.hba.is_empty() {
            let hba_file = data_dir.join("pg_hba.conf");
            let old = fs::read_to_string(&hba_file)
                .map_err(|e| format!("migrations-tests: reading {}: {e}", hba_file.display()))?;
            let mut new = self.hba.join("\n");
            new.push('\n');
            new.push_str(&old);
            write_server_file(&hba_file, new.as_bytes(), run_as)?;
        }
        if self.standby {
            write_server_file(&data_dir.join("standby.signal"), b"", run_as)?;
        }
        for (name, contents) in &self.files {
            write_server_file(&data_dir.join(name), contents, run_as)?;
        }
        Ok(())
    }
}

/// The server binaries a cluster is made with, and the user it runs as.
struct Server<'a> {
    bin_dir: &'a Path,
    version: &'a str,
    run_as: Option<RunAs>,
}

/// Writes `path` (mode 0600, owned by the server's user).
fn write_server_file(path: &Path, contents: &[u8], run_as: Option<RunAs>) -> Result<(), String> {
    fs::write(path, contents)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(0o600)))
        .map_err(|e| format!("migrations-tests: writing {}: {e}", path.display()))?;
    chown_to(path, run_as)
}

// ---------------------------------------------------------------------------------------
// The running cluster
// ---------------------------------------------------------------------------------------

/// A throwaway cluster (see [`ClusterBuilder`]); stopped (immediate shutdown) and removed
/// when dropped, or when this process ends however it ends.
pub struct Cluster {
    dir: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    bin_dir: PathBuf,
    version: String,
    port: u16,
    admin_url: String,
    run_as: Option<RunAs>,
    /// The data directory is outside `dir` ([`ClusterBuilder::data_dir_in`]).
    external_data: bool,
    watchdog: Mutex<Option<Watchdog>>,
    /// TLS, once switched on ([`Cluster::tls`]).
    pub(crate) tls: OnceLock<tls::TestTls>,
}

/// The watchdog process and the two ends of its pipes.
struct Watchdog {
    child: Child,
    /// Held open for the cluster's life; its closing tells the watchdog to clean up.
    commands: ChildStdin,
    replies: BufReader<ChildStdout>,
    /// The postmaster's process id; `None` while stopped.
    pid: Option<u32>,
}

impl Cluster {
    /// The cluster directory (holds `data/` and `postgres.log`; removed when the cluster
    /// is dropped or this process ends).
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
    /// Process id of the postmaster (0 while stopped).
    pub fn pid(&self) -> u32 {
        self.lock().as_ref().and_then(|w| w.pid).unwrap_or(0)
    }
    /// URL of the `postgres` database as superuser `postgres`.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
    /// URL of database `database` as superuser `postgres` (trust authentication).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
    /// The user and group the server runs as: `postgres` when this process is root, else
    /// this process's own (`None`).
    pub fn server_user(&self) -> Option<(u32, u32)> {
        self.run_as.map(|u| (u.uid, u.gid))
    }

    /// `CREATE DATABASE "<name>"`.
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        let mut admin = Client::connect(&self.admin_url, NoTls)
            .map_err(|e| format!("connecting to {}: {e}", self.admin_url))?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", crate::quote_ident(name)))
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))
    }

    /// Stops the server with an immediate shutdown (`SIGQUIT`: every session is killed at
    /// once, no checkpoint; the next start goes through crash recovery). For a cluster of the
    /// caller's own: stopping [`crate::own_server`] breaks every other test of the process.
    pub fn stop(&self) -> Result<(), String> {
        let mut guard = self.lock();
        let watchdog = guard.as_mut().ok_or("the cluster's watchdog is gone")?;
        watchdog.send("stop")?;
        let reply = watchdog.reply()?;
        watchdog.pid = None;
        if reply == "stopped" {
            Ok(())
        } else {
            Err(format!("the watchdog answered {reply:?} to stop"))
        }
    }

    /// Starts the server again after [`Cluster::stop`] (on the same port); returns once it
    /// accepts connections.
    pub fn start(&self) -> Result<(), String> {
        self.restart()
    }

    /// Immediate shutdown (as [`Cluster::stop`]), then start; returns once the server
    /// accepts connections again (after crash recovery).
    pub fn restart(&self) -> Result<(), String> {
        {
            let mut guard = self.lock();
            let watchdog = guard.as_mut().ok_or("the cluster's watchdog is gone")?;
            watchdog.send("start")?;
            let reply = watchdog.reply()?;
            watchdog.pid = Some(
                reply
                    .parse()
                    .map_err(|_| format!("the watchdog answered {reply:?} to start"))?,
            );
        }
        self.wait_ready().map_err(|failure| {
            format!(
                "the PostgreSQL server {failure} after a restart; server log ({}):\n{}",
                self.log_file.display(),
                log_tail(&self.log_file, 30)
            )
        })
    }

    /// Ends a standby's recovery (`pg_ctl promote`, not waiting): from then on it accepts
    /// connections.
    pub fn promote(&self) -> Result<(), String> {
        let pg_ctl = self.bin_dir.join("pg_ctl");
        let out = command_as(&pg_ctl, self.run_as)
            .args(["promote", "-W", "-D"])
            .arg(&self.data_dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("migrations-tests: could not run {}: {e}", pg_ctl.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "migrations-tests: {} promote failed ({}): {}",
                pg_ctl.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Watchdog>> {
        // A panic while holding the lock leaves the watchdog as usable as before.
        self.watchdog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the watchdog, which starts the server, and reads the server's process id.
    fn spawn_watchdog(&self) -> Result<Watchdog, String> {
        // The Unix socket goes into the cluster dir unless its path would be too long.
        let socket_dir = if self.dir.as_os_str().len() + 20 < 100 {
            self.dir.to_string_lossy().into_owned()
        } else {
            String::new()
        };
        let mut cmd = command_as("/bin/sh", self.run_as);
        cmd.arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("migrations-tests-watchdog")
            .arg(self.bin_dir.join("postgres"))
            .arg(&self.data_dir)
            .arg(&self.dir)
            .arg(&self.log_file)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .arg("-c")
            .arg(format!("unix_socket_directories={socket_dir}"))
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Own process group: a terminal's Ctrl-C must not stop the cleanup.
            .process_group(0);
        // Do not let the watchdog and the server hold other descriptors this process
        // inherited without close-on-exec (a caller's output pipe, say) after it is gone.
        let fd_limit = open_fd_limit();
        // SAFETY: the closure only makes async-signal-safe system calls.
        unsafe {
            cmd.pre_exec(move || {
                set_cloexec_from(3, fd_limit);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("migrations-tests: could not start /bin/sh: {e}"))?;
        let commands = child.stdin.take().expect("stdin is piped");
        let replies = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut watchdog = Watchdog {
            child,
            commands,
            replies,
            pid: None,
        };
        let reply = watchdog.reply().unwrap_or_default();
        match reply.parse::<u32>() {
            Ok(pid) => {
                watchdog.pid = Some(pid);
                Ok(watchdog)
            }
            Err(_) => {
                watchdog.finish();
                Err(format!(
                    "migrations-tests: the server watchdog (/bin/sh) did not report the \
                     server's process id (got {reply:?})"
                ))
            }
        }
    }

    /// Waits until the postmaster reports itself ready in `postmaster.pid` (as `pg_ctl -w`
    /// does; a standby: `standby`), then checks over TCP that the port is served by this very
    /// data directory.
    ///
    /// Connecting before the server is ready could reach whatever else took the port
    /// meanwhile (which may accept and never answer); once our postmaster is ready, it holds
    /// the port (a failed bind is fatal for it), so the connection reaches it.
    fn wait_ready(&self) -> Result<(), String> {
        let pid = self.pid();
        let major: u32 = self
            .version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let deadline = Instant::now() + READY_TIMEOUT;
        let pid_file = self.data_dir.join("postmaster.pid");
        let mut last_error = String::from("no connection attempt yet");
        loop {
            if !process_alive(pid) {
                return Err("exited during startup".to_string());
            }
            let contents = fs::read_to_string(&pid_file).unwrap_or_default();
            let lines: Vec<&str> = contents.lines().collect();
            let ours = lines.first().and_then(|l| l.trim().parse::<u32>().ok()) == Some(pid);
            // Line 8 is the status (PostgreSQL 10 and later); older servers: try connecting.
            let status = lines.get(7).map(|s| s.trim());
            if ours && status == Some("standby") {
                // Refuses connections (57P03) until promoted; it holds the port by now.
                return Ok(());
            }
            let ready = ours
                && if major >= 10 {
                    status == Some("ready")
                } else {
                    lines.len() >= 6
                };
            if ready {
                match Client::connect(&self.admin_url, NoTls) {
                    Ok(mut client) => {
                        let theirs = client
                            .query_one("SHOW data_directory", &[])
                            .map(|row| row.get::<_, String>(0));
                        match theirs {
                            Ok(d) if same_path(Path::new(&d), &self.data_dir) => return Ok(()),
                            Ok(d) => {
                                last_error = format!("port answered by another server (data {d})")
                            }
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
                    status.unwrap_or("none")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The error for a first start that failed: a lost port (worth another attempt) or the
    /// reason with the server log's tail.
    fn start_failure(&self, failure: &str) -> StartError {
        let log = log_tail(&self.log_file, 30);
        let port_taken = [
            "could not bind",
            "Address already in use",
            "could not create any TCP/IP sockets",
        ]
        .iter()
        .any(|s| log.contains(s));
        let message = format!(
            "migrations-tests: the throwaway PostgreSQL server ({} -D {}, port {}) {failure}. \
             Server log ({}):\n{log}{}",
            self.bin_dir.join("postgres").display(),
            self.data_dir.display(),
            self.port,
            self.log_file.display(),
            if self.run_as.is_some() && !port_taken {
                "\n(running as root: the server runs as the `postgres` user, which must be \
                 able to reach the directory; set MIGRATIONS_TEST_TMPDIR to a directory it can reach)"
            } else {
                ""
            }
        );
        if port_taken {
            StartError::PortTaken(message)
        } else {
            StartError::Fatal(message)
        }
    }
}

impl Watchdog {
    fn send(&mut self, command: &str) -> Result<(), String> {
        writeln!(self.commands, "{command}")
            .and_then(|()| self.commands.flush())
            .map_err(|e| format!("the cluster's watchdog is gone ({e})"))
    }

    /// The watchdog's next line (a process id, or `stopped`).
    fn reply(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.replies.read_line(&mut line) {
            Ok(0) => Err("the cluster's watchdog exited".to_owned()),
            Ok(_) => Ok(line.trim().to_owned()),
            Err(e) => Err(format!("reading from the cluster's watchdog: {e}")),
        }
    }

    /// Closes the watchdog's input (it stops the server and removes the directory) and waits.
    fn finish(self) {
        let Watchdog {
            mut child,
            commands,
            ..
        } = self;
        drop(commands);
        let _ = child.wait();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(watchdog) = self.lock().take() {
            watchdog.finish();
        }
        // What the watchdog does not remove: a data directory elsewhere, and a directory whose
        // removal it did not get to.
        if self.external_data {
            let _ = fs::remove_dir_all(&self.data_dir);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("dir", &self.dir)
            .field("version", &self.version)
            .field("port", &self.port)
            // Not `pid()`: formatting must not wait for (or deadlock on) a restart.
            .field(
                "pid",
                &self
                    .watchdog
                    .try_lock()
                    .ok()
                    .and_then(|w| w.as_ref().and_then(|w| w.pid)),
            )
            .finish()
    }
}

enum StartError {
    /// Another process took the port first: try again.
    PortTaken(String),
    Fatal(String),
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("migrations-tests: could not find a free port on 127.0.0.1: {e}"))
}

/// The user and group a cluster's server runs as: `postgres` when this process is root, else
/// this process's own (`None`). For files a caller makes for the server (a mount point).
pub fn server_user() -> Result<Option<(u32, u32)>, String> {
    if is_root() {
        postgres_user().map(|u| Some((u.uid, u.gid)))
    } else {
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------
// Binaries, user, directories, template
// ---------------------------------------------------------------------------------------

/// The user the server runs as when this process is root.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunAs {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub(crate) fn postgres_user() -> Result<RunAs, String> {
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

pub(crate) fn command_as(program: impl AsRef<OsStr>, run_as: Option<RunAs>) -> Command {
    let mut cmd = Command::new(program);
    // The `postgres` user may not be able to enter the caller's directory.
    cmd.current_dir("/");
    if let Some(user) = run_as {
        cmd.uid(user.uid).gid(user.gid);
    }
    cmd
}

pub(crate) fn chown_to(path: &Path, run_as: Option<RunAs>) -> Result<(), String> {
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
/// (the quickstart) that tell their user before [`crate::test_db`] would panic.
pub fn server_bin_dir() -> Result<PathBuf, String> {
    find_bin_dir()
}

/// Finds the directory holding `initdb` and `postgres`.
fn find_bin_dir() -> Result<PathBuf, String> {
    find_bin_dir_in(
        std::env::var_os("MIGRATIONS_TEST_PG_BINDIR"),
        std::env::var_os("PATH"),
        Path::new(DISTRIBUTION_ROOT),
    )
}

/// Where Debian and Ubuntu install each server version: `<root>/<version>/bin`.
const DISTRIBUTION_ROOT: &str = "/usr/lib/postgresql";

/// [`find_bin_dir`] over the given variables and distribution root (a test's own).
fn find_bin_dir_in(
    bin_dir_var: Option<OsString>,
    path: Option<OsString>,
    root: &Path,
) -> Result<PathBuf, String> {
    if let Some(dir) = bin_dir_var.filter(|d| !d.is_empty()) {
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
    if let Some(path) = &path {
        for dir in std::env::split_paths(path) {
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
    let mut pg_config = Command::new("pg_config");
    if let Some(path) = &path {
        // Also where `pg_config` itself is looked up.
        pg_config.env("PATH", path);
    }
    if let Ok(out) = pg_config.arg("--bindir").stderr(Stdio::null()).output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server_binaries(&dir) {
                return Ok(dir);
            }
        }
    }
    if let Some(dir) = newest_bin_dir(root) {
        return Ok(dir);
    }
    Err(format!(
        "migrations-tests: no PostgreSQL server binaries found (looked for `initdb` and \
         `postgres` in MIGRATIONS_TEST_PG_BINDIR, on PATH, via `pg_config --bindir` and under \
         {}/*/bin). To run the database tests, {INSTALL_HINT}.",
        root.display()
    ))
}

/// The `bin` directory of the newest version under `root` (`<root>/<version>/bin`), versions
/// compared as numbers: 15 is newer than 9.6.
fn newest_bin_dir(root: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<(Vec<u64>, PathBuf)> = fs::read_dir(root)
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
    candidates.pop().map(|(_, dir)| dir)
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
    let server = Server {
        bin_dir,
        version,
        run_as,
    };
    let result = (|| {
        chown_to(&tmp, run_as)?;
        initdb(&server, &tmp.join("data"), &[])?;
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

/// `initdb` of `data` (superuser `postgres`, trust, UTF8, C locale), with `extra` arguments.
fn initdb(server: &Server<'_>, data: &Path, extra: &[&OsStr]) -> Result<(), String> {
    let initdb = server.bin_dir.join("initdb");
    let out = command_as(&initdb, server.run_as)
        .arg("-D")
        .arg(data)
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
        .args(extra)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("migrations-tests: could not run {}: {e}", initdb.display()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "migrations-tests: {} failed ({}) for {}:\n{}{}{}",
        initdb.display(),
        out.status,
        data.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        if server.run_as.is_some() {
            "\n(running as root: the `postgres` user must be able to write there; \
             set MIGRATIONS_TEST_TMPDIR to a directory it can reach, e.g. /tmp)"
        } else {
            ""
        }
    ))
}

/// Copies the template's data directory to `data` (`cp -a`: owners and modes kept).
fn copy_template(template: &Path, data: &Path) -> Result<(), String> {
    let out = Command::new("cp")
        .arg("-a")
        .arg(template.join("data"))
        .arg(data)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("migrations-tests: could not run `cp`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "migrations-tests: copying the template cluster {} failed: {}",
            template.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
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

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn fake_server_binaries(dir: &Path) {
        fs::create_dir_all(dir).unwrap();
        for binary in ["initdb", "postgres"] {
            fs::write(dir.join(binary), "").unwrap();
        }
    }

    #[test]
    fn the_newest_version_is_compared_as_numbers() {
        let root = tempfile::tempdir().unwrap();
        for version in ["9.6", "15", "10", "14"] {
            fake_server_binaries(&root.path().join(version).join("bin"));
        }
        // Not a version, and a version without the binaries: both passed over.
        fake_server_binaries(&root.path().join("common").join("bin"));
        fs::create_dir_all(root.path().join("16").join("bin")).unwrap();
        let found = find_bin_dir_in(None, Some(OsString::new()), root.path()).unwrap();
        assert_eq!(found, root.path().join("15").join("bin"));
    }

    #[test]
    fn no_server_binaries_says_what_to_install() {
        let root = tempfile::tempdir().unwrap();
        let e = find_bin_dir_in(None, Some(OsString::new()), root.path()).unwrap_err();
        assert_eq!(
            e,
            format!(
                "migrations-tests: no PostgreSQL server binaries found (looked for `initdb` and \
                 `postgres` in MIGRATIONS_TEST_PG_BINDIR, on PATH, via `pg_config --bindir` and \
                 under {}/*/bin). To run the database tests, install the PostgreSQL server \
                 binaries (Debian/Ubuntu: `apt-get install postgresql-15` or `apt-get install \
                 postgresql`; Fedora: `dnf install postgresql-server`; macOS: `brew install \
                 postgresql`) and put their directory on PATH or in MIGRATIONS_TEST_PG_BINDIR, or \
                 set DATABASE_URL to a server where the role may create databases.",
                root.path().display()
            )
        );
        let e = find_bin_dir_in(Some(root.path().into()), None, root.path()).unwrap_err();
        assert_eq!(
            e,
            format!(
                "migrations-tests: MIGRATIONS_TEST_PG_BINDIR={} does not contain both `initdb` \
                 and `postgres`; point it at the PostgreSQL server's bin directory (e.g. \
                 /usr/lib/postgresql/15/bin) or unset it",
                root.path().display()
            )
        );
    }
}
