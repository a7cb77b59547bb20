//! `migrations.lock` in real git: two branches that each lock a new migration conflict when
//! the second is merged, and each way of resolving that conflict is judged right by `verify`.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use migrations_format::lockfile::{self, FindingKind};
use migrations_format::{load_dir, LockFile, LOCK_FILE};

/// A scratch git repository holding `migrations/`.
struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().to_path_buf();
        let repo = Repo { _tmp: tmp, root };
        repo.ok(&["init", "--quiet"]);
        // Whatever the machine's default, the first branch is `main`.
        repo.ok(&["symbolic-ref", "HEAD", "refs/heads/main"]);
        repo
    }

    /// Runs git with a fixed identity, independent of the user's configuration.
    fn git(&self, args: &[&str]) -> Output {
        Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "merge.conflictstyle=merge",
            ])
            .args(args)
            .current_dir(&self.root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("LC_ALL", "C")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .expect("run git (it must be installed)")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.git(args);
        assert!(
            out.status.success(),
            "git {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn dir(&self) -> PathBuf {
        self.root.join("migrations")
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.dir().join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn lock_text(&self) -> String {
        fs::read_to_string(self.dir().join(LOCK_FILE)).unwrap_or_default()
    }

    /// What `migrations lock` does: reads the lock (if any), appends, writes.
    fn lock(&self) {
        let directory = load_dir(&self.dir()).unwrap_or_else(|e| panic!("{e}"));
        let text = self.lock_text();
        let lock = if text.is_empty() {
            LockFile::default()
        } else {
            lockfile::parse(&text).unwrap_or_else(|e| panic!("{e}"))
        };
        let lock = lockfile::append(&lock, &directory);
        fs::write(self.dir().join(LOCK_FILE), lockfile::render(&lock)).unwrap();
    }

    /// What `migrations verify` reports.
    fn verify(&self) -> Vec<FindingKind> {
        let directory = load_dir(&self.dir()).unwrap_or_else(|e| panic!("{e}"));
        let lock = lockfile::parse(&self.lock_text()).unwrap_or_else(|e| panic!("{e}"));
        lockfile::verify(&lock, &directory)
            .iter()
            .map(|f| f.kind)
            .collect()
    }

    fn commit_all(&self, message: &str) {
        self.ok(&["add", "--all"]);
        self.ok(&["commit", "--quiet", "-m", message]);
    }
}

/// `main` with two locked migrations, and two branches from it that each add and lock one
/// migration: `a` adds `version_a`, `b` adds `version_b`.
fn diverged(version_a: &str, version_b: &str) -> Repo {
    let repo = Repo::new();
    repo.write(
        "2026-01-01-000000_create_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    repo.write(
        "2026-01-01-000000_create_users.down.sql",
        "DROP TABLE users;\n",
    );
    repo.write(
        "2026-01-02-000000_add_email.up.sql",
        "ALTER TABLE users ADD COLUMN email text;\n",
    );
    repo.lock();
    repo.commit_all("two migrations, locked");

    for (branch, version, sql) in [
        (
            "a",
            version_a,
            "CREATE INDEX users_email ON users (email);\n",
        ),
        ("b", version_b, "ALTER TABLE users ADD COLUMN name text;\n"),
    ] {
        repo.ok(&["checkout", "--quiet", "-b", branch, "main"]);
        repo.write(&format!("{version}_from_{branch}.up.sql"), sql);
        repo.lock();
        assert_eq!(repo.verify(), [], "branch {branch} is consistent");
        repo.commit_all(&format!("branch {branch}: one more migration"));
    }
    repo.ok(&["checkout", "--quiet", "main"]);
    repo
}

/// Merges `a` into main (clean), then `b`: the second merge must conflict in the lock file.
fn merge_both(repo: &Repo) {
    repo.ok(&["merge", "--quiet", "--no-edit", "a"]);
    assert_eq!(repo.verify(), []);

    let out = repo.git(&["merge", "--no-edit", "b"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "the second merge must fail:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("CONFLICT (content): Merge conflict in migrations/migrations.lock"),
        "{stdout}"
    );
    let unmerged = repo.ok(&["diff", "--name-only", "--diff-filter=U"]);
    assert_eq!(unmerged.trim(), "migrations/migrations.lock");
    // The SQL files themselves merged cleanly: both migrations are in the directory.
    let ups = fs::read_dir(repo.dir())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".up.sql")
        })
        .count();
    assert_eq!(ups, 4);
}

#[test]
fn second_branch_conflicts_in_the_lock_file() {
    let repo = diverged("2026-01-03-000000", "2026-01-04-000000");
    merge_both(&repo);

    // The conflicted file does not parse, and says what to do.
    let err = lockfile::parse(&repo.lock_text()).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert!(
        err.problems[0]
            .message
            .starts_with("unresolved git merge conflict"),
        "{err}"
    );

    // The documented resolution: keep main's lock, then lock again. `b`'s migration is newer
    // than `a`'s, so it is appended after it.
    repo.ok(&["checkout", "--ours", "--", "migrations/migrations.lock"]);
    assert_eq!(repo.verify(), [FindingKind::Unlocked]);
    repo.lock();
    assert_eq!(repo.verify(), []);
    repo.commit_all("merge b");
    let text = repo.lock_text();
    let versions: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|line| line.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        versions,
        [
            "2026-01-01-000000",
            "2026-01-02-000000",
            "2026-01-03-000000",
            "2026-01-04-000000"
        ]
    );
}

#[test]
fn keeping_both_sides_breaks_the_chain() {
    let repo = diverged("2026-01-03-000000", "2026-01-04-000000");
    merge_both(&repo);

    // Resolving by hand, keeping both lines (what a union merge would do): the second line is
    // chained from the same line as the first, and verify says so.
    let resolved: String = repo
        .lock_text()
        .lines()
        .filter(|line| {
            !["<<<<<<<", "=======", ">>>>>>>"]
                .iter()
                .any(|m| line.starts_with(m))
        })
        .map(|line| format!("{line}\n"))
        .collect();
    fs::write(repo.dir().join(LOCK_FILE), resolved).unwrap();
    assert_eq!(repo.verify(), [FindingKind::BrokenChain]);
}

#[test]
fn an_older_migration_merged_late_is_inserted() {
    // `b`'s migration is older than `a`'s: after the merge it would slip in below the newest
    // locked one, and `migrations lock` cannot append it.
    let repo = diverged("2026-01-04-000000", "2026-01-03-000000");
    merge_both(&repo);
    repo.ok(&["checkout", "--ours", "--", "migrations/migrations.lock"]);
    repo.lock();
    assert_eq!(repo.verify(), [FindingKind::Inserted]);

    // The fix: give it a version above the newest locked one, then lock.
    fs::rename(
        repo.dir().join("2026-01-03-000000_from_b.up.sql"),
        repo.dir().join("2026-01-05-000000_from_b.up.sql"),
    )
    .unwrap();
    repo.lock();
    assert_eq!(repo.verify(), []);
}
