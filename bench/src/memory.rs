//! What one large seed-data migration costs (`--only memory`, issue 19 item 6): the peak
//! resident memory and wall time of every CLI command on it, beside psql applying the same
//! file, at 8.4 MB (200,000 rows) and 107 MB (2,400,000 rows); and what embedding a 10 MB
//! migration costs the compile of the crate that embeds it (rustc's wall time and peak memory,
//! ours and sqlx's `migrate!`). The goal is at most 3x the file plus a constant for every
//! command.
//!
//! The same for a file of 200,000 one-row `INSERT`s (13 MB, as `pg_dump --inserts` writes).
//! `BENCH_MEMORY_ROWS` (comma-separated row counts, default `200000,2400000`) changes the
//! sizes of the one-`INSERT` files, `BENCH_MEMORY_STATEMENTS` (default `200000`, `0` skips it)
//! the other; `BENCH_MEMORY_EMBED_ROWS` (default 240000, about 10 MB; `0` skips it) the embedded one.
//! Peak memory is `/usr/bin/time -v`'s maximum resident set size of the one process.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::cluster::Cluster;
use crate::stats::Summary;
use crate::{loadavg, Out};

/// A migrations directory with one seed migration: a `CREATE TABLE` and an `INSERT` of `rows`
/// rows (about 42 bytes each), and its down. Returns the up file's path and size in bytes.
pub fn seed_migration(dir: &Path, rows: usize) -> (PathBuf, usize) {
    fs::create_dir_all(dir).unwrap();
    let mut sql = String::with_capacity(rows * 44 + 100);
    sql.push_str(
        "CREATE TABLE seed (id int PRIMARY KEY, name text, email text);\nINSERT INTO seed VALUES\n",
    );
    for i in 0..rows {
        let sep = if i + 1 == rows { ";\n" } else { ",\n" };
        let _ = write!(sql, "({i}, 'name {i:06}', 'u{i}@ex.org'){sep}");
    }
    let file = dir.join("1_seed.up.sql");
    fs::write(&file, &sql).unwrap();
    fs::write(dir.join("1_seed.down.sql"), "DROP TABLE seed;\n").unwrap();
    (file, sql.len())
}

/// A migrations directory with one migration of `statements` one-row `INSERT`s (as `pg_dump
/// --inserts` writes seed data), and its down. Returns the up file's path and size in bytes.
pub fn one_row_inserts(dir: &Path, statements: usize) -> (PathBuf, usize) {
    fs::create_dir_all(dir).unwrap();
    let mut sql = String::with_capacity(statements * 64 + 100);
    sql.push_str("CREATE TABLE seed (id int PRIMARY KEY, name text, email text);\n");
    for i in 0..statements {
        let _ = writeln!(
            sql,
            "INSERT INTO seed VALUES ({i}, 'name {i:06}', 'u{i}@ex.org');"
        );
    }
    let file = dir.join("1_seed.up.sql");
    fs::write(&file, &sql).unwrap();
    fs::write(dir.join("1_seed.down.sql"), "DROP TABLE seed;\n").unwrap();
    (file, sql.len())
}

/// One process's peak resident memory (MB), wall time (ms) and exit code.
struct Measured {
    mb: f64,
    ms: f64,
    code: Option<i32>,
}

fn measure(program: &Path, args: &[String], cwd: &Path) -> Measured {
    let t = Instant::now();
    let o = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let stderr = String::from_utf8_lossy(&o.stderr);
    let kb: f64 = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    Measured {
        mb: kb / 1024.0,
        ms,
        code: o.status.code(),
    }
}

fn rows_from_env(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// The section: every command at each size, then the embedded compile.
pub fn run(cluster: &mut Cluster, cli: Option<&Path>, out: &mut Out) {
    let Some(cli) = cli else {
        out.line("\n(No CLI binary found: the memory section is skipped.)");
        return;
    };
    for rows in rows_from_env("BENCH_MEMORY_ROWS", &[200_000, 2_400_000]) {
        commands(cluster, cli, Shape::OneInsert(rows), out);
    }
    for statements in rows_from_env("BENCH_MEMORY_STATEMENTS", &[200_000]) {
        if statements > 0 {
            commands(cluster, cli, Shape::OneRowInserts(statements), out);
        }
    }
    let embed = rows_from_env("BENCH_MEMORY_EMBED_ROWS", &[240_000]);
    if let Some(&rows) = embed.first().filter(|r| **r > 0) {
        embedded(rows, out);
    }
}

/// The seed migration measured.
#[derive(Clone, Copy)]
enum Shape {
    /// One `INSERT` of this many rows.
    OneInsert(usize),
    /// This many one-row `INSERT`s.
    OneRowInserts(usize),
}

/// Every command on one seed migration, then psql.
fn commands(cluster: &mut Cluster, cli: &Path, shape: Shape, out: &mut Out) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("migrations");
    let ((file, bytes), what) = match shape {
        Shape::OneInsert(rows) => (seed_migration(&dir, rows), format!("a {rows}-row INSERT")),
        Shape::OneRowInserts(n) => (one_row_inserts(&dir, n), format!("{n} one-row INSERTs")),
    };
    let size = bytes as f64 / 1e6;
    let db = cluster.fresh_db("memory");
    let url = format!("{}?sslmode=disable", cluster.url(&db));
    let psql_db = cluster.fresh_db("memory_psql");
    let base = measure(cli, &["--version".into()], scratch.path()).mb;
    out.line(format!(
        "\n### Memory: one {size:.1} MB migration ({what})\n"
    ));
    out.line(format!(
        "Peak resident memory (`/usr/bin/time -v`) of one process each, in this order (load {} at the start); \
         the goal is at most 3x the file plus a constant. *Over base* is (peak - the binary's own \
         {base:.0} MB, `migrations --version`) / file size.\n",
        loadavg()
    ));
    out.line("| command | peak memory | / file size | over base | wall | exit |");
    out.line("|---|---:|---:|---:|---:|---:|");
    let s = |v: &[&str]| -> Vec<String> { v.iter().map(|a| (*a).to_owned()).collect() };
    let dir_s = dir.display().to_string();
    let with_db = |v: &[&str]| -> Vec<String> {
        let mut a = s(v);
        a.extend([
            "--dir".into(),
            dir_s.clone(),
            "--database-url".into(),
            url.clone(),
        ]);
        a
    };
    let offline = |v: &[&str]| -> Vec<String> {
        let mut a = s(v);
        a.extend(["--dir".into(), dir_s.clone()]);
        a
    };
    let cmds: Vec<(&str, Vec<String>)> = vec![
        ("`migrations lint`", offline(&["lint"])),
        ("`migrations lock`", offline(&["lock"])),
        ("`migrations verify`", offline(&["verify"])),
        ("`migrations sql` (offline script)", offline(&["sql"])),
        ("`migrations up --dry-run`", with_db(&["up", "--dry-run"])),
        ("`migrations up`", with_db(&["up", "-q"])),
        ("`migrations status`", with_db(&["status"])),
        (
            "`migrations status --format json`",
            with_db(&["status", "--format", "json"]),
        ),
        ("`migrations history`", with_db(&["history"])),
        ("`migrations down`", with_db(&["down", "-q"])),
        ("`migrations test` (round trip)", with_db(&["test"])),
    ];
    for (label, args) in cmds {
        let m = measure(cli, &args, scratch.path());
        row(out, label, &m, size, base);
    }
    let psql = which("psql").unwrap_or_else(|| PathBuf::from("psql"));
    let m = measure(
        &psql,
        &[
            "-X".into(),
            "-q".into(),
            "-f".into(),
            file.display().to_string(),
            format!("{}?sslmode=disable", cluster.url(&psql_db)),
        ],
        scratch.path(),
    );
    row(out, "psql -f (the same file, for scale)", &m, size, 0.0);
    out.line(format!("\nLoad at the end: {}.", loadavg()));
    cluster.drop_db(&db);
    cluster.drop_db(&psql_db);
}

fn row(out: &mut Out, label: &str, m: &Measured, size: f64, base: f64) {
    out.line(format!(
        "| {label} | {:.0} MB | {:.1}x | {:.1}x | {} | {} |",
        m.mb,
        m.mb / size,
        (m.mb - base).max(0.0) / size,
        Summary::ms(m.ms),
        m.code.map_or("signal".to_owned(), |c| c.to_string())
    ));
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
}

/// A scratch crate per tool that embeds one seed migration of `rows` rows (ours:
/// `embed_migrations!`, sqlx: `migrate!`), built once (dependencies, untimed), then rebuilt
/// after the migration is edited: rustc's wall time and peak memory for that crate alone
/// (`RUSTC_WRAPPER` running it under `/usr/bin/time`), in the dev profile a developer waits on,
/// and the binary's size.
fn embedded(rows: usize, out: &mut Out) {
    let core = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations-core"))
        .canonicalize()
        .unwrap();
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/memory-embed"));
    let _ = fs::remove_dir_all(root.join("ws"));
    let ws = root.join("ws");
    fs::create_dir_all(&ws).unwrap();
    let wrapper = ws.join("rustc-wrapper.sh");
    let log = ws.join("rustc.log");
    // cargo runs `<wrapper> <rustc> <args>`; only the scratch crates (`mem_*`) are timed.
    fs::write(
        &wrapper,
        "#!/bin/sh\ncase \" $* \" in\n  *\" --crate-name mem_\"*) exec /usr/bin/time -a -o \"$MEM_RUSTC_LOG\" -f \"%e %M\" \"$@\" ;;\nesac\nexec \"$@\"\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .unwrap();
    let tools: [(&str, &str, String, &str); 2] = [
        (
            "ours: `embed_migrations!`",
            "mem_ours",
            format!("migrations-core = {{ path = \"{}\" }}\n", core.display()),
            "use migrations_core::{embed_migrations, Migrations};\n\
             static MIGRATIONS: Migrations = embed_migrations!(\"migrations\");\n\
             fn main() {\n    let bytes: usize = MIGRATIONS.iter().map(|m| m.up().sql().len()).sum();\n    \
             println!(\"{} migrations, {bytes} bytes\", MIGRATIONS.len());\n}\n",
        ),
        (
            "sqlx: `migrate!`",
            "mem_sqlx",
            "sqlx = { version = \"0.8\", default-features = false, features = [\"postgres\", \"migrate\", \"macros\", \"runtime-tokio\"] }\n".to_owned(),
            "static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!(\"./migrations\");\n\
             fn main() {\n    let bytes: usize = MIGRATOR.iter().map(|m| m.sql.len()).sum();\n    \
             println!(\"{} migrations, {bytes} bytes\", MIGRATOR.iter().count());\n}\n",
        ),
    ];
    let mut members = Vec::new();
    let mut size = 0;
    for (_, name, deps, main) in &tools {
        let krate = ws.join(name);
        fs::create_dir_all(krate.join("src")).unwrap();
        fs::write(
            krate.join("Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\n{deps}"),
        )
        .unwrap();
        fs::write(krate.join("src/main.rs"), main).unwrap();
        fs::write(
            krate.join("build.rs"),
            "fn main() { println!(\"cargo:rerun-if-changed=migrations\"); }\n",
        )
        .unwrap();
        size = seed_migration(&krate.join("migrations"), rows).1;
        members.push(format!("\"{name}\""));
    }
    fs::write(
        ws.join("Cargo.toml"),
        format!(
            "[workspace]\nmembers = [{}]\nresolver = \"2\"\n",
            members.join(", ")
        ),
    )
    .unwrap();
    let target = root.join("target");
    let cargo = |name: &str| -> Option<(f64, f64)> {
        let _ = fs::remove_file(&log);
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let o = Command::new(cargo)
            .args(["build", "-q", "-p", name])
            .current_dir(&ws)
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTC_WRAPPER", &wrapper)
            .env("MEM_RUSTC_LOG", &log)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
            .output()
            .unwrap();
        if !o.status.success() {
            eprintln!(
                "cargo build -p {name} failed:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            return None;
        }
        // `<seconds> <KiB>`: the last line is the bin's compile (the build script's first).
        let text = fs::read_to_string(&log).ok()?;
        let line = text.lines().rev().find(|l| !l.starts_with("Command"))?;
        let mut f = line.split_whitespace();
        Some((
            f.next()?.parse().ok()?,
            f.next()?.parse::<f64>().ok()? / 1024.0,
        ))
    };
    out.line(format!(
        "\n### Compiling a crate that embeds one {:.1} MB migration\n",
        size as f64 / 1e6
    ));
    out.line(format!(
        "rustc of the embedding crate alone (dev profile), rebuilt after the migration is edited; \
         dependencies built before and not counted. Load {} at the start.\n",
        loadavg()
    ));
    out.line("| tool | rustc wall | rustc peak memory | binary |");
    out.line("|---|---:|---:|---:|");
    for (label, name, _, _) in &tools {
        if cargo(name).is_none() {
            out.line(format!("| {label} | build failed | | |"));
            continue;
        }
        // The edit: one more row, as a developer editing seed data would.
        let up = ws.join(name).join("migrations/1_seed.up.sql");
        let mut text = fs::read_to_string(&up).unwrap();
        text.truncate(text.trim_end().len() - 1);
        text.push_str(",\n(-1, 'edited', 'e@ex.org');\n");
        fs::write(&up, text).unwrap();
        match cargo(name) {
            Some((secs, mb)) => {
                let binary = fs::metadata(target.join("debug").join(name))
                    .map(|m| format!("{:.1} MB", m.len() as f64 / 1e6))
                    .unwrap_or_default();
                out.line(format!(
                    "| {label} | {} | {mb:.0} MB | {binary} |",
                    Summary::ms(secs * 1000.0)
                ));
            }
            None => out.line(format!("| {label} | not rebuilt | | |")),
        }
    }
}
