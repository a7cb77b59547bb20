//! Repeatable migrations (`R__<name>.sql`) through the engine, on a real server, with both
//! drivers: applied after the versioned ones in name order, again exactly when changed, each
//! in its own transaction with its row; status; a failure rolls back only its own file.

use migrations_core::{embed_migrations, Error, Migrations, Migrator, RepeatableState};
use migrations_tests::{test_db, TestDb};

use crate::common::*;

static EMBEDDED: Migrations = embed_migrations!("tests/fixtures/repeatable");

fn rows(db: &TestDb) -> Vec<Option<String>> {
    column(
        db,
        "SELECT name || ' ' || checksum FROM public.migrations_history_repeatable ORDER BY name",
    )
}

fn states(driver: Driver, db: &TestDb, m: &Migrations) -> Vec<(String, RepeatableState)> {
    let migrator = Migrator::new(m);
    let status = match driver {
        Driver::Sync => migrator.repeatable_status(&mut db.connect()).unwrap(),
        Driver::Async => runtime().block_on(async {
            let mut client = connect_async(db.url()).await;
            migrator.repeatable_status_async(&mut client).await.unwrap()
        }),
    };
    status.into_iter().map(|s| (s.name, s.state)).collect()
}

/// The warm check of a plain `up` (one query), as a service's boot or the CLI asks it.
fn is_up_to_date(driver: Driver, db: &TestDb, m: &Migrations) -> bool {
    let migrator = Migrator::new(m);
    match driver {
        Driver::Sync => migrator.is_up_to_date(&mut db.connect()),
        Driver::Async => runtime().block_on(async {
            let mut client = connect_async(db.url()).await;
            migrator.is_up_to_date_async(&mut client).await
        }),
    }
}

behaviour!(
    applied_after_versioned_then_again_only_when_changed,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[
        ("1_items.up.sql", "CREATE TABLE items (id bigint, price int);\n"),
        (
            "R__b_views.sql",
            "CREATE OR REPLACE VIEW cheap AS SELECT id FROM items WHERE price < price_limit();\n",
        ),
        (
            "R__a_functions.sql",
            "CREATE OR REPLACE FUNCTION price_limit() RETURNS int LANGUAGE sql AS 'SELECT 10';\n",
        ),
    ]);
        let m = dir.load();
        assert_eq!(
            states(driver, &db, &m),
            [
                ("a_functions".to_owned(), RepeatableState::Pending),
                ("b_views".to_owned(), RepeatableState::Pending)
            ]
        );
        let report = driver.up(&db, &m).unwrap();
        assert_eq!(report.ran.len(), 1);
        // Name order: the view needs the function.
        let names: Vec<&str> = report.repeatables.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a_functions", "b_views"]);
        assert!(report.repeatables.iter().all(|r| !r.changed));
        let first = rows(&db);
        assert_eq!(first.len(), 2);

        // Nothing changed: nothing runs, and no row moves.
        // The warm start's one query reads the repeatables' checksums with the digest.
        assert!(is_up_to_date(driver, &db, &m));
        let report = driver.up(&db, &m).unwrap();
        assert!(report.repeatables.is_empty() && report.is_empty());
        assert!(report.up_to_date_fast);
        assert_eq!(rows(&db), first);

        // The view changes: only it runs again, as a change; the versioned history is untouched.
        dir.write(
        "R__b_views.sql",
        "CREATE OR REPLACE VIEW cheap AS SELECT id, price FROM items WHERE price < price_limit();\n",
    );
        let edited = dir.load();
        assert_eq!(
            states(driver, &db, &edited),
            [
                ("a_functions".to_owned(), RepeatableState::Applied),
                ("b_views".to_owned(), RepeatableState::Changed)
            ]
        );
        assert!(!is_up_to_date(driver, &db, &edited));
        let report = driver.up(&db, &edited).unwrap();
        let ran: Vec<(&str, bool)> = report
            .repeatables
            .iter()
            .map(|r| (r.name.as_str(), r.changed))
            .collect();
        assert_eq!(ran, [("b_views", true)]);
        // A repeatable ran: the report must not say the warm start found nothing to do.
        assert!(!report.up_to_date_fast, "{report:?}");
        assert_eq!(
            scalar(
                &db,
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'cheap'"
            ),
            Some("2".to_owned())
        );
        assert_eq!(
        column(
            &db,
            "SELECT event || ' ' || name || ' ' || detail FROM public.migrations_history_audit \
             WHERE event = 'apply-repeatable' ORDER BY id"
        ),
        [
            Some("apply-repeatable a_functions new".to_owned()),
            Some("apply-repeatable b_views new".to_owned()),
            Some("apply-repeatable b_views changed".to_owned())
        ]
    );
        // Removing a file leaves its row, shown as missing; nothing is due.
        dir.remove("R__a_functions.sql");
        assert_eq!(
            states(driver, &db, &dir.load())[0],
            ("a_functions".to_owned(), RepeatableState::Missing)
        );
        assert!(is_up_to_date(driver, &db, &dir.load()));
    }
);

behaviour!(
    a_failing_repeatable_rolls_back_only_itself,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[
        ("1_items.up.sql", "CREATE TABLE items (id bigint);\n"),
        ("R__a.sql", "CREATE OR REPLACE VIEW a AS SELECT id FROM items;\n"),
        (
            "R__b.sql",
            "CREATE OR REPLACE VIEW b AS SELECT id FROM items;\nCREATE OR REPLACE VIEW b2 AS SELECT nope FROM items;\n",
        ),
    ]);
        let err = driver.up(&db, &dir.load()).unwrap_err();
        let Error::Repeatable {
            name, line, source, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!((name.as_str(), *line), ("b", Some(2)));
        assert_eq!(source.code.as_deref(), Some("42703"));
        let path = dir.path().join("R__b.sql");
        assert_eq!(
            err.to_string(),
            format!(
                "repeatable b failed ({}:2): column \"nope\" does not exist (SQLSTATE 42703); fix \
             the file and run up again",
                path.display()
            )
        );
        // The versioned migration and the repeatable before stay; `b` left nothing behind.
        assert!(table_exists(&db, "items") && table_exists(&db, "a"));
        assert!(!table_exists(&db, "b"));
        assert_eq!(rows(&db).len(), 1);
        // The lock was let go: a fixed file applies.
        dir.write(
            "R__b.sql",
            "CREATE OR REPLACE VIEW b AS SELECT id FROM items;\n",
        );
        let report = driver.up(&db, &dir.load()).unwrap();
        assert_eq!(report.repeatables.len(), 1);
        assert_eq!(
            db.advisory_lock_holders(Migrator::new(&dir.load()).lock_key()),
            0
        );
    }
);

behaviour!(embedded_and_with_placeholders, |driver: Driver| {
    let db = test_db();
    assert_eq!(EMBEDDED.repeatables().len(), 1);
    assert_eq!(
        EMBEDDED.repeatables()[0].checksum(),
        Dir::new(&[(
            "R__views.sql",
            "CREATE OR REPLACE VIEW expensive AS SELECT id FROM items WHERE price > 100;\n"
        )])
        .load()
        .repeatables()[0]
            .checksum()
    );
    let report = driver.up(&db, &EMBEDDED).unwrap();
    assert_eq!(report.repeatables.len(), 1);
    assert!(table_exists(&db, "expensive"));

    let dir = Dir::new(&[(
        "R__grants.sql",
        "CREATE OR REPLACE VIEW ${name} AS SELECT '${name}'::text AS n;\n",
    )]);
    let err = driver.up(&db, &dir.load()).unwrap_err();
    assert!(matches!(err, Error::Placeholder(_)), "{err:?}");
    driver
        .execute(
            &db,
            &dir.load(),
            &migrations_core::Operation::Up { to: None },
            |m| m.table("other").placeholder("name", "named_view"),
        )
        .unwrap();
    assert_eq!(
        scalar(&db, "SELECT n FROM named_view"),
        Some("named_view".to_owned())
    );
});

#[test]
fn bad_repeatable_files_are_named() {
    let dir = Dir::new(&[
        ("R__0002_views.sql", "SELECT 1;\n"),
        ("R__tx.sql", "-- migrations:no-transaction\nSELECT 1;\n"),
        ("R__commit.sql", "SELECT 1;\nCOMMIT;\n"),
    ]);
    let err = Migrations::from_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("R__0002_views.sql: `R__0002_views.sql` names a repeatable migration with a version (0002)"), "{err}");
    assert!(err.contains("R__tx.sql:1: a repeatable migration runs in a transaction with its history row; remove `no-transaction`"), "{err}");
    assert!(err.contains("R__commit.sql:2:"), "{err}");
}
