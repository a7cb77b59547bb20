//! A lexer for PostgreSQL's SQL, following the server's lexical rules (`scan.l`) with
//! `standard_conforming_strings = on`, the default since PostgreSQL 9.1.
//!
//! It exists so that the statement splitter and the non-transactional statement check can
//! tell a `;` or a keyword that means something from one that sits inside a string, a quoted
//! identifier, a dollar quote or a comment. It does not parse: keywords are plain
//! [`TokenKind::Word`]s and operators are not split the way the server's grammar would.
//! What it must get exactly right is where each token *ends*, because that decides which
//! `;` ends a statement.
//!
//! The tokens cover the input without gaps, whitespace and comments included, so a caller can
//! find comments (directives, `-- migrations:lint-ignore`) and positions for messages.
//! Two places where we keep more tokens than the server's scanner, harmlessly for splitting:
//! `'a'` newline `'b'` (SQL's string continuation) is two string tokens, and `N'x'` is one
//! national string where the server sees the keyword `N` and a string.
//! Malformed input never panics: an unterminated string, quoted identifier, comment or dollar
//! quote becomes one token running to the end of the input, marked
//! [`Token::unterminated`], which is what the server would complain about.

use std::fmt;
use std::ops::Range;

/// What a [`Token`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    /// Spaces, tabs, newlines, carriage returns, form feeds and vertical tabs.
    Whitespace,
    /// `-- ...` up to, not including, the end of the line.
    LineComment,
    /// `/* ... */`, which nests in PostgreSQL (unlike the SQL standard's C-like reading).
    BlockComment,
    /// An unquoted identifier or keyword, such as `CREATE`, `users` or `foo$bar`.
    Word,
    /// A `"quoted identifier"` (`""` inside stands for one `"`), or a `U&"..."` one.
    QuotedIdent,
    /// A quoted string constant; the kind tells which prefix it had.
    String(StringKind),
    /// A dollar-quoted string: `$$...$$` or `$tag$...$tag$`.
    DollarString,
    /// A numeric constant: `42`, `3.14`, `.5`, `1e-3`, `0x1F`, `1_000`.
    Number,
    /// A positional parameter: `$1`.
    Param,
    /// `;`
    Semicolon,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// A run of operator characters (`+ - * / < > = ~ ! @ # % ^ & | \` ?`), such as `<>` or
    /// `->>`. A `--` or `/*` inside ends the run, as on the server.
    Operator,
    /// Other punctuation of the grammar: `.`, `..`, `[`, `]`, `:`, `::`, `:=`.
    Punct,
    /// A character PostgreSQL has no use for outside a string (such as `\` or `{`), or a `$`
    /// that starts neither a parameter nor a dollar quote.
    Other,
}

/// The prefix of a quoted string constant.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StringKind {
    /// `'...'`: backslashes are ordinary characters, `''` is a quote.
    Standard,
    /// `E'...'`: backslash escapes (`\'`, `\\`, `\n`, ...) and `''`.
    Escape,
    /// `U&'...'`: Unicode escapes, written with a backslash that cannot escape a quote.
    Unicode,
    /// `B'...'`: a bit string.
    Bit,
    /// `X'...'`: a bit string in hexadecimal.
    Hex,
    /// `N'...'`: a national character string, lexed like a standard one.
    National,
}

/// One token: its kind, where it is, and its text (a slice of the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// What the token is.
    pub kind: TokenKind,
    /// The token's text, exactly as in the input (prefixes, quotes and delimiters included).
    pub text: &'a str,
    /// Byte range of the token in the input.
    pub span: Range<usize>,
    /// 1-based line of the token's first character.
    pub line: u32,
    /// 1-based column of the token's first character, counted in characters (not bytes).
    pub column: u32,
    /// The token is a string, quoted identifier, comment or dollar quote that was still open
    /// at the end of the input: it runs to the end.
    pub unterminated: bool,
}

impl<'a> Token<'a> {
    /// Whitespace or a comment: what the server skips between tokens.
    pub fn is_trivia(&self) -> bool {
        matches!(
            self.kind,
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment
        )
    }

    /// A `--` or `/* */` comment.
    pub fn is_comment(&self) -> bool {
        matches!(self.kind, TokenKind::LineComment | TokenKind::BlockComment)
    }

    /// Whether this is the unquoted word `word`, compared ASCII-case-insensitively, as the
    /// server compares keywords (`create`, `CREATE` and `Create` are the same keyword; a
    /// `"CREATE"` quoted identifier is not a keyword at all).
    pub fn is_word(&self, word: &str) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(word)
    }

    /// The text of a comment without its delimiters: what follows `--`, or what lies between
    /// `/*` and `*/` (the closing `*/` is absent from an unterminated comment). `None` for
    /// other tokens.
    pub fn comment_body(&self) -> Option<&'a str> {
        match self.kind {
            TokenKind::LineComment => self.text.get(2..),
            TokenKind::BlockComment => {
                let end = if self.unterminated {
                    self.text.len()
                } else {
                    self.text.len().saturating_sub(2)
                };
                self.text.get(2..end.max(2))
            }
            _ => None,
        }
    }
}

#[non_exhaustive]
/// What kind of construct was left open at the end of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnterminatedKind {
    /// A `'...'` string of any prefix.
    String,
    /// A `"..."` identifier.
    QuotedIdent,
    /// A `/* ... */` comment.
    BlockComment,
    /// A `$tag$ ... $tag$` string.
    DollarString,
}

impl UnterminatedKind {
    /// The kind of an unterminated token, `None` for kinds that cannot be left open.
    pub fn of(kind: TokenKind) -> Option<Self> {
        match kind {
            TokenKind::String(_) => Some(Self::String),
            TokenKind::QuotedIdent => Some(Self::QuotedIdent),
            TokenKind::BlockComment => Some(Self::BlockComment),
            TokenKind::DollarString => Some(Self::DollarString),
            _ => None,
        }
    }

    /// How a message names it, after the server's own wording.
    pub fn describe(self) -> &'static str {
        match self {
            Self::String => "quoted string",
            Self::QuotedIdent => "quoted identifier",
            Self::BlockComment => "/* comment",
            Self::DollarString => "dollar-quoted string",
        }
    }
}

impl fmt::Display for UnterminatedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Lexes `sql` into tokens that cover it completely, whitespace and comments included.
pub fn tokenize(sql: &str) -> Vec<Token<'_>> {
    Lexer::new(sql).collect()
}

/// An iterator over the tokens of a SQL text; see [`tokenize`].
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: u32,
    column: u32,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    pub fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            line: 1,
            column: 1,
        }
    }

    /// A lexer that resumes at byte `pos` of `src` (a char boundary at the start of a line or
    /// at a line end), which is on 1-based line `line`: how the splitter goes on after input it
    /// skips, with the spans and lines of the whole text.
    pub(crate) fn resume(src: &'a str, pos: usize, line: u32) -> Self {
        Lexer {
            src,
            pos: pos.min(src.len()),
            line,
            column: 1,
        }
    }

    /// Moves the line and column counters over `self.src[self.pos..end]`.
    ///
    /// A line ends at `\n`, or at a `\r` that is not followed by `\n` (old Mac line ends):
    /// the server's lexer treats both as newlines.
    fn advance_to(&mut self, end: usize) {
        let bytes = self.src.as_bytes();
        let text = self.src.get(self.pos..end).unwrap_or("");
        for (i, c) in text.char_indices() {
            match c {
                '\n' => {
                    self.line = self.line.saturating_add(1);
                    self.column = 1;
                }
                '\r' if bytes.get(self.pos + i + 1) != Some(&b'\n') => {
                    self.line = self.line.saturating_add(1);
                    self.column = 1;
                }
                _ => self.column = self.column.saturating_add(1),
            }
        }
        self.pos = end;
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        if self.pos >= self.src.len() {
            return None;
        }
        let start = self.pos;
        let (kind, end, unterminated) = lex_one(self.src, start);
        // Every branch of `lex_one` ends on a char boundary; the guard only protects against
        // a bug turning into a panic or an endless loop.
        let end = if end > start && self.src.is_char_boundary(end) {
            end
        } else {
            next_char_end(self.src, start)
        };
        let token = Token {
            kind,
            text: &self.src[start..end],
            span: start..end,
            line: self.line,
            column: self.column,
            unterminated,
        };
        self.advance_to(end);
        Some(token)
    }
}

/// Byte end of the char starting at `pos`.
fn next_char_end(src: &str, pos: usize) -> usize {
    src.get(pos..)
        .and_then(|rest| rest.chars().next())
        .map_or(src.len(), |c| pos + c.len_utf8())
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// `ident_start` in `scan.l`: a letter, `_`, or any byte of a non-ASCII character (the server
/// accepts every non-ASCII character in identifiers). Working on bytes is safe: every byte of
/// a multi-byte UTF-8 character is `>= 0x80`, so a run of these never ends inside a character.
fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// `ident_cont` in `scan.l`: also digits and `$` (so `foo$bar` is one identifier).
fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// `dolq_cont` in `scan.l`: a dollar-quote tag character (no `$`, obviously).
fn is_dollar_tag_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

/// `op_chars` in `scan.l`.
fn is_op_char(b: u8) -> bool {
    matches!(
        b,
        b'~' | b'!'
            | b'@'
            | b'#'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
            | b'+'
            | b'-'
            | b'*'
            | b'/'
            | b'%'
            | b'<'
            | b'>'
            | b'='
    )
}

/// Lexes the token starting at byte `start` (a char boundary, before the end of `src`) and
/// returns its kind, its end and whether it is unterminated.
fn lex_one(src: &str, start: usize) -> (TokenKind, usize, bool) {
    let bytes = src.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let b = bytes[start];
    match b {
        _ if is_whitespace(b) => {
            let end = scan_while(bytes, start, is_whitespace);
            (TokenKind::Whitespace, end, false)
        }
        b'-' if at(start + 1) == Some(b'-') => {
            let end = bytes[start..]
                .iter()
                .position(|&c| c == b'\n' || c == b'\r')
                .map_or(src.len(), |p| start + p);
            (TokenKind::LineComment, end, false)
        }
        b'/' if at(start + 1) == Some(b'*') => {
            let (end, terminated) = scan_block_comment(bytes, start);
            (TokenKind::BlockComment, end, !terminated)
        }
        b'\'' => {
            let (end, terminated) = scan_quoted(bytes, start, b'\'', false);
            (TokenKind::String(StringKind::Standard), end, !terminated)
        }
        b'"' => {
            let (end, terminated) = scan_quoted(bytes, start, b'"', false);
            (TokenKind::QuotedIdent, end, !terminated)
        }
        b'$' => lex_dollar(src, start),
        b'0'..=b'9' => (TokenKind::Number, scan_number(bytes, start), false),
        b'.' if at(start + 1).is_some_and(|c| c.is_ascii_digit()) => {
            (TokenKind::Number, scan_number(bytes, start), false)
        }
        b'.' if at(start + 1) == Some(b'.') => (TokenKind::Punct, start + 2, false),
        b':' if matches!(at(start + 1), Some(b':') | Some(b'=')) => {
            (TokenKind::Punct, start + 2, false)
        }
        b'.' | b'[' | b']' | b':' => (TokenKind::Punct, start + 1, false),
        b';' => (TokenKind::Semicolon, start + 1, false),
        b'(' => (TokenKind::LParen, start + 1, false),
        b')' => (TokenKind::RParen, start + 1, false),
        b',' => (TokenKind::Comma, start + 1, false),
        _ if is_ident_start(b) => lex_word(src, start),
        _ if is_op_char(b) => {
            // An operator ends where a comment starts: `*/*x*/` is `*` then a comment.
            let mut end = start + 1;
            while end < bytes.len()
                && is_op_char(bytes[end])
                && !bytes[end..].starts_with(b"--")
                && !bytes[end..].starts_with(b"/*")
            {
                end += 1;
            }
            (TokenKind::Operator, end, false)
        }
        _ => (TokenKind::Other, next_char_end(src, start), false),
    }
}

fn scan_while(bytes: &[u8], start: usize, pred: impl Fn(u8) -> bool) -> usize {
    bytes[start..]
        .iter()
        .position(|&c| !pred(c))
        .map_or(bytes.len(), |p| start + p)
}

/// A block comment from its `/*` at `start`. Comments nest, so `/* /* */ ; */` is one
/// comment. Returns the end and whether the comment was closed.
fn scan_block_comment(bytes: &[u8], start: usize) -> (usize, bool) {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if bytes[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return (i, true);
            }
        } else {
            i += 1;
        }
    }
    (bytes.len(), false)
}

/// A quoted string or identifier whose opening `quote` is at `open`. A doubled quote stands
/// for one quote; with `backslash_escapes` (an `E'...'` string) a backslash also escapes the
/// next character. Returns the end (after the closing quote) and whether it was closed.
///
/// The scan only stops on ASCII bytes, so the end is always a char boundary even when a
/// backslash precedes a multi-byte character.
fn scan_quoted(bytes: &[u8], open: usize, quote: u8, backslash_escapes: bool) -> (usize, bool) {
    let mut i = open + 1;
    while i < bytes.len() {
        let c = bytes[i];
        if backslash_escapes && c == b'\\' {
            i += 2;
        } else if c == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return (i + 1, true);
            }
        } else {
            i += 1;
        }
    }
    (bytes.len(), false)
}

/// A bit string (`B'...'`, `X'...'`) whose opening quote is at `open`: the server's lexer
/// ends it at the first quote (no doubling). A doubled quote therefore ends it and starts a
/// new string at once, which changes nothing about where statements end.
fn scan_bit_string(bytes: &[u8], open: usize) -> (usize, bool) {
    match bytes[open + 1..].iter().position(|&c| c == b'\'') {
        Some(p) => (open + 1 + p + 1, true),
        None => (bytes.len(), false),
    }
}

/// An identifier or keyword, or a string or identifier with a prefix (`E'`, `B'`, `X'`,
/// `N'`, `U&'`, `U&"`). The prefix must be the whole word, as in the server's lexer, whose
/// longest-match rule reads `abe'x'` as the identifier `abe` followed by a standard string.
fn lex_word(src: &str, start: usize) -> (TokenKind, usize, bool) {
    let bytes = src.as_bytes();
    let end = scan_while(bytes, start, is_ident_cont);
    let word = &bytes[start..end];
    let next = bytes.get(end).copied();
    if word.len() == 1 && next == Some(b'\'') {
        let (kind, (close, terminated)) = match word[0].to_ascii_lowercase() {
            b'e' => (StringKind::Escape, scan_quoted(bytes, end, b'\'', true)),
            b'n' => (StringKind::National, scan_quoted(bytes, end, b'\'', false)),
            b'b' => (StringKind::Bit, scan_bit_string(bytes, end)),
            b'x' => (StringKind::Hex, scan_bit_string(bytes, end)),
            _ => return (TokenKind::Word, end, false),
        };
        return (TokenKind::String(kind), close, !terminated);
    }
    if word.eq_ignore_ascii_case(b"u") && next == Some(b'&') {
        match bytes.get(end + 1) {
            Some(b'\'') => {
                let (close, terminated) = scan_quoted(bytes, end + 1, b'\'', false);
                return (TokenKind::String(StringKind::Unicode), close, !terminated);
            }
            Some(b'"') => {
                let (close, terminated) = scan_quoted(bytes, end + 1, b'"', false);
                return (TokenKind::QuotedIdent, close, !terminated);
            }
            _ => {}
        }
    }
    (TokenKind::Word, end, false)
}

/// A token starting with `$`: a dollar quote (`$$` or `$tag$`), a parameter (`$1`), or a lone
/// `$` (the server's "dolqfailed" case: `$abc` without a closing `$` is `$` then `abc`).
fn lex_dollar(src: &str, start: usize) -> (TokenKind, usize, bool) {
    let bytes = src.as_bytes();
    let mut i = start + 1;
    if bytes.get(i).is_some_and(|c| c.is_ascii_digit()) {
        let end = scan_while(bytes, i, |c| c.is_ascii_digit());
        // `$1abc` is "trailing junk after parameter" to the server: keep it in one token.
        // Not a `$`, though: `$1$$` is `$1` followed by a dollar quote.
        let end = scan_while(bytes, end, |c| is_ident_start(c) || c.is_ascii_digit());
        return (TokenKind::Param, end, false);
    }
    if bytes.get(i).is_some_and(|&c| is_ident_start(c)) {
        i = scan_while(bytes, i, is_dollar_tag_cont);
    }
    if bytes.get(i) != Some(&b'$') {
        return (TokenKind::Other, start + 1, false);
    }
    let body = i + 1;
    let delimiter = &src[start..body];
    // The body ends at the first occurrence of the very same delimiter: a different tag, or
    // `$$` inside `$fn$ ... $fn$`, is just text.
    match src[body..].find(delimiter) {
        Some(p) => (TokenKind::DollarString, body + p + delimiter.len(), false),
        None => (TokenKind::DollarString, src.len(), true),
    }
}

/// A number from `start` (a digit, or a `.` followed by a digit). Integer part, fraction and
/// exponent as in `scan.l`; then any identifier characters right after it (hex, octal and
/// binary digits, `_` separators, or what the server calls "trailing junk") stay in the same
/// token, since they cannot start anything that matters to the splitter.
fn scan_number(bytes: &[u8], start: usize) -> usize {
    let digits = |i: usize| scan_while(bytes, i, |c| c.is_ascii_digit() || c == b'_');
    let mut i = digits(start);
    if bytes.get(i) == Some(&b'.') && bytes.get(i + 1) != Some(&b'.') {
        i = digits(i + 1);
    }
    if matches!(bytes.get(i), Some(b'e') | Some(b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+') | Some(b'-')) {
            j += 1;
        }
        if bytes.get(j).is_some_and(|c| c.is_ascii_digit()) {
            i = digits(j);
        }
    }
    scan_while(bytes, i, |c| is_ident_start(c) || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(TokenKind, &str)> {
        tokenize(sql)
            .into_iter()
            .filter(|t| t.kind != TokenKind::Whitespace)
            .map(|t| (t.kind, t.text))
            .collect()
    }

    use StringKind::*;
    use TokenKind::*;

    #[test]
    fn tokens_of_each_kind() {
        let cases: &[(&str, &[(TokenKind, &str)])] = &[
            ("", &[]),
            ("select", &[(Word, "select")]),
            (
                "foo$bar _x1 $x",
                &[(Word, "foo$bar"), (Word, "_x1"), (Other, "$"), (Word, "x")],
            ),
            ("héllo wörld", &[(Word, "héllo"), (Word, "wörld")]),
            ("-- c ;\nx", &[(LineComment, "-- c ;"), (Word, "x")]),
            ("--\r\nx", &[(LineComment, "--"), (Word, "x")]),
            (
                "/* a /* b */ ; */x",
                &[(BlockComment, "/* a /* b */ ; */"), (Word, "x")],
            ),
            ("/**/x", &[(BlockComment, "/**/"), (Word, "x")]),
            ("/* ** */", &[(BlockComment, "/* ** */")]),
            ("'it''s;'", &[(String(Standard), "'it''s;'")]),
            (
                r"'a\'c'",
                &[
                    (String(Standard), r"'a\'"),
                    (Word, "c"),
                    (String(Standard), "'"),
                ],
            ),
            (
                r"'a\'b'",
                &[(String(Standard), r"'a\'"), (String(Bit), "b'")],
            ),
            (
                r"E'it\'s;' x",
                &[(String(Escape), r"E'it\'s;'"), (Word, "x")],
            ),
            (
                r"e'a''b\\' x",
                &[(String(Escape), r"e'a''b\\'"), (Word, "x")],
            ),
            (
                "N'x' n'y'",
                &[(String(National), "N'x'"), (String(National), "n'y'")],
            ),
            (
                "B'101' x'1F'",
                &[(String(Bit), "B'101'"), (String(Hex), "x'1F'")],
            ),
            (
                "B'1''0'",
                &[(String(Bit), "B'1'"), (String(Standard), "'0'")],
            ),
            (
                r"U&'\0041;' u&'x'",
                &[(String(Unicode), r"U&'\0041;'"), (String(Unicode), "u&'x'")],
            ),
            ("U&\"a;b\"", &[(QuotedIdent, "U&\"a;b\"")]),
            (
                "u & 'x'",
                &[(Word, "u"), (Operator, "&"), (String(Standard), "'x'")],
            ),
            ("abe'x'", &[(Word, "abe"), (String(Standard), "'x'")]),
            ("ee'x'", &[(Word, "ee"), (String(Standard), "'x'")]),
            ("\"a;\"\"b\"", &[(QuotedIdent, "\"a;\"\"b\"")]),
            ("$$a;b$$", &[(DollarString, "$$a;b$$")]),
            (
                "$fn$ $$;$$ $x$ $fn$",
                &[(DollarString, "$fn$ $$;$$ $x$ $fn$")],
            ),
            ("$a$b$a$", &[(DollarString, "$a$b$a$")]),
            ("$_1$x$_1$", &[(DollarString, "$_1$x$_1$")]),
            ("$1 $23", &[(Param, "$1"), (Param, "$23")]),
            ("$1$$;$$", &[(Param, "$1"), (DollarString, "$$;$$")]),
            ("a$$b$$", &[(Word, "a$$b$$")]),
            (
                "1 3.14 .5 1e-3 1.e5 0x1F 1_000 1..2",
                &[
                    (Number, "1"),
                    (Number, "3.14"),
                    (Number, ".5"),
                    (Number, "1e-3"),
                    (Number, "1.e5"),
                    (Number, "0x1F"),
                    (Number, "1_000"),
                    (Number, "1"),
                    (Punct, ".."),
                    (Number, "2"),
                ],
            ),
            (
                "a.b::int[1]",
                &[
                    (Word, "a"),
                    (Punct, "."),
                    (Word, "b"),
                    (Punct, "::"),
                    (Word, "int"),
                    (Punct, "["),
                    (Number, "1"),
                    (Punct, "]"),
                ],
            ),
            (
                "(a,b);",
                &[
                    (LParen, "("),
                    (Word, "a"),
                    (Comma, ","),
                    (Word, "b"),
                    (RParen, ")"),
                    (Semicolon, ";"),
                ],
            ),
            (
                "a<>b ->> c",
                &[
                    (Word, "a"),
                    (Operator, "<>"),
                    (Word, "b"),
                    (Operator, "->>"),
                    (Word, "c"),
                ],
            ),
            (
                "a+--c\nb",
                &[
                    (Word, "a"),
                    (Operator, "+"),
                    (LineComment, "--c"),
                    (Word, "b"),
                ],
            ),
            ("*/*c*/", &[(Operator, "*"), (BlockComment, "/*c*/")]),
            ("\\x {", &[(Other, "\\"), (Word, "x"), (Other, "{")]),
        ];
        for (sql, expected) in cases {
            assert_eq!(kinds(sql), expected.to_vec(), "lexing {sql:?}");
        }
    }

    #[test]
    fn unterminated_tokens_run_to_the_end() {
        let cases: &[(&str, TokenKind, &str)] = &[
            ("x 'abc;", String(Standard), "'abc;"),
            (r"x E'abc\'", String(Escape), r"E'abc\'"),
            (r"x E'abc\", String(Escape), r"E'abc\"),
            ("x \"ab;", QuotedIdent, "\"ab;"),
            ("x /* a /* b */ c", BlockComment, "/* a /* b */ c"),
            ("x $tag$ body $$", DollarString, "$tag$ body $$"),
            ("x B'10", String(Bit), "B'10"),
            ("x U&'a", String(Unicode), "U&'a"),
        ];
        for (sql, kind, text) in cases {
            let tokens = tokenize(sql);
            let last = tokens.last().expect("a token");
            assert_eq!(
                (last.kind, last.text, last.unterminated),
                (*kind, *text, true),
                "{sql:?}"
            );
            assert!(tokens[..tokens.len() - 1].iter().all(|t| !t.unterminated));
        }
    }

    #[test]
    fn tokens_cover_the_input_and_never_panic() {
        let inputs = [
            "SELECT 'é', \"ü\" FROM t; -- ñ\n/* 日本 */ $€$ x $€$",
            "E'\\é",
            "E'\\",
            "$",
            "$é",
            "$é$",
            "'",
            "\"",
            "/*",
            "/*/",
            "-",
            "U&",
            "u&\"",
            "1e",
            "1e+",
            ".",
            "\u{0}\u{7f}\r\r\n",
            "é'x'",
        ];
        for sql in inputs {
            let tokens = tokenize(sql);
            let joined: std::string::String = tokens.iter().map(|t| t.text).collect();
            assert_eq!(joined, sql);
            let mut pos = 0;
            for t in &tokens {
                assert_eq!(t.span.start, pos);
                assert_eq!(&sql[t.span.clone()], t.text);
                pos = t.span.end;
            }
        }
    }

    #[test]
    fn lines_and_columns_count_characters() {
        let sql = "ab\n  'é€' c\r\nd\re /* x\ny */ f";
        let got: Vec<(&str, u32, u32)> = tokenize(sql)
            .into_iter()
            .filter(|t| !t.is_trivia() || t.is_comment())
            .map(|t| (t.text, t.line, t.column))
            .collect();
        assert_eq!(
            got,
            vec![
                ("ab", 1, 1),
                ("'é€'", 2, 3),
                ("c", 2, 8),
                ("d", 3, 1),
                ("e", 4, 1),
                ("/* x\ny */", 4, 3),
                ("f", 5, 6),
            ]
        );
    }

    #[test]
    fn words_compare_case_insensitively() {
        let tokens = tokenize("Create \"create\"");
        assert!(tokens[0].is_word("CREATE"));
        assert!(!tokens[2].is_word("create"));
    }

    #[test]
    fn comment_bodies() {
        let tokens = tokenize("-- migrations:lint-ignore x\n/* a */ /* open");
        let bodies: Vec<_> = tokens.iter().filter_map(Token::comment_body).collect();
        assert_eq!(bodies, vec![" migrations:lint-ignore x", " a ", " open"]);
        assert_eq!(tokenize("x")[0].comment_body(), None);
    }
}
