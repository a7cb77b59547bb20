//! The CI recipe (`examples/ci/migrations.yml`) runs as written. Its steps are read from the
//! workflow file as GitHub reads them and executed in order, each `run:` with the workflow's
//! shell, environment and working directory, against a real PostgreSQL, and the first failing
//! step stops the job, as on GitHub. What a runner does for the `uses:` steps is done here:
//! checkout is the project directory, the toolchain is the installed one, and the cache is a
//! copy of the cached directory (a miss on the first run, a hit on the next).
//!
//! What the test sets, and why (each is a value a user sets too):
//! - `MIGRATIONS_DIR` is a nested directory (`db/migrations`), and the project holds no
//!   `migrations/` at its root: a step that assumed `./migrations` fails.
//! - `MIGRATIONS_CLI_SOURCE` is this checkout of the framework, so the install step runs as
//!   written (`cargo install --locked --root ~/.migrations-cli --path ...`; the `--git` branch
//!   is not exercised). Its build goes to `target/static` with the flags of
//!   `scripts/static-build`, so it reuses the static build's artifacts of the CLI instead of
//!   compiling the CLI a second time in release mode.
//! - `DATABASE_URL` is a fresh test database instead of the job's service container.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use migrations_format::{load_dir, lockfile, LockFile, LOCK_FILE};
use serde_yaml::Value;

const WORKFLOW: &str = "examples/ci/migrations.yml";
/// Where the test puts the migrations, through `MIGRATIONS_DIR`.
const DIR: &str = "db/migrations";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness crate is in the repository")
        .to_path_buf()
}

/// One step of the job, as written.
#[derive(Debug)]
struct Step {
    /// Its name, else its `run:` or `uses:` text, for messages.
    label: String,
    id: Option<String>,
    uses: Option<String>,
    run: Option<String>,
    condition: Option<String>,
    env: Vec<(String, String)>,
    with: Value,
}

/// The parts of the workflow a runner needs: its one job's environment and steps.
struct Workflow {
    env: Vec<(String, String)>,
    job_env: Vec<(String, String)>,
    job: Value,
    steps: Vec<Step>,
}

fn string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An `env:` mapping (absent: empty).
fn env_map(value: &Value, whose: &str) -> Vec<(String, String)> {
    match value {
        Value::Null => Vec::new(),
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let k = string(k).unwrap_or_else(|| panic!("{whose}: env key {k:?}"));
                let v = string(v).unwrap_or_else(|| panic!("{whose}: env {k} is not a scalar"));
                (k, v)
            })
            .collect(),
        other => panic!("{whose}: env is not a mapping: {other:?}"),
    }
}

impl Workflow {
    fn read() -> Workflow {
        let path = repo().join(WORKFLOW);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{WORKFLOW}: {e}"));
        let doc: Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{WORKFLOW} is not YAML: {e}"));
        // GitHub runs `run:` steps with `bash --noprofile --norc -eo pipefail {0}` when the
        // shell is `bash`; without it, with `bash -e {0}`. The recipe names it; so does this.
        assert_eq!(
            doc["defaults"]["run"]["shell"].as_str(),
            Some("bash"),
            "{WORKFLOW}: defaults.run.shell"
        );
        let jobs = doc["jobs"].as_mapping().expect("jobs");
        assert_eq!(jobs.len(), 1, "{WORKFLOW}: one job");
        let job = jobs.values().next().unwrap().clone();
        let steps = job["steps"]
            .as_sequence()
            .expect("the job's steps")
            .iter()
            .map(|step| {
                let run = step["run"].as_str().map(str::to_owned);
                let uses = step["uses"].as_str().map(str::to_owned);
                let label = step["name"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| run.as_deref().map(|r| r.trim().to_owned()))
                    .or_else(|| uses.clone())
                    .expect("a step with neither run nor uses");
                Step {
                    env: env_map(&step["env"], &label),
                    id: step["id"].as_str().map(str::to_owned),
                    condition: step["if"].as_str().map(str::to_owned),
                    with: step["with"].clone(),
                    label,
                    uses,
                    run,
                }
            })
            .collect();
        Workflow {
            env: env_map(&doc["env"], "the workflow"),
            job_env: env_map(&job["env"], "the job"),
            job,
            steps,
        }
    }

    fn cache_step(&self) -> &Step {
        self.steps
            .iter()
            .find(|s| {
                s.uses
                    .as_deref()
                    .is_some_and(|u| u.starts_with("actions/cache@"))
            })
            .expect("the workflow caches the built CLI with actions/cache")
    }
}

/// One run of the job.
struct Job<'a> {
    workflow: &'a Workflow,
    /// The checked-out repository (`GITHUB_WORKSPACE`, each step's working directory).
    workspace: PathBuf,
    /// The runner's home (`~`), fresh for each run as on a new runner.
    home: PathBuf,
    /// A directory saved by the cache step of an earlier run: `Some` is a cache hit.
    cache: Option<PathBuf>,
    /// Values the user sets, replacing the workflow's (each must be defined there).
    settings: Vec<(&'static str, String)>,
}

/// What a run did: each step that ran, with its outcome, in order.
struct Ran {
    steps: Vec<(String, Output)>,
    /// PATH as the last step saw it.
    path: String,
}

impl Ran {
    fn labels(&self) -> Vec<&str> {
        self.steps.iter().map(|(l, _)| l.as_str()).collect()
    }

    fn output_of(&self, label: &str) -> &Output {
        &self
            .steps
            .iter()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("step `{label}` did not run; ran: {:?}", self.labels()))
            .1
    }

    fn text_of(&self, label: &str) -> String {
        let out = self.output_of(label);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn transcript(&self) -> String {
        let mut text = String::new();
        for (label, out) in &self.steps {
            text.push_str(&format!("--- {label}: {}\n", out.status));
            text.push_str(&String::from_utf8_lossy(&out.stdout));
            text.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        text
    }

    fn failed(&self) -> Option<&str> {
        self.steps
            .iter()
            .find(|(_, out)| !out.status.success())
            .map(|(l, _)| l.as_str())
    }
}

/// `~/x` on the runner.
fn expand_home(path: &str, home: &Path) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(path),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

impl Job<'_> {
    fn run(&self) -> Ran {
        let wf = self.workflow;
        fs::create_dir_all(&self.home).unwrap();
        let cache = wf.cache_step();
        let cache_id = cache.id.as_deref().expect("the cache step has an id");
        let cached = expand_home(
            cache.with["path"].as_str().expect("the cache step's path"),
            &self.home,
        );
        let miss = format!("steps.{cache_id}.outputs.cache-hit != 'true'");

        let mut env = wf.env.clone();
        env.extend(wf.job_env.iter().cloned());
        for (key, value) in &self.settings {
            assert!(
                env.iter().any(|(k, _)| k == key),
                "{WORKFLOW} no longer defines {key} in its env"
            );
            env.push((key.to_string(), value.clone()));
        }
        let host_path = std::env::var("PATH").expect("PATH");
        let real_home = PathBuf::from(std::env::var("HOME").expect("HOME"));
        let cargo_home = std::env::var("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| real_home.join(".cargo"));
        let rustup_home = std::env::var("RUSTUP_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| real_home.join(".rustup"));
        let runner_temp = self.home.join("runner-temp");
        fs::create_dir_all(&runner_temp).unwrap();

        let mut added_paths: Vec<String> = Vec::new();
        let mut ran = Vec::new();
        for (n, step) in wf.steps.iter().enumerate() {
            match step.condition.as_deref() {
                None => {}
                // The cache miss, the one condition the recipe uses: false on a hit.
                Some(c) if c == miss && self.cache.is_some() => continue,
                Some(c) if c == miss => {}
                Some(c) => panic!("step `{}`: this test cannot evaluate `if: {c}`", step.label),
            }
            if let Some(uses) = &step.uses {
                let action = uses.split('@').next().unwrap();
                match action {
                    // The project directory is the checkout; Rust is installed.
                    "actions/checkout" | "dtolnay/rust-toolchain" => {}
                    "actions/cache" => {
                        if let Some(saved) = &self.cache {
                            copy_dir(saved, &cached);
                        }
                    }
                    other => panic!("step `{}`: this test does not emulate {other}", step.label),
                }
                continue;
            }
            let script = step.run.as_deref().expect("a step runs or uses");
            assert!(
                !script.contains("${{"),
                "step `{}`: keep expressions out of run: (this test runs the text as bash)",
                step.label
            );
            let file = runner_temp.join(format!("step-{n}.sh"));
            fs::write(&file, script).unwrap();
            let github_path = runner_temp.join(format!("path-{n}"));
            let github_env = runner_temp.join(format!("env-{n}"));
            fs::write(&github_path, "").unwrap();
            fs::write(&github_env, "").unwrap();
            let path = added_paths
                .iter()
                .rev()
                .cloned()
                .chain([host_path.clone()])
                .collect::<Vec<_>>()
                .join(":");
            let static_target = repo().join("target/static");
            let out = Command::new("bash")
                .args(["--noprofile", "--norc", "-eo", "pipefail"])
                .arg(&file)
                .current_dir(&self.workspace)
                .env_clear()
                .env("PATH", &path)
                .env("HOME", &self.home)
                .env("CARGO_HOME", &cargo_home)
                .env("RUSTUP_HOME", &rustup_home)
                // As scripts/static-build builds: the CLI is compiled once for both tests.
                .env("CARGO_TARGET_DIR", &static_target)
                .env("CARGO_BUILD_TARGET", "x86_64-unknown-linux-gnu")
                .env("RUSTFLAGS", "-C target-feature=+crt-static")
                .env("CI", "true")
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_WORKSPACE", &self.workspace)
                .env("GITHUB_PATH", &github_path)
                .env("GITHUB_ENV", &github_env)
                .env("RUNNER_OS", "Linux")
                .env("RUNNER_TEMP", &runner_temp)
                .envs(env.iter().cloned())
                .envs(step.env.iter().cloned())
                .output()
                .expect("bash");
            let ok = out.status.success();
            ran.push((step.label.clone(), out));
            if !ok {
                break;
            }
            added_paths.extend(
                fs::read_to_string(&github_path)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
            );
            assert_eq!(
                fs::read_to_string(&github_env).unwrap(),
                "",
                "step `{}` writes GITHUB_ENV, which this test does not apply",
                step.label
            );
        }
        let path = added_paths
            .iter()
            .rev()
            .cloned()
            .chain([host_path])
            .collect::<Vec<_>>()
            .join(":");
        Ran { steps: ran, path }
    }
}

/// The user's repository: the sample migrations under `db/migrations`, locked, as committed.
fn project(root: &Path) -> PathBuf {
    let workspace = root.join("repo");
    let dir = workspace.join(DIR);
    fs::create_dir_all(dir.parent().unwrap()).unwrap();
    copy_dir(&repo().join("examples/quickstart/migrations"), &dir);
    lock(&dir);
    workspace
}

/// What `migrations lock` does (read, append, write), through the library.
fn lock(dir: &Path) {
    let directory = load_dir(dir).unwrap_or_else(|e| panic!("{e}"));
    let text = fs::read_to_string(dir.join(LOCK_FILE)).unwrap_or_default();
    let old = if text.is_empty() {
        LockFile::default()
    } else {
        lockfile::parse(&text).unwrap_or_else(|e| panic!("{e}"))
    };
    let new = lockfile::append(&old, &directory);
    fs::write(dir.join(LOCK_FILE), lockfile::render(&new)).unwrap();
}

fn command_v(path: &str, name: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", &format!("command -v {name}")])
        .env("PATH", path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const VERIFY: &str = "migrations --dir \"$MIGRATIONS_DIR\" verify";
const LINT: &str = "migrations --dir \"$MIGRATIONS_DIR\" lint";
const TEST: &str = "migrations --dir \"$MIGRATIONS_DIR\" test";
const INSTALL: &str = "Build the migrations CLI (cache miss only)";

#[test]
fn the_ci_recipe_runs_as_written_and_fails_on_what_it_guards() {
    let workflow = Workflow::read();

    // The job's DATABASE_URL is the service it starts (its port and password), which the
    // substitution below would otherwise hide.
    let url = workflow
        .job_env
        .iter()
        .find(|(k, _)| k == "DATABASE_URL")
        .map(|(_, v)| v.clone())
        .expect("the job sets DATABASE_URL");
    let service = &workflow.job["services"]["postgres"];
    let password = service["env"]["POSTGRES_PASSWORD"]
        .as_str()
        .expect("password");
    let ports = service["ports"][0].as_str().expect("ports");
    let host_port = ports.split(':').next().unwrap();
    assert!(
        url.contains(&format!(":{password}@localhost:{host_port}/")),
        "DATABASE_URL {url} is not the service's localhost:{host_port}"
    );
    // The cache key changes with the framework's Cargo.lock and sources.
    let key = workflow.cache_step().with["key"].as_str().expect("a key");
    for part in ["Cargo.lock", "migrations-*/**", "env.MIGRATIONS_CLI_SOURCE"] {
        assert!(
            key.contains(part),
            "the cache key does not depend on {part}: {key}"
        );
    }

    let db = migrations_tests::test_db();
    let tmp = tempfile::tempdir().unwrap();
    let workspace = project(tmp.path());
    assert!(!workspace.join("migrations").exists());
    let settings = vec![
        ("MIGRATIONS_DIR", DIR.to_owned()),
        (
            "MIGRATIONS_CLI_SOURCE",
            repo().to_str().expect("a UTF-8 path").to_owned(),
        ),
        ("DATABASE_URL", db.url().to_owned()),
    ];
    let job = |home: &str, cache: Option<PathBuf>| Job {
        workflow: &workflow,
        workspace: workspace.clone(),
        home: tmp.path().join(home),
        cache,
        settings: settings.clone(),
    };

    // 1. A cache miss: the CLI is built from the checkout, and every step passes.
    let first = job("home1", None).run();
    let transcript = first.transcript();
    assert_eq!(first.failed(), None, "{transcript}");
    let labels = first.labels();
    for expected in [INSTALL, VERIFY, LINT, TEST] {
        assert!(
            labels.contains(&expected),
            "`{expected}` did not run: {labels:?}"
        );
    }
    // What the cache step saves at the end of the job (its `path:`), where the install step
    // put the CLI.
    let cache_path = workflow.cache_step().with["path"]
        .as_str()
        .expect("the cache step's path");
    let saved = expand_home(cache_path, &tmp.path().join("home1"));
    assert_eq!(
        command_v(&first.path, "migrations"),
        saved.join("bin/migrations").to_str().unwrap(),
        "the steps did not run the CLI the install step built"
    );
    assert!(
        first.text_of(TEST).contains("3 migrations checked: 3 ok"),
        "{transcript}"
    );

    // 2. A cache hit on a new runner: no build, the restored CLI runs the same checks.
    let second = job("home2", Some(saved.clone())).run();
    assert_eq!(second.failed(), None, "{}", second.transcript());
    assert!(!second.labels().contains(&INSTALL), "{:?}", second.labels());
    assert_eq!(
        Path::new(&command_v(&second.path, "migrations")).parent(),
        Some(
            expand_home(cache_path, &tmp.path().join("home2"))
                .join("bin")
                .as_path()
        ),
        "after a cache hit the steps did not run the restored CLI"
    );

    // 3. An edited released migration fails verify, with an annotation on the file, and
    //    stops the job there.
    let posts = workspace.join(DIR).join("0002_create_posts.up.sql");
    let original = fs::read_to_string(&posts).unwrap();
    fs::write(&posts, original.replace("body text", "body varchar(100)")).unwrap();
    let third = job("home3", Some(saved.clone())).run();
    assert_eq!(third.failed(), Some(VERIFY), "{}", third.transcript());
    assert_eq!(third.output_of(VERIFY).status.code(), Some(3));
    assert!(
        third
            .text_of(VERIFY)
            .contains(&format!("::error file={DIR}/0002_create_posts.up.sql,")),
        "{}",
        third.transcript()
    );
    assert!(!third.labels().contains(&TEST));
    fs::write(&posts, original).unwrap();

    // 4. A new migration whose down does not undo its up passes verify and lint and fails the
    //    round trip.
    let dir = workspace.join(DIR);
    fs::write(
        dir.join("0004_tags.up.sql"),
        "CREATE TABLE tags (id bigint);\n",
    )
    .unwrap();
    fs::write(dir.join("0004_tags.down.sql"), "SELECT 1;\n").unwrap();
    let fourth = job("home4", Some(saved)).run();
    assert_eq!(fourth.failed(), Some(TEST), "{}", fourth.transcript());
    assert_eq!(fourth.output_of(TEST).status.code(), Some(3));
    assert!(
        fourth.text_of(TEST).contains("FAIL 0004 tags"),
        "{}",
        fourth.transcript()
    );
}
