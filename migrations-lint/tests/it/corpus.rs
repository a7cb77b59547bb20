//! The real crates.io migration history (SPEC 8) through the linter: every one of its 285
//! migrations is linted without a crash, with every rule on; the counts per rule are printed
//! (`cargo test -p migrations-lint --test it corpus:: -- --nocapture`) and a few findings whose
//! correctness was checked by reading the SQL are asserted.
//!
//! The corpus is `../corpus/crates.io/migrations` from this crate, or the directory
//! in `MIGRATIONS_CORPUS_DIR`.

use std::fs;
use std::path::{Path, PathBuf};

use migrations_format::load_dir;
use migrations_lint::{lint_directory, Options, Report, RuleSet};

const CORPUS_SIZE: usize = 285;

fn lint_corpus(rules: RuleSet) -> (tempfile::TempDir, Report) {
    let copy = migrations_tests::corpus_copy();
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
    // Spot checks, each confirmed by reading the SQL.
    // A transactional down (no metadata.toml) that builds indexes CONCURRENTLY: PostgreSQL
    // refuses it, so this rollback fails as written.
    assert_eq!(
        finding_at(
            &report,
            root,
            "concurrently-in-transaction",
            "2024-04-12-144536"
        ),
        vec![
            "2024-04-12-144536_remove-downloads-column/down.sql:4:1",
            "2024-04-12-144536_remove-downloads-column/down.sql:7:1"
        ]
    );
    // `SET timezone = 'UTC';` before converting columns to timestamptz: session-level.
    assert_eq!(
        finding_at(&report, root, "session-level-set", "2025-02-17-133723"),
        vec![
            "2025-02-17-133723_timezones/up.sql:1:1",
            "2025-02-17-133723_timezones/down.sql:1:1"
        ]
    );
    // `-- Not reversible`: a comment-only down.
    assert_eq!(
        finding_at(&report, root, "empty-down", "2019-11-11-162609"),
        vec!["2019-11-11-162609_drop_email_from_user/down.sql:1:1"]
    );
    // `ADD CONSTRAINT teams_login_lowercase_ck CHECK (login = lower(login))` without NOT
    // VALID: the only CHECK of the corpus added to an existing table.
    assert_eq!(
        finding_at(&report, root, "constraint-missing-not-valid", ""),
        vec!["2017-11-12-195324_lower_teams_names/up.sql:3:5"]
    );
    // `ADD COLUMN token TEXT NOT NULL DEFAULT random_string(26)`: a volatile default rewrites
    // the table under ACCESS EXCLUSIVE.
    assert_eq!(
        finding_at(
            &report,
            root,
            "adding-field-with-default",
            "2019-12-13-053745"
        ),
        vec!["2019-12-13-053745_add_crate_owner_invitation_token/up.sql:1:76"]
    );
    // `CREATE MATERIALIZED VIEW recent_crate_downloads ...` then a plain `CREATE UNIQUE INDEX`
    // on it, in one transaction: no other session sees the view yet, so nothing to flag (squawk
    // alone flags these three).
    for version in ["2018-04-24-145128", "2019-03-22-162022"] {
        assert_eq!(
            finding_at(&report, root, "require-concurrent-index-creation", version),
            Vec::<String>::new()
        );
    }
    // Column type changes, told apart by the column's type as the earlier migrations left it.
    let type_changes = |version: &str| -> Vec<String> {
        report
            .findings
            .iter()
            .filter(|f| f.rule == "changing-column-type")
            .filter(|f| {
                f.path
                    .strip_prefix(root)
                    .is_ok_and(|p| p.to_string_lossy().starts_with(version))
            })
            .map(|f| f.message.clone())
            .collect()
    };
    // `keyword` varchar -> text and back: catalog changes.
    assert_eq!(
        type_changes("2019-06-14-175833"),
        [
            "changing `keyword` of `keywords` from character varying to text is a catalog \
             change: PostgreSQL neither rewrites the table nor rebuilds its indexes, but waits \
             for ACCESS EXCLUSIVE on `keywords` to make it; clients that read the column may \
             also break on the new type",
            "changing `keyword` of `keywords` from text to character varying is a catalog \
             change: PostgreSQL neither rewrites the table nor rebuilds its indexes, but waits \
             for ACCESS EXCLUSIVE on `keywords` to make it; clients that read the column may \
             also break on the new type"
        ]
    );
    // `SET timezone = 'UTC'` then timestamp -> timestamptz, 21 columns each way: no rewrite,
    // only the indexes on those columns are rebuilt.
    let timezones = type_changes("2025-02-17-133723");
    assert_eq!(timezones.len(), 42);
    for message in &timezones {
        assert!(
            message.contains("under time zone 'UTC' keeps the table, but rebuilds the indexes"),
            "{message}"
        );
    }
    // `version_downloads.date` timestamp -> date: a real rewrite.
    assert!(type_changes("20170322130523")[0].contains(
        "from timestamp without time zone to date rewrites the table and rebuilds its indexes"
    ));
    // The no-transaction migrations (metadata.toml) build their indexes CONCURRENTLY: the
    // in-transaction rule never fires on them, and the index rules only on a statement without
    // CONCURRENTLY: two downs take the plain way back (CREATE INDEX, DROP INDEX).
    let no_transaction: Vec<PathBuf> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("metadata.toml").is_file())
        .collect();
    assert_eq!(no_transaction.len(), 7);
    let mut plain_index_builds = Vec::new();
    for f in &report.findings {
        if !no_transaction.iter().any(|d| f.path.starts_with(d)) {
            continue;
        }
        assert_ne!(f.rule, "concurrently-in-transaction", "{f}");
        if f.rule.starts_with("require-concurrent-index") {
            let text = fs::read_to_string(&f.path).unwrap();
            let line = text.lines().nth(f.line as usize - 1).unwrap();
            assert!(!line.to_lowercase().contains("concurrently"), "{f}");
            plain_index_builds.push(f.path.strip_prefix(root).unwrap().display().to_string());
        }
    }
    assert_eq!(
        plain_index_builds,
        vec![
            "2024-02-12-120203_remove_unused_index/down.sql",
            "2025-09-29-161354_add_index_trustpub_configs_github_repo/down.sql"
        ]
    );
    // A down missing the `;` after its first statement: squawk cannot parse it (nor could the
    // server run it), and says so.
    assert!(report.warnings.iter().any(|w| {
        w.path
            .ends_with("20170318181441_downloads_need_no_id/down.sql")
            && w.line == Some(1)
    }));
}

/// `all` adds the opt-in rules to the default set and changes nothing else: every default
/// rule finds exactly what it finds alone, and the opt-in rules find something.
#[test]
fn every_rule_on_adds_the_opt_in_rules() {
    let (_copy, all) = lint_corpus(RuleSet::new(&["all"], &[]).unwrap());
    let (_copy2, default) = lint_corpus(RuleSet::default());
    assert_eq!(all.migrations, CORPUS_SIZE);
    println!("with every rule: {} findings", all.findings.len());
    let all_counts = all.counts();
    let default_counts = default.counts();
    for (rule, n) in &default_counts {
        assert_eq!(all_counts.get(rule), Some(n), "{rule}");
    }
    let extra: Vec<_> = all_counts
        .iter()
        .filter(|(rule, _)| !default_counts.contains_key(*rule))
        .collect();
    assert!(
        !extra.is_empty(),
        "`all` found nothing the default rules miss"
    );
    assert!(all.findings.len() > default.findings.len());
}

#[test]
#[ignore = "a tool, not a check: prints every corpus finding (cargo test -p migrations-lint --test it corpus::dump -- --ignored)"]
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
