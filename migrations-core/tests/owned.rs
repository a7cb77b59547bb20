//! A runner that owns its connection releases the migrations lock when its future is dropped
//! mid-run (a timeout, a shutdown): the connection closes with the future.

#![cfg(feature = "connect")]
#![allow(clippy::result_large_err)] // the core's error is returned once per run

mod common;

use std::time::{Duration, Instant};

use common::{runtime, scalar, table_exists, Dir};
use migrations_core::connect::ConnectOptions;
use migrations_core::Migrator;
use migrations_tests::test_db;

#[test]
fn dropped_future_releases_the_lock() {
    let db = test_db();
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a ();"),
        ("2_slow.up.sql", "CREATE TABLE b ();\nSELECT pg_sleep(30);"),
    ]);
    let m = dir.load();
    let options = ConnectOptions {
        url: Some(db.url().to_owned()),
        ..ConnectOptions::default()
    };
    let key = Migrator::new(&m).lock_key();
    let held = format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND ((classid::bigint << 32) | objid::bigint) = {key}"
    );
    runtime().block_on(async {
        let mut migrator = Migrator::new(&m);
        let run = migrator.connect_and_run_async(&options);
        // Dropped while migration 2 sleeps.
        let outcome = tokio::time::timeout(Duration::from_secs(2), run).await;
        assert!(outcome.is_err(), "the run was still going");
    });
    // The server notices the closed connection, rolls back and releases the lock.
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(&db, &held).as_deref() != Some("0") {
        assert!(
            Instant::now() < deadline,
            "the lock is still held after the future was dropped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(table_exists(&db, "a"));
    assert!(
        !table_exists(&db, "b"),
        "migration 2 rolled back with its connection"
    );
}
