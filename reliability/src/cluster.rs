//! A PostgreSQL cluster of our own (not the test harness's shared one), so that it can be
//! restarted and crashed at will: `initdb` into a temporary directory, `pg_ctl` to start,
//! stop and restart it. When this process runs as root, the server runs as the `postgres`
//! user (PostgreSQL refuses root). Dropping the value stops the server (immediate mode) and
//! removes the directory.

use std::ffi::CString;
use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running cluster of our own; stopped and removed on drop.
pub struct Cluster {
    dir: PathBuf,
    data: PathBuf,
    log: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
}

/// Server settings for fast, disposable runs (durability is not what is tested: the server's
/// crash recovery is, and it works with these).
const SETTINGS: &[&str] = &[
    "listen_addresses='127.0.0.1'",
    "max_connections=100",
    "shared_buffers=32MB",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "autovacuum=off",
    "jit=off",
];

impl Cluster {
    /// `initdb` and start a cluster; `hba` lines go first in `pg_hba.conf`, `conf` lines at
    /// the end of `postgresql.conf`, and `files` are written into the data directory (owned
    /// by the server's user, mode 0600) before the server starts.
    pub fn start(
        hba: &[String],
        conf: &[String],
        files: &[(&str, &[u8])],
    ) -> Result<Cluster, String> {
        Cluster::start_in(None, hba, conf, files)
    }

    /// Like [`Cluster::start`], but with the data directory at `<data_parent>/data` (for
    /// example on a small file system that is meant to fill up) when given. The WAL then stays
    /// in the cluster's own directory (`initdb --waldir`): a full WAL file system makes the
    /// server PANIC and restart, while a full data file system is an ordinary error (53100)
    /// for the statement that needed the space.
    pub fn start_in(
        data_parent: Option<&Path>,
        hba: &[String],
        conf: &[String],
        files: &[(&str, &[u8])],
    ) -> Result<Cluster, String> {
        let bin_dir = find_bin_dir()?;
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(postgres_user()?)
        } else {
            None
        };
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "reliability-pg-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            crate::rng::clock_seed()
        ));
        fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let cluster = Cluster {
            data: data_parent.map_or_else(|| dir.join("data"), |p| p.join("data")),
            log: dir.join("postgres.log"),
            dir,
            bin_dir,
            port: free_port()?,
            run_as,
        };
        cluster.chown(&cluster.dir)?;
        let mut initdb = cluster.command("initdb");
        initdb.arg("-D").arg(&cluster.data);
        if data_parent.is_some() {
            initdb.arg("--waldir").arg(cluster.dir.join("wal"));
        }
        let out = initdb
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
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        check("initdb", &out)?;
        let hba_file = cluster.data.join("pg_hba.conf");
        let old = fs::read_to_string(&hba_file).map_err(|e| e.to_string())?;
        let mut new = String::new();
        for line in hba {
            new.push_str(line);
            new.push('\n');
        }
        new.push_str(&old);
        cluster.write_server_file("pg_hba.conf", new.as_bytes())?;
        let conf_file = cluster.data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf_file).map_err(|e| e.to_string())?;
        for line in SETTINGS
            .iter()
            .map(|s| s.to_string())
            .chain(conf.iter().cloned())
        {
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str(&format!(
            "port={}\nunix_socket_directories='{}'\n",
            cluster.port,
            cluster.dir.display()
        ));
        cluster.write_server_file("postgresql.conf", text.as_bytes())?;
        for (name, contents) in files {
            cluster.write_server_file(name, contents)?;
        }
        cluster.pg_ctl(&["start", "-w", "-t", "60"])?;
        Ok(cluster)
    }

    /// The TCP port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's log file.
    pub fn log_file(&self) -> &Path {
        &self.log
    }

    /// URL of database `db` as superuser `postgres` (trust authentication).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` (as `postgres`).
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        let mut admin = crate::check::connect(&self.url("postgres"))?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))
    }

    /// `pg_ctl restart -m immediate`: every session is killed at once, no checkpoint; the
    /// server goes through crash recovery when it starts again.
    pub fn restart_immediate(&self) -> Result<(), String> {
        self.pg_ctl(&["restart", "-m", "immediate", "-w", "-t", "60"])
    }

    /// `pg_ctl stop -m immediate`.
    pub fn stop_immediate(&self) -> Result<(), String> {
        self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "60"])
    }

    /// `pg_ctl start` after a stop.
    pub fn start_again(&self) -> Result<(), String> {
        self.pg_ctl(&["start", "-w", "-t", "60"])
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(args)
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        check(&format!("pg_ctl {}", args.join(" ")), &out).map_err(|e| {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            format!(
                "{e}\nserver log (last lines, newest first):\n{}",
                tail.join("\n")
            )
        })
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command
            .current_dir("/")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }

    fn chown(&self, path: &Path) -> Result<(), String> {
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Writes a file in the data directory, owned by the server's user, mode 0600.
    pub fn write_server_file(&self, name: &str, contents: &[u8]) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.data.join(name);
        fs::write(&path, contents).map_err(|e| format!("write {}: {e}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
        self.chown(&path)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop_immediate();
        let _ = fs::remove_dir_all(&self.data);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn check(what: &str, out: &Output) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `MIGRATIONS_TEST_PG_BINDIR`,
/// `pg_config --bindir`, `initdb` on `PATH`, or the newest `/usr/lib/postgresql/*/bin`.
fn find_bin_dir() -> Result<PathBuf, String> {
    let ok = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = std::env::var_os("MIGRATIONS_TEST_PG_BINDIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && ok(&dir) {
            return Ok(dir);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if let Ok(real) = fs::canonicalize(dir.join("initdb")) {
                if let Some(parent) = real.parent().filter(|p| ok(p)) {
                    return Ok(parent.to_path_buf());
                }
            }
        }
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            ok(&bin).then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, dir)| dir)
        .ok_or_else(|| "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found".to_owned())
}

/// The user and group the server runs as: `postgres` when this process is root, else this
/// process's own (`None`).
pub fn server_user() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        postgres_user().map(Some)
    } else {
        Ok(None)
    }
}

fn postgres_user() -> Result<(u32, u32), String> {
    let name = CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns a pointer to static storage or NULL; read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err("running as root, but there is no `postgres` user to run the server".into());
    }
    // SAFETY: non-null pointer from getpwnam.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok((uid, gid))
}

/// Waits until `url` accepts connections (at most `limit`).
pub fn wait_ready(url: &str, limit: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        match crate::check::connect(url) {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > limit => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
