//! Our rules on one file, over `migrations-format`'s splitter: what squawk cannot know (the
//! file's transaction mode as our runner sees it) or does not check.

use std::collections::HashSet;

use migrations_format::sql::{
    classify_statement, classify_transaction_control, Statement, Token, TokenKind,
};
use migrations_format::Direction;

use crate::rules::{
    RuleSet, CONCURRENTLY_IN_TRANSACTION, ENUM_VALUE_USED_IN_TRANSACTION, LOCK_TIMEOUT_GUARD,
    NON_TRANSACTIONAL_IN_TRANSACTION, SESSION_LEVEL_SET, SET_LOCAL_OUTSIDE_TRANSACTION,
    TRANSACTION_CONTROL_IN_TRANSACTION,
};
use crate::sql::{
    created_relations, enum_value_added, is_zero_duration, locks, set_config_calls, setting,
    string_value, transaction_blocks, tx_control, Scope, Setting, TxControl,
};
use crate::{FileInput, Raw};

/// One statement with its significant tokens.
pub(crate) struct Stmt<'s, 'a> {
    pub statement: &'s Statement<'a>,
    pub toks: Vec<&'s Token<'a>>,
}

pub(crate) fn check(input: &FileInput<'_>, stmts: &[Stmt<'_, '_>], rules: &RuleSet) -> Vec<Raw> {
    let token_lists: Vec<Vec<&Token<'_>>> = stmts.iter().map(|s| s.toks.clone()).collect();
    let blocks = transaction_blocks(input.no_transaction, &token_lists);
    let mut out = Vec::new();
    if rules.contains(NON_TRANSACTIONAL_IN_TRANSACTION)
        || rules.contains(CONCURRENTLY_IN_TRANSACTION)
    {
        non_transactional(input, stmts, &blocks, rules, &mut out);
    }
    if rules.contains(TRANSACTION_CONTROL_IN_TRANSACTION) && !input.no_transaction {
        transaction_control(input, stmts, &mut out);
    }
    if rules.contains(LOCK_TIMEOUT_GUARD) {
        lock_timeout_guard(input, stmts, &blocks, &mut out);
    }
    if rules.contains(SESSION_LEVEL_SET) || rules.contains(SET_LOCAL_OUTSIDE_TRANSACTION) {
        settings(input, stmts, &blocks, rules, &mut out);
    }
    if rules.contains(ENUM_VALUE_USED_IN_TRANSACTION) {
        enum_values(stmts, &blocks, &mut out);
    }
    out
}

fn direction(input: &FileInput<'_>) -> &'static str {
    match input.direction {
        Direction::Up => "up",
        Direction::Down => "down",
    }
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
    out: &mut Vec<Raw>,
) {
    let mut session = match input.directives.lock_timeout {
        Some(d) if d.is_zero() => {
            Guard::Off("the `-- migrations:lock-timeout=0` directive".to_owned())
        }
        _ => Guard::On,
    };
    let mut local: Option<Guard> = None;
    let mut created: HashSet<String> = HashSet::new();
    for (i, s) in stmts.iter().enumerate() {
        let in_transaction = blocks[i].is_some();
        let mut changes: Vec<Setting<'_>> = setting(&s.toks).into_iter().collect();
        changes.extend(set_config_calls(&s.toks));
        for change in changes {
            if change.param != "lock_timeout" && !(change.reset && change.param == "all") {
                continue;
            }
            let guard = if change.reset {
                Guard::Off(format!("the RESET at line {}", change.line))
            } else if is_zero_duration(&change.value) {
                Guard::Off(format!("`lock_timeout = 0` at line {}", change.line))
            } else {
                Guard::On
            };
            match change.scope {
                Scope::Local if in_transaction => local = Some(guard),
                Scope::Local => {} // no effect outside a transaction block
                Scope::Session => {
                    session = guard;
                    local = None;
                }
            }
        }
        let effective = local.clone().unwrap_or_else(|| session.clone());
        if let Guard::Off(how) = &effective {
            for lock in locks(&s.toks) {
                if !lock.mode.is_strong() || created.contains(&lock.relation.key) {
                    continue;
                }
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
                break;
            }
        }
        created.extend(created_relations(&s.toks).into_iter().map(|n| n.key));
        if input.no_transaction && tx_control(&s.toks) == Some(TxControl::End) {
            local = None; // the explicit block ended
        }
    }
}

/// Whether `later` puts `param` back to its default.
fn resets(later: &Setting<'_>, param: &str) -> bool {
    later.reset
        && (later.param == param
            || (later.param == "all" && param != "role" && param != "session authorization"))
}

/// Session-level `SET`s that stay in force after they are needed, and `SET LOCAL`s that do
/// nothing because no transaction is open.
fn settings(
    input: &FileInput<'_>,
    stmts: &[Stmt<'_, '_>],
    blocks: &[Option<(u32, u32)>],
    rules: &RuleSet,
    out: &mut Vec<Raw>,
) {
    let all: Vec<(usize, Setting<'_>)> = stmts
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            let mut found: Vec<(usize, Setting<'_>)> =
                setting(&s.toks).into_iter().map(|x| (i, x)).collect();
            found.extend(set_config_calls(&s.toks).into_iter().map(|x| (i, x)));
            found
        })
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
                out.push(Raw::at(
                    SESSION_LEVEL_SET,
                    Some(*i),
                    set.line,
                    set.column,
                    message,
                ));
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
                    set.line,
                    set.column,
                    message,
                ));
            }
            _ => {}
        }
    }
}

/// A use, in the same transaction, of an enum value added by `ALTER TYPE ... ADD VALUE`.
fn enum_values(stmts: &[Stmt<'_, '_>], blocks: &[Option<(u32, u32)>], out: &mut Vec<Raw>) {
    // (label, type as written, line of the ALTER TYPE, block)
    let mut added: Vec<(String, String, u32, u32)> = Vec::new();
    for (i, s) in stmts.iter().enumerate() {
        let Some((block, _)) = blocks[i] else {
            added.clear();
            continue;
        };
        added.retain(|a| a.3 == block);
        if let Some((name, label)) = enum_value_added(&s.toks) {
            added.push((label, name.shown, s.statement.line, block));
            continue;
        }
        let used = s.toks.iter().find_map(|t| {
            if !matches!(t.kind, TokenKind::String(_)) {
                return None;
            }
            let value = string_value(t)?;
            added.iter().find(|a| a.0 == value).map(|a| (t, a.clone()))
        });
        if let Some((t, (label, type_name, line, _))) = used {
            let message = format!(
                "'{label}' is used in the same transaction that adds it to enum `{type_name}` \
                 (ALTER TYPE ... ADD VALUE at line {line}): PostgreSQL refuses it with \"unsafe \
                 use of new value\" until that transaction commits"
            );
            out.push(Raw::at(
                ENUM_VALUE_USED_IN_TRANSACTION,
                Some(i),
                t.line,
                t.column,
                message,
            ));
        }
    }
}
