//! The statement splitter (SPEC 3.3): cuts a migration file into the statements that a
//! no-transaction migration sends one by one.
//!
//! Each statement must go to the server as its own query, because a query string holding
//! several statements runs as one implicit transaction, which is exactly what a
//! no-transaction file must avoid. So the splitter has to agree with the server about where
//! statements end. It works on [`lexer`](super::lexer) tokens, so a `;` in a string, quoted
//! identifier, dollar quote or comment never splits, and it follows psql's rules on top:
//!
//! - a `;` inside parentheses does not end a statement;
//! - in a statement that starts with `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, a SQL-standard
//!   body `BEGIN ATOMIC ... END` may hold `;`s. Much as psql does, we count at parenthesis
//!   depth 0 `BEGIN ATOMIC` (+1), `CASE` (+1, only inside a body, since `CASE` is also closed
//!   by `END`) and `END` (-1), and only a `;` at depth 0 ends the statement. Unlike psql, a
//!   `BEGIN` not followed by `ATOMIC` and a word after a `.` are not counted (see
//!   `StatementState::see_significant`).
//!
//! Statements are slices of the input (from the first token that is not a comment to the end
//! of the last one before the `;`), so positions in messages point into the file as written.
//!
//! Input that only psql understands is skipped and listed in [`Split::psql`], so the loader
//! can refuse it with one clear message instead of the server's syntax error halfway through
//! a run: a meta-command (a `\` outside strings, comments and dollar quotes, which is never
//! SQL) up to the end of its line, and the inline data psql sends after a `COPY ... FROM
//! STDIN` up to its `\.` line. Skipping them, as psql does, keeps everything after them
//! split as psql would (data lines with a lone quote would otherwise swallow the file).

use std::fmt;
use std::ops::Range;

use super::lexer::{Lexer, Token, TokenKind, UnterminatedKind};

/// A file cut into statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split<'a> {
    /// The statements, in order. Empty when the file holds only whitespace and comments.
    pub statements: Vec<Statement<'a>>,
    /// A string, quoted identifier, comment or dollar quote still open at the end of the
    /// file. The server would reject the file; callers should report this first, because a
    /// statement count or check made past it means nothing.
    pub unterminated: Option<Unterminated>,
    /// Input only psql understands (meta-commands, `COPY ... FROM STDIN` and its inline
    /// data), in order. It is not part of any statement; the server cannot run such a file.
    pub psql: Vec<PsqlOnly<'a>>,
}

/// Input written for psql, which the server does not understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsqlOnly<'a> {
    /// What it is.
    pub kind: PsqlOnlyKind<'a>,
    /// Byte range of the input the splitter skipped for it: a meta-command up to the end of
    /// its line; the inline data of a `COPY`, from after its `;` up to the end of the `\.`
    /// line (or of the input), empty when there is none. The `COPY` statement itself is one
    /// of [`Split::statements`].
    pub span: Range<usize>,
    /// 1-based line of the meta-command, or of the `COPY` statement.
    pub line: u32,
    /// 1-based column (in characters) of the meta-command, or of the `COPY` statement.
    pub column: u32,
}

/// What a [`PsqlOnly`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PsqlOnlyKind<'a> {
    /// A psql meta-command: the backslash and its name as written, such as `\set`, `\i`,
    /// `\connect`, `\gset` or `\.`.
    MetaCommand(&'a str),
    /// `COPY ... FROM STDIN`: psql sends the lines after it as the data (pg_dump writes them,
    /// ending with a `\.` line); the runner has no such data to send.
    CopyFromStdin {
        /// How many lines of inline data follow the statement.
        data_lines: usize,
    },
}

/// One statement of a [`Split`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement's text: a slice of the input from its first token that is not a comment
    /// up to the end of its last one, without the terminating `;` (and so without trailing
    /// whitespace or comments). It is one statement, ready to send as a query on its own.
    pub text: &'a str,
    /// Byte range of `text` in the input.
    pub span: Range<usize>,
    /// 1-based line of the statement's first token.
    pub line: u32,
    /// 1-based column (in characters) of the statement's first token.
    pub column: u32,
    /// The statement's tokens, from its first to its last significant token, whitespace and
    /// comments in between included.
    pub tokens: Vec<Token<'a>>,
    /// The comments between the end of the previous statement (or the start of the file) and
    /// this statement, where `-- migrations:lint-ignore` comments for it stand.
    pub leading_comments: Vec<Token<'a>>,
}

impl<'a> Statement<'a> {
    /// The statement's tokens without whitespace and comments.
    pub fn significant_tokens(&self) -> impl Iterator<Item = &Token<'a>> + '_ {
        self.tokens.iter().filter(|t| !t.is_trivia())
    }
}

/// A construct left open at the end of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unterminated {
    /// What was left open.
    pub kind: UnterminatedKind,
    /// Byte offset where it starts.
    pub offset: usize,
    /// 1-based line where it starts.
    pub line: u32,
    /// 1-based column (in characters) where it starts.
    pub column: u32,
}

impl fmt::Display for Unterminated {
    /// `unterminated dollar-quoted string starting at line 12`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unterminated {} starting at line {}",
            self.kind, self.line
        )
    }
}

/// Splits `sql` into statements; see the [module documentation](self).
pub fn split_statements(sql: &str) -> Split<'_> {
    split(sql, usize::MAX)
}

/// How many tokens [`split_statement_heads`] keeps of each statement: far more than the
/// statement checks read (`ALTER TABLE a.b DETACH PARTITION c.d CONCURRENTLY` is 15 with its
/// spaces), and a bound on memory: a 200,000-row `INSERT` is millions of tokens.
pub(crate) const HEAD_TOKENS: usize = 256;

/// [`split_statements`] keeping only the first 256 tokens of each statement in
/// [`Statement::tokens`] (spans, lines and `text` are whole), and only the first word of a
/// data statement (one starting with `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `SELECT` or
/// `VALUES`, which no statement check matches): for the loader's checks, the lint's and the
/// statement ranges, which read a statement's leading words only, in memory bounded by the
/// number of statements rather than of tokens.
pub fn split_statement_heads(sql: &str) -> Split<'_> {
    split(sql, HEAD_TOKENS)
}

/// [`split_statement_heads`] handing each statement to `each` as soon as it is split, instead
/// of collecting them: the returned [`Split`] has empty [`Split::statements`]. For a caller
/// that keeps only a few facts of each statement (the loader keeps its byte range), memory
/// is then bounded by one statement's head, not by the file's statements: 200,000 one-row
/// `INSERT`s held as heads are ~20 tokens of 56 bytes each, 20 times the file.
pub fn for_each_statement_head<'a>(sql: &'a str, each: impl FnMut(Statement<'a>)) -> Split<'a> {
    split_into(sql, HEAD_TOKENS, each)
}

fn split(sql: &str, max_tokens: usize) -> Split<'_> {
    let mut statements = Vec::new();
    let mut split = split_into(sql, max_tokens, |s| statements.push(s));
    split.statements = statements;
    split
}

fn split_into<'a>(sql: &'a str, max_tokens: usize, each: impl FnMut(Statement<'a>)) -> Split<'a> {
    let mut splitter = Splitter {
        src: sql,
        each,
        current: Vec::new(),
        leading_comments: Vec::new(),
        state: StatementState::default(),
        max_tokens: max_tokens.max(1),
        last_end: 0,
    };
    let mut unterminated = None;
    let mut psql = Vec::new();
    // Skipping psql-only input resumes the lexer after it, at a line end: `pos` is where,
    // `line` the line it is on.
    let mut pos = 0;
    let mut line = 1;
    'lex: while pos < sql.len() {
        for token in Lexer::resume(sql, pos, line) {
            if token.kind == TokenKind::Other && token.text == "\\" {
                // psql runs a meta-command on the rest of the line; it is never SQL.
                if let Some(copy) = splitter.finish_statement() {
                    psql.push(copy);
                }
                let end = line_end(sql, token.span.start);
                psql.push(PsqlOnly {
                    kind: PsqlOnlyKind::MetaCommand(meta_command(sql, token.span.start)),
                    span: token.span.start..end,
                    line: token.line,
                    column: token.column,
                });
                (pos, line) = (end, token.line);
                continue 'lex;
            }
            if token.unterminated && unterminated.is_none() {
                if let Some(kind) = UnterminatedKind::of(token.kind) {
                    unterminated = Some(Unterminated {
                        kind,
                        offset: token.span.start,
                        line: token.line,
                        column: token.column,
                    });
                }
            }
            let (semicolon_end, semicolon_line) = (token.span.end, token.line);
            if let Some(mut copy) = splitter.push(token) {
                // psql reads the data from the next line on, up to a `\.` line or the end.
                let (end, data_lines) = copy_data(sql, semicolon_end);
                copy.span = semicolon_end..end;
                copy.kind = PsqlOnlyKind::CopyFromStdin { data_lines };
                psql.push(copy);
                let skipped = count_lines(&sql[semicolon_end..end]);
                (pos, line) = (end, semicolon_line.saturating_add(skipped));
                continue 'lex;
            }
        }
        break;
    }
    if let Some(copy) = splitter.finish_statement() {
        psql.push(copy);
    }
    Split {
        statements: Vec::new(),
        unterminated,
        psql,
    }
}

/// The byte offset of the end of the line holding `from` (its `\n` or `\r`), or the end of
/// the input.
fn line_end(src: &str, from: usize) -> usize {
    src[from..]
        .find(['\n', '\r'])
        .map_or(src.len(), |p| from + p)
}

/// How many line ends the lexer counts in `text`: `\n`, and `\r` not followed by `\n`.
fn count_lines(text: &str) -> u32 {
    let bytes = text.as_bytes();
    let mut n = 0u32;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            n = n.saturating_add(1);
        }
    }
    n
}

/// The meta-command starting with the `\` at `at`, as psql reads its name: the backslash and
/// what follows up to a space or another backslash (`\set`, `\.`, `\dt+`), or `\\`.
/// Bounded, since it is quoted in messages.
fn meta_command(src: &str, at: usize) -> &str {
    let rest = &src[at + 1..];
    let mut end = rest
        .find(|c: char| c.is_whitespace() || c == '\\')
        .unwrap_or(rest.len());
    if end == 0 && rest.starts_with('\\') {
        end = 1;
    }
    if let Some((cut, _)) = rest[..end].char_indices().nth(32) {
        end = cut;
    }
    &src[at..at + 1 + end]
}

/// The inline data after a `COPY ... FROM STDIN` whose `;` ends at `after`: psql sends the
/// lines after that one up to a line that is exactly `\.` (dropped), or to the end of the
/// input. Returns where the skipped text ends (the end of the `\.` line, or of the input) and
/// how many data lines there are.
fn copy_data(src: &str, after: usize) -> (usize, usize) {
    let mut start = match src[after..].find('\n') {
        Some(p) => after + p + 1,
        None => return (src.len(), 0),
    };
    let mut lines = 0;
    while start < src.len() {
        let end = src[start..].find('\n').map_or(src.len(), |p| start + p);
        let line = &src[start..end];
        if line.strip_suffix('\r').unwrap_or(line) == "\\." {
            return (end, lines);
        }
        lines += 1;
        start = end + 1;
    }
    (src.len(), lines)
}

struct Splitter<'a, F> {
    src: &'a str,
    /// Where each statement goes once split.
    each: F,
    /// Tokens of the statement being read, from its first significant token on.
    current: Vec<Token<'a>>,
    /// Comments seen since the last statement ended, before the next one started.
    leading_comments: Vec<Token<'a>>,
    state: StatementState,
    /// Tokens kept in `current` at most (the rest only move `last_end`).
    max_tokens: usize,
    /// End of the statement's last significant token so far.
    last_end: usize,
}

/// What we track to decide whether a `;` ends the statement.
#[derive(Debug, Default)]
struct StatementState {
    paren_depth: u32,
    /// How many `BEGIN ATOMIC` bodies and `CASE` expressions inside them are open.
    begin_depth: u32,
    /// How many words (unquoted identifiers and keywords) the statement has had so far.
    word_count: usize,
    /// The first four words, reduced to what the `CREATE [OR REPLACE] FUNCTION|PROCEDURE`
    /// test needs: `c`, `o`, `r`, `f`, `p` for those keywords, 0 for any other word.
    head: [u8; 4],
    /// The previous significant token was `BEGIN`, at parenthesis depth 0 of a routine
    /// definition.
    after_begin: bool,
    /// The previous significant token was a `.`: the word after it is a name (`t.end`).
    after_dot: bool,
    /// The statement starts with `COPY`.
    copy: bool,
    /// In a `COPY`, the previous significant token was `FROM`, at parenthesis depth 0.
    after_from: bool,
    /// A `COPY ... FROM STDIN`: psql sends the lines after it as its data.
    from_stdin: bool,
    /// The statement starts with one of [`DATA_WORDS`].
    data: bool,
}

/// The first words of data statements, of which [`split_statement_heads`] keeps that word
/// alone: no statement check (`nontx`, `txcontrol`, `index`, `SET TRANSACTION`) starts with
/// one, and a file of 200,000 one-row `INSERT`s held as 17-token heads took 12 times the file
/// in the lint.
const DATA_WORDS: [&str; 6] = ["insert", "update", "delete", "merge", "select", "values"];

impl StatementState {
    fn routine_definition(&self) -> bool {
        let h = self.head;
        h[0] == b'c'
            && (matches!(h[1], b'f' | b'p')
                || (h[1] == b'o' && h[2] == b'r' && matches!(h[3], b'f' | b'p')))
    }

    /// Tracks `BEGIN ATOMIC ... END` in routine definitions.
    ///
    /// psql counts every `BEGIN` there; we count only `BEGIN` followed by `ATOMIC`, the one
    /// place the grammar puts it, and skip words right after a `.`. Both keep a parameter or
    /// column named `begin` (`f.begin`, `t.end`, `x.case`, all valid SQL) from swallowing
    /// the rest of the file, which psql's heuristic would do. `CASE` and `END` are reserved
    /// words, so anywhere else in a body they are the expression's keywords.
    fn see_significant(&mut self, token: &Token<'_>) {
        let after_begin = std::mem::take(&mut self.after_begin);
        let after_dot = std::mem::take(&mut self.after_dot);
        let after_from = std::mem::take(&mut self.after_from);
        match token.kind {
            TokenKind::LParen => self.paren_depth += 1,
            TokenKind::RParen => self.paren_depth = self.paren_depth.saturating_sub(1),
            TokenKind::Punct => self.after_dot = token.text == ".",
            TokenKind::Word => {
                if let Some(slot) = self.head.get_mut(self.word_count) {
                    *slot = ["create", "or", "replace", "function", "procedure"]
                        .into_iter()
                        .find(|k| token.is_word(k))
                        .map_or(0, |k| k.as_bytes()[0]);
                }
                if self.word_count == 0 {
                    self.copy = token.is_word("copy");
                    self.data = DATA_WORDS.iter().any(|w| token.is_word(w));
                }
                self.word_count += 1;
                if self.copy && self.paren_depth == 0 {
                    // `COPY t [(cols)] FROM STDIN`; a `FROM` in a query or a column list is
                    // inside parentheses.
                    self.after_from = token.is_word("from");
                    self.from_stdin |= after_from && token.is_word("stdin");
                }
                if after_dot || self.paren_depth > 0 || !self.routine_definition() {
                    return;
                }
                if token.is_word("begin") {
                    self.after_begin = true;
                } else if token.is_word("atomic") {
                    if after_begin {
                        self.begin_depth += 1;
                    }
                } else if token.is_word("case") {
                    // `CASE` is closed by `END` too; outside a body it does not matter.
                    if self.begin_depth > 0 {
                        self.begin_depth += 1;
                    }
                } else if token.is_word("end") {
                    self.begin_depth = self.begin_depth.saturating_sub(1);
                }
            }
            _ => {}
        }
    }
}

impl<'a, F: FnMut(Statement<'a>)> Splitter<'a, F> {
    /// Takes the next token. Returns the `COPY ... FROM STDIN` statement that a `;` just
    /// ended, whose inline data the caller then skips.
    fn push(&mut self, token: Token<'a>) -> Option<PsqlOnly<'a>> {
        if self.current.is_empty() && token.is_trivia() {
            if token.is_comment() {
                self.leading_comments.push(token);
            }
            return None;
        }
        if token.kind == TokenKind::Semicolon
            && self.state.paren_depth == 0
            && self.state.begin_depth == 0
        {
            return self.finish_statement();
        }
        if !token.is_trivia() {
            self.state.see_significant(&token);
            self.last_end = token.span.end;
        }
        // A statement's first token is always kept: it is where the statement starts.
        let heads_only = self.max_tokens != usize::MAX;
        if self.current.is_empty()
            || (self.current.len() < self.max_tokens && !(heads_only && self.state.data))
        {
            self.current.push(token);
        }
        None
    }

    /// Ends the statement being read, if there is one: at a `;`, a meta-command or the end of
    /// the input. Returns it as psql-only input when it is a `COPY ... FROM STDIN` (its data
    /// yet to be found).
    fn finish_statement(&mut self) -> Option<PsqlOnly<'a>> {
        let mut tokens = std::mem::take(&mut self.current);
        let leading_comments = std::mem::take(&mut self.leading_comments);
        let state = std::mem::take(&mut self.state);
        while tokens.last().is_some_and(Token::is_trivia) {
            tokens.pop();
        }
        if self.max_tokens != usize::MAX {
            // Heads are kept for many statements at once: without the growth slack (up to
            // half of a pushed Vec) a file of one-row INSERTs holds a third less.
            tokens.shrink_to_fit();
        }
        let first = tokens.first()?;
        // The last significant token, kept or not (a statement's first token is significant,
        // so `last_end` is this statement's).
        let span = first.span.start..self.last_end;
        let copy = state.from_stdin.then_some(PsqlOnly {
            kind: PsqlOnlyKind::CopyFromStdin { data_lines: 0 },
            span: span.end..span.end,
            line: first.line,
            column: first.column,
        });
        (self.each)(Statement {
            text: &self.src[span.clone()],
            span,
            line: first.line,
            column: first.column,
            leading_comments,
            tokens,
        });
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<&str> {
        split_statements(sql)
            .statements
            .into_iter()
            .map(|s| s.text)
            .collect()
    }

    #[test]
    fn heads_keep_spans_and_bound_tokens() {
        let rows: Vec<String> = (0..2000).map(|i| format!("({i}, 'x')")).collect();
        let sql = format!(
            "-- c\nINSERT INTO t VALUES {rows} /* tail */;\nSELECT 1 -- x\n;\n\
             CREATE TABLE u AS VALUES {rows};",
            rows = rows.join(", ")
        );
        let (full, heads) = (split_statements(&sql), split_statement_heads(&sql));
        assert_eq!(full.statements.len(), 3);
        for (f, h) in full.statements.iter().zip(&heads.statements) {
            assert_eq!(
                (f.span.clone(), f.text, f.line, f.column),
                (h.span.clone(), h.text, h.line, h.column)
            );
            assert_eq!(f.leading_comments, h.leading_comments);
            assert!(h.tokens.len() <= HEAD_TOKENS);
            assert_eq!(h.tokens[..], f.tokens[..h.tokens.len()]);
        }
        // Data statements keep their first word alone, others their first 256 tokens.
        let kept: Vec<usize> = heads.statements.iter().map(|h| h.tokens.len()).collect();
        assert_eq!(kept, [1, 1, HEAD_TOKENS]);
        assert!(full.statements[0].tokens.len() > 10 * HEAD_TOKENS);
        assert!(full.statements[0].text.ends_with("(1999, 'x')"));
        // Streamed, the same heads.
        let mut streamed = Vec::new();
        let rest = for_each_statement_head(&sql, |s| streamed.push(s));
        assert_eq!(streamed, heads.statements);
        assert!(rest.statements.is_empty());
    }

    #[test]
    fn the_checks_read_heads_as_whole_statements() {
        use crate::sql::{classify_statement, classify_transaction_control};
        let sql = "insert into t values (1); Update t set a = 1; DELETE FROM t; merge into t \
                   using s on true when matched then delete; select 1; values (1); \
                   with x as (select 1) insert into t select * from x; \
                   CREATE INDEX CONCURRENTLY i ON t (a); vacuum t; begin; commit; \
                   savepoint s; set transaction isolation level serializable; \
                   ALTER TABLE a.b DETACH PARTITION c.d CONCURRENTLY; \
                   alter type mood add value 'meh'; prepare transaction 'x'";
        let (full, heads) = (split_statements(sql), split_statement_heads(sql));
        assert_eq!(full.statements.len(), 16);
        for (f, h) in full.statements.iter().zip(&heads.statements) {
            assert_eq!(classify_statement(f), classify_statement(h), "{}", f.text);
            assert_eq!(
                classify_transaction_control(f),
                classify_transaction_control(h),
                "{}",
                f.text
            );
        }
    }

    #[test]
    fn splits_like_the_server() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   \n\t ", &[]),
            ("-- only a comment", &[]),
            ("-- a\n/* b; */\n-- c\n", &[]),
            (";;; ;", &[]),
            ("SELECT 1", &["SELECT 1"]),
            ("SELECT 1;", &["SELECT 1"]),
            ("SELECT 1;SELECT 2", &["SELECT 1", "SELECT 2"]),
            ("SELECT 1 ;\n\nSELECT 2 -- two\n", &["SELECT 1", "SELECT 2"]),
            ("-- head\nSELECT 1; -- tail", &["SELECT 1"]),
            ("SELECT 1 /* ; */ + 2;", &["SELECT 1 /* ; */ + 2"]),
            ("SELECT /* a /* nested; */ still; */ 1; SELECT 2", &[
                "SELECT /* a /* nested; */ still; */ 1",
                "SELECT 2",
            ]),
            ("SELECT 'it''s; fine'; SELECT 2", &["SELECT 'it''s; fine'", "SELECT 2"]),
            (r"SELECT E'it\'s; fine'; SELECT 2", &[r"SELECT E'it\'s; fine'", "SELECT 2"]),
            (r"SELECT 'a\'; SELECT 2", &[r"SELECT 'a\'", "SELECT 2"]),
            ("SELECT \"a;\"\"b\" FROM t; SELECT 2", &["SELECT \"a;\"\"b\" FROM t", "SELECT 2"]),
            ("SELECT U&\"x;\", U&'y;'; SELECT 2", &["SELECT U&\"x;\", U&'y;'", "SELECT 2"]),
            ("SELECT $$a;b$$; SELECT 2", &["SELECT $$a;b$$", "SELECT 2"]),
            (
                "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN; $$ ; $$ RETURN 1; END $body$ LANGUAGE plpgsql;\nSELECT f()",
                &[
                    "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN; $$ ; $$ RETURN 1; END $body$ LANGUAGE plpgsql",
                    "SELECT f()",
                ],
            ),
            ("SELECT $1; SELECT a$$b; SELECT 3", &["SELECT $1", "SELECT a$$b", "SELECT 3"]),
            ("SELECT (1; 2); SELECT 3", &["SELECT (1; 2)", "SELECT 3"]),
            ("SELECT ((1);) ; SELECT 3", &["SELECT ((1);)", "SELECT 3"]),
            ("SELECT 1); SELECT 2", &["SELECT 1)", "SELECT 2"]),
            (
                "BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;",
                &["BEGIN", "CREATE TABLE t (id int)", "COMMIT"],
            ),
            (
                "BEGIN; SELECT CASE WHEN true THEN 1 END; END;",
                &["BEGIN", "SELECT CASE WHEN true THEN 1 END", "END"],
            ),
            (
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT CASE WHEN true THEN 2 ELSE 3 END;\nEND;\nSELECT f();",
                &[
                    "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT CASE WHEN true THEN 2 ELSE 3 END;\nEND",
                    "SELECT f()",
                ],
            ),
            (
                "create or replace procedure p() begin atomic insert into t values (case when true then 1 end); update t set x = 1; end; call p()",
                &[
                    "create or replace procedure p() begin atomic insert into t values (case when true then 1 end); update t set x = 1; end",
                    "call p()",
                ],
            ),
            (
                "CREATE OR REPLACE FUNCTION f(x int) RETURNS int BEGIN ATOMIC SELECT CASE x WHEN 1 THEN CASE WHEN x > 0 THEN 1 END ELSE 0 END; END; SELECT 2",
                &[
                    "CREATE OR REPLACE FUNCTION f(x int) RETURNS int BEGIN ATOMIC SELECT CASE x WHEN 1 THEN CASE WHEN x > 0 THEN 1 END ELSE 0 END; END",
                    "SELECT 2",
                ],
            ),
            // A `BEGIN` outside a routine definition is a transaction statement.
            ("CREATE TABLE begin_t (x int); BEGIN; END", &[
                "CREATE TABLE begin_t (x int)",
                "BEGIN",
                "END",
            ]),
            // Names that look like the keywords do not count: after a `.`, or a `BEGIN`
            // that is not `BEGIN ATOMIC` (psql would count both and swallow the file).
            (
                "CREATE FUNCTION f(begin int) RETURNS int BEGIN /* c */ ATOMIC SELECT f.begin + t.end FROM t; SELECT begin; END; SELECT 2",
                &[
                    "CREATE FUNCTION f(begin int) RETURNS int BEGIN /* c */ ATOMIC SELECT f.begin + t.end FROM t; SELECT begin; END",
                    "SELECT 2",
                ],
            ),
            ("CREATE FUNCTION f() RETURNS int RETURN x.case; SELECT 2", &[
                "CREATE FUNCTION f() RETURNS int RETURN x.case",
                "SELECT 2",
            ]),
            // Words in parentheses (here a parameter named `begin`) are not counted.
            ("CREATE FUNCTION f(begin int) RETURNS int AS 'select 1' LANGUAGE sql; SELECT 2", &[
                "CREATE FUNCTION f(begin int) RETURNS int AS 'select 1' LANGUAGE sql",
                "SELECT 2",
            ]),
        ];
        for (sql, expected) in cases {
            assert_eq!(texts(sql), expected.to_vec(), "splitting {sql:?}");
        }
    }

    #[test]
    fn positions_and_leading_comments() {
        let sql = "-- migrations:lint-ignore a\n/* b */ CREATE TABLE é (x int);\n\n  -- c\n  SELECT 'ü'; SELECT 3";
        let split = split_statements(sql);
        assert_eq!(split.unterminated, None);
        let got: Vec<_> = split
            .statements
            .iter()
            .map(|s| {
                let comments: Vec<&str> = s.leading_comments.iter().map(|c| c.text).collect();
                (s.text, s.line, s.column, comments)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "CREATE TABLE é (x int)",
                    2,
                    9,
                    vec!["-- migrations:lint-ignore a", "/* b */"]
                ),
                ("SELECT 'ü'", 5, 3, vec!["-- c"]),
                ("SELECT 3", 5, 15, vec![]),
            ]
        );
        for s in &split.statements {
            assert_eq!(&sql[s.span.clone()], s.text);
            let significant: Vec<&str> = s.significant_tokens().map(|t| t.text).collect();
            assert_eq!(significant.first().copied(), s.text.split(' ').next());
        }
    }

    #[test]
    fn reports_unterminated_constructs() {
        let cases: &[(&str, UnterminatedKind, u32, u32, &[&str])] = &[
            (
                "SELECT 1;\nSELECT 'abc;\nSELECT 2;",
                UnterminatedKind::String,
                2,
                8,
                &["SELECT 1", "SELECT 'abc;\nSELECT 2;"],
            ),
            (
                "SELECT \"x;",
                UnterminatedKind::QuotedIdent,
                1,
                8,
                &["SELECT \"x;"],
            ),
            (
                "SELECT 1;\n/* a /* b */ ;",
                UnterminatedKind::BlockComment,
                2,
                1,
                &["SELECT 1"],
            ),
            (
                "SELECT 1;\n\n\nCREATE FUNCTION f() AS $fn$ BEGIN; $$ END;",
                UnterminatedKind::DollarString,
                4,
                24,
                &["SELECT 1", "CREATE FUNCTION f() AS $fn$ BEGIN; $$ END;"],
            ),
        ];
        for (sql, kind, line, column, statements) in cases {
            let split = split_statements(sql);
            let u = split.unterminated.expect("an unterminated construct");
            assert_eq!(
                (u.kind, u.line, u.column),
                (*kind, *line, *column),
                "{sql:?}"
            );
            let texts: Vec<&str> = split.statements.iter().map(|s| s.text).collect();
            assert_eq!(texts, statements.to_vec(), "{sql:?}");
        }
        let u = split_statements("\n\nSELECT $x$")
            .unterminated
            .expect("unterminated");
        assert_eq!(
            u.to_string(),
            "unterminated dollar-quoted string starting at line 3"
        );
    }

    /// psql input as (kind, line, column, skipped text).
    type Skipped<'a> = (PsqlOnlyKind<'a>, u32, u32, &'a str);

    /// psql input, and the statements left with their line.
    fn psql_of(sql: &str) -> (Vec<Skipped<'_>>, Vec<(&str, u32)>) {
        let split = split_statements(sql);
        let psql = split
            .psql
            .iter()
            .map(|p| (p.kind, p.line, p.column, &sql[p.span.clone()]))
            .collect();
        let statements = split.statements.iter().map(|s| (s.text, s.line)).collect();
        (psql, statements)
    }

    #[test]
    fn skips_psql_meta_commands_to_the_end_of_their_line() {
        use PsqlOnlyKind::MetaCommand as Meta;
        let sql = "\\set ON_ERROR_STOP on\nCREATE TABLE t (x text);\n\\i 'it''s.sql\n\
                   INSERT INTO t VALUES (E'\\n'), ($$\\x$$), ('a\\'); -- \\c\n\
                   SELECT 1 \\gset\n  \\connect other\n/* \\. */ \\. \\\\ SELECT 2;\nSELECT 3;";
        let (psql, statements) = psql_of(sql);
        assert_eq!(
            psql,
            vec![
                (Meta("\\set"), 1, 1, "\\set ON_ERROR_STOP on"),
                (Meta("\\i"), 3, 1, "\\i 'it''s.sql"),
                (Meta("\\gset"), 5, 10, "\\gset"),
                (Meta("\\connect"), 6, 3, "\\connect other"),
                (Meta("\\."), 7, 10, "\\. \\\\ SELECT 2;"),
            ]
        );
        // Strings, dollar quotes and comments keep their backslashes; the quote in the `\i`
        // argument opens nothing; a meta-command ends the statement before it.
        assert_eq!(
            statements,
            vec![
                ("CREATE TABLE t (x text)", 2),
                ("INSERT INTO t VALUES (E'\\n'), ($$\\x$$), ('a\\')", 4),
                ("SELECT 1", 5),
                ("SELECT 3", 8),
            ]
        );
        assert_eq!(split_statements(sql).unterminated, None);
        let (psql, _) = psql_of("SELECT 1 \\\\ SELECT 2; \\");
        assert_eq!(psql, vec![(Meta("\\\\"), 1, 10, "\\\\ SELECT 2; \\")]);
        let (psql, _) = psql_of("\\");
        assert_eq!(psql, vec![(Meta("\\"), 1, 1, "\\")]);
    }

    #[test]
    fn skips_copy_from_stdin_data_up_to_its_end_line() {
        use PsqlOnlyKind::CopyFromStdin as Copy;
        // As pg_dump writes it: tab-separated lines with quotes and semicolons, then `\.`.
        let sql = "SET x = 1;\nCOPY public.t (id, name) FROM stdin;\n1\tO'Brien; DROP\n\
                   2\t\\N\n\\.\nCOPY u FROM STDIN WITH (FORMAT csv);\n\\.\n\
                   SELECT 'after';\ncopy v from stdin;\n3\n";
        let (psql, statements) = psql_of(sql);
        assert_eq!(
            psql,
            vec![
                (
                    Copy { data_lines: 2 },
                    2,
                    1,
                    "\n1\tO'Brien; DROP\n2\t\\N\n\\."
                ),
                (Copy { data_lines: 0 }, 6, 1, "\n\\."),
                (Copy { data_lines: 1 }, 9, 1, "\n3\n"),
            ]
        );
        assert_eq!(
            statements,
            vec![
                ("SET x = 1", 1),
                ("COPY public.t (id, name) FROM stdin", 2),
                ("COPY u FROM STDIN WITH (FORMAT csv)", 6),
                ("SELECT 'after'", 8),
                ("copy v from stdin", 9),
            ]
        );
        assert_eq!(split_statements(sql).unterminated, None);
        // Without `;` at the end of the file, or ended by a meta-command: no data.
        let (psql, _) = psql_of("COPY t FROM stdin");
        assert_eq!(psql, vec![(Copy { data_lines: 0 }, 1, 1, "")]);
        // Not from psql's stdin: a server-side file, a program, a query's FROM, a table
        // named stdin, or COPY TO.
        for sql in [
            "COPY t FROM '/tmp/stdin'; SELECT 1",
            "COPY t FROM PROGRAM 'cat'; SELECT 1",
            "COPY (SELECT * FROM stdin) TO STDOUT; SELECT 1",
            "COPY t (from, stdin) FROM '/x'; SELECT 1",
            "COPY t TO STDOUT; SELECT 1",
            "SELECT * FROM stdin; SELECT 1",
            "INSERT INTO copy SELECT * FROM stdin; SELECT 1",
        ] {
            let split = split_statements(sql);
            assert!(split.psql.is_empty(), "{sql:?}");
            assert_eq!(split.statements.len(), 2, "{sql:?}");
        }
    }

    /// Random strings over the characters that matter to the lexer: no panic, tokens that
    /// cover the input, statements that are slices of it at the positions they claim.
    #[test]
    fn random_input_keeps_the_invariants() {
        const ALPHABET: &[&str] = &[
            "'",
            "\"",
            "$",
            ";",
            "/",
            "*",
            "-",
            "\n",
            "\r",
            " ",
            "\\",
            "E",
            "e",
            "U",
            "&",
            "B",
            "x",
            "N",
            "(",
            ")",
            ".",
            "1",
            "a",
            "é",
            "日",
            "begin",
            "atomic",
            "end",
            "case",
            "create function ",
            "$t$",
            "copy t from stdin",
            "\\.",
            "\\set x",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            // xorshift64: deterministic, so a failure reproduces.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let len = (next() % 24) as usize;
            let sql: std::string::String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let tokens = crate::sql::lexer::tokenize(&sql);
            let joined: std::string::String = tokens.iter().map(|t| t.text).collect();
            assert_eq!(joined, sql);
            let split = split_statements(&sql);
            // Positions are checked against the text itself: after psql input the lexer
            // restarts, so they are not those of one lexing of the whole input.
            let position = |offset: usize| {
                let before = &sql[..offset];
                let line_start = before.rfind(['\n', '\r']).map_or(0, |p| p + 1);
                (
                    1 + count_lines(before),
                    1 + before[line_start..].chars().count() as u32,
                )
            };
            for s in &split.statements {
                assert_eq!(&sql[s.span.clone()], s.text, "{sql:?}");
                assert_eq!(position(s.span.start), (s.line, s.column), "{sql:?}");
                assert!(!s.text.trim().is_empty(), "{sql:?}");
                assert!(
                    s.significant_tokens().all(|t| t.text != "\\"),
                    "a meta-command inside a statement: {sql:?}"
                );
                for p in &split.psql {
                    let apart = p.span.end <= s.span.start || s.span.end <= p.span.start;
                    assert!(apart, "psql input overlaps a statement: {sql:?}");
                }
                let _ = crate::sql::nontx::classify_statement(s);
                let _ = crate::sql::txcontrol::classify_transaction_control(s);
            }
            for p in &split.psql {
                assert!(sql.get(p.span.clone()).is_some(), "{sql:?}");
                if let PsqlOnlyKind::MetaCommand(name) = p.kind {
                    assert!(sql[p.span.clone()].starts_with(name), "{sql:?}");
                    assert_eq!(position(p.span.start), (p.line, p.column), "{sql:?}");
                }
            }
            let _ = crate::sql::nontx::non_transactional(&sql);
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for sql in [
            "é;ü",
            ";",
            "(((",
            ")))",
            "$",
            "E'\\é",
            "\r\r;",
            "end; end; begin",
        ] {
            let split = split_statements(sql);
            for s in &split.statements {
                assert_eq!(&sql[s.span.clone()], s.text);
            }
        }
    }
}
