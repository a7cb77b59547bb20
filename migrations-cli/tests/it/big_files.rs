//! Large seed-data migrations (issue 19 item 6): `lock`, `sql`, `up --dry-run`, `up`, `down`
//! and `test` peak within 3x the file over the binary's own size, measured on the real binary
//! under `/usr/bin/time`, and `up` applies the file. Two shapes: one `INSERT` of many rows, and
//! many one-row `INSERT`s (as `pg_dump --inserts` writes), whose statements the loader once
//! held as token lists (25x the file), and whose progress markers and responses `up` once held
//! all at once (18x the file; now a piece of the batch at a time).

use std::fmt::Write as _;
use std::process::Command;

use migrations_tests::test_db;

use crate::common::*;

const TABLE: &str = "CREATE TABLE seed (id int PRIMARY KEY, name text, email text);\n";

/// `count` one-row `INSERT`s after the `CREATE TABLE` (about 64 bytes each).
fn one_row_inserts(count: usize) -> String {
    let mut sql = String::with_capacity(count * 64 + TABLE.len());
    sql.push_str(TABLE);
    for i in 0..count {
        let _ = writeln!(
            sql,
            "INSERT INTO seed VALUES ({i}, 'name {i:06}', 'u{i}@ex.org');"
        );
    }
    sql
}

/// One `INSERT` of `rows` rows (about 42 bytes each) after the `CREATE TABLE`.
fn one_insert(rows: usize) -> String {
    let mut sql = String::with_capacity(rows * 44 + TABLE.len() + 32);
    sql.push_str(TABLE);
    sql.push_str("INSERT INTO seed VALUES\n");
    for i in 0..rows {
        let sep = if i + 1 == rows { ";\n" } else { ",\n" };
        let _ = write!(sql, "({i}, 'name {i:06}', 'u{i}@ex.org'){sep}");
    }
    sql
}

/// The peak resident memory (MB) of `command`, run to its end under `/usr/bin/time`, which
/// must exit 0.
fn peak_mb(command: Command) -> f64 {
    let mut timed = Command::new("/usr/bin/time");
    timed.args(["-f", "maxrss %M"]).arg(command.get_program());
    timed.args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        timed.current_dir(dir);
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => timed.env(key, v),
            None => timed.env_remove(key),
        };
    }
    let out = timed.output().expect("/usr/bin/time runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{:?} failed:\n{}\n{stderr}",
        command.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stdout)
    );
    let kb: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {stderr}"));
    kb / 1024.0
}

/// Asserts that `args` on the project peak within 3x the file over the binary's own size.
fn within_3x(p: &Project, args: &[&str], file_mb: f64, base: f64) {
    within(p, args, file_mb, base, 3.0);
}

/// Asserts that `args` on the project peak within `times` the file over the binary's own size.
fn within(p: &Project, args: &[&str], file_mb: f64, base: f64, times: f64) {
    let peak = peak_mb(p.command(args));
    assert!(
        peak - base <= times * file_mb,
        "`migrations {}` on a {file_mb:.1} MB migration peaked at {peak:.0} MB ({base:.0} MB \
         without it): more than {times}x the file",
        args.join(" ")
    );
}

/// The peak of `args` on a project of one one-line migration, on a database of its own: what
/// the command costs whatever the file (a connection, a runtime; a few MB more than
/// `--version`, more in a debug build).
fn command_base_mb(args: &[&str]) -> f64 {
    let db = test_db();
    let p = Project::new(&[
        ("1_t.up.sql", "CREATE TABLE t (x int);\n"),
        ("1_t.down.sql", "DROP TABLE t;\n"),
    ])
    .url_as_flag(db.url());
    peak_mb(p.command(args))
}

/// The binary's own peak (`migrations --version`), the base the 3x is over.
fn base_mb(p: &Project) -> f64 {
    let mut version = migrations(p.path());
    version.arg("--version");
    peak_mb(version)
}

#[test]
fn many_one_row_inserts_load_lock_and_print_within_3x_the_file() {
    let db = test_db();
    let text = one_row_inserts(200_000);
    let file_mb = text.len() as f64 / (1024.0 * 1024.0);
    let p = Project::new(&[
        ("1_seed.up.sql", &text),
        ("1_seed.down.sql", "DROP TABLE seed;\n"),
    ])
    .url_as_flag(db.url());
    drop(text);
    let base = base_mb(&p);
    // The loader once held every statement's tokens: 25x the file for every command.
    within_3x(&p, &["lock"], file_mb, base);
    within_3x(&p, &["sql"], file_mb, base);
    within_3x(&p, &["up", "--dry-run"], file_mb, base);
    // A marker per statement, sent and answered a piece of the batch at a time (18x the file
    // when the batch was one query string).
    within_3x(&p, &["up", "-q"], file_mb, base);
    assert_eq!(
        scalar(&db, "SELECT count(*)::text FROM seed").as_deref(),
        Some("200000")
    );
    within_3x(&p, &["down", "-q"], file_mb, base);
    // The round trip applies it twice on a scratch database (its settings once held a second
    // load of the directory).
    within_3x(&p, &["test"], file_mb, base);
}

#[test]
fn one_big_insert_loads_prints_and_applies() {
    let db = test_db();
    let text = one_insert(200_000);
    let file_mb = text.len() as f64 / (1024.0 * 1024.0);
    let p = Project::new(&[
        ("1_seed.up.sql", &text),
        ("1_seed.down.sql", "DROP TABLE seed;\n"),
    ])
    .url_as_flag(db.url());
    drop(text);
    let base = base_mb(&p);
    within_3x(&p, &["lock"], file_mb, base);
    // The placeholder step once copied the file twice more, the offline script grew by doubling.
    within_3x(&p, &["sql"], file_mb, base);
    within_3x(&p, &["up", "--dry-run"], file_mb, base);
    // The statement goes to the driver straight from the loaded file (no copy of ours), and
    // the driver holds two copies of it (its encoded message and the connection's write
    // buffer): 3x the file over what `up` costs anyway. (It was 4.2x, with the batch's copy.)
    let up_base = command_base_mb(&["up", "-q"]);
    within(&p, &["up", "-q"], file_mb, up_base, 3.5);
    assert_eq!(
        scalar(&db, "SELECT count(*)::text FROM seed").as_deref(),
        Some("200000")
    );
}
