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
