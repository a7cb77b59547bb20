//! Two migration sets in one database through the CLI: the service's own directory and a
//! library's, each with its own history table, addressed by `--set NAME` (`[sets.NAME]` in
//! `migrations.toml`) or by `--dir` and `--table`.

use migrations_tests::{test_db, TestDb};
use serde_json::Value;

use crate::common::{column, Project};

/// `migrations/` (the service's, naming the library's set) and `auth/migrations/` (the
/// library's), with overlapping versions.
fn project(db: &TestDb, sets: &str) -> Project {
    let p = Project::new(&[
        ("1_users.up.sql", "CREATE TABLE users (id bigint);"),
        ("3_posts.up.sql", "CREATE TABLE posts (id bigint);"),
        ("migrations.toml", sets),
    ])
    .url_in_env(db.url());
    p.write_file(
        "auth/migrations/1_sessions.up.sql",
        "CREATE TABLE auth_sessions (id bigint);",
    );
    p.write_file(
        "auth/migrations/2_tokens.up.sql",
        "CREATE TABLE auth_tokens (id bigint);",
    );
    p
}

const SETS: &str = "[sets.auth]\ndir = \"../auth/migrations\"\ntable = \"auth_migrations\"\n";

fn versions(doc: &Value) -> Vec<(i64, String)> {
    doc["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["version"].as_i64().unwrap(),
                m["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn two_sets_in_one_database_through_the_cli() {
    let db = test_db();
    let p = project(&db, SETS);

    let lib = p.run(&["--set", "auth", "up"]);
    lib.ok();
    assert!(
        lib.stdout.starts_with("up 1 sessions (") && lib.stdout.contains("\nup 2 tokens ("),
        "{}",
        lib.stdout
    );
    let app = p.run(&["up"]);
    app.ok();
    assert!(
        app.stdout.starts_with("up 1 users (") && app.stdout.contains("\nup 3 posts ("),
        "{}",
        app.stdout
    );

    assert_eq!(
        column(
            &db,
            "SELECT version || name FROM auth_migrations ORDER BY version"
        ),
        [Some("1sessions".into()), Some("2tokens".into())]
    );
    assert_eq!(
        column(
            &db,
            "SELECT version || name FROM migrations_history ORDER BY version"
        ),
        [Some("1users".into()), Some("3posts".into())]
    );

    // Each set's status is its own; the same set by --dir and --table.
    let by_name = p.run(&["--format", "json", "--set", "auth", "status"]);
    by_name.ok();
    let expected = vec![(1, "applied".to_owned()), (2, "applied".to_owned())];
    assert_eq!(versions(&by_name.json()), expected);
    let by_table = p.run(&[
        "--format",
        "json",
        "--dir",
        "auth/migrations",
        "status",
        "--table",
        "auth_migrations",
    ]);
    by_table.ok();
    assert_eq!(versions(&by_table.json()), expected);
    let main = p.run(&["--format", "json", "status"]);
    main.ok();
    assert_eq!(
        versions(&main.json()),
        [(1, "applied".to_owned()), (3, "applied".to_owned())]
    );

    // Up to date, each in its own table.
    let again = p.run(&["--set", "auth", "up"]);
    again.ok();
    assert_eq!(again.stdout, "nothing to do: the database is up to date\n");
}

#[test]
fn an_unknown_set_lists_the_known_ones() {
    let db = test_db();
    let p = project(&db, SETS);
    let run = p.run(&["--set", "billing", "up"]);
    run.expect(2);
    assert_eq!(
        run.stderr,
        "error: --set billing: migrations/migrations.toml has no [sets.billing]; its sets \
         are: auth\n"
    );
}

/// A set with no table of its own would mix its history with the main set's: refused with
/// the two places a table can be named.
#[test]
fn a_set_without_its_own_table_is_refused() {
    let db = test_db();
    let p = project(&db, "[sets.auth]\ndir = \"../auth/migrations\"\n");
    let run = p.run(&["--set", "auth", "up"]);
    run.expect(2);
    assert_eq!(
        run.stderr,
        "error: set auth has no history table of its own, so its history would mix with the \
         main set's in migrations_history: add `table = \"auth_migrations\"` under [sets.auth] \
         in migrations/migrations.toml, or [run] table in \
         migrations/../auth/migrations/migrations.toml (which its embed_migrations! reads too)\n"
    );
    // The set's own [run] table is enough (it is what its embedded copy uses).
    p.write_file(
        "auth/migrations/migrations.toml",
        "[run]\ntable = \"auth_migrations\"\n",
    );
    p.run(&["--set", "auth", "up"]).ok();
    assert_eq!(
        column(&db, "SELECT count(*) FROM auth_migrations"),
        [Some("2".into())]
    );
}
