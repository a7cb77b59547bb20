//! Runs that stop part-way never hide work done: `up`, `down` and `redo` that fail after some
//! steps print the steps with the error (one JSON document on stdout, or text), and a `redo`
//! says what it left unapplied and the command that applies it again. Also `migrations sql`:
//! its script's lock guard under a real `psql`, and an inverted range refused. The real binary
//! against a real PostgreSQL.

use std::fs;
use std::process::Command;

use migrations_tests::{test_db, TestDb};
use serde_json::{json, Value};

use crate::common::{migrations, Project};

/// A project whose migrations live in `dir` (relative; given to `--dir` unless it is
/// `migrations`), run with `DATABASE_URL`.
fn project(db: &TestDb, dir: &str, files: &[(&str, &str)]) -> Project {
    Project::in_dir(dir, files).url_in_env(db.url())
}

/// Runs a command line the binary printed for the user (`migrations ... && migrations
/// ...`), word by word (the test's paths need no quoting), in the project with its database.
fn run_printed(p: &Project, db: &TestDb, line: &str) {
    for command in line.split(" && ") {
        let words: Vec<&str> = command.split(' ').collect();
        assert_eq!(words[0], "migrations", "{line}");
        let out = migrations(p.path())
            .args(&words[1..])
            .env("DATABASE_URL", db.url())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `version state` of each history row, in version order.
fn history(db: &TestDb) -> Vec<String> {
    db.connect()
        .query(
            "SELECT version || ' ' || state FROM public.migrations_history ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn tables(db: &TestDb) -> Vec<String> {
    db.connect()
        .query(
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace \
             AND relkind IN ('r', 'i') AND relname NOT LIKE 'migrations_history%' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The steps of a document's `ran`, each checked to have exactly the success document's
/// fields, as `direction version name`.
fn steps(doc: &Value) -> Vec<String> {
    doc["ran"]
        .as_array()
        .unwrap_or_else(|| panic!("no `ran` in {doc}"))
        .iter()
        .map(|step| {
            let keys: Vec<&str> = step
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .collect();
            assert_eq!(
                keys,
                ["direction", "duration_ms", "name", "transaction", "version"],
                "{step}"
            );
            assert!(step["duration_ms"].is_u64(), "{step}");
            assert_eq!(step["transaction"], true, "{step}");
            format!(
                "{} {} {}",
                step["direction"].as_str().unwrap(),
                step["version"],
                step["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// Text lines of the finished steps (`up 1 a (3 ms)`) without their durations.
fn text_steps(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            let (step, duration) = l.rsplit_once(" (").unwrap_or_else(|| panic!("{l}"));
            assert!(duration.ends_with(" ms)"), "{l}");
            step.to_owned()
        })
        .collect()
}

/// `a`, `b`, `c`, `d`: one table each; `c`'s up fails at run time (division by zero).
fn failing_third_up() -> Vec<(&'static str, &'static str)> {
    vec![
        ("1_a.up.sql", "CREATE TABLE a (id int);\n"),
        ("1_a.down.sql", "DROP TABLE a;\n"),
        ("2_b.up.sql", "CREATE TABLE b (id int);\n"),
        ("2_b.down.sql", "DROP TABLE b;\n"),
        ("3_c.up.sql", "CREATE TABLE c (id int);\nSELECT 1 / 0;\n"),
        ("3_c.down.sql", "DROP TABLE c;\n"),
    ]
}

#[test]
fn up_that_fails_on_the_third_lists_the_two_applied() {
    let db = test_db();
    let p = project(&db, "migrations", &failing_third_up());
    let run = p.run(&["--format", "json", "up"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(steps(&doc), ["up 1 a", "up 2 b"]);
    assert_eq!(doc["command"], "up");
    assert_eq!(doc["dry_run"], false);
    assert_eq!(doc["warnings"], json!([]));
    assert_eq!(doc["error"]["kind"], "migration");
    assert_eq!(doc["error"]["exit_code"], 1);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("up 3 c failed"),
        "{doc}"
    );
    // Only `redo` leaves migrations to restore.
    assert!(doc.get("unapplied").is_none() && doc.get("restore").is_none());
    // The database really has the first two, and not the third.
    assert_eq!(history(&db), ["1 applied", "2 applied"]);
    assert_eq!(tables(&db), ["a", "b"]);
    // stderr: the error line, then what was done.
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines[0].starts_with("error: up 3 c failed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        lines.last(),
        Some(&"done before the error: up 1 a, up 2 b"),
        "{}",
        run.stderr
    );

    // Text: a line per applied migration on stdout, the same account on stderr.
    let db = test_db();
    let p = project(&db, "migrations", &failing_third_up());
    let run = p.run(&["up"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(text_steps(&run.stdout), ["up 1 a", "up 2 b"]);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines[0].starts_with("error: up 3 c failed"),
        "{}",
        run.stderr
    );
    assert_eq!(lines.last(), Some(&"done before the error: up 1 a, up 2 b"));
    // -q drops the step lines, not the account of what was done.
    let db = test_db();
    let p = project(&db, "migrations", &failing_third_up());
    let run = p.run(&["-q", "up"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .ends_with("\ndone before the error: up 1 a, up 2 b\n"),
        "{}",
        run.stderr
    );
    assert_eq!(history(&db), ["1 applied", "2 applied"]);
}

#[test]
fn up_that_fails_on_the_first_still_has_the_run_fields() {
    let db = test_db();
    let mut files = failing_third_up();
    files[0].1 = "SELECT 1 / 0;\n";
    let p = project(&db, "migrations", &files);
    let run = p.run(&["--format", "json", "up"]);
    assert_eq!(run.code, 1);
    let doc = run.json();
    assert_eq!(steps(&doc), Vec::<String>::new());
    assert_eq!(doc["command"], "up");
    assert_eq!(doc["error"]["kind"], "migration");
    // Nothing was done: the error line alone.
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn down_three_that_fails_on_the_second_lists_the_one_reverted() {
    let db = test_db();
    let mut files = failing_third_up();
    files[4].1 = "CREATE TABLE c (id int);\n";
    files[3].1 = "DROP TABLE no_such_table;\n";
    let p = project(&db, "migrations", &files);
    assert_eq!(p.run(&["up"]).code, 0);
    let run = p.run(&["--format", "json", "down", "3"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(steps(&doc), ["down 3 c"]);
    assert_eq!(doc["command"], "down");
    assert_eq!(doc["error"]["kind"], "migration");
    assert_eq!(doc["error"]["exit_code"], 1);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("down 2 b failed"),
        "{doc}"
    );
    assert!(doc.get("unapplied").is_none());
    assert_eq!(history(&db), ["1 applied", "2 applied"]);
    assert_eq!(tables(&db), ["a", "b"]);
    assert_eq!(
        run.stderr.lines().last(),
        Some("done before the error: down 3 c")
    );

    let run = p.run(&["down"]);
    assert_eq!(run.code, 1);
    assert_eq!(text_steps(&run.stdout), Vec::<String>::new());
    // Nothing was reverted this time (2 fails first): no account line.
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

/// `redo 2` whose second down fails: the first is reverted and stays so; the document says
/// which and how to apply it again, and that command works.
#[test]
fn redo_whose_second_down_fails_says_what_to_restore() {
    let db = test_db();
    let files = vec![
        ("1_a.up.sql", "CREATE TABLE a (id int);\n"),
        ("1_a.down.sql", "DROP TABLE a;\n"),
        ("2_b.up.sql", "CREATE TABLE b (id int);\n"),
        ("2_b.down.sql", "DROP TABLE no_such_table;\n"),
        ("3_c.up.sql", "CREATE TABLE c (id int);\n"),
        ("3_c.down.sql", "DROP TABLE c;\n"),
        ("4_d.up.sql", "CREATE TABLE d (id int);\n"),
        ("4_d.down.sql", "DROP TABLE d;\n"),
    ];
    let p = project(&db, "migrations", &files);
    // 4 stays pending: `up` alone would apply it, so the restore command names 3.
    assert_eq!(p.run(&["up", "--to", "3"]).code, 0);
    let run = p.run(&["--format", "json", "redo", "2"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(steps(&doc), ["down 3 c"]);
    assert_eq!(doc["command"], "redo");
    assert_eq!(doc["unapplied"], json!([3]));
    assert_eq!(doc["restore"], "migrations up --to 3");
    assert_eq!(doc["error"]["kind"], "migration");
    assert_eq!(doc["error"]["exit_code"], 1);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("down 2 b failed"),
        "{doc}"
    );
    assert_eq!(history(&db), ["1 applied", "2 applied"]);
    assert_eq!(tables(&db), ["a", "b"]);
    let notes: Vec<&str> = run.stderr.lines().skip(1).collect();
    assert_eq!(
        notes,
        [
            "done before the error: down 3 c",
            "now unapplied: 3 c; to apply it again: migrations up --to 3"
        ],
        "{}",
        run.stderr
    );
    run_printed(&p, &db, doc["restore"].as_str().unwrap());
    assert_eq!(history(&db), ["1 applied", "2 applied", "3 applied"]);
    assert_eq!(tables(&db), ["a", "b", "c"]);

    // Text, the same account.
    let run = p.run(&["redo", "2"]);
    assert_eq!(run.code, 1);
    assert_eq!(text_steps(&run.stdout), ["down 3 c"]);
    let notes: Vec<&str> = run.stderr.lines().skip(1).collect();
    assert_eq!(
        notes,
        [
            "done before the error: down 3 c",
            "now unapplied: 3 c; to apply it again: migrations up --to 3"
        ]
    );
}

/// `redo 2` whose up phase fails after both downs (the down of `b` does not drop its table, so
/// its up fails): both are unapplied; with the newest in the directory among them, `up` alone
/// restores them; `--dir` is carried into the command.
#[test]
fn redo_whose_up_fails_after_the_downs_says_what_to_restore() {
    let db = test_db();
    let files = vec![
        ("1_a.up.sql", "CREATE TABLE a (id int);\n"),
        ("1_a.down.sql", "DROP TABLE a;\n"),
        ("2_b.up.sql", "CREATE TABLE b (id int);\n"),
        ("2_b.down.sql", "SELECT 1;\n"),
        ("3_c.up.sql", "CREATE TABLE c (id int);\n"),
        ("3_c.down.sql", "DROP TABLE c;\n"),
    ];
    let p = project(&db, "db/m", &files);
    assert_eq!(p.run(&["up"]).code, 0);
    let run = p.run(&["--format", "json", "redo", "2"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(steps(&doc), ["down 3 c", "down 2 b"]);
    assert_eq!(doc["unapplied"], json!([2, 3]));
    assert_eq!(doc["restore"], "migrations --dir db/m up");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("up 2 b failed"),
        "{doc}"
    );
    assert_eq!(history(&db), ["1 applied"]);
    assert_eq!(
        run.stderr.lines().skip(1).collect::<Vec<_>>(),
        [
            "done before the error: down 3 c, down 2 b",
            "now unapplied: 2 b, 3 c; to apply them again: migrations --dir db/m up"
        ],
        "{}",
        run.stderr
    );
    // b's table is still there (its down never dropped it): the user drops it by hand, then
    // the printed command restores both.
    db.connect().batch_execute("DROP TABLE b").unwrap();
    run_printed(&p, &db, doc["restore"].as_str().unwrap());
    assert_eq!(history(&db), ["1 applied", "2 applied", "3 applied"]);
}

/// A no-transaction down that fails part-way leaves its row `failed`: the restore command
/// clears it with `repair` before `up`, and works.
#[test]
fn redo_whose_no_transaction_down_fails_part_way_repairs_first() {
    let db = test_db();
    let files = vec![
        ("1_a.up.sql", "CREATE TABLE a (id int);\n"),
        ("1_a.down.sql", "DROP TABLE a;\n"),
        (
            "2_i.up.sql",
            "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_id ON a (id);\n",
        ),
        (
            "2_i.down.sql",
            "-- migrations:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS a_id;\nDROP TABLE no_such_table;\n",
        ),
    ];
    let p = project(&db, "migrations", &files);
    assert_eq!(p.run(&["up"]).code, 0);
    let run = p.run(&["--format", "json", "redo"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(steps(&doc), Vec::<String>::new());
    assert_eq!(doc["unapplied"], json!([2]));
    assert_eq!(doc["restore"], "migrations repair && migrations up");
    assert_eq!(history(&db), ["1 applied", "2 failed"]);
    assert_eq!(
        run.stderr.lines().skip(1).collect::<Vec<_>>(),
        ["now unapplied: 2 i; to apply it again: migrations repair && migrations up"],
        "{}",
        run.stderr
    );
    run_printed(&p, &db, doc["restore"].as_str().unwrap());
    assert_eq!(history(&db), ["1 applied", "2 applied"]);
    assert_eq!(tables(&db), ["a", "a_id"]);
}

/// A redo that fails before reverting anything says there is nothing to restore.
#[test]
fn redo_that_changed_nothing_has_nothing_to_restore() {
    let db = test_db();
    let mut files = failing_third_up();
    files[5].1 = "DROP TABLE no_such_table;\n";
    files[4].1 = "CREATE TABLE c (id int);\n";
    let p = project(&db, "migrations", &files);
    assert_eq!(p.run(&["up"]).code, 0);
    let run = p.run(&["--format", "json", "redo"]);
    assert_eq!(run.code, 1);
    let doc = run.json();
    assert_eq!(doc["unapplied"], json!([]));
    assert_eq!(doc["restore"], Value::Null);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

// ---- migrations sql ----------------------------------------------------------------------

fn two() -> Vec<(&'static str, &'static str)> {
    vec![
        ("1_a.up.sql", "CREATE TABLE a (id int);\n"),
        ("1_a.down.sql", "DROP TABLE a;\n"),
        ("2_b.up.sql", "CREATE TABLE b (id int);\n"),
        ("2_b.down.sql", "DROP TABLE b;\n"),
    ]
}

#[test]
fn sql_refuses_an_inverted_range() {
    let db = test_db();
    let p = project(&db, "migrations", &two());
    let up = p.run(&["sql", "--from", "2", "--to", "1"]);
    assert_eq!(up.code, 2);
    assert_eq!(up.stdout, "");
    assert_eq!(
        up.stderr,
        "error: --from 2 --to 1 selects no migration: an up script applies the migrations after \
         --from up to and including --to, so --from must be below --to; for a script that \
         reverts them, add --down\n"
    );
    let down = p.run(&["sql", "--down", "--from", "1", "--to", "2"]);
    assert_eq!(down.code, 2);
    assert_eq!(
        down.stderr,
        "error: --from 1 --to 2 selects no migration: a down script reverts the migrations from \
         --from down to (not including) --to, so --from must be above --to; for a script that \
         applies them, leave out --down\n"
    );
    let json = p.run(&["--format", "json", "sql", "--from", "2", "--to", "2"]);
    assert_eq!(json.code, 2);
    assert_eq!(json.json()["error"]["kind"], "usage");
    // The ranges meant work.
    let ok = p.run(&["sql", "--from", "1", "--to", "2"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("CREATE TABLE b") && !ok.stdout.contains("CREATE TABLE a"));
    let ok = p.run(&["sql", "--down", "--from", "2", "--to", "1"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("DROP TABLE b") && !ok.stdout.contains("DROP TABLE a"));
}

/// The script `migrations sql` prints, run as `psql -X -f` with no `-v ON_ERROR_STOP`: another
/// runner's lock stops it (exit 3) with nothing created; once free, it applies.
#[test]
fn sql_script_stops_in_psql_when_another_runner_holds_the_lock() {
    let db = test_db();
    let p = project(&db, "migrations", &two());
    let script = p.run(&["sql"]);
    assert_eq!(script.code, 0, "{}", script.stderr);
    let file = p.path().join("up.sql");
    fs::write(&file, &script.stdout).unwrap();
    let psql = || {
        Command::new("psql")
            .args(["-X", "-q", "-f"])
            .arg(&file)
            .arg(db.url())
            .output()
            .expect("psql runs")
    };
    // The key, as the binary's JSON for a waiting runner would name it: from the script.
    let key: i64 = script
        .stdout
        .split("pg_try_advisory_lock(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|k| k.parse().ok())
        .expect("the script takes the advisory lock");
    let mut holder = db.connect();
    let got: bool = holder
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .unwrap()
        .get(0);
    assert!(got);
    assert_eq!(db.advisory_lock_holders(key), 1);
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let out = psql();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    // The holder named as the runner names it (the harness's session sets no
    // application_name).
    assert!(
        stderr.contains(&format!(
            "ERROR:  another migration runner (pid {pid}, application_name \"\", session started \
             20"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "Z) holds the migrations lock (advisory lock {key}, for \
             \"public\".\"migrations_history\"); this script changed nothing\nHINT:  rerun \
             the script when the other runner is done"
        )),
        "{stderr}"
    );
    assert_eq!(tables(&db), Vec::<String>::new());
    let history_exists: bool = db
        .connect()
        .query_one(
            "SELECT to_regclass('public.migrations_history') IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!history_exists);

    drop(holder);
    let out = psql();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(history(&db), ["1 applied", "2 applied"]);
    assert_eq!(db.advisory_lock_holders(key), 0);
    // The runner agrees: nothing left to do.
    let status = p.run(&["status"]);
    assert_eq!(status.stdout, "applied      1 a\napplied      2 b\n");
}
