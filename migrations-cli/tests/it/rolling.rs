//! Rolling deploys through the CLI (issue 15): two directories, v1 and v2 (v2 = v1 + an expand
//! migration + a breaking post-deployment contract migration), against one database; and
//! `wait` against a concurrent `up`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{column, Project};
use migrations_tests::test_db;

/// A project holding the files of one release of `migrations-core`'s rolling fixtures.
fn release(url: &str, name: &str) -> Project {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations-core/tests/fixtures/rolling")
        .join(name);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    Project::new(&files).url_as_flag(url)
}

#[test]
fn a_deploy_and_a_rollback_with_two_directories() {
    let db = test_db();
    let v1 = release(db.url(), "v1");
    let v2 = release(db.url(), "v2");
    v1.expect(&["up"], 0);
    // The new release's `up`: the expand only.
    let up = v2.expect(&["up", "--format", "json"], 0).json();
    let ran: Vec<i64> = up["ran"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_i64().unwrap())
        .collect();
    assert_eq!(ran, [3]);
    let status = v2.expect(&["status"], 0);
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("pending (post-deploy) 4 drop_legacy")),
        "{}",
        status.stdout
    );
    let json = v2.expect(&["status", "--format", "json"], 0).json();
    assert_eq!(json["migrations"][3]["status"], "pending (post-deploy)");
    // The old release still starts: a warning, exit 0.
    let old = v1.expect(&["up"], 0);
    assert!(old.stderr.contains("future"), "{}", old.stderr);
    // Replicas of v2 may start; the post phase is not there yet.
    v2.expect(&["wait", "--timeout", "0"], 0);
    let timeout = v2.expect(&["wait", "--phase", "all", "--timeout", "0.3s"], 1);
    assert!(
        timeout
            .stderr
            .contains("the database is not migrated yet after")
            && timeout.stderr.contains("still pending: 4 drop_legacy"),
        "{}",
        timeout.stderr
    );

    // The post-deploy step. `up --to 4` without the phase is refused, naming it.
    let refused = v2.expect(&["up", "--to", "4"], 2);
    assert_eq!(
        refused.stderr,
        "error: 4 drop_legacy is a post-deployment migration (`-- migrations:phase=post`); run \
         `up --phase post` (or `--phase all`) to apply it\n"
    );
    v2.expect(&["up", "--phase", "post"], 0);
    v2.expect(&["wait", "--phase", "all"], 0);

    // The old release now refuses, exit 3, and its `wait` at once.
    let refused = v1.expect(&["up"], 3);
    assert_eq!(
        refused.stderr,
        "error: the database has breaking migration 4 drop_legacy, newer than the migrations \
         this program carries: deploy a version that has it\n"
    );
    let json = v1.expect(&["up", "--format", "json"], 3).json();
    assert_eq!(json["error"]["kind"], "incompatible");
    let started = Instant::now();
    v1.expect(&["wait", "--timeout", "1min"], 3);
    assert!(started.elapsed() < Duration::from_secs(20));

    // The rollback: refused without the flag (exit 2), then done with the stored downs.
    let refused = v1.expect(&["down", "--to", "2"], 2);
    assert!(
        refused.stderr.contains("cannot revert 4 drop_legacy")
            && refused.stderr.contains("pass --stored-downs"),
        "{}",
        refused.stderr
    );
    let plan = v1.expect(&["down", "--to", "2", "--stored-downs", "--dry-run"], 0);
    assert!(plan.stdout.contains("4 drop_legacy"), "{}", plan.stdout);
    v1.expect(&["down", "--to", "2", "--stored-downs"], 0);
    assert_eq!(
        column(
            &db,
            "SELECT version || ' ' || detail FROM migrations_history_audit \
             WHERE event = 'down' ORDER BY id"
        ),
        ["4 stored down", "3 stored down"].map(|s| Some(s.to_owned()))
    );
    v1.expect(&["up"], 0);
    v1.expect(&["wait"], 0);
    v1.expect(&["status", "--exit-code"], 0);
}

#[test]
fn wait_returns_when_a_concurrent_up_finishes() {
    let db = test_db();
    let v2 = release(db.url(), "v2");
    // The runner holds the lock while a migration sleeps; the waiter sees it finish.
    v2.write(
        "3_email.up.sql",
        "SELECT pg_sleep(1.5);\nALTER TABLE users ADD COLUMN email text;\n",
    );
    let waiter = v2.spawn(&["wait", "--timeout", "1min", "--format", "json"]);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    v2.expect(&["up"], 0);
    let ran_for = started.elapsed();
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["command"], "wait");
    assert!(json["checks"].as_u64().unwrap() > 1);
    assert!(json["waited_ms"].as_u64().unwrap() >= ran_for.as_millis() as u64);
    // A database that never gets migrated: exit 1 after the timeout.
    let other = test_db();
    let started = Instant::now();
    release(other.url(), "v2").expect(&["wait", "--timeout", "500ms"], 1);
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[test]
fn directives_and_the_offline_script() {
    let db = test_db();
    let v2 = release(db.url(), "v2");
    let pre = v2.expect(&["sql"], 0);
    assert!(pre.stdout.contains("-- up 3 email") && !pre.stdout.contains("-- up 4"));
    let all = v2.expect(&["sql", "--phase", "all"], 0);
    assert!(all.stdout.contains("-- up 4 drop_legacy"));
    // A deploy directive in a down file, and a misspelt phase: load errors naming the line.
    v2.write(
        "4_drop_legacy.down.sql",
        "-- migrations:breaking\nALTER TABLE users ADD COLUMN legacy text;\n",
    );
    v2.write(
        "3_email.up.sql",
        "-- migrations:phase=later\nALTER TABLE users ADD COLUMN email text;\n",
    );
    let bad = v2.expect(&["up"], 2);
    assert!(
        bad.stderr.contains(
            "4_drop_legacy.down.sql:1: `breaking` describes the whole migration: move it to the \
             up file"
        ),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr
            .contains("3_email.up.sql:1: `phase` takes `post`"),
        "{}",
        bad.stderr
    );
}
