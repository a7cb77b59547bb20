//! What our rules read from a statement's tokens (from `migrations-format`'s lexer): names,
//! string values, transaction control, `SET`/`RESET`, and the table locks a statement takes.
//!
//! Like the non-transactional check it builds on, this reads the head of a statement's tokens;
//! it does not parse. It aims at the statements migrations are made of and says nothing about
//! the rest.

use std::fmt;

use migrations_format::sql::{StringKind, Token, TokenKind};

/// A statement's significant tokens (no whitespace, no comments).
pub(crate) type Toks<'t, 'a> = [&'t Token<'a>];

pub(crate) fn is_word(toks: &Toks<'_, '_>, i: usize, word: &str) -> bool {
    toks.get(i).is_some_and(|t| t.is_word(word))
}

/// Whether the words `words` stand at `i`, in order.
pub(crate) fn words_at(toks: &Toks<'_, '_>, i: usize, words: &[&str]) -> bool {
    words
        .iter()
        .enumerate()
        .all(|(k, w)| is_word(toks, i + k, w))
}

/// The identifier a token names: unquoted words fold to lower case, quoted ones keep their
/// case (without the quotes, `""` read as `"`).
pub(crate) fn ident(t: &Token<'_>) -> Option<String> {
    match t.kind {
        TokenKind::Word => Some(t.text.to_ascii_lowercase()),
        TokenKind::QuotedIdent if t.text.starts_with('"') && t.text.len() >= 2 => {
            Some(t.text[1..t.text.len() - 1].replace("\"\"", "\""))
        }
        _ => None,
    }
}

/// A possibly qualified name (`t`, `s.t`, `"S"."T"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    /// The last part, folded as the server folds it: what we compare.
    pub key: String,
    /// As written.
    pub shown: String,
}

/// Reads a name at `i`; returns it and the index after it.
pub(crate) fn name_at(toks: &Toks<'_, '_>, i: usize) -> Option<(Name, usize)> {
    let first = toks.get(i)?;
    let mut key = ident(first)?;
    let mut shown = first.text.to_owned();
    let mut next = i + 1;
    while toks
        .get(next)
        .is_some_and(|t| t.kind == TokenKind::Punct && t.text == ".")
    {
        let Some(part) = toks
            .get(next + 1)
            .and_then(|t| ident(t).map(|k| (k, t.text)))
        else {
            break;
        };
        key = part.0;
        shown.push('.');
        shown.push_str(part.1);
        next += 2;
    }
    Some((Name { key, shown }, next))
}

/// The value of a string constant (`'a''b'`, `E'a\'b'`, `N'x'`); `None` for other tokens.
pub(crate) fn string_value(t: &Token<'_>) -> Option<String> {
    let TokenKind::String(kind) = t.kind else {
        return None;
    };
    if t.unterminated {
        return None;
    }
    let body = match kind {
        StringKind::Standard => t.text.get(1..t.text.len() - 1)?,
        StringKind::Escape | StringKind::National => t.text.get(2..t.text.len() - 1)?,
        _ => return None,
    };
    let mut value = body.replace("''", "'");
    if kind == StringKind::Escape {
        value = value.replace("\\'", "'").replace("\\\\", "\\");
    }
    Some(value)
}

/// Transaction control at the head of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxControl {
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `END`, `ROLLBACK`, `ABORT` (not `... PREPARED`, not `ROLLBACK TO`),
    /// `PREPARE TRANSACTION`.
    End,
}

pub(crate) fn tx_control(toks: &Toks<'_, '_>) -> Option<TxControl> {
    // The loader's reading, so the lint and the runner agree on what is transaction control.
    migrations_format::sql::classify_tokens(toks).map(|kind| {
        if kind.opens() {
            TxControl::Begin
        } else {
            TxControl::End
        }
    })
}

/// For each statement, the transaction block it runs in: `Some(0)` for every statement of a
/// transactional file (the runner's transaction), `Some(n)` for statements between an explicit
/// `BEGIN` and its `COMMIT` in a no-transaction file (both included), `None` for statements
/// that run on their own.
pub(crate) fn transaction_blocks(
    no_transaction: bool,
    statements: &[Vec<&Token<'_>>],
) -> Vec<Option<(u32, u32)>> {
    // The value is (block id, line of its BEGIN, 0 for the runner's transaction).
    if !no_transaction {
        return vec![Some((0, 0)); statements.len()];
    }
    let mut out = Vec::with_capacity(statements.len());
    let mut open: Option<(u32, u32)> = None;
    let mut next_id = 1;
    for toks in statements {
        match tx_control(toks) {
            Some(TxControl::Begin) => {
                if open.is_none() {
                    open = Some((next_id, toks.first().map_or(0, |t| t.line)));
                    next_id += 1;
                }
                out.push(open);
            }
            Some(TxControl::End) => {
                out.push(open);
                open = None;
            }
            None => out.push(open),
        }
    }
    out
}

/// A `SET`, `RESET` or `set_config(...)` of a run-time parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting<'a> {
    /// The parameter, lower case (`timezone` for `TIME ZONE`, `role`, `session authorization`).
    pub param: String,
    pub scope: Scope,
    /// The value as written; empty for `RESET` and `DEFAULT`.
    pub value: Vec<&'a str>,
    /// `RESET`, `SET ... TO DEFAULT`, `RESET ALL` (param `all`): back to the server's default.
    pub reset: bool,
    /// 1-based line and column where it is written.
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Session,
    Local,
}

/// Reads `SET [SESSION|LOCAL] ...` and `RESET ...`; `None` for other statements and for
/// `SET TRANSACTION` / `SET CONSTRAINTS`, which only last as long as the transaction.
pub(crate) fn setting<'a>(toks: &Toks<'_, 'a>) -> Option<Setting<'a>> {
    let first = toks.first()?;
    let (line, column) = (first.line, first.column);
    if first.is_word("reset") {
        let param = if words_at(toks, 1, &["session", "authorization"]) {
            "session authorization".to_owned()
        } else if words_at(toks, 1, &["time", "zone"]) {
            "timezone".to_owned()
        } else {
            param_name(toks, 1)?.0
        };
        return Some(Setting {
            param,
            scope: Scope::Session,
            value: Vec::new(),
            reset: true,
            line,
            column,
        });
    }
    if !first.is_word("set") {
        return None;
    }
    let mut i = 1;
    let scope = if is_word(toks, i, "local") {
        i += 1;
        Scope::Local
    } else {
        if is_word(toks, i, "session")
            && !is_word(toks, i + 1, "characteristics")
            && !is_word(toks, i + 1, "authorization")
            && toks.get(i + 1).is_some_and(|t| t.kind == TokenKind::Word)
        {
            i += 1;
        }
        Scope::Session
    };
    if is_word(toks, i, "transaction") || is_word(toks, i, "constraints") {
        return None;
    }
    let (param, after) = if words_at(toks, i, &["session", "authorization"]) {
        ("session authorization".to_owned(), i + 2)
    } else if words_at(toks, i, &["session", "characteristics"]) {
        ("session characteristics".to_owned(), i + 2)
    } else if words_at(toks, i, &["time", "zone"]) {
        ("timezone".to_owned(), i + 2)
    } else if is_word(toks, i, "schema") {
        ("search_path".to_owned(), i + 1)
    } else if is_word(toks, i, "names") {
        ("client_encoding".to_owned(), i + 1)
    } else if words_at(toks, i, &["xml", "option"]) {
        ("xmloption".to_owned(), i + 2)
    } else {
        param_name(toks, i)?
    };
    let mut j = after;
    if is_word(toks, j, "to") || toks.get(j).is_some_and(|t| t.text == "=") {
        j += 1;
    }
    let value: Vec<&'a str> = toks[j.min(toks.len())..].iter().map(|t| t.text).collect();
    let reset = matches!(value.as_slice(), [v] if v.eq_ignore_ascii_case("default"))
        || (param == "role" && matches!(value.as_slice(), [v] if v.eq_ignore_ascii_case("none")));
    Some(Setting {
        param,
        scope,
        value: if reset { Vec::new() } else { value },
        reset,
        line,
        column,
    })
}

/// A parameter name (`work_mem`, `myapp.flag`), lower case, and the index after it.
fn param_name(toks: &Toks<'_, '_>, i: usize) -> Option<(String, usize)> {
    let (name, next) = name_at(toks, i)?;
    let mut full = name.shown.to_ascii_lowercase();
    full.retain(|c| c != '"');
    Some((full, next))
}

/// `set_config('param', value, is_local)` calls anywhere in the statement.
pub(crate) fn set_config_calls<'a>(toks: &Toks<'_, 'a>) -> Vec<Setting<'a>> {
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if !(t.is_word("set_config")
            && toks.get(i + 1).is_some_and(|p| p.kind == TokenKind::LParen))
        {
            continue;
        }
        let args = call_args(toks, i + 1);
        let [name, value, local] = args.as_slice() else {
            continue;
        };
        let Some(param) = name.first().and_then(|t| string_value(t)) else {
            continue;
        };
        let is_local = match local.as_slice() {
            [t] if t.kind == TokenKind::Word => !t.text.eq_ignore_ascii_case("false"),
            [t] => string_value(t).is_none_or(|v| {
                !["f", "false", "off", "no", "0"]
                    .iter()
                    .any(|f| v.eq_ignore_ascii_case(f))
            }),
            _ => true,
        };
        out.push(Setting {
            param: param.to_ascii_lowercase(),
            scope: if is_local {
                Scope::Local
            } else {
                Scope::Session
            },
            value: value.iter().map(|t| t.text).collect(),
            reset: false,
            line: t.line,
            column: t.column,
        });
    }
    out
}

/// The arguments of a call whose `(` is at `open`, each as its tokens.
fn call_args<'t, 'a>(toks: &Toks<'t, 'a>, open: usize) -> Vec<Vec<&'t Token<'a>>> {
    let mut args = vec![Vec::new()];
    let mut depth = 0usize;
    for t in &toks[open..] {
        match t.kind {
            TokenKind::LParen => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            TokenKind::RParen => {
                depth -= 1;
                if depth == 0 {
                    return args;
                }
            }
            TokenKind::Comma if depth == 1 => {
                args.push(Vec::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = args.last_mut() {
            last.push(*t);
        }
    }
    args
}

/// Whether a setting's value means "no limit" for a timeout: `0` in any unit.
pub(crate) fn is_zero_duration(value: &[&str]) -> bool {
    let [v] = value else {
        return false;
    };
    let v = v.trim_matches('\'').trim();
    let digits: String = v
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    !digits.is_empty() && digits.chars().all(|c| c == '0' || c == '.')
}

/// PostgreSQL's table lock modes, weakest first.
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

    fn parse(toks: &Toks<'_, '_>, i: usize) -> Option<LockMode> {
        let modes: &[(&[&str], LockMode)] = &[
            (&["access", "exclusive"], LockMode::AccessExclusive),
            (&["share", "row", "exclusive"], LockMode::ShareRowExclusive),
            (
                &["share", "update", "exclusive"],
                LockMode::ShareUpdateExclusive,
            ),
            (&["share"], LockMode::Share),
            (&["exclusive"], LockMode::Exclusive),
        ];
        modes
            .iter()
            .find(|(words, _)| words_at(toks, i, words))
            .map(|(_, mode)| *mode)
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A table-level lock a statement takes (weaker locks than SHARE UPDATE EXCLUSIVE are left
/// out: they never stall a migration or the application).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lock {
    pub mode: LockMode,
    pub relation: Name,
}

/// The table locks a statement waits for, by its head; an empty list when it takes none we
/// care about, or when we do not know the statement.
pub(crate) fn locks(toks: &Toks<'_, '_>) -> Vec<Lock> {
    let mut out = Vec::new();
    let mut push = |mode: LockMode, relation: Option<Name>| {
        if let Some(relation) = relation {
            out.push(Lock { mode, relation });
        }
    };
    let w = |i: usize, word: &str| is_word(toks, i, word);
    if w(0, "alter") && w(1, "table") {
        let mut i = 2;
        if words_at(toks, i, &["if", "exists"]) {
            i += 2;
        }
        if w(i, "only") {
            i += 1;
        }
        let Some((table, next)) = name_at(toks, i) else {
            return out;
        };
        let mut strongest = None;
        for action in split_top_level(&toks[next..]) {
            let mode = alter_table_action_lock(action);
            strongest = strongest.max(Some(mode));
            for referenced in referenced_tables(action) {
                push(LockMode::ShareRowExclusive, Some(referenced));
            }
        }
        push(strongest.unwrap_or(LockMode::AccessExclusive), Some(table));
    } else if w(0, "alter") && w(1, "index") {
        let mut i = 2;
        if words_at(toks, i, &["if", "exists"]) {
            i += 2;
        }
        if let Some((index, next)) = name_at(toks, i) {
            let set_options = w(next, "set")
                && toks
                    .get(next + 1)
                    .is_some_and(|t| t.kind == TokenKind::LParen);
            let mode = if w(next, "rename") || set_options {
                LockMode::ShareUpdateExclusive
            } else {
                LockMode::AccessExclusive
            };
            push(mode, Some(index));
        }
    } else if w(0, "create") && (w(1, "index") || (w(1, "unique") && w(2, "index"))) {
        let concurrently = toks.iter().take(4).any(|t| t.is_word("concurrently"));
        if let Some(on) = toks.iter().position(|t| t.is_word("on")) {
            let i = if w(on + 1, "only") { on + 2 } else { on + 1 };
            let mode = if concurrently {
                LockMode::ShareUpdateExclusive
            } else {
                LockMode::Share
            };
            push(mode, name_at(toks, i).map(|(n, _)| n));
        }
    } else if w(0, "create") && table_keyword(toks).is_some() {
        let created = created_relations(toks);
        for referenced in referenced_tables(toks) {
            if !created.iter().any(|c| c.key == referenced.key) {
                push(LockMode::ShareRowExclusive, Some(referenced));
            }
        }
        if let Some(p) = toks
            .windows(2)
            .position(|pair| pair[0].is_word("partition") && pair[1].is_word("of"))
        {
            push(
                LockMode::AccessExclusive,
                name_at(toks, p + 2).map(|(n, _)| n),
            );
        }
    } else if w(0, "create") && toks.iter().take(4).any(|t| t.is_word("trigger")) {
        if let Some(on) = toks.iter().position(|t| t.is_word("on")) {
            push(
                LockMode::ShareRowExclusive,
                name_at(toks, on + 1).map(|(n, _)| n),
            );
        }
    } else if w(0, "drop") && (w(1, "table") || w(1, "index")) {
        let concurrently = w(2, "concurrently");
        if concurrently {
            return out;
        }
        let mut i = 2;
        if words_at(toks, i, &["if", "exists"]) {
            i += 2;
        }
        for name in name_list(toks, i) {
            push(LockMode::AccessExclusive, Some(name));
        }
    } else if w(0, "drop") && w(1, "trigger") {
        if let Some(on) = toks.iter().position(|t| t.is_word("on")) {
            push(
                LockMode::AccessExclusive,
                name_at(toks, on + 1).map(|(n, _)| n),
            );
        }
    } else if w(0, "truncate") {
        let mut i = 1;
        if w(i, "table") {
            i += 1;
        }
        if w(i, "only") {
            i += 1;
        }
        for name in name_list(toks, i) {
            push(LockMode::AccessExclusive, Some(name));
        }
    } else if w(0, "lock") {
        if toks.iter().any(|t| t.is_word("nowait")) {
            return out; // fails at once instead of waiting
        }
        let mut i = 1;
        if w(i, "table") {
            i += 1;
        }
        if w(i, "only") {
            i += 1;
        }
        let mode = toks
            .iter()
            .position(|t| t.is_word("in"))
            .and_then(|p| LockMode::parse(toks, p + 1))
            .unwrap_or(LockMode::AccessExclusive);
        for name in name_list(toks, i) {
            push(mode, Some(name));
        }
    } else if w(0, "reindex") {
        let concurrently = toks.iter().any(|t| t.is_word("concurrently"));
        let kind = toks
            .iter()
            .position(|t| t.is_word("index") || t.is_word("table"));
        if let (false, Some(k)) = (concurrently, kind) {
            push(
                LockMode::AccessExclusive,
                name_at(toks, k + 1).map(|(n, _)| n),
            );
        }
    } else if w(0, "cluster") {
        let i = if w(1, "verbose") { 2 } else { 1 };
        push(LockMode::AccessExclusive, name_at(toks, i).map(|(n, _)| n));
    } else if w(0, "vacuum") && toks.iter().any(|t| t.is_word("full")) {
        // The table is the name at the end: `VACUUM FULL t`, `VACUUM (FULL) s.t`.
        let is_ident = |k: usize| matches!(toks[k].kind, TokenKind::Word | TokenKind::QuotedIdent);
        let mut start = toks.len();
        if start > 0 && is_ident(start - 1) {
            start -= 1;
            while start >= 2 && toks[start - 1].text == "." && is_ident(start - 2) {
                start -= 2;
            }
        }
        let options = ["full", "verbose", "analyze", "freeze", "vacuum"];
        if let Some((name, _)) =
            name_at(toks, start).filter(|(n, _)| !options.contains(&n.key.as_str()))
        {
            push(LockMode::AccessExclusive, Some(name));
        }
    } else if w(0, "refresh") && w(1, "materialized") && w(2, "view") {
        let (mode, i) = if w(3, "concurrently") {
            (LockMode::Exclusive, 4)
        } else {
            (LockMode::AccessExclusive, 3)
        };
        push(mode, name_at(toks, i).map(|(n, _)| n));
    }
    out
}

/// The lock one `ALTER TABLE` action takes.
fn alter_table_action_lock(action: &Toks<'_, '_>) -> LockMode {
    let has = |word: &str| action.iter().any(|t| t.is_word(word));
    let first = |word: &str| is_word(action, 0, word);
    if first("validate")
        || words_at(action, 0, &["set", "without", "cluster"])
        || words_at(action, 0, &["cluster", "on"])
        || (first("set") && action.get(1).is_some_and(|t| t.kind == TokenKind::LParen))
        || (first("alter") && has("statistics"))
        || (first("attach") && has("partition"))
        || (first("detach") && (has("concurrently") || has("finalize")))
    {
        return LockMode::ShareUpdateExclusive;
    }
    if first("add") && has("foreign") && !has("column") {
        return LockMode::ShareRowExclusive;
    }
    if (first("enable") || first("disable")) && is_word(action, 1, "trigger") {
        return LockMode::ShareRowExclusive;
    }
    LockMode::AccessExclusive
}

/// Tables named after `REFERENCES` (a foreign key takes SHARE ROW EXCLUSIVE on them).
fn referenced_tables(toks: &Toks<'_, '_>) -> Vec<Name> {
    toks.iter()
        .enumerate()
        .filter(|(_, t)| t.is_word("references"))
        .filter_map(|(i, _)| name_at(toks, i + 1).map(|(n, _)| n))
        .collect()
}

/// Splits tokens at commas outside parentheses.
fn split_top_level<'s, 't, 'a>(toks: &'s [&'t Token<'a>]) -> Vec<&'s [&'t Token<'a>]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth = depth.saturating_sub(1),
            TokenKind::Comma if depth == 0 => {
                parts.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&toks[start..]);
    parts
}

/// `a, s.b, c` from `i` (a `*` after a name is skipped).
fn name_list(toks: &Toks<'_, '_>, mut i: usize) -> Vec<Name> {
    let mut names = Vec::new();
    while let Some((name, next)) = name_at(toks, i) {
        names.push(name);
        i = next;
        if toks.get(i).is_some_and(|t| t.text == "*") {
            i += 1;
        }
        if toks.get(i).is_some_and(|t| t.kind == TokenKind::Comma) {
            i += 1;
        } else {
            break;
        }
    }
    names
}

/// The index of `TABLE` in `CREATE [GLOBAL|LOCAL] [TEMP|TEMPORARY|UNLOGGED] TABLE`.
fn table_keyword(toks: &Toks<'_, '_>) -> Option<usize> {
    let mut i = 1;
    if is_word(toks, i, "global") || is_word(toks, i, "local") {
        i += 1;
    }
    if ["temp", "temporary", "unlogged"]
        .iter()
        .any(|w| is_word(toks, i, w))
    {
        i += 1;
    }
    is_word(toks, i, "table").then_some(i)
}

/// Relations a statement creates (tables, indexes, materialized views): locking them later in
/// the same file stalls nobody.
pub(crate) fn created_relations(toks: &Toks<'_, '_>) -> Vec<Name> {
    if !is_word(toks, 0, "create") {
        return Vec::new();
    }
    let after_if_not_exists = |i: usize| {
        if words_at(toks, i, &["if", "not", "exists"]) {
            i + 3
        } else {
            i
        }
    };
    if let Some(t) = table_keyword(toks) {
        return name_at(toks, after_if_not_exists(t + 1))
            .map(|(n, _)| vec![n])
            .unwrap_or_default();
    }
    if words_at(toks, 1, &["materialized", "view"]) {
        return name_at(toks, after_if_not_exists(3))
            .map(|(n, _)| vec![n])
            .unwrap_or_default();
    }
    let index = if is_word(toks, 1, "index") {
        2
    } else if words_at(toks, 1, &["unique", "index"]) {
        3
    } else {
        return Vec::new();
    };
    let mut i = index;
    if is_word(toks, i, "concurrently") {
        i += 1;
    }
    let i = after_if_not_exists(i);
    if is_word(toks, i, "on") {
        return Vec::new();
    }
    name_at(toks, i).map(|(n, _)| vec![n]).unwrap_or_default()
}

/// In `ADD [CONSTRAINT name] kind ...` (an `ALTER TABLE` action), the kind's first word
/// (`check`, `foreign`, `unique`, `primary`, `exclude`), lower case.
pub(crate) fn added_constraint_kind(action: &str) -> Option<String> {
    let tokens = migrations_format::sql::tokenize(action);
    let toks: Vec<&Token<'_>> = tokens.iter().filter(|t| !t.is_trivia()).collect();
    if !is_word(&toks, 0, "add") {
        return None;
    }
    let mut i = 1;
    if is_word(&toks, i, "constraint") {
        i = name_at(&toks, i + 1)?.1;
    }
    toks.get(i)
        .filter(|t| t.kind == TokenKind::Word)
        .map(|t| t.text.to_ascii_lowercase())
}

/// `ALTER TYPE name ADD VALUE [IF NOT EXISTS] 'label'`: the type and the label.
pub(crate) fn enum_value_added(toks: &Toks<'_, '_>) -> Option<(Name, String)> {
    if !words_at(toks, 0, &["alter", "type"]) {
        return None;
    }
    let (name, mut i) = name_at(toks, 2)?;
    if !words_at(toks, i, &["add", "value"]) {
        return None;
    }
    i += 2;
    if words_at(toks, i, &["if", "not", "exists"]) {
        i += 3;
    }
    Some((name, string_value(toks.get(i)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use migrations_format::sql::tokenize;

    fn with_toks<R>(sql: &str, f: impl FnOnce(&Toks<'_, '_>) -> R) -> R {
        let tokens = tokenize(sql);
        let toks: Vec<&Token<'_>> = tokens.iter().filter(|t| !t.is_trivia()).collect();
        f(&toks)
    }

    fn lock_list(sql: &str) -> Vec<(String, &'static str)> {
        with_toks(sql, |t| {
            locks(t)
                .into_iter()
                .map(|l| (l.relation.key, l.mode.name()))
                .collect()
        })
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
            ("CREATE INDEX i ON t (x)", &[("t", "SHARE")]),
            ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON ONLY s.t (x)", &[("t", "SHARE UPDATE EXCLUSIVE")]),
            ("CREATE TABLE c (id bigint, p_id bigint REFERENCES p (id), c_id bigint REFERENCES c)", &[("p", "SHARE ROW EXCLUSIVE")]),
            ("CREATE TABLE c PARTITION OF p FOR VALUES IN (1)", &[("p", "ACCESS EXCLUSIVE")]),
            ("CREATE TRIGGER tr BEFORE UPDATE OF a, b ON t FOR EACH ROW EXECUTE FUNCTION f()", &[("t", "SHARE ROW EXCLUSIVE")]),
            ("DROP TABLE IF EXISTS a, b CASCADE", &[("a", "ACCESS EXCLUSIVE"), ("b", "ACCESS EXCLUSIVE")]),
            ("DROP INDEX CONCURRENTLY i", &[]),
            ("TRUNCATE TABLE ONLY a, b", &[("a", "ACCESS EXCLUSIVE"), ("b", "ACCESS EXCLUSIVE")]),
            ("LOCK TABLE a IN SHARE ROW EXCLUSIVE MODE", &[("a", "SHARE ROW EXCLUSIVE")]),
            ("LOCK a NOWAIT", &[]),
            ("REINDEX INDEX i", &[("i", "ACCESS EXCLUSIVE")]),
            ("REINDEX INDEX CONCURRENTLY i", &[]),
            ("VACUUM FULL t", &[("t", "ACCESS EXCLUSIVE")]),
            ("VACUUM (FULL, ANALYZE) s.t", &[("t", "ACCESS EXCLUSIVE")]),
            ("VACUUM t", &[]),
            ("REFRESH MATERIALIZED VIEW CONCURRENTLY v", &[("v", "EXCLUSIVE")]),
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
    fn settings() {
        let read = |sql: &str| {
            with_toks(sql, |t| {
                setting(t).map(|s| (s.param, s.scope, s.value.join(" "), s.reset))
            })
        };
        assert_eq!(
            read("SET lock_timeout = 0"),
            Some(("lock_timeout".into(), Scope::Session, "0".into(), false))
        );
        assert_eq!(
            read("set local statement_timeout to '5s'"),
            Some((
                "statement_timeout".into(),
                Scope::Local,
                "'5s'".into(),
                false
            ))
        );
        assert_eq!(
            read("SET SESSION search_path TO a, b"),
            Some(("search_path".into(), Scope::Session, "a , b".into(), false))
        );
        assert_eq!(
            read("SET TIME ZONE 'UTC'"),
            Some(("timezone".into(), Scope::Session, "'UTC'".into(), false))
        );
        assert_eq!(
            read("SET ROLE NONE"),
            Some(("role".into(), Scope::Session, "".into(), true))
        );
        assert_eq!(
            read("SET x.y TO DEFAULT"),
            Some(("x.y".into(), Scope::Session, "".into(), true))
        );
        assert_eq!(
            read("RESET ALL"),
            Some(("all".into(), Scope::Session, "".into(), true))
        );
        assert_eq!(read("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"), None);
        assert_eq!(read("SET CONSTRAINTS ALL DEFERRED"), None);
        let calls = with_toks(
            "SELECT set_config('search_path', 'a', false), set_config('x', 'y', true)",
            |t| {
                set_config_calls(t)
                    .into_iter()
                    .map(|s| (s.param, s.scope))
                    .collect::<Vec<_>>()
            },
        );
        assert_eq!(
            calls,
            vec![
                ("search_path".into(), Scope::Session),
                ("x".into(), Scope::Local)
            ]
        );
        assert!(is_zero_duration(&["0"]));
        assert!(is_zero_duration(&["'0ms'"]));
        assert!(!is_zero_duration(&["'5s'"]));
    }

    #[test]
    fn created_and_enum_values() {
        let created = |sql: &str| {
            with_toks(sql, |t| {
                created_relations(t)
                    .into_iter()
                    .map(|n| n.key)
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(created("CREATE TABLE IF NOT EXISTS s.t (x int)"), vec!["t"]);
        assert_eq!(created("CREATE UNLOGGED TABLE t AS SELECT 1"), vec!["t"]);
        assert_eq!(
            created("CREATE UNIQUE INDEX CONCURRENTLY i ON t (x)"),
            vec!["i"]
        );
        assert_eq!(created("CREATE INDEX ON t (x)"), Vec::<String>::new());
        let added = with_toks(
            "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'it''s' BEFORE 'sad'",
            |t| enum_value_added(t).map(|(n, v)| (n.key, v)),
        );
        assert_eq!(added, Some(("mood".into(), "it's".into())));
    }

    #[test]
    fn constraint_kinds() {
        let kind = |s: &str| added_constraint_kind(s);
        assert_eq!(
            kind("ADD CONSTRAINT c UNIQUE (x)").as_deref(),
            Some("unique")
        );
        assert_eq!(
            kind("add constraint \"C\" check (x > 0)").as_deref(),
            Some("check")
        );
        assert_eq!(
            kind("ADD FOREIGN KEY (x) REFERENCES t").as_deref(),
            Some("foreign")
        );
        assert_eq!(kind("ALTER COLUMN x SET NOT NULL"), None);
    }

    #[test]
    fn transaction_control() {
        let ctl = |sql: &str| with_toks(sql, tx_control);
        assert_eq!(ctl("BEGIN"), Some(TxControl::Begin));
        assert_eq!(
            ctl("START TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
            Some(TxControl::Begin)
        );
        assert_eq!(ctl("COMMIT"), Some(TxControl::End));
        assert_eq!(ctl("end"), Some(TxControl::End));
        assert_eq!(ctl("ROLLBACK TO SAVEPOINT s"), None);
        assert_eq!(ctl("ROLLBACK WORK TO s"), None);
        assert_eq!(ctl("COMMIT PREPARED 'x'"), None);
        assert_eq!(ctl("PREPARE TRANSACTION 'x'"), Some(TxControl::End));
        assert_eq!(ctl("BEGIN ATOMIC"), None);
    }
}
