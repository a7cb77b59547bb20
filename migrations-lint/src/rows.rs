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
//! exactly as before. The rows left out are replaced, in the text squawk parses, by block
//! comments of the same length, so every byte offset (and so every line and column of a finding)
//! is unchanged; identical comments are one token in squawk's tree (rowan interns tokens), so
//! the rows cost a few kilobytes there, whatever their size. What squawk no longer sees is a
//! syntax error inside a row after the first: the server reports it when the migration runs.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

use migrations_format::sql::{Lexer, Statement, TokenKind};
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

/// The byte range (in the file) of the rows after the first of `statement`, when it is an
/// `INSERT ... VALUES` of at least `min_len` bytes and two rows or more whose rows no rule needs
/// as a tree (see the module documentation); `None` otherwise. The range starts right after the
/// first row's `)` and ends right after the last row's `)`.
pub(crate) fn rows_after_first(statement: &Statement<'_>, min_len: usize) -> Option<Range<usize>> {
    if statement.text.len() < min_len {
        return None;
    }
    let base = statement.span.start;
    let mut tokens = Lexer::new(statement.text).filter(|t| !t.is_trivia());
    if !tokens.next()?.is_word("insert") {
        return None;
    }
    // The head, up to `VALUES` outside parentheses (`INSERT INTO t (a, b) OVERRIDING SYSTEM
    // VALUE VALUES`; a `VALUES` inside parentheses is a subquery's, not the statement's).
    let mut depth = 0usize;
    for t in tokens.by_ref() {
        match t.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth = depth.checked_sub(1)?,
            TokenKind::Word if depth == 0 && t.is_word("values") => break,
            _ => {}
        }
    }
    // The first row.
    if tokens.next()?.kind != TokenKind::LParen {
        return None;
    }
    let first_end = close(&mut tokens)?;
    // The rows after it, each `, ( ... )`; what follows the last (ON CONFLICT, RETURNING, or
    // nothing) stays in the tree.
    let mut last_end = first_end;
    let mut rest = Lexer::new(statement.text.get(first_end..)?).filter(|t| !t.is_trivia());
    while let Some(comma) = rest.next() {
        if comma.kind != TokenKind::Comma {
            break;
        }
        if rest.next()?.kind != TokenKind::LParen {
            return None;
        }
        last_end = first_end + close(&mut rest)?;
    }
    if last_end == first_end {
        return None; // one row
    }
    let rows = statement.text.get(first_end..last_end)?;
    rows_need_no_tree(rows).then(|| base + first_end..base + last_end)
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

/// The first string constant in `rows` (a range of `text` from [`rows_after_first`]) whose value
/// `wanted` accepts, with its byte offset in `text`. The rows are parsed by squawk a chunk of
/// whole rows at a time (as `VALUES <rows>`), so a constant's value is read as everywhere else
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
    // Cut at the commas between rows: the rows start after the comma that follows the first.
    let mut depth = 0usize;
    let mut chunk_start = None;
    for t in Lexer::new(text.get(rows.clone())?) {
        match t.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth = depth.saturating_sub(1),
            TokenKind::Comma if depth == 0 => {
                let at = rows.start + t.span.start;
                match chunk_start {
                    None => chunk_start = Some(at + 1),
                    Some(from) if at - from >= CHUNK => {
                        if let Some(found) = search(from..at) {
                            return Some(found);
                        }
                        chunk_start = Some(at + 1);
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }
    search(chunk_start?..rows.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use migrations_format::sql::split_statements;

    fn rows(sql: &str) -> Option<String> {
        let split = split_statements(sql);
        rows_after_first(&split.statements[0], 0).map(|r| sql[r].to_owned())
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
        assert_eq!(rows_after_first(&split.statements[0], 100), None);
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
        let rows = rows_after_first(&split.statements[0], 0).unwrap();
        let wanted = |v: &str| (v == "x'19999").then_some(());
        let (offset, ()) = find_string(&sql, &rows, wanted).unwrap();
        assert!(sql[offset..].starts_with("E'x\\'19999'"));
        let (offset, ()) = find_string(&sql, &rows, |v| (v == "v1").then_some(())).unwrap();
        assert!(sql[offset..].starts_with("'v1'"));
        assert!(find_string(&sql, &rows, |v| (v == "a").then_some(())).is_none());
    }
}
