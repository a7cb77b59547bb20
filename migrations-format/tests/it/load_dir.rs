//! The run-time loader on real directories: both layouts, settings, and every malformed input of
//! SPEC section 1 with the message a user reads.

use std::fs;
use std::path::{Path, PathBuf};

use migrations_format::{load_dir, Checksum, Layout, LoadError, ProblemKind};

struct Dir(tempfile::TempDir);

impl Dir {
    fn new(files: &[(&str, &str)]) -> Dir {
        let dir = Dir(tempfile::tempdir().unwrap());
        for (path, text) in files {
            dir.write(path, text.as_bytes());
        }
        dir
    }

    fn write(&self, path: &str, bytes: &[u8]) {
        let full = self.0.path().join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, bytes).unwrap();
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn error(&self) -> LoadError {
        match load_dir(self.path()) {
            Ok(d) => panic!(
                "expected an error, loaded {} migrations",
                d.migrations.len()
            ),
            Err(e) => e,
        }
    }

    /// The single problem's kind and its text with the temp dir replaced by `$DIR`.
    fn single_problem(&self) -> (ProblemKind, String) {
        let e = self.error();
        assert_eq!(e.problems.len(), 1, "{e}");
        let text = e.problems[0]
            .to_string()
            .replace(&self.path().display().to_string(), "$DIR");
        (e.problems[0].kind, text)
    }
}

#[test]
fn loads_both_layouts_in_order() {
    let dir = Dir::new(&[
        ("10_ten.up.sql", "CREATE TABLE ten ();\n"),
        ("10_ten.down.sql", "DROP TABLE ten;\n"),
        ("2_two/up.sql", "CREATE TABLE two ();"),
        ("2_two/down.sql", "DROP TABLE two;"),
        (
            "3_three/up.sql",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON two (x);",
        ),
        ("3_three/metadata.toml", "run_in_transaction = false\n"),
        ("README.md", "# notes\n"),
        (".gitkeep", ""),
        ("migrations.lock", "whatever\n"),
        ("notes/readme.txt", "not a migration folder\n"),
    ]);
    let d = load_dir(dir.path()).unwrap();
    let got: Vec<(i64, &str, Layout, bool, bool)> = d
        .migrations
        .iter()
        .map(|m| {
            (
                m.version.value(),
                m.name.as_str(),
                m.layout,
                m.up.no_transaction,
                m.down.is_some(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (2, "two", Layout::Folder, false, true),
            (3, "three", Layout::Folder, true, false),
            (10, "ten", Layout::Flat, false, true),
        ]
    );
    assert_eq!(
        d.migrations[2].up.checksum,
        Checksum::of_normalized("CREATE TABLE ten ();\n")
    );
    assert_eq!(d.migrations[0].up.path, dir.path().join("2_two/up.sql"));
}

#[test]
fn normalises_text_before_checksumming() {
    let dir = Dir::new(&[("1_a.up.sql", "\u{feff}SELECT 1;\r\nSELECT 2;\r\n")]);
    let d = load_dir(dir.path()).unwrap();
    assert_eq!(d.migrations[0].up.text, "SELECT 1;\nSELECT 2;\n");
    assert_eq!(
        d.migrations[0].up.checksum,
        Checksum::of_normalized("SELECT 1;\nSELECT 2;\n")
    );
}

#[test]
fn directives_set_transaction_mode_and_timeouts() {
    let dir = Dir::new(&[
        (
            "1_a.up.sql",
            "-- migrations:no-transaction\n-- migrations:lock-timeout=2s\nVACUUM;\n",
        ),
        ("1_a.down.sql", "SELECT 1;\n"),
        (
            "2_b.up.sql",
            "-- no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS i;\n",
        ),
    ]);
    let d = load_dir(dir.path()).unwrap();
    let a = &d.migrations[0];
    assert!(a.up.no_transaction);
    assert!(
        !a.down.as_ref().unwrap().no_transaction,
        "a directive covers its own file only"
    );
    assert_eq!(
        a.up.directives.lock_timeout,
        Some(std::time::Duration::from_secs(2))
    );
    assert!(d.migrations[1].up.no_transaction, "sqlx's spelling");
}

#[test]
fn ignore_and_require_down_from_settings() {
    let dir = Dir::new(&[
        ("migrations.toml", "ignore = [\"data_*.sql\", \"drafts\"]\n"),
        ("data_oauth_github.sql", "INSERT INTO x VALUES (1);\n"),
        ("drafts/1_x.up.sql", "SELECT 1;\n"),
        ("1_a.up.sql", "SELECT 1;\n"),
    ]);
    assert_eq!(load_dir(dir.path()).unwrap().migrations.len(), 1);

    dir.write(
        "migrations.toml",
        b"ignore = [\"data_*.sql\", \"drafts\"]\nrequire_down = true\n",
    );
    let (kind, text) = dir.single_problem();
    assert_eq!(kind, ProblemKind::MissingDown);
    assert!(
        text.starts_with("$DIR/1_a.up.sql: this migration has no down file"),
        "{text}"
    );
}

#[test]
fn down_only_comments_is_a_noop_down() {
    let dir = Dir::new(&[
        ("1_a.up.sql", "SELECT 1;\n"),
        ("1_a.down.sql", "-- nothing to undo\n"),
    ]);
    let d = load_dir(dir.path()).unwrap();
    assert!(d.migrations[0].down.as_ref().unwrap().is_empty);
}

#[test]
fn non_transactional_statement_in_a_down_is_recorded_not_refused() {
    let dir = Dir::new(&[
        ("1_a.up.sql", "SELECT 1;\n"),
        ("1_a.down.sql", "\nDROP INDEX CONCURRENTLY i;\n"),
    ]);
    let d = load_dir(dir.path()).unwrap();
    let down = d.migrations[0].down.as_ref().unwrap();
    assert_eq!(down.non_transactional.len(), 1);
    assert_eq!(down.non_transactional[0].line, 2);
    assert_eq!(down.non_transactional[0].what, "DROP INDEX CONCURRENTLY");
}

// ---- bad input: each names the file (and line) and says what to do ----

#[test]
fn bad_file_name() {
    let (kind, text) = Dir::new(&[("0001_init.sql", "SELECT 1;")]).single_problem();
    assert_eq!(kind, ProblemKind::BadName);
    assert_eq!(
        text,
        "$DIR/0001_init.sql: `0001_init.sql` is not a migration file name: expected \
         <version>_<name>.up.sql or <version>_<name>.down.sql; if it is the up half of a \
         migration, rename it to `0001_init.up.sql`, or list it under `ignore` in migrations.toml"
    );
}

#[test]
fn stray_sql_file() {
    let (kind, text) = Dir::new(&[
        ("1_a.up.sql", "SELECT 1;"),
        ("data_oauth_github.sql", "INSERT INTO t VALUES (1);"),
    ])
    .single_problem();
    assert_eq!(kind, ProblemKind::BadName);
    assert!(
        text.starts_with(
            "$DIR/data_oauth_github.sql: `data_oauth_github.sql` is not a migration file name"
        ),
        "{text}"
    );
}

#[test]
fn bad_folder_name_with_sql_inside() {
    let (kind, text) = Dir::new(&[("create_users/up.sql", "SELECT 1;")]).single_problem();
    assert_eq!(kind, ProblemKind::BadName);
    assert!(
        text.contains(
            "$DIR/create_users: folder `create_users` holds .sql files but is not a migration name"
        ),
        "{text}"
    );
}

#[test]
fn folder_without_up() {
    let (kind, text) = Dir::new(&[("1_a/down.sql", "SELECT 1;")]).single_problem();
    assert_eq!(kind, ProblemKind::MissingUp);
    assert!(
        text.starts_with("$DIR/1_a: migration folder without up.sql"),
        "{text}"
    );
}

#[test]
fn unexpected_sql_in_folder() {
    let (kind, text) =
        Dir::new(&[("1_a/up.sql", "SELECT 1;"), ("1_a/Down.sql", "SELECT 1;")]).single_problem();
    assert_eq!(kind, ProblemKind::BadName);
    assert!(
        text.contains("$DIR/1_a/Down.sql: unexpected `Down.sql`"),
        "{text}"
    );
}

#[test]
fn orphan_down() {
    let (kind, text) = Dir::new(&[("1_a.down.sql", "SELECT 1;")]).single_problem();
    assert_eq!(kind, ProblemKind::MissingUp);
    assert_eq!(
        text,
        "$DIR/1_a.down.sql: down file without an up file; add `1_a.up.sql` or remove this file"
    );
}

#[test]
fn duplicate_version_across_layouts() {
    let (kind, text) =
        Dir::new(&[("1_a.up.sql", "SELECT 1;"), ("1_b/up.sql", "SELECT 2;")]).single_problem();
    assert_eq!(kind, ProblemKind::DuplicateVersion);
    assert!(
        text.contains("version 1 is used twice, by `1_a.up.sql` and `1_b/`"),
        "{text}"
    );
    // `1` and `001` are the same version.
    let (kind, _) =
        Dir::new(&[("1_a.up.sql", "SELECT 1;"), ("001_b.up.sql", "SELECT 2;")]).single_problem();
    assert_eq!(kind, ProblemKind::DuplicateVersion);
}

#[test]
fn comment_only_up_is_a_noop_migration() {
    // sqlx runs such files (deliberate no-ops kept in released histories); they load, and the
    // lint's `empty-migration` flags them instead.
    let text = "-- no up-migration, we only have a down-migration as validation\n\n/* and */\n";
    let dir = Dir::new(&[("1_a.up.sql", text), ("1_a.down.sql", "SELECT 1;\n")]);
    let d = load_dir(dir.path()).unwrap();
    let up = &d.migrations[0].up;
    assert!(up.is_empty);
    assert_eq!(up.text, text);
    // Checksummed like any other file: editing a comment is an edit.
    assert_eq!(up.checksum, Checksum::of_file_text(text));
    // Also with no-transaction, and in a diesel folder.
    let dir = Dir::new(&[
        ("1_a.up.sql", "-- migrations:no-transaction\n-- nothing\n"),
        ("2_b/up.sql", ""),
    ]);
    let d = load_dir(dir.path()).unwrap();
    assert!(d.migrations.iter().all(|m| m.up.is_empty));
    assert!(d.migrations[0].up.no_transaction);
}

#[test]
fn unknown_directive() {
    let (kind, text) = Dir::new(&[(
        "1_a.up.sql",
        "-- hello\n-- migrations:no-transacton\nVACUUM;\n",
    )])
    .single_problem();
    assert_eq!(kind, ProblemKind::BadDirective);
    assert!(
        text.starts_with("$DIR/1_a.up.sql:2: unknown directive `-- migrations:no-transacton`"),
        "{text}"
    );
}

#[test]
fn directive_after_sql() {
    let (kind, text) =
        Dir::new(&[("1_a.up.sql", "SELECT 1;\n-- migrations:no-transaction\n")]).single_problem();
    assert_eq!(kind, ProblemKind::BadDirective);
    assert!(text.starts_with("$DIR/1_a.up.sql:2: "), "{text}");
    assert!(text.contains("top of the file"), "{text}");
}

#[test]
fn not_utf8() {
    let dir = Dir::new(&[]);
    dir.write("1_a.up.sql", b"SELECT 1;\nSELECT '\xff';\n");
    let (kind, text) = dir.single_problem();
    assert_eq!(kind, ProblemKind::NotUtf8);
    assert_eq!(
        text,
        "$DIR/1_a.up.sql:2: the file is not valid UTF-8 (bad byte at offset 18); save it as UTF-8"
    );
}

#[test]
fn concurrently_without_no_transaction() {
    let (kind, text) = Dir::new(&[(
        "1_a.up.sql",
        "CREATE TABLE t (x int);\n\nCREATE INDEX CONCURRENTLY i ON t (x);\n",
    )])
    .single_problem();
    assert_eq!(kind, ProblemKind::NonTransactional);
    assert!(text.starts_with("$DIR/1_a.up.sql:3: CREATE INDEX CONCURRENTLY cannot run inside a transaction block; add `-- migrations:no-transaction` as the first line"), "{text}");

    let (_, text) = Dir::new(&[("1_a/up.sql", "VACUUM;\n")]).single_problem();
    assert!(
        text.contains("VACUUM cannot run inside a transaction block"),
        "{text}"
    );
}

#[test]
fn metadata_contradicting_a_directive() {
    let (kind, text) = Dir::new(&[
        ("1_a/up.sql", "-- migrations:no-transaction\nVACUUM;\n"),
        ("1_a/metadata.toml", "run_in_transaction = true\n"),
    ])
    .single_problem();
    assert_eq!(kind, ProblemKind::BadMetadata);
    assert!(text.contains("$DIR/1_a/up.sql:1: `no-transaction` contradicts `run_in_transaction = true` in 1_a/metadata.toml"), "{text}");

    let (kind, text) = Dir::new(&[
        ("1_a/up.sql", "SELECT 1;\n"),
        ("1_a/metadata.toml", "run_in_transaction = no\n"),
    ])
    .single_problem();
    assert_eq!(kind, ProblemKind::BadMetadata);
    assert!(
        text.starts_with("$DIR/1_a/metadata.toml: invalid metadata.toml"),
        "{text}"
    );
}

#[test]
fn bad_settings() {
    let (kind, text) = Dir::new(&[
        ("migrations.toml", "ignor = []\n"),
        ("1_a.up.sql", "SELECT 1;"),
    ])
    .single_problem();
    assert_eq!(kind, ProblemKind::BadSettings);
    assert!(
        text.starts_with("$DIR/migrations.toml: invalid settings:"),
        "{text}"
    );
    assert!(text.contains("ignor"), "{text}");
}

#[test]
fn missing_directory() {
    let dir = Dir::new(&[]);
    let missing: PathBuf = dir.path().join("nope");
    let e = load_dir(&missing).unwrap_err();
    assert_eq!(e.kinds(), vec![ProblemKind::Io]);
    assert_eq!(
        e.to_string(),
        format!(
            "{}: the migrations directory does not exist; create it (`migrations init`), or \
             point to the right one",
            missing.display()
        )
    );
}

#[test]
fn unterminated_string() {
    let (kind, text) =
        Dir::new(&[("1_a.up.sql", "SELECT 1;\nSELECT 'oops;\nSELECT 2;\n")]).single_problem();
    assert_eq!(kind, ProblemKind::Unterminated);
    assert!(text.starts_with("$DIR/1_a.up.sql:2: "), "{text}");
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let e = Dir::new(&[
        ("1_a.up.sql", "SELECT 1;"),
        ("1_b.up.sql", "SELECT 1;"),
        ("2_c.down.sql", "SELECT 1;"),
        ("x.sql", "SELECT 1;"),
    ])
    .error();
    let mut kinds = e.kinds();
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        kinds,
        vec![
            ProblemKind::BadName,
            ProblemKind::DuplicateVersion,
            ProblemKind::MissingUp
        ]
    );
}

// ---- statements the runner cannot run as written ----

/// Every problem of a directory, with the temp dir replaced by `$DIR`.
fn problems(dir: &Dir) -> Vec<(ProblemKind, String)> {
    let shown = dir.path().display().to_string();
    dir.error()
        .problems
        .iter()
        .map(|p| (p.kind, p.to_string().replace(&shown, "$DIR")))
        .collect()
}

const BREAKS_TX: &str = "would break the transaction the runner wraps this file in (the file \
                         and its history record commit together); drop the statement, or add \
                         `-- migrations:no-transaction` as the first line of the file";

#[test]
fn commit_in_a_transactional_up_is_refused() {
    // The reproduction: the first INSERT would be committed without a history row.
    let (kind, text) = Dir::new(&[(
        "1_a.up.sql",
        "CREATE TABLE t (x text);\nINSERT INTO t VALUES ('a');\nCOMMIT;\nINSERT INTO t VALUES ('x');\n",
    )])
    .single_problem();
    assert_eq!(kind, ProblemKind::TransactionControl);
    assert_eq!(text, format!("$DIR/1_a.up.sql:3: `COMMIT` {BREAKS_TX}"));
}

#[test]
fn every_transaction_control_statement_is_named_at_its_line() {
    let dir = Dir::new(&[(
        "1_a.up.sql",
        "begin isolation level serializable;\nSTART TRANSACTION;\nSAVEPOINT s;\n\
         ROLLBACK TO SAVEPOINT s;\nRELEASE s;\nCOMMIT AND CHAIN;\nend;\nROLLBACK;\nabort work;\n\
         PREPARE TRANSACTION 'p';\nSELECT 'COMMIT', $$ROLLBACK$$; -- END;\n\
         CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  \
         SELECT CASE WHEN x > 0 THEN 1 END;\nEND;\nVACUUM;\n",
    )]);
    let got = problems(&dir);
    let named = |line: u32, what: &str| {
        (
            ProblemKind::TransactionControl,
            format!("$DIR/1_a.up.sql:{line}: `{what}` {BREAKS_TX}"),
        )
    };
    let mut expected = vec![
        named(1, "BEGIN"),
        named(2, "START TRANSACTION"),
        named(6, "COMMIT"),
        named(7, "END"),
        named(8, "ROLLBACK"),
        named(9, "ABORT"),
        named(10, "PREPARE TRANSACTION"),
    ];
    expected.push((
        ProblemKind::NonTransactional,
        "$DIR/1_a.up.sql:16: VACUUM cannot run inside a transaction block; add \
         `-- migrations:no-transaction` as the first line of the file (and keep it the only \
         statement of its migration, with IF NOT EXISTS / IF EXISTS so it can be retried)"
            .to_owned(),
    ));
    assert_eq!(got, expected);
}

#[test]
fn transaction_control_in_a_diesel_folder_names_its_metadata() {
    let (kind, text) =
        Dir::new(&[("2024-01-01-000000_a/up.sql", "SELECT 1;\nEND;\n")]).single_problem();
    assert_eq!(kind, ProblemKind::TransactionControl);
    assert!(
        text.starts_with("$DIR/2024-01-01-000000_a/up.sql:2: `END` would break"),
        "{text}"
    );
    let dir = Dir::new(&[
        ("2024-01-01-000000_a/up.sql", "SELECT 1;\nEND;\n"),
        (
            "2024-01-01-000000_a/metadata.toml",
            "run_in_transaction = true\n",
        ),
    ]);
    let (_, text) = dir.single_problem();
    assert!(
        text.ends_with("drop the statement, or set `run_in_transaction = false` in metadata.toml"),
        "{text}"
    );
}

#[test]
fn transaction_control_is_fine_where_the_file_manages_transactions() {
    let block = "BEGIN;\nUPDATE t SET x = 1;\nCOMMIT;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x);\n";
    let dir = Dir::new(&[
        (
            "1_a.up.sql",
            &format!("-- migrations:no-transaction\n{block}"),
        ),
        ("1_a.down.sql", &format!("-- no-transaction\n{block}")),
        ("2_b/up.sql", block),
        ("2_b/metadata.toml", "run_in_transaction = false\n"),
    ]);
    let d = load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    for m in &d.migrations {
        let files = std::iter::once(&m.up).chain(m.down.as_ref());
        for f in files {
            let what: Vec<&str> = f.non_transactional.iter().map(|s| s.what).collect();
            assert_eq!(what, ["CREATE INDEX CONCURRENTLY"], "{}", f.path.display());
        }
    }
}

#[test]
fn transaction_control_in_a_down_is_recorded_for_the_runner() {
    let dir = Dir::new(&[
        ("1_a.up.sql", "SELECT 1;\n"),
        (
            "1_a.down.sql",
            "DELETE FROM t;\nCOMMIT;\nDROP INDEX CONCURRENTLY i;\nrollback to s;\n",
        ),
    ]);
    let d = load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let down = d.migrations[0].down.as_ref().unwrap();
    let found: Vec<(u32, &str, bool)> = down
        .non_transactional
        .iter()
        .map(|s| (s.line, s.what, s.transaction_control))
        .collect();
    assert_eq!(
        found,
        [(2, "COMMIT", true), (3, "DROP INDEX CONCURRENTLY", false)]
    );
}

#[test]
fn psql_meta_commands_are_refused_in_up_and_down_files() {
    let dir = Dir::new(&[
        (
            "1_a.up.sql",
            "\\set ON_ERROR_STOP on\nCREATE TABLE t (x text);\n",
        ),
        (
            "1_a.down.sql",
            "-- migrations:no-transaction\nDROP TABLE t;\n\\connect other\n",
        ),
        (
            "2_b.up.sql",
            "-- migrations:no-transaction\nSELECT 1;\n\\i setup.sql\n\\c db\nSELECT 2 \\gset\n",
        ),
        ("2_b.down.sql", "SELECT 1;\n\\.\n"),
    ]);
    assert_eq!(
        problems(&dir),
        vec![
            (
                ProblemKind::PsqlOnly,
                "$DIR/1_a.up.sql:1: drop the psql meta-command `\\set`; the runner sends SQL to \
                 the server, not to psql"
                    .to_owned()
            ),
            (
                ProblemKind::PsqlOnly,
                "$DIR/1_a.down.sql:3: drop the psql meta-command `\\connect`; the runner sends \
                 SQL to the server, not to psql"
                    .to_owned()
            ),
            (
                ProblemKind::PsqlOnly,
                "$DIR/2_b.up.sql:3: drop the psql meta-command `\\i`; the runner sends SQL to \
                 the server, not to psql (2 more lines are written for psql: 4, 5)"
                    .to_owned()
            ),
            (
                ProblemKind::PsqlOnly,
                "$DIR/2_b.down.sql:2: drop the psql meta-command `\\.`; the runner sends SQL to \
                 the server, not to psql"
                    .to_owned()
            ),
        ]
    );
}

#[test]
fn backslashes_in_strings_comments_and_bodies_are_sql() {
    let dir = Dir::new(&[(
        "1_a.up.sql",
        "SELECT E'line\\nbreak', 'C:\\dir', U&'\\0041';\n-- \\set x\n/* \\i f */\n\
         DO $$ BEGIN RAISE NOTICE E'\\\\'; END $$;\n\
         CREATE FUNCTION f() RETURNS text AS $body$ SELECT '\\c' $body$ LANGUAGE sql;\n",
    )]);
    let d = load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.migrations.len(), 1);
}

#[test]
fn copy_from_stdin_with_its_data_is_one_problem() {
    // As pg_dump writes it: the data lines hold quotes, semicolons and backslashes, which must
    // not turn into a flood of other problems (an unterminated string, a stray directive).
    let data: String = (1..=40)
        .map(|i| format!("{i}\tO'Brien; -- migrations:bogus\t\\N\n"))
        .collect();
    let dump = format!(
        "SET client_encoding = 'UTF8';\nCREATE TABLE public.t (id int, name text, note text);\n\n\
         COPY public.t (id, name, note) FROM stdin;\n{data}\\.\n\n\
         CREATE INDEX t_name ON public.t (name);\n"
    );
    let dir = Dir::new(&[
        ("1_a.up.sql", dump.as_str()),
        ("1_a.down.sql", "COPY t FROM STDIN;\n"),
        (
            "2_b.up.sql",
            "-- migrations:no-transaction\ncopy t from stdin with (format csv);\n1,x\n\\.\n\
             \\set x 1\nCOMMIT;\nCOPY u FROM stdin;\n",
        ),
    ]);
    assert_eq!(
        problems(&dir),
        vec![
            (
                ProblemKind::PsqlOnly,
                "$DIR/1_a.up.sql:4: `COPY ... FROM stdin` reads its data from psql (here the 40 \
                 lines after it), and the runner sends only SQL; turn the data into INSERT \
                 statements, or load it with COPY ... FROM a server-side file"
                    .to_owned()
            ),
            (
                ProblemKind::PsqlOnly,
                "$DIR/1_a.down.sql:1: `COPY ... FROM stdin` reads its data from psql, and the \
                 runner sends only SQL; turn the data into INSERT statements, or load it with \
                 COPY ... FROM a server-side file"
                    .to_owned()
            ),
            (
                ProblemKind::PsqlOnly,
                "$DIR/2_b.up.sql:2: `COPY ... FROM stdin` reads its data from psql (here the \
                 line after it), and the runner sends only SQL; turn the data into INSERT \
                 statements, or load it with COPY ... FROM a server-side file (2 more lines are \
                 written for psql: 5, 7)"
                    .to_owned()
            ),
        ]
    );
}

#[test]
fn psql_input_does_not_hide_other_problems() {
    // After the data block the file is read as psql reads it: the COMMIT is still found.
    let dir = Dir::new(&[(
        "1_a.up.sql",
        "COPY t FROM stdin;\n1\t'\n\\.\nCOMMIT;\nSELECT 'open;\n",
    )]);
    let kinds: Vec<(ProblemKind, Option<u32>)> = dir
        .error()
        .problems
        .iter()
        .map(|p| (p.kind, p.line))
        .collect();
    assert_eq!(
        kinds,
        [
            (ProblemKind::PsqlOnly, Some(1)),
            (ProblemKind::Unterminated, Some(5)),
            (ProblemKind::TransactionControl, Some(4)),
        ]
    );
}

// ---- the real crates.io history ----

#[test]
fn corpus_refuses_the_stray_file_until_ignored() {
    let e = load_dir(&migrations_tests::corpus_dir()).unwrap_err();
    assert_eq!(e.kinds(), vec![ProblemKind::BadName], "{e}");
    assert!(e.to_string().contains("data_oauth_github.sql"), "{e}");

    // The corpus with a migrations.toml that ignores the stray file.
    let copy = migrations_tests::corpus_copy();
    let d = load_dir(copy.path()).unwrap();
    assert_eq!(d.migrations.len(), 285);
    assert_eq!(
        d.migrations.iter().filter(|m| m.up.no_transaction).count(),
        7
    );
    assert!(d.migrations.iter().all(|m| m.down.is_some()));

    // diesel's order: version digit strings compared as strings.
    let mut diesel: Vec<String> = d
        .migrations
        .iter()
        .map(|m| m.version.digits().to_owned())
        .collect();
    diesel.sort();
    let ours: Vec<&str> = d.migrations.iter().map(|m| m.version.digits()).collect();
    assert_eq!(ours, diesel);
    assert_eq!(d.migrations[0].name, "diesel_initial_setup");

    // Checksums are SHA-256 of the normalised file (BOM dropped, CRLF and CR made LF),
    // computed here independently of the crate's own normalisation.
    let independent = |raw: &str| -> String {
        use sha2::{Digest, Sha256};
        let text = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let mut scripts = 0;
    for m in &d.migrations {
        for file in std::iter::once(&m.up).chain(m.down.as_ref()) {
            let raw = fs::read_to_string(copy.path().join(&file.path)).unwrap();
            assert_eq!(
                file.checksum.to_hex(),
                independent(&raw),
                "{}",
                file.path.display()
            );
            scripts += 1;
        }
    }
    assert_eq!(scripts, 570);
}
