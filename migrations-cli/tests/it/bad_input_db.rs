//! Bad input that reaches a real database: files the runner cannot run as written (issue 18)
//! are refused before anything runs, and the database is left exactly as it was.
//!
//! The corpus in `bad_input` checks the messages without a database; here the binary is
//! given one, to show that nothing was created, applied or recorded.

use migrations_tests::{test_db, TestDb};

use crate::common::{column, Project};

/// The relations of the `public` schema: a refused run must not have created any.
fn relations(db: &TestDb) -> Vec<Option<String>> {
    column(
        db,
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' ORDER BY 1",
    )
}

#[test]
fn commit_in_a_transactional_up_runs_nothing() {
    // The reproduction: this used to leave 'a' in the table with no history row, and a rerun
    // inserted it again.
    let db = test_db();
    let p = Project::new(&[
        ("0001_t.up.sql", "CREATE TABLE t (x text);\n"),
        (
            "0002_rows.up.sql",
            "INSERT INTO t VALUES ('a');\nCOMMIT;\nINSERT INTO t VALUES ('x');\n",
        ),
    ])
    .url_in_env(db.url());
    for _ in 0..2 {
        let up = p.run(&["up"]);
        assert_eq!(up.code, 2, "{}", up.stderr);
        assert_eq!(up.stdout, "");
        assert_eq!(
            up.stderr,
            "error: the migrations directory has 1 problem:\n  migrations/0002_rows.up.sql:2: \
             `COMMIT` would break the transaction the runner wraps this file in (the file and \
             its history record commit together); drop the statement, or add \
             `-- migrations:no-transaction` as the first line of the file\n"
        );
        assert_eq!(relations(&db), Vec::<Option<String>>::new());
    }
}

#[test]
fn psql_input_runs_nothing() {
    let db = test_db();
    let p = Project::new(&[
        ("0001_t.up.sql", "CREATE TABLE t (x text);\n"),
        (
            "0002_data.up.sql",
            "\\set ON_ERROR_STOP on\nCOPY t (x) FROM stdin;\na\nb'c\n\\.\n",
        ),
    ])
    .url_in_env(db.url());
    let up = p.run(&["up"]);
    assert_eq!(up.code, 2, "{}", up.stderr);
    assert_eq!(
        up.stderr,
        "error: the migrations directory has 1 problem:\n  migrations/0002_data.up.sql:1: drop \
         the psql meta-command `\\set`; the runner sends SQL to the server, not to psql (1 more \
         line is written for psql: 2)\n"
    );
    assert_eq!(relations(&db), Vec::<Option<String>>::new());
}

#[test]
fn commit_in_a_transactional_down_is_refused_before_it_runs() {
    let db = test_db();
    let p = Project::new(&[
        (
            "0001_t.up.sql",
            "CREATE TABLE t (x text);\nINSERT INTO t VALUES ('kept');\n",
        ),
        (
            "0001_t.down.sql",
            "DELETE FROM t;\nCOMMIT;\nDROP TABLE t;\n",
        ),
    ])
    .url_in_env(db.url());
    let up = p.run(&["up"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let history = "SELECT version || ' ' || state FROM public.migrations_history";
    let before = (column(&db, "SELECT x FROM t"), column(&db, history));
    assert_eq!(before.1, [Some("1 applied".to_owned())]);
    let down = p.run(&["down"]);
    assert_eq!(down.code, 2, "{}", down.stderr);
    assert_eq!(down.stdout, "");
    assert_eq!(
        down.stderr.lines().next().unwrap_or_default(),
        "error: down 0001 t: line 2: `COMMIT` would break the transaction the runner wraps this \
         file in (the file and its history record commit together); drop the statement, or add \
         `-- migrations:no-transaction` as the first line of the file"
    );
    let after = (column(&db, "SELECT x FROM t"), column(&db, history));
    assert_eq!(after, before, "the refused down changed the database");
}
