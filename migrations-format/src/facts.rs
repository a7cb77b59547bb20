//! What the loader needs to know about a file's SQL, from one pass of the splitter.

#[cfg(feature = "dir")]
use crate::directive::{parse_comment, Directive};
use crate::sql::split::for_each_statement_head;
#[cfg(feature = "dir")]
use crate::sql::{
    classify_statement, classify_transaction_control, Lexer, PsqlOnly, PsqlOnlyKind,
    TransactionControlKind,
};

/// A statement that cannot run in the transaction the runner wraps a file in: one PostgreSQL
/// refuses inside a transaction block, or transaction control, which would end the runner's
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonTransactionalStatement {
    /// 1-based line of the statement's first token.
    pub line: u32,
    /// 1-based column of the statement's first token.
    pub column: u32,
    /// The construct, for example `CREATE INDEX CONCURRENTLY` or `COMMIT` (for transaction
    /// control, the name of a [`TransactionControlKind`](crate::sql::TransactionControlKind)).
    pub what: &'static str,
    /// Transaction control (`BEGIN`, `COMMIT`, ...), which PostgreSQL runs but which would
    /// break the runner's transaction, rather than a statement PostgreSQL refuses in one.
    pub transaction_control: bool,
}

#[cfg(feature = "dir")]
pub(crate) struct SqlFacts {
    pub statement_count: usize,
    /// Byte ranges of the statements ([`statement_ranges`], from the same split).
    pub ranges: Vec<(usize, usize)>,
    pub non_transactional: Vec<NonTransactionalStatement>,
    /// Transaction control statements (`BEGIN`, `COMMIT`, ...).
    pub transaction_control: Vec<(TransactionControlKind, NonTransactionalStatement)>,
    /// Line and message of the first input only psql understands, naming the others (one
    /// problem per file: a `COPY` with a thousand data lines is one mistake).
    pub psql: Option<(u32, String)>,
    /// Line and message of a construct left open at the end of the file.
    pub unterminated: Option<(u32, String)>,
    /// Directives (other than `lint-ignore`) standing after SQL, where they have no effect.
    pub misplaced_directives: Vec<(u32, String)>,
}

#[cfg(feature = "dir")]
pub(crate) fn sql_facts(text: &str) -> SqlFacts {
    // Each statement is checked as it is split and only its range kept: every check reads
    // leading words, and holding all statements' tokens at once took 25 times the file on
    // 200,000 one-row INSERTs (issue 19).
    let mut ranges = Vec::new();
    let mut non_transactional = Vec::new();
    let mut transaction_control = Vec::new();
    let split = for_each_statement_head(text, |s| {
        ranges.push((s.span.start, s.span.end));
        if let Some(kind) = classify_statement(&s) {
            non_transactional.push(NonTransactionalStatement {
                line: s.line,
                column: s.column,
                what: kind.name(),
                transaction_control: false,
            });
        }
        if let Some(kind) = classify_transaction_control(&s) {
            let statement = NonTransactionalStatement {
                line: s.line,
                column: s.column,
                what: kind.name(),
                transaction_control: true,
            };
            transaction_control.push((kind, statement));
        }
    });
    let unterminated = split.unterminated.map(|u| {
        (
            u.line,
            format!("{u}; close it, or the server will refuse the whole file"),
        )
    });
    let first_sql_offset = ranges.first().map(|r| r.0);
    let misplaced_directives = misplaced_directives(text, &split.psql, first_sql_offset);
    ranges.shrink_to_fit();
    SqlFacts {
        statement_count: ranges.len(),
        ranges,
        non_transactional,
        transaction_control,
        psql: psql_problem(&split.psql),
        unterminated,
        misplaced_directives,
    }
}

/// The message for a file holding input only psql understands: the first such input with its
/// fix, then where the others are.
#[cfg(feature = "dir")]
fn psql_problem(found: &[PsqlOnly<'_>]) -> Option<(u32, String)> {
    const SHOWN: usize = 5;
    let (first, others) = found.split_first()?;
    let mut message = match first.kind {
        PsqlOnlyKind::MetaCommand(name) => format!(
            "drop the psql meta-command `{name}`; the runner sends SQL to the server, not to psql"
        ),
        PsqlOnlyKind::CopyFromStdin { data_lines } => {
            let data = match data_lines {
                0 => String::new(),
                1 => " (here the line after it)".to_owned(),
                n => format!(" (here the {n} lines after it)"),
            };
            format!(
                "`COPY ... FROM stdin` reads its data from psql{data}, and the runner sends only \
                 SQL; turn the data into INSERT statements, or load it with COPY ... FROM a \
                 server-side file"
            )
        }
    };
    if !others.is_empty() {
        let lines: Vec<String> = others
            .iter()
            .take(SHOWN)
            .map(|o| o.line.to_string())
            .collect();
        let etc = if others.len() > SHOWN { ", ..." } else { "" };
        let (n, s) = match others.len() {
            1 => (1, " is"),
            n => (n, "s are"),
        };
        message.push_str(&format!(
            " ({n} more line{s} written for psql: {}{etc})",
            lines.join(", ")
        ));
    }
    Some((first.line, message))
}

/// `-- migrations:` comments after the first statement: only `lint-ignore` (which covers the
/// statement after it) belongs there. Others are errors rather than silently ignored; unknown
/// ones are reported by the header parser when they are in the header.
#[cfg(feature = "dir")]
fn misplaced_directives(
    text: &str,
    psql: &[PsqlOnly<'_>],
    first_sql_offset: Option<usize>,
) -> Vec<(u32, String)> {
    let Some(first_sql) = first_sql_offset else {
        return Vec::new();
    };
    // Lex the file as the splitter did: psql input blanked out (line ends kept, so lines do
    // not move), or a quote in COPY data would swallow the rest of the file.
    let blanked;
    let text = if psql.is_empty() {
        text
    } else {
        let mut bytes = text.as_bytes().to_vec();
        for p in psql {
            for b in &mut bytes[p.span.clone()] {
                if *b != b'\n' && *b != b'\r' {
                    *b = b' ';
                }
            }
        }
        // Whole characters are blanked (spans end at line ends), so this stays UTF-8.
        blanked = String::from_utf8_lossy(&bytes).into_owned();
        blanked.as_str()
    };
    // Lexed lazily: a file of millions of tokens is never held as a list of them.
    Lexer::new(text)
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
    let mut ranges = Vec::new();
    for_each_statement_head(text, |s| ranges.push((s.span.start, s.span.end)));
    ranges
}
