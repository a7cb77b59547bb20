//! The name of the index a `CREATE INDEX CONCURRENTLY` statement builds, so the runner can check
//! that index's `indisvalid` even when `IF NOT EXISTS` found a leftover invalid one.

use super::cursor::Cursor;
use super::lexer::Lexer;
use super::split::HEAD_TOKENS;

/// The index name as written (`i`, `"Odd Name"`, `s.i`), ready for `to_regclass`; `None` when
/// the statement is not a `CREATE [UNIQUE] INDEX CONCURRENTLY` or leaves the name to the server.
pub fn created_index_name(statement: &str) -> Option<String> {
    // The name comes within the statement's first words: only its head is lexed.
    let tokens: Vec<_> = Lexer::new(statement).take(HEAD_TOKENS).collect();
    let mut c = Cursor::new(&tokens);
    if !c.eat("create") {
        return None;
    }
    c.eat("unique");
    if !c.eat_words(&["index", "concurrently"]) {
        return None;
    }
    if c.eat("if") && !c.eat_words(&["not", "exists"]) {
        return None;
    }
    // `CREATE INDEX CONCURRENTLY ON t ...` leaves the name to the server.
    if c.is("on") {
        return None;
    }
    let name = c.eat_name()?;
    c.is("on").then_some(name)
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
            (
                "CREATE INDEX CONCURRENTLY s . /* c */ i\nON t (x)",
                Some("s.i"),
            ),
            ("CREATE INDEX CONCURRENTLY \"on\" ON t (x)", Some("\"on\"")),
            ("CREATE INDEX CONCURRENTLY ON t (x)", None),
            ("CREATE INDEX i ON t (x)", None),
            ("DROP INDEX CONCURRENTLY i", None),
            ("CREATE INDEX CONCURRENTLY IF EXISTS i ON t (x)", None),
            ("CREATE INDEX CONCURRENTLY i", None),
            ("CREATE INDEX CONCURRENTLY 'i' ON t (x)", None),
        ];
        for (sql, expected) in cases {
            assert_eq!(created_index_name(sql).as_deref(), expected, "{sql}");
        }
    }
}
