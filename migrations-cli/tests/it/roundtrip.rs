//! `migrations test` as a user runs it, against a real PostgreSQL: the round trip of a correct
//! chain (exit 0), of the fixtures that fail it (exit 3, one block per migration), the JSON
//! document, the version range, operational errors (exit 1) and Ctrl-C, and the scratch
//! database gone afterwards every time.

use std::process::Command;
use std::time::{Duration, Instant};

use migrations_tests::{test_db, TestDb};
use serde_json::Value;

use migrations_tests::{ROUND_TRIP_FIXTURES as FIXTURES, ROUND_TRIP_REPORT};

use crate::common::Project;

/// A project with `files` in `migrations/`, run with `DATABASE_URL`.
fn project(db: &TestDb, files: &[(&str, &str)]) -> Project {
    Project::new(files).url_in_env(db.url())
}

/// The databases the binary with this pid created and did not drop.
fn leftovers(db: &TestDb, pid: u32) -> Vec<String> {
    let mut admin = db.connect_admin();
    admin
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE $1",
            &[&format!("migrations\\_test\\_{pid}\\_%")],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The report without its last line, `time: ...` (where the time went, different on each
/// run), which must be there.
fn report(stdout: &str) -> String {
    let body = stdout.trim_end_matches('\n');
    let (report, timing) = body.rsplit_once('\n').unwrap_or(("", body));
    assert!(timing.starts_with("time: "), "no timing line:\n{stdout}");
    format!("{report}\n")
}

#[test]
fn a_correct_chain_passes_with_exit_0() {
    let db = test_db();
    let p = project(&db, &FIXTURES[..4]);
    let run = p.run(&["test"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        report(&run.stdout),
        "ok 1 users\nok 2 posts\n2 migrations checked: 2 ok, 0 failed\n"
    );
    assert!(leftovers(&db, run.pid).is_empty());
    // The database named by the URL is untouched.
    let mut client = db.connect();
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
}

#[test]
fn failing_fixtures_are_reported_with_exit_3() {
    let db = test_db();
    let p = project(&db, FIXTURES);
    let run = p.run(&["test"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(report(&run.stdout), format!("{ROUND_TRIP_REPORT}\n"));
    assert_eq!(run.stderr, "");
    assert!(leftovers(&db, run.pid).is_empty());

    // The version range, in any spelling the files use.
    let run = p.run(&["test", "--from", "2", "--to", "3"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        report(&run.stdout),
        "ok 2 posts\n\
         FAIL 3 users_name: down left differences:\n    index public.users_email_ix: extra after down\n  \
         up again failed: relation \"users_email_ix\" already exists (SQLSTATE 42P07) \
         (statement 2 of 2, line 2)\n\
         2 migrations checked: 1 ok, 1 failed\n"
    );
    let run = p.run(&["test", "--to", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(leftovers(&db, run.pid).is_empty());
}

#[test]
fn json_is_one_document() {
    let db = test_db();
    let p = project(&db, FIXTURES);
    let run = p.run(&["--format", "json", "test"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{}", run.stdout));
    assert_eq!(doc["command"], "test");
    assert_eq!(doc["passed"], false);
    assert_eq!(
        doc["summary"],
        "6 migrations checked: 2 ok, 3 failed, 1 without a down file"
    );
    let m = doc["migrations"].as_array().unwrap();
    let results: Vec<&str> = m.iter().map(|m| m["result"].as_str().unwrap()).collect();
    assert_eq!(
        results,
        ["ok", "ok", "mismatch", "mismatch", "down_failed", "no_down"]
    );
    assert_eq!(
        m[2]["after_down"][0]["object"],
        "index public.users_email_ix"
    );
    assert_eq!(m[2]["after_down"][0]["change"], "unexpected");
    assert_eq!(
        m[2]["redo_error"],
        "relation \"users_email_ix\" already exists (SQLSTATE 42P07) (statement 2 of 2, line 2)"
    );
    assert_eq!(
        m[3]["after_redo"][0]["text"],
        "column public.posts.title: missing"
    );
    assert_eq!(
        m[4]["error"],
        "table \"tag\" does not exist (SQLSTATE 42P01) (statement 1 of 1, line 1)"
    );
    assert!(doc["stopped"].is_null());
    let scratch = doc["scratch_database"].as_str().unwrap();
    assert!(scratch.starts_with(&format!("migrations_test_{}_", run.pid)));
    assert!(leftovers(&db, run.pid).is_empty());
}

#[test]
fn attribute_differences_and_column_order() {
    let db = test_db();
    let p = project(
        &db,
        &[
            FIXTURES[0],
            FIXTURES[1],
            (
                "2_email_type.up.sql",
                "ALTER TABLE users ALTER COLUMN email TYPE varchar(255);\n",
            ),
            (
                "2_email_type.down.sql",
                "ALTER TABLE users ALTER COLUMN email TYPE varchar(100);\n",
            ),
            ("3_nick.up.sql", "ALTER TABLE users ADD COLUMN nick text;\n"),
            ("3_nick.down.sql", "ALTER TABLE users DROP COLUMN nick;\n"),
            (
                "4_drop_email.up.sql",
                "ALTER TABLE users DROP COLUMN email;\n",
            ),
            (
                "4_drop_email.down.sql",
                "ALTER TABLE users ADD COLUMN email varchar(255) NOT NULL DEFAULT '';\n",
            ),
        ],
    );
    let run = p.run(&["test"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        report(&run.stdout),
        "ok 1 users\n\
         FAIL 2 email_type: down left differences:\n    \
         column public.users.email: type text -> character varying(100)\n\
         ok 3 nick\n\
         FAIL 4 drop_email: down left differences:\n    \
         column public.users.email: default (none) -> ''::character varying\n    \
         table public.users: column order id, email, nick -> id, nick, email\n\
         4 migrations checked: 2 ok, 2 failed\n"
    );
    let run = p.run(&["test", "--ignore-column-order", "--from", "4"]);
    assert_eq!(
        report(&run.stdout),
        "FAIL 4 drop_email: down left differences:\n    \
         column public.users.email: default (none) -> ''::character varying\n\
         1 migration checked: 0 ok, 1 failed\n"
    );
}

#[test]
fn operational_errors_exit_1_and_bad_versions_exit_2() {
    let db = test_db();
    let p = project(&db, &FIXTURES[..2]);
    let run = p.run(&["test", "--from", "9"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("version 9 is not one of the migrations"),
        "{}",
        run.stderr
    );
    let run = p.run_with(
        &["test", "--connect-timeout", "0"],
        &[("DATABASE_URL", "postgres://nobody:secret@127.0.0.1:1/x")],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stderr.contains("secret"), "{}", run.stderr);
}

#[test]
fn ctrl_c_drops_the_scratch_database() {
    let db = test_db();
    let p = project(
        &db,
        &[
            FIXTURES[0],
            FIXTURES[1],
            ("2_slow.up.sql", "SELECT pg_sleep(60);\n"),
            ("2_slow.down.sql", "SELECT 1;\n"),
        ],
    );
    let child = p.spawn(&["test"]);
    let pid = child.id();
    // Wait until the slow migration runs on the scratch database.
    let started = Instant::now();
    let mut admin = db.connect_admin();
    loop {
        let running: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' \
                 AND datname LIKE 'migrations\\_test\\_%' AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        if running > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the slow migration never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(leftovers(&db, pid).len(), 1);
    let killed = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(leftovers(&db, pid).is_empty());
}
