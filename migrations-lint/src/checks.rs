//! Our rules on one file: what squawk cannot know (the file's transaction mode as our runner
//! sees it) or does not check. Statements are the splitter's (the runner's, and those
//! `lint-ignore` names); what each one does is read from squawk's syntax tree.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use migrations_format::sql::{classify_statement, classify_transaction_control, Statement};
use squawk_syntax::ast::{self, AstNode};

use crate::locks::{created_relations, indexed_or_altered_table, locks};
use crate::rewrites::{new_column_notes, Columns, Note, Zone};
use crate::rows::find_string;
use crate::rules::{
    RuleSet, CONCURRENTLY_IN_TRANSACTION, ENUM_VALUE_USED_IN_TRANSACTION, LOCK_TIMEOUT_GUARD,
    NON_TRANSACTIONAL_IN_TRANSACTION, SESSION_LEVEL_SET, SET_LOCAL_OUTSIDE_TRANSACTION,
    TRANSACTION_CONTROL_IN_TRANSACTION,
};
use crate::settings::{is_utc, is_zero_duration, settings, Scope, Scoped, Setting};
use crate::syntax::{start, string_value, LineIndex, Name, Parsed};
use crate::{FileInput, Raw};

/// One statement of the split with squawk's reading of it.
struct Stmt<'s, 'a> {
    statement: &'s Statement<'a>,
    ast: &'s [ast::Stmt],
    /// Its `SET`/`RESET` and `set_config` calls, read once for the rules that need them.
    settings: Vec<Setting>,
    /// The rows of a large `INSERT ... VALUES` that `ast` leaves out (`rows.rs`).
    rows: Option<Range<usize>>,
}

/// For each statement, the transaction block it runs in: `Some(0)` for every statement of a
/// transactional file (the runner's transaction), `Some(n)` for statements between an explicit
/// `BEGIN` and its `COMMIT` in a no-transaction file (both included), `None` for statements
/// that run on their own. The value is (block id, line of its BEGIN, 0 for the runner's).
fn transaction_blocks(
    no_transaction: bool,
    statements: &[Statement<'_>],
) -> Vec<Option<(u32, u32)>> {
    if !no_transaction {
        return vec![Some((0, 0)); statements.len()];
    }
    let mut out = Vec::with_capacity(statements.len());
    let mut open: Option<(u32, u32)> = None;
    let mut next_id = 1;
    for s in statements {
        // The loader's reading, so the lint and the runner agree on what is transaction control.
        match classify_transaction_control(s) {
            Some(kind) if kind.opens() => {
                if open.is_none() {
                    open = Some((next_id, s.line));
                    next_id += 1;
                }
                out.push(open);
            }
            Some(_) => {
                out.push(open);
                open = None;
            }
            None => out.push(open),
        }
    }
    out
}

/// Whether a statement ends a transaction block (`COMMIT`, `ROLLBACK`, ...).
fn ends_transaction(statement: &Statement<'_>) -> bool {
    classify_transaction_control(statement).is_some_and(|k| !k.opens())
}

/// What our pass over the file learned that squawk's findings need.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    /// `changing-column-type` texts, by the byte offset squawk reports at.
    pub type_changes: HashMap<usize, Note>,
    /// `adding-field-with-default` messages, by the byte offset squawk reports at.
    pub new_columns: HashMap<usize, String>,
    /// Per statement: it builds an index on, or alters, a table that an earlier statement
    /// created in the same transaction, which no other session can see, so its locks stall
    /// nobody.
    pub on_new_table: Vec<bool>,
}

/// Runs our rules on a file and gathers the [`Notes`]; `columns` holds the column types the
/// migrations before this file left, and is brought up to date with this file's.
pub(crate) fn check(
    input: &FileInput<'_>,
    statements: &[Statement<'_>],
    parsed: &Parsed,
    rules: &RuleSet,
    columns: &mut Columns,
) -> (Vec<Raw>, Notes) {
    let stmts: Vec<Stmt<'_, '_>> = statements
        .iter()
        .zip(&parsed.stmts)
        .zip(&parsed.rows)
        .map(|((statement, ast), rows)| Stmt {
            statement,
            ast,
            settings: ast
                .iter()
                .flat_map(|a| settings(a, statement.text))
                .collect(),
            rows: rows.clone(),
        })
        .collect();
    let blocks = transaction_blocks(input.no_transaction, statements);
    let index = LineIndex::new(input.text);
    let mut out = Vec::new();
    if rules.contains(NON_TRANSACTIONAL_IN_TRANSACTION)
        || rules.contains(CONCURRENTLY_IN_TRANSACTION)
    {
        non_transactional(input, &stmts, &blocks, rules, &mut out);
    }
    if rules.contains(TRANSACTION_CONTROL_IN_TRANSACTION) && !input.no_transaction {
        transaction_control(input, &stmts, &mut out);
    }
    if rules.contains(LOCK_TIMEOUT_GUARD) {
        lock_timeout_guard(input, &stmts, &blocks, &index, &mut out);
    }
    if rules.contains(SESSION_LEVEL_SET) || rules.contains(SET_LOCAL_OUTSIDE_TRANSACTION) {
        session_settings(input, &stmts, &blocks, rules, &index, &mut out);
    }
    if rules.contains(ENUM_VALUE_USED_IN_TRANSACTION) {
        enum_values(input.text, &stmts, &blocks, &index, &mut out);
    }
    let notes = notes(input, &stmts, &blocks, columns);
    (out, notes)
}

fn direction(input: &FileInput<'_>) -> &'static str {
    input.direction.as_str()
}

/// Statements PostgreSQL refuses in a transaction block, in one: a transactional file (the
/// loader refuses them in up files already; down files come here), or between an explicit
/// `BEGIN` and `COMMIT` of a no-transaction file.
fn non_transactional(
    input: &FileInput<'_>,
    stmts: &[Stmt<'_, '_>],
    blocks: &[Option<(u32, u32)>],
    rules: &RuleSet,
    out: &mut Vec<Raw>,
) {
    for (i, s) in stmts.iter().enumerate() {
        let (Some((block, begin_line)), Some(kind)) = (blocks[i], classify_statement(s.statement))
        else {
            continue;
        };
        let rule = if kind.is_concurrently() {
            CONCURRENTLY_IN_TRANSACTION
        } else {
            NON_TRANSACTIONAL_IN_TRANSACTION
        };
        if !rules.contains(rule) {
            continue;
        }
        let dir = direction(input);
        let message = if block == 0 {
            format!(
                "{kind} cannot run inside a transaction block, and this {dir} file runs in one: \
                 `migrations {dir}` fails here"
            )
        } else {
            format!(
                "{kind} cannot run inside a transaction block, and it stands between the BEGIN \
                 at line {begin_line} and its COMMIT"
            )
        };
        out.push(Raw::at_statement(rule, i, s.statement, message));
    }
}

/// `BEGIN`, `COMMIT`, ... in a file the runner wraps in a transaction (the loader refuses them
/// in up files already; down files come here, which the runner refuses before running).
fn transaction_control(input: &FileInput<'_>, stmts: &[Stmt<'_, '_>], out: &mut Vec<Raw>) {
    let dir = direction(input);
    for (i, s) in stmts.iter().enumerate() {
        let Some(kind) = classify_transaction_control(s.statement) else {
            continue;
        };
        let message = format!(
            "`{kind}` in a {dir} file the runner wraps in a transaction: it would break that \
             transaction (the file and its history record commit together), so `migrations \
             {dir}` refuses the file"
        );
        out.push(Raw::at_statement(
            TRANSACTION_CONTROL_IN_TRANSACTION,
            i,
            s.statement,
            message,
        ));
    }
}

/// Whether the run's lock_timeout still guards a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Guard {
    /// The runner's (or the file's) non-zero lock_timeout.
    On,
    /// Turned off: how, and where.
    Off(String),
}

/// A statement that waits for a strong lock on an existing table while the file has turned
/// the run's lock_timeout off. The runner sets lock_timeout (a few seconds by default) before
/// every migration, so only a file that disables it is unguarded.
fn lock_timeout_guard(
    input: &FileInput<'_>,
    stmts: &[Stmt<'_, '_>],
    blocks: &[Option<(u32, u32)>],
    index: &LineIndex<'_>,
    out: &mut Vec<Raw>,
) {
    let mut guard = Scoped::new(match input.directives.lock_timeout {
        Some(d) if d.is_zero() => {
            Guard::Off("the `-- migrations:lock-timeout=0` directive".to_owned())
        }
        _ => Guard::On,
    });
    let mut created: HashSet<String> = HashSet::new();
    for (i, s) in stmts.iter().enumerate() {
        for change in &s.settings {
            if change.param != "lock_timeout" && !(change.reset && change.param == "all") {
                continue;
            }
            let line = index.position(change.offset).0;
            let value = if change.reset {
                Guard::Off(format!("the RESET at line {line}"))
            } else if is_zero_duration(&change.value) {
                Guard::Off(format!("`lock_timeout = 0` at line {line}"))
            } else {
                Guard::On
            };
            guard.set(change.scope, blocks[i].is_some(), value);
        }
        if let Guard::Off(how) = guard.current() {
            let lock = s
                .ast
                .iter()
                .flat_map(locks)
                .find(|l| l.mode.is_strong() && !created.contains(&l.relation.key));
            if let Some(lock) = lock {
                let message = format!(
                    "this statement waits for {} on `{}` with lock_timeout turned off by {how}: \
                     while it waits, every other query on `{}` queues behind it",
                    lock.mode, lock.relation.shown, lock.relation.shown
                );
                let mut raw = Raw::at_statement(LOCK_TIMEOUT_GUARD, i, s.statement, message);
                raw.lock = Some(format!(
                    "{} on `{}` (blocks {})",
                    lock.mode,
                    lock.relation.shown,
                    lock.mode.blocks()
                ));
                out.push(raw);
            }
        }
        created.extend(s.ast.iter().flat_map(created_relations).map(|n| n.key));
        if input.no_transaction && ends_transaction(s.statement) {
            guard.end_transaction(); // the explicit block ended
        }
    }
}

/// Whether `later` puts `param` back to its default.
fn resets(later: &Setting, param: &str) -> bool {
    later.reset
        && (later.param == param
            || (later.param == "all" && param != "role" && param != "session authorization"))
}

/// Session-level `SET`s that stay in force after they are needed, and `SET LOCAL`s that do
/// nothing because no transaction is open.
fn session_settings(
    input: &FileInput<'_>,
    stmts: &[Stmt<'_, '_>],
    blocks: &[Option<(u32, u32)>],
    rules: &RuleSet,
    index: &LineIndex<'_>,
    out: &mut Vec<Raw>,
) {
    let all: Vec<(usize, &Setting)> = stmts
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.settings.iter().map(move |x| (i, x)))
        .collect();
    for (k, (i, set)) in all.iter().enumerate() {
        if set.reset {
            continue;
        }
        let shown = if set.param == "session characteristics" {
            "SET SESSION CHARACTERISTICS".to_owned()
        } else {
            format!("`{}`", set.param)
        };
        let (line, column) = index.position(set.offset);
        match set.scope {
            Scope::Session if rules.contains(SESSION_LEVEL_SET) => {
                if all[k + 1..]
                    .iter()
                    .any(|(_, later)| resets(later, &set.param))
                {
                    continue;
                }
                let message = if input.no_transaction {
                    format!(
                        "session-level SET of {shown}: it stays in force for every later \
                         statement of this file, and, outside the runner (psql, `migrations \
                         sql`), for the rest of the session"
                    )
                } else {
                    format!(
                        "session-level SET of {shown}: it stays in force after this migration's \
                         transaction commits; the runner restores the session between \
                         migrations, but psql, `migrations sql` scripts and other tools do not"
                    )
                };
                out.push(Raw::at(SESSION_LEVEL_SET, Some(*i), line, column, message));
            }
            Scope::Local
                if blocks[*i].is_none() && rules.contains(SET_LOCAL_OUTSIDE_TRANSACTION) =>
            {
                let message = format!(
                    "SET LOCAL of {shown} has no effect here: this file runs without a \
                     transaction and no BEGIN is open, so PostgreSQL only warns and the \
                     statements after it run without the setting"
                );
                out.push(Raw::at(
                    SET_LOCAL_OUTSIDE_TRANSACTION,
                    Some(*i),
                    line,
                    column,
                    message,
                ));
            }
            _ => {}
        }
    }
}

/// `ALTER TYPE name ADD VALUE [IF NOT EXISTS] 'label'`: the type and the label.
fn enum_value_added(stmt: &ast::Stmt) -> Option<(Name, String)> {
    let ast::Stmt::AlterType(alter) = stmt else {
        return None;
    };
    let Some(ast::AlterTypeAction::AddValue(add)) = alter.action() else {
        return None;
    };
    let name = Name::of_ref(&alter.type_name_ref()?.path_ref()?)?;
    Some((name, string_value(&add.literal()?)?))
}

/// A use, in the same transaction, of an enum value added by `ALTER TYPE ... ADD VALUE`.
fn enum_values(
    text: &str,
    stmts: &[Stmt<'_, '_>],
    blocks: &[Option<(u32, u32)>],
    index: &LineIndex<'_>,
    out: &mut Vec<Raw>,
) {
    // (label, type as written, line of the ALTER TYPE, block)
    let mut added: Vec<(String, String, u32, u32)> = Vec::new();
    for (i, s) in stmts.iter().enumerate() {
        let Some((block, _)) = blocks[i] else {
            added.clear();
            continue;
        };
        added.retain(|a| a.3 == block);
        if let Some((name, label)) = s.ast.iter().find_map(enum_value_added) {
            added.push((label, name.shown, s.statement.line, block));
            continue;
        }
        if added.is_empty() {
            continue;
        }
        let mut used = s
            .ast
            .iter()
            .flat_map(|stmt| stmt.syntax().descendants().filter_map(ast::Literal::cast))
            .find_map(|literal| {
                let value = string_value(&literal)?;
                let added = added.iter().find(|a| a.0 == value)?;
                Some((start(literal.syntax()), added.clone()))
            });
        // The rows the tree leaves out, when no use comes before them.
        if let Some(rows) = s
            .rows
            .as_ref()
            .filter(|rows| used.as_ref().is_none_or(|(at, _)| *at > rows.start))
        {
            let in_rows = find_string(text, rows, |value| {
                added.iter().find(|a| a.0 == value).cloned()
            });
            used = in_rows.or(used);
        }
        if let Some((offset, (label, type_name, line, _))) = used {
            let message = format!(
                "'{label}' is used in the same transaction that adds it to enum `{type_name}` \
                 (ALTER TYPE ... ADD VALUE at line {line}): PostgreSQL refuses it with \"unsafe \
                 use of new value\" until that transaction commits"
            );
            let (line, column) = index.position(offset);
            out.push(Raw::at(
                ENUM_VALUE_USED_IN_TRANSACTION,
                Some(i),
                line,
                column,
                message,
            ));
        }
    }
}

/// The zone a `timezone` setting leaves.
fn zone_of(setting: &Setting) -> Zone {
    if setting.reset {
        return Zone::Unset;
    }
    match setting.single_value() {
        Some(z) if is_utc(&z) => Zone::Utc(z),
        Some(z) => Zone::Other(z),
        None => Zone::Other(setting.value.join(" ")),
    }
}

/// The [`Notes`] of a file, in one pass in statement order; `columns` follows the file.
fn notes(
    input: &FileInput<'_>,
    stmts: &[Stmt<'_, '_>],
    blocks: &[Option<(u32, u32)>],
    columns: &mut Columns,
) -> Notes {
    let mut notes = Notes {
        on_new_table: vec![false; stmts.len()],
        ..Notes::default()
    };
    let mut zone = Scoped::new(Zone::Unset);
    // Relations created in each transaction block so far.
    let mut created: HashMap<u32, HashSet<String>> = HashMap::new();
    for (i, s) in stmts.iter().enumerate() {
        for setting in &s.settings {
            if setting.param == "timezone" || (setting.reset && setting.param == "all") {
                zone.set(setting.scope, blocks[i].is_some(), zone_of(setting));
            }
        }
        for stmt in s.ast {
            notes
                .type_changes
                .extend(columns.type_changes(stmt, zone.current()));
            notes.new_columns.extend(new_column_notes(stmt));
            if let Some((block, _)) = blocks[i] {
                let created = created.entry(block).or_default();
                if indexed_or_altered_table(stmt).is_some_and(|t| created.contains(&t.key)) {
                    notes.on_new_table[i] = true;
                }
                created.extend(created_relations(stmt).into_iter().map(|n| n.key));
            }
            columns.apply(stmt);
        }
        if input.no_transaction && ends_transaction(s.statement) {
            zone.end_transaction();
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use migrations_format::sql::split_statements;

    #[test]
    fn blocks_follow_begin_and_commit() {
        let sql = "SELECT 1;\nBEGIN;\nSELECT 2;\nCOMMIT;\nSELECT 3;\nSTART TRANSACTION;\nROLLBACK TO s;\nEND;";
        let split = split_statements(sql);
        assert_eq!(
            transaction_blocks(true, &split.statements),
            [
                None,
                Some((1, 2)),
                Some((1, 2)),
                Some((1, 2)),
                None,
                Some((2, 6)),
                Some((2, 6)),
                Some((2, 6))
            ]
        );
        assert_eq!(
            transaction_blocks(false, &split.statements),
            vec![Some((0, 0)); 8]
        );
    }
}
