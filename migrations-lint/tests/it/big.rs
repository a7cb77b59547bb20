//! Large seed-data statements (`src/rows.rs`): squawk's tree holds only the first row of an
//! `INSERT ... VALUES` over 64 KiB, yet every rule that reads inside rows still fires, at the
//! line and column of the row that makes it fire; a file of one-row `INSERT`s, whose runs the
//! rules read as one statement each, keeps the findings and ignores around them; and linting
//! a 9 MB `INSERT`, or 12 MB of one-row `INSERT`s, takes at most 3x the file in memory
//! (measured from a child process).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use migrations_format::load_dir;
use migrations_lint::{lint_directory, lint_file, FileInput, Options, RuleSet};

/// `INSERT INTO feelings (id, mood, note) VALUES` with `rows` rows of about 40 bytes (over
/// 64 KiB from 2,000 rows), row `i` written by `row(i)` when it returns one.
fn insert(rows: usize, row: impl Fn(usize) -> Option<String>) -> String {
    let mut sql = String::from("INSERT INTO feelings (id, mood, note) VALUES\n");
    for i in 0..rows {
        let sep = if i + 1 == rows { ";\n" } else { ",\n" };
        let text = row(i).unwrap_or_else(|| format!("({i}, 'ok', 'note {i:06}')"));
        let _ = write!(sql, "{text}{sep}");
    }
    sql
}

/// `line:column:rule` of every finding of `rules` in a transactional up file.
fn lint(text: &str, rules: &RuleSet) -> Vec<String> {
    let directives = migrations_format::directive::parse_header(text).unwrap();
    let input = FileInput {
        path: Path::new("1_seed.up.sql"),
        text,
        direction: migrations_format::Direction::Up,
        no_transaction: false,
        directives: &directives,
    };
    lint_file(&input, rules)
        .findings
        .iter()
        .map(|f| format!("{}:{}:{}", f.line, f.column, f.rule))
        .collect()
}

/// 1-based line and column of the first `needle` in `text` (ASCII text).
fn at(text: &str, needle: &str) -> String {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in the text"));
    let line = text[..offset].matches('\n').count() + 1;
    let column = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{line}:{column}")
}

#[test]
fn an_enum_value_used_in_a_late_row_is_found() {
    // The ALTER TYPE adds 'meh'; row 15,000 of the INSERT in the same transaction uses it.
    let mut text = String::from("ALTER TYPE mood ADD VALUE 'meh';\n");
    text.push_str(&insert(20_000, |i| {
        (i == 15_000).then(|| format!("({i}, 'meh', 'the late one')"))
    }));
    text.push_str("CREATE INDEX feelings_mood ON feelings (mood);\n");
    assert!(text.len() > 500_000);
    let rules = RuleSet::only(&[
        "enum-value-used-in-transaction",
        "require-concurrent-index-creation",
    ])
    .unwrap();
    assert_eq!(
        lint(&text, &rules),
        [
            format!(
                "{}:enum-value-used-in-transaction",
                at(&text, "'meh', 'the")
            ),
            // After the rows, positions are the file's.
            format!(
                "{}:require-concurrent-index-creation",
                at(&text, "CREATE INDEX")
            ),
        ]
    );
}

#[test]
fn a_set_config_call_in_a_late_row_is_a_setting() {
    let text = insert(20_000, |i| {
        (i == 19_000).then(|| format!("({i}, 'ok', set_config('work_mem', '1GB', false))"))
    });
    let rules = RuleSet::only(&["session-level-set"]).unwrap();
    assert_eq!(
        lint(&text, &rules),
        [format!("{}:session-level-set", at(&text, "set_config("))]
    );
}

#[test]
fn a_long_name_in_a_late_row_is_too_long() {
    let name = "f".repeat(64);
    let text = insert(20_000, |i| {
        (i == 12_345).then(|| format!("({i}, 'ok', {name}())"))
    });
    let rules = RuleSet::only(&["identifier-too-long"]).unwrap();
    assert_eq!(
        lint(&text, &rules),
        [format!("{}:identifier-too-long", at(&text, &name))]
    );
}

#[test]
fn the_head_and_the_tail_are_still_read() {
    // squawk's ban-duplicate-column-assignments reads the column list and the ON CONFLICT
    // ... SET; a syntax error after the rows is reported where it is.
    let mut text = insert(20_000, |_| None)
        .replace("(id, mood, note)", "(id, mood, mood)")
        .replace(
            ";\n",
            "\nON CONFLICT (id) DO UPDATE SET note = 'x', note = 'y';\n",
        );
    let rules = RuleSet::only(&["ban-duplicate-column-assignments"]).unwrap();
    let found = lint(&text, &rules);
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(
        found[0],
        format!(
            "{}:ban-duplicate-column-assignments",
            at(&text, "mood, mood")
        )
    );
    assert!(found[2].starts_with(&at(&text, "note = 'x'")), "{found:?}");
    text.push_str("SELECT FROM WHERE;\n");
    let directives = migrations_format::Directives::default();
    let report = lint_file(
        &FileInput {
            path: Path::new("1_seed.up.sql"),
            text: &text,
            direction: migrations_format::Direction::Up,
            no_transaction: false,
            directives: &directives,
        },
        &RuleSet::default(),
    );
    let warned: Vec<Option<u32>> = report.warnings.iter().map(|w| w.line).collect();
    assert_eq!(warned, [Some(20_003)], "{:?}", report.warnings);
}

/// `n` one-row `INSERT`s (about 60 bytes each: over 1 MiB from 18,000), statement `i`
/// written by `statement(i)` when it returns one.
fn inserts(n: usize, statement: impl Fn(usize) -> Option<String>) -> String {
    let mut sql = String::new();
    for i in 0..n {
        let text = statement(i).unwrap_or_else(|| {
            format!("INSERT INTO feelings (id, mood, note) VALUES ({i}, 'ok', 'note {i:06}');")
        });
        let _ = writeln!(sql, "{text}");
    }
    sql
}

#[test]
fn a_file_of_one_row_inserts_still_has_its_findings() {
    // A file over 1 MiB leaves its plain one-row INSERTs out of squawk's tree: an enum value
    // used in one is still found, a statement whose head squawk flags is still read, and the
    // CREATE INDEX after them is where it is.
    let mut text = String::from(
        "ALTER TYPE mood ADD VALUE 'meh';
",
    );
    text.push_str(&inserts(30_000, |i| match i {
        17_000 => Some(format!(
            "INSERT INTO feelings (id, mood, note) VALUES ({i}, 'meh', 'late');"
        )),
        23_000 => Some(format!(
            "INSERT INTO feelings (id, note, note) VALUES ({i}, 'twice', 'noted');"
        )),
        _ => None,
    }));
    text.push_str(
        "CREATE INDEX feelings_mood ON feelings (mood);
",
    );
    assert!(text.len() > 1024 * 1024);
    let rules = RuleSet::only(&[
        "enum-value-used-in-transaction",
        "require-concurrent-index-creation",
        "ban-duplicate-column-assignments",
    ])
    .unwrap();
    let dup = at(&text, "note, note");
    let second = at(&text, "note) VALUES (23000");
    assert_eq!(
        lint(&text, &rules),
        [
            format!(
                "{}:enum-value-used-in-transaction",
                at(&text, "'meh', 'late")
            ),
            format!("{dup}:ban-duplicate-column-assignments"),
            format!("{second}:ban-duplicate-column-assignments"),
            format!(
                "{}:require-concurrent-index-creation",
                at(&text, "CREATE INDEX")
            ),
        ]
    );
}

#[test]
fn runs_of_one_row_inserts_keep_the_findings_and_ignores_around_them() {
    // No ALTER TYPE: the runs of plain INSERTs are one statement each for the rules
    // (`syntax::FileSyntax`). What stands between runs, or breaks one, is still read where it
    // is: an INSERT squawk flags, an ignore comment before a plain INSERT, a setting and the
    // DDL after it.
    let mut text = inserts(20_000, |i| match i {
        7_000 => Some(format!(
            "INSERT INTO feelings (id, note, note) VALUES ({i}, 'twice', 'noted');"
        )),
        // A comment breaks the run; the ignore names a rule that does not fire here.
        9_000 => Some(format!(
            "-- migrations:lint-ignore require-concurrent-index-creation\n\
             INSERT INTO feelings (id, mood, note) VALUES ({i}, 'ok', 'ignored');"
        )),
        12_000 => Some("CREATE INDEX feelings_mood ON feelings (mood);".to_owned()),
        // Ignored: the same rule on the next statement.
        15_000 => Some(
            "-- migrations:lint-ignore require-concurrent-index-creation\n\
             CREATE INDEX feelings_note ON feelings (note);"
                .to_owned(),
        ),
        18_000 => Some("SET lock_timeout = 0;".to_owned()),
        _ => None,
    });
    text.push_str("ALTER TABLE feelings ALTER COLUMN note SET NOT NULL;\n");
    assert!(text.len() > 1024 * 1024);
    let rules = RuleSet::only(&[
        "require-concurrent-index-creation",
        "ban-duplicate-column-assignments",
        "lock-timeout-guard",
        "session-level-set",
    ])
    .unwrap();
    assert_eq!(
        lint(&text, &rules),
        [
            format!(
                "{}:ban-duplicate-column-assignments",
                at(&text, "note, note")
            ),
            format!(
                "{}:ban-duplicate-column-assignments",
                at(&text, "note) VALUES (7000")
            ),
            format!(
                "{}:require-concurrent-index-creation",
                at(&text, "CREATE INDEX feelings_mood")
            ),
            format!("{}:session-level-set", at(&text, "SET lock_timeout")),
            format!(
                "{}:lock-timeout-guard",
                at(&text, "ALTER TABLE feelings ALTER")
            ),
        ]
    );
}

/// The child of [`linting_large_seed_data_takes_at_most_3x_the_file`]: lints the directory
/// named by `BIG_LINT_DIR` (ignored unless run by it).
#[test]
#[ignore = "run by linting_large_seed_data_takes_at_most_3x_the_file in a child process"]
fn child_lints_big_lint_dir() {
    let Some(dir) = std::env::var_os("BIG_LINT_DIR") else {
        return;
    };
    let dir = load_dir(Path::new(&dir)).unwrap();
    let report = lint_directory(&dir, &Options::default()).unwrap();
    // prefer-bigint-over-int on `id int`, and nothing from the rows.
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    println!("linted");
}

#[test]
fn linting_large_seed_data_takes_at_most_3x_the_file() {
    let scratch = tempfile::tempdir().unwrap();
    // The same test binary, running only the child test; /usr/bin/time reports its peak.
    let peak_mb = |dir: &Path| -> f64 {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "maxrss %M"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "big::child_lints_big_lint_dir",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("BIG_LINT_DIR", dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("linted"),
            "{stdout}\n{stderr}"
        );
        let kb: f64 = stderr
            .lines()
            .find_map(|l| l.strip_prefix("maxrss "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        kb / 1024.0
    };
    // The process's own size: the same child on a one-line migration.
    let small = scratch.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    std::fs::write(
        small.join("1_seed.up.sql"),
        "CREATE TABLE feelings (id int PRIMARY KEY);\n",
    )
    .unwrap();
    std::fs::write(small.join("1_seed.down.sql"), "DROP TABLE feelings;\n").unwrap();
    let base = peak_mb(&small);
    // One INSERT of many rows, and many one-row INSERTs (as `pg_dump --inserts` writes).
    for (what, rows) in [
        ("one 300,000-row INSERT", insert(300_000, |_| None)),
        ("200,000 one-row INSERTs", inserts(200_000, |_| None)),
    ] {
        let dir = scratch.path().join(what.replace([' ', ','], "_"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text =
            String::from("CREATE TABLE feelings (id int PRIMARY KEY, mood text, note text);\n");
        text.push_str(&rows);
        drop(rows);
        std::fs::write(dir.join("1_seed.up.sql"), &text).unwrap();
        std::fs::write(dir.join("1_seed.down.sql"), "DROP TABLE feelings;\n").unwrap();
        let size_mb = text.len() as f64 / (1024.0 * 1024.0);
        drop(text);
        let peak = peak_mb(&dir);
        assert!(
            peak - base <= 3.0 * size_mb,
            "linting {what} ({size_mb:.1} MB) peaked at {peak:.0} MB ({base:.0} MB without \
             it): more than 3x the file"
        );
    }
}
