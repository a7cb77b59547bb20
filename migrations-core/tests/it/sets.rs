//! Several migration sets in one database: a library crate's set with its own history table
//! (`[run] table` in its `migrations.toml`, which the macro and the loader carry into
//! `Migrator::new`) beside the service's own. Each set has its own lock, history and drift
//! checks; running both, in any order and again, leaves each alone.

#![allow(clippy::result_large_err)] // the core's error is returned once per run

use crate::common::{column, Dir};
use migrations_core::{Error, Migrator};
use migrations_tests::test_db;

/// The library's set: its own table, named in its directory's settings.
fn library() -> Dir {
    Dir::new(&[
        ("migrations.toml", "[run]\ntable = \"auth_migrations\"\n"),
        (
            "1_sessions.up.sql",
            "CREATE TABLE auth_sessions (id bigint);",
        ),
        ("2_tokens.up.sql", "CREATE TABLE auth_tokens (id bigint);"),
    ])
}

/// The service's set: the default table; versions that overlap the library's.
fn service() -> Dir {
    Dir::new(&[
        ("1_users.up.sql", "CREATE TABLE users (id bigint);"),
        ("3_posts.up.sql", "CREATE TABLE posts (id bigint);"),
    ])
}

#[test]
fn two_sets_in_one_database_keep_their_own_history_and_lock() {
    let db = test_db();
    let (lib_dir, app_dir) = (library(), service());
    let (lib, app) = (lib_dir.load(), app_dir.load());
    assert_ne!(
        Migrator::new(&lib).lock_key(),
        Migrator::new(&app).lock_key(),
        "one lock per history table"
    );

    // What a service does on start: its dependencies' sets, then its own.
    let mut client = db.connect();
    let ran_lib = Migrator::new(&lib).run(&mut client).unwrap();
    let ran_app = Migrator::new(&app).run(&mut client).unwrap();
    assert_eq!(ran_lib.ran.len(), 2);
    assert_eq!(
        ran_app.ran.len(),
        2,
        "version 1 of the library did not hide the service's 1"
    );

    assert_eq!(
        column(
            &db,
            "SELECT version || name FROM auth_migrations ORDER BY version"
        ),
        [Some("1sessions".into()), Some("2tokens".into())]
    );
    assert_eq!(
        column(
            &db,
            "SELECT version || name FROM migrations_history ORDER BY version"
        ),
        [Some("1users".into()), Some("3posts".into())]
    );

    // Warm start for both, and each set's status shows its own migrations only.
    assert!(
        Migrator::new(&lib)
            .run(&mut client)
            .unwrap()
            .up_to_date_fast
    );
    assert!(
        Migrator::new(&app)
            .run(&mut client)
            .unwrap()
            .up_to_date_fast
    );
    assert_eq!(Migrator::new(&lib).status(&mut client).unwrap().len(), 2);
    assert_eq!(Migrator::new(&app).status(&mut client).unwrap().len(), 2);

    // Drift is checked per set: an edited library migration is the library's finding.
    lib_dir.write(
        "2_tokens.up.sql",
        "CREATE TABLE auth_tokens (id bigint, x int);",
    );
    let edited = lib_dir.load();
    let error = Migrator::new(&edited).run(&mut client).unwrap_err();
    assert!(error.is_drift(), "{error}");
    assert!(Migrator::new(&app).run(&mut client).is_ok());
}

/// Why the separate table matters: the same two sets in one table see each other's rows as
/// drift, and the run is refused before anything is applied.
#[test]
fn two_sets_sharing_one_table_are_refused_as_drift() {
    let db = test_db();
    let lib_dir = library();
    let app_dir = service();
    let (lib, app) = (lib_dir.load(), app_dir.load());
    let mut client = db.connect();
    Migrator::new(&lib)
        .table("migrations_history")
        .run(&mut client)
        .unwrap();
    let error = Migrator::new(&app).run(&mut client).unwrap_err();
    assert!(matches!(error, Error::Plan(_)), "{error}");
    assert!(error.is_drift(), "{error}");
}
