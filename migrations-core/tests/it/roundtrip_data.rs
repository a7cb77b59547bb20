//! The data round trip (issue 14) on a real PostgreSQL: generated rows in every table before
//! each migration, "down loses data" with table, column, count and an example row, lossy ups
//! as warnings, `-- migrations:lossy-down` acknowledged by the check and refused by `down`
//! without `allow_data_loss`, tables that cannot be filled reported with why, and the locks an
//! up really takes (read from `pg_locks` before its commit), with `max_lock`.

#![allow(clippy::result_large_err)]

use migrations_core::plan::{DownTarget, Operation, PlanError};
use migrations_core::roundtrip::{self, Options, Outcome};
use migrations_core::{Migrations, Migrator};
use migrations_tests::test_db;

use crate::common::Dir;

fn load(files: &[(&str, &str)]) -> (Dir, Migrations) {
    let dir = Dir::new(files);
    let migrations = dir.load();
    (dir, migrations)
}

const USERS: (&str, &str) = (
    "1_users.up.sql",
    "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL);\n",
);
const USERS_DOWN: (&str, &str) = ("1_users.down.sql", "DROP TABLE users;\n");
const CONTACT_UP: (&str, &str) = (
    "2_contact.up.sql",
    "ALTER TABLE users ADD COLUMN contact text;\n\
     UPDATE users SET contact = email;\n\
     ALTER TABLE users DROP COLUMN email;\n",
);
/// The down: `email` comes back with its type and NOT NULL, but empty.
const LOSSY_DOWN: &str = "ALTER TABLE users ADD COLUMN email text NOT NULL DEFAULT '';\n\
     ALTER TABLE users ALTER COLUMN email DROP DEFAULT;\n\
     ALTER TABLE users DROP COLUMN contact;\n";

#[test]
fn a_down_that_empties_a_column_loses_data() {
    let db = test_db();
    let (_d, migrations) = load(&[
        USERS,
        USERS_DOWN,
        CONTACT_UP,
        ("2_contact.down.sql", LOSSY_DOWN),
    ]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    assert_eq!(
        report.to_string(),
        "ok 1 users\n\
         FAIL 2 contact: down loses data:\n    \
         public.users.email: 3 of 3 rows differ, e.g. id='1': email 'v1' -> ''\n\
         2 migrations checked: 1 ok, 1 failed"
    );
    let Outcome::DataLoss { changes } = &report.migrations[1].outcome else {
        panic!("{report}")
    };
    assert_eq!(changes[0].table, "public.users");
    assert_eq!(changes[0].column.as_deref(), Some("email"));
    assert_eq!(changes[0].rows, 3);
    assert_eq!(report.migrations[1].outcome.kind(), "data_loss");
    assert!(!report.passed());

    // The schema alone sees nothing wrong.
    let schema_only = roundtrip::check(
        db.admin_url(),
        &migrations,
        Options::new().schema_only(true),
    )
    .unwrap();
    assert!(schema_only.passed(), "{schema_only}");
}

#[test]
fn a_down_that_copies_the_values_back_passes() {
    let db = test_db();
    let (_d, migrations) = load(&[
        USERS,
        USERS_DOWN,
        CONTACT_UP,
        (
            "2_contact.down.sql",
            "ALTER TABLE users ADD COLUMN email text;\n\
             UPDATE users SET email = contact;\n\
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n\
             ALTER TABLE users DROP COLUMN contact;\n",
        ),
    ]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new().rows(5)).unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.summary(),
        "2 migrations checked: 2 ok, 0 failed",
        "{report}"
    );
}

#[test]
fn an_acknowledged_lossy_down_is_reported_and_refused_without_allow_data_loss() {
    let db = test_db();
    let down = format!("-- migrations:lossy-down the e-mails live in contact now\n{LOSSY_DOWN}");
    let (_d, migrations) = load(&[
        USERS,
        USERS_DOWN,
        CONTACT_UP,
        ("2_contact.down.sql", down.as_str()),
    ]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.to_string(),
        "ok 1 users\n\
         ok 2 contact: down loses data, acknowledged (lossy-down: the e-mails live in contact \
         now):\n    \
         public.users.email: 3 of 3 rows differ, e.g. id='1': email 'v1' -> ''\n\
         2 migrations checked: 1 ok, 0 failed, 1 with acknowledged data loss"
    );
    assert_eq!(report.migrations[1].outcome.kind(), "acknowledged_loss");

    // The real down refuses, runs nothing, and names the reason; allowed, it runs.
    let mut client = db.connect();
    Migrator::new(&migrations).run(&mut client).unwrap();
    for op in [
        Operation::Down(DownTarget::Count(1)),
        Operation::Redo { count: 1 },
    ] {
        let err = Migrator::new(&migrations)
            .execute(&mut client, &op)
            .unwrap_err();
        let migrations_core::Error::Plan(PlanError::LossyDown {
            version, reason, ..
        }) = &err
        else {
            panic!("{err}")
        };
        assert_eq!(
            (*version, reason.as_str()),
            (2, "the e-mails live in contact now")
        );
        assert_eq!(
            err.to_string(),
            "cannot revert 2 contact without losing data: its down file says \"the e-mails \
             live in contact now\" (-- migrations:lossy-down); nothing was run; to accept the \
             loss, run it again with --allow-data-loss (the library: \
             `Migrator::allow_data_loss(true)`)"
        );
    }
    let still: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'contact'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(still, 1, "the refused down ran");
    Migrator::new(&migrations)
        .allow_data_loss(true)
        .execute(&mut client, &Operation::Down(DownTarget::Count(1)))
        .unwrap();
}

/// Every kind of column the issue names gets values: each table holds 3 rows before the
/// second migration, whose down empties them all (so the loss names every table).
#[test]
fn every_table_is_filled_whatever_its_types_and_constraints() {
    let db = test_db();
    let (_d, migrations) = load(&[
        (
            "1_schema.up.sql",
            "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');\n\
             CREATE DOMAIN posint AS integer CHECK (VALUE > 0);\n\
             CREATE TABLE teams (id serial PRIMARY KEY, name text UNIQUE NOT NULL,\n\
               parent int REFERENCES teams);\n\
             CREATE TABLE people (\n\
               id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n\
               team int NOT NULL REFERENCES teams,\n\
               email varchar(200) NOT NULL UNIQUE CHECK (email LIKE '%@%'),\n\
               mood mood NOT NULL,\n\
               score posint NOT NULL,\n\
               tags text[] NOT NULL,\n\
               doc jsonb NOT NULL DEFAULT '{}',\n\
               during tstzrange,\n\
               born date NOT NULL,\n\
               key uuid NOT NULL,\n\
               big numeric(12, 2) CHECK (big >= 100),\n\
               lower_email text GENERATED ALWAYS AS (lower(email)) STORED\n\
             );\n\
             CREATE TABLE no_key (a int, b text);\n",
        ),
        (
            "1_schema.down.sql",
            "DROP TABLE no_key, people, teams; DROP DOMAIN posint; DROP TYPE mood;\n",
        ),
        ("2_wipe.up.sql", "SELECT 1;\n"),
        ("2_wipe.down.sql", "TRUNCATE no_key, people, teams;\n"),
    ]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    let wipe = &report.migrations[1];
    assert!(wipe.unfilled.is_empty(), "{report}");
    let Outcome::DataLoss { changes } = &wipe.outcome else {
        panic!("{report}")
    };
    let shapes: Vec<String> = changes
        .iter()
        .map(|c| format!("{} {:?} {}/{}", c.table, c.column, c.rows, c.of))
        .collect();
    assert_eq!(
        shapes,
        [
            "public.no_key None 3/3",
            "public.people None 3/3",
            "public.teams None 3/3"
        ],
        "{report}"
    );
}

#[test]
fn a_table_that_cannot_be_filled_is_reported_with_why() {
    let db = test_db();
    let (_d, migrations) = load(&[
        (
            "1_odd.up.sql",
            "CREATE TABLE odd (x int NOT NULL CHECK (x = 424242));\n",
        ),
        ("1_odd.down.sql", "DROP TABLE odd;\n"),
        ("2_next.up.sql", "SELECT 1;\n"),
        ("2_next.down.sql", "SELECT 1;\n"),
    ]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    let next = &report.migrations[1];
    assert_eq!(next.unfilled.len(), 1, "{report}");
    assert_eq!(next.unfilled[0].table, "public.odd");
    assert!(
        next.unfilled[0].why.contains("(SQLSTATE 23514)"),
        "{}",
        next.unfilled[0].why
    );
    assert!(
        next.to_string()
            .starts_with("ok 2 next\n  warning: table public.odd could not be filled: "),
        "{next}"
    );
    // A warning, not a failure.
    assert!(report.passed(), "{report}");
}

#[test]
fn a_lossy_up_is_a_warning_naming_the_column() {
    let db = test_db();
    let (_d, migrations) = load(&[
        USERS,
        USERS_DOWN,
        (
            "2_trim.up.sql",
            "UPDATE users SET email = left(email, 1);\nDELETE FROM users WHERE id = 3;\n",
        ),
        ("2_trim.down.sql", "SELECT 1;\n"),
    ]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    let trim = &report.migrations[1];
    let lines: Vec<String> = trim.lossy_up.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        lines,
        [
            "public.users: 1 of 3 rows missing, e.g. the row id='3'",
            "public.users.email: 2 of 3 rows differ, e.g. id='1': email 'v1' -> 'v'",
        ],
        "{report}"
    );
    assert!(trim
        .to_string()
        .contains("\n  warning: up changes data: public.users.email: 2 of 3 rows differ"));
}

#[test]
fn observed_locks_name_the_strongest_mode_per_existing_table() {
    let db = test_db();
    let (_d, migrations) = load(&[
        USERS,
        USERS_DOWN,
        (
            "2_created.up.sql",
            "ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now();\n\
             CREATE TABLE audit (id int);\n",
        ),
        (
            "2_created.down.sql",
            "DROP TABLE audit;\nALTER TABLE users DROP COLUMN created_at;\n",
        ),
        (
            "3_check.up.sql",
            "ALTER TABLE users ADD CONSTRAINT email_at CHECK (email <> '') NOT VALID;\n",
        ),
        (
            "3_check.down.sql",
            "ALTER TABLE users DROP CONSTRAINT email_at;\n",
        ),
        (
            "4_validate.up.sql",
            "ALTER TABLE users VALIDATE CONSTRAINT email_at;\n",
        ),
        (
            "4_validate.down.sql",
            "ALTER TABLE users DROP CONSTRAINT email_at;\n\
             ALTER TABLE users ADD CONSTRAINT email_at CHECK (email <> '') NOT VALID;\n",
        ),
    ]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    let locks = |i: usize| -> Vec<String> {
        report.migrations[i]
            .locks
            .iter()
            .map(|l| format!("{} {}", l.mode_name(), l.table))
            .collect()
    };
    // The table created in the same migration is not listed.
    assert_eq!(locks(1), ["ACCESS EXCLUSIVE public.users"], "{report}");
    assert_eq!(
        locks(3),
        ["SHARE UPDATE EXCLUSIVE public.users"],
        "{report}"
    );
    assert!(report.passed(), "{report}");

    let strict = roundtrip::check(
        db.admin_url(),
        &migrations,
        Options::new().max_lock("share update exclusive"),
    )
    .unwrap();
    let failed: Vec<i64> = strict.failures().map(|m| m.version).collect();
    assert_eq!(failed, [2, 3], "{strict}");
    assert!(strict.migrations[1]
        .to_string()
        .starts_with("FAIL 2 created\n  takes ACCESS EXCLUSIVE on public.users for "));

    let err = roundtrip::check(
        db.admin_url(),
        &migrations,
        Options::new().max_lock("strong"),
    )
    .unwrap_err();
    assert!(matches!(err, roundtrip::Error::LockMode(_)), "{err}");
}
