//! The failures users meet, each raised for real on a real PostgreSQL and checked with the
//! message they read: another runner holding the migrations lock past `lock_wait`;
//! `statement_timeout` (none by default, then by option and by directive) and the per-file
//! `lock-timeout` directive against a statement blocked by another session; a history table
//! of a newer format, or a table of the user's with the history's name; a single transaction
//! asked to hold a no-transaction migration; the `future` drift warning; and the pooler check
//! behind a real PgBouncer on the async path and on the maintenance operations. Each goes
//! through the sync and the async API where both exist.
#![allow(clippy::result_large_err)] // the core's error is returned once per run

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{column, connect_async, runtime, scalar, table_exists, Dir, Driver};
use migrations_core::plan::Direction;
use migrations_core::{DownTarget, DriftKind, Error, Event, Migrator, Names, Operation};
use migrations_tests::{test_db, PgBouncer, TestDb};

const UP: Operation = Operation::Up { to: None };

fn history_rows(db: &TestDb) -> i64 {
    scalar(db, "SELECT count(*) FROM public.migrations_history")
        .unwrap()
        .parse()
        .unwrap()
}

/// The server's SQLSTATE of a migration's failure.
fn sqlstate(err: &Error) -> Option<&str> {
    match err {
        Error::Migration { source, .. } | Error::LockTimeout { source, .. } => {
            source.code.as_deref()
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The migrations lock held by another runner.

behaviour!(
    lock_wait_expires_while_another_runner_holds_the_lock,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[("1_t.up.sql", "CREATE TABLE t ();")]);
        let m = dir.load();
        // Another runner: a real session holding the real key, as a runner does for its whole run.
        let key = Names::default().lock_key();
        assert_eq!(key, Migrator::new(&m).lock_key());
        // Named as a deploy names itself, so the waiter's message can say who it waits for.
        let mut holder = db.connect();
        holder
            .batch_execute("SET application_name = 'deploy-42'")
            .unwrap();
        holder
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .unwrap();
        assert_eq!(db.advisory_lock_holders(key), 1);
        let row = holder
            .query_one(
                "SELECT pg_backend_pid(), extract(epoch FROM backend_start)::float8 \
                 FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap();
        let (holder_pid, holder_start): (i32, f64) = (row.get(0), row.get(1));

        let waiting = Arc::new(AtomicU32::new(0));
        let seen = waiting.clone();
        let named = Arc::new(Mutex::new(None));
        let seen_holder = named.clone();
        let started = Instant::now();
        let err = driver
            .execute(&db, &m, &UP, move |mig| {
                mig.lock_wait(Duration::from_millis(300))
                    .on_event(move |e| {
                        if let Event::WaitingForLock { key: k, holder } = e {
                            assert_eq!(*k, key);
                            seen.fetch_add(1, Ordering::SeqCst);
                            *seen_holder.lock().unwrap() = holder.clone();
                        }
                    })
            })
            .unwrap_err();
        let elapsed = started.elapsed();
        let named = named.lock().unwrap().clone().expect("the holder is named");
        assert_eq!(named.pid, holder_pid);
        assert_eq!(named.application_name, "deploy-42");
        let since = named
            .since
            .expect("same role: the start is visible")
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (since - holder_start).abs() < 0.001,
            "{since} {holder_start}"
        );
        let since = named.since_rfc3339().unwrap();
        assert_eq!(
            (since.len(), &since[10..11], &since[23..]),
            (24, "T", "Z"),
            "{since}"
        );
        assert!(
            matches!(&err, Error::LockWait { key: k, waited, holder: Some(h) } if *k == key && *waited == Duration::from_millis(300) && *h == named),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "another migration runner (pid {holder_pid}, application_name \"deploy-42\", \
                 session started {since}) has held the migrations lock (advisory lock {key}) \
                 for over 300ms; wait for it to finish, or raise --lock-wait"
            )
        );
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        assert_eq!(
            waiting.load(Ordering::SeqCst),
            1,
            "one WaitingForLock event"
        );
        // Nothing ran, and nothing was created: the history tables are made under the lock.
        assert!(!table_exists(&db, "t"));
        assert!(!table_exists(&db, "public.migrations_history"));
        // The other runner still holds its lock; once it lets go, the run goes through.
        assert_eq!(db.advisory_lock_holders(key), 1);
        let released: bool = holder
            .query_one("SELECT pg_advisory_unlock($1)", &[&key])
            .unwrap()
            .get(0);
        assert!(released);
        assert_eq!(driver.up(&db, &m).unwrap().ran.len(), 1);
        assert!(table_exists(&db, "t"));
    }
);

// ---------------------------------------------------------------------------------------------
// statement_timeout.

behaviour!(no_statement_timeout_by_default, |driver: Driver| {
    let db = test_db();
    // The database's own default would cancel a 1.5 s statement: the runner's default (none,
    // SPEC 3.3: a concurrent index build legitimately takes hours) replaces it.
    db.connect()
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET statement_timeout = '1s'",
            db.name()
        ))
        .unwrap();
    let check = "DO $$ BEGIN\n  IF current_setting('statement_timeout') <> '0' THEN\n    \
                 RAISE EXCEPTION 'statement_timeout is %', current_setting('statement_timeout');\n  \
                 END IF;\nEND $$;\nSELECT pg_sleep(1.5);\n";
    let dir = Dir::new(&[
        ("1_slow.up.sql", &format!("{check}CREATE TABLE slow ();\n")),
        (
            "2_slow_outside.up.sql",
            &format!("-- migrations:no-transaction\n{check}CREATE TABLE slow_outside ();\n"),
        ),
    ]);
    let started = Instant::now();
    let report = driver
        .up(&db, &dir.load())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.ran.len(), 2);
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(table_exists(&db, "slow") && table_exists(&db, "slow_outside"));
});

behaviour!(
    statement_timeout_option_cancels_a_slow_statement,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[(
            "1_slow.up.sql",
            "CREATE TABLE before_sleep ();\nSELECT pg_sleep(30);\n",
        )]);
        let m = dir.load();
        let started = Instant::now();
        let err = driver
            .execute(&db, &m, &UP, |mig| {
                mig.statement_timeout(Duration::from_millis(300))
            })
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            matches!(
                &err,
                Error::Migration {
                    version: 1,
                    direction: Direction::Up,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(sqlstate(&err), Some("57014"), "query_canceled: {err}");
        assert_eq!(
            err.to_string(),
            format!(
                "up 1 slow failed at statement 2 of 2 ({}:2): canceling statement due to \
                 statement timeout (SQLSTATE 57014)",
                m.get(1).unwrap().up().path()
            )
        );
        // Rolled back whole, and not recorded.
        assert!(!table_exists(&db, "before_sleep"));
        assert_eq!(history_rows(&db), 0);

        // Outside a transaction the option holds too (a session SET, not SET LOCAL): statement 2
        // is cancelled, statement 1 stays done, and the row says where it stopped.
        let db = test_db();
        let dir = Dir::new(&[(
            "1_slow.up.sql",
            "-- migrations:no-transaction\nCREATE TABLE before_sleep ();\nSELECT pg_sleep(30);\n",
        )]);
        let m = dir.load();
        let started = Instant::now();
        let err = driver
            .execute(&db, &m, &UP, |mig| {
                mig.statement_timeout(Duration::from_millis(300))
            })
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(sqlstate(&err), Some("57014"), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "up 1 slow failed at statement 2 of 2 ({}:3): canceling statement due to \
                 statement timeout (SQLSTATE 57014)",
                m.get(1).unwrap().up().path()
            )
        );
        assert!(table_exists(&db, "before_sleep"));
        assert_eq!(
            scalar(
                &db,
                "SELECT state || ' ' || statements_done || '/' || statements_total \
             FROM public.migrations_history WHERE version = 1"
            ),
            Some("failed 1/2".into())
        );
    }
);

behaviour!(
    statement_timeout_directive_wins_over_the_run,
    |driver: Driver| {
        // The directive cancels a statement the run's default (none) would let run.
        let db = test_db();
        let dir = Dir::new(&[(
            "1_slow.up.sql",
            "-- migrations:statement-timeout=300ms\nSELECT pg_sleep(30);\n",
        )]);
        let m = dir.load();
        let started = Instant::now();
        let err = driver.up(&db, &m).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            matches!(&err, Error::Migration { version: 1, .. }),
            "{err:?}"
        );
        assert_eq!(sqlstate(&err), Some("57014"), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "up 1 slow failed at statement 1 of 1 ({}:2): canceling statement due to \
                 statement timeout (SQLSTATE 57014)",
                m.get(1).unwrap().up().path()
            )
        );
        assert_eq!(history_rows(&db), 0);

        // And lets a statement run that the run's own timeout would cancel.
        let db = test_db();
        let dir = Dir::new(&[(
            "1_slow.up.sql",
            "-- migrations:statement-timeout=30s\nSELECT pg_sleep(1);\nCREATE TABLE slept ();\n",
        )]);
        driver
            .execute(&db, &dir.load(), &UP, |mig| {
                mig.statement_timeout(Duration::from_millis(200))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(table_exists(&db, "slept"));
    }
);

// ---------------------------------------------------------------------------------------------
// The per-file lock-timeout directive, against a lock held by another session.

behaviour!(
    lock_timeout_directive_against_a_held_lock,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[("1_t.up.sql", "CREATE TABLE t (x int);")]);
        driver.up(&db, &dir.load()).unwrap();
        dir.write(
            "2_alter.up.sql",
            "-- migrations:lock-timeout=100ms\nALTER TABLE t ADD COLUMN y int;\n",
        );
        let m = dir.load();

        // A reader in a long transaction: ALTER TABLE waits for its ACCESS SHARE lock.
        let mut holder = db.connect();
        let mut tx = holder.transaction().unwrap();
        tx.batch_execute("LOCK TABLE t IN ACCESS SHARE MODE")
            .unwrap();

        let retries = Arc::new(AtomicU32::new(0));
        let seen = retries.clone();
        let started = Instant::now();
        // The run's own lock_timeout is the default (5 s): only the directive makes this quick.
        let err = driver
            .execute(&db, &m, &UP, move |mig| {
                mig.lock_retries(2, Duration::from_millis(50))
                    .on_event(move |e| {
                        if let Event::Retrying { version: 2, .. } = e {
                            seen.fetch_add(1, Ordering::SeqCst);
                        }
                    })
            })
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            matches!(
                &err,
                Error::LockTimeout {
                    version: 2,
                    attempts: 3,
                    direction: Direction::Up,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(sqlstate(&err), Some("55P03"), "lock_not_available: {err}");
        assert_eq!(
            err.to_string(),
            format!(
                "up 2 alter could not take its locks: lock_timeout expired on each of 3 attempts \
                 at statement 1 of 1 ({}:2): canceling statement due to lock timeout (SQLSTATE \
                 55P03); another session holds a conflicting lock on the objects it changes; find \
                 it in pg_locks / pg_stat_activity, or raise --lock-timeout",
                m.get(2).unwrap().up().path()
            )
        );
        assert_eq!(
            retries.load(Ordering::SeqCst),
            2,
            "two retries after the first attempt"
        );
        // 3 x 100 ms and 50 + 100 ms of backoff; the run's 5 s would take 15 s.
        assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
        assert!(!column(
            &db,
            "SELECT attname::text FROM pg_attribute WHERE attrelid = 't'::regclass"
        )
        .contains(&Some("y".to_owned())));
        assert_eq!(history_rows(&db), 1);

        // Once the reader is gone the same run goes through.
        tx.rollback().unwrap();
        assert_eq!(driver.up(&db, &m).unwrap().ran.len(), 1);
    }
);

/// Locks table `{}` for a reader; the server ends the holder after 8 s idle, so a run that
/// ignores its lock_timeout fails the test by taking too long instead of hanging it.
const HOLD_AT_MOST_8S_THEN: &str =
    "SET LOCAL idle_in_transaction_session_timeout = '8s'; LOCK TABLE {} IN ACCESS SHARE MODE";

// In a single transaction every migration keeps the run's lock_timeout (and its file's own):
// the session restore between two migrations used to undo them for all but the first, so a
// grouped ALTER waited for its lock without end (RELIABILITY.md, finding 7).
behaviour!(
    single_transaction_keeps_lock_timeout_for_every_migration,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[(
            "1_t.up.sql",
            "CREATE TABLE t (x int);\nCREATE TABLE u (x int);",
        )]);
        driver.up(&db, &dir.load()).unwrap();
        dir.write("2_a.up.sql", "CREATE TABLE a ();\n");
        dir.write("3_alter_t.up.sql", "ALTER TABLE t ADD COLUMN y int;\n");
        dir.write(
            "4_alter_u.up.sql",
            "-- migrations:lock-timeout=150ms\nALTER TABLE u ADD COLUMN z int;\n",
        );
        let m = dir.load();
        let grouped_up = |lock_timeout: Duration| {
            let started = Instant::now();
            let err = driver
                .execute(&db, &m, &UP, |mig| {
                    mig.single_transaction(true)
                        .lock_timeout(lock_timeout)
                        .lock_retries(0, Duration::from_millis(10))
                })
                .unwrap_err();
            (err, started.elapsed())
        };

        // The run's lock_timeout, for the second migration of the batch and after.
        let mut holder = db.connect();
        let mut tx = holder.transaction().unwrap();
        tx.batch_execute(HOLD_AT_MOST_8S_THEN.replace("{}", "t").as_str())
            .unwrap();
        let (err, elapsed) = grouped_up(Duration::from_millis(200));
        assert!(
            matches!(&err, Error::LockTimeout { version: 3, .. }),
            "{err:?}"
        );
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        assert!(!table_exists(&db, "a"), "all or nothing");
        assert_eq!(history_rows(&db), 1);
        tx.rollback().unwrap();

        // A file's own lock-timeout directive, in the batch too (the run's is 30 s).
        let mut tx = holder.transaction().unwrap();
        tx.batch_execute(HOLD_AT_MOST_8S_THEN.replace("{}", "u").as_str())
            .unwrap();
        let (err, elapsed) = grouped_up(Duration::from_secs(30));
        assert!(
            matches!(&err, Error::LockTimeout { version: 4, .. }),
            "{err:?}"
        );
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        assert!(!table_exists(&db, "a"), "all or nothing");
        assert_eq!(history_rows(&db), 1);
        tx.rollback().unwrap();

        assert_eq!(driver.up(&db, &m).unwrap().ran.len(), 3);
    }
);

// ---------------------------------------------------------------------------------------------
// The history table: a newer format, or not ours.

behaviour!(history_of_a_newer_format_is_refused, |driver: Driver| {
    let db = test_db();
    let dir = Dir::new(&[("1_a.up.sql", "CREATE TABLE a ();")]);
    driver.up(&db, &dir.load()).unwrap();
    // What a newer binary leaves behind.
    db.connect()
        .batch_execute(
            "COMMENT ON TABLE public.migrations_history IS 'migrations history, format 5'",
        )
        .unwrap();
    dir.write("2_b.up.sql", "CREATE TABLE b ();");
    let m = dir.load();
    let err = driver.up(&db, &m).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::NewerHistoryFormat {
                found: 5,
                supported: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the history table \"public\".\"migrations_history\" has format 5, newer than this \
         release of migrations understands (4); upgrade the migrations CLI, or the service's \
         migrations-core"
    );
    assert!(!table_exists(&db, "b"), "nothing ran");
    assert_eq!(history_rows(&db), 1);
    assert_eq!(db.advisory_lock_holders(Names::default().lock_key()), 0);
    // Reading it is refused as well: its rows may mean something else.
    let status = match driver {
        Driver::Sync => Migrator::new(&m).status(&mut db.connect()).map(|_| ()),
        Driver::Async => runtime().block_on(async {
            let mut client = connect_async(db.url()).await;
            Migrator::new(&m)
                .status_async(&mut client)
                .await
                .map(|_| ())
        }),
    };
    assert!(
        matches!(status, Err(Error::NewerHistoryFormat { found: 5, .. })),
        "{status:?}"
    );
});

behaviour!(
    a_user_table_with_the_history_name_is_left_alone,
    |driver: Driver| {
        let db = test_db();
        db.connect()
            .batch_execute(
                "CREATE TABLE public.migrations_history (id int PRIMARY KEY, note text);\n\
             INSERT INTO public.migrations_history VALUES (1, 'mine');",
            )
            .unwrap();
        let dir = Dir::new(&[("1_a.up.sql", "CREATE TABLE a ();")]);
        let m = dir.load();
        let err = driver.up(&db, &m).unwrap_err();
        assert!(matches!(&err, Error::NotAHistoryTable { .. }), "{err:?}");
        assert_eq!(
        err.to_string(),
        "\"public\".\"migrations_history\" exists but is not a migrations history table; choose \
         another --schema or --table"
    );
        assert!(!table_exists(&db, "a"), "nothing ran");
        // The user's table is as it was, and no audit table appeared beside it.
        assert_eq!(
            column(
                &db,
                "SELECT id || ' ' || note FROM public.migrations_history"
            ),
            vec![Some("1 mine".to_owned())]
        );
        assert!(!table_exists(&db, "public.migrations_history_audit"));
        assert_eq!(db.advisory_lock_holders(Names::default().lock_key()), 0);
        // The advice works: another table name.
        let report = driver
            .execute(&db, &m, &UP, |mig| mig.table("schema_history"))
            .unwrap();
        assert_eq!(report.ran.len(), 1);
        assert!(table_exists(&db, "a"));
    }
);

// ---------------------------------------------------------------------------------------------
// A single transaction cannot hold a no-transaction migration.

behaviour!(
    single_transaction_refuses_a_no_transaction_migration,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (x int);"),
        (
            "2_a_x.up.sql",
            "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_x ON a (x);\n",
        ),
        ("3_c.up.sql", "CREATE TABLE c ();"),
    ]);
        let m = dir.load();
        let err = driver
            .execute(&db, &m, &UP, |mig| mig.single_transaction(true))
            .unwrap_err();
        assert!(
            matches!(&err, Error::GroupedNoTransaction { version: 2, name, .. } if name == "a_x"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "2 a_x runs outside a transaction, so it cannot be part of a single transaction; run \
         without --single-transaction, or apply up to the version before it"
        );
        // Refused before anything ran.
        assert!(!table_exists(&db, "a"));
        assert_eq!(history_rows(&db), 0);
        assert_eq!(db.advisory_lock_holders(Names::default().lock_key()), 0);
        // The advice works: up to the version before it, in one transaction; then the rest.
        let report = driver
            .execute(&db, &m, &Operation::Up { to: Some(1) }, |mig| {
                mig.single_transaction(true)
            })
            .unwrap();
        assert_eq!(report.ran.len(), 1);
        assert_eq!(driver.up(&db, &m).unwrap().ran.len(), 2);
    }
);

// ---------------------------------------------------------------------------------------------
// The `future` drift warning.

behaviour!(
    future_rows_are_a_warning_with_their_names,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[
            ("1_a.up.sql", "CREATE TABLE a ();"),
            ("2_b.up.sql", "CREATE TABLE b ();"),
            ("3_c.up.sql", "CREATE TABLE c ();"),
        ]);
        driver.up(&db, &dir.load()).unwrap();
        // An older binary, after a rollback of the deploy: it knows 1 and 2 only.
        dir.remove("3_c.up.sql");
        let older = dir.load();
        let warned = Arc::new(Mutex::new(Vec::new()));
        let sink = warned.clone();
        let report = driver
            .execute(&db, &older, &UP, move |mig| {
                mig.on_event(move |e| {
                    if let Event::Warning(drift) = e {
                        sink.lock().unwrap().push(drift.to_string());
                    }
                })
            })
            .unwrap();
        let expected =
            "future: applied migrations newer than any of the migrations being run (an older \
                    release after a rollback?)\n  3 c";
        assert!(report.ran.is_empty());
        assert_eq!(report.warnings.len(), 1);
        assert_eq!(report.warnings[0].kind, DriftKind::Future);
        assert_eq!(report.warnings[0].to_string(), expected);
        assert_eq!(*warned.lock().unwrap(), vec![expected.to_owned()]);
        // A warning, not a change: the newer row stays.
        assert_eq!(history_rows(&db), 3);
    }
);

// ---------------------------------------------------------------------------------------------
// Behind a transaction pooler.

/// The error a run reports behind a transaction pooler, with the two backends it saw.
fn assert_pooler_detected<T: std::fmt::Debug>(result: Result<T, Error>) {
    let err = result.unwrap_err();
    let Error::PoolerDetected { before, after } = err else {
        panic!("expected the pooler to be detected: {err:?}");
    };
    assert_ne!(before, after);
    assert_eq!(
        err.to_string(),
        format!(
            "transaction pooler detected: the server session changed during the run (backend \
             pid {before} then {after}), so the migrations lock is not held; use a direct or \
             session-pooled connection (the pooler's server session may keep the lock until \
             the pool reconnects)"
        )
    );
}

/// A maintenance operation through the pooler.
#[derive(Clone, Copy, Debug)]
enum Maintenance {
    Repair,
    Baseline,
    Down,
}

/// `operation` through a real PgBouncer (transaction pooling) is refused before it changes
/// anything; the same operation on a direct connection then works.
fn through_pooler(driver: Driver, operation: Maintenance) {
    let db = TestDb::on_own_server();
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a ();"),
        ("1_a.down.sql", "DROP TABLE a;"),
        // Fails at its second statement: a `failed` row for repair to clear.
        (
            "2_b.up.sql",
            "-- migrations:no-transaction\nCREATE TABLE b ();\nSELECT 1 / 0;\n",
        ),
    ]);
    let m = dir.load();
    match operation {
        Maintenance::Repair => {
            assert!(Driver::Sync.up(&db, &m).is_err());
        }
        Maintenance::Down => {
            Driver::Sync
                .execute(&db, &m, &Operation::Up { to: Some(1) }, |mig| mig)
                .unwrap();
        }
        Maintenance::Baseline => {}
    }
    let rows = || {
        column(
            &db,
            "SELECT string_agg(version || ' ' || state, ',' ORDER BY version) \
             FROM public.migrations_history",
        )
    };
    let before = match operation {
        Maintenance::Baseline => Vec::new(),
        _ => rows(),
    };

    let bouncer = PgBouncer::start(&db);
    let via = bouncer.url();
    let mut migrator = Migrator::new(&m);
    match driver {
        Driver::Sync => {
            let mut client = postgres::Client::connect(&via, postgres::NoTls).unwrap();
            match operation {
                Maintenance::Repair => {
                    assert_pooler_detected(migrator.repair(&mut client, None, false))
                }
                Maintenance::Baseline => assert_pooler_detected(migrator.baseline(&mut client, 1)),
                Maintenance::Down => {
                    assert_pooler_detected(migrator.down(&mut client, DownTarget::Count(1)))
                }
            }
        }
        Driver::Async => runtime().block_on(async {
            let mut client = connect_async(&via).await;
            match operation {
                Maintenance::Repair => {
                    assert_pooler_detected(migrator.repair_async(&mut client, None, false).await)
                }
                Maintenance::Baseline => {
                    assert_pooler_detected(migrator.baseline_async(&mut client, 1).await)
                }
                Maintenance::Down => assert_pooler_detected(
                    migrator.down_async(&mut client, DownTarget::Count(1)).await,
                ),
            }
        }),
    }
    // Nothing changed.
    match operation {
        Maintenance::Baseline => assert!(!table_exists(&db, "public.migrations_history")),
        _ => assert_eq!(rows(), before),
    }
    if let Maintenance::Down = operation {
        assert!(table_exists(&db, "a"));
    }
    // Stopping the pooler closes its server sessions, and any lock left in one.
    drop(bouncer);
    let mut migrator = Migrator::new(&m);
    let mut client = db.connect();
    match operation {
        Maintenance::Repair => {
            assert_eq!(
                migrator.repair(&mut client, None, false).unwrap(),
                vec!["2 b: cleared failed state".to_owned()]
            );
        }
        Maintenance::Baseline => {
            assert_eq!(migrator.baseline(&mut client, 1).unwrap().len(), 1);
        }
        Maintenance::Down => {
            assert_eq!(
                migrator
                    .down(&mut client, DownTarget::Count(1))
                    .unwrap()
                    .ran
                    .len(),
                1
            );
            assert!(!table_exists(&db, "a"));
        }
    }
}

#[test]
fn pooler_detected_on_async_up() {
    let db = TestDb::on_own_server();
    let dir = Dir::new(&[("1_t.up.sql", "CREATE TABLE t ();")]);
    let m = dir.load();
    let bouncer = PgBouncer::start(&db);
    runtime().block_on(async {
        let mut client = connect_async(&bouncer.url()).await;
        assert_pooler_detected(Migrator::new(&m).run_async(&mut client).await);
    });
    assert!(!table_exists(&db, "t"), "nothing ran");
    assert!(!table_exists(&db, "public.migrations_history"));
    drop(bouncer);
    assert_eq!(Driver::Async.up(&db, &m).unwrap().ran.len(), 1);
}

#[test]
fn pooler_detected_on_repair_sync() {
    through_pooler(Driver::Sync, Maintenance::Repair);
}

#[test]
fn pooler_detected_on_repair_async() {
    through_pooler(Driver::Async, Maintenance::Repair);
}

#[test]
fn pooler_detected_on_baseline_sync() {
    through_pooler(Driver::Sync, Maintenance::Baseline);
}

#[test]
fn pooler_detected_on_baseline_async() {
    through_pooler(Driver::Async, Maintenance::Baseline);
}

#[test]
fn pooler_detected_on_down_sync() {
    through_pooler(Driver::Sync, Maintenance::Down);
}

#[test]
fn pooler_detected_on_down_async() {
    through_pooler(Driver::Async, Maintenance::Down);
}
