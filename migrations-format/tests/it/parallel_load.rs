//! The loader reads, hashes and splits files on every core: the result and the problems are
//! the same as one file at a time would give, in file order, and a file is split once, with
//! memory bounded by its statements, not its tokens.

use std::fs;

use migrations_format::{load_dir, statement_ranges, Checksum, ProblemKind};

/// 120 migrations (240 files, enough for the loader's threads), three of them broken in
/// different ways far apart: the problems come out in version order, one per file.
#[test]
fn a_large_directory_loads_as_file_by_file_and_reports_in_order() {
    let dir = tempfile::tempdir().unwrap();
    for v in 1..=120 {
        let up = match v {
            7 => "SELECT 'unterminated;\n".to_owned(),
            60 => "\\set x 1\nSELECT 1;\n".to_owned(),
            // CRLF and a BOM: normalised, and checksummed as the normalised text.
            90 => "\u{feff}CREATE TABLE t90 (a int);\r\nSELECT 1;\r\n".to_owned(),
            _ => format!("CREATE TABLE t{v} (a int);\nINSERT INTO t{v} VALUES ({v});\n"),
        };
        fs::write(dir.path().join(format!("{v}_m.up.sql")), up).unwrap();
        fs::write(
            dir.path().join(format!("{v}_m.down.sql")),
            format!("DROP TABLE t{v};\n"),
        )
        .unwrap();
    }
    fs::write(dir.path().join("113_m.down.sql"), b"DROP TABLE \xff;\n").unwrap();
    let error = load_dir(dir.path()).unwrap_err();
    let found: Vec<(ProblemKind, String)> = error
        .problems
        .iter()
        .map(|p| {
            let file = p.path.file_name().unwrap().to_string_lossy().into_owned();
            (p.kind, format!("{file}:{}", p.line.unwrap_or(0)))
        })
        .collect();
    assert_eq!(
        found,
        [
            (ProblemKind::Unterminated, "7_m.up.sql:1".to_owned()),
            (ProblemKind::PsqlOnly, "60_m.up.sql:1".to_owned()),
            (ProblemKind::NotUtf8, "113_m.down.sql:1".to_owned()),
        ]
    );

    fs::write(dir.path().join("7_m.up.sql"), "SELECT 7;\n").unwrap();
    fs::write(dir.path().join("60_m.up.sql"), "SELECT 60;\n").unwrap();
    fs::write(dir.path().join("113_m.down.sql"), "DROP TABLE t113;\n").unwrap();
    let loaded = load_dir(dir.path()).unwrap();
    assert_eq!(loaded.migrations.len(), 120);
    for (i, m) in loaded.migrations.iter().enumerate() {
        assert_eq!(m.version.value(), i as i64 + 1);
        for file in std::iter::once(&m.up).chain(m.down.as_ref()) {
            assert_eq!(file.checksum, Checksum::of_normalized(&file.text));
            assert_eq!(file.statements, statement_ranges(&file.text));
        }
    }
    let m90 = &loaded.migrations[89].up;
    assert_eq!(m90.text, "CREATE TABLE t90 (a int);\nSELECT 1;\n");
    assert_eq!(m90.statements, [(0, 24), (26, 34)]);
    // Every file read is tracked (the macro rebuilds on an edit of any of them).
    assert_eq!(loaded.inputs.len(), 240);
}

/// A seed-data migration of 200,000 rows: one statement, its range the whole INSERT, found by
/// the one split the loader makes.
#[test]
fn a_large_insert_is_one_statement() {
    let mut sql = String::from("CREATE TABLE seed (id int, name text);\nINSERT INTO seed VALUES\n");
    for i in 0..200_000 {
        sql.push_str(&format!("({i}, 'name {i}'),\n"));
    }
    sql.push_str("(200000, 'last');\n");
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("1_seed.up.sql"), &sql).unwrap();
    let loaded = load_dir(dir.path()).unwrap();
    let up = &loaded.migrations[0].up;
    assert_eq!(up.statements.len(), 2);
    assert_eq!(up.statements[1].1, sql.len() - 2);
    assert_eq!(up.statements, statement_ranges(&sql));
}
