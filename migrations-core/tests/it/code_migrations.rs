//! Rust-code migrations (`Migrations::with_code`) through the engine, on a real server, with
//! both drivers: a function that reads rows and writes derived ones, in the migration's
//! transaction with its history row; a failing function leaves nothing; down; the checksum
//! in the history; a binary without the function (the CLI) sees "code", not drift; the
//! offline script refuses; a version collision is refused naming both.

use migrations_core::plan::{Direction, DownTarget, Operation, Status};
use migrations_core::{
    offline_script, CodeFuture, CodeMigration, CodeTx, Error, Migrations, Names, OfflineRange,
};

use migrations_tests::test_db;

use crate::common::*;

/// Reads every user's email and writes its domain, computed in Rust.
fn domains_up(tx: &mut CodeTx) -> CodeFuture<'_> {
    Box::pin(async move {
        let rows = tx
            .query("SELECT id, email FROM users WHERE domain IS NULL ORDER BY id")
            .await?;
        for row in rows {
            let (Some(id), Some(email)) = (&row[0], &row[1]) else {
                continue;
            };
            let domain = email.rsplit('@').next().unwrap_or_default().to_lowercase();
            tx.execute(&format!(
                "UPDATE users SET domain = {} WHERE id = {id}",
                CodeTx::literal(&domain)
            ))
            .await?;
        }
        Ok(())
    })
}

fn domains_down(tx: &mut CodeTx) -> CodeFuture<'_> {
    Box::pin(async move {
        tx.execute("UPDATE users SET domain = NULL").await?;
        Ok(())
    })
}

const DOMAINS: CodeMigration = CodeMigration::new(2, "domains", "1", domains_up).down(domains_down);

/// Writes a row, then fails with its own error: nothing of it may stay.
fn half_then_error(tx: &mut CodeTx) -> CodeFuture<'_> {
    Box::pin(async move {
        tx.execute("UPDATE users SET domain = 'half'").await?;
        Err("the backfill found an email without @".into())
    })
}

/// Writes a row, then sends SQL the server refuses.
fn half_then_bad_sql(tx: &mut CodeTx) -> CodeFuture<'_> {
    Box::pin(async move {
        tx.execute("UPDATE users SET domain = 'half'").await?;
        tx.execute("SELECT * FROM no_such_table").await?;
        Ok(())
    })
}

fn files() -> Dir {
    Dir::new(&[
        (
            "1_users.up.sql",
            "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, domain text);\n\
             INSERT INTO users VALUES (1, 'a@Example.org', NULL), (2, 'b@test.net', NULL);\n",
        ),
        ("1_users.down.sql", "DROP TABLE users;\n"),
        (
            "3_domain_index.up.sql",
            "CREATE INDEX users_domain ON users (domain);\n",
        ),
        ("3_domain_index.down.sql", "DROP INDEX users_domain;\n"),
    ])
}

behaviour!(reads_rows_and_writes_derived_ones, |driver: Driver| {
    let db = test_db();
    let dir = files();
    let m = dir.load().with_code(DOMAINS).unwrap();
    let versions: Vec<i64> = m.iter().map(|m| m.version()).collect();
    assert_eq!(versions, [1, 2, 3]);

    let report = driver.up(&db, &m).unwrap();
    let ran: Vec<i64> = report.ran.iter().map(|r| r.version).collect();
    assert_eq!(ran, [1, 2, 3]);
    assert_eq!(
        column(&db, "SELECT domain FROM users ORDER BY id"),
        [Some("example.org".to_owned()), Some("test.net".to_owned())]
    );
    // The history row carries the declared checksum, `code:`-prefixed, and no stored down.
    assert_eq!(
        scalar(
            &db,
            "SELECT checksum || ' ' || (down_sql IS NULL) FROM public.migrations_history \
             WHERE version = 2"
        ),
        Some(format!("{} true", DOMAINS.checksum()))
    );
    assert!(DOMAINS.checksum().starts_with("code:"));
    assert!(driver
        .status(&db, &m)
        .iter()
        .all(|l| l.status == Status::Applied));
    assert!(driver.up(&db, &m).unwrap().ran.is_empty());

    // Down runs the down function.
    let report = driver
        .execute(&db, &m, &Operation::Down(DownTarget::Count(2)), |m| m)
        .unwrap();
    let ran: Vec<i64> = report.ran.iter().map(|r| r.version).collect();
    assert_eq!(ran, [3, 2]);
    assert_eq!(
        column(&db, "SELECT domain FROM users ORDER BY id"),
        [None, None]
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM public.migrations_history"),
        Some("1".to_owned())
    );
});

behaviour!(
    a_failing_function_rolls_back_with_its_history_row,
    |driver: Driver| {
        let db = test_db();
        let dir = files();
        for (f, source_code, message) in [
            (
                half_then_error as migrations_core::CodeFn,
                None,
                "up 2 domains failed (Rust code): the function returned an error: the backfill found an email \
             without @; the function failed after 1 statement(s); its transaction was rolled \
             back, nothing of it is applied",
            ),
            (
                half_then_bad_sql,
                Some("42P01"),
                "up 2 domains failed (Rust code): relation \"no_such_table\" does not exist (SQLSTATE 42P01); \
             the function failed after 2 statement(s); its transaction was rolled back, \
             nothing of it is applied",
            ),
        ] {
            let m = dir
                .load()
                .with_code(CodeMigration::new(2, "domains", "1", f))
                .unwrap();
            let err = driver.up(&db, &m).unwrap_err();
            match &err {
                Error::Migration {
                    version, source, ..
                } => {
                    assert_eq!(*version, 2);
                    assert_eq!(source.code.as_deref(), source_code);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(err.to_string(), message);
            // Nothing half-applied: no 'half' domain, no row for 2, and 3 never ran.
            assert_eq!(
                column(&db, "SELECT domain FROM users ORDER BY id"),
                [None, None]
            );
            assert_eq!(
                column(
                    &db,
                    "SELECT version::text FROM public.migrations_history ORDER BY version"
                ),
                [Some("1".to_owned())]
            );
        }
        // Fixed, the next run goes on from there.
        let m = dir.load().with_code(DOMAINS).unwrap();
        let ran: Vec<i64> = driver
            .up(&db, &m)
            .unwrap()
            .ran
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(ran, [2, 3]);
    }
);

#[test]
fn a_binary_without_the_function_sees_code_not_drift() {
    let db = test_db();
    let dir = files();
    let service = dir.load().with_code(DOMAINS).unwrap();
    Driver::Sync.up(&db, &service).unwrap();
    // The CLI's view: the same directory, no code migration.
    let cli = dir.load();
    let status: Vec<(i64, Status)> = Driver::Sync
        .status(&db, &cli)
        .iter()
        .map(|l| (l.version, l.status))
        .collect();
    assert_eq!(
        status,
        [
            (1, Status::Applied),
            (2, Status::Code),
            (3, Status::Applied)
        ]
    );
    assert_eq!(Status::Code.as_str(), "code (applied by the service)");
    // An up from it is no drift and runs nothing.
    assert!(Driver::Sync.up(&db, &cli).unwrap().ran.is_empty());
    // A revised function (its revision bumped) is an edit, as for a file.
    let revised = dir
        .load()
        .with_code(CodeMigration::new(2, "domains", "2", domains_up))
        .unwrap();
    let err = Driver::Sync.up(&db, &revised).unwrap_err();
    assert!(matches!(err, Error::Plan(_)), "{err:?}");
}

#[test]
fn a_version_of_a_file_is_refused_naming_both() {
    let dir = files();
    let err = dir
        .load()
        .with_code(CodeMigration::new(3, "backfill", "1", domains_up))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "code migration 3 `backfill` has the version of domain_index ({}): give one of \
             them another version",
            dir.path().join("3_domain_index.up.sql").display()
        )
    );
    let twice = dir.load().with_code(DOMAINS).unwrap().with_code(DOMAINS);
    assert!(twice.is_err());
    let err = Migrations::clone(&dir.load())
        .with_code(CodeMigration::new(4, "bad name", "1", domains_up))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "code migration 4 `bad name`: the name must be letters, digits and `_` (as in a file \
         name)"
    );
}

#[test]
fn the_offline_script_refuses_a_code_migration() {
    let m = files().load().with_code(DOMAINS).unwrap();
    let range = OfflineRange {
        from: None,
        to: None,
        direction: Direction::Up,
    };
    let err = offline_script(&m, &Names::default(), range).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot write up 2 domains: it is a Rust-code migration, which only the service that \
         registers it can run; run it with the service, or end the script's range before it"
    );
}

/// A batched backfill outside a transaction: one row per statement, each committed, so a
/// failure (or a kill) keeps what was done and the next run resumes after it.
fn batched(tx: &mut CodeTx) -> CodeFuture<'_> {
    Box::pin(async move {
        loop {
            let rows = tx
                .query("SELECT id, email FROM users WHERE domain IS NULL ORDER BY id LIMIT 1")
                .await?;
            let Some(row) = rows.first() else {
                return Ok(());
            };
            let (Some(id), Some(email)) = (&row[0], &row[1]) else {
                return Err("a NULL id or email".into());
            };
            let Some((_, domain)) = email.split_once('@') else {
                return Err(format!("user {id}: email {email:?} has no @").into());
            };
            tx.execute(&format!(
                "UPDATE users SET domain = {} WHERE id = {id}",
                CodeTx::literal(domain)
            ))
            .await?;
        }
    })
}

behaviour!(
    a_no_transaction_backfill_resumes_after_a_failure,
    |driver: Driver| {
        let db = test_db();
        let dir = files();
        let m = dir
            .load()
            .with_code(CodeMigration::new(2, "domains", "1", batched).no_transaction())
            .unwrap();
        driver
            .execute(&db, &m, &Operation::Up { to: Some(1) }, |m| m)
            .unwrap();
        db.connect()
            .batch_execute("UPDATE users SET email = 'broken' WHERE id = 2")
            .unwrap();
        let err = driver.up(&db, &m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "up 2 domains failed (Rust code): the function returned an error: user 2: email \"broken\" has no \
         @; the function failed after 3 statement(s); no transaction: its statements stay \
         committed; once the function can resume, `repair 2` clears the failed row"
        );
        // The first batch stays; the row says failed; status says so.
        assert_eq!(
            column(&db, "SELECT domain FROM users ORDER BY id"),
            [Some("Example.org".to_owned()), None]
        );
        assert_eq!(
            scalar(
                &db,
                "SELECT state FROM public.migrations_history WHERE version = 2"
            ),
            Some("failed".to_owned())
        );
        let status: Vec<Status> = driver.status(&db, &m).iter().map(|l| l.status).collect();
        assert_eq!(status, [Status::Applied, Status::Failed, Status::Pending]);
        // Data fixed, row repaired: the next run resumes and finishes.
        db.connect()
            .batch_execute("UPDATE users SET email = 'b@test.net' WHERE id = 2")
            .unwrap();
        driver.repair(&db, &m, Some(2), false).unwrap();
        let ran: Vec<i64> = driver
            .up(&db, &m)
            .unwrap()
            .ran
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(ran, [2, 3]);
        assert_eq!(
            column(&db, "SELECT domain FROM users ORDER BY id"),
            [Some("Example.org".to_owned()), Some("test.net".to_owned())]
        );
        assert_eq!(
            scalar(
                &db,
                "SELECT state || ' ' || checksum FROM public.migrations_history WHERE version = 2"
            ),
            Some(format!(
                "applied {}",
                CodeMigration::new(2, "domains", "1", batched).checksum()
            ))
        );
    }
);
