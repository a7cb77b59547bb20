//! Finds the statements that PostgreSQL 15 refuses inside a transaction block (SPEC 1), so
//! that a transactional migration holding one fails before any database is touched, with
//! a message that says to mark the file `-- migrations:no-transaction`.
//!
//! The check reads the head of each statement with the [`Cursor`]; it does not parse.
//! Keywords compare case-insensitively, comments are skipped, and the places where the grammar allows
//! `( options )` or `VERBOSE` before the part that matters are skipped too. A `VACUUM` in a
//! string, a dollar-quoted function body or a comment is never seen, because only the
//! statement's own leading tokens are looked at; dynamic SQL in `DO` blocks is invisible for
//! the same reason. The server stays the authority; the aim is no false positives on valid
//! SQL and no misses for the list below.
//!
//! The list, checked against PostgreSQL 15's `PreventInTransactionBlock` calls:
//! `VACUUM`; `CREATE [UNIQUE] INDEX CONCURRENTLY`; `DROP INDEX CONCURRENTLY`;
//! `REINDEX ... CONCURRENTLY` (keyword or option); `REINDEX SCHEMA|DATABASE|SYSTEM`;
//! `CLUSTER` without a table; `ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY`;
//! `CREATE|DROP DATABASE`; `ALTER DATABASE ... SET TABLESPACE` (or the `TABLESPACE` option);
//! `CREATE|DROP TABLESPACE`; `ALTER SYSTEM`; `DISCARD ALL`; `CREATE SUBSCRIPTION` that
//! creates a replication slot; `COMMIT|ROLLBACK PREPARED`.

use std::fmt;

use super::cursor::Cursor;
use super::lexer::tokenize;
use super::split::{split_statements, Statement};

/// A kind of statement that cannot run inside a transaction block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NonTransactionalKind {
    /// `VACUUM`, in any form.
    Vacuum,
    /// `CREATE [UNIQUE] INDEX CONCURRENTLY`.
    CreateIndexConcurrently,
    /// `DROP INDEX CONCURRENTLY`.
    DropIndexConcurrently,
    /// `REINDEX ... CONCURRENTLY` (or with the `CONCURRENTLY` option).
    ReindexConcurrently,
    /// `REINDEX SCHEMA`, not concurrently.
    ReindexSchema,
    /// `REINDEX DATABASE`, not concurrently.
    ReindexDatabase,
    /// `REINDEX SYSTEM`, not concurrently.
    ReindexSystem,
    /// `CLUSTER` without a table: re-clusters every previously clustered table.
    ClusterAll,
    /// `ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY`.
    DetachPartitionConcurrently,
    /// `CREATE DATABASE`.
    CreateDatabase,
    /// `DROP DATABASE`.
    DropDatabase,
    /// `ALTER DATABASE ... SET TABLESPACE`.
    AlterDatabaseSetTablespace,
    /// `CREATE TABLESPACE`.
    CreateTablespace,
    /// `DROP TABLESPACE`.
    DropTablespace,
    /// `ALTER SYSTEM`.
    AlterSystem,
    /// `DISCARD ALL`.
    DiscardAll,
    /// `CREATE SUBSCRIPTION` that creates a replication slot (the default).
    CreateSubscription,
    /// `COMMIT PREPARED`.
    CommitPrepared,
    /// `ROLLBACK PREPARED`.
    RollbackPrepared,
}

impl NonTransactionalKind {
    /// The construct's short name for messages, such as `CREATE INDEX CONCURRENTLY`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vacuum => "VACUUM",
            Self::CreateIndexConcurrently => "CREATE INDEX CONCURRENTLY",
            Self::DropIndexConcurrently => "DROP INDEX CONCURRENTLY",
            Self::ReindexConcurrently => "REINDEX CONCURRENTLY",
            Self::ReindexSchema => "REINDEX SCHEMA",
            Self::ReindexDatabase => "REINDEX DATABASE",
            Self::ReindexSystem => "REINDEX SYSTEM",
            Self::ClusterAll => "CLUSTER without a table",
            Self::DetachPartitionConcurrently => {
                "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"
            }
            Self::CreateDatabase => "CREATE DATABASE",
            Self::DropDatabase => "DROP DATABASE",
            Self::AlterDatabaseSetTablespace => "ALTER DATABASE ... SET TABLESPACE",
            Self::CreateTablespace => "CREATE TABLESPACE",
            Self::DropTablespace => "DROP TABLESPACE",
            Self::AlterSystem => "ALTER SYSTEM",
            Self::DiscardAll => "DISCARD ALL",
            Self::CreateSubscription => "CREATE SUBSCRIPTION (creating a replication slot)",
            Self::CommitPrepared => "COMMIT PREPARED",
            Self::RollbackPrepared => "ROLLBACK PREPARED",
        }
    }

    /// Whether the statement is one of the `CONCURRENTLY` operations, which can fail half
    /// way and leave an invalid index or a partition in the middle of its detach behind; the
    /// runner checks for these after running one (SPEC 3.3).
    pub fn is_concurrently(self) -> bool {
        matches!(
            self,
            Self::CreateIndexConcurrently
                | Self::DropIndexConcurrently
                | Self::ReindexConcurrently
                | Self::DetachPartitionConcurrently
        )
    }
}

impl fmt::Display for NonTransactionalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A statement of a file that cannot run inside a transaction block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NonTransactional {
    /// What the statement is.
    pub kind: NonTransactionalKind,
    /// Index of the statement in the file's [`Split`](super::split::Split), from 0.
    pub statement_index: usize,
    /// 1-based line where the statement starts.
    pub line: u32,
    /// 1-based column (in characters) where the statement starts.
    pub column: u32,
}

/// The statements of `sql` that PostgreSQL refuses inside a transaction block, in order.
///
/// Text after an unterminated construct is one token, so nothing in it is found; callers
/// report [`Split::unterminated`](super::split::Split::unterminated) first.
pub fn find_non_transactional(sql: &str) -> Vec<NonTransactional> {
    split_statements(sql)
        .statements
        .iter()
        .enumerate()
        .filter_map(|(statement_index, statement)| {
            classify_statement(statement).map(|kind| NonTransactional {
                kind,
                statement_index,
                line: statement.line,
                column: statement.column,
            })
        })
        .collect()
}

/// Whether a statement of a [`Split`](super::split::Split) cannot run in a transaction block.
pub fn classify_statement(statement: &Statement<'_>) -> Option<NonTransactionalKind> {
    classify(Cursor::of_statement(statement))
}

/// Whether the text of one statement (without its `;`) cannot run in a transaction block.
pub fn non_transactional(statement_text: &str) -> Option<NonTransactionalKind> {
    let tokens = tokenize(statement_text);
    classify(Cursor::new(&tokens))
}

/// Classifies a statement from its head.
fn classify(mut c: Cursor<'_, '_>) -> Option<NonTransactionalKind> {
    use NonTransactionalKind as K;
    if c.eat("vacuum") {
        return Some(K::Vacuum);
    }
    if c.eat("create") {
        if c.eat("database") {
            return Some(K::CreateDatabase);
        }
        if c.eat("tablespace") {
            return Some(K::CreateTablespace);
        }
        if c.eat("subscription") {
            return subscription_creates_slot(&mut c).then_some(K::CreateSubscription);
        }
        c.eat("unique");
        return c
            .eat_words(&["index", "concurrently"])
            .then_some(K::CreateIndexConcurrently);
    }
    if c.eat("drop") {
        if c.eat("database") {
            return Some(K::DropDatabase);
        }
        if c.eat("tablespace") {
            return Some(K::DropTablespace);
        }
        return c
            .eat_words(&["index", "concurrently"])
            .then_some(K::DropIndexConcurrently);
    }
    if c.eat("reindex") {
        return reindex(&mut c);
    }
    if c.eat("cluster") {
        return cluster_without_table(&mut c).then_some(K::ClusterAll);
    }
    if c.eat("alter") {
        if c.eat("system") {
            return Some(K::AlterSystem);
        }
        if c.eat("table") {
            return detach_partition_concurrently(&mut c).then_some(K::DetachPartitionConcurrently);
        }
        if c.eat("database") {
            return alter_database_tablespace(&mut c).then_some(K::AlterDatabaseSetTablespace);
        }
        return None;
    }
    [
        (["discard", "all"], K::DiscardAll),
        (["commit", "prepared"], K::CommitPrepared),
        (["rollback", "prepared"], K::RollbackPrepared),
    ]
    .into_iter()
    .find(|(words, _)| c.is_words(words))
    .map(|(_, kind)| kind)
}

/// After `REINDEX`: `[ ( options ) ] {INDEX|TABLE|SCHEMA|DATABASE|SYSTEM} [CONCURRENTLY] name`.
/// Since PostgreSQL 14 `CONCURRENTLY` can also be given in the options list.
fn reindex(c: &mut Cursor<'_, '_>) -> Option<NonTransactionalKind> {
    use NonTransactionalKind as K;
    let concurrent_option = c
        .eat_parenthesised()
        .is_some_and(|options| options.option_is_on("concurrently") == Some(true));
    let whole = match c.eat_one_of(&["schema", "database", "system", "index", "table"])? {
        "schema" => Some(K::ReindexSchema),
        "database" => Some(K::ReindexDatabase),
        "system" => Some(K::ReindexSystem),
        _ => None,
    };
    // `REINDEX SCHEMA CONCURRENTLY` is refused for both reasons; it is named for the
    // concurrent build, which is the one a runner has to clean up after.
    if c.eat("concurrently") || concurrent_option {
        Some(K::ReindexConcurrently)
    } else {
        whole
    }
}

/// After `CLUSTER`: `[VERBOSE | ( options )]`, then a table or nothing. Without a table it
/// re-clusters every table clustered before, which the server refuses in a transaction.
fn cluster_without_table(c: &mut Cursor<'_, '_>) -> bool {
    if c.eat_parenthesised().is_none() {
        c.eat("verbose");
    }
    c.at_end()
}

/// After `ALTER TABLE`: `[IF EXISTS] [ONLY] name DETACH PARTITION name CONCURRENTLY`.
fn detach_partition_concurrently(c: &mut Cursor<'_, '_>) -> bool {
    c.eat_words(&["if", "exists"]);
    c.eat("only");
    if c.eat_name().is_none() {
        return false;
    }
    // `ALTER TABLE name *` (descendants, an old spelling) is harmless to skip.
    c.eat_symbol("*");
    c.eat_words(&["detach", "partition"]) && c.eat_name().is_some() && c.eat("concurrently")
}

/// After `ALTER DATABASE`: `name SET TABLESPACE new`, or the `TABLESPACE` option of
/// `name [WITH] option ...`, which the server handles alike ("ALTER DATABASE SET
/// TABLESPACE" in both cases).
fn alter_database_tablespace(c: &mut Cursor<'_, '_>) -> bool {
    if c.eat_name().is_none() {
        return false;
    }
    if c.eat("set") {
        return c.is("tablespace");
    }
    if c.eat_one_of(&["rename", "owner", "reset", "refresh"])
        .is_some()
    {
        return false;
    }
    c.eat("with");
    c.skip_past("tablespace")
}

/// After `CREATE SUBSCRIPTION`: whether the `WITH ( ... )` options leave `create_slot` on.
/// It defaults to on, and to off when `connect = false`.
fn subscription_creates_slot(c: &mut Cursor<'_, '_>) -> bool {
    if !c.skip_past("with") {
        return true;
    }
    let Some(options) = c.eat_parenthesised() else {
        return true;
    };
    options
        .option_is_on("create_slot")
        .or_else(|| options.option_is_on("connect"))
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use NonTransactionalKind as K;

    #[test]
    fn flags_each_construct_of_the_list() {
        let cases: &[(&str, Option<NonTransactionalKind>)] = &[
            ("VACUUM", Some(K::Vacuum)),
            ("vacuum (verbose, analyze) t", Some(K::Vacuum)),
            ("VACUUM FULL t", Some(K::Vacuum)),
            ("ANALYZE t", None),
            ("CREATE INDEX CONCURRENTLY i ON t (x)", Some(K::CreateIndexConcurrently)),
            ("create unique index concurrently if not exists i on t (x)", Some(K::CreateIndexConcurrently)),
            ("CREATE INDEX i ON t (x)", None),
            ("CREATE UNIQUE INDEX i ON t (x) WHERE note = 'concurrently'", None),
            ("DROP INDEX CONCURRENTLY IF EXISTS i", Some(K::DropIndexConcurrently)),
            ("DROP INDEX i", None),
            ("REINDEX INDEX CONCURRENTLY i", Some(K::ReindexConcurrently)),
            ("REINDEX (VERBOSE) TABLE CONCURRENTLY t", Some(K::ReindexConcurrently)),
            ("REINDEX (CONCURRENTLY) TABLE t", Some(K::ReindexConcurrently)),
            ("REINDEX (concurrently true, verbose) TABLE t", Some(K::ReindexConcurrently)),
            ("REINDEX (CONCURRENTLY false) TABLE t", None),
            ("REINDEX TABLE t", None),
            ("REINDEX INDEX i", None),
            ("REINDEX (VERBOSE) INDEX i", None),
            ("REINDEX SCHEMA s", Some(K::ReindexSchema)),
            ("REINDEX SCHEMA CONCURRENTLY s", Some(K::ReindexConcurrently)),
            ("reindex database d", Some(K::ReindexDatabase)),
            ("REINDEX (VERBOSE) SYSTEM d", Some(K::ReindexSystem)),
            ("CLUSTER", Some(K::ClusterAll)),
            ("CLUSTER VERBOSE", Some(K::ClusterAll)),
            ("CLUSTER (VERBOSE)", Some(K::ClusterAll)),
            ("CLUSTER t", None),
            ("CLUSTER t USING i", None),
            ("CLUSTER VERBOSE t", None),
            ("CLUSTER (VERBOSE) t USING i", None),
            ("CLUSTER i ON t", None),
            ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", Some(K::DetachPartitionConcurrently)),
            ("alter table if exists only s.p detach partition s.\"C\" concurrently", Some(K::DetachPartitionConcurrently)),
            ("ALTER TABLE p DETACH PARTITION c", None),
            ("ALTER TABLE p DETACH PARTITION c FINALIZE", None),
            ("ALTER TABLE t ADD COLUMN concurrently int", None),
            ("CREATE DATABASE d", Some(K::CreateDatabase)),
            ("DROP DATABASE IF EXISTS d WITH (FORCE)", Some(K::DropDatabase)),
            ("CREATE SCHEMA database", None),
            ("DROP TABLE database", None),
            ("ALTER DATABASE d SET TABLESPACE ts", Some(K::AlterDatabaseSetTablespace)),
            ("ALTER DATABASE \"D\" WITH TABLESPACE ts", Some(K::AlterDatabaseSetTablespace)),
            ("ALTER DATABASE d SET search_path TO a, b", None),
            ("ALTER DATABASE d SET default_tablespace = ts", None),
            ("ALTER DATABASE d RENAME TO tablespace", None),
            ("ALTER DATABASE d WITH CONNECTION LIMIT 5", None),
            ("CREATE TABLESPACE ts LOCATION '/x'", Some(K::CreateTablespace)),
            ("DROP TABLESPACE IF EXISTS ts", Some(K::DropTablespace)),
            ("ALTER TABLESPACE ts RENAME TO ts2", None),
            ("ALTER SYSTEM SET work_mem = '1MB'", Some(K::AlterSystem)),
            ("ALTER TABLE system ADD x int", None),
            ("DISCARD ALL", Some(K::DiscardAll)),
            ("DISCARD PLANS", None),
            ("CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", Some(K::CreateSubscription)),
            ("CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (enabled = false)", Some(K::CreateSubscription)),
            ("CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (create_slot = true)", Some(K::CreateSubscription)),
            ("CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (create_slot = false, slot_name = 's')", None),
            ("CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (CREATE_SLOT = 'off')", None),
            ("CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (connect = false)", None),
            ("CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (connect = 0, enabled = false)", None),
            ("COMMIT PREPARED 'tx1'", Some(K::CommitPrepared)),
            ("COMMIT", None),
            ("ROLLBACK PREPARED 'tx1'", Some(K::RollbackPrepared)),
            ("ROLLBACK", None),
            ("PREPARE TRANSACTION 'tx1'", None),
            ("REFRESH MATERIALIZED VIEW CONCURRENTLY v", None),
            ("SELECT 'VACUUM'", None),
            ("-- VACUUM\nSELECT 1", None),
            ("/* CREATE DATABASE d */ /* x */ vacuum", Some(K::Vacuum)),
            ("CREATE FUNCTION f() RETURNS void AS $$ VACUUM; CREATE DATABASE d $$ LANGUAGE sql", None),
            ("DO $$ BEGIN EXECUTE 'VACUUM'; END $$", None),
            ("\"VACUUM\"", None),
            ("", None),
        ];
        for (sql, expected) in cases {
            assert_eq!(non_transactional(sql), *expected, "classifying {sql:?}");
        }
    }

    #[test]
    fn findings_point_at_statements() {
        let sql = "-- migrations:no-transaction\nCREATE TABLE t (x int);\n\nCREATE INDEX CONCURRENTLY i ON t (x);\n  VACUUM t; SELECT 'REINDEX SCHEMA s;'";
        let found = find_non_transactional(sql);
        assert_eq!(
            found,
            vec![
                NonTransactional {
                    kind: K::CreateIndexConcurrently,
                    statement_index: 1,
                    line: 4,
                    column: 1,
                },
                NonTransactional {
                    kind: K::Vacuum,
                    statement_index: 2,
                    line: 5,
                    column: 3,
                },
            ]
        );
        assert_eq!(found[0].kind.to_string(), "CREATE INDEX CONCURRENTLY");
        assert!(found[0].kind.is_concurrently());
        assert!(!found[1].kind.is_concurrently());
    }

    /// Truncated or odd input never panics. A truncated statement whose head is already one
    /// of the refused forms is flagged by that head (the server refuses it anyway, as a syntax
    /// error); anything else is not flagged.
    #[test]
    fn odd_input_is_classified_by_its_head_only() {
        use NonTransactionalKind::*;
        for (sql, expected) in [
            ("CLUSTER (", Some(ClusterAll)),
            ("CREATE SUBSCRIPTION s WITH (", Some(CreateSubscription)),
            ("REINDEX (", None),
            ("ALTER DATABASE", None),
            ("ALTER TABLE", None),
            ("(((", None),
            ("\"", None),
            ("WITH (\"\")", None),
            ("", None),
            ("-- VACUUM", None),
            ("/* VACUUM", None),
            ("'VACUUM", None),
        ] {
            assert_eq!(non_transactional(sql), expected, "{sql:?}");
        }
    }
}
