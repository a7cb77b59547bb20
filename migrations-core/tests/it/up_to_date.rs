//! `Migrator::is_up_to_date` (sync and async): the warm check alone, which the CLI asks before
//! it reads any file's text. True only when a plain `up` has nothing to do; any doubt is
//! `false` (the run decides), and it writes nothing.

use migrations_core::{Migrations, Migrator, Phase};
use migrations_tests::test_db;

use crate::common::*;

fn is_up_to_date(driver: Driver, db: &migrations_tests::TestDb, m: &Migrator<'_>) -> bool {
    match driver {
        Driver::Sync => m.is_up_to_date(&mut db.connect()),
        Driver::Async => runtime().block_on(async {
            let mut client = connect_async(db.url()).await;
            m.is_up_to_date_async(&mut client).await
        }),
    }
}

fn set(files: &[(&str, &str)]) -> (tempfile::TempDir, Migrations) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    (dir, migrations)
}

behaviour!(
    only_a_set_with_nothing_to_do_is_up_to_date,
    |driver: Driver| {
        let db = test_db();
        let (_d, two) = set(&[
            ("1_a.up.sql", "CREATE TABLE a (x int);\n"),
            (
                "2_b.up.sql",
                "-- migrations:phase=post\nCREATE TABLE b (x int);\n",
            ),
        ]);
        // No history table yet: cannot tell, and nothing is created by asking.
        assert!(!is_up_to_date(driver, &db, &Migrator::new(&two)));
        assert!(!table_exists(&db, "migrations_history"));
        driver.up(&db, &two).unwrap();
        // A plain up leaves the post-deployment migration pending: up to date for `pre`, not
        // for `all`.
        assert!(is_up_to_date(driver, &db, &Migrator::new(&two)));
        assert!(!is_up_to_date(
            driver,
            &db,
            &Migrator::new(&two).phase(Phase::All)
        ));
        // A new migration, or an edited one: not up to date.
        let (_d, three) = set(&[
            ("1_a.up.sql", "CREATE TABLE a (x int);\n"),
            (
                "2_b.up.sql",
                "-- migrations:phase=post\nCREATE TABLE b (x int);\n",
            ),
            ("3_c.up.sql", "CREATE TABLE c (x int);\n"),
        ]);
        assert!(!is_up_to_date(driver, &db, &Migrator::new(&three)));
        let (_d, edited) = set(&[
            ("1_a.up.sql", "CREATE TABLE a (y int);\n"),
            (
                "2_b.up.sql",
                "-- migrations:phase=post\nCREATE TABLE b (x int);\n",
            ),
        ]);
        assert!(!is_up_to_date(driver, &db, &Migrator::new(&edited)));
        // A repeatable migration is checked by the run only.
        let (_d, with_repeatable) = set(&[
            ("1_a.up.sql", "CREATE TABLE a (x int);\n"),
            (
                "2_b.up.sql",
                "-- migrations:phase=post\nCREATE TABLE b (x int);\n",
            ),
            ("R__v.sql", "CREATE OR REPLACE VIEW v AS SELECT 1;\n"),
        ]);
        assert!(!is_up_to_date(
            driver,
            &db,
            &Migrator::new(&with_repeatable)
        ));
    }
);
