//! The warm start through the binary (docs/cache.md): `up` with nothing to do sends one query
//! and, once the checksum cache vouches for the files, reads none of them; an edited file is
//! always seen (drift, exit 3), however it was edited; the cache lives outside the migrations
//! directory, can be turned off, and a broken or unwritable one changes nothing a user sees.

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
    let cache = cache_files(&p);
    assert_eq!(cache.len(), 1, "{cache:?}");
    let written = fs::read(&cache[0]).unwrap();
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
    // A settled directory does not rewrite its cache.
    assert_eq!(fs::read(&cache[0]).unwrap(), written);
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
