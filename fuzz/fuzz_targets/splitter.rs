//! The statement splitter and the statement classifier: `sql::split_statements`,
//! `sql::classify_statement`, `sql::non_transactional`, `statement_ranges`,
//! `sql::created_index_name`, over the lexer.
//!
//! Invariants beyond "no panic":
//! - the lexer's tokens cover the input exactly, in order, at char boundaries;
//! - statement spans are in order, within the input, non-overlapping, non-empty, and each
//!   statement's text is the slice of the input at its span (so at char boundaries);
//! - a statement's text neither starts nor ends with whitespace or a comment (unless a
//!   construct left open runs to the end of the input), and its line and column are those of
//!   its first byte;
//! - its tokens lie within its span, and its leading comments lie between the previous
//!   statement and it;
//! - `statement_ranges` gives the same spans; the unterminated construct, if any, starts
//!   within the input;
//! - a statement is split again into itself alone, unless it holds a `;` that the splitter
//!   kept in parentheses, a body or a quote (then at least it does not split into more
//!   statements than it has top-level `;`s plus one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use migrations_format::sql::{
    classify_statement, created_index_name, non_transactional, split_statements, tokenize,
};
use migrations_format::statement_ranges;

/// 1-based line and column (in characters) of byte `offset` in `text`. A line ends at LF, or
/// at a CR not followed by LF (as the lexer counts them, after the server's lexer).
fn position(text: &str, offset: usize) -> (u32, u32) {
    let (mut line, mut column) = (1u32, 1u32);
    for (i, c) in text[..offset].char_indices() {
        let lone_cr = c == '\r' && text.as_bytes().get(i + 1) != Some(&b'\n');
        if c == '\n' || lone_cr {
            (line, column) = (line + 1, 1);
        } else {
            column += 1;
        }
    }
    (line, column)
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };

    let tokens = tokenize(sql);
    let mut at = 0;
    for t in &tokens {
        assert_eq!(t.span.start, at, "tokens are contiguous");
        assert!(t.span.end > t.span.start, "no empty token");
        assert_eq!(
            sql.get(t.span.clone()),
            Some(t.text),
            "token text is its slice"
        );
        at = t.span.end;
    }
    assert_eq!(at, sql.len(), "tokens cover the input");

    let split = split_statements(sql);
    if let Some(u) = &split.unterminated {
        assert!(u.offset < sql.len());
        assert!(sql.is_char_boundary(u.offset));
        assert_eq!(position(sql, u.offset), (u.line, u.column));
    }
    let mut previous_end = 0;
    for s in &split.statements {
        assert!(
            s.span.start >= previous_end,
            "in order, no overlap: {sql:?}"
        );
        assert!(s.span.start < s.span.end, "non-empty: {sql:?}");
        assert!(s.span.end <= sql.len(), "within the input");
        assert!(sql.is_char_boundary(s.span.start) && sql.is_char_boundary(s.span.end));
        assert_eq!(
            &sql[s.span.clone()],
            s.text,
            "text is the slice at its span"
        );
        assert!(!s.text.trim().is_empty());
        assert!(!s.text.starts_with(char::is_whitespace), "{sql:?}");
        // (A string or comment left open runs to the end of the input, whitespace included.)
        if split.unterminated.is_none() {
            assert!(!s.text.ends_with(char::is_whitespace), "{sql:?}");
        }
        assert!(
            !s.text.starts_with("--") && !s.text.starts_with("/*"),
            "{sql:?}"
        );
        assert_eq!(position(sql, s.span.start), (s.line, s.column), "{sql:?}");
        let first = s.tokens.first().expect("a statement has tokens");
        let last = s.tokens.last().expect("a statement has tokens");
        assert_eq!(first.span.start, s.span.start);
        assert_eq!(last.span.end, s.span.end);
        assert!(!first.is_trivia() && !last.is_trivia());
        for c in &s.leading_comments {
            assert!(c.is_comment());
            assert!(
                c.span.start >= previous_end && c.span.end <= s.span.start,
                "{sql:?}"
            );
        }
        previous_end = s.span.end;

        let _ = classify_statement(s);
        let _ = non_transactional(s.text);
        if let Some(name) = created_index_name(s.text) {
            assert!(!name.is_empty());
        }

        // A statement does not split into more than it holds.
        let again = split_statements(s.text);
        assert!(!again.statements.is_empty(), "{:?}", s.text);
        if !s.text.contains(';') {
            assert_eq!(again.statements.len(), 1, "{:?}", s.text);
            assert_eq!(again.statements[0].text, s.text);
        }
    }
    let ranges: Vec<(usize, usize)> = split
        .statements
        .iter()
        .map(|s| (s.span.start, s.span.end))
        .collect();
    assert_eq!(statement_ranges(sql), ranges);
    let _ = non_transactional(sql);
});
