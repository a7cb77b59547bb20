//! The real crates.io migration history (SPEC 8) through the engine on a real PostgreSQL:
//! all 285 migrations load and apply, a second `up` is a warm no-op, and every down file is
//! run newest first, one at a time. Real down files do not all succeed: the ones that fail,
//! and how, are pinned ([`DOWN_FAILURES`]), so a down that starts failing (or stops) turns the
//! test red; each failure is a typed error naming the migration, and the failures are printed
//! as a table.
//!
//! The corpus is `../corpus/crates.io/migrations` from this crate, or the directory
//! in `MIGRATIONS_CORPUS_DIR`.

// As in the library: a run returns at most one error, so its size costs nothing (the shared
// helpers in `common` return `Result<_, Error>`).
#![allow(clippy::result_large_err)]

use std::time::Instant;

use crate::common::{column, scalar, Driver};
use migrations_core::plan::Direction;
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

/// The corpus's down files that fail in the walk (newest first, one at a time), and how: the
/// server's SQLSTATE, or `refused` for a statement refused inside a transaction before anything
/// runs. A failed down's history row is deleted by hand so the walk goes on, so some downs fail
/// because a newer down failed, or did not restore what they drop.
const DOWN_FAILURES: &[(i64, &str)] = &[
    // The down drops a constraint, but the up made a unique index, not a constraint.
    (20241025112826, "42704"),
    // CREATE INDEX CONCURRENTLY in a transactional down: refused before it runs.
    (20240412144536, "refused"),
    // fk_crate_downloads_crate_id is gone: the down of 2019-03-22 remove_crate_downloads
    // recreated the table with an unnamed foreign key.
    (20170708133715, "42704"),
    // The down's line 1 lacks its `;`: a syntax error at line 2.
    (20170318181441, "42601"),
    // crates.downloads is gone: the down of 2024-04-12 remove-downloads-column failed, so
    // the column never came back.
    (20151126095136, "42703"),
    // fk_version_authors_user_id is gone: the down of 2021-04-24 remove_version_authors
    // recreated the table without user_id, and 2020-02-14's down added it back without it.
    (20141007131147, "42704"),
    // fk_crate_downloads_crate_id is gone (as for 2017-07-08 above).
    (20141002222426, "42704"),
    // users.email is gone for good: the down of 2019-11-11 drop_email_from_user is a no-op.
    (20141001190230, "42703"),
    // The index is gone: the down of 2014-09-30 dumped_migration_36 recreated
    // version_dependencies without its indexes.
    (20140929103755, "42704"),
    // The same, for the other index on version_dependencies.
    (20140929103754, "42704"),
    // The index on crates.downloads went with the column (as for 2015-11-26 above).
    (20140929103751, "42704"),
    // packages.downloads (crates.downloads before the rename) is gone (as for 2015-11-26).
    (20140925161623, "42703"),
];

/// A down that failed: which, how, and what the engine said.
struct DownFailure {
    version: i64,
    name: String,
    kind: String,
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
                let (version, spelling, name, kind) = match &err {
                    Error::Migration {
                        version,
                        spelling,
                        name,
                        direction: Direction::Down,
                        source,
                        ..
                    } => (
                        *version,
                        spelling.clone(),
                        name.clone(),
                        source.code.clone().unwrap_or_else(|| "no SQLSTATE".into()),
                    ),
                    Error::RefusedInTransaction {
                        version,
                        spelling,
                        name,
                        direction: Direction::Down,
                        ..
                    } => (
                        *version,
                        spelling.clone(),
                        name.clone(),
                        "refused".to_owned(),
                    ),
                    other => {
                        panic!("down {top} failed with an unexpected kind of error: {other:?}")
                    }
                };
                assert_eq!((version, name.as_str()), (top, m.name()), "{text}");
                // Spelled as diesel's folder writes it (`2024-10-25-112826`), dashes and all.
                let folder = m
                    .down()
                    .unwrap()
                    .path()
                    .rsplit('/')
                    .nth(1)
                    .unwrap_or_default();
                assert!(
                    folder.starts_with(&format!("{spelling}_")),
                    "{spelling}: {folder}"
                );
                assert!(
                    text.starts_with(&format!("down {spelling} {} ", m.name()))
                        || text.starts_with(&format!("down {spelling} {}:", m.name())),
                    "the message names the migration: {text}"
                );
                failures.push(DownFailure {
                    version,
                    name,
                    kind,
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
    eprintln!("{:<16} | {:<45} | {:<7} | error", "version", "name", "kind");
    for f in &failures {
        eprintln!(
            "{:<16} | {:<45} | {:<7} | {}",
            f.version,
            f.name,
            f.kind,
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
    let found: Vec<(i64, &str)> = failures
        .iter()
        .map(|f| (f.version, f.kind.as_str()))
        .collect();
    assert_eq!(found, DOWN_FAILURES, "the downs that fail, newest first");
    assert_eq!(reverted, CORPUS_SIZE - DOWN_FAILURES.len());
}
