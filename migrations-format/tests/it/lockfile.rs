//! The lock file (`migrations.lock`): format, round trip, every finding kind of `verify`,
//! `append`, `rewrite`, and the messages for a damaged file.

use std::fs;
use std::path::{Path, PathBuf};

use migrations_format::lockfile::{self, HEADER};
use migrations_format::{
    load_dir, Checksum, Directory, FindingKind, LockFile, LockProblem, RewriteError, Version,
    LOCK_FILE,
};

/// A scratch migrations directory.
struct Scratch {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Scratch {
    fn new(files: &[(&str, &str)]) -> Scratch {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("migrations");
        fs::create_dir(&root).unwrap();
        let scratch = Scratch { _tmp: tmp, root };
        for (path, text) in files {
            scratch.write(path, text);
        }
        scratch
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn remove(&self, path: &str) {
        fs::remove_file(self.root.join(path)).unwrap();
    }

    fn load(&self) -> Directory {
        load_dir(&self.root).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Locks the directory as it is now.
    fn lock(&self) -> LockFile {
        lockfile::append(&LockFile::default(), &self.load())
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }
}

/// Three migrations: flat with a down, diesel's folder layout with dashes in the version, a
/// name with spaces and no down, and a no-transaction one.
fn three() -> Scratch {
    Scratch::new(&[
        ("1_create_users.up.sql", "CREATE TABLE users (id bigint);\n"),
        ("1_create_users.down.sql", "DROP TABLE users;\n"),
        (
            "2019-02-26-002946_Add email to users/up.sql",
            "ALTER TABLE users ADD COLUMN email text;\n",
        ),
        (
            "2019-03-01-101010_index_email.up.sql",
            "-- migrations:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_email \
             ON users (email);\n",
        ),
        (
            "2019-03-01-101010_index_email.down.sql",
            "DROP INDEX IF EXISTS users_email;\n",
        ),
    ])
}

fn sha(text: &str) -> String {
    Checksum::of_file_text(text).to_hex()
}

fn kinds(findings: &[migrations_format::Finding]) -> Vec<FindingKind> {
    findings.iter().map(|f| f.kind).collect()
}

#[test]
fn render_writes_the_documented_format() {
    let s = three();
    let text = lockfile::render(&s.lock());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], HEADER);
    assert!(HEADER.starts_with("# migrations.lock v1 "));
    assert!(text.ends_with('\n'));

    // Each line: version as spelled, name, mode, up, down (or -), chain; the chain covers the
    // previous chain hash and the line up to its chain hash.
    let first = format!(
        "1 create_users tx {} {}",
        sha("CREATE TABLE users (id bigint);\n"),
        sha("DROP TABLE users;\n")
    );
    let chain1 = Checksum::of_normalized(&format!("\n{first}")).to_hex();
    assert_eq!(lines[1], format!("{first} {chain1}"));

    let second = format!(
        "2019-02-26-002946 Add email to users tx {} -",
        sha("ALTER TABLE users ADD COLUMN email text;\n")
    );
    let chain2 = Checksum::of_normalized(&format!("{chain1}\n{second}")).to_hex();
    assert_eq!(lines[2], format!("{second} {chain2}"));

    assert!(
        lines[3].starts_with("2019-03-01-101010 index_email notx "),
        "{}",
        lines[3]
    );
}

#[test]
fn round_trip() {
    let s = three();
    let lock = s.lock();
    let text = lockfile::render(&lock);
    let parsed = lockfile::parse(&text).unwrap();
    assert_eq!(parsed, lock);
    assert_eq!(lockfile::render(&parsed), text);
    assert_eq!(
        parsed.entries.iter().map(|e| e.line).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    let names: Vec<&str> = parsed.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["create_users", "Add email to users", "index_email"]);
    assert_eq!(parsed.entries[1].version.spelling(), "2019-02-26-002946");
    assert_eq!(parsed.entries[1].down, None);
    assert!(parsed.entries[2].no_transaction);
    assert_eq!(parsed.entries[2].mode(), "notx");

    // The directory matches its own lock.
    assert!(lockfile::verify(&parsed, &s.load()).is_empty());

    // An empty lock (header only) round-trips too.
    let empty = lockfile::render(&LockFile::default());
    assert_eq!(empty, format!("{HEADER}\n"));
    assert_eq!(lockfile::parse(&empty).unwrap(), LockFile::default());
}

#[test]
fn parse_accepts_crlf_bom_blank_lines_and_comments() {
    let s = three();
    let text = lockfile::render(&s.lock());
    let lock = lockfile::parse(&text).unwrap();

    let crlf = format!("\u{feff}{}", text.replace('\n', "\r\n"));
    assert_eq!(lockfile::parse(&crlf).unwrap(), lock);

    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(2, "");
    lines.insert(3, "# a comment");
    let spaced = lines.join("\n");
    let parsed = lockfile::parse(&spaced).unwrap();
    assert_eq!(parsed.entries.len(), 3);
    // Lines are where they are in the file.
    assert_eq!(
        parsed.entries.iter().map(|e| e.line).collect::<Vec<_>>(),
        [2, 5, 6]
    );
    assert!(lockfile::verify(&parsed, &s.load()).is_empty());
}

#[test]
fn edited_up() {
    let s = three();
    let lock = s.lock();
    let old = lock.entries[0].up;
    s.write(
        "1_create_users.up.sql",
        "CREATE TABLE users (id bigint, name text);\n",
    );
    let findings = lockfile::verify(&lock, &s.load());
    assert_eq!(kinds(&findings), [FindingKind::EditedUp]);
    let f = &findings[0];
    assert_eq!(f.version.spelling(), "1");
    assert_eq!(f.name, "create_users");
    assert_eq!(f.file, s.path("1_create_users.up.sql"));
    assert_eq!(f.line, None);
    assert_eq!(f.lock_file, s.path(LOCK_FILE));
    assert_eq!(f.lock_line, Some(2));
    assert_eq!(f.locked, Some(old));
    let new = Checksum::of_file_text("CREATE TABLE users (id bigint, name text);\n");
    assert_eq!(f.current, Some(new));
    assert!(f.is_error());
    assert!(f.message.contains(&old.to_hex()), "{}", f.message);
    assert!(f.message.contains(&new.to_hex()), "{}", f.message);
    assert!(f.to_string().starts_with(&format!(
        "{}: locked migration 1 (create_users) was edited",
        s.path("1_create_users.up.sql").display()
    )));

    // Line endings and a BOM are not an edit: the checksum is over the normalised text.
    s.write(
        "1_create_users.up.sql",
        "\u{feff}CREATE TABLE users (id bigint);\r\n",
    );
    assert!(lockfile::verify(&lock, &s.load()).is_empty());
}

#[test]
fn edited_down_is_its_own_kind() {
    let s = three();
    let lock = s.lock();

    // Edited.
    s.write("1_create_users.down.sql", "DROP TABLE IF EXISTS users;\n");
    let findings = lockfile::verify(&lock, &s.load());
    assert_eq!(kinds(&findings), [FindingKind::EditedDown]);
    assert_eq!(findings[0].file, s.path("1_create_users.down.sql"));
    assert_eq!(
        findings[0].locked,
        Some(Checksum::of_file_text("DROP TABLE users;\n"))
    );
    assert_eq!(
        findings[0].current,
        Some(Checksum::of_file_text("DROP TABLE IF EXISTS users;\n"))
    );
    assert!(
        findings[0].message.contains("--rewrite 1"),
        "{}",
        findings[0].message
    );

    // Added where there was none.
    s.write(
        "2019-02-26-002946_Add email to users/down.sql",
        "ALTER TABLE users DROP COLUMN email;\n",
    );
    let findings = lockfile::verify(&lock, &s.load());
    assert_eq!(
        kinds(&findings),
        [FindingKind::EditedDown, FindingKind::EditedDown]
    );
    assert_eq!(findings[1].locked, None);
    assert!(findings[1].current.is_some());
    assert!(
        findings[1].message.contains("a down file was added"),
        "{}",
        findings[1].message
    );

    // Removed.
    s.remove("2019-03-01-101010_index_email.down.sql");
    let findings = lockfile::verify(&lock, &s.load());
    let f = findings.last().unwrap();
    assert_eq!(f.kind, FindingKind::EditedDown);
    assert!(f.locked.is_some());
    assert_eq!(f.current, None);
    // With no down file left, the annotation points at the up file.
    assert_eq!(f.file, s.path("2019-03-01-101010_index_email.up.sql"));
    assert!(
        f.message.contains("its down file was removed"),
        "{}",
        f.message
    );
}

#[test]
fn mode_changed() {
    let s = three();
    let lock = s.lock();
    // diesel's metadata.toml flips the mode without touching the SQL.
    s.write(
        "2019-02-26-002946_Add email to users/metadata.toml",
        "run_in_transaction = false\n",
    );
    let findings = lockfile::verify(&lock, &s.load());
    assert_eq!(kinds(&findings), [FindingKind::ModeChanged]);
    let f = &findings[0];
    assert_eq!(f.version.spelling(), "2019-02-26-002946");
    assert_eq!(f.name, "Add email to users");
    assert_eq!(f.lock_line, Some(3));
    assert!(
        f.message.contains("now runs outside a transaction (notx)"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains(
            "remove the `-- migrations:no-transaction` directive (or diesel's \
             `run_in_transaction = false` in metadata.toml) that was added"
        ),
        "{}",
        f.message
    );

    // The other way: a no-transaction migration loses its directive.
    let lock = s.lock();
    s.write(
        "2019-02-26-002946_Add email to users/metadata.toml",
        "run_in_transaction = true\n",
    );
    let findings = lockfile::verify(&lock, &s.load());
    assert_eq!(kinds(&findings), [FindingKind::ModeChanged]);
    assert!(
        findings[0]
            .message
            .contains("now runs in a transaction (tx)")
            && findings[0]
                .message
                .contains("put back the `-- migrations:no-transaction`"),
        "{}",
        findings[0].message
    );
}

#[test]
fn renamed() {
    let s = three();
    let lock = s.lock();
    s.remove("1_create_users.up.sql");
    s.remove("1_create_users.down.sql");
    s.write(
        "1_create_accounts.up.sql",
        "CREATE TABLE users (id bigint);\n",
    );
    s.write("1_create_accounts.down.sql", "DROP TABLE users;\n");
    let findings = lockfile::verify(&lock, &s.load());
    assert_eq!(kinds(&findings), [FindingKind::Renamed]);
    assert_eq!(findings[0].name, "create_accounts");
    assert!(
        findings[0].message.contains("`1_create_users`"),
        "{}",
        findings[0].message
    );
}

#[test]
fn removed() {
    let s = three();
    let lock = s.lock();
    s.remove("2019-02-26-002946_Add email to users/up.sql");
    fs::remove_dir(s.path("2019-02-26-002946_Add email to users")).unwrap();
    let findings = lockfile::verify(&lock, &s.load());
    assert_eq!(kinds(&findings), [FindingKind::Removed]);
    let f = &findings[0];
    assert_eq!(f.version.spelling(), "2019-02-26-002946");
    assert_eq!(f.name, "Add email to users");
    // Nothing left to point at but the lock file's line.
    assert_eq!(f.file, s.path(LOCK_FILE));
    assert_eq!(f.line, Some(3));
    assert_eq!(f.lock_line, Some(3));
    assert_eq!(
        f.to_string(),
        format!(
            "{}:3: locked migration 2019-02-26-002946 (Add email to users) is missing from the \
             migrations directory: restore it from version control (a released migration \
             stays; undo it with a new migration); if it was never applied anywhere, drop it \
             from the lock with `migrations lock --rewrite 2019-02-26-002946`",
            s.path(LOCK_FILE).display()
        )
    );
}

#[test]
fn inserted_and_unlocked() {
    let s = three();
    let lock = s.lock();
    // Below the newest locked version: inserted. Above: unlocked (allowed).
    s.write("2_seed.up.sql", "INSERT INTO users VALUES (1);\n");
    s.write("2026-07-30-140000_new.up.sql", "SELECT 1;\n");
    let findings = lockfile::verify(&lock, &s.load());
    assert_eq!(
        kinds(&findings),
        [FindingKind::Inserted, FindingKind::Unlocked]
    );
    let (inserted, unlocked) = (&findings[0], &findings[1]);
    assert_eq!(inserted.version.spelling(), "2");
    assert_eq!(inserted.file, s.path("2_seed.up.sql"));
    assert_eq!(inserted.lock_line, None);
    assert!(inserted.is_error());
    assert!(
        inserted
            .message
            .contains("older than the newest locked migration 2019-03-01-101010"),
        "{}",
        inserted.message
    );
    assert_eq!(unlocked.version.spelling(), "2026-07-30-140000");
    assert!(!unlocked.is_error());

    // Every migration of a directory without a lock is unlocked.
    let findings = lockfile::verify(&LockFile::default(), &s.load());
    assert!(findings.iter().all(|f| f.kind == FindingKind::Unlocked));
    assert_eq!(findings.len(), 5);
}

#[test]
fn broken_chain() {
    let s = three();
    let text = lockfile::render(&s.lock());

    // Someone edits a migration and "fixes" its checksum in the lock by hand.
    let edited = "CREATE TABLE users (id bigint NOT NULL);\n";
    s.write("1_create_users.up.sql", edited);
    let hand_edited = text.replace(&sha("CREATE TABLE users (id bigint);\n"), &sha(edited));
    let lock = lockfile::parse(&hand_edited).unwrap();
    let findings = lockfile::verify(&lock, &s.load());
    // Only the edited line is broken: the next line chains from the hash written above it.
    assert_eq!(kinds(&findings), [FindingKind::BrokenChain]);
    assert_eq!(findings[0].file, s.path(LOCK_FILE));
    assert_eq!(findings[0].line, Some(2));
    assert_eq!(findings[0].version.spelling(), "1");

    // A merge resolved by keeping both sides: two lines chained from the same predecessor.
    let s = three();
    let base = s.lock();
    s.write("2026-01-01-000000_a.up.sql", "SELECT 1;\n");
    let a = lockfile::append(&base, &s.load());
    s.remove("2026-01-01-000000_a.up.sql");
    s.write("2026-02-02-000000_b.up.sql", "SELECT 2;\n");
    let b = lockfile::append(&base, &s.load());
    let mut both = lockfile::render(&a);
    both.push_str(lockfile::render(&b).lines().last().unwrap());
    both.push('\n');
    s.write("2026-01-01-000000_a.up.sql", "SELECT 1;\n");
    let lock = lockfile::parse(&both).unwrap();
    let findings = lockfile::verify(&lock, &s.load());
    assert_eq!(kinds(&findings), [FindingKind::BrokenChain]);
    assert_eq!(findings[0].version.spelling(), "2026-02-02-000000");
    assert_eq!(findings[0].line, Some(6));
}

#[test]
fn append_adds_only_newer_migrations() {
    let s = three();
    let lock = s.lock();
    // Nothing new: unchanged.
    assert_eq!(lockfile::append(&lock, &s.load()), lock);

    s.write("2_seed.up.sql", "INSERT INTO users VALUES (1);\n");
    s.write("2026-07-30-140000_new.up.sql", "SELECT 1;\n");
    let appended = lockfile::append(&lock, &s.load());
    // The old lines are kept as they were: the text only grows.
    let before = lockfile::render(&lock);
    let after = lockfile::render(&appended);
    assert!(after.starts_with(&before), "{after}");
    let versions: Vec<&str> = appended
        .entries
        .iter()
        .map(|e| e.version.spelling())
        .collect();
    // `2_seed` is below the newest locked version: never inserted by append.
    assert_eq!(
        versions,
        [
            "1",
            "2019-02-26-002946",
            "2019-03-01-101010",
            "2026-07-30-140000"
        ]
    );
    assert_eq!(appended.entries[3].line, 5);
    let findings = lockfile::verify(&appended, &s.load());
    assert_eq!(kinds(&findings), [FindingKind::Inserted]);

    // Locked entries are kept even where the directory disagrees: verify reports those.
    s.write("1_create_users.up.sql", "SELECT 'edited';\n");
    let again = lockfile::append(&appended, &s.load());
    assert_eq!(again, appended);
}

#[test]
fn rewrite_accepts_one_deliberate_change() {
    let s = three();
    let lock = s.lock();
    s.write("1_create_users.down.sql", "DROP TABLE IF EXISTS users;\n");
    assert_eq!(
        kinds(&lockfile::verify(&lock, &s.load())),
        [FindingKind::EditedDown]
    );

    // Versions match by value: the digits name the same migration as the spelling.
    let v1 = Version::parse("1").unwrap();
    let rewritten = lockfile::rewrite(&lock, &s.load(), &v1).unwrap();
    assert!(lockfile::verify(&rewritten, &s.load()).is_empty());
    assert_eq!(
        rewritten.entries[0].down,
        Some(Checksum::of_file_text("DROP TABLE IF EXISTS users;\n"))
    );
    // The chain is recomputed from the rewritten line on: every chain hash after it changes.
    for (old, new) in lock.entries.iter().zip(&rewritten.entries) {
        assert_ne!(old.chain, new.chain);
    }
    // And a file written from it parses and verifies clean.
    let text = lockfile::render(&rewritten);
    assert!(lockfile::verify(&lockfile::parse(&text).unwrap(), &s.load()).is_empty());

    // Lines before the rewritten one are kept as they were.
    s.write(
        "2019-03-01-101010_index_email.down.sql",
        "DROP INDEX users_email;\n",
    );
    let v3 = Version::parse("20190301101010").unwrap();
    let last = lockfile::rewrite(&rewritten, &s.load(), &v3).unwrap();
    assert_eq!(last.entries[..2], rewritten.entries[..2]);
    assert_ne!(last.entries[2].chain, rewritten.entries[2].chain);
    assert!(lockfile::verify(&last, &s.load()).is_empty());
}

#[test]
fn rewrite_accepts_an_insertion_or_a_removal() {
    let s = three();
    let lock = s.lock();
    s.write("2_seed.up.sql", "INSERT INTO users VALUES (1);\n");
    let v2 = Version::parse("2").unwrap();
    let inserted = lockfile::rewrite(&lock, &s.load(), &v2).unwrap();
    assert_eq!(inserted.entries[1].version.spelling(), "2");
    assert_eq!(
        inserted.entries.iter().map(|e| e.line).collect::<Vec<_>>(),
        [2, 3, 4, 5]
    );
    assert!(lockfile::verify(&inserted, &s.load()).is_empty());

    s.remove("2_seed.up.sql");
    let removed = lockfile::rewrite(&inserted, &s.load(), &v2).unwrap();
    assert!(lockfile::verify(&removed, &s.load()).is_empty());
    assert_eq!(removed, lock);

    // Neither locked nor in the directory.
    let v9 = Version::parse("9").unwrap();
    let err = lockfile::rewrite(&lock, &s.load(), &v9).unwrap_err();
    assert_eq!(err, RewriteError::NotFound("9".to_owned()));
    assert_eq!(
        err.to_string(),
        "version 9 is neither locked nor in the migrations directory; check the version \
         (`migrations status` lists them)"
    );
}

#[test]
fn rewrite_repairs_a_broken_chain() {
    let s = three();
    let text = lockfile::render(&s.lock());
    let edited = "CREATE TABLE users (id bigint NOT NULL);\n";
    s.write("1_create_users.up.sql", edited);
    let hand_edited = text.replace(&sha("CREATE TABLE users (id bigint);\n"), &sha(edited));
    let lock = lockfile::parse(&hand_edited).unwrap();
    let fixed = lockfile::rewrite(&lock, &s.load(), &Version::parse("1").unwrap()).unwrap();
    assert!(lockfile::verify(&fixed, &s.load()).is_empty());
}

const RESTORE: &str = "restore the file from version control (`git checkout -- migrations.lock`), \
                       then run `migrations lock`";

fn problems(text: &str) -> Vec<LockProblem> {
    lockfile::parse(text).unwrap_err().problems
}

fn problem(line: u32, message: &str) -> LockProblem {
    LockProblem {
        line,
        message: message.to_owned(),
    }
}

#[test]
fn malformed_lines_are_all_reported_with_what_to_do() {
    let s = three();
    let text = lockfile::render(&s.lock());
    let good: Vec<String> = text.lines().map(str::to_owned).collect();
    let field = |line: &str, i: usize, value: &str| {
        let mut fields: Vec<&str> = line.split(' ').collect();
        fields[i] = value;
        fields.join(" ")
    };
    let damaged = [
        good[0].clone(),
        field(&good[1], 2, "transaction"),
        field(&good[1], 3, "abc"),
        "7 lonely".to_owned(),
        field(&good[1], 0, "2x"),
        field(&good[1], 4, &"g".repeat(64)),
        field(&good[1], 5, "-"),
        good[2].clone(),
        good[2].clone(),
        good[1].clone(),
    ]
    .join("\n");
    let err = lockfile::parse(&damaged).unwrap_err();
    assert_eq!(
        err.problems,
        [
            problem(
                2,
                &format!(
                    "the transaction mode is `transaction`, expected `tx` or `notx`; {RESTORE}"
                )
            ),
            problem(
                3,
                &format!("the up checksum is `abc`, expected 64 hex digits; {RESTORE}")
            ),
            problem(
                4,
                &format!(
                    "expected `<version> <name> <tx|notx> <up sha256> <down sha256 or -> <chain \
                     sha256>`, found `7 lonely`; {RESTORE}"
                )
            ),
            problem(
                5,
                &format!(
                    "bad version or name: the version `2x` may hold only digits and single `-` \
                     separators between digits; {RESTORE}"
                )
            ),
            problem(
                6,
                &format!(
                    "the down checksum (or `-`) is `{}`, expected 64 hex digits; {RESTORE}",
                    "g".repeat(60) + "..."
                )
            ),
            problem(
                7,
                &format!("the chain hash is `-`, expected 64 hex digits; {RESTORE}")
            ),
            problem(
                9,
                &format!("version 2019-02-26-002946 is locked twice (also on line 8); {RESTORE}")
            ),
            problem(
                10,
                &format!(
                    "version 1 is out of order: it sorts before 2019-02-26-002946 on line 8, and \
                     lines must be in version order; {RESTORE}"
                )
            ),
        ]
    );
    // Displayed one problem a line, as `migrations.lock:<line>: ...`.
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), 8);
    assert!(shown.starts_with("migrations.lock:2: the transaction mode is `transaction`"));
    let located = err.located(Path::new("db/migrations/migrations.lock"));
    assert!(
        located[0].starts_with("db/migrations/migrations.lock:2: "),
        "{}",
        located[0]
    );
}

#[test]
fn malformed_header() {
    assert_eq!(
        problems(""),
        [problem(
            1,
            &format!(
                "the file is empty: expected the header `# migrations.lock v1 ...`; {RESTORE}"
            )
        )]
    );
    assert_eq!(
        problems("1 a tx\n"),
        [problem(
            1,
            &format!(
                "expected the header `# migrations.lock v1 ...` on the first line, found `1 a \
                 tx`; {RESTORE}"
            )
        )]
    );
    assert_eq!(
        problems("# migrations.lock v2 - from the future\n"),
        [problem(
            1,
            "the lock file has format v2, newer than this build reads (v1); upgrade migrations"
        )]
    );
    assert_eq!(
        problems("# migrations.lock v0\n"),
        [problem(
            1,
            &format!("unknown lock file format v0 (this build reads v1); {RESTORE}")
        )]
    );
    assert_eq!(
        problems("# migrations.lock vx\n"),
        [problem(
            1,
            &format!(
                "the header names no format version (expected `# migrations.lock v1`); {RESTORE}"
            )
        )]
    );
    // The header alone is an empty lock, with or without its trailing text or newline.
    assert!(lockfile::parse("# migrations.lock v1")
        .unwrap()
        .entries
        .is_empty());
}

#[test]
fn merge_conflict_markers() {
    let s = three();
    let text = lockfile::render(&s.lock());
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(3, "<<<<<<< HEAD");
    lines.insert(5, "=======");
    lines.push(">>>>>>> feature");
    let conflicted = lines.join("\n");
    let problems = problems(&conflicted);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, 4);
    assert!(
        problems[0]
            .message
            .starts_with("unresolved git merge conflict: two branches both locked new migrations"),
        "{}",
        problems[0].message
    );
}

/// Damage never goes unnoticed: every prefix and every single-character deletion of a good
/// lock file either fails to parse (each problem on a real line, with the way to restore the
/// file), or parses to the very same entries (a harmless change, such as the last newline), or
/// parses to entries that `verify` finds wrong against the directory.
#[test]
fn damage_is_reported_or_harmless() {
    let s = three();
    let lock = s.lock();
    let text = lockfile::render(&lock);
    let directory = s.load();
    let line_count = u32::try_from(text.lines().count()).unwrap() + 1;
    let (mut refused, mut caught_by_verify, mut harmless) = (0, 0, 0);
    let mut check = |damaged: &str, what: &str| match lockfile::parse(damaged) {
        Err(e) => {
            assert!(!e.problems.is_empty(), "{what}: an error without problems");
            for p in &e.problems {
                assert!(
                    (1..=line_count).contains(&p.line),
                    "{what}: problem on line {} of {line_count}: {p}",
                    p.line
                );
                assert!(!p.message.trim().is_empty(), "{what}: empty message");
            }
            refused += 1;
        }
        Ok(parsed) if parsed.entries == lock.entries => harmless += 1,
        Ok(parsed) => {
            assert!(
                !lockfile::verify(&parsed, &directory).is_empty(),
                "{what}: damaged entries pass verify unnoticed:\n{damaged}"
            );
            caught_by_verify += 1;
        }
    };
    for (i, c) in text.char_indices() {
        check(&text[..i], &format!("prefix of {i} bytes"));
        let mut deleted = text.clone();
        deleted.remove(i);
        check(&deleted, &format!("deletion of {c:?} at byte {i}"));
    }
    // Most damage is refused by the parser itself; a truncation that ends at a line end is
    // a lock with fewer entries, which verify reports as unlocked migrations.
    assert!(
        refused > text.len(),
        "{refused} refused of {}",
        2 * text.len()
    );
    assert!(
        caught_by_verify > 0 && harmless > 0,
        "{caught_by_verify} {harmless}"
    );

    for noise in [
        "\u{0}",
        "# migrations.lock v99999999999999999999",
        "# migrations.lock v1\n1",
        "# migrations.lock v1\n1 ",
        "# migrations.lock v1\n1 a b c d e f g h",
        "# migrations.lock v1\n999999999999999999999 a tx - - -",
        "# migrations.lock v1\né é é é é é",
        "# migrations.lock v1\n1 \u{7} tx - - -",
    ] {
        let e = lockfile::parse(noise).expect_err(noise);
        assert!(
            e.problems
                .iter()
                .all(|p| p.message.contains("git checkout")),
            "{noise:?}: {e}"
        );
    }
    // Blank lines after the header are allowed: an empty lock.
    let blank = lockfile::parse("# migrations.lock v1\n \n  \n").unwrap();
    assert!(blank.entries.is_empty());
}

#[test]
fn findings_render_as_github_annotations() {
    let s = three();
    let lock = s.lock();
    fs::remove_dir_all(s.path("2019-02-26-002946_Add email to users")).unwrap();
    s.write("2026-07-30-140000_new.up.sql", "SELECT 1;\n");
    let findings = lockfile::verify(&lock, &s.load());
    assert_eq!(
        kinds(&findings),
        [FindingKind::Removed, FindingKind::Unlocked]
    );
    let removed = findings[0].github_annotation();
    assert!(
        removed.starts_with(&format!(
            "::error file={},line=3,title=migrations.lock%3A removed::locked migration",
            s.path(LOCK_FILE).display().to_string().replace(':', "%3A")
        )),
        "{removed}"
    );
    assert!(!removed.contains('\n'));
    assert!(findings[1]
        .github_annotation()
        .starts_with("::warning file="));
    assert_eq!(FindingKind::EditedDown.id(), "edited-down");
}

/// Repeatables are recorded after the chain, as `# repeatable` lines (comments to older
/// readers); a changed one is no finding, and `append` records its new checksum.
#[test]
fn repeatables_are_recorded_outside_the_chain() {
    let s = three();
    s.write("R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 1;\n");
    let lock = s.lock();
    let text = lockfile::render(&lock);
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "# repeatable {} views",
            sha("CREATE OR REPLACE VIEW v AS SELECT 1;\n")
        )
    );
    assert_eq!(lockfile::parse(&text).unwrap(), lock);
    // The chain of the versioned entries is what it is without the repeatable.
    s.remove("R__views.sql");
    assert_eq!(s.lock().entries, lock.entries);
    s.write("R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 2;\n");
    let dir = s.load();
    assert!(lockfile::verify(&lock, &dir).is_empty());
    assert_eq!(
        lockfile::repeatable_changes(&lock, &dir),
        ["repeatable views: changed"]
    );
    let relocked = lockfile::append(&lock, &dir);
    assert_eq!(relocked.entries, lock.entries);
    assert!(lockfile::repeatable_changes(&relocked, &dir).is_empty());
    let e = lockfile::parse(&format!("{HEADER}\n# repeatable nothex views\n")).unwrap_err();
    assert_eq!(e.problems[0].line, 2);
}
