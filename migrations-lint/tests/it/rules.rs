//! A fixture per rule under `tests/fixtures/<rule>/`: `fires/` is a migrations directory where
//! the rule reports at the lines listed below; `safe/` is the safe rewrite, on which no rule
//! reports anything at all.

use std::path::{Path, PathBuf};

use migrations_format::load_dir;
use migrations_lint::{lint_directory, lint_file, FileInput, Finding, Options, Report, RuleSet};

/// Rule, then `file:line:column` of every finding of that rule in its `fires/` fixture.
const FIRES: &[(&str, &[&str])] = &[
    // Ours.
    ("missing-down", &["1_users.up.sql:1:1"]),
    ("empty-down", &["1_users.down.sql:1:1"]),
    ("empty-migration", &["1_validate.up.sql:1:1"]),
    ("unwritten-migration", &["1_users.up.sql:3:1"]),
    (
        "non-transactional-in-transaction",
        &["1_tablespace.down.sql:2:1", "2_vacuum.up.sql:4:1"],
    ),
    (
        "concurrently-in-transaction",
        &["1_email_index.down.sql:1:1", "2_name_index.up.sql:3:1"],
    ),
    (
        "transaction-control-in-transaction",
        &["1_backfill.down.sql:3:1"],
    ),
    (
        "lock-timeout-guard",
        &["1_bio.up.sql:2:1", "2_nickname.up.sql:6:1"],
    ),
    ("session-level-set", &["1_search_path.up.sql:1:1"]),
    ("set-local-outside-transaction", &["1_index.up.sql:2:1"]),
    (
        "enum-value-used-in-transaction",
        &["1_ecstatic.up.sql:3:26"],
    ),
    (
        "down-drops-existing",
        &["2_contact.down.sql:2:1", "3_badges.down.sql:1:1"],
    ),
    // SPEC 6's minimum, from squawk.
    (
        "require-concurrent-index-creation",
        &["1_email_index.up.sql:1:1"],
    ),
    ("constraint-missing-not-valid", &["1_age_check.up.sql:2:5"]),
    (
        "adding-foreign-key-constraint",
        &["1_posts_user_fk.up.sql:2:9"],
    ),
    (
        "adding-not-nullable-field",
        &["1_email_required.up.sql:1:38"],
    ),
    ("adding-required-field", &["1_plan.up.sql:1:19"]),
    (
        "changing-column-type",
        &["1_bigint_id.up.sql:1:36", "1_bigint_id.down.sql:1:36"],
    ),
    ("ban-drop-column", &["1_drop_nickname.up.sql:1:19"]),
    ("ban-drop-table", &["1_drop_sessions.up.sql:1:1"]),
    ("renaming-column", &["1_full_name.up.sql:1:19"]),
    ("renaming-table", &["1_articles.up.sql:1:19"]),
    ("prefer-robust-stmts", &["1_email_index.up.sql:2:1"]),
];

/// Fixtures with only a `safe/` directory.
const SAFE_ONLY: &[&str] = &["downs", "diesel"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn lint(dir: &Path, rules: RuleSet) -> Report {
    let loaded = load_dir(dir).unwrap_or_else(|e| panic!("{} loads: {e}", dir.display()));
    let options = Options {
        rules,
        ..Options::default()
    };
    lint_directory(&loaded, &options).expect("lint runs")
}

fn located(dir: &Path, f: &Finding) -> String {
    let file = f.path.strip_prefix(dir).unwrap_or(&f.path).display();
    format!("{file}:{}:{}", f.line, f.column)
}

fn describe(report: &Report) -> String {
    report
        .findings
        .iter()
        .map(|f| format!("{f}\n"))
        .chain(report.warnings.iter().map(|w| format!("warning: {w}\n")))
        .collect()
}

#[test]
fn each_rule_fires_on_its_fixture() {
    for (rule, expected) in FIRES {
        let dir = fixture(rule).join("fires");
        let report = lint(&dir, RuleSet::default());
        let got: Vec<String> = report
            .findings
            .iter()
            .filter(|f| f.rule == *rule)
            .map(|f| located(&dir, f))
            .collect();
        assert_eq!(
            got,
            *expected,
            "{rule}: all findings:\n{}",
            describe(&report)
        );
        for f in report.findings.iter().filter(|f| f.rule == *rule) {
            assert!(
                !f.message.is_empty() && !f.fix.is_empty() && !f.lock.is_empty(),
                "{f:?}"
            );
        }
        // The rule alone finds the same.
        let alone = lint(&dir, RuleSet::only(&[rule]).unwrap());
        let got_alone: Vec<String> = alone.findings.iter().map(|f| located(&dir, f)).collect();
        assert_eq!(got_alone, *expected, "{rule} alone");
    }
}

#[test]
fn safe_rewrites_are_clean() {
    let names = FIRES
        .iter()
        .map(|(rule, _)| *rule)
        .chain(SAFE_ONLY.iter().copied());
    for name in names {
        let dir = fixture(name).join("safe");
        let report = lint(&dir, RuleSet::default());
        assert!(
            report.findings.is_empty() && report.warnings.is_empty(),
            "{name}: the safe rewrite is not clean:\n{}",
            describe(&report)
        );
        assert!(report.files > 0);
    }
}

#[test]
fn excluded_rules_do_not_run() {
    let dir = fixture("require-concurrent-index-creation").join("fires");
    let report = lint(
        &dir,
        RuleSet::new(&[] as &[&str], &["require-concurrent-index-creation"]).unwrap(),
    );
    assert!(report.findings.is_empty(), "{}", describe(&report));
}

fn lint_text(text: &str, no_transaction: bool, rules: &RuleSet) -> Vec<String> {
    let directives = migrations_format::directive::parse_header(text).unwrap();
    let input = FileInput {
        path: Path::new("x.up.sql"),
        text,
        direction: migrations_format::Direction::Up,
        no_transaction,
        directives: &directives,
    };
    lint_file(&input, rules)
        .findings
        .iter()
        .map(|f| format!("{}:{}:{}", f.line, f.column, f.rule))
        .collect()
}

#[test]
fn lint_ignore_covers_the_next_statement_or_the_whole_file() {
    let rules = RuleSet::only(&["require-concurrent-index-creation"]).unwrap();
    let sql = "CREATE INDEX a ON t (x);\n\
               -- a small table, see #12\n\
               -- migrations:lint-ignore require-concurrent-index-creation\n\
               CREATE INDEX b ON t (y);\n\
               /* migrations:lint-ignore require-concurrent-index-creation */ CREATE INDEX c ON t (z);\n\
               CREATE INDEX d ON t (w);\n";
    assert_eq!(
        lint_text(sql, false, &rules),
        vec![
            "1:1:require-concurrent-index-creation",
            "6:1:require-concurrent-index-creation"
        ]
    );
    let header = format!("-- migrations:lint-ignore require-concurrent-index-creation\n{sql}");
    assert!(lint_text(&header, false, &rules).is_empty());
    // Another rule's name silences nothing here; `all` silences everything.
    let other = format!("-- migrations:lint-ignore ban-drop-table\n{sql}");
    assert_eq!(lint_text(&other, false, &rules).len(), 2);
    let all = format!("-- migrations:lint-ignore all\n{sql}");
    assert!(lint_text(&all, false, &rules).is_empty());
}

#[test]
fn an_unknown_rule_in_lint_ignore_is_a_warning() {
    let text =
        "-- migrations:lint-ignore require-concurent-index-creation\nCREATE INDEX a ON t (x);\n";
    let directives = migrations_format::directive::parse_header(text).unwrap();
    let input = FileInput {
        path: Path::new("x.up.sql"),
        text,
        direction: migrations_format::Direction::Up,
        no_transaction: false,
        directives: &directives,
    };
    let report = lint_file(&input, &RuleSet::default());
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.warnings.len(), 1);
    assert_eq!(report.warnings[0].line, Some(1));
    assert!(
        report.warnings[0].message.contains("names no rule"),
        "{}",
        report.warnings[0]
    );
}

#[test]
fn rules_know_the_transaction_mode() {
    let rules = RuleSet::default();
    // In a transaction, a re-run starts from a clean slate: no IF NOT EXISTS needed.
    assert!(lint_text("ALTER TABLE t ADD COLUMN x text;", false, &rules).is_empty());
    // Without one, statements before a failure stay done.
    assert_eq!(
        lint_text("ALTER TABLE t ADD COLUMN x text;", true, &rules),
        vec!["1:15:prefer-robust-stmts"]
    );
    // An index on a table created in the same transaction blocks nobody; in a no-transaction
    // file the table is committed (and visible) before the index build.
    let sql = "CREATE TABLE IF NOT EXISTS t (x text);\nCREATE INDEX IF NOT EXISTS i ON t (x);";
    assert!(lint_text(sql, false, &rules).is_empty());
    assert_eq!(
        lint_text(sql, true, &rules),
        vec!["2:1:require-concurrent-index-creation"]
    );
    // A new enum value used after its ADD VALUE committed (each statement on its own).
    let sql =
        "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ok' AFTER 'sad';\nUPDATE p SET mood = 'ok';";
    assert_eq!(
        lint_text(sql, false, &rules),
        vec!["2:21:enum-value-used-in-transaction"]
    );
    assert!(lint_text(sql, true, &rules).is_empty());
}

/// An index, a primary key or a unique constraint on a table created earlier in the same
/// transaction blocks nobody: no other session sees the table before the commit. squawk knew
/// this only for a plain `CREATE TABLE`, and not at all for the primary key.
#[test]
fn a_table_made_in_the_same_transaction_needs_no_concurrent_build() {
    let rules = RuleSet::only(&[
        "require-concurrent-index-creation",
        "adding-serial-primary-key-field",
        "disallowed-unique-constraint",
        "constraint-missing-not-valid",
    ])
    .unwrap();
    let made_by = [
        "CREATE TABLE t (id bigint NOT NULL, x text)",
        "CREATE TABLE t AS SELECT 1 AS id, 'a'::text AS x",
        "CREATE UNLOGGED TABLE IF NOT EXISTS s.t AS SELECT 1 AS id, 'a'::text AS x WITH NO DATA",
        "SELECT 1 AS id, 'a'::text AS x INTO t",
        "CREATE MATERIALIZED VIEW t AS SELECT 1 AS id, 'a'::text AS x",
    ];
    for create in made_by {
        let index = format!("{create};\nCREATE INDEX IF NOT EXISTS i ON t (x);");
        let key = format!(
            "{create};\nALTER TABLE t ADD PRIMARY KEY (id), ADD CONSTRAINT u UNIQUE (x), \
             ADD CONSTRAINT c CHECK (id > 0);"
        );
        let key = if create.contains("VIEW") {
            index.clone()
        } else {
            key
        };
        for sql in [&index, &key] {
            // The reproduction: both were flagged after CREATE TABLE AS and CREATE
            // MATERIALIZED VIEW.
            assert_eq!(lint_text(sql, false, &rules), Vec::<String>::new(), "{sql}");
            // Inside an explicit block of a no-transaction file, too.
            let block = format!("BEGIN;\n{sql}\nCOMMIT;");
            assert_eq!(
                lint_text(&block, true, &rules),
                Vec::<String>::new(),
                "{block}"
            );
        }
        // Committed before the index build (each statement on its own): the table is
        // visible and in use.
        assert_eq!(
            lint_text(&index, true, &rules),
            ["2:1:require-concurrent-index-creation"],
            "{index}"
        );
    }
    // An existing table is still flagged, with every rule.
    let sql =
        "CREATE TABLE other (id bigint);\nALTER TABLE t ADD PRIMARY KEY (id), ADD CONSTRAINT u \
               UNIQUE (x), ADD CONSTRAINT c CHECK (id > 0);\nCREATE INDEX i ON t (x);";
    assert_eq!(
        lint_text(sql, false, &rules),
        [
            "2:19:adding-serial-primary-key-field",
            "2:41:disallowed-unique-constraint",
            "2:66:constraint-missing-not-valid",
            "3:1:require-concurrent-index-creation"
        ]
    );
}

#[test]
fn transaction_control_follows_the_file_mode() {
    let rules = RuleSet::only(&["transaction-control-in-transaction"]).unwrap();
    // The reproduction: the runner's transaction would commit the first INSERT alone.
    let sql = "INSERT INTO t VALUES (1);\n  COMMIT;\nINSERT INTO t VALUES (2);\n\
               SELECT 'ROLLBACK'; -- END;\nSAVEPOINT s;\nROLLBACK TO s;\nRELEASE s;\n\
               start transaction;\nPREPARE TRANSACTION 'p';\nabort;";
    assert_eq!(
        lint_text(sql, false, &rules),
        vec![
            "2:3:transaction-control-in-transaction",
            "8:1:transaction-control-in-transaction",
            "9:1:transaction-control-in-transaction",
            "10:1:transaction-control-in-transaction"
        ]
    );
    assert!(lint_text(sql, true, &rules).is_empty());
    let directives = migrations_format::Directives::default();
    let input = FileInput {
        path: Path::new("1_a.down.sql"),
        text: "DELETE FROM t;\nEND;",
        direction: migrations_format::Direction::Down,
        no_transaction: false,
        directives: &directives,
    };
    let report = lint_file(&input, &rules);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(
        report.findings[0].to_string(),
        "1_a.down.sql:2:1: transaction-control-in-transaction: `END` in a down file the runner \
         wraps in a transaction: it would break that transaction (the file and its history \
         record commit together), so `migrations down` refuses the file"
    );
    // One finding per statement: squawk's transaction-nesting is left to no-transaction files.
    let all = lint_file(&input, &RuleSet::default());
    let rules: Vec<&str> = all.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, ["transaction-control-in-transaction"]);
    assert_eq!(
        lint_text("SELECT 1;\nCOMMIT;", true, &RuleSet::default()),
        ["2:1:transaction-nesting"]
    );
}

#[test]
fn lock_timeout_guard_follows_the_file() {
    let rules = RuleSet::only(&["lock-timeout-guard"]).unwrap();
    // The runner's default guards the file.
    assert!(lint_text("ALTER TABLE t ADD COLUMN x text;", false, &rules).is_empty());
    // Turned off, then back on.
    let sql = "SET LOCAL lock_timeout = 0;\nALTER TABLE t ADD COLUMN x text;\n\
               SET LOCAL lock_timeout = '2s';\nALTER TABLE t ADD COLUMN y text;\n\
               RESET lock_timeout;\nTRUNCATE t;\nLOCK TABLE t IN ACCESS EXCLUSIVE MODE NOWAIT;";
    assert_eq!(
        lint_text(sql, false, &rules),
        vec!["2:1:lock-timeout-guard", "6:1:lock-timeout-guard"]
    );
    // SET LOCAL outside a transaction block changes nothing; inside one, it lasts until COMMIT.
    let sql = "SET LOCAL lock_timeout = 0;\nALTER TABLE t ADD COLUMN x text;\n\
               BEGIN;\nSET LOCAL lock_timeout = 0;\nALTER TABLE t ADD COLUMN y text;\nCOMMIT;\n\
               ALTER TABLE t ADD COLUMN z text;";
    assert_eq!(lint_text(sql, true, &rules), vec!["5:1:lock-timeout-guard"]);
    // A weak lock does not need the guard.
    let sql = "SET lock_timeout = 0;\nALTER TABLE t VALIDATE CONSTRAINT c;";
    assert!(lint_text(sql, false, &rules).is_empty());
}

#[test]
fn session_level_set_and_its_resets() {
    let rules = RuleSet::only(&["session-level-set", "set-local-outside-transaction"]).unwrap();
    let sql = "SET statement_timeout = 0;\nSET SESSION search_path TO a;\nSET ROLE admin;\n\
               SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\nSELECT set_config('x.y', '1', false);\n\
               SELECT set_config('x.z', '1', true);\nRESET search_path;\nRESET ROLE;";
    assert_eq!(
        lint_text(sql, false, &rules),
        vec!["1:1:session-level-set", "5:8:session-level-set"]
    );
    // In a no-transaction file, SET LOCAL (or set_config(..., true)) outside BEGIN does nothing.
    assert_eq!(
        lint_text(sql, true, &rules),
        vec![
            "1:1:session-level-set",
            "5:8:session-level-set",
            "6:8:set-local-outside-transaction"
        ]
    );
    assert_eq!(
        lint_text(
            "RESET ALL;\nSET work_mem = '1GB';\nRESET ALL;",
            true,
            &rules
        ),
        Vec::<String>::new()
    );
}

#[test]
fn since_and_paths_restrict_what_is_linted() {
    let dir = fixture("constraint-missing-not-valid").join("fires");
    let loaded = load_dir(&dir).unwrap();
    let settings = migrations_format::settings::LintSettings {
        since: Some("1".to_owned()),
        ..Default::default()
    };
    let options = Options::resolve(&settings, &[], &[], None, Vec::new()).unwrap();
    let report = lint_directory(&loaded, &options).unwrap();
    assert_eq!((report.migrations, report.findings.len()), (0, 0));
    // The command line replaces the settings.
    let options = Options::resolve(&settings, &[], &[], Some("0"), Vec::new()).unwrap();
    assert_eq!(lint_directory(&loaded, &options).unwrap().migrations, 1);

    let options = Options::resolve(
        &Default::default(),
        &[],
        &[],
        None,
        vec![dir.join("1_age_check.down.sql")],
    )
    .unwrap();
    let report = lint_directory(&loaded, &options).unwrap();
    assert_eq!((report.files, report.findings.len()), (1, 0));

    let options = Options::resolve(
        &Default::default(),
        &[],
        &[],
        None,
        vec![fixture("ban-drop-table")],
    )
    .unwrap();
    let err = lint_directory(&loaded, &options).unwrap_err();
    assert!(
        err.to_string()
            .contains("is not a migration file or folder"),
        "{err}"
    );

    let bad = migrations_format::settings::LintSettings {
        select: vec!["require-concurrent-index".to_owned()],
        ..Default::default()
    };
    let err = Options::resolve(&bad, &[], &[], None, Vec::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "migrations.toml [lint]: unknown lint rule `require-concurrent-index`; \
         `migrations lint --list-rules` lists them"
    );
    let err = Options::resolve(&bad, &[], &[], Some("v2"), Vec::new()).unwrap_err();
    assert!(
        err.to_string().starts_with("migrations.toml [lint]"),
        "{err}"
    );
    let err = Options::resolve(&Default::default(), &[], &[], Some("v2"), Vec::new()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("--since: `v2` is not a version"),
        "{err}"
    );
}

#[test]
fn docs_name_every_rule() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/lint.md"))
            .expect("docs/lint.md");
    for rule in migrations_lint::all_rules() {
        assert!(
            docs.contains(&format!("`{}`", rule.id)),
            "docs/lint.md does not describe `{}`",
            rule.id
        );
    }
}

/// Random statements over the words the rules look for: no panic, every finding inside the
/// file.
#[test]
fn random_input_never_panics() {
    const WORDS: &[&str] = &[
        "ALTER",
        "TABLE",
        "TYPE",
        "ADD",
        "VALUE",
        "'v'",
        "SET",
        "LOCAL",
        "SESSION",
        "RESET",
        "lock_timeout",
        "=",
        "0",
        "TO",
        "DEFAULT",
        "CREATE",
        "INDEX",
        "CONCURRENTLY",
        "ON",
        "t",
        "s.t",
        "\"T\"",
        "(",
        ")",
        ",",
        ";",
        "\n",
        "BEGIN",
        "COMMIT",
        "DROP",
        "IF",
        "EXISTS",
        "NOT",
        "REFERENCES",
        "LOCK",
        "IN",
        "MODE",
        "set_config",
        "true",
        "false",
        "VACUUM",
        "FULL",
        "TRUNCATE",
        "-- migrations:lint-ignore all\n",
        "/*",
        "*/",
        "$$",
        "E'\\''",
        "CONSTRAINT",
        "CHECK",
        "FOREIGN",
        "KEY",
        "VALID",
        "é",
        "ROLLBACK",
        "TRIGGER",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let rules = RuleSet::new(&["all"], &[]).unwrap();
    for i in 0..1500 {
        let len = (next() % 30) as usize;
        let text: String = (0..len)
            .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ");
        let directives = migrations_format::directive::parse_header(&text).unwrap_or_default();
        for (no_transaction, direction) in [
            (false, migrations_format::Direction::Up),
            (true, migrations_format::Direction::Down),
        ] {
            let input = FileInput {
                path: Path::new("x.sql"),
                text: &text,
                direction,
                no_transaction: no_transaction ^ (i % 3 == 0),
                directives: &directives,
            };
            let report = lint_file(&input, &rules);
            let lines = text.lines().count().max(1) as u32;
            for f in &report.findings {
                assert!(f.line >= 1 && f.line <= lines + 1, "{f} in {text:?}");
            }
        }
    }
}

#[test]
fn the_unwritten_fixture_is_what_new_writes() {
    // `migrations new` writes `template::up_file`; the fixture must not drift from it.
    let path = fixture("unwritten-migration").join("fires/1_users.up.sql");
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        migrations_format::template::up_file("1_users.up.sql")
    );
}
