//! The benchmark's cluster: the test harness's throwaway cluster
//! ([`migrations_tests::ClusterBuilder`], the one implementation), of our own so the durability
//! settings (fsync on or off) are ours to choose and both runs use the same server binaries. It
//! lives on the disk (the temporary directory, not /dev/shm), so fsync=on means what it says.

use std::path::Path;
use std::time::{Duration, Instant};

use migrations_tests::ClusterBuilder;
use postgres::{Client, NoTls};

pub struct Cluster {
    server: migrations_tests::Cluster,
    pub port: u16,
    pub version: String,
    counter: u32,
}

impl Cluster {
    pub fn start(fsync: bool, stat_statements: bool) -> Cluster {
        let durability = if fsync { "on" } else { "off" };
        let mut builder = ClusterBuilder::new()
            .base_dir(&std::env::temp_dir())
            .setting("fsync", durability)
            .setting("synchronous_commit", durability)
            .setting("full_page_writes", durability)
            .setting("shared_buffers", "128MB")
            .setting("max_wal_size", "8GB")
            .setting("checkpoint_timeout", "1h")
            .setting("max_connections", "50");
        if stat_statements {
            builder = builder
                .setting("shared_preload_libraries", "pg_stat_statements")
                .setting("pg_stat_statements.track", "all");
        }
        let server = builder.start().unwrap_or_else(|e| panic!("{e}"));
        let mut cluster = Cluster {
            port: server.port(),
            version: String::new(),
            server,
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
        self.server.url(db)
    }

    pub fn url_via(&self, port: u16, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{db}")
    }

    pub fn admin(&self) -> Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match Client::connect(&self.url("postgres"), NoTls) {
                Ok(c) => return c,
                Err(_) if Instant::now() < deadline => {
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
        self.server.dir()
    }
}
