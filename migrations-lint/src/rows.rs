//! Large seed-data statements: the rows of an `INSERT ... VALUES` that squawk's tree leaves out.
//!
//! squawk's syntax tree costs about 35 bytes of memory per byte of SQL (a node or token per
//! value, comma and parenthesis), so one 8 MB `INSERT` of 200,000 rows took 300 MB to lint and a
//! 100 MB one would take gigabytes. No rule needs the rows of a `VALUES` list as a tree: the
//! rules read a statement's head (the table, the column list) and tail (`ON CONFLICT ... DO
//! UPDATE SET`, `RETURNING`), which stay in the tree with the first row. Inside the rows, only
//! three rules could fire, and each is covered without the tree:
//!
//! - squawk's `identifier-too-long` (a name in an expression): the rows are left out only when
//!   the lexer finds no identifier longer than 63 bytes in them;
//! - our settings rules (`lock-timeout-guard`, `session-level-set`, ...), through a
//!   `set_config(...)` call: the rows are left out only when no identifier is `set_config`;
//! - `enum-value-used-in-transaction`, which reads string constants: [`find_string`] parses the
//!   rows in chunks when a label was added earlier in the transaction (rare), one chunk's tree at
//!   a time.
//!
//! A comment that names squawk (a `squawk-ignore`) or anything unterminated in the rows also
//! keeps the statement whole, as does a statement shorter than [`ROWS_FROM`]: small files lint
//! exactly as before. In a file of [`DATA_FILE_FROM`] bytes or more (a file of one-row
//! `INSERT`s, as `pg_dump --inserts` writes), a plain data statement (nothing after its rows,
//! its head holding no name over 63 bytes and no column twice: nothing squawk's
//! `identifier-too-long` or `ban-duplicate-column-assignments` could flag) is left out whole. The rows left out are replaced, in the text squawk parses, by block
//! comments of the same length, so every byte offset (and so every line and column of a finding)
//! is unchanged; identical comments are one token in squawk's tree (rowan interns tokens), so
//! the rows cost a few kilobytes there, whatever their size. Consecutive statements left out
//! whole are one run of comments, the `;` and whitespace between them included
//! (`syntax::merged_gaps`): otherwise each would still leave squawk an empty statement, a node
//! of the tree. What squawk no longer sees is a syntax error inside a row after the first: the
//! server reports it when the migration runs.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

use migrations_format::sql::{
    for_each_statement_head, split_statement_heads, Lexer, Statement, TokenKind,
};
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::SourceFile;

use crate::syntax::{start, string_value};

/// Statements shorter than this (in bytes) are always parsed whole: their tree is at most a
/// few megabytes, and small files lint exactly as they always did.
pub(crate) const ROWS_FROM: usize = 64 * 1024;

/// PostgreSQL's longest identifier (NAMEDATALEN - 1), as squawk's `identifier-too-long` counts.
const NAME_MAX: usize = 63;

/// The length of one filler comment; equal comments are one interned token in the tree.
const FILL: usize = 4096;

/// How much of the rows [`find_string`] parses at a time.
const CHUNK: usize = 64 * 1024;

/// Files of at least this many bytes have their plain data statements left out of the tree
/// whole ([`Elided::statement`]): a file of 200,000 one-row `INSERT`s is a tree of 200,000
/// statements otherwise.
pub(crate) const DATA_FILE_FROM: usize = 1024 * 1024;

/// What the tree leaves out of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Elided {
    /// The bytes replaced by comments in the text squawk parses.
    pub gap: Range<usize>,
    /// The rows no tree holds, for [`find_string`]: `gap` itself, or, for a statement left
    /// out whole, its rows from the first `(` to the last `)`.
    pub rows: Range<usize>,
}

/// What the tree may leave out of `statement` (byte ranges of the file), `None` when it needs
/// all of it. `file_len` is the length of the whole file.
///
/// - A *plain data statement* (`INSERT INTO name [(columns)] VALUES (...), ...` with nothing
///   after the rows, no name longer than 63 bytes, no column named twice, and rows a rule
///   needs no tree for) in a file of [`DATA_FILE_FROM`] bytes or more is left out whole: no
///   rule fires on it (squawk's and ours read only its head, which holds nothing they flag).
/// - Otherwise, the rows after the first of an `INSERT ... VALUES` of at least `rows_from`
///   bytes (of any size in a file of [`DATA_FILE_FROM`] bytes), when a rule needs no tree for
///   them; the head, the first row and the tail (`ON CONFLICT`, `RETURNING`) stay.
pub(crate) fn elided(
    statement: &Statement<'_>,
    rows_from: usize,
    file_len: usize,
) -> Option<Elided> {
    if statement.text.len() < rows_from && file_len < DATA_FILE_FROM {
        return None;
    }
    let insert = scan_insert(statement.text)?;
    let base = statement.span.start;
    let text = statement.text;
    if file_len >= DATA_FILE_FROM
        && insert.plain_head
        && insert.tail_empty
        && rows_need_no_tree(text.get(insert.values..insert.last_end)?)
    {
        return Some(Elided {
            gap: statement.span.clone(),
            rows: base + insert.values..base + insert.last_end,
        });
    }
    let small = statement.text.len() < rows_from && file_len < DATA_FILE_FROM;
    if small || insert.last_end == insert.first_end {
        return None; // a small statement of a small file, or one row
    }
    let rows = text.get(insert.first_end..insert.last_end)?;
    rows_need_no_tree(rows).then(|| {
        let gap = base + insert.first_end..base + insert.last_end;
        Elided {
            gap: gap.clone(),
            rows: gap,
        }
    })
}

/// The statements of `text`, runs of plain data statements as their first (see
/// `syntax::FileSyntax`), and where each run ends: `(index of its first statement, byte after the
/// last)`, in order.
pub(crate) fn statements_with_runs(text: &str) -> (Vec<Statement<'_>>, Vec<(usize, usize)>) {
    if text.len() < DATA_FILE_FROM {
        return (split_statement_heads(text).statements, Vec::new());
    }
    let mut statements: Vec<Statement<'_>> = Vec::new();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    // Whether the last statement kept is left out whole, so the next may join it.
    let mut open = false;
    let mut alters_a_type = false;
    for_each_statement_head(text, |s| {
        alters_a_type |= {
            let mut words = s.significant_tokens();
            words.next().is_some_and(|t| t.is_word("alter"))
                && words.next().is_some_and(|t| t.is_word("type"))
        };
        let whole = elided(&s, ROWS_FROM, text.len()).is_some_and(|e| e.gap == s.span);
        if whole && open && s.leading_comments.is_empty() {
            let first = statements.len() - 1;
            match runs.last_mut() {
                Some((at, end)) if *at == first => *end = s.span.end,
                _ => runs.push((first, s.span.end)),
            }
            return;
        }
        open = whole;
        statements.push(s);
    });
    if alters_a_type {
        return (split_statement_heads(text).statements, Vec::new());
    }
    (statements, runs)
}

/// Where an `INSERT ... VALUES` statement's parts are (byte offsets in its text).
struct Insert {
    /// The first row's `(`.
    values: usize,
    /// After the first row's `)`.
    first_end: usize,
    /// After the last row's `)`.
    last_end: usize,
    /// The head before `VALUES` is `INSERT INTO name [AS alias] [(columns)] [OVERRIDING ...
    /// VALUE]` with every name at most 63 bytes and no column named twice.
    plain_head: bool,
    /// Nothing follows the last row.
    tail_empty: bool,
}

/// Reads `text` as an `INSERT ... VALUES (...), ...`; `None` for any other statement (a
/// `VALUES` inside parentheses is a subquery's, not the statement's).
fn scan_insert(text: &str) -> Option<Insert> {
    let mut tokens = Lexer::new(text).filter(|t| !t.is_trivia());
    if !tokens.next()?.is_word("insert") {
        return None;
    }
    let mut depth = 0usize;
    let mut plain_head = true;
    let mut columns: Vec<String> = Vec::new();
    let values = loop {
        let t = tokens.next()?;
        match t.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth = depth.checked_sub(1)?,
            TokenKind::Word if depth == 0 && t.is_word("values") => {
                break tokens.next().filter(|t| t.kind == TokenKind::LParen)?;
            }
            TokenKind::Word | TokenKind::QuotedIdent => {
                plain_head &= t.text.len() <= NAME_MAX;
                if depth == 1 {
                    // A column of the list, as the server folds it.
                    let name = if t.kind == TokenKind::Word {
                        t.text.to_ascii_lowercase()
                    } else {
                        t.text.trim_matches('"').to_owned()
                    };
                    plain_head &= !columns.contains(&name);
                    columns.push(name);
                }
            }
            TokenKind::Comma if depth == 1 => {}
            TokenKind::Punct if depth == 0 && t.text == "." => {}
            _ => plain_head = false,
        }
    };
    plain_head &= depth == 0;
    let first_end = close(&mut tokens)?;
    // The rows after it, each `, ( ... )`; then the tail.
    let mut last_end = first_end;
    let mut rest = Lexer::new(text.get(first_end..)?).filter(|t| !t.is_trivia());
    let mut tail_empty = true;
    while let Some(t) = rest.next() {
        if t.kind != TokenKind::Comma {
            tail_empty = false;
            break;
        }
        if rest.next()?.kind != TokenKind::LParen {
            return None;
        }
        last_end = first_end + close(&mut rest)?;
    }
    Some(Insert {
        values: values.span.start,
        first_end,
        last_end,
        plain_head,
        tail_empty,
    })
}

/// Consumes tokens up to the `)` that closes an open `(`; returns the byte offset after it.
fn close<'a>(
    tokens: &mut impl Iterator<Item = migrations_format::sql::Token<'a>>,
) -> Option<usize> {
    let mut depth = 1usize;
    for t in tokens {
        match t.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(t.span.end);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether nothing in `rows` could make a rule fire that reads the tree inside a row (see the
/// module documentation).
fn rows_need_no_tree(rows: &str) -> bool {
    const SET_CONFIG: &[u8] = b"set_config";
    let names = |text: &str| {
        text.as_bytes()
            .windows(SET_CONFIG.len())
            .any(|w| w.eq_ignore_ascii_case(SET_CONFIG))
    };
    Lexer::new(rows).all(|t| {
        if t.unterminated {
            return false;
        }
        match t.kind {
            TokenKind::Word | TokenKind::QuotedIdent => t.text.len() <= NAME_MAX && !names(t.text),
            TokenKind::LineComment | TokenKind::BlockComment => !t
                .text
                .as_bytes()
                .windows(b"squawk".len())
                .any(|w| w.eq_ignore_ascii_case(b"squawk")),
            _ => true,
        }
    })
}

/// `text` with each of `gaps` (sorted, disjoint, on character boundaries) replaced by block
/// comments of the same length: what squawk parses.
pub(crate) fn blank(text: &str, gaps: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for gap in gaps {
        out.push_str(&text[at..gap.start]);
        fill(&mut out, gap.len());
        at = gap.end;
    }
    out.push_str(&text[at..]);
    out
}

/// `n` bytes of `/* ... */ ` comments, all but the last [`FILL`] bytes long.
fn fill(out: &mut String, mut n: usize) {
    fn comment(out: &mut String, len: usize) {
        out.push_str("/*");
        out.extend(std::iter::repeat_n(' ', len - 5));
        out.push_str("*/ ");
    }
    while n >= FILL + 5 {
        comment(out, FILL);
        n -= FILL;
    }
    if n >= 5 {
        comment(out, n);
    } else {
        out.extend(std::iter::repeat_n(' ', n));
    }
}

/// The first string constant in `rows` (an [`Elided::rows`] of `text`) whose value `wanted`
/// accepts, with its byte offset in `text`. The rows are parsed by squawk a chunk of whole rows
/// at a time (as `VALUES <rows>`), so a constant's value is read as everywhere else
/// ([`string_value`]) while one chunk's tree is alive at a time.
pub(crate) fn find_string<T>(
    text: &str,
    rows: &Range<usize>,
    mut wanted: impl FnMut(&str) -> Option<T>,
) -> Option<(usize, T)> {
    const PREFIX: &str = "VALUES ";
    let mut search = |chunk: Range<usize>| -> Option<(usize, T)> {
        let source = format!("{PREFIX}{}", text.get(chunk.clone())?);
        let parse = catch_unwind(AssertUnwindSafe(|| SourceFile::parse(&source))).ok()?;
        let root = parse.syntax_node();
        root.descendants()
            .filter_map(ast::Literal::cast)
            .find_map(|literal| {
                let found = wanted(&string_value(&literal)?)?;
                Some((chunk.start + start(literal.syntax()) - PREFIX.len(), found))
            })
    };
    // Cut at the commas between rows. The range starts at a row's `(`, or at the comma after
    // the first row (rows after the first).
    let mut depth = 0usize;
    let mut chunk_start = rows.start;
    let mut leading = true;
    for t in Lexer::new(text.get(rows.clone())?) {
        match t.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth = depth.saturating_sub(1),
            TokenKind::Comma if depth == 0 => {
                let at = rows.start + t.span.start;
                if leading {
                    chunk_start = at + 1;
                } else if at - chunk_start >= CHUNK {
                    if let Some(found) = search(chunk_start..at) {
                        return Some(found);
                    }
                    chunk_start = at + 1;
                }
            }
            _ => {}
        }
        leading &= t.is_trivia();
    }
    search(chunk_start..rows.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use migrations_format::sql::split_statements;

    fn rows(sql: &str) -> Option<String> {
        let split = split_statements(sql);
        elided(&split.statements[0], 0, 0).map(|e| {
            assert_eq!(e.gap, e.rows);
            sql[e.gap].to_owned()
        })
    }

    /// What a 1 MiB file leaves out of `sql`'s statement: the gap and the rows.
    fn in_big_file(sql: &str) -> Option<(String, String)> {
        let split = split_statements(sql);
        elided(&split.statements[0], ROWS_FROM, DATA_FILE_FROM)
            .map(|e| (sql[e.gap].to_owned(), sql[e.rows].to_owned()))
    }

    #[test]
    fn plain_data_statements_of_big_files_are_left_out_whole() {
        let whole = |sql: &str, rows: &str| Some((sql.to_owned(), rows.to_owned()));
        assert_eq!(
            in_big_file("INSERT INTO s.t (a, \"B\") VALUES (1, 'x')"),
            whole("INSERT INTO s.t (a, \"B\") VALUES (1, 'x')", "(1, 'x')")
        );
        assert_eq!(
            in_big_file("insert into t as x overriding user value values (1), (2)"),
            whole(
                "insert into t as x overriding user value values (1), (2)",
                "(1), (2)"
            )
        );
        // What a rule reads in the head or the tail keeps the statement (whole: it is small).
        assert_eq!(in_big_file("INSERT INTO t (a, A) VALUES (1, 2)"), None);
        assert_eq!(in_big_file("INSERT INTO t (a, \"a\") VALUES (1, 2)"), None);
        assert_eq!(in_big_file("INSERT INTO t (a.b) VALUES (1)"), None);
        let long = "t".repeat(64);
        assert_eq!(in_big_file(&format!("INSERT INTO {long} VALUES (1)")), None);
        assert_eq!(
            in_big_file("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING"),
            None
        );
        // With a tail, the rows after the first, whatever the statement's size.
        assert_eq!(
            in_big_file("INSERT INTO t VALUES (1), (2) ON CONFLICT DO NOTHING"),
            Some((", (2)".to_owned(), ", (2)".to_owned()))
        );
        assert_eq!(in_big_file("INSERT INTO t VALUES (1) RETURNING id"), None);
        assert_eq!(
            in_big_file("INSERT INTO t VALUES (set_config('a', 'b', false))"),
            None
        );
        assert_eq!(in_big_file("INSERT INTO t SELECT 1"), None);
        // A small file: as before.
        let split = split_statements("INSERT INTO t VALUES (1)");
        assert_eq!(elided(&split.statements[0], ROWS_FROM, 100), None);
    }

    #[test]
    fn finds_the_rows_after_the_first() {
        assert_eq!(
            rows("INSERT INTO t (a, b) VALUES (1, 'x'), (2, f(3)) , (4, '(')").as_deref(),
            Some(", (2, f(3)) , (4, '(')")
        );
        assert_eq!(
            rows("insert into t overriding system value values (1), (2) on conflict (a) do update set a = 1 returning a").as_deref(),
            Some(", (2)")
        );
        // Not a row list of its own: one row, DEFAULT VALUES, a subquery's VALUES, a SELECT.
        assert_eq!(rows("INSERT INTO t VALUES (1)"), None);
        assert_eq!(rows("INSERT INTO t DEFAULT VALUES"), None);
        assert_eq!(
            rows("INSERT INTO t SELECT * FROM (VALUES (1), (2)) v"),
            None
        );
        assert_eq!(rows("SELECT * FROM (VALUES (1), (2)) v"), None);
        assert_eq!(rows("VALUES (1), (2)"), None);
        // What a rule reads inside a row keeps the statement whole.
        let long = "x".repeat(64);
        assert_eq!(rows(&format!("INSERT INTO t VALUES (1), ({long})")), None);
        assert_eq!(
            rows(&format!(
                "INSERT INTO t VALUES (1), (\"{}\")",
                "x".repeat(62)
            )),
            None
        );
        assert!(rows(&format!("INSERT INTO t VALUES (1), ({})", "x".repeat(63))).is_some());
        assert_eq!(
            rows("INSERT INTO t VALUES (1), (pg_catalog.SET_CONFIG('a', 'b', false))"),
            None
        );
        assert_eq!(
            rows("INSERT INTO t VALUES (1), (2) -- squawk-ignore x\n, (3)"),
            None
        );
        assert!(rows("INSERT INTO t VALUES (1), (2) -- two\n, (3)").is_some());
        // A row left open: the tree reports it.
        assert_eq!(rows("INSERT INTO t VALUES (1), (2"), None);
        // Below the size, always whole.
        let split = split_statements("INSERT INTO t VALUES (1), (2)");
        assert_eq!(elided(&split.statements[0], 100, 100), None);
    }

    #[test]
    fn blanks_keep_offsets_and_parse_as_comments() {
        for n in [
            0,
            1,
            4,
            5,
            6,
            FILL - 1,
            FILL,
            FILL + 4,
            FILL + 5,
            3 * FILL + 7,
        ] {
            let mut s = String::new();
            fill(&mut s, n);
            assert_eq!(s.len(), n, "{n}");
            let sql = format!("SELECT 1{s};");
            let parse = SourceFile::parse(&sql);
            assert!(parse.errors().is_empty(), "{n}: {:?}", parse.errors());
        }
        let text = "INSERT INTO t VALUES (1), (2), (3);\nSELECT 'é';";
        let gap = text.find(", (2)").unwrap()..text.find(";").unwrap();
        let blanked = blank(text, std::slice::from_ref(&gap));
        assert_eq!(blanked.len(), text.len());
        assert_eq!(&blanked[gap.end..], &text[gap.end..]);
        assert_eq!(&blanked[..gap.start], &text[..gap.start]);
    }

    #[test]
    fn finds_strings_in_chunks() {
        let mut sql = String::from("INSERT INTO t VALUES ('a')");
        for i in 0..20_000 {
            sql.push_str(&format!(", ('v{i}', E'x\\'{i}')"));
        }
        let split = split_statements(&sql);
        let rows = elided(&split.statements[0], 0, 0).unwrap().rows;
        let wanted = |v: &str| (v == "x'19999").then_some(());
        let (offset, ()) = find_string(&sql, &rows, wanted).unwrap();
        assert!(sql[offset..].starts_with("E'x\\'19999'"));
        let (offset, ()) = find_string(&sql, &rows, |v| (v == "v1").then_some(())).unwrap();
        assert!(sql[offset..].starts_with("'v1'"));
        assert!(find_string(&sql, &rows, |v| (v == "a").then_some(())).is_none());
        // From the first row, as for a statement left out whole.
        let all = sql.find("('a')").unwrap()..sql.len();
        let (offset, ()) = find_string(&sql, &all, |v| (v == "a").then_some(())).unwrap();
        assert_eq!(&sql[offset..offset + 3], "'a'");
        let (offset, ()) = find_string(&sql, &all, |v| (v == "v2").then_some(())).unwrap();
        assert!(sql[offset..].starts_with("'v2'"));
    }
}
