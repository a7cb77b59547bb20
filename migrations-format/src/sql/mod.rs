//! SQL lexing: the statement splitter and the detection of statements that PostgreSQL refuses
//! inside a transaction block.
//!
//! - [`lexer`] cuts SQL into tokens by PostgreSQL's lexical rules (strings of every prefix,
//!   quoted identifiers, dollar quotes, nested comments), keeping comments for directives and
//!   `-- migrations:lint-ignore`, and 1-based line and column for messages.
//! - [`split`] cuts a file into statements as psql does, for no-transaction migrations, which
//!   send each statement as its own query, and reports constructs left open at the end.
//! - [`nontx`] tells which statements cannot run inside a transaction block, so a
//!   transactional migration holding one is refused before anything runs.
//!
//! Everything here is pure: no I/O, no database, and no panic on any input.

pub mod index;
pub mod lexer;
pub mod nontx;
pub mod split;

pub use index::created_index_name;
pub use lexer::{tokenize, Lexer, StringKind, Token, TokenKind, UnterminatedKind};
pub use nontx::{
    classify_statement, find_non_transactional, non_transactional, NonTransactional,
    NonTransactionalKind,
};
pub use split::{split_statements, Split, Statement, Unterminated};
