//! The data round trip (issue 14) on a real PostgreSQL: generated rows in every table before
//! each migration, "down loses data" with table, column, count and an example row, lossy ups
//! as warnings, `-- migrations:lossy-down` acknowledged by the check and refused by `down`
//! without `allow_data_loss`, tables that cannot be filled reported with why, and the locks an
//! up really takes (read from `pg_locks` before its commit), with `max_lock`.

#![allow(clippy::result_large_err)]

use migrations_core::plan::{DownTarget, Operation, PlanError};
use migrations_core::roundtrip::{self, Options, Outcome};
use migrations_core::{Migrations, Migrator};
use migrations_tests::lossy_pair::{CONTACT_UP, LOSSY_DOWN, USERS_DOWN, USERS_UP as USERS};
use migrations_tests::test_db;

use crate::common::Dir;

fn load(files: &[(&str, &str)]) -> (Dir, Migrations) {
    let dir = Dir::new(files);
    let migrations = dir.load();
    (dir, migrations)
}

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

/// The locks are read in the real up's and down's own transactions, and the rows after the up
/// through the catalog read before it: columns whose names are quoted (a keyword, capitals)
/// are still compared, and a script's own rows shaped like the lock probe's are not locks.
#[test]
fn locks_and_lossy_ups_are_read_from_the_steps_that_really_ran() {
    let db = test_db();
    let (_d, migrations) = load(&[
        (
            "1_orders.up.sql",
            "CREATE TABLE \"Orders\" (id int PRIMARY KEY, \"user\" text NOT NULL, \"Total\" int);\n",
        ),
        ("1_orders.down.sql", "DROP TABLE \"Orders\";\n"),
        (
            "2_trim.up.sql",
            "UPDATE \"Orders\" SET \"user\" = left(\"user\", 1), \"Total\" = 7;\n\
             SELECT 'migrations:held-lock', '\"Orders\"'::regclass::oid::text, 'AccessExclusiveLock';\n",
        ),
        ("2_trim.down.sql", "LOCK TABLE \"Orders\" IN SHARE MODE;\n"),
    ]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    let trim = &report.migrations[1];
    let lossy: Vec<String> = trim.lossy_up.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        lossy,
        [
            "public.\"Orders\".user: 3 of 3 rows differ, e.g. id='1': user 'v1' -> 'v'",
            "public.\"Orders\".Total: 3 of 3 rows differ, e.g. id='1': Total '1' -> '7'",
        ],
        "{report}"
    );
    let modes = |locks: &[roundtrip::ObservedLock]| -> Vec<String> {
        locks
            .iter()
            .map(|l| format!("{} {}", l.mode_name(), l.table))
            .collect()
    };
    assert_eq!(
        modes(&trim.locks),
        ["ROW EXCLUSIVE public.\"Orders\""],
        "{report}"
    );
    assert_eq!(
        modes(&trim.down_locks),
        ["SHARE public.\"Orders\""],
        "{report}"
    );
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

/// Scratch databases named like this test process's own (`migrations_test_<pid>_...`).
fn scratch_databases(db: &migrations_tests::TestDb) -> Vec<String> {
    db.connect_admin()
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'migrations\\_test\\_%' \
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn the_lock_probe_runs_the_sql_with_its_placeholders_substituted() {
    let db = test_db();
    let (_d, migrations) = load(&[
        ("migrations.toml", "[placeholders]\ntable = \"users\"\n"),
        USERS,
        USERS_DOWN,
        (
            "2_created.up.sql",
            "ALTER TABLE ${table} ADD COLUMN created_at timestamptz DEFAULT now();\n",
        ),
        (
            "2_created.down.sql",
            "ALTER TABLE ${table} DROP COLUMN created_at;\n",
        ),
    ]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    assert!(report.passed(), "{report}");
    let locks: Vec<String> = report.migrations[1]
        .locks
        .iter()
        .map(|l| format!("{} {}", l.mode_name(), l.table))
        .collect();
    // Sent as written, `${table}` is a syntax error and nothing would be observed.
    assert_eq!(locks, ["ACCESS EXCLUSIVE public.users"], "{report}");
    let down: Vec<String> = report.migrations[1]
        .down_locks
        .iter()
        .map(|l| format!("{} {}", l.mode_name(), l.table))
        .collect();
    assert_eq!(down, ["ACCESS EXCLUSIVE public.users"], "{report}");

    // A value given to the check wins over `[placeholders]`.
    let err = roundtrip::check(
        db.admin_url(),
        &migrations,
        Options::new().placeholder("table", "users; DROP TABLE users"),
    )
    .unwrap_err();
    assert!(matches!(err, roundtrip::Error::Placeholder(_)), "{err}");
}

#[test]
fn a_file_that_lint_ignores_max_lock_takes_its_lock_on_purpose() {
    let db = test_db();
    let (_d, migrations) = load(&[
        USERS,
        USERS_DOWN,
        (
            "2_created.up.sql",
            "-- migrations:lint-ignore max-lock\n\
             ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now();\n",
        ),
        (
            "2_created.down.sql",
            "ALTER TABLE users DROP COLUMN created_at;\n",
        ),
        ("3_name.up.sql", "ALTER TABLE users ADD COLUMN name text;\n"),
        ("3_name.down.sql", "ALTER TABLE users DROP COLUMN name;\n"),
    ]);
    let report = roundtrip::check(
        db.admin_url(),
        &migrations,
        Options::new().max_lock("SHARE UPDATE EXCLUSIVE"),
    )
    .unwrap();
    // Both take ACCESS EXCLUSIVE; only the file that did not say so fails.
    assert_eq!(report.migrations[1].locks.len(), 1, "{report}");
    let failed: Vec<i64> = report.failures().map(|m| m.version).collect();
    assert_eq!(failed, [3], "{report}");
}

#[test]
fn the_async_check_is_the_same_check() {
    let db = test_db();
    let (_d, migrations) = load(&[
        USERS,
        USERS_DOWN,
        CONTACT_UP,
        ("2_contact.down.sql", LOSSY_DOWN),
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime
        .block_on(roundtrip::check_async(
            db.admin_url(),
            &migrations,
            Options::new(),
        ))
        .unwrap();
    let sync = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    assert_eq!(
        report.to_string(),
        "ok 1 users\n\
         FAIL 2 contact: down loses data:\n    \
         public.users.email: 3 of 3 rows differ, e.g. id='1': email 'v1' -> ''\n\
         2 migrations checked: 1 ok, 1 failed"
    );
    assert_eq!(report.to_string(), sync.to_string());
    assert_eq!(report.migrations[1].locks, {
        let mut l = sync.migrations[1].locks.clone();
        for (a, b) in l.iter_mut().zip(&report.migrations[1].locks) {
            a.held = b.held;
        }
        l
    });
    // Dropped at the end, as the sync check's.
    assert!(
        !scratch_databases(&db).contains(&report.database),
        "{}",
        report.database
    );
}

#[test]
fn a_scratch_database_left_by_a_killed_check_is_dropped_by_the_next() {
    let db = test_db();
    // A process that is gone, as a check killed with SIGKILL is.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let stale = format!("migrations_test_{dead}_1700000000_0");
    let busy = format!("migrations_test_{dead}_1700000000_1");
    let mut admin = db.connect_admin();
    for name in [&stale, &busy] {
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        admin
            .batch_execute(&format!(
                "COMMENT ON DATABASE {name} IS \
                 'migrations test scratch database of pid {dead} on host {}'",
                host.trim()
            ))
            .unwrap();
    }
    // A session on it: someone is using it, whatever its name says.
    let _session = postgres::Client::connect(&db.url_for_database(&busy), postgres::NoTls).unwrap();
    let (_d, migrations) = load(&[USERS, USERS_DOWN]);
    let report = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    assert_eq!(
        report.stale_dropped,
        std::slice::from_ref(&stale),
        "{report}"
    );
    let left = scratch_databases(&db);
    assert!(!left.contains(&stale), "{left:?}");
    assert!(left.contains(&busy), "{left:?}");
    drop(_session);
    admin
        .batch_execute(&format!("DROP DATABASE {busy} WITH (FORCE)"))
        .unwrap();
}

#[test]
fn differences_read_as_a_person_needs_them() {
    let db = test_db();
    let (_d, migrations) = load(&[
        USERS,
        USERS_DOWN,
        // The down forgets the table: one line for it, not one per column.
        (
            "2_audit.up.sql",
            "CREATE TABLE audit (id serial PRIMARY KEY, at timestamptz, what text);\n",
        ),
        ("2_audit.down.sql", "SELECT 1;\n"),
    ]);
    let report = roundtrip::check(
        db.admin_url(),
        &migrations,
        Options::new().schema_only(true),
    )
    .unwrap();
    assert_eq!(
        report.migrations[1].to_string(),
        "FAIL 2 audit: down left differences:\n    \
         table public.audit (3 columns): extra after down\n  \
         up again failed: relation \"audit\" already exists (SQLSTATE 42P07) (statement 1 of \
         1, line 1)",
        "{report}"
    );
}

#[test]
fn a_frozen_now_is_non_deterministic_and_a_permuted_select_star_is_a_column_order() {
    let db = test_db();
    let (_d, migrations) = load(&[
        (
            "1_t.up.sql",
            "CREATE TABLE t (a int, b int, c int);\nCREATE VIEW v AS SELECT * FROM t;\n\
             CREATE VIEW born AS SELECT 'now'::timestamptz AS at;\n",
        ),
        (
            "1_t.down.sql",
            "DROP VIEW born;\nDROP VIEW v;\nDROP TABLE t;\n",
        ),
        (
            "2_drop_b.up.sql",
            "DROP VIEW v;\nALTER TABLE t DROP COLUMN b;\nCREATE VIEW v AS SELECT * FROM t;\n",
        ),
        (
            "2_drop_b.down.sql",
            "-- migrations:lossy-down b's values went with the column\n\
             DROP VIEW v;\nALTER TABLE t ADD COLUMN b int;\nCREATE VIEW v AS SELECT * FROM t;\n",
        ),
    ]);
    let strict = roundtrip::check(db.admin_url(), &migrations, Options::new()).unwrap();
    // `'now'` is frozen into the view when it is made: the second up makes another time.
    let m1 = &strict.migrations[0];
    assert_eq!(m1.outcome, Outcome::Passed, "{strict}");
    assert_eq!(m1.non_deterministic.len(), 1, "{strict}");
    assert_eq!(m1.non_deterministic[0].object, "view public.born");
    assert!(
        m1.to_string().starts_with(
            "ok 1 t\n  note: non-deterministic, not a failure: view public.born: definition"
        ),
        "{m1}"
    );
    // `b` comes back last: the table's order and the `SELECT *` view's both differ.
    let Outcome::Mismatch { after_down, .. } = &strict.migrations[1].outcome else {
        panic!("{strict}")
    };
    let objects: Vec<&str> = after_down.iter().map(|d| d.object.as_str()).collect();
    assert_eq!(objects, ["table public.t", "view public.v"], "{strict}");

    let lenient = roundtrip::check(
        db.admin_url(),
        &migrations,
        Options::new().ignore_column_order(true),
    )
    .unwrap();
    assert!(lenient.passed(), "{lenient}");
    assert!(
        matches!(
            lenient.migrations[1].outcome,
            Outcome::AcknowledgedLoss { .. }
        ),
        "{lenient}"
    );
}

#[test]
fn a_history_split_across_scratch_databases_reports_as_one_check() {
    let db = test_db();
    let mut files: Vec<(String, String)> = vec![
        (
            "1_t.up.sql".into(),
            "CREATE TABLE t (id int PRIMARY KEY);\n".into(),
        ),
        ("1_t.down.sql".into(), "DROP TABLE t;\n".into()),
    ];
    for i in 2..=44 {
        files.push((
            format!("{i}_c{i}.up.sql"),
            format!("ALTER TABLE t ADD COLUMN c{i} int;\n"),
        ));
        // Migration 30's down loses its column's values.
        let down = if i == 30 {
            format!("ALTER TABLE t DROP COLUMN c{i};\nALTER TABLE t ADD COLUMN c{i} int;\n")
        } else {
            format!("ALTER TABLE t DROP COLUMN c{i};\n")
        };
        files.push((format!("{i}_c{i}.down.sql"), down));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (_d, migrations) = load(&refs);
    let mut seen = Vec::new();
    let split = roundtrip::check(
        db.admin_url(),
        &migrations,
        Options::new().jobs(2).on_result(|m| seen.push(m.version)),
    )
    .unwrap();
    let whole = roundtrip::check(db.admin_url(), &migrations, Options::new().jobs(1)).unwrap();
    assert_eq!(seen, (1..=44).collect::<Vec<i64>>());
    assert_eq!(split.to_string(), whole.to_string());
    let failed: Vec<i64> = split.failures().map(|m| m.version).collect();
    assert_eq!(failed, [30], "{split}");

    // An up that fails in the first part: the second part's migrations are not checked.
    let (_d, broken) = load(
        &refs
            .iter()
            .map(|&(name, sql)| {
                if name == "5_c5.up.sql" {
                    (name, "ALTER TABLE nowhere ADD COLUMN c5 int;\n")
                } else {
                    (name, sql)
                }
            })
            .collect::<Vec<_>>(),
    );
    let split = roundtrip::check(db.admin_url(), &broken, Options::new().jobs(2)).unwrap();
    assert_eq!(split.migrations.len(), 5, "{split}");
    let stopped = split.stopped.as_ref().unwrap();
    assert_eq!(stopped.version, 5);
    assert_eq!(stopped.not_checked.len(), 39, "{split}");
}

#[test]
fn the_async_check_splits_the_history_as_the_sync_one_does() {
    let db = test_db();
    // Forty migrations (two parts); the downs of the first and the last fail naming the
    // database they run in.
    let mut files: Vec<(String, String)> = Vec::new();
    for i in 1..=40 {
        files.push((
            format!("{i}_t{i}.up.sql"),
            format!("CREATE TABLE t{i} (id int PRIMARY KEY);\n"),
        ));
        let down = if i == 1 || i == 40 {
            "DO $$ BEGIN RAISE EXCEPTION 'down in %', current_database(); END $$;\n".to_owned()
        } else {
            format!("DROP TABLE t{i};\n")
        };
        files.push((format!("{i}_t{i}.down.sql"), down));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (_d, migrations) = load(&refs);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut seen = Vec::new();
    let report = runtime
        .block_on(roundtrip::check_async(
            db.admin_url(),
            &migrations,
            Options::new().jobs(2).on_result(|m| seen.push(m.version)),
        ))
        .unwrap();
    // In order, as one check.
    assert_eq!(seen, (1..=40).collect::<Vec<i64>>());
    assert_eq!(
        report.summary(),
        "40 migrations checked: 38 ok, 2 failed",
        "{report}"
    );
    let databases: Vec<&str> = report
        .failures()
        .map(|m| match &m.outcome {
            Outcome::DownFailed { error } => error
                .split_whitespace()
                .find(|w| w.starts_with("migrations_test_"))
                .unwrap_or_else(|| panic!("{error}")),
            other => panic!("{other:?}"),
        })
        .collect();
    // One scratch database per part, both dropped.
    assert_eq!(databases.len(), 2, "{report}");
    assert_ne!(databases[0], databases[1], "{report}");
    let left = scratch_databases(&db);
    for name in &databases {
        assert!(
            !left.iter().any(|l| name.starts_with(l.as_str())),
            "{left:?}"
        );
    }
}

#[test]
fn a_no_transaction_up_is_watched_from_a_second_session() {
    let db = test_db();
    let (_d, migrations) = load(&[
        USERS,
        USERS_DOWN,
        (
            "2_email_ix.up.sql",
            "-- migrations:no-transaction\n\
             CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_ix ON users (email);\n\
             BEGIN;\nLOCK TABLE users IN SHARE MODE;\nSELECT pg_sleep(1);\nCOMMIT;\n",
        ),
        (
            "2_email_ix.down.sql",
            "-- migrations:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS users_email_ix;\n",
        ),
    ]);
    let report = roundtrip::check(
        db.admin_url(),
        &migrations,
        Options::new().max_lock("SHARE UPDATE EXCLUSIVE"),
    )
    .unwrap();
    let locks: Vec<String> = report.migrations[1]
        .locks
        .iter()
        .map(|l| format!("{} {}", l.mode_name(), l.table))
        .collect();
    // The strongest: the file's own block holds SHARE for a second (CONCURRENTLY's SHARE UPDATE
    // EXCLUSIVE is weaker). A second, not less: the watcher polls from its own session, which
    // may still be connecting on a loaded machine when a shorter hold is already over.
    assert_eq!(locks, ["SHARE public.users"], "{report}");
    assert!(
        report.migrations[1].locks[0].held >= std::time::Duration::from_millis(80),
        "{report}"
    );
    let failed: Vec<i64> = report.failures().map(|m| m.version).collect();
    assert_eq!(failed, [2], "{report}");
}
