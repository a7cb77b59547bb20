//! The warm start through the binary (docs/cache.md): `up` with nothing to do sends one query
//! and, once the checksum cache vouches for the files, reads none of them, and once the warm
//! record describes the directory, loads nothing at all; an edited file is always seen (drift,
//! exit 3), however it was edited; every change of the directory (a file added, removed,
//! renamed or edited, `migrations.toml`, a folder's file) gives the output and exit code of a
//! run without the cache; the cache lives outside the migrations directory, can be turned off,
//! and a broken or unwritable one changes nothing a user sees.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use migrations_tests::test_db;

use crate::common::*;

const UP: &str = "CREATE TABLE items (id bigint PRIMARY KEY);\n";

fn project(url: &str) -> Project {
    Project::new(&[
        ("1_items.up.sql", UP),
        ("1_items.down.sql", "DROP TABLE items;\n"),
        (
            "2_notes.up.sql",
            "-- migrations:lock-timeout=5s\nCREATE TABLE notes (id bigint);\n",
        ),
    ])
    .url_in_env(url)
}

/// Where the binary keeps its cache when `XDG_CACHE_HOME` is not set: under `HOME` (the
/// project, in these tests), `.cache/migrations/`.
fn cache_files(p: &Project) -> Vec<PathBuf> {
    match fs::read_dir(p.path().join(".cache/migrations")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// The queries a run sent, from its `--debug` log.
fn queries(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter_map(|l| l.strip_prefix("[debug] executing simple query: "))
        .collect()
}

/// Edits `name` to `text` (the same length) and puts its modification time back.
fn edit_keeping_mtime(p: &Project, name: &str, text: &str) {
    let path = p.migrations_dir().join(name);
    let before = fs::metadata(&path).unwrap();
    assert_eq!(before.len() as usize, text.len());
    fs::write(&path, text).unwrap();
    set_mtime(&path, &before);
}

fn set_mtime(path: &Path, like: &fs::Metadata) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(like.modified().unwrap())
        .unwrap();
}

/// Past the cache's racy margin (2 s): files written before this count as settled.
fn settle() {
    std::thread::sleep(Duration::from_millis(2100));
}

#[test]
fn a_warm_up_sends_one_query_and_reads_no_file() {
    let db = test_db();
    let p = project(db.url());
    p.run(&["up"]).ok();
    settle();
    // Records the settled files; the next start trusts them.
    p.run(&["up"]).ok();
    // The checksum cache and the warm record.
    let cache = cache_files(&p);
    assert_eq!(cache.len(), 2, "{cache:?}");
    let written = fs::read(&cache[0]).unwrap();
    let record = fs::read(&cache[1]).unwrap();
    let run = p.run(&["up", "--debug"]);
    run.ok();
    assert_eq!(run.stdout, "nothing to do: the database is up to date\n");
    // One query: the warm check, nothing before it (the stall watchdog starts only when
    // something runs).
    assert_eq!(
        queries(&run),
        ["SELECT chain_digest FROM \"public\".\"migrations_history_meta\""],
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("warm start: the directory is as its warm record describes"),
        "{}",
        run.stderr
    );
    // A settled directory does not rewrite its cache (nor its record, which it does not read).
    assert_eq!(fs::read(&cache[0]).unwrap(), written);
    assert_eq!(fs::read(&cache[1]).unwrap(), record);
    let json = p.run(&["up", "--format", "json"]);
    json.ok();
    assert_eq!(json.json()["up_to_date"], true);
    assert_eq!(json.json()["ran"].as_array().unwrap().len(), 0);
    // The cache is not in the migrations directory (which is committed).
    let listed: Vec<String> = fs::read_dir(p.migrations_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(listed.iter().all(|n| n.ends_with(".sql")), "{listed:?}");
}

/// Every way of editing a file that can keep some of its metadata: the next `up` refuses with
/// drift (exit 3), as it does without a cache.
#[test]
fn an_edited_file_is_always_seen() {
    let db = test_db();
    let p = project(db.url());
    p.run(&["up"]).ok();
    settle();
    p.run(&["up"]).ok();
    p.run(&["up"]).ok();
    let drift = |p: &Project| {
        let run = p.run(&["up"]);
        run.expect(3);
        assert!(
            run.stderr
                .contains("edited: applied migrations whose file changed since")
                && run.stderr.contains("\n  1 items: applied checksum "),
            "names the migration: {}",
            run.stderr
        );
        run.stderr
    };
    let uncached = |p: &Project| {
        let run = p.run(&["up", "--no-cache"]);
        run.expect(3);
        run.stderr
    };
    // Same size, modification time put back (`touch -d`): its change time still moves.
    edit_keeping_mtime(
        &p,
        "1_items.up.sql",
        "CREATE TABLE itemz (id bigint PRIMARY KEY);\n",
    );
    assert_eq!(drift(&p), uncached(&p));
    // Back as it was, same size and time: applied again, nothing to do.
    edit_keeping_mtime(&p, "1_items.up.sql", UP);
    p.run(&["up"]).ok();
    // Replaced by a rename (an editor's save, a checkout): another inode.
    let target = p.migrations_dir().join("1_items.up.sql");
    let before = fs::metadata(&target).unwrap();
    let tmp = p.path().join("swap.sql");
    fs::write(&tmp, "CREATE TABLE itemx (id bigint PRIMARY KEY);\n").unwrap();
    set_mtime(&tmp, &before);
    fs::rename(&tmp, &target).unwrap();
    drift(&p);
}

/// An edit in the same second as the run that recorded the cache is seen too (that run's
/// entries are within the racy margin, so the next one reads the file).
#[test]
fn an_edit_right_after_a_run_is_seen() {
    let db = test_db();
    let p = project(db.url());
    p.run(&["up"]).ok();
    p.run(&["up"]).ok();
    edit_keeping_mtime(
        &p,
        "1_items.up.sql",
        "CREATE TABLE itemz (id bigint PRIMARY KEY);\n",
    );
    let run = p.run(&["status"]);
    assert!(
        run.stdout
            .starts_with("edited       1 items\napplied      2 notes\n"),
        "{}",
        run.stdout
    );
    p.run(&["up"]).expect(3);
}

#[test]
fn the_cache_can_be_turned_off_and_a_broken_one_changes_nothing() {
    let db = test_db();
    let p = project(db.url());
    p.run(&["up", "--no-cache"]).ok();
    p.run_with(&["status"], &[("MIGRATIONS_NO_CACHE", "1")])
        .ok();
    assert!(cache_files(&p).is_empty(), "{:?}", cache_files(&p));
    // `MIGRATIONS_NO_CACHE=0` is not a request to turn it off.
    p.run_with(&["status"], &[("MIGRATIONS_NO_CACHE", "0")])
        .ok();
    assert_eq!(cache_files(&p).len(), 1);
    // XDG_CACHE_HOME wins over HOME.
    let xdg = tempfile::tempdir().unwrap();
    let xdg_home = xdg.path().to_str().unwrap();
    p.run_with(&["up"], &[("XDG_CACHE_HOME", xdg_home)]).ok();
    assert_eq!(
        fs::read_dir(xdg.path().join("migrations")).unwrap().count(),
        1
    );
    // A cache file of garbage, or a cache home that cannot be written: the same output, no
    // warning.
    let expected = p.run(&["up"]);
    expected.ok();
    fs::write(&cache_files(&p)[0], "migrations-cache 1\ngarbage\n").unwrap();
    let run = p.run(&["up"]);
    run.ok();
    assert_eq!(
        (run.stdout.as_str(), run.stderr.as_str()),
        (expected.stdout.as_str(), "")
    );
    let blocked = p.path().join("blocked");
    fs::write(&blocked, "").unwrap();
    let run = p.run_with(&["up"], &[("XDG_CACHE_HOME", blocked.to_str().unwrap())]);
    run.ok();
    assert_eq!(
        (run.stdout.as_str(), run.stderr.as_str()),
        (expected.stdout.as_str(), "")
    );
}

/// A set with a repeatable migration starts in one query too (the repeatables' checksums ride
/// with the digest), and an edited repeatable is still applied.
#[test]
fn a_warm_up_with_a_repeatable_sends_one_query() {
    let db = test_db();
    let p = project(db.url());
    p.write(
        "R__view.sql",
        "CREATE OR REPLACE VIEW item_ids AS SELECT id FROM items;\n",
    );
    p.run(&["up"]).ok();
    settle();
    p.run(&["up"]).ok();
    let run = p.run(&["up", "--debug"]);
    run.ok();
    assert_eq!(run.stdout, "nothing to do: the database is up to date\n");
    assert_eq!(
        queries(&run),
        ["SELECT chain_digest FROM \"public\".\"migrations_history_meta\";"],
        "{}",
        run.stderr
    );
    p.write(
        "R__view.sql",
        "CREATE OR REPLACE VIEW item_ids AS SELECT id, id + 1 AS next FROM items;\n",
    );
    let run = p.run(&["up"]);
    run.ok();
    assert!(
        run.stdout.contains("applied repeatable view"),
        "{}",
        run.stdout
    );
}

/// The output of a run with its timings (`12 ms`) as `N ms`.
fn untimed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            let timing = c == ' ' && rest.starts_with("ms");
            out.push_str(if timing { "N" } else { &digits });
            digits.clear();
        }
        out.push(c);
    }
    out.push_str(&digits);
    out
}

/// A project applied to two databases alike: `warm`, whose runs use the cache and whose
/// warm record describes the directory (checked), and `cold`, whose runs do not.
struct Twins {
    p: Project,
    warm: migrations_tests::TestDb,
    cold: migrations_tests::TestDb,
}

impl Twins {
    fn new(files: &[(&str, &str)]) -> Twins {
        let (warm, cold) = (test_db(), test_db());
        let t = Twins {
            p: Project::new(files),
            warm,
            cold,
        };
        t.p.with_url(t.warm.url(), &["up"]).ok();
        t.p.with_url(t.cold.url(), &["up", "--no-cache"]).ok();
        settle();
        // The settled directory gets its record; the next start goes by it.
        t.p.with_url(t.warm.url(), &["up"]).ok();
        let run = t.p.with_url(t.warm.url(), &["up", "--debug"]);
        run.ok();
        assert!(
            run.stderr
                .contains("warm start: the directory is as its warm record describes"),
            "{}",
            run.stderr
        );
        t
    }

    /// `up` with `args` on both databases: the same exit code and output (timings aside),
    /// returned.
    fn same(&self, args: &[&str]) -> (i32, String, String) {
        let warm = self.p.with_url(self.warm.url(), &[&["up"], args].concat());
        let cold = self
            .p
            .with_url(self.cold.url(), &[&["up", "--no-cache"], args].concat());
        let outcome = |r: &Run| (r.code, untimed(&r.stdout), untimed(&r.stderr));
        assert_eq!(outcome(&warm), outcome(&cold));
        outcome(&warm)
    }
}

fn twins() -> Twins {
    Twins::new(&[
        ("1_items.up.sql", UP),
        ("1_items.down.sql", "DROP TABLE items;\n"),
        ("2_notes.up.sql", "CREATE TABLE notes (id bigint);\n"),
        ("2_notes.down.sql", "DROP TABLE notes;\n"),
    ])
}

#[test]
fn a_new_file_is_seen_by_the_warm_start() {
    let t = twins();
    t.p.write("3_tags.up.sql", "CREATE TABLE tags (id bigint);\n");
    let (code, stdout, _) = t.same(&[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("3 tags"), "{stdout}");
    assert_eq!(t.same(&[]).1, "nothing to do: the database is up to date\n");
}

#[test]
fn a_removed_or_renamed_file_is_seen_by_the_warm_start() {
    let t = twins();
    t.p.remove("2_notes.down.sql");
    assert_eq!(t.same(&[]).0, 0);
    fs::rename(
        t.p.migrations_dir().join("2_notes.up.sql"),
        t.p.migrations_dir().join("2_memos.up.sql"),
    )
    .unwrap();
    t.same(&[]);
    t.p.remove("2_memos.up.sql");
    let (code, _, stderr) = t.same(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("future: applied migrations newer"),
        "{stderr}"
    );
}

/// A down file that no longer loads fails `up` as it does without the cache, though the warm
/// check reads up files only.
#[test]
fn an_edited_down_file_is_seen_by_the_warm_start() {
    let t = twins();
    t.p.write(
        "2_notes.down.sql",
        "-- migrations:no-such-directive\nDROP TABLE notes;\n",
    );
    let (code, _, stderr) = t.same(&[]);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("2_notes.down.sql"), "{stderr}");
}

/// The same size, the modification time put back, right after the record was used.
#[test]
fn an_edit_keeping_size_and_time_is_seen_by_the_warm_start() {
    let t = twins();
    edit_keeping_mtime(&t.p, "2_notes.up.sql", "CREATE TABLE notez (id bigint);\n");
    let (code, _, stderr) = t.same(&[]);
    assert_eq!(code, 3, "{stderr}");
}

/// `migrations.toml` naming another history table: the warm check reads that one (empty, so
/// the first migration runs again, and fails: its table exists).
#[test]
fn changed_settings_are_seen_by_the_warm_start() {
    let t = twins();
    t.p.write("migrations.toml", "[run]\ntable = \"other_history\"\n");
    let (code, _, stderr) = t.same(&[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("\"items\" already exists"), "{stderr}");
    settle();
    // Recorded with the new table, then used.
    t.same(&[]);
    let run = t.p.with_url(t.warm.url(), &["up", "--debug"]);
    assert!(
        run.stderr
            .contains("warm start: the directory is as its warm record describes")
            && run.stderr.contains("\"other_history_meta\""),
        "{}",
        run.stderr
    );
    // The flag wins over the recorded settings.
    assert!(t
        .same(&["--table", "migrations_history"])
        .1
        .contains("up to date"));
}

/// A pending post-deployment migration: nothing to do for `up`, applied by `--phase all`;
/// the recorded digests of each phase agree with the engine's.
#[test]
fn phases_agree_with_the_warm_record() {
    let t = Twins::new(&[
        ("1_items.up.sql", UP),
        (
            "2_drop_old.up.sql",
            "-- migrations:phase=post\nCREATE TABLE old (id bigint);\n",
        ),
    ]);
    assert_eq!(t.same(&[]).1, "nothing to do: the database is up to date\n");
    t.same(&["--phase", "post"]);
    t.same(&["--phase", "all"]);
    t.same(&[]);
}

/// A folder layout (diesel's) gets a record too, and an edit inside a folder is seen.
#[test]
fn a_folder_layout_is_seen_by_the_warm_start() {
    let t = Twins::new(&[
        ("2020-01-01-000000_items/up.sql", UP),
        ("2020-01-01-000000_items/down.sql", "DROP TABLE items;\n"),
    ]);
    t.p.write(
        "2020-01-01-000000_items/metadata.toml",
        "run_in_transaction = false\n",
    );
    let (code, _, stderr) = t.same(&[]);
    assert_eq!(code, 3, "{stderr}");
}

/// A set whose files use placeholders is never described by a record: their values may
/// change between runs.
#[test]
fn placeholders_keep_the_warm_start_on_the_heads() {
    let db = test_db();
    let p = project(db.url());
    p.write("3_t.up.sql", "CREATE TABLE ${name} (id bigint);\n");
    let env = [("MIGRATIONS_PLACEHOLDER_NAME", "t1")];
    p.run_with(&["up"], &env).ok();
    settle();
    p.run_with(&["up"], &env).ok();
    let run = p.run_with(&["up", "--debug"], &env);
    run.ok();
    assert!(!run.stderr.contains("warm record"), "{}", run.stderr);
    assert!(cache_files(&p).iter().all(|f| f.extension().is_none()));
    p.run(&["up"]).expect(2);
}

/// `wait` goes by the warm record too (nothing loaded when it proves the database migrated),
/// and says what it says without the cache; a new file makes it wait as before.
#[test]
fn wait_goes_by_the_warm_record() {
    let t = twins();
    let wait = |db: &migrations_tests::TestDb, args: &[&str]| {
        let run = t.p.with_url(db.url(), &[&["wait"], args].concat());
        (run.code, untimed(&run.stdout), untimed(&run.stderr), run)
    };
    let (code, stdout, _, run) = wait(&t.warm, &["--debug"]);
    assert_eq!(code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("warm start: the directory is as its warm record describes"),
        "{}",
        run.stderr
    );
    assert_eq!(
        stdout,
        "the database is migrated (2 migrations, pre-deployment phase, waited N ms)\n"
    );
    assert_eq!(wait(&t.cold, &["--no-cache"]).1, stdout);
    let document = |db, args: &[&str]| {
        let mut json = wait(db, &[&["--format", "json"], args].concat()).3.json();
        json["waited_ms"] = 0.into();
        json
    };
    assert_eq!(document(&t.warm, &[]), document(&t.cold, &["--no-cache"]));
    assert_eq!(document(&t.warm, &[])["checks"], 1);
    t.p.write("3_tags.up.sql", "CREATE TABLE tags (id bigint);\n");
    let warm = wait(&t.warm, &["--timeout", "1s"]);
    let cold = wait(&t.cold, &["--no-cache", "--timeout", "1s"]);
    assert_ne!(warm.0, 0, "{}", warm.2);
    assert_eq!((warm.0, warm.1, warm.2), (cold.0, cold.1, cold.2));
}

/// The connection is opened while the directory is read; what it says is said only when it is
/// used: a refusing server is waited for, and said so, once; a directory that does not load
/// reports its problem alone, as it did when nothing connected before the files were read.
#[test]
fn the_early_connection_speaks_only_when_used() {
    let p = Project::new(&[("1_a.up.sql", "SELECT 1;\n")]);
    // Port 1: nothing listens there, so every attempt is refused at once.
    let url = "postgres://app:s3cret@127.0.0.1:1/app";
    for command in ["up", "wait"] {
        let run = p.with_url(url, &[command, "--connect-timeout", "2s"]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{}", run.stderr);
        assert!(
            lines[0].starts_with("[info] waiting for 127.0.0.1:1 (connection refused) until "),
            "{}",
            run.stderr
        );
        assert!(
            lines[1].starts_with("error: could not connect"),
            "{}",
            run.stderr
        );
    }
    p.write(
        "1_a.down.sql",
        "-- migrations:no-such-directive\nSELECT 1;\n",
    );
    for command in ["up", "wait"] {
        let run = p.with_url(url, &[command, "--connect-timeout", "2s"]);
        let files = p.with_url(url, &["lint"]);
        assert_ne!(run.code, 0);
        assert_eq!(run.code, files.code, "{}", run.stderr);
        assert!(!run.stderr.contains("[info]"), "{}", run.stderr);
        assert!(run.stderr.contains("1_a.down.sql"), "{}", run.stderr);
    }
}
