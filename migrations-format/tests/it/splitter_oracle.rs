//! Our statement splitter and lexer checked against PostgreSQL's own parser and scanner
//! (libpg_query, through the `pg_query` crate), on the real crates.io migration history and
//! on the adversarial fixtures in `tests/sql/`.
//!
//! For every `.sql` file:
//! 1. **Statement count**: ours must equal the parser's (`pg_query::split_with_parser`).
//! 2. **Statement text**: the parser's statement `i` runs from just after the previous `;` to
//!    just before its own `;` (the server's `RawStmt` location and length), so it also holds
//!    the whitespace and comments around the statement. Ours starts at the first token that
//!    is not a comment and ends after the last one. So we require our slice to lie inside
//!    the parser's, and the parser's leftover on both sides to be nothing but comments and
//!    whitespace *according to PostgreSQL's scanner*. That is the only normalisation.
//!    (Comment-only and empty files need none: the parser finds no statement in them, and
//!    neither do we.)
//! 3. **Each statement alone**: our text, sent alone, must parse as exactly one statement,
//!    which is what a no-transaction migration relies on.
//! 4. **Tokens**: the spans of our comments, strings, dollar quotes and quoted identifiers
//!    must be those of PostgreSQL's scanner, since those decide which `;` count.
//!
//! Every mismatch of every file is collected and reported together, with both counts.
//! The corpus is found at `../corpus/crates.io/migrations` from this crate, or at
//! `$MIGRATIONS_CORPUS_DIR`; a missing corpus fails the test rather than skipping it, so a
//! broken checkout cannot pass silently.

use std::fmt::Write as _;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use migrations_format::sql::{split_statements, tokenize, StringKind, TokenKind};
use pg_query::protobuf::Token as PgToken;

fn corpus_dir() -> PathBuf {
    let dir = match std::env::var_os("MIGRATIONS_CORPUS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/crates.io/migrations"),
    };
    assert!(
        dir.is_dir(),
        "the crates.io migration corpus is missing at {} (set MIGRATIONS_CORPUS_DIR to its \
         `migrations` folder); this test refuses to pass without it",
        dir.display()
    );
    dir
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql")
}

/// Every `.sql` file under `dir`, sorted.
fn sql_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "sql") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[derive(Default)]
struct Report {
    files: usize,
    statements: usize,
    problems: Vec<String>,
    /// Files that PostgreSQL's parser rejects, with its error.
    invalid_sql: Vec<String>,
}

impl Report {
    fn problem(&mut self, path: &Path, message: impl std::fmt::Display) {
        self.problems.push(format!("{}: {message}", path.display()));
    }

    fn check_all(&mut self, files: &[PathBuf]) {
        for path in files {
            let bytes =
                fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let text =
                String::from_utf8(bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // The format drops a leading BOM before anything reads the SQL (SPEC 1).
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            self.files += 1;
            self.check(path, text);
        }
    }

    fn check(&mut self, path: &Path, sql: &str) {
        let ours = split_statements(sql);
        if let Some(u) = ours.unterminated {
            self.problem(path, format_args!("our lexer found an {u}"));
        }
        self.check_tokens(path, sql);
        // A file the parser rejects (the corpus has one: a down.sql missing a `;`) is still
        // split by PostgreSQL's scanner-based splitter, which counts `;`s outside parentheses
        // as we do; such files are listed, and their statements cannot be parsed alone.
        let (oracle, parsed) = match pg_query::split_with_parser(sql) {
            Ok(statements) => (statements, true),
            Err(parse_error) => match pg_query::split_with_scanner(sql) {
                Ok(statements) => {
                    self.invalid_sql
                        .push(format!("{}: {parse_error}", path.display()));
                    (statements, false)
                }
                Err(e) => {
                    self.problem(
                        path,
                        format_args!("PostgreSQL rejects the file: {parse_error}; {e}"),
                    );
                    return;
                }
            },
        };
        if ours.statements.len() != oracle.len() {
            let mut message = format!(
                "statement count differs: ours {}, PostgreSQL {}",
                ours.statements.len(),
                oracle.len()
            );
            for s in &ours.statements {
                let first_line = s.text.lines().next().unwrap_or("");
                let _ = write!(message, "\n    ours, line {}: {first_line}", s.line);
            }
            self.problem(path, message);
            return;
        }
        for (i, (s, o)) in ours.statements.iter().zip(&oracle).enumerate() {
            self.statements += 1;
            let o_start = o.as_ptr() as usize - sql.as_ptr() as usize;
            let o_span = o_start..o_start + o.len();
            let inside = o_span.start <= s.span.start && s.span.end <= o_span.end;
            let around = [o_span.start..s.span.start, s.span.end..o_span.end];
            if !inside || !around.iter().all(|r| only_comments(sql, r.clone())) {
                self.problem(
                    path,
                    format_args!(
                        "statement {} (line {}) differs:\n    ours:       {:?}\n    PostgreSQL: {:?}",
                        i + 1,
                        s.line,
                        s.text,
                        o.trim()
                    ),
                );
            }
            if !parsed {
                continue;
            }
            match pg_query::parse(s.text) {
                Ok(parsed) if parsed.protobuf.stmts.len() == 1 => {}
                Ok(parsed) => self.problem(
                    path,
                    format_args!(
                        "statement {} (line {}) alone parses as {} statements",
                        i + 1,
                        s.line,
                        parsed.protobuf.stmts.len()
                    ),
                ),
                Err(e) => self.problem(
                    path,
                    format_args!(
                        "statement {} (line {}) alone does not parse: {e}",
                        i + 1,
                        s.line
                    ),
                ),
            }
        }
    }

    /// Compares the spans of our comments, strings, dollar quotes and quoted identifiers
    /// with those of PostgreSQL's scanner.
    fn check_tokens(&mut self, path: &Path, sql: &str) {
        let scanned = match pg_query::scan(sql) {
            Ok(scanned) => scanned,
            Err(e) => {
                self.problem(
                    path,
                    format_args!("PostgreSQL's scanner rejects the file: {e}"),
                );
                return;
            }
        };
        let theirs: Vec<Range<usize>> = scanned
            .tokens
            .iter()
            .filter(|t| {
                let span = t.start as usize..t.end as usize;
                match PgToken::try_from(t.token) {
                    Ok(PgToken::SqlComment | PgToken::CComment)
                    | Ok(PgToken::Sconst | PgToken::Usconst | PgToken::Bconst | PgToken::Xconst)
                    | Ok(PgToken::Uident) => true,
                    // Plain and quoted identifiers are both IDENT: keep the quoted ones.
                    Ok(PgToken::Ident) => sql.get(span).is_some_and(|s| s.starts_with('"')),
                    _ => false,
                }
            })
            .map(|t| t.start as usize..t.end as usize)
            .collect();
        let tokens = tokenize(sql);
        let mut ours: Vec<Range<usize>> = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            match t.kind {
                TokenKind::String(kind) => {
                    // PostgreSQL's scanner reads `N'x'` as the keyword `N` (standing for
                    // NCHAR) followed by a plain string; we keep the prefix in the string.
                    let start = t.span.start + usize::from(kind == StringKind::National);
                    let mut end = t.span.end;
                    // PostgreSQL reads `'a'`, newline, `'b'` as one string (SQL's
                    // continuation; whitespace and `--` comments may come between when a
                    // newline is among them); we keep two string tokens.
                    loop {
                        let mut j = i + 1;
                        let mut newline = false;
                        while let Some(gap) = tokens.get(j).filter(|g| {
                            matches!(g.kind, TokenKind::Whitespace | TokenKind::LineComment)
                        }) {
                            newline |= gap.kind == TokenKind::Whitespace
                                && gap.text.contains(['\n', '\r']);
                            j += 1;
                        }
                        match tokens.get(j) {
                            Some(next)
                                if newline
                                    && next.kind == TokenKind::String(StringKind::Standard) =>
                            {
                                end = next.span.end;
                                i = j;
                            }
                            _ => break,
                        }
                    }
                    ours.push(start..end);
                }
                TokenKind::LineComment
                | TokenKind::BlockComment
                | TokenKind::DollarString
                | TokenKind::QuotedIdent => ours.push(t.span.clone()),
                _ => {}
            }
            i += 1;
        }
        if ours != theirs {
            let first = ours
                .iter()
                .zip(&theirs)
                .find(|(a, b)| a != b)
                .map(|(a, b)| {
                    format!(
                        "ours {:?} vs PostgreSQL {:?}",
                        &sql[a.clone()],
                        sql.get(b.clone())
                    )
                })
                .unwrap_or_else(|| format!("{} tokens vs {}", ours.len(), theirs.len()));
            self.problem(
                path,
                format_args!("token spans differ: first difference {first}"),
            );
        }
    }
}

/// Whether `sql[range]` holds only whitespace and comments, by PostgreSQL's scanner.
fn only_comments(sql: &str, range: Range<usize>) -> bool {
    let Some(text) = sql.get(range) else {
        return false;
    };
    pg_query::scan(text).is_ok_and(|scanned| {
        scanned.tokens.iter().all(|t| {
            matches!(
                PgToken::try_from(t.token),
                Ok(PgToken::SqlComment | PgToken::CComment)
            )
        })
    })
}

fn run(files: &[PathBuf], what: &str) -> Report {
    let mut report = Report::default();
    report.check_all(files);
    println!(
        "{what}: {} files, {} statements checked against PostgreSQL's parser, {} mismatches",
        report.files,
        report.statements,
        report.problems.len()
    );
    for file in &report.invalid_sql {
        println!("  not valid SQL, compared with PostgreSQL's scanner-based splitter: {file}");
    }
    report
}

fn assert_clean(report: Report) {
    assert!(
        report.problems.is_empty(),
        "{} mismatches with PostgreSQL's parser:\n{}",
        report.problems.len(),
        report.problems.join("\n")
    );
}

#[test]
fn splitter_agrees_with_postgres_on_the_crates_io_corpus() {
    let files = sql_files(&corpus_dir());
    let migrations = files
        .iter()
        .filter(|f| {
            f.file_name()
                .is_some_and(|n| n == "up.sql" || n == "down.sql")
        })
        .count();
    // 285 migrations, each with an up.sql and nearly all with a down.sql: far fewer files
    // means the corpus is not where we think it is.
    assert!(
        migrations > 500,
        "only {migrations} up.sql/down.sql files found in the corpus"
    );
    assert_clean(run(&files, "crates.io corpus"));
}

#[test]
fn splitter_agrees_with_postgres_on_adversarial_fixtures() {
    let files = sql_files(&fixtures_dir());
    assert!(
        files.len() >= 10,
        "fixtures missing from {}",
        fixtures_dir().display()
    );
    assert_clean(run(&files, "adversarial fixtures"));
}

/// Not an oracle check, but the corpus is the best real-world input we have for the
/// non-transactional statement check: exactly the seven migrations that diesel's
/// `metadata.toml` runs outside a transaction have such a statement in their up.sql, and the
/// one transactional down.sql holding `CREATE INDEX CONCURRENTLY` is found.
#[test]
fn non_transactional_statements_of_the_corpus() {
    use migrations_format::sql::find_non_transactional;

    let mut no_transaction_ups = Vec::new();
    let mut flagged = Vec::new();
    for path in sql_files(&corpus_dir()) {
        let Some(folder) = path.parent() else {
            continue;
        };
        let metadata = fs::read_to_string(folder.join("metadata.toml")).unwrap_or_default();
        let no_transaction = metadata
            .lines()
            .any(|l| l.replace(' ', "") == "run_in_transaction=false");
        let name = format!(
            "{}/{}",
            folder.file_name().unwrap_or_default().to_string_lossy(),
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        if no_transaction && name.ends_with("/up.sql") {
            no_transaction_ups.push(name.clone());
        }
        let text = fs::read_to_string(&path).expect("a UTF-8 file");
        let found = find_non_transactional(&text);
        if !found.is_empty() && !no_transaction {
            let lines: Vec<String> = found
                .iter()
                .map(|f| format!("{}:{} {}", name, f.line, f.kind))
                .collect();
            flagged.extend(lines);
        }
        if no_transaction && name.ends_with("/up.sql") {
            assert!(
                !found.is_empty(),
                "{name} runs outside a transaction but nothing needs it"
            );
        }
    }
    assert_eq!(no_transaction_ups.len(), 7, "{no_transaction_ups:#?}");
    assert_eq!(
        flagged,
        vec![
            "2024-04-12-144536_remove-downloads-column/down.sql:4 CREATE INDEX CONCURRENTLY",
            "2024-04-12-144536_remove-downloads-column/down.sql:7 CREATE INDEX CONCURRENTLY",
        ]
    );
}

/// The transaction control check against the parser: on every statement of the corpus and of
/// the fixtures, ours flags exactly the statements PostgreSQL parses as a `TransactionStmt`
/// that opens or ends a transaction (`BEGIN`, `START`, `COMMIT`/`END`, `ROLLBACK`/`ABORT`,
/// `PREPARE TRANSACTION`), of the same kind; never `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`,
/// `COMMIT|ROLLBACK PREPARED`, nor anything else.
#[test]
fn transaction_control_agrees_with_postgres() {
    use migrations_format::sql::{classify_transaction_control, TransactionControlKind as K};
    use pg_query::protobuf::TransactionStmtKind as Pg;
    use pg_query::NodeEnum;

    let mut files = sql_files(&corpus_dir());
    files.extend(sql_files(&fixtures_dir()));
    let mut problems = Vec::new();
    let mut flagged = 0;
    for path in &files {
        let text = fs::read_to_string(path).expect("a UTF-8 file");
        for s in split_statements(&text).statements {
            let Ok(parsed) = pg_query::parse(s.text) else {
                continue; // the splitter oracle reports statements that do not parse
            };
            let node = parsed
                .protobuf
                .stmts
                .first()
                .and_then(|raw| raw.stmt.as_ref())
                .and_then(|n| n.node.as_ref());
            let theirs = match node {
                Some(NodeEnum::TransactionStmt(t)) => match Pg::try_from(t.kind) {
                    Ok(Pg::TransStmtBegin) => Some("begin"),
                    Ok(Pg::TransStmtStart) => Some("start"),
                    Ok(Pg::TransStmtCommit) => Some("commit"),
                    Ok(Pg::TransStmtRollback) => Some("rollback"),
                    Ok(Pg::TransStmtPrepare) => Some("prepare"),
                    _ => None,
                },
                _ => None,
            };
            let ours = classify_transaction_control(&s).map(|k| match k {
                K::Begin => "begin",
                K::StartTransaction => "start",
                K::Commit | K::End => "commit",
                K::Rollback | K::Abort => "rollback",
                K::PrepareTransaction => "prepare",
                other => panic!("a new kind of transaction control to map: {other:?}"),
            });
            flagged += usize::from(ours.is_some());
            if ours != theirs {
                problems.push(format!(
                    "{}:{}: ours {ours:?}, PostgreSQL {theirs:?}: {}",
                    path.display(),
                    s.line,
                    s.text
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        flagged >= 15,
        "only {flagged} transaction statements checked"
    );
}
