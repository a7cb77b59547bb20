//! `migrations database create|drop|reset|setup` as a user runs them, against a real server:
//! the database the URL names is created from the maintenance database, migrated, dropped; a
//! drop without a terminal needs `--force`; text and JSON output.

use migrations_tests::{test_db, TestDb};

use crate::common::{Project, Run};

const FILES: &[(&str, &str)] = &[
    ("1_users.up.sql", "CREATE TABLE users (id bigint);"),
    ("1_users.down.sql", "DROP TABLE users;"),
    ("2_posts.up.sql", "CREATE TABLE posts (id bigint);"),
    ("2_posts.down.sql", "DROP TABLE posts;"),
];

/// A database name of this test's own that does not exist yet (short: PostgreSQL keeps 63
/// bytes of a name, and the harness's names are long).
fn fresh(db: &TestDb, suffix: &str) -> String {
    let head: Vec<&str> = db.name().split('_').take(4).collect();
    format!("{}_{suffix}", head.join("_"))
}

fn exists(db: &TestDb, name: &str) -> bool {
    let n: i64 = db
        .connect_admin()
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .unwrap()
        .get(0);
    n == 1
}

/// Durations (`2 migrations in 14 ms`, `up 1 users (2 ms)`) replaced by `N`.
fn without_ms(text: &str) -> String {
    text.lines()
        .map(|l| {
            if let Some(head) = l.strip_suffix(" ms)") {
                if let Some((what, _)) = head.rsplit_once(" (") {
                    return format!("{what} (N ms)");
                }
            }
            match l.strip_suffix(" ms").and_then(|h| h.rsplit_once(" in ")) {
                Some((what, _)) => format!("{what} in N ms"),
                None => l.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn setup_creates_a_missing_database_and_applies_the_migrations() {
    let db = test_db();
    let name = fresh(&db, "setup");
    let p = Project::new(FILES).url_in_env(&db.url_for_database(&name));
    let run = p.run(&["database", "setup"]);
    run.ok();
    assert_eq!(
        without_ms(&run.stdout),
        format!(
            "created database \"{name}\"\nup 1 users (N ms)\nup 2 posts (N ms)\n2 migrations in N ms"
        )
    );
    assert!(exists(&db, &name));
    let mut client =
        postgres::Client::connect(&db.url_for_database(&name), postgres::NoTls).unwrap();
    let versions: Vec<i64> = client
        .query("SELECT version FROM migrations_history ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2]);
    drop(client);

    // Again: nothing to create, nothing to apply.
    let again = p.run(&["database", "setup"]);
    again.ok();
    assert_eq!(
        again.stdout,
        format!("database \"{name}\" already exists\nnothing to do: the database is up to date\n")
    );

    // JSON: one document with the database step and up's own document.
    let json = p.run(&["--format", "json", "database", "setup"]);
    json.ok();
    let doc = json.json();
    assert_eq!(doc["command"], "database setup");
    assert_eq!(doc["database"], name.as_str());
    assert_eq!(doc["created"], false);
    assert_eq!(doc["up"]["command"], "up");
    assert_eq!(doc["up"]["up_to_date"], true);

    p.run(&["database", "drop", "--force"]).ok();
    assert!(!exists(&db, &name));
}

#[test]
fn drop_without_a_terminal_needs_force_and_force_ends_other_sessions() {
    let db = test_db();
    let name = fresh(&db, "drop");
    let p = Project::new(FILES).url_in_env(&db.url_for_database(&name));
    let created = p.run(&["database", "create"]);
    created.ok();
    assert_eq!(created.stdout, format!("created database \"{name}\"\n"));

    // stdin is not a terminal (the harness closes it): refused, exit 2, with the fix.
    let refused = p.run(&["database", "drop"]);
    refused.expect(2);
    assert_eq!(refused.stdout, "");
    assert_eq!(
        refused.stderr,
        format!(
            "error: `database drop` drops database \"{name}\" and there is no terminal to \
             confirm on: run `migrations database drop --force` to drop it without asking \
             (--force also ends the sessions still connected to it)\n"
        )
    );
    assert!(exists(&db, &name), "nothing was dropped");

    // A session still connected (a service, a psql) does not stop --force.
    let mut other =
        postgres::Client::connect(&db.url_for_database(&name), postgres::NoTls).unwrap();
    let dropped = p.run(&["--format", "json", "database", "drop", "--force"]);
    dropped.ok();
    let doc = dropped.json();
    assert_eq!(doc["command"], "database drop");
    assert_eq!(doc["database"], name.as_str());
    assert_eq!(doc["dropped"], true);
    assert!(!exists(&db, &name));
    assert!(
        other.simple_query("SELECT 1").is_err(),
        "its session was ended"
    );

    // Nothing left: still success, and it says so.
    let none = p.run(&["database", "drop", "--force"]);
    none.ok();
    assert_eq!(
        none.stdout,
        format!("database \"{name}\" does not exist; nothing to drop\n")
    );
}

#[test]
fn reset_drops_recreates_and_migrates() {
    let db = test_db();
    let name = fresh(&db, "reset");
    let url = db.url_for_database(&name);
    let p = Project::new(FILES).url_in_env(&url);
    p.run(&["database", "setup"]).ok();
    postgres::Client::connect(&url, postgres::NoTls)
        .unwrap()
        .batch_execute("INSERT INTO users VALUES (1); CREATE TABLE stray (id int);")
        .unwrap();

    p.run(&["database", "reset"]).expect(2);
    let run = p.run(&["database", "reset", "--force"]);
    run.ok();
    assert_eq!(
        without_ms(&run.stdout),
        format!(
            "dropped database \"{name}\"\ncreated database \"{name}\"\nup 1 users (N ms)\nup 2 \
             posts (N ms)\n2 migrations in N ms"
        )
    );
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let users: i64 = client
        .query_one("SELECT count(*) FROM users", &[])
        .unwrap()
        .get(0);
    assert_eq!(users, 0, "the data went with the old database");
    let stray: Option<String> = client
        .query_one("SELECT to_regclass('stray')::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(stray, None);
    drop(client);
    p.run(&["database", "drop", "--force"]).ok();
}

/// A directory with a problem stops `reset` before the database is dropped.
#[test]
fn reset_with_bad_files_drops_nothing() {
    let db = test_db();
    let name = fresh(&db, "badfiles");
    let p = Project::new(&[("1_users.up.sql", "CREATE TABLE users (id bigint);")])
        .url_in_env(&db.url_for_database(&name));
    p.run(&["database", "create"]).ok();
    p.write("x_typo.sql", "SELECT 1;");
    let run: Run = p.run(&["database", "reset", "--force"]);
    run.expect(2);
    assert!(exists(&db, &name), "not dropped");
    p.remove("x_typo.sql");
    p.run(&["database", "drop", "--force"]).ok();
}
