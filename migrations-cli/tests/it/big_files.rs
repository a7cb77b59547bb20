//! Large seed-data migrations (issue 19 item 6): `lock`, `sql`, `up --dry-run` and `down`
//! peak within 3x the file over the binary's own size, measured on the real binary under
//! `/usr/bin/time`, and `up` applies the file. Two shapes: one `INSERT` of many rows, and
//! many one-row `INSERT`s (as `pg_dump --inserts` writes), whose statements the loader once
//! held as token lists (25x the file).

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
    let peak = peak_mb(p.command(args));
    assert!(
        peak - base <= 3.0 * file_mb,
        "`migrations {}` on a {file_mb:.1} MB migration peaked at {peak:.0} MB ({base:.0} MB \
         for `--version`): more than 3x the file",
        args.join(" ")
    );
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
    // `up` itself is not within 3x of such a file (a marker per statement: see
    // ARCHITECTURE.md), but it applies it, and `down` is within 3x again.
    p.expect(&["up", "-q"], 0);
    assert_eq!(
        scalar(&db, "SELECT count(*)::text FROM seed").as_deref(),
        Some("200000")
    );
    within_3x(&p, &["down", "-q"], file_mb, base);
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
    p.expect(&["up", "-q"], 0);
    assert_eq!(
        scalar(&db, "SELECT count(*)::text FROM seed").as_deref(),
        Some("200000")
    );
}
