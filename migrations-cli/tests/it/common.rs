//! How every test of this crate runs the `migrations` binary: one clean environment, one
//! project directory, one record of a run.
//!
//! The environment is a user's with nothing of the developer's machine in it: no
//! `DATABASE_URL`, no `PG*` variable, no `GITHUB_ACTIONS` (it switches on annotations), no
//! `CLICOLOR_FORCE` or `RUST_BACKTRACE` (they change what is printed), `NO_COLOR=1`,
//! `COLUMNS=100`, `HOME` the project directory (so no `~/.pgpass` or `~/.postgresql/root.crt`
//! of the developer's is read) and stdin closed. A test adds what it is about on top.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use migrations_tests::TestDb;
use serde_json::Value;

/// The binary under test, built by cargo for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_migrations");

/// Variables removed from the binary's environment besides every `PG*` one.
const CLEARED: [&str; 6] = [
    "DATABASE_URL",
    "GITHUB_ACTIONS",
    "CLICOLOR_FORCE",
    "RUST_BACKTRACE",
    // The checksum cache goes under HOME (the project), whatever the developer's machine has.
    "XDG_CACHE_HOME",
    "MIGRATIONS_NO_CACHE",
];

/// The binary, to run in `dir`, with the clean environment described above.
pub fn migrations(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir).stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("PG") || CLEARED.contains(&key.as_str()) {
            command.env_remove(key);
        }
    }
    command
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env("HOME", dir);
    command
}

/// What one run of the binary printed, and how it ended.
pub struct Run {
    /// The arguments it was given, for messages.
    pub args: Vec<String>,
    /// The exit code (SPEC 4), or -1 when a signal ended it.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The process id (the round trip names its scratch databases after it).
    pub pid: u32,
}

impl Run {
    /// Runs `command` to its end, stdout and stderr captured.
    pub fn of(mut command: Command) -> Run {
        let args = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let pid = child.id();
        let out = child.wait_with_output().expect("the binary's output");
        Run {
            args,
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            pid,
        }
    }

    /// Stdout as the one JSON document `--format json` promises.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }

    /// Asserts the exit code, showing the command line and the output when it differs.
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            code,
            "`migrations {}` exited {}\nstdout:\n{}\nstderr:\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts success (exit 0).
    pub fn ok(&self) -> &Run {
        self.expect(0)
    }

    /// Stdout then stderr.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// How a project gives the binary its database.
enum Database {
    None,
    /// In `DATABASE_URL`.
    Env(String),
    /// As `--database-url`, after the other arguments.
    Flag(String),
}

/// A project directory (a temporary one) with a migrations folder, and how the binary reaches
/// its database.
pub struct Project {
    root: tempfile::TempDir,
    /// The migrations folder, relative to the root: `migrations`, or one given to `--dir`.
    dir: String,
    database: Database,
}

impl Project {
    /// A project whose `migrations/` holds `files` (names relative to it); no database.
    pub fn new(files: &[(&str, &str)]) -> Project {
        Project::in_dir("migrations", files)
    }

    /// A project whose migrations live in `dir` (relative to the root), which every run
    /// passes to `--dir` unless it is the default `migrations`.
    pub fn in_dir(dir: &str, files: &[(&str, &str)]) -> Project {
        let project = Project {
            root: tempfile::tempdir().unwrap(),
            dir: dir.to_owned(),
            database: Database::None,
        };
        fs::create_dir_all(project.migrations_dir()).unwrap();
        for (name, text) in files {
            project.write(name, text);
        }
        project
    }

    /// Every run gets `url` in `DATABASE_URL`.
    pub fn url_in_env(mut self, url: &str) -> Project {
        self.database = Database::Env(url.to_owned());
        self
    }

    /// Every run gets `--database-url url` after its arguments.
    pub fn url_as_flag(mut self, url: &str) -> Project {
        self.database = Database::Flag(url.to_owned());
        self
    }

    /// The project's root, where the binary runs.
    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// The migrations folder.
    pub fn migrations_dir(&self) -> PathBuf {
        self.root.path().join(&self.dir)
    }

    /// Writes a file of the migrations folder.
    pub fn write(&self, name: &str, text: &str) {
        write_file(&self.migrations_dir().join(name), text);
    }

    /// Writes a file anywhere in the project (`migrations.toml`, `migrations.lock`, ...).
    pub fn write_file(&self, path: &str, text: &str) {
        write_file(&self.root.path().join(path), text);
    }

    /// Removes a file of the migrations folder.
    pub fn remove(&self, name: &str) {
        fs::remove_file(self.migrations_dir().join(name)).unwrap();
    }

    /// The binary with `args`, in the project, with its database, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.command_without_database(args);
        match &self.database {
            Database::None => {}
            Database::Env(url) => {
                command.env("DATABASE_URL", url);
            }
            Database::Flag(url) => {
                command.args(["--database-url", url]);
            }
        }
        command
    }

    /// The binary with `args`, in the project, given no database.
    fn command_without_database(&self, args: &[&str]) -> Command {
        let mut command = migrations(self.path());
        if self.dir != "migrations" {
            command.args(["--dir", &self.dir]);
        }
        command.args(args);
        command
    }

    /// Runs the binary in the project with its database.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.command(args))
    }

    /// Runs the binary in the project with its database and these variables.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(args);
        command.envs(env.iter().copied());
        Run::of(command)
    }

    /// Runs the binary in the project with these variables and no database of the project's.
    pub fn run_without_database(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command_without_database(args);
        command.envs(env.iter().copied());
        Run::of(command)
    }

    /// Runs with `--database-url url` after `args` (instead of the project's database).
    pub fn with_url(&self, url: &str, args: &[&str]) -> Run {
        let mut command = self.command_without_database(args);
        command.args(["--database-url", url]);
        Run::of(command)
    }

    /// Runs and checks the exit code, showing the output when it differs.
    pub fn expect(&self, args: &[&str], code: i32) -> Run {
        let run = self.run(args);
        run.expect(code);
        run
    }

    /// Starts the binary in the project with its database, stdout and stderr piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs")
    }
}

fn write_file(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// The first column of each row of `sql` (simple protocol, so as text).
pub fn column(db: &TestDb, sql: &str) -> Vec<Option<String>> {
    db.connect()
        .simple_query(sql)
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_owned)),
            _ => None,
        })
        .collect()
}

/// The first column of the first row of `sql`, as text.
pub fn scalar(db: &TestDb, sql: &str) -> Option<String> {
    column(db, sql).into_iter().next().flatten()
}

/// Whether `name` (a relation, optionally schema-qualified) exists.
pub fn table_exists(db: &TestDb, name: &str) -> bool {
    scalar(db, &format!("SELECT to_regclass('{name}') IS NOT NULL")).as_deref() == Some("t")
}
