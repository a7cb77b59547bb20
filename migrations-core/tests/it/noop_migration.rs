//! An up file of comments alone is a no-op migration: loaded, applied and recorded like any
//! other (its history row, its checksum in the warm-start digest), reverted through its down,
//! by either driver, in a transaction or not. sqlx runs such files, and histories adopted from
//! sqlx hold them unchanged (`migrations-cli/tests/it/adopt_sqlx.rs`).

use migrations_core::plan::DownTarget;
use migrations_core::Operation;
use migrations_tests::test_db;

use crate::common::{column, table_exists, Dir, Driver};

behaviour!(
    comment_only_ups_apply_record_and_revert,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[
            ("1_t.up.sql", "CREATE TABLE t (x int);\n"),
            ("1_t.down.sql", "DROP TABLE t;\n"),
            // No final newline: the runner appends its bookkeeping after the file, which a
            // trailing `--` comment must not swallow.
            (
                "2_noop.up.sql",
                "-- no up-migration, we only have a down-migration as validation",
            ),
            ("2_noop.down.sql", "DO $$ BEGIN PERFORM 1 FROM t; END $$;\n"),
            (
                "3_noop_outside.up.sql",
                "-- migrations:no-transaction\n/* nothing to do */\n",
            ),
            ("3_noop_outside.down.sql", "-- nothing to undo\n"),
        ]);
        let m = dir.load();
        assert_eq!(m.get(2).unwrap().up().statements().count(), 0);
        let report = driver.up(&db, &m).unwrap();
        assert_eq!(
            report.ran.iter().map(|r| r.version).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(
            column(
                &db,
                "SELECT version::text || ' ' || state FROM public.migrations_history ORDER BY 1"
            ),
            ["1 applied", "2 applied", "3 applied"]
                .map(|s| Some(s.to_owned()))
                .to_vec()
        );
        // Recorded with their checksums: the next run takes the warm start.
        let again = driver.up(&db, &m).unwrap();
        assert!(again.up_to_date_fast && again.ran.is_empty());

        let down = driver
            .execute(&db, &m, &Operation::Down(DownTarget::All), |m| m)
            .unwrap();
        assert_eq!(
            down.ran.iter().map(|r| r.version).collect::<Vec<_>>(),
            vec![3, 2, 1]
        );
        assert!(!table_exists(&db, "t"));
        assert!(column(&db, "SELECT version::text FROM public.migrations_history").is_empty());
    }
);
