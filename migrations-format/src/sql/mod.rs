//! SQL lexing: the statement splitter and the detection of statements that PostgreSQL refuses
//! inside a transaction block.
//!
//! - [`cursor`] reads a statement's leading words (keywords, optional words, names, option
//!   lists): the one way the checks below, and the runner's, read a statement.
//! - [`lexer`] cuts SQL into tokens by PostgreSQL's lexical rules (strings of every prefix,
//!   quoted identifiers, dollar quotes, nested comments), keeping comments for directives and
//!   `-- migrations:lint-ignore`, and 1-based line and column for messages.
//! - [`split`] cuts a file into statements as psql does, for no-transaction migrations, which
//!   send each statement as its own query, and reports constructs left open at the end and
//!   input only psql understands (meta-commands, `COPY ... FROM STDIN` data).
//! - [`nontx`] tells which statements cannot run inside a transaction block, so a
//!   transactional migration holding one is refused before anything runs.
//! - [`txcontrol`] tells which statements open or end a transaction (`BEGIN`, `COMMIT`, ...),
//!   which a file the runner wraps in its own transaction must not hold.
//! - [`index`] finds the name of the index a `CREATE INDEX CONCURRENTLY` builds, which the
//!   runner checks for `indisvalid` after running it.
//!
//! Everything here is pure: no I/O, no database, and no panic on any input.

pub mod cursor;
pub mod index;
pub mod lexer;
pub mod nontx;
pub mod split;
pub mod txcontrol;

pub use cursor::{is_set_transaction, Cursor};
pub use index::created_index_name;
pub use lexer::{tokenize, Lexer, StringKind, Token, TokenKind, UnterminatedKind};
pub use nontx::{
    classify_statement, find_non_transactional, non_transactional, NonTransactional,
    NonTransactionalKind,
};
pub use split::{
    for_each_statement_head, split_statement_heads, split_statements, PsqlOnly, PsqlOnlyKind,
    Split, Statement, Unterminated,
};
pub use txcontrol::{classify_transaction_control, transaction_control, TransactionControlKind};
