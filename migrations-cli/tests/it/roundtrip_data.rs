//! `migrations test` with data (issue 14), as a user runs it: the issue's email/contact pair
//! fails with "down loses data" (exit 3, text and JSON), `--schema-only` passes it, a
//! `lossy-down` down is acknowledged by `test` and refused by `down`/`redo` without
//! `--allow-data-loss` (exit 2), and `--max-lock` fails an up that locks an existing table harder
//! (exit 3) or exits 2 on a mode that is none.

use migrations_tests::lossy_pair::{CONTACT_UP, LOSSY_DOWN, USERS_DOWN, USERS_UP};
use migrations_tests::test_db;
use serde_json::Value;

use crate::common::Project;

#[test]
fn the_issues_pair_loses_data_in_text_and_json() {
    let db = test_db();
    let p = Project::new(&[
        USERS_UP,
        USERS_DOWN,
        CONTACT_UP,
        ("2_contact.down.sql", LOSSY_DOWN),
    ])
    .url_in_env(db.url());
    let run = p.run(&["test"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with(
            "ok 1 users\n\
             FAIL 2 contact: down loses data:\n    \
             public.users.email: 3 of 3 rows differ, e.g. id='1': email 'v1' -> ''\n\
             2 migrations checked: 1 ok, 1 failed\n\
             time: "
        ),
        "{}",
        run.stdout
    );

    let run = p.run(&["--format", "json", "test"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let m = &doc["migrations"][1];
    assert_eq!(m["result"], "data_loss");
    assert_eq!(m["failed"], true);
    assert_eq!(m["data_loss"][0]["table"], "public.users");
    assert_eq!(m["data_loss"][0]["column"], "email");
    assert_eq!(m["data_loss"][0]["rows"], 3);
    assert_eq!(doc["slowest"].as_array().unwrap().len(), 2);

    let run = p.run(&["test", "--schema-only"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn a_lossy_down_is_acknowledged_by_test_and_refused_by_down_without_the_flag() {
    let db = test_db();
    let down = format!("-- migrations:lossy-down the e-mails live in contact now\n{LOSSY_DOWN}");
    let p = Project::new(&[
        USERS_UP,
        USERS_DOWN,
        CONTACT_UP,
        ("2_contact.down.sql", down.as_str()),
    ])
    .url_in_env(db.url());
    let run = p.run(&["test"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(
        "ok 2 contact: down loses data, acknowledged (lossy-down: the e-mails live in contact \
         now):\n    public.users.email: 3 of 3 rows differ"
    ));
    assert!(run
        .stdout
        .contains("2 migrations checked: 1 ok, 0 failed, 1 with acknowledged data loss\n"));

    assert_eq!(p.run(&["up"]).code, 0);
    for command in [&["down"][..], &["redo"][..]] {
        let run = p.run(command);
        assert_eq!(run.code, 2, "{command:?}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(
                "cannot revert 2 contact without losing data: its down file says \"the e-mails \
                 live in contact now\" (-- migrations:lossy-down); nothing was run; to accept \
                 the loss, run it again with --allow-data-loss"
            ),
            "{}",
            run.stderr
        );
    }
    let run = p.run(&["down", "--allow-data-loss"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn max_lock_fails_an_up_that_locks_an_existing_table_harder() {
    let db = test_db();
    let p = Project::new(&[
        USERS_UP,
        USERS_DOWN,
        (
            "2_created.up.sql",
            "ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now();\n",
        ),
        (
            "2_created.down.sql",
            "ALTER TABLE users DROP COLUMN created_at;\n",
        ),
    ])
    .url_in_env(db.url());
    let run = p.run(&["test", "--max-lock", "SHARE UPDATE EXCLUSIVE"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("FAIL 2 created\n  takes ACCESS EXCLUSIVE on public.users for "),
        "{}",
        run.stdout
    );
    let run = p.run(&["--format", "json", "test"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["migrations"][1]["locks"][0]["mode"], "ACCESS EXCLUSIVE");
    assert_eq!(doc["migrations"][1]["locks"][0]["table"], "public.users");

    let run = p.run(&["test", "--max-lock", "strong"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("`strong` is not a table lock mode"),
        "{}",
        run.stderr
    );
}

#[test]
fn max_lock_in_migrations_toml_and_the_files_that_take_it_on_purpose() {
    let db = test_db();
    let created = "ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now();\n";
    let p = Project::new(&[
        (
            "migrations.toml",
            "[test]\nmax_lock = \"share update exclusive\"\n",
        ),
        USERS_UP,
        USERS_DOWN,
        ("2_created.up.sql", created),
        (
            "2_created.down.sql",
            "ALTER TABLE users DROP COLUMN created_at;\n",
        ),
    ])
    .url_in_env(db.url());
    let run = p.run(&["test"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("FAIL 2 created\n  takes ACCESS EXCLUSIVE on public.users for "),
        "{}",
        run.stdout
    );
    // The flag wins over the file.
    let run = p.run(&["test", "--max-lock", "access exclusive"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    // The file says it takes the lock on purpose: reported in JSON, not a failure; the
    // down's locks are there too.
    p.write(
        "2_created.up.sql",
        &format!("-- migrations:lint-ignore max-lock\n{created}"),
    );
    let run = p.run(&["--format", "json", "test"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let m = &doc["migrations"][1];
    assert_eq!(m["locks"][0]["mode"], "ACCESS EXCLUSIVE");
    assert_eq!(m["locks_over_max"].as_array().unwrap().len(), 0);
    assert_eq!(m["down_locks"][0]["mode"], "ACCESS EXCLUSIVE");
    assert_eq!(m["down_locks"][0]["table"], "public.users");
    assert_eq!(doc["stale_dropped"].as_array().unwrap().len(), 0);

    p.write("migrations.toml", "[test]\nmax_lock = \"strong\"\n");
    let run = p.run(&["test"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("max_lock in [test] of migrations.toml: `strong` is not a table lock mode"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_table_the_down_forgets_is_one_line_extra_after_down() {
    let db = test_db();
    let p = Project::new(&[
        USERS_UP,
        USERS_DOWN,
        (
            "2_audit.up.sql",
            "CREATE TABLE audit (id serial PRIMARY KEY, at timestamptz, what text);\n",
        ),
        ("2_audit.down.sql", "SELECT 1;\n"),
    ])
    .url_in_env(db.url());
    let run = p.run(&["test", "--schema-only"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "FAIL 2 audit: down left differences:\n    \
             table public.audit (3 columns): extra after down\n"
        ),
        "{}",
        run.stdout
    );
    let run = p.run(&["--format", "json", "test", "--schema-only"]);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let m = &doc["migrations"][1];
    assert_eq!(
        m["after_down_lines"][0],
        "table public.audit (3 columns): extra after down"
    );
    // The objects themselves are all still listed.
    assert!(m["after_down"].as_array().unwrap().len() > 4, "{m}");
}

#[test]
fn the_scratch_database_of_a_killed_run_is_dropped_by_the_next_and_said() {
    let db = test_db();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let stale = format!("migrations_test_{dead}_1700000000_7");
    let mut admin = db.connect_admin();
    admin
        .batch_execute(&format!("CREATE DATABASE {stale}"))
        .unwrap();
    admin
        .batch_execute(&format!(
            "COMMENT ON DATABASE {stale} IS \
             'migrations test scratch database of pid {dead} on host {}'",
            host.trim()
        ))
        .unwrap();
    let p = Project::new(&[USERS_UP, USERS_DOWN]).url_in_env(db.url());
    let run = p.run(&["test"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "\ndropped the stale scratch database {stale}: its check was killed before it could \
             drop it\n1 migration checked: 1 ok, 0 failed\n"
        )),
        "{}",
        run.stdout
    );
    let left: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&stale],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}
