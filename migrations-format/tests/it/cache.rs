//! The checksum cache: a heads-only load gives what a full load gives (but the text), and an
//! edited file is always seen, however it was edited: same size with its modification time
//! put back, replaced by a rename, or edited right after the cache was written. The cache's
//! own file, torn or foreign, is ignored.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use migrations_format::cache::{cache_file_for, CacheOptions};
use migrations_format::{load_dir, load_dir_with, Directory, LoadOptions};

/// A load through the cache at `cache`, as if it ran `later` after now (files written by the
/// test count as changed long enough ago once `later` passes the racy margin).
fn heads(root: &Path, cache: &Path, later: Duration) -> Directory {
    load_dir_with(
        root,
        &LoadOptions {
            cache: Some(CacheOptions {
                file: cache.to_path_buf(),
                now: SystemTime::now() + later,
            }),
            heads_only: true,
            ..LoadOptions::default()
        },
    )
    .unwrap()
}

/// (file, checksum, no_transaction, is_empty, placeholders, lock timeout) of a file.
type Heads = (String, String, bool, bool, Vec<String>, Option<Duration>);

fn summary(d: &Directory) -> Vec<Heads> {
    d.migrations
        .iter()
        .flat_map(|m| std::iter::once(&m.up).chain(m.down.as_ref()))
        .chain(d.repeatables.iter().map(|r| &r.file))
        .map(|f| {
            (
                f.path.file_name().unwrap().to_string_lossy().into_owned(),
                f.checksum.to_hex(),
                f.no_transaction,
                f.is_empty,
                f.placeholders.clone(),
                f.directives.lock_timeout,
            )
        })
        .collect()
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("1_a.up.sql"), "CREATE TABLE a (x int);\n").unwrap();
    fs::write(d.join("1_a.down.sql"), "DROP TABLE a;\n").unwrap();
    fs::write(
        d.join("2_b.up.sql"),
        "-- migrations:lock-timeout=3s\n-- migrations:no-transaction\nCREATE TABLE ${t} (x int);\n",
    )
    .unwrap();
    fs::write(d.join("3_c.up.sql"), "-- nothing yet\n").unwrap();
    fs::write(
        d.join("R__v.sql"),
        "CREATE OR REPLACE VIEW v AS SELECT 1;\n",
    )
    .unwrap();
    dir
}

/// Edits `path` to `text` (of the same length) and puts its modification time back: what a
/// `touch -d` after an edit, or a tool that preserves times, leaves.
fn edit_keeping_mtime(path: &Path, text: &str) {
    let before = fs::metadata(path).unwrap();
    assert_eq!(before.len() as usize, text.len(), "the edit keeps the size");
    fs::write(path, text).unwrap();
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(before.modified().unwrap()).unwrap();
    let after = fs::metadata(path).unwrap();
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());
    assert_eq!(after.len(), before.len());
}

#[test]
fn a_heads_only_load_gives_what_a_full_load_gives_but_the_text() {
    let dir = project();
    let cache = tempfile::tempdir().unwrap();
    let file = cache_file_for(dir.path(), cache.path()).unwrap();
    let full = load_dir(dir.path()).unwrap();
    // Cold (everything read and recorded), then served from the cache.
    for run in 0..2 {
        let h = heads(dir.path(), &file, Duration::from_secs(5));
        assert_eq!(summary(&h), summary(&full), "run {run}");
        assert!(h.migrations.iter().all(|m| m.up.text.is_empty()));
        assert!(h.migrations.iter().all(|m| m.up.statements.is_empty()));
    }
    assert!(file.is_file(), "the cache is written");
    // The cache lives outside the migrations directory, under the cache home.
    assert!(file.starts_with(cache.path().join("migrations")));
    assert!(fs::read_dir(dir.path()).unwrap().all(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".sql")));
}

#[test]
fn an_edit_of_the_same_size_with_its_mtime_put_back_is_seen() {
    let dir = project();
    let cache = tempfile::tempdir().unwrap();
    let file = cache_file_for(dir.path(), cache.path()).unwrap();
    let later = Duration::from_secs(5);
    heads(dir.path(), &file, later);
    let before = summary(&heads(dir.path(), &file, later));
    edit_keeping_mtime(&dir.path().join("1_a.up.sql"), "CREATE TABLE b (x int);\n");
    let after = heads(dir.path(), &file, later);
    assert_eq!(summary(&after), summary(&load_dir(dir.path()).unwrap()));
    assert_ne!(summary(&after)[0].1, before[0].1, "the new checksum");
}

#[test]
fn a_file_replaced_by_a_rename_is_seen() {
    let dir = project();
    let cache = tempfile::tempdir().unwrap();
    let file = cache_file_for(dir.path(), cache.path()).unwrap();
    let later = Duration::from_secs(5);
    heads(dir.path(), &file, later);
    let target = dir.path().join("1_a.down.sql");
    let old = fs::metadata(&target).unwrap();
    // Same size, same modification time, written elsewhere and moved over it (an editor's
    // save, a `git checkout`).
    let tmp = dir.path().join(".swap");
    fs::write(&tmp, "DROP TABLE b;\n").unwrap();
    fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(old.modified().unwrap())
        .unwrap();
    fs::rename(&tmp, &target).unwrap();
    let after = heads(dir.path(), &file, later);
    assert_eq!(summary(&after), summary(&load_dir(dir.path()).unwrap()));
}

#[test]
fn an_edit_right_after_the_cache_was_written_is_seen() {
    let dir = project();
    let cache = tempfile::tempdir().unwrap();
    let file = cache_file_for(dir.path(), cache.path()).unwrap();
    // Loads at the real time: the files changed within the racy margin of the read.
    heads(dir.path(), &file, Duration::ZERO);
    edit_keeping_mtime(&dir.path().join("1_a.up.sql"), "CREATE TABLE c (x int);\n");
    let after = heads(dir.path(), &file, Duration::ZERO);
    assert_eq!(summary(&after), summary(&load_dir(dir.path()).unwrap()));
    // And a file added or removed is seen: the scan always runs.
    fs::remove_file(dir.path().join("3_c.up.sql")).unwrap();
    fs::write(dir.path().join("4_d.up.sql"), "SELECT 1;\n").unwrap();
    let after = heads(dir.path(), &file, Duration::from_secs(5));
    assert_eq!(summary(&after), summary(&load_dir(dir.path()).unwrap()));
}

#[test]
fn a_torn_or_foreign_cache_is_ignored() {
    let dir = project();
    let cache = tempfile::tempdir().unwrap();
    let file = cache_file_for(dir.path(), cache.path()).unwrap();
    let full = summary(&load_dir(dir.path()).unwrap());
    heads(dir.path(), &file, Duration::from_secs(5));
    let text = fs::read_to_string(&file).unwrap();
    let real = full[0].1.clone();
    let forged = "0".repeat(64);
    for bad in [
        // A checksum changed without its trailing digest: not trusted.
        text.replacen(&real, &forged, 1),
        text[..text.len() / 2].to_owned(),
        text.replacen("migrations-cache 1 ", "migrations-cache 9 ", 1),
        "garbage".to_owned(),
    ] {
        fs::write(&file, &bad).unwrap();
        assert_eq!(
            summary(&heads(dir.path(), &file, Duration::from_secs(5))),
            full
        );
    }
    // A cache that cannot be written (its directory is a file) is silently not written.
    let blocked = cache.path().join("blocked");
    fs::write(&blocked, "").unwrap();
    let h = heads(dir.path(), &blocked.join("c"), Duration::from_secs(5));
    assert_eq!(summary(&h), full);
}
