//! What the loader needs to know about a file's SQL, from one pass of the splitter.

#[cfg(feature = "dir")]
use crate::directive::{parse_comment, Directive};
use crate::sql::split_statements;
#[cfg(feature = "dir")]
use crate::sql::{classify_statement, tokenize};

/// A statement PostgreSQL refuses inside a transaction block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonTransactionalStatement {
    /// 1-based line of the statement's first token.
    pub line: u32,
    /// 1-based column of the statement's first token.
    pub column: u32,
    /// The construct, for example `CREATE INDEX CONCURRENTLY`.
    pub what: &'static str,
}

#[cfg(feature = "dir")]
pub(crate) struct SqlFacts {
    pub statement_count: usize,
    pub non_transactional: Vec<NonTransactionalStatement>,
    /// Line and message of a construct left open at the end of the file.
    pub unterminated: Option<(u32, String)>,
    /// Directives (other than `lint-ignore`) standing after SQL, where they have no effect.
    pub misplaced_directives: Vec<(u32, String)>,
}

#[cfg(feature = "dir")]
pub(crate) fn sql_facts(text: &str) -> SqlFacts {
    let split = split_statements(text);
    let unterminated = split.unterminated.map(|u| {
        (
            u.line,
            format!("{u}; close it, or the server will refuse the whole file"),
        )
    });
    let first_sql_offset = split.statements.first().map(|s| s.span.start);
    let misplaced_directives = misplaced_directives(text, first_sql_offset);
    let non_transactional = split
        .statements
        .iter()
        .filter_map(|s| {
            classify_statement(s).map(|kind| NonTransactionalStatement {
                line: s.line,
                column: s.column,
                what: kind.name(),
            })
        })
        .collect();
    SqlFacts {
        statement_count: split.statements.len(),
        non_transactional,
        unterminated,
        misplaced_directives,
    }
}

/// `-- migrations:` comments after the first statement: only `lint-ignore` (which covers the
/// statement after it) belongs there. Others are errors rather than silently ignored; unknown
/// ones are reported by the header parser when they are in the header.
#[cfg(feature = "dir")]
fn misplaced_directives(text: &str, first_sql_offset: Option<usize>) -> Vec<(u32, String)> {
    let Some(first_sql) = first_sql_offset else {
        return Vec::new();
    };
    tokenize(text)
        .into_iter()
        .filter(|t| t.span.start > first_sql)
        .filter_map(|t| {
            let body = t.text.strip_prefix("--")?;
            match parse_comment(body)? {
                Ok(Directive::LintIgnore(_)) => None,
                Ok(_) => Some((
                    t.line,
                    format!(
                        "`{}` stands after SQL, where it has no effect; move it to the top of the \
                         file, before any SQL",
                        t.text.trim()
                    ),
                )),
                Err(message) => Some((t.line, message)),
            }
        })
        .collect()
}

/// Byte ranges of a file's statements, each to be sent as a query of its own (how a
/// no-transaction file runs). Computed once, at build time for embedded migrations.
pub fn statement_ranges(text: &str) -> Vec<(usize, usize)> {
    split_statements(text)
        .statements
        .iter()
        .map(|s| (s.span.start, s.span.end))
        .collect()
}
