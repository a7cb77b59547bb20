//! CLI manners (issue 17 items 4 and 6): each command lists only the flags it uses, and one
//! spelling everywhere (versions as the file writes them for people, numbers and RFC 3339 times
//! in JSON).

use migrations_tests::test_db;
use serde_json::Value;

use crate::common::Project;

/// The flags a command's help lists, as `--name` words.
fn flags_in_help(p: &Project, command: &[&str]) -> Vec<String> {
    let mut args = command.to_vec();
    args.push("--help");
    let run = p.run(&args);
    assert_eq!(run.code, 0, "{command:?}: {}", run.stderr);
    run.stdout
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches(',').to_owned())
        .collect()
}

/// `init` and `new` never connect: their help shows no connection flag. The commands that
/// connect show them all, under "Connection".
#[test]
fn connection_flags_show_only_where_they_are_used() {
    let p = Project::new(&[("1_a.up.sql", "SELECT 1;\n")]);
    let connection = [
        "--database-url",
        "--schema",
        "--table",
        "--search-path",
        "--lock-timeout",
        "--statement-timeout",
        "--lock-wait",
        "--connect-timeout",
    ];
    for command in [&["init"][..], &["new"], &["lint"], &["completions"]] {
        let shown = flags_in_help(&p, command);
        for flag in connection {
            assert!(!shown.iter().any(|s| s == flag), "{command:?} lists {flag}");
        }
        assert!(shown.iter().any(|s| s == "--dir"), "{command:?}: {shown:?}");
    }
    for command in [
        &["up"][..],
        &["down"],
        &["status"],
        &["history"],
        &["baseline"],
        &["repair"],
        &["sql"],
        &["test"],
        &["verify"],
    ] {
        let shown = flags_in_help(&p, command);
        for flag in connection {
            assert!(shown.iter().any(|s| s == flag), "{command:?} lacks {flag}");
        }
    }
    let up = p.run(&["up", "--help"]);
    assert!(up.stdout.contains("\nConnection:\n"), "{}", up.stdout);
    // Given to a command that does not connect, a connection flag is a usage error (exit 2)
    // that names it.
    let refused = p.run(&["new", "x", "--database-url", "postgres://localhost/db"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .starts_with("error: unexpected argument '--database-url' found"),
        "{}",
        refused.stderr
    );
}

/// The connection flags are still taken before the command, as every earlier version took
/// them; given on both sides, the one after the command wins.
#[test]
fn connection_flags_before_the_command_still_work() {
    let db = test_db();
    let p = Project::new(&[("1_a.up.sql", "CREATE TABLE a ();\n")]);
    let url = db.url();
    p.run(&["--database-url", url, "--table", "before_h", "up"])
        .expect(0);
    let status = p.run(&[
        "--table",
        "before_h",
        "--format",
        "json",
        "status",
        "--database-url",
        url,
    ]);
    status.expect(0);
    let doc: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["migrations"][0]["status"], "applied", "{doc}");
    // After the command wins: a history table of another name has nothing applied.
    let other = p.run(&[
        "--table",
        "before_h",
        "--format",
        "json",
        "status",
        "--table",
        "after_h",
        "--database-url",
        url,
    ]);
    other.expect(0);
    let doc: Value = serde_json::from_str(&other.stdout).unwrap();
    assert_eq!(doc["migrations"][0]["status"], "pending", "{doc}");
}

/// Two migrations in diesel's layout, whose versions are written with dashes.
fn diesel_project(url: &str) -> Project {
    Project::new(&[
        (
            "2025-08-01-000015_users/up.sql",
            "CREATE TABLE users (id int);\n",
        ),
        ("2025-08-01-000015_users/down.sql", "DROP TABLE users;\n"),
        (
            "2025-08-02-000000_posts/up.sql",
            "CREATE TABLE posts (id int);\n",
        ),
        ("2025-08-02-000000_posts/down.sql", "DROP TABLE posts;\n"),
    ])
    .url_in_env(url)
}

/// Stdout without the durations, which vary: `up 1 a (3 ms)` becomes `up 1 a`, and
/// `2 migrations in 21 ms` becomes `2 migrations`.
fn without_durations(text: &str) -> String {
    text.lines()
        .map(|l| match (l.rfind(" ("), l.rfind(" in ")) {
            (Some(i), _) if l.ends_with(" ms)") => &l[..i],
            (_, Some(i)) if l.ends_with(" ms") => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// For people, a version is spelled as its file name writes it, by every command: diesel's
/// dashes kept, as `lock` and `verify` always did.
#[test]
fn text_spells_versions_as_the_files_do() {
    let db = test_db();
    let p = diesel_project(db.url());
    let out = |args: &[&str]| {
        let run = p.run(args);
        run.expect(0);
        without_durations(&run.stdout)
    };
    assert_eq!(
        out(&["up", "--dry-run"]),
        "would run up 2025-08-01-000015 users (in a transaction)\n\
         would run up 2025-08-02-000000 posts (in a transaction)"
    );
    assert_eq!(
        out(&["up"]),
        "up 2025-08-01-000015 users\nup 2025-08-02-000000 posts\n2 migrations"
    );
    assert_eq!(
        out(&["status"]),
        "applied      2025-08-01-000015 users\napplied      2025-08-02-000000 posts"
    );
    assert_eq!(out(&["current"]), "2025-08-02-000000 posts");
    assert_eq!(
        out(&["history"]),
        "2025-08-01-000015 users applied\n2025-08-02-000000 posts applied"
    );
    assert_eq!(
        out(&["lock"]),
        "locked 2025-08-01-000015 users\nlocked 2025-08-02-000000 posts"
    );
    assert_eq!(
        out(&["down", "--dry-run"]),
        "would run down 2025-08-02-000000 posts (in a transaction)"
    );
    assert_eq!(out(&["down"]), "down 2025-08-02-000000 posts\n1 migration");
    // A version given in digits is printed as the file writes it.
    assert_eq!(
        out(&["down", "--to", "20250801000015"]),
        "nothing to revert: no migration above 2025-08-01-000015 is applied"
    );
    let verify = p.run(&["verify", "--online"]);
    verify.expect(0);
    assert_eq!(
        verify.stdout,
        "database: 2025-08-02-000000 posts: pending\n\
         ok: 2 locked migrations verified, database agrees\n"
    );
    // A drift refusal lists the migration as its file writes it too.
    p.write(
        "2025-08-01-000015_users/up.sql",
        "CREATE TABLE users (id bigint);\n",
    );
    let refused = p.run(&["up"]);
    refused.expect(3);
    assert!(
        refused.stderr.starts_with(
            "error: the database has drifted from the migrations; nothing was run\nedited: "
        ) && refused.stderr.contains("\n  2025-08-01-000015 users: "),
        "{}",
        refused.stderr
    );
    // Sequential versions keep their zero padding.
    let padded = Project::new(&[("0004_a.up.sql", "SELECT 1;\n")]).url_in_env(db.url());
    padded.run(&["--table", "padded_h", "up"]).expect(0);
    let status = padded.run(&["status", "--table", "padded_h"]);
    assert_eq!(status.stdout, "applied      0004 a\n");
}

/// For scripts, `version` is a number in every command's JSON, `new`'s included.
#[test]
fn json_versions_are_numbers() {
    let db = test_db();
    let p = diesel_project(db.url());
    let json = |args: &[&str]| {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let run = p.run(&all);
        run.expect(0);
        run.json()
    };
    let first = serde_json::json!(20250801000015_i64);
    let second = serde_json::json!(20250802000000_i64);
    assert_eq!(json(&["up", "--dry-run"])["plan"][0]["version"], first);
    assert_eq!(json(&["up"])["ran"][1]["version"], second);
    assert_eq!(json(&["status"])["migrations"][0]["version"], first);
    assert_eq!(json(&["current"])["version"], second);
    assert_eq!(json(&["history"])["applied"][1]["version"], second);
    let verbose = json(&["history", "--verbose"]);
    assert_eq!(verbose["audit"][0]["version"], first, "{verbose}");
    assert_eq!(json(&["down", "--dry-run"])["plan"][0]["version"], second);
    assert_eq!(json(&["down"])["ran"][0]["version"], second);
    let new = json(&["new", "comments"]);
    assert!(new["version"].is_i64(), "{new}");
    let folder = new["files"][0].as_str().unwrap();
    let spelled = folder
        .rsplit('/')
        .nth(1)
        .unwrap()
        .split('_')
        .next()
        .unwrap();
    assert_eq!(
        new["version"].as_i64().unwrap().to_string(),
        spelled.replace('-', ""),
        "{new}"
    );
}

/// `2025-08-01T00:00:15.123Z`: 24 characters, UTC.
fn is_rfc3339_utc(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b[i].is_ascii_digit());
    b.len() == 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && b[23] == b'Z'
}

/// Times are RFC 3339 in UTC, whatever the server's TimeZone and DateStyle: in `history`'s
/// JSON and text, and in the audit events.
#[test]
fn times_are_rfc3339_utc() {
    let db = test_db();
    // A session default far from UTC and from ISO: the server's own text form would be
    // `01/08/2025 05:30:15.123 IST`.
    db.connect()
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET timezone = 'Asia/Kolkata'; \
             ALTER DATABASE \"{}\" SET datestyle = 'SQL, DMY'",
            db.name(),
            db.name()
        ))
        .unwrap();
    let p = diesel_project(db.url());
    p.run(&["up"]).expect(0);
    let run = p.run(&["--format", "json", "history", "--verbose"]);
    run.expect(0);
    let doc = run.json();
    let applied_at = doc["applied"][0]["applied_at"].as_str().unwrap().to_owned();
    assert!(is_rfc3339_utc(&applied_at), "{doc}");
    let at = doc["audit"][0]["at"].as_str().unwrap();
    assert!(is_rfc3339_utc(at), "{doc}");
    // The same instant as the server's, read in UTC.
    let utc_hour_minute: String = db
        .connect()
        .query_one(
            "SELECT to_char(applied_at AT TIME ZONE 'UTC', 'HH24:MI') \
             FROM public.migrations_history ORDER BY version LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(&applied_at[11..16], utc_hour_minute, "{applied_at}");
    // A repeatable migration's time too (`status`'s JSON).
    p.write(
        "R__views.sql",
        "CREATE OR REPLACE VIEW v AS SELECT 1 AS one;\n",
    );
    p.run(&["up"]).expect(0);
    let status = p.run(&["--format", "json", "status"]);
    status.expect(0);
    let doc = status.json();
    let repeatable_at = doc["repeatables"][0]["applied_at"]
        .as_str()
        .unwrap_or_default();
    assert!(is_rfc3339_utc(repeatable_at), "{doc}");
    let text = p.run(&["history", "--verbose"]);
    text.expect(0);
    assert!(
        text.stdout.contains(&format!(
            "2025-08-01-000015 users applied  at {applied_at} by "
        )),
        "{}",
        text.stdout
    );
}

/// The messages the library writes spell versions as the files do too: a failed migration, the
/// offline script's comments, `baseline`'s and `repair`'s changes, `test`'s lines (issue 17
/// item 6).
#[test]
fn library_messages_spell_versions_as_the_files_do() {
    let db = test_db();
    let p = diesel_project(db.url());
    let sql = p.run(&["sql"]);
    sql.expect(0);
    assert!(
        sql.stdout.contains("\n-- up 2025-08-01-000015 users\n")
            && sql.stdout.contains("\n-- up 2025-08-02-000000 posts\n"),
        "{}",
        sql.stdout
    );
    let test = p.run(&["test"]);
    test.expect(0);
    assert!(
        test.stdout
            .starts_with("ok 2025-08-01-000015 users\nok 2025-08-02-000000 posts\n"),
        "{}",
        test.stdout
    );
    let baseline = p.run(&["baseline", "2025-08-01-000015"]);
    baseline.expect(0);
    assert_eq!(
        baseline.stdout,
        "2025-08-01-000015 users: recorded as applied\n"
    );
    p.write(
        "2025-08-03-000000_broken/up.sql",
        "-- migrations:no-transaction\nSELECT 1;\nSELECT 1/0;\n",
    );
    let failed = p.run(&["up"]);
    failed.expect(1);
    assert!(
        failed
            .stderr
            .contains("up 2025-08-03-000000 broken failed at statement 2 of 2 ("),
        "{}",
        failed.stderr
    );
    let repair = p.run(&["repair"]);
    repair.expect(0);
    assert_eq!(
        repair.stdout,
        "2025-08-03-000000 broken: cleared failed state\n"
    );
}
