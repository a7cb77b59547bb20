//! A runner that owns its connection releases the migrations lock when its future is dropped
//! mid-run (a timeout, a shutdown): the connection closes with the future.

#![cfg(feature = "connect")]
#![allow(clippy::result_large_err)] // the core's error is returned once per run

use std::time::{Duration, Instant};

use crate::common::{runtime, table_exists, Dir};
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
    runtime().block_on(async {
        let mut migrator = Migrator::new(&m);
        let run = migrator.connect_and_run_async(&options);
        // While migration 2 sleeps the run holds the lock (so the check for 0 below can
        // fail); once a second session has seen it held, the future is dropped. Polled, not
        // timed: on a loaded machine connecting and applying migration 1 can take seconds.
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let observer = {
            let url = db.url().to_owned();
            std::thread::spawn(move || {
                let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let deadline = Instant::now() + Duration::from_secs(25);
                while Instant::now() < deadline {
                    let n: i64 = client
                        .query_one(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                             AND granted AND objsubid = 1 \
                             AND ((classid::bigint << 32) | objid::bigint) = $1",
                            &[&key],
                        )
                        .unwrap()
                        .get(0);
                    if n == 1 {
                        let _ = seen_tx.send(());
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                false
            })
        };
        let mut run = Box::pin(run);
        let outcome = loop {
            match tokio::time::timeout(Duration::from_millis(50), &mut run).await {
                Ok(outcome) => break Some(outcome),
                Err(_) if seen_rx.try_recv().is_ok() => break None,
                Err(_) if observer.is_finished() => break None,
                Err(_) => {}
            }
        };
        assert!(observer.join().unwrap(), "the run held the lock");
        assert!(outcome.is_none(), "the run was still going");
        drop(run); // the future, and with it the connection
    });
    // The server notices the closed connection, rolls back and releases the lock.
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.advisory_lock_holders(key) != 0 {
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
