//! The bad-input corpus: malformed migration sets and command lines, each with the exact
//! output the `migrations` binary must give.
//!
//! Each case is a directory `tests/bad_input/<case>/` holding the files of a project (usually
//! a `migrations/` folder) and an `expected` file:
//!
//! ```text
//! # What the case is about (comment lines start with `#`).
//! args: --format json up --to "not a version"
//! env: KEY=value            (optional, repeatable)
//! exit: 2
//! --- stdout                (optional: without it, stdout must be empty)
//! ...exact stdout...
//! --- stderr
//! ...exact stderr...
//! ```
//!
//! `args` is split at spaces; `"..."` or `'...'` keep spaces in one argument. The case's files
//! are copied into a temporary directory, the binary runs there with the clean environment of
//! every test of this crate (`common::migrations`: no `DATABASE_URL`, no `PG*`, no
//! `GITHUB_ACTIONS`, `NO_COLOR=1`, `COLUMNS=100`), `HOME` the temporary directory, and any
//! occurrence of the case directory's path in the output is written `$CASE`.
//! No case needs a database.
//!
//! To add a case, create its directory with an `expected` holding the comment, `args` (and
//! `env`), then run `BLESS=1 cargo test -p migrations-cli --test it bad_input::` to fill in the
//! outputs and exit code, and review them: each message must name the file (and line) and say
//! how to fix it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{migrations, Run};

const EXPECTED: &str = "expected";

#[derive(Debug, Default, PartialEq)]
struct Expected {
    comments: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    exit: i32,
    stdout: String,
    stderr: String,
}

fn split_args(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_arg = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_arg = true;
            }
            None if c == ' ' => {
                if in_arg {
                    args.push(std::mem::take(&mut current));
                    in_arg = false;
                }
            }
            None => {
                current.push(c);
                in_arg = true;
            }
        }
    }
    assert!(quote.is_none(), "unclosed quote in `args: {line}`");
    if in_arg {
        args.push(current);
    }
    args
}

fn quote_arg(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains([' ', '"', '\'']) {
        arg.to_owned()
    } else if arg.contains('"') {
        format!("'{arg}'")
    } else {
        format!("\"{arg}\"")
    }
}

fn parse_expected(path: &Path) -> Expected {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut expected = Expected::default();
    let mut section: Option<&str> = None;
    let mut saw_exit = false;
    for line in text.split_inclusive('\n') {
        let bare = line.strip_suffix('\n').unwrap_or(line);
        match bare {
            "--- stdout" => {
                section = Some("stdout");
                continue;
            }
            "--- stderr" => {
                section = Some("stderr");
                continue;
            }
            _ => {}
        }
        match section {
            Some("stdout") => expected.stdout.push_str(line),
            Some(_) => expected.stderr.push_str(line),
            None => {
                if bare.starts_with('#') || bare.trim().is_empty() {
                    expected.comments.push(bare.to_owned());
                } else if let Some(args) = bare.strip_prefix("args:") {
                    expected.args = split_args(args.trim());
                } else if let Some(env) = bare.strip_prefix("env:") {
                    let (k, v) = env
                        .trim()
                        .split_once('=')
                        .unwrap_or_else(|| panic!("{}: `env: KEY=value`", path.display()));
                    expected.env.push((k.to_owned(), v.to_owned()));
                } else if let Some(code) = bare.strip_prefix("exit:") {
                    expected.exit = code.trim().parse().expect("exit: <code>");
                    saw_exit = true;
                } else {
                    panic!("{}: unexpected line {bare:?}", path.display());
                }
            }
        }
    }
    assert!(
        saw_exit || std::env::var_os("BLESS").is_some(),
        "{}: no `exit:` line (run with BLESS=1 to fill it in)",
        path.display()
    );
    expected
}

fn render_expected(e: &Expected) -> String {
    let mut out = String::new();
    for c in &e.comments {
        out.push_str(c);
        out.push('\n');
    }
    let args: Vec<String> = e.args.iter().map(|a| quote_arg(a)).collect();
    out.push_str(&format!("args: {}\n", args.join(" ")));
    for (k, v) in &e.env {
        out.push_str(&format!("env: {k}={v}\n"));
    }
    out.push_str(&format!("exit: {}\n", e.exit));
    if !e.stdout.is_empty() {
        out.push_str("--- stdout\n");
        out.push_str(&e.stdout);
    }
    out.push_str("--- stderr\n");
    out.push_str(&e.stderr);
    out
}

/// Runs one case; returns what it printed, as an `Expected`.
fn run_case(case: &Path, expected: &Expected) -> Expected {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("case");
    migrations_tests::copy_dir(case, &root);
    // The case's expectation is the test's, not a file of the project under test.
    fs::remove_file(root.join(EXPECTED)).unwrap();
    // The clean environment of every test here, with `HOME` the temporary directory around
    // the case (so a case's own files are not taken for the home directory's).
    let mut command = migrations(&root);
    command.args(&expected.args).env("HOME", work.path());
    for (k, v) in &expected.env {
        command.env(k, v.replace("$CASE", &root.to_string_lossy()));
    }
    let out = Run::of(command);
    let root_text = root.to_string_lossy().into_owned();
    let clean = |text: &str| text.replace(&root_text, "$CASE");
    Expected {
        comments: expected.comments.clone(),
        args: expected.args.clone(),
        env: expected.env.clone(),
        exit: out.code,
        stdout: clean(&out.stdout),
        stderr: clean(&out.stderr),
    }
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input");
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join(EXPECTED).is_file())
        .collect();
    cases.sort();
    cases
}

#[test]
fn bad_input_corpus() {
    let bless = std::env::var_os("BLESS").is_some();
    let cases = cases();
    assert!(cases.len() >= 20, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expected = parse_expected(&case.join(EXPECTED));
        let actual = run_case(case, &expected);
        // Whatever the input: no panic, no backtrace, a documented exit code.
        assert!(
            !actual.stderr.contains("panicked") && !actual.stderr.contains("RUST_BACKTRACE"),
            "case {name} panics: {}",
            actual.stderr
        );
        assert!(
            [0, 1, 2, 3].contains(&actual.exit),
            "case {name}: exit {}",
            actual.exit
        );
        if bless {
            fs::write(case.join(EXPECTED), render_expected(&actual)).unwrap();
            continue;
        }
        let mut problems = Vec::new();
        if actual.exit != expected.exit {
            problems.push(format!("exit {} (expected {})", actual.exit, expected.exit));
        }
        if actual.stdout != expected.stdout {
            problems.push(format!(
                "stdout:\n{}\nexpected:\n{}",
                actual.stdout, expected.stdout
            ));
        }
        if actual.stderr != expected.stderr {
            problems.push(format!(
                "stderr:\n{}\nexpected:\n{}",
                actual.stderr, expected.stderr
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("case {name}: {}", problems.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ (BLESS=1 rewrites the expected files; review the diff):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
