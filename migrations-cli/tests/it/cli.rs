//! The `migrations` binary as a user runs it, against a real PostgreSQL: every command, every
//! exit code, the JSON documents, and passwords kept out of every output.

use std::fs;

use migrations_tests::{test_db, TestDb};
use serde_json::Value;

use crate::common::Project;

/// A project of three migrations (two tables, a concurrent index), run with `DATABASE_URL`.
fn project(db: &TestDb) -> Project {
    Project::new(&[
        ("1_users.up.sql", "CREATE TABLE users (id int PRIMARY KEY);\n"),
        ("1_users.down.sql", "DROP TABLE users;\n"),
        (
            "2_posts.up.sql",
            "CREATE TABLE posts (id int, user_id int REFERENCES users);\n",
        ),
        ("2_posts.down.sql", "DROP TABLE posts;\n"),
        (
            "3_index.up.sql",
            "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS posts_user ON posts (user_id);\n",
        ),
        (
            "3_index.down.sql",
            "-- migrations:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS posts_user;\n",
        ),
    ])
    .url_in_env(db.url())
}

#[test]
fn up_status_current_history_down_redo() {
    let db = test_db();
    let p = project(&db);

    let status = p.run(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_eq!(
        status.stdout,
        "pending      1 users\npending      2 posts\npending      3 index\n"
    );
    let pending = p.run(&["status", "--exit-code"]);
    assert_eq!(pending.code, 3);

    let dry = p.run(&["up", "--dry-run"]);
    assert_eq!(dry.code, 0);
    assert_eq!(
        dry.stdout,
        "would run up 1 users (in a transaction)\nwould run up 2 posts (in a transaction)\nwould run up 3 index (outside a transaction)\n"
    );
    assert_eq!(p.run(&["current"]).stdout, "none\n");

    let up = p.run(&["-v", "up", "--to", "2"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    // The lock is released once: a second unlock makes the server warn, which -v shows.
    assert!(!up.stderr.contains("WARNING"), "{}", up.stderr);
    assert!(up.stdout.starts_with("up 1 users ("), "{}", up.stdout);
    assert!(up.stdout.contains("\nup 2 posts ("), "{}", up.stdout);
    assert!(up.stdout.ends_with(" ms\n"), "{}", up.stdout);
    assert!(!up.stdout.contains('\x1b'), "piped output is plain");
    assert_eq!(p.run(&["current"]).stdout, "2 posts\n");

    let up = p.run(&["up"]);
    assert_eq!(up.code, 0);
    assert!(up.stdout.starts_with("up 3 index ("), "{}", up.stdout);
    let again = p.run(&["up"]);
    assert_eq!(again.stdout, "nothing to do: the database is up to date\n");

    let history = p.run(&["history"]);
    assert_eq!(
        history.stdout,
        "1 users applied\n2 posts applied\n3 index applied\n"
    );
    let verbose = p.run(&["history", "--verbose"]);
    assert!(verbose.stdout.contains("audit:"), "{}", verbose.stdout);
    assert!(verbose.stdout.contains(" up 3"), "{}", verbose.stdout);
    // `history --verbose` is details, not logging: no debug lines on stderr.
    assert_eq!(verbose.code, 0, "{}", verbose.stderr);
    assert_eq!(verbose.stderr, "", "history --verbose logs nothing");
    // Logging is the global -v, which does not add history's details.
    let logged = p.run(&["-v", "history"]);
    assert_eq!(logged.code, 0, "{}", logged.stderr);
    assert!(logged.stderr.contains("[debug] "), "{}", logged.stderr);
    assert!(!logged.stdout.contains("audit:"), "{}", logged.stdout);

    let redo = p.run(&["redo"]);
    assert_eq!(redo.code, 0, "{}", redo.stderr);
    assert!(redo.stdout.starts_with("down 3 index ("), "{}", redo.stdout);
    let down = p.run(&["down", "--to", "1"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(p.run(&["current"]).stdout, "1 users\n");
    let down = p.run(&["down", "--all"]);
    assert_eq!(down.code, 0);
    assert_eq!(p.run(&["current"]).stdout, "none\n");
}

#[test]
fn json_documents() {
    let db = test_db();
    let p = project(&db);
    let up = p.run(&["--format", "json", "up"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let doc = up.json();
    assert_eq!(doc["command"], "up");
    assert_eq!(doc["dry_run"], false);
    assert_eq!(doc["ran"].as_array().unwrap().len(), 3);
    assert_eq!(doc["ran"][2]["name"], "index");
    assert_eq!(doc["ran"][2]["transaction"], false);
    assert!(doc["ran"][0]["duration_ms"].is_u64());

    let status = p.run(&["status", "--format", "json"]).json();
    assert_eq!(status["migrations"][0]["status"], "applied");
    assert_eq!(status["pending_or_drifted"], 0);
    let current = p.run(&["current", "--format", "json"]).json();
    assert_eq!(current["version"], 3);
    let history = p.run(&["history", "--format", "json", "--verbose"]).json();
    assert_eq!(history["applied"].as_array().unwrap().len(), 3);
    assert_eq!(history["audit"].as_array().unwrap().len(), 3);

    p.run(&["down", "--all"]);
    let current = p.run(&["current", "--format", "json"]).json();
    assert_eq!(current["version"], Value::Null);

    // Errors are a JSON document too, with the exit code.
    p.write(
        "1_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    p.run(&["up"]);
    p.write(
        "1_users.up.sql",
        "CREATE TABLE users (id int PRIMARY KEY);\n",
    );
    let drift = p.run(&["--format", "json", "up"]);
    assert_eq!(drift.code, 3);
    let doc = drift.json();
    assert_eq!(doc["error"]["kind"], "drift");
    assert_eq!(doc["error"]["exit_code"], 3);
}

#[test]
fn exit_codes() {
    let db = test_db();
    let p = project(&db);
    // 2: bad usage.
    let bad = p.run(&["up", "--no-such-flag"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--no-such-flag"), "{}", bad.stderr);
    // 2: bad migration files, each named.
    p.write("4_oops.sql", "SELECT 1;");
    let files = p.run(&["up"]);
    assert_eq!(files.code, 2);
    assert_eq!(
        files.stderr,
        "error: the migrations directory has 1 problem:\n  migrations/4_oops.sql: `4_oops.sql` is not a migration file name: expected <version>_<name>.up.sql or <version>_<name>.down.sql; if it is the up half of a migration, rename it to `4_oops.up.sql`, or list it under `ignore` in migrations.toml\n"
    );
    p.remove("4_oops.sql");
    // 2: a directory that does not exist.
    let missing = p.run(&["--dir", "nowhere", "status"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("nowhere: the migrations directory does not exist"),
        "{}",
        missing.stderr
    );
    // 1: a SQL error.
    p.write(
        "4_bad.up.sql",
        "CREATE TABLE t (x int);\n\nCREATE TABLE u (x no_such_type);\n",
    );
    let sql = p.run(&["up"]);
    assert_eq!(sql.code, 1);
    assert!(
        sql.stderr.contains(
            "error: up 4 bad failed at statement 2 of 2 (migrations/4_bad.up.sql:3): type \
             \"no_such_type\" does not exist (SQLSTATE 42704)\n"
        ),
        "{}",
        sql.stderr
    );
    // In JSON, where it failed is also given field by field.
    let json = p.run(&["--format", "json", "up"]);
    assert_eq!(json.code, 1);
    let error = &json.json()["error"];
    assert_eq!(error["kind"], "migration");
    assert_eq!(error["exit_code"], 1);
    assert_eq!(error["version"], 4);
    assert_eq!(error["name"], "bad");
    assert_eq!(error["direction"], "up");
    assert_eq!(error["file"], "migrations/4_bad.up.sql");
    assert_eq!(error["statement"], 2);
    assert_eq!(error["line"], 3);
    assert_eq!(error["sqlstate"], "42704");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("up 4 bad failed at statement 2 of 2"),
        "{error}"
    );
    p.remove("4_bad.up.sql");
    // 3: drift.
    p.write(
        "1_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    let drift = p.run(&["up"]);
    assert_eq!(drift.code, 3);
    assert!(
        drift.stderr.starts_with(
            "error: the database has drifted from the migrations; nothing was run\nedited:"
        ),
        "{}",
        drift.stderr
    );
    // repair --accept-checksum clears it, recorded in the audit.
    let repair = p.run(&["repair", "1", "--accept-checksum"]);
    assert_eq!(repair.code, 0, "{}", repair.stderr);
    assert!(
        repair.stdout.starts_with("1 users: accepted checksum"),
        "{}",
        repair.stdout
    );
    assert_eq!(p.run(&["up"]).code, 0);
    // 1: no database configured.
    let none = p.run_without_database(&["status"], &[]);
    assert_eq!(none.code, 1);
    assert!(none.stderr.starts_with("error: "), "{}", none.stderr);
    assert_eq!(
        none.stderr.lines().count(),
        1,
        "one clear line: {}",
        none.stderr
    );
}

#[test]
fn passwords_never_shown() {
    let db = test_db();
    let p = project(&db);
    let secret = "s3cr3t-Pa55";
    let unreachable = format!("postgres://app:{secret}@127.0.0.1:1/app");
    for args in [
        vec!["status", "--connect-timeout", "0"],
        vec!["-v", "up", "--connect-timeout", "0"],
        vec!["--format", "json", "current", "--connect-timeout", "0"],
    ] {
        let mut full = args.clone();
        full.extend(["--database-url", unreachable.as_str()]);
        let run = p.run_without_database(&full, &[]);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains(secret),
            "{args:?} stderr: {}",
            run.stderr
        );
        assert!(
            !run.stdout.contains(secret),
            "{args:?} stdout: {}",
            run.stdout
        );
    }
    // Through DATABASE_URL too, and for a wrong database name.
    let wrong_db = db.url_for_database("no_such_database_here");
    let with_password = wrong_db
        .replacen("://", &format!("://postgres:{secret}@"), 1)
        .replacen("@postgres@", "@", 1);
    let run = p.run_with(&["status"], &[("DATABASE_URL", &with_password)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stderr.contains(secret), "{}", run.stderr);
    assert!(
        run.stderr.contains("no_such_database_here"),
        "{}",
        run.stderr
    );
}

#[test]
fn init_new_sql_baseline_completions() {
    let db = test_db();
    let p = project(&db);
    p.write_file("Cargo.toml", "[package]\nname = \"x\"\n");
    let init = p.run(&["init"]);
    assert_eq!(init.code, 0);
    assert!(fs::read_to_string(p.path().join("build.rs"))
        .unwrap()
        .contains("cargo:rerun-if-changed=migrations"));

    let new = p.run(&["new", "add_email", "--no-down"]);
    assert_eq!(new.code, 0, "{}", new.stderr);
    assert_eq!(new.stdout, "migrations/4_add_email.up.sql\n");
    let text = fs::read_to_string(p.path().join("migrations/4_add_email.up.sql")).unwrap();
    p.write(
        "4_add_email.up.sql",
        &format!("{text}ALTER TABLE users ADD COLUMN email text;\n"),
    );

    // A no-transaction migration's down runs outside a transaction too (its
    // `DROP INDEX CONCURRENTLY` could not run in one).
    let new = p.run(&["new", "index_email", "--no-transaction"]);
    assert_eq!(new.code, 0, "{}", new.stderr);
    assert_eq!(
        new.stdout,
        "migrations/5_index_email.up.sql\nmigrations/5_index_email.down.sql\n"
    );
    for file in ["up", "down"] {
        let text = fs::read_to_string(
            p.path()
                .join(format!("migrations/5_index_email.{file}.sql")),
        )
        .unwrap();
        assert!(
            text.starts_with("-- migrations:no-transaction\n"),
            "{file}: {text}"
        );
    }
    fs::remove_file(p.path().join("migrations/5_index_email.up.sql")).unwrap();
    fs::remove_file(p.path().join("migrations/5_index_email.down.sql")).unwrap();

    let sql = p.run(&["sql", "--to", "1"]);
    assert_eq!(sql.code, 0, "{}", sql.stderr);
    assert!(sql.stdout.contains("CREATE TABLE users"), "{}", sql.stdout);
    assert!(!sql.stdout.contains("CREATE TABLE posts"));
    assert!(sql.stdout.contains("pg_try_advisory_lock"));

    let baseline = p.run(&["baseline", "2"]);
    assert_eq!(baseline.code, 0, "{}", baseline.stderr);
    assert_eq!(
        baseline.stdout,
        "1 users: recorded as applied\n2 posts: recorded as applied\n"
    );

    for shell in ["bash", "zsh", "fish"] {
        let c = p.run(&["completions", shell]);
        assert_eq!(c.code, 0);
        assert!(c.stdout.contains("migrations"), "{shell}");
    }
}

#[test]
fn lock_and_verify() {
    let db = test_db();
    let p = project(&db);
    // No lock file: exit 2 with what to do.
    let none = p.run(&["verify"]);
    assert_eq!(none.code, 2);
    assert!(
        none.stderr
            .contains("migrations.lock does not exist: run `migrations lock` and commit it"),
        "{}",
        none.stderr
    );

    let lock = p.run(&["lock"]);
    assert_eq!(lock.code, 0, "{}", lock.stderr);
    assert_eq!(
        lock.stdout,
        "locked 1 users\nlocked 2 posts\nlocked 3 index\n"
    );
    let ok = p.run(&["verify"]);
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    assert_eq!(ok.stdout, "ok: 3 locked migrations verified\n");

    // A new migration is fine, and listed.
    p.write("4_more.up.sql", "CREATE TABLE more ();\n");
    let unlocked = p.run(&["verify"]);
    assert_eq!(unlocked.code, 0);
    assert!(unlocked.stdout.contains("unlocked"), "{}", unlocked.stdout);

    // An edited released migration: exit 3, named, and a GitHub annotation in Actions.
    p.write("2_posts.up.sql", "CREATE TABLE posts (id bigint);\n");
    let edited = p.run_without_database(&["verify"], &[("GITHUB_ACTIONS", "true")]);
    assert_eq!(edited.code, 3, "{}", edited.stdout);
    assert!(
        edited
            .stdout
            .contains("migrations/2_posts.up.sql: edited-up:"),
        "{}",
        edited.stdout
    );
    assert!(
        edited
            .stdout
            .contains("::error file=migrations/2_posts.up.sql"),
        "{}",
        edited.stdout
    );
    let json = p.run(&["verify", "--format", "json"]);
    assert_eq!(json.code, 3);
    let doc = json.json();
    assert_eq!(doc["ok"], false);
    let kinds: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"edited-up"), "{kinds:?}");
    // `lock` refuses to paper over it; --rewrite accepts it, recorded in the audit.
    let refused = p.run(&["lock"]);
    assert_eq!(refused.code, 2);
    p.run(&["up", "--to", "1"]);
    let rewrite = p.run(&["lock", "--rewrite", "2"]);
    assert_eq!(rewrite.code, 0, "{}", rewrite.stderr);
    assert_eq!(p.run(&["verify"]).code, 0);
    let history = p.run(&["history", "--verbose", "--format", "json"]).json();
    let events: Vec<&str> = history["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"lock-rewrite"), "{events:?}");

    // --online: the database against the directory.
    let online = p.run(&["verify", "--online"]);
    assert_eq!(online.code, 0, "{}", online.stdout);
    p.write(
        "1_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    // The lock file accepts the edit (offline verify is clean again), the database does not.
    let rewrite = p.run(&["lock", "--rewrite", "1"]);
    assert_eq!(rewrite.code, 0, "{}", rewrite.stderr);
    assert!(rewrite.stdout.contains("rewrote 1"), "{}", rewrite.stdout);
    assert_eq!(p.run(&["verify"]).code, 0);
    let online = p.run(&["verify", "--online"]);
    assert_eq!(online.code, 3, "{}", online.stdout);
    assert!(
        online.stdout.contains("database: 1 users: edited"),
        "{}",
        online.stdout
    );
}

#[test]
fn run_settings_from_migrations_toml() {
    let db = test_db();
    let p = project(&db);
    db.connect().batch_execute("CREATE SCHEMA ops").unwrap();
    p.write(
        "migrations.toml",
        "[run]\nschema = \"ops\"\ntable = \"applied\"\nlock_timeout = \"2s\"\n",
    );
    assert_eq!(p.run(&["up"]).code, 0);
    let mut c = db.connect();
    let n: i64 = c
        .query_one("SELECT count(*) FROM ops.applied", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    // A flag wins over the file.
    let other = p.run(&["--schema", "public", "status"]);
    assert!(other.stdout.starts_with("pending"), "{}", other.stdout);
    // A bad value is an error naming the key.
    p.write("migrations.toml", "[run]\nlock_timeout = \"5\"\n");
    let bad = p.run(&["status"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("[run] lock_timeout"), "{}", bad.stderr);
}

#[test]
fn schema_drift_after_manual_changes() {
    let db = test_db();
    let p = project(&db);
    p.run(&["lock"]);
    // Nothing recorded yet: exit 2 with what to do.
    let none = p.run(&["verify", "--schema-drift"]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(
        none.stderr.contains("no schema snapshot is recorded"),
        "{}",
        none.stderr
    );

    p.write("migrations.toml", "record_schema = true\n");
    assert_eq!(p.run(&["up"]).code, 0);
    let clean = p.run(&["verify", "--schema-drift"]);
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
    assert!(
        clean
            .stdout
            .contains("schema: unchanged since the snapshot recorded after version 3"),
        "{}",
        clean.stdout
    );

    // Changes made outside migrations are listed object by object.
    db.connect()
        .batch_execute("ALTER TABLE users ADD COLUMN nickname text; DROP INDEX posts_user;")
        .unwrap();
    let drift = p.run(&["verify", "--schema-drift"]);
    assert_eq!(drift.code, 3, "{}", drift.stdout);
    assert!(
        drift
            .stdout
            .contains("schema drift: column public.users.nickname: unexpected"),
        "{}",
        drift.stdout
    );
    assert!(
        drift
            .stdout
            .contains("schema drift: index public.posts_user: missing"),
        "{}",
        drift.stdout
    );
    let doc = p
        .run(&["verify", "--schema-drift", "--format", "json"])
        .json();
    assert_eq!(
        doc["schema_drift"].as_array().unwrap().len(),
        drift.stdout.matches("schema drift:").count()
    );
}

/// A refused connection is retried up to --connect-timeout; after a second the user is told,
/// once, what is being waited for and until when, so the wait does not look like a hang.
#[test]
fn waiting_for_the_server_is_said_once() {
    let p = Project::new(&[("1_a.up.sql", "SELECT 1;\n")]);
    // Port 1: nothing listens there, so every attempt is refused at once.
    let url = "postgres://app:s3cret@127.0.0.1:1/app";
    let started = std::time::Instant::now();
    let run = p.with_url(url, &["status", "--connect-timeout", "2s"]);
    let waited = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(waited >= std::time::Duration::from_secs(2), "{waited:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    let (prefix, suffix) = (
        "[info] waiting for 127.0.0.1:1 (connection refused) until ",
        " UTC (connect timeout 2s)",
    );
    assert!(
        lines[0].starts_with(prefix) && lines[0].ends_with(suffix),
        "{}",
        run.stderr
    );
    // The time of day the wait ends: HH:MM:SS.
    let clock = &lines[0][prefix.len()..lines[0].len() - suffix.len()];
    assert_eq!(clock.len(), 8, "{clock}");
    assert!(clock.bytes().enumerate().all(|(i, b)| if i % 3 == 2 {
        b == b':'
    } else {
        b.is_ascii_digit()
    }));
    assert_eq!(
        lines[1],
        "error: could not connect to 127.0.0.1:1 (connection refused) after 2s: is the server \
         running?"
    );
    assert!(!run.stderr.contains("s3cret"));

    // -q: only the error.
    let quiet = p.with_url(url, &["-q", "status", "--connect-timeout", "2s"]);
    assert_eq!(quiet.code, 1);
    assert_eq!(quiet.stderr.lines().count(), 1, "{}", quiet.stderr);
    // No wait: no notice.
    let at_once = p.with_url(url, &["status", "--connect-timeout", "0"]);
    assert_eq!(at_once.code, 1);
    assert!(!at_once.stderr.contains("waiting"), "{}", at_once.stderr);
}

/// `migrations ... | head`: a reader that closes the pipe early is not an error. The pipe is
/// closed before the binary writes, so every write fails with EPIPE: it must neither panic
/// (exit 101 and a Rust backtrace on stderr) nor complain.
#[test]
fn closed_stdout_pipe_is_not_a_panic() {
    let p = Project::new(&[("1_a.up.sql", "SELECT 1;\n")]);
    let unreachable = "postgres://app@127.0.0.1:1/app";
    for (args, code) in [
        (vec!["completions", "bash"], 0),
        (vec!["--help"], 0),
        (vec!["lint", "--list-rules"], 0),
        (
            vec![
                "--format",
                "json",
                "status",
                "--connect-timeout",
                "0",
                "--database-url",
                unreachable,
            ],
            1,
        ),
    ] {
        let mut command = p.command(&args);
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        if code == 0 {
            assert_eq!(stderr, "", "{args:?}");
        }
    }
}

/// A `down` that finds nothing to revert says so, not that the database is "up to date".
#[test]
fn down_with_nothing_applied_says_so() {
    let db = test_db();
    let p = project(&db);
    let down = p.run(&["down"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(down.stdout, "nothing to revert: no migration is applied\n");
    let all = p.run(&["down", "--all"]);
    assert_eq!(all.stdout, "nothing to revert: no migration is applied\n");
    assert_eq!(p.run(&["up", "--to", "1"]).code, 0);
    let to = p.run(&["down", "--to", "1"]);
    assert_eq!(to.code, 0, "{}", to.stderr);
    assert_eq!(
        to.stdout,
        "nothing to revert: no migration above 1 is applied\n"
    );
    let up = p.run(&["up"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert_eq!(
        p.run(&["up"]).stdout,
        "nothing to do: the database is up to date\n"
    );
}

/// Durations take decimals (`0.5s`), to whole milliseconds: PostgreSQL counts timeouts in
/// milliseconds, and a value rounded down to 0 would turn the timeout off.
#[test]
fn durations_accept_decimals() {
    let p = Project::new(&[("1_a.up.sql", "SELECT 1;\n")]);
    let unreachable = "postgres://app@127.0.0.1:1/app";
    let run = p.with_url(unreachable, &["status", "--connect-timeout", "1.5s"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .ends_with("error: could not connect to 127.0.0.1:1 (connection refused) after 1.5s: is the server running?\n"),
        "{}",
        run.stderr
    );
    let fine = p.with_url(unreachable, &["status", "--lock-timeout", "0.5ms"]);
    assert_eq!(fine.code, 2, "{}", fine.stderr);
    assert!(
        fine.stderr.starts_with(
            "error: invalid value '0.5ms' for '--lock-timeout <DURATION>': `0.5ms` is finer than a \
             millisecond; PostgreSQL counts timeouts in whole milliseconds\n"
        ),
        "{}",
        fine.stderr
    );
}

/// Other tools' words for `up` and `down` point at ours (clap's spelling suggestion alone
/// finds nothing: `migrate` is too far from `up`).
#[test]
fn other_tools_commands_suggest_up_and_down() {
    let p = Project::new(&[("1_a.up.sql", "SELECT 1;\n")]);
    for (typed, meant) in [
        ("migrate", "up"),
        ("upgrade", "up"),
        ("rollback", "down"),
        ("revert", "down"),
    ] {
        let run = p.run(&[typed]);
        assert_eq!(run.code, 2, "{typed}");
        assert_eq!(run.stdout, "");
        assert_eq!(
            run.stderr,
            format!(
                "error: unrecognized subcommand '{typed}'\n\n  tip: a similar subcommand exists: \
                 '{meant}'\n\nUsage: migrations [OPTIONS] <COMMAND>\n\nFor more information, try \
                 '--help'.\n"
            ),
            "{typed}"
        );
    }
}

/// Every positional argument says what it is in `--help`.
#[test]
fn positional_arguments_have_help() {
    let p = Project::new(&[("1_a.up.sql", "SELECT 1;\n")]);
    for (command, help) in [
        (
            "redo",
            "[COUNT] How many of the newest applied migrations to revert and apply again \
             (default 1)",
        ),
        (
            "baseline",
            "[VERSION] The newest version the database already has: it and every migration \
             before it are recorded as applied. With --from-diesel or --from-sqlx it is \
             optional: without it that tool's whole history is imported; with it, only its rows \
             up to VERSION",
        ),
        (
            "repair",
            "[VERSION] Repair only this migration (default: all of them)",
        ),
    ] {
        let run = p.run(&[command, "--help"]);
        assert_eq!(run.code, 0, "{command}: {}", run.stderr);
        // Compared with the line breaks and padding of the terminal width taken out.
        let flat = run.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(help), "{command}: {}", run.stdout);
    }
}
