//! Transaction control statements (`BEGIN`, `COMMIT`, `ROLLBACK`, ...).
//!
//! The runner sends a transactional file, and the history row that records it, inside one
//! transaction of its own. A `COMMIT` in the file commits the first half with no history row,
//! and the rest then runs in autocommit: a failure later leaves the migration half applied and
//! unrecorded, and a rerun applies the first half again. So a file that runs in a transaction
//! must not hold one: the loader refuses an up file with one, and the runner refuses such a
//! down file before anything runs. A no-transaction file may hold them (explicit
//! `BEGIN ... COMMIT` blocks).
//!
//! Like [`nontx`](super::nontx), the check reads only the leading tokens of each statement of
//! the [splitter](super::split), with the [`Cursor`], so a keyword in a string, a comment, a
//! dollar-quoted body or in the middle of a statement (the `END` of a `CASE`, the `BEGIN
//! ATOMIC ... END` of a function body) is never seen. Not flagged: `SAVEPOINT`, `RELEASE [SAVEPOINT]` and
//! `ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT]`, which keep the transaction open; `COMMIT
//! PREPARED` and `ROLLBACK PREPARED`, which are in the non-transactional list (PostgreSQL
//! refuses them in a transaction block); `SET TRANSACTION`; and `PREPARE name AS ...`.

use std::fmt;

use super::cursor::Cursor;
use super::lexer::{tokenize, TokenKind};
use super::split::Statement;

/// A statement that opens or ends a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransactionControlKind {
    /// `BEGIN [WORK|TRANSACTION] [modes]`.
    Begin,
    /// `START TRANSACTION [modes]`.
    StartTransaction,
    /// `COMMIT [WORK|TRANSACTION] [AND [NO] CHAIN]`.
    Commit,
    /// `END [WORK|TRANSACTION] [AND [NO] CHAIN]`, the same as `COMMIT`.
    End,
    /// `ROLLBACK [WORK|TRANSACTION] [AND [NO] CHAIN]`, not `ROLLBACK ... TO SAVEPOINT`.
    Rollback,
    /// `ABORT [WORK|TRANSACTION] [AND [NO] CHAIN]`, the same as `ROLLBACK`.
    Abort,
    /// `PREPARE TRANSACTION 'id'`: ends the transaction, keeping it for a later `COMMIT
    /// PREPARED`.
    PrepareTransaction,
}

impl TransactionControlKind {
    /// Every kind, in declaration order.
    pub const ALL: [TransactionControlKind; 7] = [
        Self::Begin,
        Self::StartTransaction,
        Self::Commit,
        Self::End,
        Self::Rollback,
        Self::Abort,
        Self::PrepareTransaction,
    ];

    /// The statement's keywords for messages, such as `COMMIT` or `START TRANSACTION`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Begin => "BEGIN",
            Self::StartTransaction => "START TRANSACTION",
            Self::Commit => "COMMIT",
            Self::End => "END",
            Self::Rollback => "ROLLBACK",
            Self::Abort => "ABORT",
            Self::PrepareTransaction => "PREPARE TRANSACTION",
        }
    }

    /// The kind whose [`name`](Self::name) is `name`. A migration set built by the macro
    /// carries only that name for a statement it refuses in a transaction, and the runner
    /// reads it back with this to give the right fix.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the statement opens a transaction (`BEGIN`, `START TRANSACTION`) rather than
    /// ending one.
    pub fn opens(self) -> bool {
        matches!(self, Self::Begin | Self::StartTransaction)
    }

    /// Why a file that runs in a transaction cannot hold the statement, and the fix, for
    /// messages. `mark_no_transaction` says how this file is marked no-transaction (the
    /// directive, or diesel's `metadata.toml`):
    /// ``"`COMMIT` would break the transaction ...; drop the statement, or <mark>"``.
    pub fn refusal(self, mark_no_transaction: &str) -> String {
        format!(
            "`{self}` would break the transaction the runner wraps this file in (the file and \
             its history record commit together); drop the statement, or {mark_no_transaction}"
        )
    }
}

impl fmt::Display for TransactionControlKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a statement of a [`Split`](super::split::Split) is transaction control.
pub fn classify_transaction_control(statement: &Statement<'_>) -> Option<TransactionControlKind> {
    classify(Cursor::of_statement(statement))
}

/// Whether the text of one statement (without its `;`) is transaction control.
pub fn transaction_control(statement_text: &str) -> Option<TransactionControlKind> {
    let tokens = tokenize(statement_text);
    classify(Cursor::new(&tokens))
}

/// Classifies a statement from its head.
fn classify(mut c: Cursor<'_, '_>) -> Option<TransactionControlKind> {
    use TransactionControlKind as K;
    if c.eat("begin") {
        // `BEGIN ATOMIC` opens a function body; at the head of a statement it is a syntax
        // error, not a transaction.
        return (!c.is("atomic")).then_some(K::Begin);
    }
    if c.eat("start") {
        return c.is("transaction").then_some(K::StartTransaction);
    }
    if c.eat("prepare") {
        // `PREPARE TRANSACTION 'id'`, not `PREPARE transaction AS ...` (a prepared statement
        // named `transaction`).
        let id = |c: &Cursor<'_, '_>| {
            c.peek()
                .is_some_and(|t| matches!(t.kind, TokenKind::String(_)))
        };
        return (c.eat("transaction") && id(&c)).then_some(K::PrepareTransaction);
    }
    let kind = match c.eat_one_of(&["commit", "end", "rollback", "abort"])? {
        "commit" => K::Commit,
        "end" => K::End,
        "rollback" => K::Rollback,
        _ => K::Abort,
    };
    if c.is("prepared") {
        return None; // COMMIT|ROLLBACK PREPARED: in the non-transactional list
    }
    // `ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT] name` keeps the transaction open.
    c.eat_one_of(&["work", "transaction"]);
    (!c.is("to")).then_some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::split_statements;
    use TransactionControlKind as K;

    #[test]
    fn flags_each_statement_and_nothing_else() {
        let cases: &[(&str, Option<TransactionControlKind>)] = &[
            ("BEGIN", Some(K::Begin)),
            ("begin work", Some(K::Begin)),
            (
                "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                Some(K::Begin),
            ),
            ("BEGIN ATOMIC", None),
            ("START TRANSACTION", Some(K::StartTransaction)),
            ("start transaction read only", Some(K::StartTransaction)),
            ("START", None),
            ("COMMIT", Some(K::Commit)),
            ("commit work", Some(K::Commit)),
            ("COMMIT AND CHAIN", Some(K::Commit)),
            ("COMMIT TRANSACTION AND NO CHAIN", Some(K::Commit)),
            ("COMMIT PREPARED 'x'", None),
            ("END", Some(K::End)),
            ("end transaction", Some(K::End)),
            ("ROLLBACK", Some(K::Rollback)),
            ("ROLLBACK AND CHAIN", Some(K::Rollback)),
            ("ROLLBACK WORK", Some(K::Rollback)),
            ("ROLLBACK TO SAVEPOINT s", None),
            ("ROLLBACK TO s", None),
            ("rollback work to savepoint s", None),
            ("ROLLBACK TRANSACTION TO s", None),
            ("ROLLBACK PREPARED 'x'", None),
            ("ABORT", Some(K::Abort)),
            ("abort transaction", Some(K::Abort)),
            ("PREPARE TRANSACTION 'tx1'", Some(K::PrepareTransaction)),
            ("prepare transaction E'tx\\'1'", Some(K::PrepareTransaction)),
            ("PREPARE transaction AS SELECT 1", None),
            ("PREPARE q (int) AS SELECT $1", None),
            ("SAVEPOINT s", None),
            ("RELEASE SAVEPOINT s", None),
            ("RELEASE s", None),
            ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", None),
            ("SELECT 'COMMIT'", None),
            ("SELECT CASE WHEN true THEN 1 END", None),
            ("-- COMMIT\nSELECT 1", None),
            ("/* c */ COMMIT", Some(K::Commit)),
            ("\"COMMIT\"", None),
            ("DO $$ BEGIN COMMIT; END $$", None),
            ("CREATE TABLE \"end\" (begin int)", None),
            ("", None),
        ];
        for (sql, expected) in cases {
            assert_eq!(transaction_control(sql), *expected, "classifying {sql:?}");
        }
    }

    #[test]
    fn only_statement_heads_count() {
        // `END` closing a CASE or a `BEGIN ATOMIC` body, and keywords in strings, comments
        // and dollar quotes, are inside other statements.
        let sql = "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  \
                   SELECT CASE WHEN x > 0 THEN 1 END;\nEND;\n\
                   DO $$ BEGIN COMMIT; END $$;\n\
                   SELECT E'\\nCOMMIT;' /* COMMIT; */;\n\
                   -- ROLLBACK;\n\
                   INSERT INTO t VALUES (1);\n  commit;\nSAVEPOINT s; ROLLBACK TO s; RELEASE s;";
        let found: Vec<(u32, u32, TransactionControlKind)> = split_statements(sql)
            .statements
            .iter()
            .filter_map(|s| classify_transaction_control(s).map(|k| (s.line, s.column, k)))
            .collect();
        assert_eq!(found, vec![(9, 3, K::Commit)]);
    }

    #[test]
    fn names_round_trip() {
        for kind in TransactionControlKind::ALL {
            assert_eq!(TransactionControlKind::from_name(kind.name()), Some(kind));
            assert_eq!(kind.to_string(), kind.name());
        }
        assert_eq!(
            TransactionControlKind::from_name("CREATE INDEX CONCURRENTLY"),
            None
        );
        assert!(K::Begin.opens() && K::StartTransaction.opens() && !K::Commit.opens());
    }
}
