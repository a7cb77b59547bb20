//! The `migrations` binary under test: where it is, and running it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the `migrations` binary to test (default: built here).
pub const BIN_ENV: &str = "RELIABILITY_MIGRATIONS_BIN";

/// Finds the `migrations` binary: `$RELIABILITY_MIGRATIONS_BIN`, else the one in this
/// executable's target directory and profile, built first (`cargo build -p migrations-cli`,
/// a no-op when it is up to date) so a stale binary is never tested. Once per process.
pub fn migrations_binary() -> Result<PathBuf, String> {
    static BIN: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    BIN.get_or_init(find_or_build).clone()
}

fn find_or_build() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(BIN_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut profile_dir = exe.parent().ok_or("no parent directory")?.to_path_buf();
    if profile_dir.file_name().is_some_and(|n| n == "deps") {
        profile_dir.pop();
    }
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("no profile directory")?
        .to_owned();
    let target_dir = profile_dir.parent().ok_or("no target directory")?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "migrations-cli",
            "--bin",
            "migrations",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let out = build
        .output()
        .map_err(|e| format!("could not run cargo to build the migrations binary: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo build -p migrations-cli` failed ({}); or set {BIN_ENV}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let bin = profile_dir.join("migrations");
    if !bin.is_file() {
        return Err(format!("{} was not built", bin.display()));
    }
    Ok(bin)
}

/// What one run of the binary did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// From the spawn to the exit.
    pub elapsed: Duration,
}

impl Outcome {
    /// Exit code and both outputs in one line, for a report.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}, stdout {:?}, stderr {:?}",
            self.code,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// The binary, with the database URL and directory every run uses.
#[derive(Debug, Clone)]
pub struct Cli {
    /// The `migrations` binary.
    pub bin: PathBuf,
    /// `--database-url`.
    pub url: String,
    /// `--dir`.
    pub dir: PathBuf,
    /// Extra global flags, before the command.
    pub flags: Vec<String>,
}

impl Cli {
    /// The binary `bin` on database `url` with migrations directory `dir`, no extra flags.
    pub fn new(bin: &Path, url: &str, dir: &Path) -> Cli {
        Cli {
            bin: bin.to_path_buf(),
            url: url.to_owned(),
            dir: dir.to_path_buf(),
            flags: Vec::new(),
        }
    }

    /// The command, with a clean environment (no `DATABASE_URL`, no `PG*`), output piped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .arg("--database-url")
            .arg(&self.url)
            .arg("--dir")
            .arg(&self.dir)
            .args(["--color", "never"])
            .args(&self.flags)
            .args(args)
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                command.env_remove(key);
            }
        }
        command
    }

    /// Runs to completion.
    pub fn run(&self, args: &[&str]) -> Outcome {
        let started = Instant::now();
        let child = self
            .command(args)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        wait(child, started)
    }

    /// Starts it and returns at once (to kill it, or to wait with [`wait`]).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
    }
}

/// Waits for a child and collects its output.
pub fn wait(child: Child, started: Instant) -> Outcome {
    let out = child.wait_with_output().expect("waiting for the child");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Sends `SIGKILL` to a child. Returns whether it was still running (the kill landed).
pub fn sigkill(child: &mut Child) -> bool {
    if let Ok(Some(_)) = child.try_wait() {
        return false;
    }
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    rc == 0
}

/// Checks that a failed run said so in one clear line: exit 1 and exactly one line on stderr
/// that starts with `error: ` (others may surround it: warnings before it, the steps done
/// before the error after it), naming each of `mentions` (case-sensitive fragments: a
/// migration's name, a SQLSTATE) and, when given, the migration's version (as a number in
/// the line: `2`, or `002` in a file name). Returns the error line, or what is wrong with
/// the output. The wording around these facts is free: it is not what users rely on.
pub fn clear_error_line(
    outcome: &Outcome,
    version: Option<u32>,
    mentions: &[&str],
) -> Result<String, String> {
    let errors: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|l| l.trim_start().to_ascii_lowercase().starts_with("error"))
        .collect();
    let problem = if outcome.code != Some(1) {
        Some(format!("exit {:?}, expected 1", outcome.code))
    } else if errors.len() != 1 {
        Some(format!("{} error lines, expected 1", errors.len()))
    } else if !errors[0].starts_with("error: ") {
        Some("the error line does not start with `error: `".to_owned())
    } else if let Some(missing) = mentions.iter().find(|m| !errors[0].contains(*m)) {
        Some(format!("the line does not name {missing:?}"))
    } else if version.is_some_and(|v| !mentions_number(errors[0], u64::from(v))) {
        Some(format!(
            "the line does not name version {}",
            version.unwrap_or(0)
        ))
    } else {
        None
    };
    match problem {
        None => Ok(errors[0].to_owned()),
        Some(p) => Err(format!(
            "unclear error output ({p}): {}",
            outcome.describe()
        )),
    }
}

/// When `line` names a statement (`statement <n>`), the number it names; a line that names
/// none is not wrong, only less precise.
pub fn named_statement(line: &str) -> Option<u64> {
    let at = line.find("statement ")?;
    let digits: String = line[at + "statement ".len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Whether `line` holds `n` as a number of its own (a run of digits, leading zeros allowed).
fn mentions_number(line: &str, n: u64) -> bool {
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty() && t.len() <= 18)
        .any(|t| t.parse::<u64>() == Ok(n))
}
