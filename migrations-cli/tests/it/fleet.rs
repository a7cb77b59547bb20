//! Fleets through the CLI (issue 22): tenant schemas listed by a registry query, databases of a
//! fleet file, `--jobs`, `--shard`, `--canary`, `--fail-fast`, a server that is down, SIGKILL
//! mid-run and the rerun that resumes.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{column, scalar, Project};
use migrations_tests::{test_db, TestDb};

const TENANTS: &str = "select schema_name from tenants order by 1";

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let joint = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joint}{param}")
}

/// A registry table `tenants` listing `n` schemas `tenant_000`, ... (not created: the fleet
/// creates each tenant's schema before its first `up`).
fn registry(db: &TestDb, n: usize) {
    let mut client = db.connect();
    client
        .batch_execute(
            "create table tenants (schema_name text primary key);
             create table broken (name text primary key);",
        )
        .unwrap();
    client
        .batch_execute(&format!(
            "insert into tenants select format('tenant_%s', lpad(i::text, 3, '0'))
             from generate_series(0, {}) i",
            n - 1
        ))
        .unwrap();
}

/// Two migrations; the second fails in the tenants listed in `public.broken` (its SQL reaches
/// its own schema through the `search_path` the fleet sets, and names it with `${tenant}`).
fn tenant_project(url: &str) -> Project {
    Project::new(&[
        (
            "1_items.up.sql",
            "create table items (id int primary key);\n",
        ),
        ("1_items.down.sql", "drop table items;\n"),
        (
            "2_check.up.sql",
            "alter table ${tenant}.items add column note text;\n\
             do $$ begin\n\
               if exists (select from public.broken where name = current_schema()) then\n\
                 raise exception 'tenant % is broken', current_schema();\n\
               end if;\n\
             end $$;\n",
        ),
    ])
    .url_as_flag(url)
}

fn targets(json: &Value) -> &Vec<Value> {
    json["targets"].as_array().expect("a targets array")
}

fn names_in(json: &Value, state: &str) -> Vec<String> {
    targets(json)
        .iter()
        .filter(|t| t["state"] == state)
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn two_hundred_tenants_one_failing_is_isolated_reported_and_a_rerun_completes_it() {
    let db = test_db();
    registry(&db, 200);
    db.connect()
        .batch_execute("insert into broken values ('tenant_137')")
        .unwrap();
    let project = tenant_project(db.url());
    let run = project.run(&[
        "up",
        "--tenants-query",
        TENANTS,
        "--jobs",
        "8",
        "--format",
        "json",
    ]);
    run.expect(1);
    let json = run.json();
    assert_eq!(targets(&json).len(), 200);
    assert_eq!(names_in(&json, "failed"), ["tenant_137"]);
    assert_eq!(names_in(&json, "migrated").len(), 199);
    let failed = targets(&json)
        .iter()
        .find(|t| t["name"] == "tenant_137")
        .unwrap();
    assert_eq!(failed["tenant"], "tenant_137");
    assert_eq!(failed["error"]["kind"], "migration");
    assert_eq!(failed["error"]["version"], 2);
    assert_eq!(failed["error"]["sqlstate"], "P0001");
    assert_eq!(failed["exit_code"], 1);
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["summary"]["failed"], 1);
    assert!(json["peak_connections"].as_u64().unwrap() <= 8);
    // Each tenant has its own history in its own schema; the failed one stopped after 1.
    assert_eq!(
        scalar(&db, "select count(*) from tenant_000.migrations_history").as_deref(),
        Some("2")
    );
    assert_eq!(
        column(
            &db,
            "select version::text from tenant_137.migrations_history"
        ),
        [Some("1".to_owned())]
    );
    assert_eq!(
        scalar(
            &db,
            "select count(*) from information_schema.columns where column_name = 'note'"
        )
        .as_deref(),
        Some("199")
    );
    // Text: the error on stderr names the tenant; the table and the summary on stdout.
    db.connect()
        .batch_execute("insert into tenants values ('tenant_200')")
        .unwrap();
    let text = project.expect(&["up", "--tenants-query", TENANTS, "--jobs", "8"], 1);
    assert!(
        text.stderr.contains(
            "error: tenant_137: up 2 check failed at statement 2 of 2 \
                 (migrations/2_check.up.sql:2): tenant tenant_137 is broken (SQLSTATE P0001)"
        ),
        "{}",
        text.stderr
    );
    assert!(
        text.stdout
            .contains("201 targets: 199 current, 1 failed, 1 migrated"),
        "{}",
        text.stdout
    );

    // The rerun, once the cause is gone: done tenants are warm checks, the failed one runs.
    db.connect().batch_execute("delete from broken").unwrap();
    let rerun = project
        .expect(
            &[
                "up",
                "--tenants-query",
                TENANTS,
                "--jobs",
                "8",
                "--format",
                "json",
            ],
            0,
        )
        .json();
    assert_eq!(names_in(&rerun, "migrated"), ["tenant_137"]);
    assert_eq!(names_in(&rerun, "current").len(), 200);
    let applied: Vec<i64> = targets(&rerun)
        .iter()
        .find(|t| t["name"] == "tenant_137")
        .unwrap()["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_i64().unwrap())
        .collect();
    assert_eq!(applied, [2]);
}

#[test]
fn shards_cover_every_tenant_exactly_once_and_adding_one_moves_no_other() {
    let db = test_db();
    registry(&db, 200);
    let project = tenant_project(db.url());
    let slice = |i: u32| -> BTreeSet<String> {
        let json = project
            .expect(
                &[
                    "status",
                    "--tenants-query",
                    TENANTS,
                    "--shard",
                    &format!("{i}/3"),
                    "--format",
                    "json",
                ],
                0,
            )
            .json();
        assert_eq!(json["listed"], json!(count_tenants(&db)));
        assert_eq!(json["shard"], format!("{i}/3"));
        targets(&json)
            .iter()
            .map(|t| {
                assert_eq!(t["state"], "pending", "{t}");
                t["name"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let slices: Vec<BTreeSet<String>> = (1..=3).map(slice).collect();
    let all: BTreeSet<String> = (0..200).map(|i| format!("tenant_{i:03}")).collect();
    let union: BTreeSet<String> = slices.iter().flatten().cloned().collect();
    assert_eq!(union, all);
    assert_eq!(slices.iter().map(BTreeSet::len).sum::<usize>(), 200);
    for s in &slices {
        // Close to a third each: the hash spreads the names.
        assert!((40..95).contains(&s.len()), "{}", s.len());
    }
    // A new tenant joins one slice; no other tenant changes slice.
    db.connect()
        .batch_execute("insert into tenants values ('tenant_new')")
        .unwrap();
    let after: Vec<BTreeSet<String>> = (1..=3).map(slice).collect();
    for (before, after) in slices.iter().zip(&after) {
        assert!(before.is_subset(after));
    }
    assert_eq!(after.iter().map(BTreeSet::len).sum::<usize>(), 201);

    let bad = project.expect(&["status", "--tenants-query", TENANTS, "--shard", "4/3"], 2);
    assert!(
        bad.stderr
            .contains("shard 4/3 does not exist: I goes from 1 to 3 (1/3 ... 3/3)"),
        "{}",
        bad.stderr
    );
}

fn count_tenants(db: &TestDb) -> u64 {
    scalar(db, "select count(*) from tenants")
        .unwrap()
        .parse()
        .unwrap()
}

use serde_json::json;

#[test]
fn connections_at_peak_never_exceed_jobs() {
    let db = test_db();
    registry(&db, 12);
    let app = format!("fleet_peak_{}", std::process::id());
    let url = with_param(db.url(), &format!("application_name={app}"));
    let project = Project::new(&[(
        "1_slow.up.sql",
        "create table t (id int);\nselect pg_sleep(0.4);\n",
    )])
    .url_as_flag(&url);
    // Sample pg_stat_activity while the run goes.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, admin, app) = (done.clone(), db.admin_url().to_owned(), app.clone());
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            let mut peak = 0i64;
            while !done.load(Ordering::SeqCst) {
                let n: i64 = client
                    .query_one(
                        "select count(*) from pg_stat_activity where application_name = $1",
                        &[&app],
                    )
                    .unwrap()
                    .get(0);
                peak = peak.max(n);
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let started = Instant::now();
    let json = project
        .expect(
            &[
                "up",
                "--tenants-query",
                TENANTS,
                "--jobs",
                "3",
                "--format",
                "json",
            ],
            0,
        )
        .json();
    let took = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    assert_eq!(names_in(&json, "migrated").len(), 12);
    // Bounded, and reached: 12 targets of 0.4 s on 3 connections.
    assert_eq!(peak, 3, "connections seen at once");
    assert_eq!(json["peak_connections"], 3);
    assert!(took >= Duration::from_millis(1600), "{took:?}");
}

#[test]
fn a_server_that_is_down_is_reported_and_the_other_databases_complete() {
    let (a, b) = (test_db(), test_db());
    let project = Project::new(&[("1_t.up.sql", "create table t (id int);\n")]);
    // Port 1 refuses at once; the password in its URL must never be printed.
    project.write_file(
        "fleet.toml",
        &format!(
            "[[database]]\nname = \"a\"\nurl = \"{}\"\nlabels = {{ region = \"eu\" }}\n\n\
             [[database]]\nname = \"down\"\nurl = \"postgres://app:sekrit-pass@127.0.0.1:1/app\"\n\n\
             [[database]]\nname = \"b\"\nurl = \"{}\"\n",
            a.url(),
            b.url()
        ),
    );
    let run = project.run(&[
        "up",
        "--fleet",
        "fleet.toml",
        "--connect-timeout",
        "0s",
        "--format",
        "json",
    ]);
    run.expect(1);
    assert!(!run.all().contains("sekrit-pass"), "{}", run.all());
    let json = run.json();
    assert_eq!(names_in(&json, "migrated"), ["a", "b"]);
    assert_eq!(names_in(&json, "failed"), ["down"]);
    let down = &targets(&json)[1];
    assert_eq!(down["error"]["kind"], "connect");
    assert_eq!(down["exit_code"], 1);
    assert_eq!(targets(&json)[0]["labels"]["region"], "eu");
    assert!(crate::common::table_exists(&a, "public.t"));
    assert!(crate::common::table_exists(&b, "public.t"));

    // The canary: the first target alone; when it fails, nothing else starts.
    let (c, d) = (test_db(), test_db());
    project.write_file(
        "canary.toml",
        &format!(
            "[[database]]\nname = \"down\"\nurl = \"postgres://app@127.0.0.1:1/app\"\n\n\
             [[database]]\nname = \"c\"\nurl = \"{}\"\n\n[[database]]\nname = \"d\"\nurl = \"{}\"\n",
            c.url(),
            d.url()
        ),
    );
    let canary = project.run(&[
        "up",
        "--fleet",
        "canary.toml",
        "--canary",
        "1",
        "--connect-timeout",
        "0s",
        "--format",
        "json",
    ]);
    canary.expect(1);
    let json = canary.json();
    assert_eq!(names_in(&json, "skipped"), ["c", "d"]);
    assert_eq!(targets(&json)[1]["skipped_because"], "the canary failed");
    assert!(!crate::common::table_exists(&c, "public.t"));

    // --fail-fast, one at a time: nothing starts after the failure.
    let fail_fast = project.run(&[
        "up",
        "--fleet",
        "canary.toml",
        "--jobs",
        "1",
        "--fail-fast",
        "--connect-timeout",
        "0s",
    ]);
    fail_fast.expect(1);
    assert!(
        fail_fast
            .stdout
            .contains("not started: --fail-fast: down failed first"),
        "{}",
        fail_fast.stdout
    );
    assert!(!crate::common::table_exists(&d, "public.t"));
    // Without it, the others complete.
    project.expect(
        &["up", "--fleet", "canary.toml", "--connect-timeout", "0s"],
        1,
    );
    assert!(crate::common::table_exists(&d, "public.t"));
}

#[test]
fn status_verify_and_wait_over_a_fleet_exit_with_the_worst_targets_code() {
    let db = test_db();
    registry(&db, 3);
    let project = tenant_project(db.url());
    // Nothing applied: status shows pending (exit 0), --exit-code makes it 3; wait times out.
    let status = project.expect(&["status", "--tenants-query", TENANTS], 0);
    assert!(
        status.stdout.contains("3 targets: 3 pending"),
        "{}",
        status.stdout
    );
    project.expect(&["status", "--tenants-query", TENANTS, "--exit-code"], 3);
    let wait = project.run(&[
        "wait",
        "--tenants-query",
        TENANTS,
        "--timeout",
        "200ms",
        "--format",
        "json",
    ]);
    wait.expect(1);
    assert_eq!(wait.json()["targets"][0]["error"]["kind"], "wait_timeout");
    project.expect(&["up", "--tenants-query", TENANTS], 0);
    project.expect(&["wait", "--tenants-query", TENANTS], 0);
    project.expect(&["status", "--tenants-query", TENANTS, "--exit-code"], 0);
    // An edited migration: verify --online and up report drift (3) on every tenant.
    project.expect(&["lock"], 0);
    project.write(
        "1_items.up.sql",
        "create table items (id bigint primary key);\n",
    );
    project.expect(&["lock", "--rewrite", "1"], 0);
    let verify = project.run(&[
        "verify",
        "--online",
        "--tenants-query",
        TENANTS,
        "--format",
        "json",
    ]);
    verify.expect(3);
    assert_eq!(names_in(&verify.json(), "drift").len(), 3);
    let up = project.run(&["up", "--tenants-query", TENANTS, "--format", "json"]);
    up.expect(3);
    assert_eq!(up.json()["targets"][0]["error"]["kind"], "drift");

    // Usage mistakes exit 2 before anything connects.
    let no_targets = project.expect(&["up", "--jobs", "2"], 2);
    assert!(
        no_targets.stderr.contains(
            "the fleet flags need targets: --fleet FILE (databases) or --tenants-query SQL"
        ),
        "{}",
        no_targets.stderr
    );
    project.expect(&["up", "--tenants-query", TENANTS, "--schema", "s"], 2);
    project.expect(&["verify", "--tenants-query", TENANTS], 2);
}

#[test]
fn a_fleet_killed_mid_run_resumes_on_the_next_run() {
    let db = test_db();
    registry(&db, 30);
    let project = Project::new(&[
        (
            "1_slow.up.sql",
            "create table t (id int);\nselect pg_sleep(0.15);\n",
        ),
        ("2_more.up.sql", "alter table t add column x int;\n"),
    ])
    .url_as_flag(db.url());
    let mut child = project.spawn(&["up", "--tenants-query", TENANTS, "--jobs", "4"]);
    // Kill it once some tenants are done and others are not.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = scalar(
            &db,
            "select count(*) from pg_tables where tablename = 'migrations_history'",
        )
        .unwrap()
        .parse::<i64>()
        .unwrap();
        if done >= 8 {
            break;
        }
        assert!(Instant::now() < deadline, "the fleet made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: no cleanup of any kind runs in the process.
    unsafe_kill(child.id());
    let _ = child.wait();
    let complete = scalar(
        &db,
        "select count(*) from information_schema.columns where table_name = 't' and column_name = 'x'",
    )
    .unwrap();
    assert_ne!(complete, "30", "the kill came too late to test anything");
    let json = project
        .expect(
            &[
                "up",
                "--tenants-query",
                TENANTS,
                "--jobs",
                "4",
                "--format",
                "json",
            ],
            0,
        )
        .json();
    assert_eq!(
        names_in(&json, "migrated").len() + names_in(&json, "current").len(),
        30
    );
    assert!(!names_in(&json, "migrated").is_empty());
    // Every tenant has both migrations, each applied once.
    for i in 0..30 {
        assert_eq!(
            column(
                &db,
                &format!("select version::text from tenant_{i:03}.migrations_history order by 1")
            ),
            [Some("1".to_owned()), Some("2".to_owned())]
        );
    }
}

fn unsafe_kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A target whose session is killed mid-migration (`pg_terminate_backend`, as an operator or
/// the server's OOM handling would) is reported failed, the other targets complete, and a
/// rerun completes it (issue 22 item 5).
#[test]
fn a_target_terminated_mid_run_is_reported_and_a_rerun_completes_it() {
    let (a, victim, b) = (test_db(), test_db(), test_db());
    let project = Project::new(&[(
        "1_slow.up.sql",
        "create table t (id int);\nselect pg_sleep(2);\n",
    )]);
    project.write_file(
        "fleet.toml",
        &format!(
            "[[database]]\nname = \"a\"\nurl = \"{}\"\n\n\
             [[database]]\nname = \"victim\"\nurl = \"{}\"\n\n\
             [[database]]\nname = \"b\"\nurl = \"{}\"\n",
            a.url(),
            victim.url(),
            b.url()
        ),
    );
    let mut command = project.command(&[
        "up",
        "--fleet",
        "fleet.toml",
        "--jobs",
        "3",
        "--format",
        "json",
    ]);
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A second session terminates the victim's backend while it sleeps in the migration.
    let mut admin = victim.connect_admin();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let killed: i64 = admin
            .query_one(
                "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity \
                 where datname = $1 and query like '%pg_sleep(2)%' \
                 and pid <> pg_backend_pid()) k",
                &[&victim.name()],
            )
            .unwrap()
            .get(0);
        if killed > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the migration never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names_in(&json, "migrated"), ["a", "b"], "{json}");
    assert_eq!(names_in(&json, "failed"), ["victim"], "{json}");
    let failed = &targets(&json)[1];
    assert_eq!(failed["exit_code"], 1, "{json}");
    // Told apart by SQLSTATE (admin_shutdown), with the migration and what became of it.
    assert_eq!(failed["error"]["sqlstate"], "57P01", "{json}");
    assert_eq!(failed["error"]["kind"], "migration", "{json}");
    assert_eq!(
        failed["error"]["message"],
        "up 1 slow failed (migrations/1_slow.up.sql): terminating connection due to \
         administrator command (SQLSTATE 57P01); the session ended while it ran, so which \
         statement was running is not known; it was rolled back unless its COMMIT had reached \
         the server (the history says which)",
        "{json}"
    );
    // The migration was rolled back with its session: nothing half-applied.
    assert!(!crate::common::table_exists(&victim, "public.t"));
    assert!(crate::common::table_exists(&a, "public.t"));

    let rerun = project
        .expect(&["up", "--fleet", "fleet.toml", "--format", "json"], 0)
        .json();
    assert_eq!(names_in(&rerun, "migrated"), ["victim"], "{rerun}");
    assert_eq!(names_in(&rerun, "current"), ["a", "b"], "{rerun}");
    assert!(crate::common::table_exists(&victim, "public.t"));
}
