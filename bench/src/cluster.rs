//! A throwaway PostgreSQL cluster of the benchmark's own, so the durability settings
//! (fsync on or off) are ours to choose and both runs use the same server binaries. It lives on
//! the disk (not /dev/shm), so fsync=on means what it says.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    pub version: String,
    as_postgres: bool,
    counter: u32,
}

fn bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("postgres").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .filter(|d| d.join("postgres").exists())
        .expect("no PostgreSQL server binaries (pg_config --bindir, /usr/lib/postgresql/*/bin)")
}

impl Cluster {
    pub fn start(fsync: bool, stat_statements: bool) -> Cluster {
        let bin = bin_dir();
        let as_postgres = unsafe_is_root();
        let base = std::env::temp_dir().join(format!(
            "migrations-bench-{}-{}",
            std::process::id(),
            if fsync { "fsync-on" } else { "fsync-off" }
        ));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let data = base.join("data");
        if as_postgres {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&base)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown postgres {}", base.display());
        }
        let mut initdb = Vec::new();
        initdb.push(bin.join("initdb").to_string_lossy().into_owned());
        initdb.extend(
            [
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
            .map(String::from),
        );
        run(as_postgres, &initdb, "initdb");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let durability = if fsync {
            "-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
        } else {
            // The test harness's settings.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} {durability} \
             -c wal_level=minimal -c max_wal_senders=0 -c shared_buffers=128MB \
             -c max_wal_size=8GB -c checkpoint_timeout=1h -c autovacuum=off -c jit=off \
             -c max_connections=50{}",
            base.display(),
            if stat_statements {
                " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
            } else {
                ""
            }
        );
        let pg_ctl = vec![
            bin.join("pg_ctl").to_string_lossy().into_owned(),
            "-D".into(),
            data.to_string_lossy().into_owned(),
            "-l".into(),
            base.join("postgres.log").to_string_lossy().into_owned(),
            "-o".into(),
            options,
            "-w".into(),
            "-t".into(),
            "60".into(),
            "start".into(),
        ];
        run(as_postgres, &pg_ctl, "pg_ctl start");
        let mut cluster = Cluster {
            dir: base,
            bin,
            port,

            version: String::new(),
            as_postgres,
            counter: 0,
        };
        let mut admin = cluster.admin();
        cluster.version = admin
            .query_one("SHOW server_version", &[])
            .unwrap()
            .get::<_, String>(0);
        let shown: String = admin.query_one("SHOW fsync", &[]).unwrap().get(0);
        assert_eq!(shown == "on", fsync, "fsync setting not taken");
        cluster
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn url_via(&self, port: u16, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{db}")
    }

    pub fn admin(&self) -> Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match Client::connect(&self.url("postgres"), NoTls) {
                Ok(c) => return c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => panic!("connecting to the bench cluster: {e}"),
            }
        }
    }

    /// A fresh empty database; also a checkpoint first, so no run pays for the previous one's
    /// dirty pages.
    pub fn fresh_db(&mut self, label: &str) -> String {
        self.counter += 1;
        let name = format!("b{}_{label}", self.counter);
        let mut admin = self.admin();
        admin.batch_execute("CHECKPOINT").unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
        name
    }

    /// The process id of the (one) client backend connected to database `name`.
    pub fn backend_pid(&self, name: &str) -> i32 {
        let mut admin = self.admin();
        admin
            .query_one(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
                 AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                &[&name],
            )
            .unwrap()
            .get(0)
    }

    pub fn drop_db(&self, name: &str) {
        let mut admin = self.admin();
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .unwrap();
    }

    pub fn setting(&self, name: &str) -> String {
        self.admin()
            .query_one(&format!("SHOW {name}"), &[])
            .unwrap()
            .get(0)
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pg_ctl = vec![
            self.bin.join("pg_ctl").to_string_lossy().into_owned(),
            "-D".into(),
            self.dir.join("data").to_string_lossy().into_owned(),
            "-m".into(),
            "immediate".into(),
            "-w".into(),
            "stop".into(),
        ];
        run(self.as_postgres, &pg_ctl, "pg_ctl stop");
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn run(as_postgres: bool, argv: &[String], what: &str) {
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]);
        c.args(argv);
        c
    } else {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    let out = cmd
        .env("LC_ALL", "C")
        .current_dir("/")
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
