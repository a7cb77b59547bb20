//! `down-drops-existing`: a down file that drops a table or a column its up did not create.
//!
//! A down exists to undo its up. Dropping what the up created is that; dropping a table or a
//! column that was there before the up deletes rows (or a column's values) a rollback cannot
//! give back: the data loss `migrations test` reports as "down loses data", found here before
//! anything runs. A down whose header says `-- migrations:lossy-down <reason>` has said so and
//! is not flagged. What the up creates is read from its syntax tree: `CREATE TABLE` (also
//! `AS`, `SELECT INTO`) and `ALTER TABLE ... ADD COLUMN`; names are compared without their
//! schema, as the other rules do (an up that builds a table through dynamic SQL is not seen:
//! `lint-ignore` the statement).

use std::collections::BTreeSet;

use squawk_syntax::ast::{self, AstNode};

use migrations_format::sql::Statement;

use crate::locks::created_relations;
use crate::rules::DOWN_DROPS_EXISTING;
use crate::syntax::{Name, Parsed};
use crate::Raw;

/// What an up creates: tables, and columns of tables it did not create (by name, no schema).
#[derive(Default)]
struct Created {
    tables: BTreeSet<String>,
    columns: BTreeSet<(String, String)>,
}

fn table_of(alter: &ast::AlterTable) -> Option<Name> {
    Name::of_ref(&alter.table_relation_name()?.table_name_ref()?.path_ref()?)
}

/// As `rewrites.rs` names columns (folded as the server folds them).
fn column_ref(column: &ast::ColumnNameRef) -> String {
    ast::normalize_name_node(column.syntax())
}

impl Created {
    fn read(up: &str) -> Created {
        let mut created = Created::default();
        let syntax = crate::syntax::FileSyntax::read(up);
        for stmt in syntax.parsed.stmts.into_iter().flatten() {
            for name in created_relations(&stmt) {
                created.tables.insert(name.key);
            }
            if let ast::Stmt::AlterTable(alter) = &stmt {
                let Some(table) = table_of(alter) else {
                    continue;
                };
                for action in alter.actions() {
                    if let ast::AlterTableAction::AddColumn(add) = action {
                        if let Some(column) = add.column_name() {
                            created.columns.insert((table.key.clone(), column.text()));
                        }
                    }
                }
            }
        }
        created
    }
}

/// The down's statements that drop a table or column the up (`up`, its text) did not create.
/// `statements` and `parsed` are the down's.
pub(crate) fn check(
    up: &str,
    up_name: &str,
    statements: &[Statement<'_>],
    parsed: &Parsed,
) -> Vec<Raw> {
    let created = Created::read(up);
    let mut raw = Vec::new();
    for (index, statement) in statements.iter().enumerate() {
        for stmt in parsed.stmts.get(index).into_iter().flatten() {
            match stmt {
                ast::Stmt::DropTable(drop) => {
                    for name in drop.table_name_refs() {
                        let Some(name) = name.path_ref().and_then(|p| Name::of_ref(&p)) else {
                            continue;
                        };
                        if !created.tables.contains(&name.key) {
                            raw.push(Raw::at_statement(
                                DOWN_DROPS_EXISTING,
                                index,
                                statement,
                                format!(
                                    "the down drops the table `{}`, which its up ({up_name}) \
                                     does not create: a rollback deletes every row it held \
                                     before the migration",
                                    name.shown
                                ),
                            ));
                        }
                    }
                }
                ast::Stmt::AlterTable(alter) => {
                    let Some(table) = table_of(alter) else {
                        continue;
                    };
                    if created.tables.contains(&table.key) {
                        continue;
                    }
                    for action in alter.actions() {
                        let ast::AlterTableAction::DropColumn(drop) = action else {
                            continue;
                        };
                        let Some(column) = drop.column_name_ref().map(|c| column_ref(&c)) else {
                            continue;
                        };
                        if !created
                            .columns
                            .contains(&(table.key.clone(), column.clone()))
                        {
                            raw.push(Raw::at_statement(
                                DOWN_DROPS_EXISTING,
                                index,
                                statement,
                                format!(
                                    "the down drops the column `{}.{column}`, which its up \
                                     ({up_name}) does not add: a rollback deletes the values \
                                     it held before the migration",
                                    table.shown
                                ),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    raw
}
