//! `migrations lint` as a user runs it: exit codes, the text, JSON and GitHub Actions outputs,
//! `lint-ignore`, `--since`, `--select`/`--exclude`, `migrations.toml`, and PATH arguments. No
//! database is needed.

use serde_json::Value;

use crate::common::{migrations, Project, Run};

/// A clean directory: every migration safe, every down present. No database.
fn clean_project() -> Project {
    Project::new(&[
        (
            "1_users.up.sql",
            "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
        ),
        ("1_users.down.sql", "DROP TABLE users;\n"),
        (
            "2_email_index.up.sql",
            "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email);\n",
        ),
        (
            "2_email_index.down.sql",
            "-- migrations:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS users_email;\n",
        ),
    ])
}

/// The clean directory plus a migration with two findings.
fn project_with_findings() -> Project {
    let p = clean_project();
    p.write(
        "3_name.up.sql",
        "ALTER TABLE users ADD COLUMN name text;\n\nCREATE INDEX users_name ON users (name);\n",
    );
    p
}

const FIRST_LINE: &str = "migrations/3_name.up.sql:1:1: missing-down: this migration has no down \
                          file: `migrations down`, `redo` and `test` cannot revert it";

#[test]
fn findings_exit_3_with_file_line_col_rule_and_fix() {
    let p = project_with_findings();
    let run = p.run(&["lint"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], FIRST_LINE);
    assert!(
        lines[1].starts_with("  fix: add a down file"),
        "{}",
        run.stdout
    );
    assert!(
        lines[2].starts_with("migrations/3_name.up.sql:3:1: require-concurrent-index-creation: "),
        "{}",
        run.stdout
    );
    assert!(
        lines[3].contains("CREATE INDEX CONCURRENTLY")
            && lines[3].contains("(lock: SHARE on the table"),
        "{}",
        run.stdout
    );
    assert_eq!(
        lines.last().copied(),
        Some("2 findings in 5 files (3 migrations linted)")
    );
    assert!(!run.stdout.contains("::error"));
}

#[test]
fn a_clean_directory_exits_0() {
    let p = clean_project();
    let run = p.run(&["lint"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "no findings in 4 files (2 migrations linted)\n");
    assert_eq!(run.stderr, "");
}

#[test]
fn json_is_one_document() {
    let p = project_with_findings();
    let run = p.run(&["lint", "--format", "json"]);
    assert_eq!(run.code, 3);
    let doc: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(doc["command"], "lint");
    assert_eq!(doc["migrations"], 3);
    assert_eq!(doc["files"], 5);
    assert_eq!(doc["counts"]["missing-down"], 1);
    assert_eq!(doc["counts"]["require-concurrent-index-creation"], 1);
    let f = &doc["findings"][1];
    assert_eq!(f["path"], "migrations/3_name.up.sql");
    assert_eq!(f["line"], 3);
    assert_eq!(f["column"], 1);
    assert_eq!(f["rule"], "require-concurrent-index-creation");
    assert_eq!(f["origin"], "squawk");
    assert!(f["fix"].as_str().unwrap().contains("CONCURRENTLY"));
    assert!(f["lock"].as_str().unwrap().starts_with("SHARE"));

    // GitHub annotations keep stdout one document: they go to stderr in JSON mode.
    let run = p.run_with(&["lint", "--format", "json"], &[("GITHUB_ACTIONS", "true")]);
    serde_json::from_str::<Value>(&run.stdout).expect("still one JSON document");
    assert!(run
        .stderr
        .contains("::error file=migrations/3_name.up.sql,line=3,col=1,"));

    let clean = clean_project().run(&["lint", "--format", "json"]);
    assert_eq!(clean.code, 0);
    let doc: Value = serde_json::from_str(&clean.stdout).unwrap();
    assert_eq!(doc["findings"], Value::Array(Vec::new()));
}

#[test]
fn github_actions_annotations() {
    let p = project_with_findings();
    let run = p.run_with(&["lint"], &[("GITHUB_ACTIONS", "true")]);
    assert_eq!(run.code, 3);
    let annotations: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error "))
        .collect();
    assert_eq!(annotations.len(), 2, "{}", run.stdout);
    assert!(
        annotations[0].starts_with(
            "::error file=migrations/3_name.up.sql,line=1,col=1,title=missing-down::this \
             migration has no down file"
        ),
        "{}",
        annotations[0]
    );
    assert!(annotations[0].contains("%0Afix: add a down file"));
    assert!(annotations[1].starts_with(
        "::error file=migrations/3_name.up.sql,line=3,col=1,title=require-concurrent-index-creation::"
    ));
    // The text output is still there.
    assert_eq!(run.stdout.lines().next(), Some(FIRST_LINE));
}

#[test]
fn lint_ignore_silences_a_statement_or_a_file() {
    let p = clean_project();
    p.write(
        "3_name.up.sql",
        "-- migrations:lint-ignore missing-down\n\
         ALTER TABLE users ADD COLUMN name text;\n\
         -- users is small: a plain build is faster.\n\
         -- migrations:lint-ignore require-concurrent-index-creation\n\
         CREATE INDEX users_name ON users (name);\n\
         CREATE INDEX users_name_email ON users (name, email);\n",
    );
    let run = p.run(&["lint"]);
    assert_eq!(run.code, 3);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("migrations/"))
            .count(),
        1
    );
    assert!(run
        .stdout
        .starts_with("migrations/3_name.up.sql:6:1: require-concurrent-index-creation: "));

    p.write(
        "3_name.up.sql",
        "-- migrations:lint-ignore missing-down, require-concurrent-index-creation\n\
         CREATE INDEX users_name ON users (name);\n",
    );
    let run = p.run(&["lint"]);
    assert_eq!(run.code, 0, "{}", run.stdout);

    // A misspelt rule silences nothing, and says so.
    p.write(
        "3_name.up.sql",
        "-- migrations:lint-ignore missing-down, require-concurent-index-creation\n\
         CREATE INDEX users_name ON users (name);\n",
    );
    let run = p.run(&["lint"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains(
            "warning: migrations/3_name.up.sql:1: `lint-ignore require-concurent-index-creation` \
             names no rule"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn since_lints_only_newer_migrations() {
    let p = project_with_findings();
    p.write("4_bio.up.sql", "ALTER TABLE users ADD COLUMN bio text;\n");
    p.write("4_bio.down.sql", "ALTER TABLE users DROP COLUMN bio;\n");
    let run = p.run(&["lint", "--since", "3"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.stdout, "no findings in 2 files (1 migration linted)\n");
    let run = p.run(&["lint", "--since", "2"]);
    assert_eq!(run.code, 3);

    // The same from migrations.toml; the flag wins.
    p.write("migrations.toml", "[lint]\nsince = \"3\"\n");
    assert_eq!(p.run(&["lint"]).code, 0);
    assert_eq!(p.run(&["lint", "--since", "0"]).code, 3);

    let bad = p.run(&["lint", "--since", "three"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("--since: `three` is not a version"),
        "{}",
        bad.stderr
    );
}

#[test]
fn select_and_exclude() {
    let p = project_with_findings();
    let run = p.run(&["lint", "--select", "missing-down"]);
    assert_eq!(run.code, 3);
    assert_eq!(run.stdout.lines().next(), Some(FIRST_LINE));
    assert!(!run.stdout.contains("require-concurrent-index-creation"));

    let run = p.run(&[
        "lint",
        "--exclude",
        "missing-down,require-concurrent-index-creation",
    ]);
    assert_eq!(run.code, 0, "{}", run.stdout);

    p.write(
        "migrations.toml",
        "[lint]\nexclude = [\"require-concurrent-index-creation\"]\n",
    );
    let run = p.run(&["lint"]);
    assert_eq!(run.code, 3);
    assert!(!run.stdout.contains("require-concurrent-index-creation"));
    // --exclude replaces the file's list.
    let run = p.run(&["lint", "--exclude", "missing-down"]);
    assert!(run.stdout.contains("require-concurrent-index-creation"));

    let run = p.run(&["lint", "--select", "no-such-rule"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("--select: unknown lint rule `no-such-rule`"),
        "{}",
        run.stderr
    );
}

#[test]
fn paths_restrict_to_files_or_folders() {
    let p = project_with_findings();
    p.write(
        "2024-01-01-000000_posts/up.sql",
        "CREATE TABLE posts (id bigint PRIMARY KEY);\n",
    );
    let run = p.run(&["lint", "migrations/2_email_index.up.sql"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.stdout, "no findings in 1 file (1 migration linted)\n");

    let run = p.run(&["lint", "migrations/2024-01-01-000000_posts"]);
    assert_eq!(run.code, 3);
    assert!(run
        .stdout
        .starts_with("migrations/2024-01-01-000000_posts/up.sql:1:1: missing-down:"));

    let run = p.run(&["lint", "migrations/9_nothing.up.sql"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("migrations/9_nothing.up.sql: cannot be read"),
        "{}",
        run.stderr
    );

    p.write_file("notes.sql", "SELECT 1;\n");
    let run = p.run(&["lint", "notes.sql"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("is not a migration file or folder"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_files_exit_2() {
    let p = clean_project();
    p.write(
        "3_oops.up.sql",
        "CREATE INDEX CONCURRENTLY i ON users (email);\n",
    );
    let run = p.run(&["lint"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("CREATE INDEX CONCURRENTLY cannot run inside a transaction block"),
        "{}",
        run.stderr
    );
    let missing = tempfile::tempdir().unwrap();
    let mut command = migrations(missing.path());
    command.args(["lint", "--dir", "nowhere"]);
    assert_eq!(Run::of(command).code, 2);
}

#[test]
fn list_rules() {
    let run = clean_project().run(&["lint", "--list-rules"]);
    assert_eq!(run.code, 0);
    assert!(run
        .stdout
        .contains("missing-down (migrations, default)\n  lock: none\n  fix: "));
    assert!(run
        .stdout
        .contains("require-concurrent-index-creation (squawk, default)"));
    assert!(run.stdout.contains("require-lock-timeout (squawk, opt-in)"));
    let json = clean_project().run(&["lint", "--list-rules", "--format", "json"]);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(doc["rules"].as_array().unwrap().len() > 50);
}
