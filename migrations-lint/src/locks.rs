//! The table locks a statement takes, and the relations it creates, read from squawk's
//! syntax tree. Only the statements migrations are made of are known; for the rest the list
//! is empty.

use std::fmt;

use squawk_syntax::ast::{self, AstNode};

use crate::syntax::Name;

/// PostgreSQL's table lock modes that can stall a migration or the application, weakest
/// first (ACCESS SHARE, ROW SHARE and ROW EXCLUSIVE are left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LockMode {
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl LockMode {
    pub fn name(self) -> &'static str {
        match self {
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// What it blocks while held (and, worse, while waited for: later requests queue behind).
    pub fn blocks(self) -> &'static str {
        match self {
            LockMode::ShareUpdateExclusive => {
                "other schema changes and VACUUM, not reads or writes"
            }
            LockMode::Share | LockMode::ShareRowExclusive | LockMode::Exclusive => "writes",
            LockMode::AccessExclusive => "reads and writes",
        }
    }

    /// Blocks writes at least: a wait for it stalls the application.
    pub fn is_strong(self) -> bool {
        self >= LockMode::Share
    }

    /// The mode a `LOCK ... IN mode MODE` names; `None` for the weak ones.
    fn of(mode: &ast::LockMode) -> Option<LockMode> {
        use ast::LockMode as M;
        match mode {
            M::AccessExclusive(_) => Some(LockMode::AccessExclusive),
            M::Exclusive(_) => Some(LockMode::Exclusive),
            M::ShareRowExclusive(_) => Some(LockMode::ShareRowExclusive),
            M::Share(_) => Some(LockMode::Share),
            M::ShareUpdateExclusive(_) => Some(LockMode::ShareUpdateExclusive),
            M::RowExclusive(_) | M::RowShare(_) | M::AccessShare(_) => None,
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A table-level lock a statement takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lock {
    pub mode: LockMode,
    pub relation: Name,
}

fn table_ref(name: Option<ast::TableNameRef>) -> Option<Name> {
    Name::of_ref(&name?.path_ref()?)
}

fn relation_ref(name: Option<ast::RelationNameRef>) -> Option<Name> {
    Name::of_ref(&name?.path_ref()?)
}

fn relation(name: Option<ast::TableRelationName>) -> Option<Name> {
    table_ref(name?.table_name_ref())
}

/// The tables a foreign key in `node` references (`REFERENCES t`, `FOREIGN KEY ... REFERENCES
/// t`): a foreign key takes SHARE ROW EXCLUSIVE on them.
fn referenced_tables(node: &squawk_syntax::SyntaxNode) -> Vec<Name> {
    node.descendants()
        .filter_map(|n| {
            if let Some(fk) = ast::ForeignKeyConstraint::cast(n.clone()) {
                table_ref(fk.table_name_ref())
            } else {
                ast::ReferencesConstraint::cast(n).and_then(|r| table_ref(r.table()))
            }
        })
        .collect()
}

/// The lock one `ALTER TABLE` action takes (PostgreSQL 15's `AlterTableGetLockLevel`).
fn alter_table_action_lock(action: &ast::AlterTableAction) -> LockMode {
    use ast::AlterTableAction as A;
    match action {
        A::ValidateConstraint(_)
        | A::SetWithoutCluster(_)
        | A::ClusterOn(_)
        | A::SetOptions(_)
        | A::ResetOptions(_)
        | A::AttachPartition(_) => LockMode::ShareUpdateExclusive,
        A::AlterColumn(c) => match c.option() {
            Some(
                ast::AlterColumnOption::SetStatistics(_)
                | ast::AlterColumnOption::SetOptions(_)
                | ast::AlterColumnOption::ResetOptions(_),
            ) => LockMode::ShareUpdateExclusive,
            _ => LockMode::AccessExclusive,
        },
        A::DetachPartition(d) if d.detach_partition_option().is_some() => {
            // DETACH PARTITION ... CONCURRENTLY or FINALIZE.
            LockMode::ShareUpdateExclusive
        }
        A::AddConstraint(add) => match add.constraint() {
            Some(
                ast::Constraint::ForeignKeyConstraint(_) | ast::Constraint::ReferencesConstraint(_),
            ) => LockMode::ShareRowExclusive,
            _ => LockMode::AccessExclusive,
        },
        A::EnableTrigger(_)
        | A::DisableTrigger(_)
        | A::EnableAlwaysTrigger(_)
        | A::EnableReplicaTrigger(_) => LockMode::ShareRowExclusive,
        _ => LockMode::AccessExclusive,
    }
}

/// Whether a `REINDEX` rebuilds concurrently (`REINDEX INDEX CONCURRENTLY i`, or the
/// `CONCURRENTLY` option, PostgreSQL 14+).
fn reindex_concurrently(reindex: &ast::Reindex) -> bool {
    let option = reindex.reindex_option_list().is_some_and(|list| {
        list.reindex_options().any(|o| match o {
            ast::ReindexOption::ReindexOptionConcurrently(c) => option_on(c.syntax()),
            _ => false,
        })
    });
    let keyword = match reindex.reindex_target() {
        Some(ast::ReindexTarget::ReindexTargetIndex(t)) => t.concurrently_token().is_some(),
        Some(ast::ReindexTarget::ReindexTargetTable(t)) => t.concurrently_token().is_some(),
        _ => false,
    };
    option || keyword
}

/// The table locks a statement waits for; an empty list when it takes none that can stall
/// anyone, or when we do not know the statement.
pub(crate) fn locks(stmt: &ast::Stmt) -> Vec<Lock> {
    use ast::Stmt as S;
    let mut out = Vec::new();
    let mut push = |mode: LockMode, relation: Option<Name>| {
        if let Some(relation) = relation {
            out.push(Lock { mode, relation });
        }
    };
    match stmt {
        S::AlterTable(alter) => {
            let Some(table) = relation(alter.table_relation_name()) else {
                return out;
            };
            let mut strongest = None;
            for action in alter.actions() {
                strongest = strongest.max(Some(alter_table_action_lock(&action)));
                for referenced in referenced_tables(action.syntax()) {
                    push(LockMode::ShareRowExclusive, Some(referenced));
                }
            }
            push(strongest.unwrap_or(LockMode::AccessExclusive), Some(table));
        }
        S::AlterIndex(alter) => {
            let mode = match alter.action() {
                Some(
                    ast::AlterIndexAction::IndexRenameTo(_)
                    | ast::AlterIndexAction::SetOptions(_)
                    | ast::AlterIndexAction::ResetOptions(_)
                    | ast::AlterIndexAction::AlterSetStatistics(_),
                ) => LockMode::ShareUpdateExclusive,
                _ => LockMode::AccessExclusive,
            };
            push(
                mode,
                alter.index_ref().and_then(|i| Name::of_ref(&i.path_ref()?)),
            );
        }
        S::CreateIndex(create) => {
            let mode = if create.concurrently_token().is_some() {
                LockMode::ShareUpdateExclusive
            } else {
                LockMode::Share
            };
            push(mode, relation(create.table_relation_name()));
        }
        S::CreateTable(create) => {
            let created = created_relations(stmt);
            if let Some(args) = create.table_arg_list() {
                for referenced in referenced_tables(args.syntax()) {
                    if !created.iter().any(|c| c.key == referenced.key) {
                        push(LockMode::ShareRowExclusive, Some(referenced));
                    }
                }
            }
            if let Some(parent) = create.partition_of() {
                push(
                    LockMode::AccessExclusive,
                    table_ref(parent.table_name_ref()),
                );
            }
        }
        S::CreateTrigger(create) => {
            push(
                LockMode::ShareRowExclusive,
                relation_ref(create.on_relation().and_then(|o| o.relation_name_ref())),
            );
        }
        S::DropTable(drop) => {
            for name in drop.table_name_refs() {
                push(LockMode::AccessExclusive, table_ref(Some(name)));
            }
        }
        S::DropIndex(drop) if drop.concurrently_token().is_none() => {
            for index in drop.index_refs() {
                push(
                    LockMode::AccessExclusive,
                    index.path_ref().and_then(|p| Name::of_ref(&p)),
                );
            }
        }
        S::DropTrigger(drop) => {
            push(
                LockMode::AccessExclusive,
                relation_ref(drop.on_relation().and_then(|o| o.relation_name_ref())),
            );
        }
        S::Truncate(truncate) => {
            for name in truncate
                .table_list()
                .into_iter()
                .flat_map(|l| l.table_relation_names())
            {
                push(LockMode::AccessExclusive, relation(Some(name)));
            }
        }
        // NOWAIT fails at once instead of waiting.
        S::Lock(lock) if lock.nowait().is_none() => {
            let mode = match lock.lock_mode_clause() {
                None => Some(LockMode::AccessExclusive),
                Some(clause) => clause.lock_mode().and_then(|m| LockMode::of(&m)),
            };
            if let Some(mode) = mode {
                for name in lock
                    .relation_list()
                    .into_iter()
                    .flat_map(|l| l.relation_names())
                {
                    push(mode, relation_ref(name.relation_name_ref()));
                }
            }
        }
        S::Reindex(reindex) if !reindex_concurrently(reindex) => {
            let target = match reindex.reindex_target() {
                Some(ast::ReindexTarget::ReindexTargetIndex(t)) => {
                    t.index_ref().and_then(|i| Name::of_ref(&i.path_ref()?))
                }
                Some(ast::ReindexTarget::ReindexTargetTable(t)) => table_ref(t.table_name_ref()),
                _ => None,
            };
            push(LockMode::AccessExclusive, target);
        }
        S::Cluster(cluster) => {
            push(
                LockMode::AccessExclusive,
                table_ref(cluster.table_name_ref()),
            );
        }
        S::Vacuum(vacuum) if vacuum_full(vacuum) => {
            for table in vacuum
                .table_and_columns_list()
                .into_iter()
                .flat_map(|l| l.table_and_columnss())
            {
                push(
                    LockMode::AccessExclusive,
                    relation(table.table_relation_name()),
                );
            }
        }
        S::Refresh(refresh) => {
            let mode = if refresh.concurrently_token().is_some() {
                LockMode::Exclusive
            } else {
                LockMode::AccessExclusive
            };
            push(
                mode,
                refresh
                    .view_ref()
                    .and_then(|v| Name::of_ref(&v.path_ref()?)),
            );
        }
        _ => {}
    }
    out
}

/// Whether a boolean option (`CONCURRENTLY`, `FULL false`, `full 'off'`) is on, as the
/// server's `defGetBoolean` reads it: alone, or with a value other than false, off, no or 0.
fn option_on(option: &squawk_syntax::SyntaxNode) -> bool {
    let text = option.text().to_string();
    let value = text.split_whitespace().nth(1).unwrap_or("true");
    let value = value.trim_matches('\'');
    !["false", "off", "no", "0"]
        .iter()
        .any(|f| value.eq_ignore_ascii_case(f))
}

/// `VACUUM FULL ...` or `VACUUM (FULL) ...`: the table is rewritten under ACCESS EXCLUSIVE.
fn vacuum_full(vacuum: &ast::Vacuum) -> bool {
    vacuum.full_token().is_some()
        || vacuum.vacuum_option_list().is_some_and(|list| {
            list.syntax()
                .descendants()
                .filter_map(ast::VacuumOption::cast)
                .any(|o| {
                    o.vacuum_option_name()
                        .is_some_and(|n| n.syntax().text().to_string().eq_ignore_ascii_case("full"))
                        && option_on(o.syntax())
                })
        })
}

/// Relations a statement creates (tables, materialized views, indexes): locking them later in
/// the same transaction stalls nobody, since no other session sees them yet.
pub(crate) fn created_relations(stmt: &ast::Stmt) -> Vec<Name> {
    use ast::Stmt as S;
    let path = match stmt {
        S::CreateTable(c) => c.table_name().and_then(|t| t.path()),
        S::CreateTableAs(c) => c.table_name().and_then(|t| t.path()),
        S::SelectInto(s) => s
            .into_clause()
            .and_then(|i| i.table_name())
            .and_then(|t| t.path()),
        S::CreateMaterializedView(c) => c.view().and_then(|v| v.path()),
        S::CreateIndex(c) => c.index().and_then(|i| i.path()),
        _ => None,
    };
    path.and_then(|p| Name::of_path(&p)).into_iter().collect()
}

/// The table a statement builds an index on or adds a constraint to: the table whose lock
/// squawk's index and constraint rules are about.
pub(crate) fn indexed_or_altered_table(stmt: &ast::Stmt) -> Option<Name> {
    match stmt {
        ast::Stmt::CreateIndex(c) => relation(c.table_relation_name()),
        ast::Stmt::AlterTable(a) => relation(a.table_relation_name()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse_statements;

    fn lock_list(sql: &str) -> Vec<(String, &'static str)> {
        parse_statements(sql)
            .iter()
            .flat_map(locks)
            .map(|l| (l.relation.key, l.mode.name()))
            .collect()
    }

    #[test]
    fn locks_by_statement() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("ALTER TABLE users ADD COLUMN x int", &[("users", "ACCESS EXCLUSIVE")]),
            ("alter table if exists only public.\"Users\" drop column x", &[("Users", "ACCESS EXCLUSIVE")]),
            ("ALTER TABLE a VALIDATE CONSTRAINT c", &[("a", "SHARE UPDATE EXCLUSIVE")]),
            (
                "ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (b_id) REFERENCES b (id) NOT VALID",
                &[("b", "SHARE ROW EXCLUSIVE"), ("a", "SHARE ROW EXCLUSIVE")],
            ),
            (
                "ALTER TABLE a ADD COLUMN b_id bigint REFERENCES b, ALTER COLUMN x SET STATISTICS 100",
                &[("b", "SHARE ROW EXCLUSIVE"), ("a", "ACCESS EXCLUSIVE")],
            ),
            ("ALTER TABLE a ALTER COLUMN x SET STATISTICS 100, SET (fillfactor = 50)", &[("a", "SHARE UPDATE EXCLUSIVE")]),
            ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", &[("p", "SHARE UPDATE EXCLUSIVE")]),
            ("ALTER TABLE p DETACH PARTITION c", &[("p", "ACCESS EXCLUSIVE")]),
            ("ALTER TABLE t DISABLE TRIGGER tr", &[("t", "SHARE ROW EXCLUSIVE")]),
            ("ALTER INDEX i RENAME TO j", &[("i", "SHARE UPDATE EXCLUSIVE")]),
            ("ALTER INDEX i SET TABLESPACE ts", &[("i", "ACCESS EXCLUSIVE")]),
            ("CREATE INDEX i ON t (x)", &[("t", "SHARE")]),
            ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON ONLY s.t (x)", &[("t", "SHARE UPDATE EXCLUSIVE")]),
            ("CREATE TABLE c (id bigint, p_id bigint REFERENCES p (id), c_id bigint REFERENCES c)", &[("p", "SHARE ROW EXCLUSIVE")]),
            ("CREATE TABLE c (x int, FOREIGN KEY (x) REFERENCES q)", &[("q", "SHARE ROW EXCLUSIVE")]),
            ("CREATE TABLE c PARTITION OF p FOR VALUES IN (1)", &[("p", "ACCESS EXCLUSIVE")]),
            ("CREATE TRIGGER tr BEFORE UPDATE OF a, b ON t FOR EACH ROW EXECUTE FUNCTION f()", &[("t", "SHARE ROW EXCLUSIVE")]),
            ("DROP TABLE IF EXISTS a, b CASCADE", &[("a", "ACCESS EXCLUSIVE"), ("b", "ACCESS EXCLUSIVE")]),
            ("DROP INDEX CONCURRENTLY i", &[]),
            ("DROP INDEX i", &[("i", "ACCESS EXCLUSIVE")]),
            ("DROP TRIGGER tr ON s.t", &[("t", "ACCESS EXCLUSIVE")]),
            ("TRUNCATE TABLE ONLY a, b", &[("a", "ACCESS EXCLUSIVE"), ("b", "ACCESS EXCLUSIVE")]),
            ("LOCK TABLE a IN SHARE ROW EXCLUSIVE MODE", &[("a", "SHARE ROW EXCLUSIVE")]),
            ("LOCK a", &[("a", "ACCESS EXCLUSIVE")]),
            ("LOCK a IN ROW EXCLUSIVE MODE", &[]),
            ("LOCK a NOWAIT", &[]),
            ("REINDEX INDEX i", &[("i", "ACCESS EXCLUSIVE")]),
            ("REINDEX (VERBOSE) TABLE t", &[("t", "ACCESS EXCLUSIVE")]),
            ("REINDEX INDEX CONCURRENTLY i", &[]),
            ("REINDEX (CONCURRENTLY) TABLE t", &[]),
            ("CLUSTER VERBOSE t USING i", &[("t", "ACCESS EXCLUSIVE")]),
            ("CLUSTER", &[]),
            ("VACUUM FULL t", &[("t", "ACCESS EXCLUSIVE")]),
            ("VACUUM (FULL, ANALYZE) s.t", &[("t", "ACCESS EXCLUSIVE")]),
            ("VACUUM (FULL false) t", &[]),
            ("VACUUM t", &[]),
            ("REFRESH MATERIALIZED VIEW CONCURRENTLY v", &[("v", "EXCLUSIVE")]),
            ("REFRESH MATERIALIZED VIEW v", &[("v", "ACCESS EXCLUSIVE")]),
            ("SELECT 1", &[]),
            ("INSERT INTO t VALUES (1)", &[]),
        ];
        for (sql, expected) in cases {
            let expected: Vec<(String, &str)> =
                expected.iter().map(|(r, m)| (r.to_string(), *m)).collect();
            assert_eq!(lock_list(sql), expected, "{sql}");
        }
    }

    #[test]
    fn created_relations_of_every_kind() {
        let created = |sql: &str| {
            parse_statements(sql)
                .iter()
                .flat_map(created_relations)
                .map(|n| n.key)
                .collect::<Vec<_>>()
        };
        assert_eq!(created("CREATE TABLE IF NOT EXISTS s.t (x int)"), ["t"]);
        assert_eq!(created("CREATE UNLOGGED TABLE t AS SELECT 1"), ["t"]);
        assert_eq!(
            created("CREATE MATERIALIZED VIEW IF NOT EXISTS s.\"Mv\" AS SELECT 1"),
            ["Mv"]
        );
        assert_eq!(created("SELECT 1 AS x INTO TEMP t FROM y"), ["t"]);
        assert_eq!(
            created("CREATE UNIQUE INDEX CONCURRENTLY i ON t (x)"),
            ["i"]
        );
        assert_eq!(created("CREATE INDEX ON t (x)"), Vec::<String>::new());
        assert_eq!(created("CREATE VIEW v AS SELECT 1"), Vec::<String>::new());
    }
}
