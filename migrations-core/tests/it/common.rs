//! Shared pieces of the engine tests: migration directories written to a temp dir, and one
//! `Driver` that runs the same call through the sync or the async API.
#![allow(clippy::result_large_err)] // the core's error is returned once per run
#![allow(dead_code)]

use std::fs;
use std::path::Path;

use migrations_core::plan::StatusLine;
use migrations_core::{Error, Migrations, Migrator, Operation, Report};
use migrations_tests::TestDb;

/// A migrations directory in a temp dir.
pub struct Dir(pub tempfile::TempDir);

impl Dir {
    pub fn new(files: &[(&str, &str)]) -> Dir {
        let dir = Dir(tempfile::tempdir().unwrap());
        for (path, text) in files {
            dir.write(path, text);
        }
        dir
    }

    pub fn write(&self, path: &str, text: &str) {
        let full = self.0.path().join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, text).unwrap();
    }

    pub fn remove(&self, path: &str) {
        fs::remove_file(self.0.path().join(path)).unwrap();
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn load(&self) -> Migrations {
        Migrations::from_dir(self.path()).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Which API a test goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Sync,
    Async,
}

impl Driver {
    /// Runs `operation` with a migrator configured by `configure`.
    pub fn execute(
        self,
        db: &TestDb,
        migrations: &Migrations,
        operation: &Operation,
        configure: impl FnOnce(Migrator<'_>) -> Migrator<'_>,
    ) -> Result<Report, Error> {
        let mut migrator = configure(Migrator::new(migrations));
        match self {
            Driver::Sync => {
                let mut client = db.connect();
                migrator.execute(&mut client, operation)
            }
            Driver::Async => runtime().block_on(async {
                let mut client = connect_async(db.url()).await;
                migrator.execute_async(&mut client, operation).await
            }),
        }
    }

    pub fn up(self, db: &TestDb, migrations: &Migrations) -> Result<Report, Error> {
        self.execute(db, migrations, &Operation::Up { to: None }, |m| m)
    }

    pub fn status(self, db: &TestDb, migrations: &Migrations) -> Vec<StatusLine> {
        let migrator = Migrator::new(migrations);
        match self {
            Driver::Sync => migrator.status(&mut db.connect()).unwrap(),
            Driver::Async => runtime().block_on(async {
                let mut client = connect_async(db.url()).await;
                migrator.status_async(&mut client).await.unwrap()
            }),
        }
    }

    pub fn repair(
        self,
        db: &TestDb,
        migrations: &Migrations,
        version: Option<i64>,
        accept_checksum: bool,
    ) -> Result<Vec<String>, Error> {
        let mut migrator = Migrator::new(migrations);
        match self {
            Driver::Sync => migrator.repair(&mut db.connect(), version, accept_checksum),
            Driver::Async => runtime().block_on(async {
                let mut client = connect_async(db.url()).await;
                migrator
                    .repair_async(&mut client, version, accept_checksum)
                    .await
            }),
        }
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub async fn connect_async(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Runs a query on a fresh connection and returns the first column of each row as text.
pub fn column(db: &TestDb, sql: &str) -> Vec<Option<String>> {
    let mut client = db.connect();
    client
        .simple_query(sql)
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_owned)),
            _ => None,
        })
        .collect()
}

pub fn scalar(db: &TestDb, sql: &str) -> Option<String> {
    column(db, sql).into_iter().next().flatten()
}

/// A runner asleep in its no-transaction step: a directory whose migration 2 builds an index
/// concurrently, then sleeps 30 s, run by a thread of its own (sync driver) until its backend
/// is in the sleep. Returns the directory's migrations and the runner, whose result comes
/// when its backend is ended with [`end_sleeping_runner`].
pub fn runner_asleep_in_a_no_transaction_step(
    db: &TestDb,
) -> (Migrations, std::thread::JoinHandle<Result<(), Error>>) {
    let d = Dir::new(&[
        ("1_t.up.sql", "CREATE TABLE t (a int);\n"),
        (
            "2_slow.up.sql",
            "-- migrations:no-transaction\n\
             CREATE INDEX CONCURRENTLY t_a ON t (a);\n\
             SELECT pg_sleep(30);\n",
        ),
    ]);
    let m = d.load();
    let url = db.url().to_owned();
    let runner = std::thread::spawn(move || {
        let m = Migrations::from_dir(d.path()).unwrap();
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let result = Migrator::new(&m).run(&mut client).map(|_| ());
        drop(d);
        result
    });
    let started = std::time::Instant::now();
    while scalar(db, SLEEPING_RUNNER).is_none() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "never reached the sleep"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (m, runner)
}

/// The backend of [`runner_asleep_in_a_no_transaction_step`]'s runner, in this test's database
/// only (tests run at the same time, each in a database of its own).
const SLEEPING_RUNNER: &str = "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' \
                               AND state = 'active' AND pid <> pg_backend_pid() \
                               AND datname = current_database()";

/// Ends the sleeping runner's backend, as a crash of the server process or a cut network
/// would.
pub fn end_sleeping_runner(db: &TestDb) {
    scalar(
        db,
        &format!("SELECT pg_terminate_backend(pid) FROM ({SLEEPING_RUNNER}) s"),
    );
}

pub fn table_exists(db: &TestDb, name: &str) -> bool {
    scalar(db, &format!("SELECT to_regclass('{name}') IS NOT NULL")).as_deref() == Some("t")
}

/// Declares a test once per driver: `behaviour!(name, |driver| { ... })` (in scope in every
/// module declared after `#[macro_use] mod common;` in `main.rs`).
macro_rules! behaviour {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn sync() {
                ($body)(Driver::Sync)
            }
            #[test]
            fn r#async() {
                ($body)(Driver::Async)
            }
        }
    };
}

/// The harness's [`migrations_tests::libtest_name`]: a helper test's name for `--exact`.
pub fn test_name(module_path: &str, test: &str) -> String {
    migrations_tests::libtest_name(module_path, test)
}
