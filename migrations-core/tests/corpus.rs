//! The real crates.io migration history (SPEC 8) through the engine on a real PostgreSQL:
//! all 285 migrations load and apply, a second `up` is a warm no-op, and every down file is
//! run newest first, one at a time. Real down files do not all succeed; the test does not ask
//! them to, only that each failure is reported clearly (a typed error naming the migration),
//! and prints the failures as a table.
//!
//! The corpus is `../corpus/crates.io/migrations` from this crate, or the directory
//! in `MIGRATIONS_CORPUS_DIR`.

// As in the library: a run returns at most one error, so its size costs nothing (the shared
// helpers in `common` return `Result<_, Error>`).
#![allow(clippy::result_large_err)]

mod common;

use std::time::Instant;

use common::{column, scalar, Driver};
use migrations_core::{DownTarget, Error, Migrations, Operation};
use migrations_tests::test_db;

const CORPUS_SIZE: usize = 285;
const CORPUS_NO_TRANSACTION: usize = 7;

/// The corpus in a temp dir, with the stray data file ignored.
fn load_corpus() -> (tempfile::TempDir, Migrations) {
    let copy = migrations_tests::corpus_copy();
    let migrations = Migrations::from_dir(copy.path()).unwrap_or_else(|e| panic!("{e}"));
    (copy, migrations)
}

fn count(db: &migrations_tests::TestDb, sql: &str) -> usize {
    scalar(db, sql).unwrap().parse().unwrap()
}

/// A down that failed: which, and what the engine said.
struct DownFailure {
    version: i64,
    name: String,
    error: String,
}

#[test]
fn crates_io_corpus_applies_then_reverts_one_by_one() {
    let (_copy, migrations) = load_corpus();
    assert_eq!(migrations.len(), CORPUS_SIZE);
    assert_eq!(
        migrations.iter().filter(|m| m.no_transaction()).count(),
        CORPUS_NO_TRANSACTION
    );
    assert!(migrations.iter().all(|m| m.down().is_some()));

    let db = test_db();
    let driver = Driver::Sync;
    let started = Instant::now();
    let report = driver
        .up(&db, &migrations)
        .unwrap_or_else(|e| panic!("{e}"));
    let wall = started.elapsed();
    eprintln!(
        "applied {} crates.io migrations in {wall:?} (report: {:?})",
        report.ran.len(),
        report.duration
    );
    assert_eq!(report.ran.len(), CORPUS_SIZE);
    assert_eq!(
        report.ran.iter().filter(|r| r.no_transaction).count(),
        CORPUS_NO_TRANSACTION
    );
    let expected: Vec<i64> = migrations.iter().map(|m| m.version()).collect();
    let ran: Vec<i64> = report.ran.iter().map(|r| r.version).collect();
    assert_eq!(ran, expected, "applied in order");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM public.migrations_history WHERE state = 'applied'"
        ),
        CORPUS_SIZE
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM public.migrations_history WHERE no_transaction"
        ),
        CORPUS_NO_TRANSACTION
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM pg_index WHERE NOT indisvalid"),
        0
    );

    let again = driver.up(&db, &migrations).unwrap();
    assert!(again.up_to_date_fast, "{again:?}");
    assert!(again.ran.is_empty());

    // Down, newest first, one at a time. A failed down is recorded, its row deleted by hand so
    // the walk can go on, and the next one tried.
    let started = Instant::now();
    let mut reverted = 0;
    let mut failures: Vec<DownFailure> = Vec::new();
    for _ in 0..CORPUS_SIZE {
        // The newest applied migration, in the corpus's own order.
        let applied: Vec<i64> = column(&db, "SELECT version::text FROM public.migrations_history")
            .into_iter()
            .map(|v| v.unwrap().parse().unwrap())
            .collect();
        let Some(m) = migrations
            .iter()
            .rev()
            .find(|m| applied.contains(&m.version()))
        else {
            break;
        };
        let top = m.version();
        match driver.execute(
            &db,
            &migrations,
            &Operation::Down(DownTarget::Count(1)),
            |m| m,
        ) {
            Ok(report) => {
                let ran: Vec<i64> = report.ran.iter().map(|r| r.version).collect();
                assert_eq!(ran, vec![top], "down reverts the newest applied migration");
                reverted += 1;
            }
            Err(err) => {
                let text = err.to_string();
                let (version, name) = match &err {
                    Error::Migration {
                        version,
                        name,
                        direction: "down",
                        ..
                    }
                    | Error::RefusedInTransaction {
                        version,
                        name,
                        direction: "down",
                        ..
                    } => (*version, name.clone()),
                    other => {
                        panic!("down {top} failed with an unexpected kind of error: {other:?}")
                    }
                };
                assert_eq!((version, name.as_str()), (top, m.name()), "{text}");
                assert!(
                    text.starts_with(&format!("down {top} {} ", m.name()))
                        || text.starts_with(&format!("down {top} {}:", m.name())),
                    "the message names the migration: {text}"
                );
                failures.push(DownFailure {
                    version,
                    name,
                    error: text,
                });
                db.connect()
                    .batch_execute(&format!(
                        "DELETE FROM public.migrations_history WHERE version = {top}"
                    ))
                    .unwrap();
            }
        }
    }
    let down_time = started.elapsed();
    assert_eq!(
        count(&db, "SELECT count(*) FROM public.migrations_history"),
        0
    );

    eprintln!("\ndown files that failed (newest first):");
    eprintln!("{:<16} | {:<45} | error", "version", "name");
    for f in &failures {
        eprintln!(
            "{:<16} | {:<45} | {}",
            f.version,
            f.name,
            f.error.replace('\n', " ")
        );
    }
    eprintln!(
        "\n{} migrations: {reverted} reverted, {} down files failed; apply {wall:?}, down walk \
         {down_time:?}",
        CORPUS_SIZE,
        failures.len()
    );
    assert_eq!(reverted + failures.len(), CORPUS_SIZE);
}
