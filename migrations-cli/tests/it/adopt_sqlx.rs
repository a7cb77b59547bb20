//! Adopting a history as it is: a sqlx-managed service whose released migrations include ups
//! of comments alone (deliberate no-ops) moves to `migrations` without editing a file.
//!
//! The history is applied by the real sqlx-cli (`scripts/install-deps` builds it), so the
//! checksums `baseline --from-sqlx` checks are the ones sqlx itself wrote. The files are
//! `tests/sqlx_history/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use migrations_tests::{test_db, TestDb};

use crate::common::{column, scalar, table_exists, Project};

/// The versions and names of `tests/sqlx_history/`, in order.
const HISTORY: [(&str, &str); 6] = [
    ("20230105120000", "create_users"),
    ("20230110093000", "create_sessions"),
    ("20230214161500", "check_sessions_revert"),
    ("20230301110000", "index_sessions_user"),
    ("20230412080000", "release_2_0"),
    ("20230520140000", "add_display_name"),
];

/// sqlx-cli's `sqlx`: `MIGRATIONS_TEST_SQLX`, else `sqlx` on PATH, else cargo's bin directory
/// (where `cargo install`, run by scripts/install-deps, puts it). Panics saying how to get it.
fn sqlx() -> PathBuf {
    if let Some(path) = std::env::var_os("MIGRATIONS_TEST_SQLX") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "MIGRATIONS_TEST_SQLX={} is not a file: point it at sqlx-cli's `sqlx`, or unset it \
             and run scripts/install-deps, which builds sqlx-cli",
            path.display()
        );
        return path;
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin"));
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain(cargo_bin)
        .map(|dir| dir.join("sqlx"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "sqlx-cli is not installed: run scripts/install-deps (it builds it with `cargo \
                 install sqlx-cli`), or set MIGRATIONS_TEST_SQLX to its `sqlx` binary"
            )
        })
}

/// Runs `sqlx <args>` against `db`; panics with its output unless it succeeds.
fn run_sqlx(db: &TestDb, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(sqlx())
        .args(args)
        .args(["--database-url", db.url()])
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("sqlx runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sqlx {} failed:\n{stdout}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn history_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sqlx_history")
}

/// A project whose `migrations/` is a byte-for-byte copy of the sqlx history.
fn sqlx_project(db: &TestDb) -> Project {
    let p = Project::new(&[]).url_in_env(db.url());
    for entry in fs::read_dir(history_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sql") {
            fs::copy(&path, p.migrations_dir().join(path.file_name().unwrap())).unwrap();
        }
    }
    p
}

fn applied_versions(db: &TestDb) -> Vec<Option<String>> {
    column(
        db,
        "SELECT version::text FROM public.migrations_history ORDER BY version",
    )
}

#[test]
fn a_history_sqlx_applied_is_adopted_unchanged_then_migrated_on() {
    let db = test_db();
    let p = sqlx_project(&db);

    // sqlx applies its history, the comment-only ups included.
    run_sqlx(&db, p.path(), &["migrate", "run", "--source", "migrations"]);
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FILTER (WHERE success) || '/' || count(*) FROM _sqlx_migrations"
        ),
        Some("6/6".into())
    );

    // The comment-only ups load (they are no-ops, not errors) and every sqlx checksum matches
    // the unchanged files: no version needed, the whole history is adopted.
    let adopted = p.expect(&["baseline", "--from-sqlx"], 0);
    let expected: String = HISTORY
        .iter()
        .map(|(v, name)| format!("{v} {name}: adopted from _sqlx_migrations\n"))
        .collect();
    assert_eq!(adopted.stdout, expected);
    assert_eq!(applied_versions(&db).len(), 6);

    // Clean: nothing pending, nothing edited.
    let status = p.expect(&["status", "--exit-code"], 0);
    assert!(!status.stdout.contains("pending"), "{}", status.stdout);
    let up = p.expect(&["up"], 0);
    assert_eq!(
        up.stdout, "nothing to do: the database is up to date\n",
        "{}",
        up.stderr
    );
    // Adopting again changes nothing.
    let again = p.expect(&["baseline", "--from-sqlx"], 0);
    assert_eq!(again.stdout, "nothing to do\n");

    // The no-ops are lint findings, not load errors; `since` lints only what comes after the
    // adopted history.
    let lint = p.expect(&["lint"], 3);
    for (file, line) in [
        ("20230214161500_check_sessions_revert.up.sql", 1),
        ("20230412080000_release_2_0.up.sql", 1),
    ] {
        assert!(
            lint.stdout
                .contains(&format!("migrations/{file}:{line}:1: empty-migration: ")),
            "{}",
            lint.stdout
        );
    }
    p.write("migrations.toml", "[lint]\nsince = \"20230520140000\"\n");
    p.expect(&["lint"], 0);

    // The next migration, written with `migrations new`: its template fails until replaced,
    // naming the file, and records nothing.
    let new = p.expect(&["new", "add_email"], 0);
    // The version is the time of day (the history's are timestamps).
    let files: Vec<&str> = new.stdout.lines().collect();
    assert_eq!(files.len(), 2, "{}", new.stdout);
    let up_file = files[0].strip_prefix("migrations/").unwrap();
    let version = up_file.strip_suffix("_add_email.up.sql").unwrap();
    assert!(
        version.len() == 14 && version > "20230520140000",
        "{up_file}"
    );
    let down_file = format!("{version}_add_email.down.sql");
    assert_eq!(files[1], format!("migrations/{down_file}"));
    let lint = p.expect(&["lint"], 3);
    assert!(
        lint.stdout
            .contains(&format!("migrations/{up_file}:3:1: unwritten-migration: ")),
        "{}",
        lint.stdout
    );
    let unwritten = p.expect(&["up"], 1);
    assert!(
        unwritten
            .stderr
            .contains(&format!("write this migration: {up_file}")),
        "{}",
        unwritten.stderr
    );
    assert_eq!(applied_versions(&db).len(), 6);

    p.write(up_file, "ALTER TABLE users ADD COLUMN email text;\n");
    p.write(&down_file, "ALTER TABLE users DROP COLUMN email;\n");
    let up = p.expect(&["up"], 0);
    assert!(
        up.stdout.contains(&format!("{version} add_email")),
        "{}",
        up.stdout
    );
    assert_eq!(
        column(
            &db,
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_name = 'users' AND column_name = 'email'"
        ),
        vec![Some("email".to_owned())]
    );
    p.expect(&["status", "--exit-code"], 0);
}

#[test]
fn a_version_limits_what_is_adopted() {
    let db = test_db();
    let p = sqlx_project(&db);
    run_sqlx(&db, p.path(), &["migrate", "run", "--source", "migrations"]);

    // Up to the first no-op only, then the rest.
    let first = p.expect(&["baseline", "--from-sqlx", "20230214161500"], 0);
    assert_eq!(first.stdout.lines().count(), 3, "{}", first.stdout);
    assert!(
        first
            .stdout
            .ends_with("20230214161500 check_sessions_revert: adopted from _sqlx_migrations\n"),
        "{}",
        first.stdout
    );
    p.expect(&["status", "--exit-code"], 3);
    let rest = p.expect(&["baseline", "--from-sqlx"], 0);
    assert_eq!(rest.stdout.lines().count(), 3, "{}", rest.stdout);
    p.expect(&["status", "--exit-code"], 0);

    // Plain baseline still needs its version.
    let usage = p.expect(&["baseline"], 2);
    assert!(
        usage.stderr.contains("<VERSION>") || usage.stderr.contains("VERSION"),
        "{}",
        usage.stderr
    );
}

/// Comment-only ups applied by `migrations` itself: recorded like any other migration, and
/// reverted through their downs.
#[test]
fn comment_only_ups_apply_and_revert() {
    let db = test_db();
    let p = sqlx_project(&db);
    let up = p.expect(&["up"], 0);
    for (v, name) in HISTORY {
        assert!(up.stdout.contains(&format!("{v} {name}")), "{}", up.stdout);
    }
    assert_eq!(applied_versions(&db).len(), 6);
    assert!(table_exists(&db, "sessions"));
    p.expect(&["status", "--exit-code"], 0);

    p.expect(&["down", "--all"], 0);
    assert!(applied_versions(&db).is_empty());
    assert!(!table_exists(&db, "users"));
    // And up again, from the no-ops' own history rows.
    p.expect(&["up"], 0);
    assert_eq!(applied_versions(&db).len(), 6);
}

/// diesel's history, without a version: every row is adopted (versions only, on trust), a
/// comment-only `up.sql` among them.
#[test]
fn a_diesel_history_is_adopted_whole() {
    let db = test_db();
    let p = Project::new(&[
        (
            "2019-02-26-002946_create_users/up.sql",
            "CREATE TABLE users (id int PRIMARY KEY);\n",
        ),
        (
            "2019-02-26-002946_create_users/down.sql",
            "DROP TABLE users;\n",
        ),
        (
            "2019-03-01-101500_noop/up.sql",
            "-- Intentionally empty: the release needed no schema change.\n",
        ),
        ("2019-03-01-101500_noop/down.sql", "-- nothing\n"),
    ])
    .url_in_env(db.url());
    db.connect()
        .batch_execute(
            "CREATE TABLE users (id int PRIMARY KEY);\n\
             CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY, \
             run_on timestamp NOT NULL DEFAULT now());\n\
             INSERT INTO __diesel_schema_migrations (version) \
             VALUES ('20190226002946'), ('20190301101500');",
        )
        .unwrap();
    let adopted = p.expect(&["baseline", "--from-diesel"], 0);
    assert_eq!(
        adopted.stdout,
        "2019-02-26-002946 create_users: adopted from __diesel_schema_migrations\n\
         2019-03-01-101500 noop: adopted from __diesel_schema_migrations\n"
    );
    p.expect(&["status", "--exit-code"], 0);
}

/// A history written on Windows: sqlx hashes the file's bytes as read, CRLF line endings
/// included, while our checksum is of the normalised text; adoption still matches them.
#[test]
fn a_history_with_crlf_line_endings_is_adopted() {
    let db = test_db();
    let p = Project::new(&[
        (
            "20240101000000_create_t.up.sql",
            "-- made on Windows\r\nCREATE TABLE t (x int);\r\n",
        ),
        ("20240101000000_create_t.down.sql", "DROP TABLE t;\r\n"),
        (
            "20240102000000_noop.up.sql",
            "-- no up-migration, we only have a down-migration as validation\r\n",
        ),
        ("20240102000000_noop.down.sql", "SELECT 1 FROM t;\r\n"),
    ])
    .url_in_env(db.url());
    run_sqlx(&db, p.path(), &["migrate", "run", "--source", "migrations"]);
    let adopted = p.expect(&["baseline", "--from-sqlx"], 0);
    assert_eq!(adopted.stdout.lines().count(), 2, "{}", adopted.stdout);
    p.expect(&["status", "--exit-code"], 0);
}
