//! Behind a transaction-pooling PgBouncer a session advisory lock is unsafe: the runner must
//! notice that its server session changed and stop, before it changes anything.
//!
//! Needs the `pgbouncer` binary (Debian package `pgbouncer`; `.ci/run` installs it). The test
//! fails, with that instruction, when it is missing: a skipped safety test would prove nothing.
//! PgBouncer itself is the harness's (`migrations_tests::PgBouncer`), shared with the other
//! pooler tests (failure_paths.rs, the CLI's).

#![allow(clippy::result_large_err)] // the core's error is returned once per run

use crate::common::{scalar, table_exists, Dir};
use migrations_core::{Error, Migrator};
use migrations_tests::{PgBouncer, TestDb};

#[test]
fn transaction_pooler_is_detected_before_anything_runs() {
    let db = TestDb::on_own_server();
    let bouncer = PgBouncer::start(&db);
    // The harness has checked that the pool hands out its two server sessions in turn.
    let mut client = postgres::Client::connect(&bouncer.url(), postgres::NoTls).unwrap();

    let dir = Dir::new(&[("1_t.up.sql", "CREATE TABLE t (x int);")]);
    let m = dir.load();
    let err = Migrator::new(&m).run(&mut client).unwrap_err();
    assert!(matches!(err, Error::PoolerDetected { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("transaction pooler detected: the server session changed during the run"),
        "{err}"
    );
    assert!(!table_exists(&db, "t"), "nothing ran");
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'migrations_history'"
        ),
        Some("0".into())
    );

    // The same migrations through a direct connection run fine.
    Migrator::new(&m).run(&mut db.connect()).unwrap();
    assert!(table_exists(&db, "t"));
}
