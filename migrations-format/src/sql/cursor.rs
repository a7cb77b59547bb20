//! The one way this crate reads a statement's words: a cursor over its significant tokens
//! (whitespace and comments skipped), with the few moves the statement checks need: match a
//! keyword case-insensitively, optional words, a possibly qualified name, and a parenthesised
//! `name [= value], ...` option list.
//!
//! Every check built on it ([`nontx`](super::nontx), [`txcontrol`](super::txcontrol),
//! [`index`](super::index), [`is_set_transaction`]) reads only a statement's *leading* tokens:
//! a keyword inside a string, a quoted identifier, a dollar-quoted body or a comment is one
//! token of another kind and never matches, and nothing after the part that decides is looked
//! at. The cursor never panics: reading past the end finds nothing.

use super::lexer::{Token, TokenKind};
use super::split::Statement;

/// A cursor over a statement's significant tokens.
///
/// ```
/// use migrations_format::sql::Cursor;
///
/// let tokens = migrations_format::sql::tokenize("create /* x */ UNIQUE index CONCURRENTLY s.\"I\" on t (x)");
/// let mut c = Cursor::new(&tokens);
/// assert!(c.eat("create"));
/// c.eat("unique"); // optional
/// assert!(c.eat_words(&["index", "concurrently"]));
/// assert_eq!(c.eat_name().as_deref(), Some("s.\"I\""));
/// assert!(c.is("on"));
/// ```
#[derive(Debug, Clone)]
pub struct Cursor<'t, 'a> {
    tokens: Vec<&'t Token<'a>>,
    pos: usize,
}

impl<'t, 'a> Cursor<'t, 'a> {
    /// A cursor at the first of `tokens` that is not whitespace or a comment.
    pub fn new(tokens: impl IntoIterator<Item = &'t Token<'a>>) -> Self {
        Cursor {
            tokens: tokens.into_iter().filter(|t| !t.is_trivia()).collect(),
            pos: 0,
        }
    }

    /// A cursor at the start of a statement of a [`Split`](super::split::Split).
    pub fn of_statement(statement: &'t Statement<'a>) -> Self {
        Cursor::new(&statement.tokens)
    }

    /// The next token, if any.
    pub fn peek(&self) -> Option<&'t Token<'a>> {
        self.peek_nth(0)
    }

    /// The token `n` places after the next one (`peek_nth(0)` is [`peek`](Self::peek)).
    pub fn peek_nth(&self, n: usize) -> Option<&'t Token<'a>> {
        self.tokens.get(self.pos + n).copied()
    }

    /// Whether every token has been read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    /// The tokens not read yet.
    pub fn rest(&self) -> &[&'t Token<'a>] {
        self.tokens.get(self.pos..).unwrap_or(&[])
    }

    /// Moves past the next token, if any, and returns it.
    pub fn bump(&mut self) -> Option<&'t Token<'a>> {
        let t = self.peek()?;
        self.pos += 1;
        Some(t)
    }

    /// Whether the next token is the keyword `word` (unquoted, any case).
    pub fn is(&self, word: &str) -> bool {
        self.peek().is_some_and(|t| t.is_word(word))
    }

    /// Whether the next tokens are the keywords `words`, in order.
    pub fn is_words(&self, words: &[&str]) -> bool {
        words
            .iter()
            .enumerate()
            .all(|(i, w)| self.peek_nth(i).is_some_and(|t| t.is_word(w)))
    }

    /// Consumes the keyword `word` if it is next; an optional word is `c.eat("unique");`.
    pub fn eat(&mut self, word: &str) -> bool {
        self.eat_words(&[word])
    }

    /// Consumes the keywords `words` if they are all next, in order; otherwise consumes
    /// nothing.
    pub fn eat_words(&mut self, words: &[&str]) -> bool {
        let found = self.is_words(words);
        if found {
            self.pos += words.len();
        }
        found
    }

    /// Consumes the first of `words` that is next and returns it.
    pub fn eat_one_of<'w>(&mut self, words: &[&'w str]) -> Option<&'w str> {
        let word = words.iter().copied().find(|w| self.is(w))?;
        self.pos += 1;
        Some(word)
    }

    /// Consumes the next token if it is an operator or punctuation spelled `text` (`*`, `=`).
    pub fn eat_symbol(&mut self, text: &str) -> bool {
        let found = self.peek().is_some_and(|t| {
            matches!(t.kind, TokenKind::Operator | TokenKind::Punct) && t.text == text
        });
        if found {
            self.pos += 1;
        }
        found
    }

    /// Consumes a possibly qualified name (`a`, `"A".b`, `a.b.c`) if one is next, and returns
    /// it as written (quotes kept, no spaces), ready for `to_regclass`. A keyword is a word
    /// too: callers check for a keyword that may stand where the name would before calling.
    pub fn eat_name(&mut self) -> Option<String> {
        let is_ident = |t: Option<&Token<'_>>| {
            t.is_some_and(|t| matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent))
        };
        if !is_ident(self.peek()) {
            return None;
        }
        let mut name = self.bump()?.text.to_owned();
        while self.peek().is_some_and(|t| {
            matches!(t.kind, TokenKind::Punct | TokenKind::Operator) && t.text == "."
        }) && is_ident(self.peek_nth(1))
        {
            name.push('.');
            self.pos += 1;
            name.push_str(self.bump()?.text);
        }
        Some(name)
    }

    /// Consumes a parenthesised list if one is next and returns a cursor over its tokens,
    /// without the outer parentheses. An unclosed list runs to the end of the statement (the
    /// server will refuse it; the check still reads what is there).
    pub fn eat_parenthesised(&mut self) -> Option<Cursor<'t, 'a>> {
        if self.peek()?.kind != TokenKind::LParen {
            return None;
        }
        let open = self.pos;
        let mut depth = 0usize;
        let mut close = self.tokens.len();
        for (i, t) in self.tokens.iter().enumerate().skip(open) {
            match t.kind {
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        close = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        self.pos = (close + 1).min(self.tokens.len());
        Some(Cursor {
            tokens: self.tokens[open + 1..close].to_vec(),
            pos: 0,
        })
    }

    /// Moves to just after the next keyword `word` and returns whether there was one. Only
    /// for clauses whose keyword cannot stand earlier in the statement as anything else.
    pub fn skip_past(&mut self, word: &str) -> bool {
        match self.rest().iter().position(|t| t.is_word(word)) {
            Some(i) => {
                self.pos += i + 1;
                true
            }
            None => false,
        }
    }

    /// In a `name [=] value, ...` option list (a cursor from
    /// [`eat_parenthesised`](Self::eat_parenthesised)), the value given to the option `name`:
    /// `Some(None)` when the option stands alone, `None` when it is absent. Option names
    /// compare as the server compares them (unquoted: any case). The server refuses a repeated
    /// option; should one slip through, the last one wins.
    pub fn option(&self, name: &str) -> Option<Option<&'t Token<'a>>> {
        self.rest()
            .rsplit(|t| t.kind == TokenKind::Comma)
            .find_map(|option| {
                let (first, rest) = option.split_first()?;
                let named = match first.kind {
                    TokenKind::Word => first.text.eq_ignore_ascii_case(name),
                    TokenKind::QuotedIdent => first.text.get(1..first.text.len() - 1) == Some(name),
                    _ => false,
                };
                if !named {
                    return None;
                }
                let value = match rest.split_first() {
                    Some((eq, value)) if eq.kind == TokenKind::Operator && eq.text == "=" => value,
                    _ => rest,
                };
                Some(value.first().copied())
            })
    }

    /// Whether the boolean option `name` of an option list is given and on, as the server's
    /// `defGetBoolean` reads it: alone, or `true`/`on`/`1`, quoted or not. `None` when the
    /// option is absent. A value the server would reject counts as on, so that a doubtful
    /// statement is flagged rather than missed.
    pub fn option_is_on(&self, name: &str) -> Option<bool> {
        let value = self.option(name)?;
        let Some(value) = value else {
            return Some(true);
        };
        let text = match value.kind {
            TokenKind::String(_) | TokenKind::QuotedIdent => value
                .text
                .get(1..value.text.len().saturating_sub(1))
                .unwrap_or(""),
            _ => value.text,
        };
        Some(
            !["false", "off", "0"]
                .iter()
                .any(|f| text.eq_ignore_ascii_case(f)),
        )
    }
}

/// Whether a statement (its text, without its `;`) is `SET TRANSACTION ...`, which
/// PostgreSQL takes only before the transaction's first query, so the runner sends nothing
/// before it. `SET SESSION CHARACTERISTICS AS TRANSACTION` is not: it is a session setting.
pub fn is_set_transaction(statement_text: &str) -> bool {
    // Only the head is lexed: the runner asks this of every statement it sends, and a
    // 200,000-row `INSERT` is millions of tokens.
    let tokens: Vec<Token<'_>> = super::lexer::Lexer::new(statement_text)
        .take(super::split::HEAD_TOKENS)
        .collect();
    Cursor::new(&tokens).is_words(&["set", "transaction"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lexer::tokenize;

    fn with<R>(sql: &str, f: impl FnOnce(&mut Cursor<'_, '_>) -> R) -> R {
        let tokens = tokenize(sql);
        f(&mut Cursor::new(&tokens))
    }

    #[test]
    fn words_skip_trivia_and_compare_like_the_server() {
        with(
            "-- a\n Create /* b /* nested */ */ UNIQUE\tindex \"INDEX\"",
            |c| {
                assert!(!c.eat("unique"));
                assert!(c.eat("CREATE"));
                assert!(c.is_words(&["unique", "index"]));
                assert!(!c.eat_words(&["unique", "table"]));
                assert_eq!(c.eat_one_of(&["table", "unique"]), Some("unique"));
                assert!(c.eat("index"));
                // A quoted identifier is never a keyword.
                assert!(!c.is("index"));
                assert_eq!(c.eat_name().as_deref(), Some("\"INDEX\""));
                assert!(c.at_end());
                assert!(!c.eat("x") && c.bump().is_none() && c.peek_nth(3).is_none());
            },
        );
    }

    #[test]
    fn names_and_symbols() {
        with("a . \"B\".c * , d. (", |c| {
            assert_eq!(c.eat_name().as_deref(), Some("a.\"B\".c"));
            assert!(c.eat_symbol("*"));
            assert!(c.eat_name().is_none());
            assert_eq!(c.bump().map(|t| t.kind), Some(TokenKind::Comma));
            // A dangling dot is not part of the name.
            assert_eq!(c.eat_name().as_deref(), Some("d"));
            assert!(c.eat_symbol("."));
        });
        with("'s' 1", |c| assert!(c.eat_name().is_none()));
    }

    #[test]
    fn parenthesised_lists_and_options() {
        with("(a, (b), \"C\" = 'off', d 0, e = x) tail", |c| {
            let list = c.eat_parenthesised().expect("a list");
            assert!(c.is("tail"));
            assert_eq!(list.option("a"), Some(None));
            assert_eq!(list.option_is_on("a"), Some(true));
            assert_eq!(list.option("b"), None); // inside nested parentheses
            assert_eq!(list.option_is_on("C"), Some(false));
            assert_eq!(list.option("c"), None); // quoted: case kept
            assert_eq!(list.option_is_on("D"), Some(false));
            assert_eq!(list.option_is_on("e"), Some(true)); // not a boolean: flagged
            assert_eq!(list.option("f"), None);
        });
        // Unclosed: the rest is the list.
        with("(verbose, concurrently", |c| {
            let list = c.eat_parenthesised().unwrap();
            assert!(c.at_end());
            assert_eq!(list.option_is_on("concurrently"), Some(true));
        });
        with("x (", |c| assert!(c.eat_parenthesised().is_none()));
        with("(a, a = false)", |c| {
            assert_eq!(
                c.eat_parenthesised().unwrap().option_is_on("a"),
                Some(false)
            );
        });
    }

    #[test]
    fn skip_past_a_keyword() {
        with(
            "CREATE SUBSCRIPTION s PUBLICATION p WITH (connect = false)",
            |c| {
                assert!(c.skip_past("with"));
                assert!(c.eat_parenthesised().is_some());
                assert!(!c.skip_past("with"));
            },
        );
    }

    #[test]
    fn set_transaction() {
        assert!(is_set_transaction(
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"
        ));
        assert!(is_set_transaction("set/* c */transaction read only"));
        assert!(is_set_transaction(
            "SET\n  -- why\n  TRANSACTION SNAPSHOT '0-1'"
        ));
        assert!(!is_set_transaction(
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
        ));
        assert!(!is_set_transaction("SET LOCAL lock_timeout = '1s'"));
        assert!(!is_set_transaction("SET \"transaction\" = 1"));
        assert!(!is_set_transaction("SELECT 'SET TRANSACTION'"));
        assert!(!is_set_transaction(""));
    }
}
