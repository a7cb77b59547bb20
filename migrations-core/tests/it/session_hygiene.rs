//! Session hygiene beyond plain `SET`s (those are `engine::session_settings_do_not_leak`):
//! `set_config()` called from inside a function, `SET ROLE` and `SET SESSION AUTHORIZATION`
//! outlive neither their migration nor the run, the caller's own role comes back, and the
//! history is written as the caller, whatever role a script took.
#![allow(clippy::result_large_err)] // the core's error is returned once per run

use crate::common::{self, column, scalar, Dir, Driver};
use migrations_core::{Migrations, Migrator};
use migrations_tests::{test_db, TestDb};

/// Roles of this test's own (named after its database, so tests sharing a cluster do not
/// meet): `role`, which the migrations switch to, and `caller`, a superuser role the caller's
/// session has set before the run.
struct Roles {
    role: String,
    caller: String,
}

fn roles(db: &TestDb) -> Roles {
    // The database's unique prefix (`mt_<pid>_<n>_<hex>`): a whole name would be cut at 63
    // bytes, and the two roles would be one.
    let unique: Vec<&str> = db.name().split('_').take(4).collect();
    let unique = unique.join("_");
    let roles = Roles {
        role: format!("{unique}_role"),
        caller: format!("{unique}_caller"),
    };
    db.connect()
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\"; CREATE ROLE \"{caller}\" SUPERUSER; \
             GRANT CREATE ON SCHEMA public TO \"{role}\";",
            role = roles.role,
            caller = roles.caller
        ))
        .unwrap();
    roles
}

fn drop_roles(db: &TestDb, roles: &Roles) {
    let _ = db.connect().batch_execute(&format!(
        "DROP OWNED BY \"{r}\" CASCADE; DROP OWNED BY \"{c}\" CASCADE; DROP ROLE \"{r}\"; \
         DROP ROLE \"{c}\";",
        r = roles.role,
        c = roles.caller
    ));
}

/// A migration that fails, naming what leaked, unless the session is the caller's again:
/// session user `runner`, current user `caller`, time zone UTC, no `myapp.tenant`.
fn check(runner: &str, caller: &str) -> String {
    format!(
        "DO $$ BEGIN\n\
         IF session_user <> '{runner}' THEN RAISE 'session authorization leaked: %', session_user; END IF;\n\
         IF current_user <> '{caller}' THEN RAISE 'role leaked: %', current_user; END IF;\n\
         IF current_setting('TimeZone') <> 'UTC' THEN RAISE 'TimeZone leaked: %', current_setting('TimeZone'); END IF;\n\
         IF coalesce(current_setting('myapp.tenant', true), '') <> '' THEN RAISE 'myapp.tenant leaked'; END IF;\n\
         END $$;\n"
    )
}

fn migrations(dir: &Dir, runner: &str, roles: &Roles) -> Migrations {
    let check = check(runner, &roles.caller);
    let files = [
        (
            "1_function.up.sql".to_owned(),
            "CREATE FUNCTION leak_settings() RETURNS void LANGUAGE plpgsql AS $$\n\
             BEGIN\n\
             PERFORM set_config('TimeZone', 'Pacific/Auckland', false);\n\
             PERFORM set_config('myapp.tenant', 'leaked', false);\n\
             END $$;\n\
             SELECT leak_settings();\n"
                .to_owned(),
        ),
        ("2_check.up.sql".to_owned(), check.clone()),
        (
            "3_role.up.sql".to_owned(),
            format!(
                "SET ROLE \"{}\";\nCREATE TABLE made_by_role ();\n",
                roles.role
            ),
        ),
        ("4_check.up.sql".to_owned(), check.clone()),
        (
            "5_authorization.up.sql".to_owned(),
            format!(
                "SET SESSION AUTHORIZATION \"{}\";\nCREATE TABLE made_by_authorization ();\n",
                roles.role
            ),
        ),
        ("6_check.up.sql".to_owned(), check.clone()),
        (
            "7_outside.up.sql".to_owned(),
            "-- migrations:no-transaction\nSELECT leak_settings();\n".to_owned(),
        ),
        ("8_check.up.sql".to_owned(), check.clone()),
        // Outside a transaction, the runner records progress after each statement: as the
        // caller (the role may not write the history), and the role is the script's again
        // for its next statement.
        (
            "9_outside_role.up.sql".to_owned(),
            format!(
                "-- migrations:no-transaction\nSET ROLE \"{}\";\n\
                 CREATE TABLE made_by_role_outside ();\nCREATE TABLE made_by_role_outside_too ();\n",
                roles.role
            ),
        ),
        ("10_check.up.sql".to_owned(), check),
    ];
    for (name, text) in &files {
        dir.write(name, text);
    }
    dir.load()
}

/// The caller's session after the run: session user, current user, time zone, `myapp.tenant`.
const SESSION: &str = "SELECT session_user::text || ' ' || current_user::text || ' ' || \
     current_setting('TimeZone') || ' ' || coalesce(nullif(current_setting('myapp.tenant', true), ''), '-')";

behaviour!(
    set_config_in_a_function_set_role_and_session_authorization_do_not_leak,
    |driver: Driver| {
        let db = test_db();
        let roles = roles(&db);
        let runner = scalar(&db, "SELECT session_user::text").unwrap();
        let dir = Dir::new(&[]);
        let m = migrations(&dir, &runner, &roles);
        let prepare = format!("SET TimeZone = 'UTC'; SET ROLE \"{}\"", roles.caller);
        let after = match driver {
            Driver::Sync => {
                let mut client = db.connect();
                client.batch_execute(&prepare).unwrap();
                let report = Migrator::new(&m).run(&mut client).unwrap();
                assert_eq!(report.ran.len(), 10);
                let rows = client.simple_query(SESSION).unwrap();
                match &rows[1] {
                    postgres::SimpleQueryMessage::Row(r) => r.get(0).unwrap().to_owned(),
                    other => panic!("{other:?}"),
                }
            }
            Driver::Async => common::runtime().block_on(async {
                let mut client = common::connect_async(db.url()).await;
                client.batch_execute(&prepare).await.unwrap();
                let report = Migrator::new(&m).run_async(&mut client).await.unwrap();
                assert_eq!(report.ran.len(), 10);
                client.query_one(SESSION, &[]).await.unwrap().get(0)
            }),
        };
        assert_eq!(after, format!("{runner} {} UTC -", roles.caller));
        // The roles did act inside their migrations...
        assert_eq!(
            column(
                &db,
                "SELECT tableowner FROM pg_tables WHERE tablename LIKE 'made_by_%' ORDER BY 1"
            ),
            [
                Some(roles.role.clone()),
                Some(roles.role.clone()),
                Some(roles.role.clone()),
                Some(roles.role.clone())
            ]
        );
        // ...but the history was written as the caller, for every migration.
        assert_eq!(
            column(&db, "SELECT DISTINCT applied_by FROM migrations_history"),
            [Some(roles.caller.clone())]
        );
        drop_roles(&db, &roles);
    }
);

// The run prepares its bookkeeping statement on the caller's session and deallocates it at
// its end; a script's `DEALLOCATE ALL` costs that step a second try (the statement sent as
// text), not a failure.
behaviour!(
    the_run_leaves_no_prepared_statement_even_after_deallocate_all,
    |driver: Driver| {
        let db = test_db();
        let dir = Dir::new(&[
            ("1_a.up.sql", "CREATE TABLE a ();\n"),
            ("2_b.up.sql", "DEALLOCATE ALL;\nCREATE TABLE b ();\n"),
            ("3_c.up.sql", "CREATE TABLE c ();\n"),
        ]);
        let m = dir.load();
        const PREPARED: &str =
            "SELECT count(*)::text FROM pg_prepared_statements WHERE name LIKE 'migrations%'";
        let left = match driver {
            Driver::Sync => {
                let mut client = db.connect();
                let report = Migrator::new(&m).run(&mut client).unwrap();
                assert_eq!(report.ran.len(), 3);
                // A run that applies nothing leaves nothing either.
                dir.write("4_d.up.sql", "CREATE TABLE d ();\n");
                let again = Migrator::new(&dir.load()).run(&mut client).unwrap();
                assert_eq!(again.ran.len(), 1);
                let rows = client.simple_query(PREPARED).unwrap();
                match &rows[1] {
                    postgres::SimpleQueryMessage::Row(r) => r.get(0).unwrap().to_owned(),
                    other => panic!("{other:?}"),
                }
            }
            Driver::Async => common::runtime().block_on(async {
                let mut client = common::connect_async(db.url()).await;
                let report = Migrator::new(&m).run_async(&mut client).await.unwrap();
                assert_eq!(report.ran.len(), 3);
                dir.write("4_d.up.sql", "CREATE TABLE d ();\n");
                let again = Migrator::new(&dir.load())
                    .run_async(&mut client)
                    .await
                    .unwrap();
                assert_eq!(again.ran.len(), 1);
                client.query_one(PREPARED, &[]).await.unwrap().get(0)
            }),
        };
        assert_eq!(left, "0");
        assert_eq!(
            column(
                &db,
                "SELECT version::text FROM migrations_history ORDER BY 1"
            ),
            ["1", "2", "3", "4"].map(|v| Some(v.to_owned()))
        );
        // The stored digest is the binary's: the next start is the one-row check.
        let mut client = db.connect();
        assert!(
            Migrator::new(&dir.load())
                .run(&mut client)
                .unwrap()
                .up_to_date_fast
        );
    }
);

/// A caller whose session already has a statement named as the runner's: the run goes on with
/// its bookkeeping as text, and the caller's statement is left as it was.
#[test]
fn a_callers_statement_of_the_same_name_is_left_alone() {
    let db = test_db();
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a ();\n"),
        ("2_b.up.sql", "CREATE TABLE b ();\n"),
    ]);
    let m = dir.load();
    let mut client = db.connect();
    client
        .batch_execute("PREPARE migrations_record AS SELECT 'mine'")
        .unwrap();
    let report = Migrator::new(&m).run(&mut client).unwrap();
    assert_eq!(report.ran.len(), 2);
    let rows = client.simple_query("EXECUTE migrations_record").unwrap();
    match &rows[1] {
        postgres::SimpleQueryMessage::Row(r) => assert_eq!(r.get(0), Some("mine")),
        other => panic!("{other:?}"),
    }
    assert!(
        Migrator::new(&m)
            .run(&mut db.connect())
            .unwrap()
            .up_to_date_fast
    );
}
