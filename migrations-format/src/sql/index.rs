//! The name of the index a `CREATE INDEX CONCURRENTLY` statement builds, so the runner can check
//! that index's `indisvalid` even when `IF NOT EXISTS` found a leftover invalid one.

use super::lexer::{tokenize, TokenKind};

/// The index name as written (`i`, `"Odd Name"`, `s.i`), ready for `to_regclass`; `None` when
/// the statement is not a `CREATE [UNIQUE] INDEX CONCURRENTLY` or leaves the name to the server.
pub fn created_index_name(statement: &str) -> Option<String> {
    let tokens = tokenize(statement);
    let mut words = tokens.iter().filter(|t| !t.is_trivia()).peekable();
    let mut next_is = |word: &str| match words.peek() {
        Some(t) if t.is_word(word) => {
            words.next();
            true
        }
        _ => false,
    };
    if !next_is("create") {
        return None;
    }
    next_is("unique");
    if !(next_is("index") && next_is("concurrently")) {
        return None;
    }
    if next_is("if") && !(next_is("not") && next_is("exists")) {
        return None;
    }
    let mut name = String::new();
    for t in words {
        if t.is_word("on") {
            break;
        }
        match t.kind {
            TokenKind::Word | TokenKind::QuotedIdent => name.push_str(t.text),
            TokenKind::Punct | TokenKind::Operator if t.text == "." => name.push('.'),
            _ => return None,
        }
    }
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::created_index_name;

    #[test]
    fn names() {
        let cases = [
            ("CREATE INDEX CONCURRENTLY i ON t (x)", Some("i")),
            (
                "create unique index concurrently if not exists \"Odd Name\" on t (x)",
                Some("\"Odd Name\""),
            ),
            ("CREATE INDEX CONCURRENTLY s.i ON t (x)", Some("s.i")),
            ("CREATE INDEX CONCURRENTLY ON t (x)", None),
            ("CREATE INDEX i ON t (x)", None),
            ("DROP INDEX CONCURRENTLY i", None),
            ("CREATE INDEX CONCURRENTLY IF EXISTS i ON t (x)", None),
        ];
        for (sql, expected) in cases {
            assert_eq!(created_index_name(sql).as_deref(), expected, "{sql}");
        }
    }
}
