//! The file as squawk's parser reads it, parsed once for squawk's rules and ours: the typed
//! syntax tree of each statement of our splitter, and the small readers our rules share
//! (names, string constants, positions).
//!
//! Our rules number statements as the splitter (and so the runner and `lint-ignore`) does;
//! each of squawk's top-level statements belongs to the splitter statement it starts in.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

use migrations_format::sql::Statement;
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{Parse, SourceFile, SyntaxNode};

use crate::rows::{blank, elided, statements_with_runs, Elided, ROWS_FROM};

/// A file's statements as the lint's rules number them, and squawk's tree of the file.
///
/// In a file of 1 MiB or more (`rows::DATA_FILE_FROM`), a run of consecutive plain data statements
/// that the tree leaves out whole (`rows.rs`: a file of one-row `INSERT`s, as `pg_dump
/// --inserts` writes) is **one** statement here: its first, the tree leaving out the whole run.
/// No rule fires on such a statement (that is why the tree leaves it out), so the rules lose
/// nothing, and the lint keeps a record for each statement it reads, not for each of 200,000
/// rows of seed data (~330 bytes each: 66 MB of the 82 MB such a file took). A statement joins
/// the run before it only when no comment stands between them (a `lint-ignore` must keep its
/// statement). A file that alters a type keeps every statement: `enum-value-used-in-transaction`
/// reads the rows of each statement after an `ALTER TYPE ... ADD VALUE`.
pub(crate) struct FileSyntax<'a> {
    /// The statements, each run of plain data statements as its first.
    pub statements: Vec<Statement<'a>>,
    /// squawk's tree, numbered as [`FileSyntax::statements`].
    pub parsed: Parsed,
}

impl<'a> FileSyntax<'a> {
    /// Splits and parses `text`.
    pub fn read(text: &'a str) -> FileSyntax<'a> {
        let (statements, runs) = statements_with_runs(text);
        let parsed = Parsed::with_runs(text, &statements, &runs);
        FileSyntax { statements, parsed }
    }
}

/// A file parsed by squawk.
pub(crate) struct Parsed {
    /// The tree, `None` when squawk's parser panicked on the file.
    pub parse: Option<Parse<SourceFile>>,
    /// For each statement of the split, squawk's statements that start in it (usually one;
    /// none for what squawk could not read as a statement).
    pub stmts: Vec<Vec<ast::Stmt>>,
    /// What squawk's parser panicked with, if it did.
    pub panic: Option<String>,
    /// For each statement of the split, the rows of an `INSERT ... VALUES` that the tree
    /// leaves out (`rows.rs`): byte ranges of the file, where the tree holds comments.
    pub rows: Vec<Option<Range<usize>>>,
}

impl Parsed {
    /// [`Parsed::with_runs`] of a split without runs (tests).
    #[cfg(test)]
    pub fn new(text: &str, statements: &[Statement<'_>]) -> Parsed {
        Parsed::with_runs(text, statements, &[])
    }

    /// Parses `text`, whose split is `statements`, some of which may stand for a run of plain
    /// data statements (`runs`: the index of such a statement and the byte after its run's
    /// last statement; see [`FileSyntax`]). Never panics: a panic of squawk's parser is caught
    /// and reported in [`Parsed::panic`]. The rows of large `INSERT ... VALUES` statements, the
    /// plain data statements of large files and the runs are left out of the tree (`rows.rs`).
    fn with_runs(text: &str, statements: &[Statement<'_>], runs: &[(usize, usize)]) -> Parsed {
        let mut elided: Vec<Option<Elided>> = statements
            .iter()
            .map(|s| elided(s, ROWS_FROM, text.len()))
            .collect();
        for &(at, end) in runs {
            if let Some(e) = elided.get_mut(at).and_then(Option::as_mut) {
                e.gap.end = end;
            }
        }
        let gaps = merged_gaps(text, statements, &elided);
        let rows: Vec<Option<Range<usize>>> =
            elided.into_iter().map(|e| e.map(|e| e.rows)).collect();
        // Squawk parses a copy with the rows made comments (same offsets); the copy is dropped
        // once parsed: the tree holds its own text.
        let blanked = (!gaps.is_empty()).then(|| blank(text, &gaps));
        let source = blanked.as_deref().unwrap_or(text);
        let parse = catch_unwind(AssertUnwindSafe(|| SourceFile::parse(source)));
        drop(blanked);
        let parse = match parse {
            Ok(parse) => parse,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_owned());
                return Parsed {
                    parse: None,
                    stmts: vec![Vec::new(); statements.len()],
                    panic: Some(message),
                    rows,
                };
            }
        };
        let mut stmts = vec![Vec::new(); statements.len()];
        for stmt in parse.tree().stmts() {
            if let Some(i) = statement_at(statements, start(stmt.syntax())) {
                stmts[i].push(stmt);
            }
        }
        Parsed {
            parse: Some(parse),
            stmts,
            panic: None,
            rows,
        }
    }

    /// The innermost node of type `N` around the byte `offset`.
    pub fn node_at<N: AstNode>(&self, offset: usize) -> Option<N> {
        let root = self.parse.as_ref()?.syntax_node();
        let offset = u32::try_from(offset).ok()?;
        root.token_at_offset(offset.into())
            .right_biased()?
            .parent_ancestors()
            .find_map(N::cast)
    }
}

/// The byte ranges squawk parses as comments: each statement's [`Elided::gap`], with the gaps
/// of statements left out whole merged across what separates them when that is only
/// whitespace and `;`. A file of 200,000 one-row `INSERT`s is then one run of comments in
/// squawk's tree, not 200,000 empty statements (a node each, and a red node and a `Vec` each
/// in [`Parsed::stmts`]: 45 MB of the 143 MB its lint took).
fn merged_gaps(
    text: &str,
    statements: &[Statement<'_>],
    elided: &[Option<Elided>],
) -> Vec<Range<usize>> {
    let mut gaps: Vec<Range<usize>> = Vec::new();
    // Whether the last gap is a whole statement's, and so may run on into the next one's.
    let mut last_whole = false;
    for (statement, e) in statements.iter().zip(elided) {
        let Some(e) = e else {
            last_whole = false;
            continue;
        };
        // Left out whole: the statement, and the run it stands for, if any.
        let whole = e.gap.start == statement.span.start && e.gap.end >= statement.span.end;
        if let Some(last) = gaps.last_mut().filter(|_| last_whole && whole) {
            let between = text.as_bytes().get(last.end..e.gap.start).unwrap_or(b"x");
            if between
                .iter()
                .all(|b| b.is_ascii_whitespace() || *b == b';')
            {
                last.end = e.gap.end;
                continue;
            }
        }
        gaps.push(e.gap.clone());
        last_whole = whole;
    }
    gaps
}

/// The index of the statement of `statements` that holds the byte `offset` (the last one
/// starting at or before it).
pub(crate) fn statement_at(statements: &[Statement<'_>], offset: usize) -> Option<usize> {
    // The split is in file order: a binary search (a file of 200,000 one-row INSERTs asks this
    // for each of them; a scan made that quadratic, minutes long).
    statements
        .partition_point(|s| s.span.start <= offset)
        .checked_sub(1)
}

/// Byte offset where a node starts (its first token that is not whitespace or a comment).
pub(crate) fn start(node: &SyntaxNode) -> usize {
    let token = node
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .find(|t| !t.kind().is_trivia());
    usize::from(token.map_or(node.text_range().start(), |t| t.text_range().start()))
}

/// A node's text without whitespace and comments, as a message shows it (`s."T"`, `now()`).
pub(crate) fn compact(node: &SyntaxNode) -> String {
    let mut out = String::new();
    let mut last_was_word = false;
    for t in node
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia())
    {
        let text = t.text();
        let is_word = text
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"');
        // Two words keep a space between them (`double precision`), punctuation none.
        if last_was_word && is_word {
            out.push(' ');
        }
        out.push_str(text);
        last_was_word = text
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"');
    }
    out
}

/// Byte offset to 1-based line and column (in characters).
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    pub fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line as u32 + 1, column as u32 + 1)
    }
}

/// A possibly qualified name (`t`, `s.t`, `"S"."T"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    /// The last part, folded as the server folds it (unquoted: lower case): what we compare.
    pub key: String,
    /// As written.
    pub shown: String,
}

impl Name {
    fn new(segment: String, node: &SyntaxNode) -> Option<Name> {
        (!segment.is_empty()).then(|| Name {
            key: segment,
            shown: compact(node),
        })
    }

    /// A name that refers to an object (`TABLE_NAME_REF`, `INDEX_REF`, ...).
    pub fn of_ref(path: &ast::PathRef) -> Option<Name> {
        Name::new(path.segment()?.text(), path.syntax())
    }

    /// A name that defines an object (`CREATE TABLE name`).
    pub fn of_path(path: &ast::Path) -> Option<Name> {
        Name::new(path.segment()?.text(), path.syntax())
    }
}

/// The value of a string constant (`'a''b'`, `E'a\'b'`, `N'x'`, `U&'x'`); `None` for
/// other literals, dollar quotes included (function bodies, not values).
pub(crate) fn string_value(literal: &ast::Literal) -> Option<String> {
    use squawk_syntax::ast::LitKind as K;
    match literal.kind()? {
        K::String(_) | K::EscString(_) | K::NationalString(_) | K::UnicodeEscString(_) => {
            literal.string_value()
        }
        _ => None,
    }
}

/// squawk's statements of `sql`, for unit tests.
#[cfg(test)]
pub(crate) fn parse_statements(sql: &str) -> Vec<ast::Stmt> {
    let split = migrations_format::sql::split_statements(sql);
    Parsed::new(sql, &split.statements)
        .stmts
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use migrations_format::sql::split_statements;

    #[test]
    fn data_statements_left_out_whole_are_one_run_of_comments_in_the_tree() {
        // Over 1 MiB of one-row INSERTs, broken by a comment naming squawk (which squawk must
        // still read, so no gap runs across it) and by a statement the rules read.
        let mut sql = String::new();
        for part in 0..3 {
            for i in 0..6_000 {
                sql.push_str(&format!(
                    "INSERT INTO seed VALUES ({i}, 'name {i:06}', 'u{i}@ex.org') ;\n\n"
                ));
            }
            match part {
                0 => sql.push_str("-- squawk-ignore prefer-bigint-over-int\n"),
                1 => sql.push_str("CREATE INDEX i ON seed (id);\n"),
                _ => {}
            }
        }
        assert!(sql.len() > crate::rows::DATA_FILE_FROM);
        let split = split_statements(&sql);
        let parsed = Parsed::new(&sql, &split.statements);
        assert!(parsed.panic.is_none());
        let in_tree: Vec<(usize, String)> = parsed
            .stmts
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.iter().map(move |s| (i, s.syntax().text().to_string())))
            .collect();
        // Each run's last `;` is an empty statement of squawk's; the index is a statement.
        let index = 12_000;
        assert!(
            in_tree
                .iter()
                .any(|(i, t)| *i == index && t.contains("CREATE INDEX")),
            "{in_tree:?}"
        );
        assert!(in_tree.len() <= 6, "{in_tree:?}");
        // Offsets are kept: the CREATE INDEX node starts where the file has it.
        let at = sql.find("CREATE INDEX").unwrap();
        assert_eq!(start(parsed.stmts[index][0].syntax()), at);
    }

    #[test]
    fn line_index() {
        let text = "ab\nçd\n\nx";
        let index = LineIndex::new(text);
        assert_eq!(index.position(0), (1, 1));
        assert_eq!(index.position(3), (2, 1));
        assert_eq!(index.position(5), (2, 2)); // after the two-byte ç
        assert_eq!(index.position(7), (3, 1));
        assert_eq!(index.position(8), (4, 1));
        assert_eq!(index.position(99), (4, 2));
    }

    #[test]
    fn statements_map_to_the_split_and_names_read_like_the_server() {
        let text = "-- c\nCREATE TABLE s.\"T\" (x int);\n\nSELECT 1; SELECT  E'a\\'b', N'n', $$d$$";
        let split = split_statements(text);
        let parsed = Parsed::new(text, &split.statements);
        assert_eq!(
            parsed.stmts.iter().map(Vec::len).collect::<Vec<_>>(),
            [1, 1, 1]
        );
        let ast::Stmt::CreateTable(create) = &parsed.stmts[0][0] else {
            panic!("{:?}", parsed.stmts[0]);
        };
        let name = Name::of_path(&create.table_name().unwrap().path().unwrap()).unwrap();
        assert_eq!((name.key.as_str(), name.shown.as_str()), ("T", "s.\"T\""));
        let literals: Vec<Option<String>> = parsed.stmts[2][0]
            .syntax()
            .descendants()
            .filter_map(ast::Literal::cast)
            .map(|l| string_value(&l))
            .collect();
        assert_eq!(literals, [Some("a'b".into()), Some("n".into()), None]);
        let offset = text.find("int").unwrap();
        assert!(parsed.node_at::<ast::Column>(offset).is_some());
        assert!(parsed.node_at::<ast::Column>(0).is_none());
        assert_eq!(
            start(parsed.stmts[1][0].syntax()),
            text.find("SELECT").unwrap()
        );
    }
}
