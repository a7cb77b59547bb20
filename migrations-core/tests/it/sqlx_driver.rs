//! `Migrator::run_sqlx` on a real `sqlx::PgPool` against a real server: the same engine as
//! the other drivers, so the same history, lock, no-transaction steps, session hygiene, warm
//! start and error details (SQLSTATE, statement) come out of it.

#![cfg(feature = "sqlx")]
#![allow(clippy::result_large_err)] // the core's error is returned once per run

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row as _};

use crate::common::{column, runtime, scalar, table_exists, Dir};
use migrations_core::{Error, Migrator, State};
use migrations_tests::test_db;

async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("sqlx could not connect: {e}"))
}

/// The files of a service: a transactional migration, a no-transaction one (an index built
/// concurrently) and one that changes a session setting (which must not reach the caller).
fn service_dir() -> Dir {
    Dir::new(&[
        (
            "1_users.up.sql",
            "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);",
        ),
        (
            "2_users_email.up.sql",
            "-- migrations:no-transaction\n\
             CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email);\n",
        ),
        (
            "3_session.up.sql",
            "SET timezone = 'Pacific/Kiritimati';\nCREATE TABLE posts (id bigint);",
        ),
    ])
}

#[test]
fn runs_on_a_pool_connection_with_the_engines_guarantees() {
    let db = test_db();
    let dir = service_dir();
    let m = dir.load();
    let key = Migrator::new(&m).lock_key();
    runtime().block_on(async {
        let pool = pool(db.url()).await;
        let mut conn = pool.acquire().await.unwrap();
        let before: String = sqlx::query_scalar("SHOW timezone")
            .fetch_one(&mut *conn)
            .await
            .unwrap();

        let report = Migrator::new(&m).run_sqlx(&mut conn).await.unwrap();
        let ran: Vec<i64> = report.ran.iter().map(|r| r.version).collect();
        assert_eq!(ran, [1, 2, 3]);
        assert!(report.ran[1].no_transaction);

        // Session hygiene: migration 3's SET did not leak into the service's connection.
        let after: String = sqlx::query_scalar("SHOW timezone")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(after, before);
        assert_ne!(after, "Pacific/Kiritimati");

        // The connection is still fine for the service's own queries.
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(n, 0);

        // Warm start: everything applied is one query, no lock.
        let again = Migrator::new(&m).run_sqlx(&mut conn).await.unwrap();
        assert!(again.ran.is_empty());
        assert!(again.up_to_date_fast, "{again:?}");

        // The history reads back through sqlx as through the other drivers.
        let history = Migrator::new(&m).history_sqlx(&mut conn).await.unwrap();
        assert_eq!(history.len(), 3);
        assert!(history.iter().all(|h| h.state == State::Applied));
    });
    // The same rows as the postgres driver writes: version, checksum, transaction mode.
    assert_eq!(
        column(
            &db,
            "SELECT version || ':' || no_transaction FROM migrations_history ORDER BY version"
        ),
        [
            Some("1:false".into()),
            Some("2:true".into()),
            Some("3:false".into())
        ]
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'users_email'::regclass"
        )
        .as_deref(),
        Some("true")
    );
    assert_eq!(db.advisory_lock_holders(key), 0, "the lock was released");
}

#[test]
fn a_failing_migration_reports_the_servers_error_and_releases_the_lock() {
    let db = test_db();
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (id int);"),
        (
            "2_b.up.sql",
            "CREATE TABLE b (id int);\nINSERT INTO missing VALUES (1);\n",
        ),
    ]);
    let m = dir.load();
    let key = Migrator::new(&m).lock_key();
    runtime().block_on(async {
        let pool = pool(db.url()).await;
        let mut conn = pool.acquire().await.unwrap();
        let error = Migrator::new(&m).run_sqlx(&mut conn).await.unwrap_err();
        match &error {
            Error::Migration {
                version,
                statement,
                source,
                ..
            } => {
                assert_eq!(*version, 2);
                // Decided by SQLSTATE (undefined_table), carried over from sqlx's error.
                assert_eq!(source.code.as_deref(), Some("42P01"), "{error}");
                assert_eq!(statement.map(|s| (s.number, s.line)), Some((2, 2)));
            }
            other => panic!("expected a migration error, got {other:?}"),
        }
        // The connection is usable afterwards: no transaction left open on it.
        let one: i32 = sqlx::query("SELECT 1")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .get(0);
        assert_eq!(one, 1);
    });
    assert!(table_exists(&db, "a"));
    assert!(!table_exists(&db, "b"), "migration 2 was rolled back");
    assert_eq!(db.advisory_lock_holders(key), 0);
}

#[test]
fn run_sqlx_pool_migrates_on_a_connection_of_its_own() {
    let db = test_db();
    let dir = service_dir();
    let m = dir.load();
    runtime().block_on(async {
        let pool = pool(db.url()).await;
        let report = Migrator::new(&m).run_sqlx_pool(&pool).await.unwrap();
        assert_eq!(report.ran.len(), 3);
        // The pool goes on serving the service.
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM posts")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 0);
        let status = Migrator::new(&m)
            .status_sqlx(&mut pool.acquire().await.unwrap())
            .await
            .unwrap();
        assert_eq!(status.len(), 3);
    });
}

/// Two services started at once on one database, both through sqlx: the lock lets one apply,
/// the other waits and finds nothing to do.
#[test]
fn two_sqlx_runners_at_once_apply_each_migration_once() {
    let db = test_db();
    let dir = Dir::new(&[
        (
            "1_a.up.sql",
            "CREATE TABLE a (id int);\nSELECT pg_sleep(0.5);",
        ),
        ("2_b.up.sql", "CREATE TABLE b (id int);"),
    ]);
    let m = dir.load();
    runtime().block_on(async {
        let pool = pool(db.url()).await;
        let (mut first, mut second) = (Migrator::new(&m), Migrator::new(&m));
        let (one, two) = tokio::join!(first.run_sqlx_pool(&pool), second.run_sqlx_pool(&pool));
        let mut counts = [one.unwrap().ran.len(), two.unwrap().ran.len()];
        counts.sort();
        assert_eq!(counts, [0, 2]);
    });
}
