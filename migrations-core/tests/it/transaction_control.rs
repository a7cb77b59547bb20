//! Statements that would break the transaction the runner wraps a file in (issue 18): an up
//! file does not load, a down file is refused before anything runs, and the database keeps
//! its rows, its schema and its history. Through the sync and the async driver, for a set
//! loaded at run time and one embedded by the macro.
#![allow(clippy::result_large_err)] // the core's error is returned once per run

use crate::common::{column, scalar, table_exists, Dir, Driver};
use migrations_core::{embed_migrations, DownTarget, Error, Migrations, Operation};
use migrations_format::ProblemKind;
use migrations_tests::{test_db, TestDb};

static EMBEDDED: Migrations = embed_migrations!("tests/fixtures/commit_in_down");

const UP: &str = "CREATE TABLE t (x text);\nINSERT INTO t VALUES ('kept');\n";
const DOWN: &str = "-- A COMMIT here would commit the DELETE without removing the history row.\n\
                    DELETE FROM t;\nCOMMIT;\nDROP TABLE t;\n";
const REFUSED: &str = "down 1 t: line 3: `COMMIT` would break the transaction the runner wraps \
                       this file in (the file and its history record commit together); drop \
                       the statement, or add `-- migrations:no-transaction` as the first line \
                       of the file";

/// The state a refused down must leave alone: the table, its row, the history row and audit.
fn state(db: &TestDb) -> Vec<Option<String>> {
    let mut state = column(db, "SELECT x FROM t ORDER BY x");
    state.extend(column(
        db,
        "SELECT version || ' ' || state FROM public.migrations_history ORDER BY version",
    ));
    state.extend(column(
        db,
        "SELECT event FROM public.migrations_history_audit ORDER BY id",
    ));
    state
}

fn down_is_refused_before_anything_runs(driver: Driver, migrations: &Migrations) {
    let db = test_db();
    driver.up(&db, migrations).unwrap();
    let before = state(&db);
    assert_eq!(before[..2], [Some("kept".into()), Some("1 applied".into())]);
    let err = driver
        .execute(
            &db,
            migrations,
            &Operation::Down(DownTarget::Count(1)),
            |m| m,
        )
        .unwrap_err();
    assert_eq!(err.to_string(), REFUSED);
    assert!(
        matches!(&err, Error::RefusedInTransaction { line: 3, what, .. } if what == "COMMIT"),
        "{err:?}"
    );
    assert!(table_exists(&db, "t"));
    assert_eq!(state(&db), before, "the refused down changed the database");
    // And the lock is free: another run gets it at once.
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = \
             (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        Some("0".into())
    );
}

behaviour!(commit_in_a_loaded_down_is_refused, |driver: Driver| {
    let dir = Dir::new(&[("1_t.up.sql", UP), ("1_t.down.sql", DOWN)]);
    down_is_refused_before_anything_runs(driver, &dir.load());
});

behaviour!(commit_in_an_embedded_down_is_refused, |driver: Driver| {
    down_is_refused_before_anything_runs(driver, &EMBEDDED);
});

behaviour!(
    the_same_down_runs_when_marked_no_transaction,
    |driver: Driver| {
        let db = test_db();
        let down = format!("-- migrations:no-transaction\n{DOWN}");
        let dir = Dir::new(&[("1_t.up.sql", UP), ("1_t.down.sql", &down)]);
        let m = dir.load();
        driver.up(&db, &m).unwrap();
        driver
            .execute(&db, &m, &Operation::Down(DownTarget::Count(1)), |m| m)
            .unwrap();
        assert!(!table_exists(&db, "t"));
        assert_eq!(
            scalar(&db, "SELECT count(*) FROM public.migrations_history"),
            Some("0".into())
        );
    }
);

#[test]
fn the_reproduction_does_not_load() {
    // `INSERT; COMMIT; INSERT` used to commit the first row with no history row.
    let dir = Dir::new(&[(
        "1_t.up.sql",
        "CREATE TABLE t (x text);\nINSERT INTO t VALUES ('a');\nCOMMIT;\nINSERT INTO t VALUES ('x');\n",
    )]);
    let err = Migrations::from_dir(dir.path()).unwrap_err();
    assert_eq!(err.kinds(), [ProblemKind::TransactionControl]);
    assert_eq!(
        err.to_string(),
        format!(
            "{}: `COMMIT` would break the transaction the runner wraps this file in (the file \
             and its history record commit together); drop the statement, or add \
             `-- migrations:no-transaction` as the first line of the file",
            dir.path().join("1_t.up.sql:3").display()
        )
    );
}
