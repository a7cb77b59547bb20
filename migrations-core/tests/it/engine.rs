//! The engine's behaviour on a real PostgreSQL, each test through the sync and the async
//! driver.
#![allow(clippy::result_large_err)] // the core's error is returned once per run

use crate::common;

use std::time::Duration;

use crate::common::{column, scalar, table_exists, Dir, Driver};
use migrations_core::plan::Status;
use migrations_core::{DownTarget, DriftKind, Error, Event, Operation};
use migrations_tests::test_db;

const USERS_UP: &str = "CREATE TABLE users (id int PRIMARY KEY, email text);\n-- ends in a comment";
const USERS_DOWN: &str = "DROP TABLE users;";

fn three() -> Dir {
    Dir::new(&[
        ("1_users.up.sql", USERS_UP),
        ("1_users.down.sql", USERS_DOWN),
        ("2_posts.up.sql", "CREATE TABLE posts (id int, user_id int REFERENCES users)"),
        ("2_posts.down.sql", "DROP TABLE posts;\n"),
        (
            "3_index.up.sql",
            "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS posts_user ON posts (user_id);\n",
        ),
        (
            "3_index.down.sql",
            "-- migrations:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS posts_user;\n",
        ),
    ])
}

behaviour!(applies_then_finds_nothing_to_do, |driver: Driver| {
    let db = test_db();
    let dir = three();
    let migrations = dir.load();
    let report = driver.up(&db, &migrations).unwrap();
    let ran: Vec<i64> = report.ran.iter().map(|r| r.version).collect();
    assert_eq!(ran, vec![1, 2, 3]);
    assert!(table_exists(&db, "posts_user"));
    let rows = column(
        &db,
        "SELECT version || ' ' || name || ' ' || state || ' ' || no_transaction || ' ' || checksum \
         FROM public.migrations_history ORDER BY version",
    );
    let expected: Vec<Option<String>> = migrations
        .iter()
        .map(|m| {
            Some(format!(
                "{} {} applied {} {}",
                m.version(),
                m.name(),
                if m.no_transaction() { "true" } else { "false" },
                m.checksum()
            ))
        })
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM public.migrations_history_audit WHERE event = 'up'"
        ),
        Some("3".into())
    );

    // Warm start: nothing to do, proven without the lock.
    let again = driver.up(&db, &migrations).unwrap();
    assert!(again.ran.is_empty());
    assert!(again.up_to_date_fast);
});

behaviour!(up_to_then_down_and_redo, |driver: Driver| {
    let db = test_db();
    let dir = three();
    let m = dir.load();
    let r = driver
        .execute(&db, &m, &Operation::Up { to: Some(2) }, |m| m)
        .unwrap();
    assert_eq!(r.ran.len(), 2);
    assert!(!table_exists(&db, "posts_user"));
    driver.up(&db, &m).unwrap();

    let r = driver
        .execute(&db, &m, &Operation::Down(DownTarget::Count(1)), |m| m)
        .unwrap();
    assert_eq!(r.ran.iter().map(|r| r.version).collect::<Vec<_>>(), vec![3]);
    assert!(!table_exists(&db, "posts_user"));

    let r = driver
        .execute(&db, &m, &Operation::Redo { count: 2 }, |m| m)
        .unwrap();
    let steps: Vec<String> = r
        .ran
        .iter()
        .map(|r| format!("{} {}", r.direction.as_str(), r.version))
        .collect();
    assert_eq!(steps, vec!["down 2", "down 1", "up 1", "up 2"]);

    let r = driver
        .execute(&db, &m, &Operation::Down(DownTarget::All), |m| m)
        .unwrap();
    assert_eq!(r.ran.len(), 2);
    assert!(!table_exists(&db, "users"));
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM public.migrations_history"),
        Some("0".into())
    );
});

behaviour!(edited_is_refused_with_both_checksums, |driver: Driver| {
    let db = test_db();
    let dir = three();
    driver.up(&db, &dir.load()).unwrap();
    let before = dir.load().get(1).unwrap().checksum().to_owned();
    dir.write(
        "1_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);",
    );
    dir.write("4_more.up.sql", "CREATE TABLE more ();");
    let edited = dir.load();
    let err = driver.up(&db, &edited).unwrap_err();
    assert!(err.is_drift());
    let text = err.to_string();
    assert!(
        text.starts_with("the database has drifted from the migrations; nothing was run\nedited:"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "1 users: applied checksum {before}, file checksum {}",
            edited.get(1).unwrap().checksum()
        )),
        "{text}"
    );
    assert!(
        !table_exists(&db, "more"),
        "nothing runs when drift is refused"
    );

    // Accepting the new checksum is a repair, recorded in the audit.
    driver.repair(&db, &edited, Some(1), true).unwrap();
    driver.up(&db, &edited).unwrap();
    assert!(table_exists(&db, "more"));
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM public.migrations_history_audit WHERE event = 'repair'"
        ),
        Some("1".into())
    );
});

behaviour!(missing_future_and_out_of_order, |driver: Driver| {
    let db = test_db();
    let dir = three();
    driver.up(&db, &dir.load()).unwrap();

    // Future: the newest applied migration is unknown to an older binary: a warning only.
    dir.remove("3_index.up.sql");
    dir.remove("3_index.down.sql");
    let older = dir.load();
    let report = driver.up(&db, &older).unwrap();
    assert_eq!(report.warnings.len(), 1);
    assert_eq!(report.warnings[0].kind, DriftKind::Future);
    assert_eq!(report.warnings[0].items[0].version, 3);

    // Missing: an applied migration below the newest known one is gone.
    dir.write("4_later.up.sql", "SELECT 1;");
    dir.remove("2_posts.up.sql");
    dir.remove("2_posts.down.sql");
    let err = driver.up(&db, &dir.load()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "missing: applied migrations absent from the migrations being run (the directory, or \
             the service's embedded ones), below their newest version"
        ),
        "{text}"
    );
    assert!(text.contains("\n  2 posts"), "{text}");

    // Out of order: a pending migration below the highest applied one.
    let dir = three();
    let db = test_db();
    dir.remove("2_posts.up.sql");
    dir.remove("2_posts.down.sql");
    dir.remove("3_index.down.sql");
    dir.write("3_index.up.sql", "SELECT 3;");
    driver.up(&db, &dir.load()).unwrap();
    dir.write("2_posts.up.sql", "SELECT 2;");
    let err = driver.up(&db, &dir.load()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("out-of-order: pending migrations below the highest applied version"),
        "{text}"
    );
    assert!(text.contains("2 posts: below applied version 3"), "{text}");
    let r = driver
        .execute(&db, &dir.load(), &Operation::Up { to: None }, |m| {
            m.allow_out_of_order(true)
        })
        .unwrap();
    assert_eq!(r.ran.len(), 1);
    assert_eq!(r.warnings[0].kind, DriftKind::OutOfOrder);
});

behaviour!(no_transaction_failure_then_repair, |driver: Driver| {
    let db = test_db();
    let dir = Dir::new(&[
        ("1_t.up.sql", "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1), (1);"),
        (
            "2_unique.up.sql",
            "-- migrations:no-transaction\nCREATE TABLE side (y int);\n\nCREATE UNIQUE INDEX CONCURRENTLY t_x ON t (x);\n",
        ),
    ]);
    let m = dir.load();
    let err = driver.up(&db, &m).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "up 2 unique failed at statement 2 of 2 ({}:4): could not create unique index \"t_x\"",
            dir.path().join("2_unique.up.sql").display()
        )),
        "{text}"
    );
    assert!(
        text.contains("invalid index left behind: t_x (`migrations repair 2` drops it)"),
        "{text}"
    );
    assert_eq!(
        scalar(&db, "SELECT state || ' ' || statements_done || '/' || statements_total || ' ' || array_to_string(invalid_indexes, ',') FROM public.migrations_history WHERE version = 2"),
        Some("failed 1/2 t_x".into())
    );

    // Later runs refuse until repair.
    let err = driver.up(&db, &m).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("failed: no-transaction migrations that failed part-way"),
        "{text}"
    );
    assert!(
        text.contains("2 unique: failed at statement 2 of 2"),
        "{text}"
    );
    assert!(text.contains("invalid indexes left behind: t_x"), "{text}");
    let status = driver.status(&db, &m);
    assert_eq!(status[1].status, Status::Failed);

    // Fix the data, repair (drops the invalid index), run again from the first statement.
    db.connect()
        .batch_execute("DELETE FROM t; INSERT INTO t VALUES (1), (2); DROP TABLE side;")
        .unwrap();
    let repaired = driver.repair(&db, &m, Some(2), false).unwrap();
    assert_eq!(
        repaired,
        vec!["2 unique: cleared failed state, dropped t_x".to_owned()]
    );
    assert!(!table_exists(&db, "t_x"));
    let r = driver.up(&db, &m).unwrap();
    assert_eq!(r.ran.len(), 1);
    assert_eq!(
        scalar(
            &db,
            "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 't_x'::regclass"
        ),
        Some("true".into())
    );
});

behaviour!(
    invalid_index_found_by_if_not_exists_is_a_failure,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[(
            "1_t.up.sql",
            "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1), (1);",
        )]);
        driver.up(&db, &dir.load()).unwrap();
        // A leftover invalid index from an earlier failed build, made outside the runner.
        let _ = db
            .connect()
            .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY t_x ON t (x)");
        assert_eq!(
            scalar(
                &db,
                "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 't_x'::regclass"
            ),
            Some("false".into())
        );
        db.connect().batch_execute("DELETE FROM t").unwrap();
        dir.write("2_idx.up.sql", "-- migrations:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_x ON t (x);");
        let err = driver.up(&db, &dir.load()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("the statement succeeded but left invalid index t_x"),
            "{text}"
        );
    }
);

behaviour!(lock_timeout_is_retried_then_reported, |driver: Driver| {
    let db = test_db();
    let dir = Dir::new(&[("1_t.up.sql", "CREATE TABLE t (x int);")]);
    driver.up(&db, &dir.load()).unwrap();
    dir.write("2_alter.up.sql", "ALTER TABLE t ADD COLUMN y int;");
    let m = dir.load();

    // A holder that lets go after a moment: the migration retries and succeeds.
    let url = db.url().to_owned();
    let holder = std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut tx = c.transaction().unwrap();
        tx.batch_execute("LOCK TABLE t IN ACCESS SHARE MODE")
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        tx.commit().unwrap();
    });
    std::thread::sleep(Duration::from_millis(200));
    let retries = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = retries.clone();
    let r = driver
        .execute(&db, &m, &Operation::Up { to: None }, move |mig| {
            mig.lock_timeout(Duration::from_millis(100))
                .lock_retries(5, Duration::from_millis(100))
                .on_event(move |e| {
                    if let Event::Retrying { .. } = e {
                        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                })
        })
        .unwrap();
    holder.join().unwrap();
    assert_eq!(r.ran.len(), 1);
    assert!(retries.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    // A holder that stays: a clear lock-timeout error after the bounded retries.
    dir.write("3_alter.up.sql", "ALTER TABLE t ADD COLUMN z int;");
    let m = dir.load();
    let mut holder = db.connect();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE t IN ACCESS SHARE MODE")
        .unwrap();
    let err = driver
        .execute(&db, &m, &Operation::Up { to: None }, |mig| {
            mig.lock_timeout(Duration::from_millis(50))
                .lock_retries(2, Duration::from_millis(20))
        })
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::LockTimeout { attempts: 3, .. }),
        "{text}"
    );
    assert!(
        text.starts_with(
            "up 3 alter could not take its locks: lock_timeout expired on each of 3 attempts"
        ),
        "{text}"
    );
    tx.rollback().unwrap();
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM public.migrations_history WHERE version = 3"
        ),
        Some("0".into())
    );
});

behaviour!(session_settings_do_not_leak, |driver: Driver| {
    let db = test_db();
    db.connect()
        .batch_execute("CREATE SCHEMA elsewhere")
        .unwrap();
    let dir = Dir::new(&[
        ("1_set.up.sql", "SET timezone = 'Pacific/Auckland';\nSET search_path = elsewhere;\nCREATE TABLE in_elsewhere ();"),
        (
            "2_check.up.sql",
            "DO $$ BEGIN\n  IF current_setting('TimeZone') = 'Pacific/Auckland' THEN RAISE 'timezone leaked'; END IF;\n  IF current_setting('search_path') = 'elsewhere' THEN RAISE 'search_path leaked'; END IF;\nEND $$;\nCREATE TABLE in_public ();",
        ),
    ]);
    let m = dir.load();
    match driver {
        Driver::Sync => {
            let mut client = db.connect();
            client.batch_execute("SET timezone = 'UTC'").unwrap();
            migrations_core::Migrator::new(&m).run(&mut client).unwrap();
            let tz = client.simple_query("SHOW timezone").unwrap();
            let tz = match &tz[1] {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).unwrap().to_owned(),
                _ => String::new(),
            };
            assert_eq!(tz, "UTC", "the caller's session keeps its own timezone");
            let path = client
                .query_one("SHOW search_path", &[])
                .unwrap()
                .get::<_, String>(0);
            assert_eq!(path, "\"$user\", public");
        }
        Driver::Async => common::runtime().block_on(async {
            let mut client = common::connect_async(db.url()).await;
            client.batch_execute("SET timezone = 'UTC'").await.unwrap();
            migrations_core::Migrator::new(&m)
                .run_async(&mut client)
                .await
                .unwrap();
            let row = client.query_one("SHOW timezone", &[]).await.unwrap();
            assert_eq!(row.get::<_, String>(0), "UTC");
            let row = client.query_one("SHOW search_path", &[]).await.unwrap();
            assert_eq!(row.get::<_, String>(0), "\"$user\", public");
        }),
    }
    assert!(table_exists(&db, "elsewhere.in_elsewhere"));
    assert!(table_exists(&db, "public.in_public"));
});

behaviour!(panic_in_callback_releases_the_lock, |driver: Driver| {
    let db = test_db();
    let dir = three();
    let m = dir.load();
    let key = migrations_core::Migrator::new(&m).lock_key();
    let url = db.url().to_owned();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        driver.execute(&db, &m, &Operation::Up { to: None }, |mig| {
            mig.on_event(move |e| {
                if let Event::Finished { version: 1, .. } = e {
                    // Held at this point, so the check for 0 below can fail. (A thread of its
                    // own: the async driver calls back inside a runtime.)
                    let url = url.clone();
                    let held = std::thread::spawn(move || {
                        migrations_tests::advisory_lock_holders(&url, key)
                    });
                    assert_eq!(held.join().unwrap(), 1, "the run holds the lock");
                    panic!("callback bug");
                }
            })
        })
    }));
    assert!(result.is_err(), "the panic goes on to the caller");
    assert_eq!(db.advisory_lock_holders(key), 0, "the lock is released");
    let r = driver.up(&db, &m).unwrap();
    assert_eq!(r.ran.len(), 2, "migration 1 was applied before the panic");
});

behaviour!(single_transaction_is_all_or_nothing, |driver: Driver| {
    let db = test_db();
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a ();"),
        ("2_b.up.sql", "CREATE TABLE b ();"),
        ("3_bad.up.sql", "CREATE TABLE c (x no_such_type);"),
    ]);
    let err = driver
        .execute(&db, &dir.load(), &Operation::Up { to: None }, |m| {
            m.single_transaction(true)
        })
        .unwrap_err();
    assert!(
        err.to_string().ends_with(
            "; the single transaction of 3 migrations was rolled back: none of them is applied"
        ),
        "{err}"
    );
    assert!(!table_exists(&db, "a"));
    dir.write("3_bad.up.sql", "CREATE TABLE c ();");
    let r = driver
        .execute(&db, &dir.load(), &Operation::Up { to: None }, |m| {
            m.single_transaction(true)
        })
        .unwrap();
    assert_eq!(r.ran.len(), 3);
    assert!(table_exists(&db, "c"));
});

behaviour!(sql_error_names_migration_and_line, |driver: Driver| {
    let db = test_db();
    let dir = Dir::new(&[(
        "1_a.up.sql",
        "CREATE TABLE a ();\n\nCREATE TABLE b (x no_such_type);\n",
    )]);
    let err = driver.up(&db, &dir.load()).unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        format!(
            "up 1 a failed at statement 2 of 2 ({}:3): type \"no_such_type\" does not exist \
             (SQLSTATE 42704)",
            dir.path().join("1_a.up.sql").display()
        )
    );
    assert!(!table_exists(&db, "a"), "the whole migration rolled back");
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM public.migrations_history"),
        Some("0".into())
    );
});

behaviour!(history_in_a_quoted_schema_and_table, |driver: Driver| {
    let db = test_db();
    db.connect()
        .batch_execute("CREATE SCHEMA \"Odd \"\"schema\"")
        .unwrap();
    let dir = three();
    let m = dir.load();
    fn configure(mig: migrations_core::Migrator<'_>) -> migrations_core::Migrator<'_> {
        mig.schema("Odd \"schema")
            .table("my history; DROP TABLE users")
    }
    driver
        .execute(&db, &m, &Operation::Up { to: None }, configure)
        .unwrap();
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM \"Odd \"\"schema\".\"my history; DROP TABLE users\""
        ),
        Some("3".into())
    );
    assert!(table_exists(&db, "users"));
    let r = driver
        .execute(&db, &m, &Operation::Up { to: None }, configure)
        .unwrap();
    assert!(r.up_to_date_fast);
});

behaviour!(down_refused_in_transaction_explains, |driver: Driver| {
    let db = test_db();
    let dir = Dir::new(&[
        ("1_t.up.sql", "CREATE TABLE t (x int);"),
        (
            "2_i.up.sql",
            "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_i ON t (x);",
        ),
        ("2_i.down.sql", "DROP INDEX CONCURRENTLY t_i;"),
    ]);
    let m = dir.load();
    driver.up(&db, &m).unwrap();
    let err = driver
        .execute(&db, &m, &Operation::Down(DownTarget::Count(1)), |m| m)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "down 2 i: line 1: DROP INDEX CONCURRENTLY cannot run inside a transaction block; add `-- migrations:no-transaction` as the first line of the file"
    );
});

#[test]
fn offline_script_runs_in_psql_with_the_same_bookkeeping() {
    use migrations_core::plan::Direction;
    use migrations_core::{offline_script, Names, OfflineRange};
    let db = test_db();
    let dir = three();
    let m = dir.load();
    let script = offline_script(
        &m,
        &Names::default(),
        OfflineRange {
            from: None,
            to: None,
            direction: Direction::Up,
        },
    )
    .unwrap();
    let file = dir.path().join("up.sql.out");
    std::fs::write(&file, &script).unwrap();
    let psql = |file: &std::path::Path| {
        let out = std::process::Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(file)
            .arg(db.url())
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&file);
    assert!(table_exists(&db, "posts_user"));
    // The runner finds the offline bookkeeping identical to its own: nothing to do, fast.
    let r = Driver::Sync.up(&db, &m).unwrap();
    assert!(
        r.up_to_date_fast,
        "digest of the offline history equals the binary's"
    );

    let down = offline_script(
        &m,
        &Names::default(),
        OfflineRange {
            from: None,
            to: Some(1),
            direction: Direction::Down,
        },
    )
    .unwrap();
    std::fs::write(&file, &down).unwrap();
    psql(&file);
    assert!(!table_exists(&db, "posts"));
    assert!(table_exists(&db, "users"));
    assert_eq!(
        column(&db, "SELECT version::text FROM public.migrations_history"),
        vec![Some("1".to_owned())]
    );
}

#[test]
fn adopts_diesel_and_sqlx_history() {
    use migrations_core::{Migrator, Tool};
    // diesel: versions only, taken on trust.
    let db = test_db();
    let dir = three();
    let m = dir.load();
    let mut client = db.connect();
    client
        .batch_execute(&format!(
            "{USERS_UP};\nCREATE TABLE posts (id int, user_id int REFERENCES users);\n\
             CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY, run_on timestamp NOT NULL DEFAULT now());\n\
             INSERT INTO __diesel_schema_migrations (version) VALUES ('1'), ('2');"
        ))
        .unwrap();
    let adopted = Migrator::new(&m)
        .adopt(&mut client, Tool::Diesel, Some(2))
        .unwrap();
    assert_eq!(
        adopted,
        vec![
            "1 users: adopted from __diesel_schema_migrations",
            "2 posts: adopted from __diesel_schema_migrations"
        ]
    );
    let r = Migrator::new(&m).run(&mut client).unwrap();
    assert_eq!(r.ran.iter().map(|r| r.version).collect::<Vec<_>>(), vec![3]);

    // sqlx: SHA-384 checked, failed rows refused.
    let db = test_db();
    let mut client = db.connect();
    let sql1 = m.get(1).unwrap().up().sql().replace('\'', "''");
    client
        .batch_execute(&format!(
            "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL, installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL, checksum bytea NOT NULL, execution_time bigint NOT NULL);\n\
             INSERT INTO _sqlx_migrations VALUES (1, 'users', now(), true, sha384(convert_to('{sql1}', 'UTF8')), 1),\n\
             (2, 'posts', now(), false, sha384(convert_to('x', 'UTF8')), 1);"
        ))
        .unwrap();
    let err = Migrator::new(&m)
        .adopt(&mut client, Tool::Sqlx, Some(2))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("cannot adopt _sqlx_migrations; nothing was recorded:"),
        "{text}"
    );
    assert!(
        text.contains("2 posts: sqlx recorded it as failed (success = false)"),
        "{text}"
    );
    client
        .batch_execute("UPDATE _sqlx_migrations SET success = true WHERE version = 2")
        .unwrap();
    let err = Migrator::new(&m)
        .adopt(&mut client, Tool::Sqlx, Some(2))
        .unwrap_err();
    assert!(err.to_string().contains("2 posts: sqlx checksum"), "{err}");
    client
        .batch_execute("DELETE FROM _sqlx_migrations WHERE version = 2")
        .unwrap();
    let adopted = Migrator::new(&m)
        .adopt(&mut client, Tool::Sqlx, Some(2))
        .unwrap();
    assert_eq!(adopted, vec!["1 users: adopted from _sqlx_migrations"]);
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM public.migrations_history_audit WHERE event = 'baseline'"
        ),
        Some("1".into())
    );
}

#[test]
fn baseline_records_without_running() {
    use migrations_core::Migrator;
    let db = test_db();
    let dir = three();
    let m = dir.load();
    let mut client = db.connect();
    let done = Migrator::new(&m).baseline(&mut client, 2).unwrap();
    assert_eq!(done.len(), 2);
    assert!(!table_exists(&db, "users"), "baseline runs nothing");
    let err = Migrator::new(&m).baseline(&mut client, 7).unwrap_err();
    assert_eq!(err.to_string(), "version 7 is not one of the migrations being run; give one of their versions (`migrations status` lists them)");
}

behaviour!(
    failed_no_transaction_down_is_recorded_as_the_down,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[
        ("1_t.up.sql", "CREATE TABLE t (x int);"),
        ("2_i.up.sql", "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_i ON t (x);"),
        (
            "2_i.down.sql",
            "-- migrations:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS t_i;\nSELECT 1;\nSELECT 1/0;",
        ),
    ]);
        let m = dir.load();
        driver.up(&db, &m).unwrap();
        let err = driver
            .execute(&db, &m, &Operation::Down(DownTarget::Count(1)), |m| m)
            .unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "down 2 i failed at statement 3 of 3 ({}:4): division by zero",
                dir.path().join("2_i.down.sql").display()
            )),
            "{err}"
        );
        assert_eq!(
        scalar(&db, "SELECT state || ' ' || statements_done || '/' || statements_total FROM public.migrations_history WHERE version = 2"),
        Some("failed 2/3".into())
    );
        let err = driver.up(&db, &m).unwrap_err();
        assert!(
            err.to_string()
                .contains("2 i: failed at statement 3 of 3: down script: division by zero"),
            "{err}"
        );
    }
);

behaviour!(dead_runner_blames_only_its_own_indexes, |driver: Driver| {
    let db = test_db();
    let dir = Dir::new(&[
        ("1_t.up.sql", "CREATE TABLE t (x int, y int);\nINSERT INTO t VALUES (1, 1), (1, 1);"),
        ("2_y.up.sql", "-- migrations:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_y ON t (y);"),
    ]);
    let m = dir.load();
    driver
        .execute(&db, &m, &Operation::Up { to: Some(1) }, |m| m)
        .unwrap();
    let mut c = db.connect();
    // Someone else's failed build, unrelated to any migration.
    let _ = c.batch_execute("CREATE UNIQUE INDEX CONCURRENTLY t_x ON t (x)");
    // What a runner killed during migration 2 leaves: its invalid index and a running row.
    let _ = c.batch_execute("CREATE UNIQUE INDEX CONCURRENTLY t_y ON t (y)");
    c.batch_execute(&format!(
        "INSERT INTO public.migrations_history (version, version_digits, name, checksum, no_transaction, state, statements_done, statements_total) \
         VALUES (2, '2', 'y', '{}', true, 'running', 0, 1)",
        m.get(2).unwrap().checksum()
    ))
    .unwrap();
    let err = driver.up(&db, &m).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("2 y: failed at statement 1 of 1: the runner stopped"),
        "{text}"
    );
    assert!(text.contains("invalid indexes left behind: t_y"), "{text}");
    assert!(
        !text.contains("t_x"),
        "an unrelated invalid index is not blamed: {text}"
    );
    let repaired = driver.repair(&db, &m, Some(2), false).unwrap();
    assert_eq!(
        repaired,
        vec!["2 y: cleared failed state, dropped t_y".to_owned()]
    );
    assert!(
        table_exists(&db, "t_x"),
        "repair drops only what the migration left"
    );
});

/// The async API has every operation of the sync one, through the same engine: history and
/// audit read the same rows, and an audit event recorded through either lands the same way.
#[test]
fn async_history_audit_and_record_match_the_sync_api() {
    use crate::common::{connect_async, runtime};
    use migrations_core::Migrator;
    let db = test_db();
    let dir = three();
    let m = dir.load();
    let mut client = db.connect();
    let mut migrator = Migrator::new(&m);
    migrator.run(&mut client).unwrap();
    migrator
        .record_audit(&mut client, "lock-rewrite", None, None, None, Some("sync"))
        .unwrap();
    let history = migrator.history(&mut client).unwrap();
    let audit = migrator.audit(&mut client).unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(audit.len(), 4);

    let (async_history, async_audit, after) = runtime().block_on(async {
        let mut client = connect_async(db.url()).await;
        let mut migrator = Migrator::new(&m);
        let history = migrator.history_async(&mut client).await.unwrap();
        let audit = migrator.audit_async(&mut client).await.unwrap();
        migrator
            .record_audit_async(
                &mut client,
                "lock-rewrite",
                Some(3),
                Some("tags"),
                None,
                Some("async"),
            )
            .await
            .unwrap();
        let after = migrator.audit_async(&mut client).await.unwrap();
        (history, audit, after)
    });
    assert_eq!(async_history, history);
    assert_eq!(async_audit, audit);
    assert_eq!(after.len(), 5);
    let last = after.last().unwrap();
    assert_eq!(
        (
            last.event.as_str(),
            last.version,
            last.name.as_deref(),
            last.detail.as_deref()
        ),
        ("lock-rewrite", Some(3), Some("tags"), Some("async"))
    );
    // Recorded under the migrations lock, which is released after.
    assert_eq!(db.advisory_lock_holders(migrator.lock_key()), 0);
}
