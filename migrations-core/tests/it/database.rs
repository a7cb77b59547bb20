//! `migrations_core::database`: creating and dropping the database a connection string names,
//! from the maintenance database, on a real server; the refusals decided by SQLSTATE carry
//! the role, the sessions and the fix.

#![cfg(feature = "connect")]

use migrations_core::connect::ConnectOptions;
use migrations_core::database::{self, DatabaseError};
use migrations_tests::{test_db, TestDb};

use crate::common::runtime;

fn options(url: String) -> ConnectOptions {
    ConnectOptions {
        url: Some(url),
        application_name: Some("database-test".into()),
        ..ConnectOptions::default()
    }
}

/// The unique head of the test database's name (`mt_<pid>_<n>_<hex>`): the whole name, with
/// the test's name appended, is longer than the 63 bytes PostgreSQL keeps.
fn short(db: &TestDb) -> String {
    db.name().split('_').take(4).collect::<Vec<_>>().join("_")
}

/// A database name that does not exist yet, unique to this test (derived from its own).
fn fresh(db: &TestDb, suffix: &str) -> (String, ConnectOptions) {
    let name = format!("{}_{suffix}", short(db));
    (name.clone(), options(db.url_for_database(&name)))
}

#[test]
fn create_then_drop_sync() {
    let db = test_db();
    let (name, opts) = fresh(&db, "sync");
    assert_eq!(database::name(&opts).unwrap(), name);
    assert!(!database::exists(&opts).unwrap());
    assert!(database::create(&opts).unwrap(), "created");
    assert!(database::exists(&opts).unwrap());
    assert!(
        !database::create(&opts).unwrap(),
        "already there: nothing to do"
    );
    assert!(database::drop(&opts, false).unwrap(), "dropped");
    assert!(!database::exists(&opts).unwrap());
    assert!(!database::drop(&opts, false).unwrap(), "none left to drop");
}

#[test]
fn create_then_drop_async() {
    let db = test_db();
    let (_, opts) = fresh(&db, "async");
    runtime().block_on(async {
        assert!(database::create_async(&opts).await.unwrap());
        assert!(database::exists_async(&opts).await.unwrap());
        assert!(database::drop_async(&opts, false).await.unwrap());
        assert!(!database::exists_async(&opts).await.unwrap());
    });
}

/// The name is quoted as an identifier: capitals, spaces and quotes are kept as written.
#[test]
fn an_odd_name_is_quoted() {
    let db = test_db();
    let (name, opts) = fresh(&db, "Odd \"Name\" x");
    assert!(database::create(&opts).unwrap());
    let mut admin = db.connect_admin();
    let n: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    assert!(database::drop(&opts, false).unwrap());
}

#[test]
fn drop_refuses_while_sessions_use_it_and_names_them_then_force_ends_them() {
    let db = test_db();
    let (name, opts) = fresh(&db, "busy");
    assert!(database::create(&opts).unwrap());
    let url = db.url_for_database(&name);
    let mut config: postgres::Config = url.parse().unwrap();
    let mut other = config
        .application_name("still-here")
        .connect(postgres::NoTls)
        .unwrap();
    let pid: i32 = other
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);

    // Who the session is, as the server sees it (user and address depend on the harness).
    let (user, client): (String, Option<String>) = {
        let row = other
            .query_one("SELECT current_user::text, host(inet_client_addr())", &[])
            .unwrap();
        (row.get(0), row.get(1))
    };

    let error = database::drop(&opts, false).unwrap_err();
    match &error {
        DatabaseError::InUse { database, sessions } => {
            assert_eq!(database, &name);
            assert_eq!(sessions.len(), 1, "{sessions:?}");
            assert_eq!(sessions[0].pid, pid);
            assert_eq!(sessions[0].user.as_deref(), Some(user.as_str()));
            assert_eq!(sessions[0].application.as_deref(), Some("still-here"));
            assert_eq!(sessions[0].client, client);
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    assert_eq!(error.sqlstate(), Some("55006"));
    let from = client.map(|c| format!(" from {c}")).unwrap_or_default();
    assert_eq!(
        error.to_string(),
        format!(
            "database \"{name}\" is being used by 1 other session: pid {pid} user {user} \
             application still-here{from} (SQLSTATE 55006); close them, or drop with force \
             (`migrations database drop --force`), which ends them (DROP DATABASE ... WITH \
             (FORCE) on PostgreSQL 13 and later)"
        )
    );
    assert!(database::exists(&opts).unwrap(), "nothing was dropped");

    assert!(
        database::drop(&opts, true).unwrap(),
        "force ends the session"
    );
    assert!(!database::exists(&opts).unwrap());
    assert!(
        other.simple_query("SELECT 1").is_err(),
        "its session was ended"
    );
}

/// A role without CREATEDB: the error names the role and the `ALTER ROLE` that fixes it.
#[test]
fn create_without_createdb_names_the_role_and_the_fix() {
    let db = test_db();
    let role = format!("{}_nocreatedb", short(&db));
    let mut admin = db.connect_admin();
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN PASSWORD 'role-pw-123' NOCREATEDB"
        ))
        .unwrap();
    let target = format!("{}_denied", short(&db));
    let url = with_user(&db.url_for_database(&target), &role, "role-pw-123");
    let error = database::create(&options(url)).unwrap_err();
    admin
        .batch_execute(&format!("DROP ROLE \"{role}\""))
        .unwrap();
    assert!(
        matches!(&error, DatabaseError::PermissionDenied { role: r, .. } if r == &role),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "role \"{role}\" may not create databases (SQLSTATE 42501): grant it with \
             `ALTER ROLE \"{role}\" CREATEDB` as a superuser, or create database \"{target}\" \
             as a role that may"
        )
    );
}

/// `url` with its user info replaced by `user:password`.
pub fn with_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let rest = match rest.split_once('@') {
        Some((_, host)) => host,
        None => rest,
    };
    format!("{scheme}://{user}:{password}@{rest}")
}

/// A name longer than the server keeps would silently mean another database (here: the test's
/// own, whose name is a prefix of it): refused before anything is looked at or changed.
#[test]
fn a_name_the_server_would_cut_is_refused() {
    let db = test_db();
    let long = format!("{}{}", db.name(), "x".repeat(64));
    let opts = options(db.url_for_database(&long));
    let error = database::drop(&opts, true).unwrap_err();
    assert!(
        matches!(error, DatabaseError::NameTooLong { max: 63, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "database name \"{long}\" is {} bytes long; PostgreSQL keeps only the first 63 \
             bytes of a name, so it would act on \"{}\" instead: choose a shorter name",
            long.len(),
            &long[..63]
        )
    );
    assert!(matches!(
        database::create(&opts),
        Err(DatabaseError::NameTooLong { .. })
    ));
    // The test's own database is still there.
    db.connect().simple_query("SELECT 1").unwrap();
}
