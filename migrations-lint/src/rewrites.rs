//! What squawk's `changing-column-type` and `adding-field-with-default` cannot tell: whether
//! PostgreSQL rewrites the table.
//!
//! `ALTER COLUMN ... TYPE` rewrites the table and rebuilds its indexes, except when the old
//! type converts to the new one without touching the stored values (PostgreSQL 15's
//! `ATColumnChangeRequiresRewrite`): `varchar(n)` to a longer `varchar` or to `text`,
//! `numeric(p,s)` to more digits, `timestamp` to `timestamptz` (and back) while the session's
//! time zone is UTC, ... Then only the catalog changes (or only the column's indexes are
//! rebuilt). Telling them apart needs the column's current type, which [`Columns`] follows
//! through the migrations before the statement (`CREATE TABLE`, `ADD COLUMN`, earlier type
//! changes, renames). Every claim here is checked against a real server in
//! `tests/it/rewrites.rs` with `pg_relation_filenode` before and after.

use std::collections::HashMap;
use std::fmt;

use squawk_syntax::ast::{self, AstNode};

use crate::syntax::{compact, start, Name};

/// A column type, as PostgreSQL names it: what decides whether a change rewrites the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnType {
    /// PostgreSQL's name (`character varying`, `integer`, `timestamp with time zone`); for a
    /// type this module does not know (a domain, an extension's type), as written.
    base: String,
    /// The type modifiers as written (`varchar(20)`: `[20]`, `numeric(10,2)`: `[10, 2]`).
    mods: Vec<u32>,
    array: bool,
    /// A built-in type whose conversions this module knows.
    known: bool,
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mods: Vec<String> = self.mods.iter().map(u32::to_string).collect();
        // PostgreSQL writes the precision of time types after the word: `timestamp(3) with
        // time zone`.
        match self.base.split_once(" with") {
            Some((head, tail)) if !mods.is_empty() => {
                write!(f, "{head}({}) with{tail}", mods.join(","))?
            }
            _ if !mods.is_empty() => write!(f, "{}({})", self.base, mods.join(","))?,
            _ => f.write_str(&self.base)?,
        }
        if self.array {
            f.write_str("[]")?;
        }
        Ok(())
    }
}

const VARCHAR: &str = "character varying";
const BPCHAR: &str = "character";
const TIMESTAMP: &str = "timestamp without time zone";
const TIMESTAMPTZ: &str = "timestamp with time zone";

/// Built-in types by every name PostgreSQL accepts for them.
fn builtin(name: &str) -> Option<&'static str> {
    Some(match name {
        "int" | "integer" | "int4" | "serial" | "serial4" => "integer",
        "smallint" | "int2" | "smallserial" | "serial2" => "smallint",
        "bigint" | "int8" | "bigserial" | "serial8" => "bigint",
        "text" => "text",
        "varchar" => VARCHAR,
        "bpchar" => BPCHAR,
        "numeric" | "decimal" => "numeric",
        "real" | "float4" => "real",
        "float8" => "double precision",
        "bool" | "boolean" => "boolean",
        "timestamp" => TIMESTAMP,
        "timestamptz" => TIMESTAMPTZ,
        "time" => "time without time zone",
        "timetz" => "time with time zone",
        "date" => "date",
        "interval" => "interval",
        "uuid" => "uuid",
        "json" => "json",
        "jsonb" => "jsonb",
        "bytea" => "bytea",
        "inet" => "inet",
        "cidr" => "cidr",
        "macaddr" => "macaddr",
        "money" => "money",
        "xml" => "xml",
        "oid" => "oid",
        "bit" => "bit",
        "varbit" => "bit varying",
        _ => return None,
    })
}

fn mods_of(args: Option<ast::ArgList>) -> Vec<u32> {
    args.into_iter()
        .flat_map(|a| a.args())
        .filter_map(|a| compact(a.syntax()).parse().ok())
        .collect()
}

fn precision(literal: Option<ast::Literal>) -> Vec<u32> {
    literal
        .and_then(|l| compact(l.syntax()).parse().ok())
        .into_iter()
        .collect()
}

impl ColumnType {
    fn known(base: &str, mods: Vec<u32>) -> ColumnType {
        ColumnType {
            base: base.to_owned(),
            mods,
            array: false,
            known: true,
        }
    }

    /// The type a column definition or `ALTER COLUMN ... TYPE` names.
    pub fn of(ty: &ast::Type) -> Option<ColumnType> {
        use ast::Type as T;
        let with_zone =
            |z: Option<ast::Timezone>| matches!(z, Some(ast::Timezone::WithTimezone(_)));
        Some(match ty {
            T::ArrayType(a) => ColumnType {
                array: true,
                ..ColumnType::of(&a.ty()?)?
            },
            T::VarcharType(v) => {
                // `varchar`, `character varying`, `char varying`; `character(n)` without
                // VARYING is the blank-padded type.
                let varying = v.varchar_token().is_some() || v.varying_token().is_some();
                let mods = mods_of(v.arg_list());
                if varying {
                    ColumnType::known(VARCHAR, mods)
                } else {
                    ColumnType::known(BPCHAR, if mods.is_empty() { vec![1] } else { mods })
                }
            }
            T::CharacterType(c) => {
                let mods = mods_of(c.arg_list());
                ColumnType::known(BPCHAR, if mods.is_empty() { vec![1] } else { mods })
            }
            T::BitType(b) => {
                let mods = mods_of(b.arg_list());
                ColumnType::known("bit", if mods.is_empty() { vec![1] } else { mods })
            }
            T::BitVaryingType(b) => ColumnType::known("bit varying", mods_of(b.arg_list())),
            T::DoubleType(_) => ColumnType::known("double precision", Vec::new()),
            T::IntervalType(i) => match i.interval_qualifier() {
                // `interval day to second` and the like: fields this module does not follow.
                Some(q) => ColumnType {
                    base: format!("interval {}", compact(q.syntax()).to_ascii_lowercase()),
                    mods: precision(i.literal()),
                    array: false,
                    known: false,
                },
                None => ColumnType::known("interval", precision(i.literal())),
            },
            T::TimeType(t) => {
                let base = if with_zone(t.timezone()) {
                    "time with time zone"
                } else {
                    "time without time zone"
                };
                ColumnType::known(base, precision(t.literal()))
            }
            T::TimestampType(t) => {
                let base = if with_zone(t.timezone()) {
                    TIMESTAMPTZ
                } else {
                    TIMESTAMP
                };
                ColumnType::known(base, precision(t.literal()))
            }
            T::PathType(p) => {
                let path = p.path_ref()?;
                let name = path.segment()?.text();
                let qualifier = path.qualifier().and_then(|q| q.segment()).map(|s| s.text());
                let mods = mods_of(p.arg_list());
                let builtin = match qualifier.as_deref() {
                    None | Some("pg_catalog") => builtin(&name),
                    Some(_) => None,
                };
                match (builtin, name.as_str()) {
                    // `float(p)`: real up to 24 bits of precision, double precision above.
                    (None, "float") => {
                        let base = match mods.first() {
                            Some(p) if *p <= 24 => "real",
                            _ => "double precision",
                        };
                        ColumnType::known(base, Vec::new())
                    }
                    (Some(base), _) => ColumnType::known(base, mods),
                    (None, _) => ColumnType {
                        base: compact(p.syntax()).to_ascii_lowercase(),
                        mods: Vec::new(),
                        array: false,
                        known: false,
                    },
                }
            }
        })
    }
}

/// What an `ALTER COLUMN ... TYPE` does to the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rewrite {
    /// Only the catalog changes: no rewrite, no index rebuilt.
    Catalog,
    /// The table stays; the indexes on the column are rebuilt (the reason is a clause for the
    /// message: "under time zone 'UTC'").
    Indexes(String),
    /// The table is rewritten and all its indexes rebuilt.
    Table,
    /// `timestamp` <-> `timestamptz` while the file does not set the time zone: a rewrite
    /// unless the server's own setting is UTC.
    UnlessUtc,
    /// The column's current type is not known here (the reason completes "its current type
    /// is not known ...").
    Unknown(String),
}

/// The session's time zone where a statement runs, as far as the file tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Zone {
    /// Not set by the file: the server's (or the role's, the database's) setting.
    Unset,
    /// Set to a zone PostgreSQL treats as UTC, as written.
    Utc(String),
    /// Set to another zone, as written.
    Other(String),
}

/// Same base types whose modifier can grow without a rewrite (PostgreSQL's length and
/// precision support functions): the new type is unconstrained, or at least as wide.
fn widening(old: &ColumnType, new: &ColumnType) -> Rewrite {
    let grows = |max: Option<u32>| match (old.mods.first(), new.mods.first()) {
        (_, None) => true,
        (None, Some(n)) => max.is_some_and(|m| *n >= m),
        (Some(o), Some(n)) => n >= o,
    };
    let ok = match old.base.as_str() {
        VARCHAR | "bit varying" => grows(None),
        // Six digits is the most a time type keeps: `timestamp` is `timestamp(6)`.
        TIMESTAMP | TIMESTAMPTZ | "time without time zone" | "time with time zone" | "interval" => {
            grows(Some(6))
        }
        "numeric" => {
            let scale = |t: &ColumnType| t.mods.get(1).copied().unwrap_or(0);
            new.mods.is_empty() || (!old.mods.is_empty() && scale(old) == scale(new) && grows(None))
        }
        _ => false,
    };
    if ok {
        Rewrite::Catalog
    } else {
        Rewrite::Table
    }
}

/// Whether changing a column from `old` to `new` rewrites the table. `using` is the USING
/// expression when one is given other than the column itself (or a plain cast of it), and
/// `zone` the session's time zone.
pub(crate) fn classify(
    old: Option<&ColumnType>,
    new: &ColumnType,
    computed: bool,
    collate: bool,
    zone: &Zone,
) -> Rewrite {
    if computed {
        // A computed USING expression is evaluated for every row.
        return Rewrite::Table;
    }
    let Some(old) = old else {
        return Rewrite::Unknown(
            "(no migration before this statement creates the column with its type)".to_owned(),
        );
    };
    let outcome = if old == new {
        Rewrite::Catalog
    } else if old.array || new.array {
        // An array of a changed element type is converted element by element.
        Rewrite::Table
    } else if !old.known || !new.known {
        let unknown = if old.known { new } else { old };
        return Rewrite::Unknown(format!(
            "to this lint: `{unknown}` is a type whose conversions it does not know"
        ));
    } else if old.base == new.base {
        widening(old, new)
    } else if [TIMESTAMP, TIMESTAMPTZ].contains(&old.base.as_str())
        && [TIMESTAMP, TIMESTAMPTZ].contains(&new.base.as_str())
    {
        // PostgreSQL 12+ reads the stored values as they are when the session's zone is UTC;
        // the indexes change operator class and are rebuilt.
        let precision_kept = match (old.mods.first(), new.mods.first()) {
            (_, None) => true,
            (None, Some(n)) => *n >= 6,
            (Some(o), Some(n)) => n >= o,
        };
        match zone {
            _ if !precision_kept => Rewrite::Table,
            Zone::Utc(z) => Rewrite::Indexes(format!("under time zone '{z}'")),
            Zone::Other(_) => Rewrite::Table,
            Zone::Unset => Rewrite::UnlessUtc,
        }
    } else {
        // Binary-compatible casts (pg_cast's castmethod 'b'), to a type without a length
        // limit: the stored bytes are read as they are.
        const BINARY: &[(&str, &str)] = &[
            (VARCHAR, "text"),
            ("text", VARCHAR),
            ("text", BPCHAR),
            (VARCHAR, BPCHAR),
            ("cidr", "inet"),
            ("xml", "text"),
            ("xml", VARCHAR),
            ("integer", "oid"),
            ("oid", "integer"),
        ];
        let binary = BINARY.contains(&(old.base.as_str(), new.base.as_str()));
        if binary && new.mods.is_empty() {
            Rewrite::Catalog
        } else {
            Rewrite::Table
        }
    };
    match outcome {
        Rewrite::Catalog if collate => Rewrite::Indexes(
            "with a COLLATE clause (unless the column has that collation already)".to_owned(),
        ),
        other => other,
    }
}

/// For a type whose source is not known, the changes to it that keep the table, for messages.
fn catalog_only_sources(new: &ColumnType) -> String {
    let mods = new.mods.first().map(u32::to_string);
    let from = match (new.base.as_str(), mods) {
        _ if new.array || !new.known => None,
        ("text", _) => Some(format!("{VARCHAR} (of any length)")),
        (VARCHAR, None) => Some(format!("text or {VARCHAR}(n)")),
        (VARCHAR, Some(n)) => Some(format!("{VARCHAR}(m) with m <= {n}")),
        ("numeric", None) => Some("numeric(p,s)".to_owned()),
        ("numeric", Some(p)) => Some(format!(
            "numeric(q,{}) with q <= {p}",
            new.mods.get(1).copied().unwrap_or(0)
        )),
        (TIMESTAMPTZ | TIMESTAMP, _) => {
            let other = if new.base == TIMESTAMP {
                TIMESTAMPTZ
            } else {
                TIMESTAMP
            };
            return format!(
                "from {other} the table is kept while the session's time zone is UTC (its \
                 indexes are rebuilt); from any other type PostgreSQL rewrites it and rebuilds \
                 its indexes under ACCESS EXCLUSIVE"
            );
        }
        ("inet", _) => Some("cidr".to_owned()),
        _ => None,
    };
    match from {
        Some(from) => format!(
            "from {from} it is a catalog change; from any other type PostgreSQL rewrites the \
             table and rebuilds its indexes under ACCESS EXCLUSIVE"
        ),
        None => "unless the column has that type already, PostgreSQL rewrites the table and \
                 rebuilds its indexes under ACCESS EXCLUSIVE"
            .to_owned(),
    }
}

/// A finding's texts, replacing squawk's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    pub message: String,
    /// The lock, when it differs from the rule's.
    pub lock: Option<String>,
    /// The fix, when it differs from the rule's.
    pub fix: Option<String>,
}

const CLIENTS: &str = "clients that read the column may also break on the new type";

/// The texts of a `changing-column-type` finding on `ALTER TABLE table ALTER COLUMN column
/// TYPE new`, whose USING expression is `computed`.
pub(crate) fn type_change_note(
    table: &Name,
    column: &str,
    old: Option<&ColumnType>,
    new: &ColumnType,
    computed: bool,
    outcome: &Rewrite,
) -> Note {
    let t = &table.shown;
    let from = old.map(|o| format!(" from {o}")).unwrap_or_default();
    let change = format!("changing `{column}` of `{t}`{from} to {new}");
    match outcome {
        Rewrite::Catalog => Note {
            message: format!(
                "{change} is a catalog change: PostgreSQL neither rewrites the table nor \
                 rebuilds its indexes, but waits for ACCESS EXCLUSIVE on `{t}` to make it; \
                 {CLIENTS}"
            ),
            lock: Some(format!(
                "ACCESS EXCLUSIVE on `{t}`, for a moment (no rewrite, no index rebuilt)"
            )),
            fix: Some(
                "nothing to rewrite: keep the runner's lock_timeout (it bounds the wait for the \
                 lock), make sure clients handle the new type, and say so with \
                 `-- migrations:lint-ignore changing-column-type`"
                    .to_owned(),
            ),
        },
        Rewrite::Indexes(why) => Note {
            message: format!(
                "{change} {why} keeps the table, but rebuilds the indexes on `{column}` under \
                 ACCESS EXCLUSIVE on `{t}`: reads and writes wait until they are built; \
                 {CLIENTS}"
            ),
            lock: Some(format!(
                "ACCESS EXCLUSIVE on `{t}` while the indexes on `{column}` are rebuilt (the \
                 table is not rewritten)"
            )),
            fix: Some(format!(
                "if `{column}` has no index, or `{t}` is small, nothing to do but say so with \
                 `-- migrations:lint-ignore changing-column-type`; otherwise add a column of the \
                 new type, backfill it in batches, index it CONCURRENTLY and move readers over"
            )),
        },
        Rewrite::Table => Note {
            message: format!(
                "{change}{} rewrites the table and rebuilds its indexes under ACCESS \
                 EXCLUSIVE: reads and writes on `{t}` wait until it is done; {CLIENTS}",
                if computed {
                    " with a computed USING expression"
                } else {
                    ""
                }
            ),
            lock: None,
            fix: None,
        },
        Rewrite::UnlessUtc => Note {
            message: format!(
                "{change} rewrites the table and rebuilds its indexes under ACCESS EXCLUSIVE \
                 unless the session's time zone is UTC, which this file does not set (the \
                 server's `timezone` decides); {CLIENTS}"
            ),
            lock: Some(format!(
                "ACCESS EXCLUSIVE on `{t}`: while it is rewritten, unless the time zone is UTC \
                 (then while the indexes on `{column}` are rebuilt)"
            )),
            fix: Some(
                "`SET LOCAL timezone = 'UTC'` before the statement, if the stored values are \
                 meant as UTC: PostgreSQL 12+ then keeps the table and only rebuilds the \
                 column's indexes; otherwise add a column of the new type and backfill it"
                    .to_owned(),
            ),
        },
        Rewrite::Unknown(why) => Note {
            message: format!(
                "{change}: its current type is not known {why}, so neither is whether the \
                 table is rewritten: {}; {CLIENTS}",
                catalog_only_sources(new)
            ),
            lock: Some(format!(
                "ACCESS EXCLUSIVE on `{t}`: while it is rewritten, unless the change is \
                 binary-compatible"
            )),
            fix: None,
        },
    }
}

/// Whether a USING expression computes something, rather than naming the column (or
/// casting it): a computed one is evaluated for every row.
fn computed(using: &ast::Expr, column: &str) -> bool {
    let names_column = |e: &ast::Expr| matches!(e, ast::Expr::NameRef(n) if n.text() == column);
    match using {
        ast::Expr::CastExpr(cast) => !cast.expr().is_some_and(|e| names_column(&e)),
        ast::Expr::ParenExpr(p) => p.expr().is_none_or(|e| computed(&e, column)),
        e => !names_column(e),
    }
}

/// A column name as the server folds it.
fn column_ref(column: &ast::ColumnNameRef) -> String {
    ast::normalize_name_node(column.syntax())
}

/// The columns' types as the migrations so far left them, by table and column (names as the
/// server folds them; tables by their unqualified name, as squawk tracks them).
#[derive(Debug, Clone, Default)]
pub(crate) struct Columns {
    types: HashMap<(String, String), ColumnType>,
}

impl Columns {
    fn forget_table(&mut self, table: &str) {
        self.types.retain(|(t, _), _| t != table);
    }

    /// Follows what a file does to column types, for a file that is not linted.
    pub fn follow(&mut self, text: &str) {
        for stmt in crate::syntax::FileSyntax::read(text)
            .parsed
            .stmts
            .iter()
            .flatten()
        {
            self.apply(stmt);
        }
    }

    /// Follows what a statement does to column types.
    pub fn apply(&mut self, stmt: &ast::Stmt) {
        use ast::Stmt as S;
        let table_key =
            |path: Option<ast::Path>| path.and_then(|p| Name::of_path(&p)).map(|n| n.key);
        match stmt {
            S::CreateTable(create) => {
                let Some(table) = table_key(create.table_name().and_then(|t| t.path())) else {
                    return;
                };
                self.forget_table(&table);
                for arg in create.table_arg_list().into_iter().flat_map(|l| l.args()) {
                    if let ast::TableArg::Column(column) = arg {
                        if let (Some(name), Some(ty)) =
                            (column.name(), column.ty().as_ref().and_then(ColumnType::of))
                        {
                            self.types.insert((table.clone(), name.text()), ty);
                        }
                    }
                }
            }
            S::CreateTableAs(c) => {
                if let Some(t) = table_key(c.table_name().and_then(|t| t.path())) {
                    self.forget_table(&t);
                }
            }
            S::SelectInto(s) => {
                if let Some(t) = table_key(
                    s.into_clause()
                        .and_then(|i| i.table_name())
                        .and_then(|t| t.path()),
                ) {
                    self.forget_table(&t);
                }
            }
            S::DropTable(drop) => {
                for name in drop.table_name_refs() {
                    if let Some(n) = name.path_ref().and_then(|p| Name::of_ref(&p)) {
                        self.forget_table(&n.key);
                    }
                }
            }
            S::AlterTable(alter) => {
                let Some(table) = alter
                    .table_relation_name()
                    .and_then(|r| r.table_name_ref())
                    .and_then(|r| r.path_ref())
                    .and_then(|p| Name::of_ref(&p))
                    .map(|n| n.key)
                else {
                    return;
                };
                for action in alter.actions() {
                    self.apply_action(&table, &action);
                }
            }
            _ => {}
        }
    }

    fn apply_action(&mut self, table: &str, action: &ast::AlterTableAction) {
        use ast::AlterTableAction as A;
        let key = |column: String| (table.to_owned(), column);
        match action {
            A::AddColumn(add) => {
                if let (Some(name), Some(ty)) = (
                    add.column_name(),
                    add.ty().as_ref().and_then(ColumnType::of),
                ) {
                    self.types.entry(key(name.text())).or_insert(ty);
                }
            }
            A::DropColumn(drop) => {
                if let Some(name) = drop.column_name_ref() {
                    self.types.remove(&key(column_ref(&name)));
                }
            }
            A::RenameColumn(rename) => {
                if let (Some(from), Some(to)) = (rename.column_name_ref(), rename.column_name()) {
                    if let Some(ty) = self.types.remove(&key(column_ref(&from))) {
                        self.types.insert(key(to.text()), ty);
                    }
                }
            }
            A::AlterColumn(alter) => {
                if let (Some(name), Some(ast::AlterColumnOption::SetType(set))) =
                    (alter.column_name_ref(), alter.option())
                {
                    match set.ty().as_ref().and_then(ColumnType::of) {
                        Some(ty) => {
                            self.types.insert(key(column_ref(&name)), ty);
                        }
                        None => {
                            self.types.remove(&key(column_ref(&name)));
                        }
                    }
                }
            }
            A::TableRenameTo(rename) => {
                let Some(to) = rename
                    .table_name()
                    .and_then(|t| t.path())
                    .and_then(|p| Name::of_path(&p))
                else {
                    return;
                };
                let moved: Vec<((String, String), ColumnType)> = self
                    .types
                    .iter()
                    .filter(|((t, _), _)| t == table)
                    .map(|((_, c), ty)| ((to.key.clone(), c.clone()), ty.clone()))
                    .collect();
                self.forget_table(table);
                self.forget_table(&to.key);
                self.types.extend(moved);
            }
            _ => {}
        }
    }

    /// The notes of a statement's `ALTER COLUMN ... TYPE` actions, by the byte offset where
    /// squawk reports them (the `TYPE` clause), with the column types before the statement.
    pub fn type_changes(&self, stmt: &ast::Stmt, zone: &Zone) -> Vec<(usize, Note)> {
        let ast::Stmt::AlterTable(alter) = stmt else {
            return Vec::new();
        };
        let Some(table) = alter
            .table_relation_name()
            .and_then(|r| r.table_name_ref())
            .and_then(|r| r.path_ref())
            .and_then(|p| Name::of_ref(&p))
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for action in alter.actions() {
            let ast::AlterTableAction::AlterColumn(alter_column) = action else {
                continue;
            };
            let (Some(column), Some(ast::AlterColumnOption::SetType(set))) =
                (alter_column.column_name_ref(), alter_column.option())
            else {
                continue;
            };
            let Some(new) = set.ty().as_ref().and_then(ColumnType::of) else {
                continue;
            };
            let column = column_ref(&column);
            let old = self.types.get(&(table.key.clone(), column.clone()));
            let is_computed = set
                .using_expr()
                .and_then(|u| u.expr())
                .is_some_and(|e| computed(&e, &column));
            let outcome = classify(old, &new, is_computed, set.collate().is_some(), zone);
            out.push((
                start(set.syntax()),
                type_change_note(&table, &column, old, &new, is_computed, &outcome),
            ));
        }
        out
    }
}

/// The texts of `adding-field-with-default` findings on a statement's `ADD COLUMN`s, by the
/// byte offset where squawk reports them: squawk says "a generated column" for all three
/// causes of the rewrite.
pub(crate) fn new_column_notes(stmt: &ast::Stmt) -> Vec<(usize, String)> {
    let ast::Stmt::AlterTable(alter) = stmt else {
        return Vec::new();
    };
    let table = alter
        .table_relation_name()
        .and_then(|r| r.table_name_ref())
        .and_then(|r| r.path_ref())
        .and_then(|p| Name::of_ref(&p))
        .map_or_else(|| "the table".to_owned(), |n| format!("`{}`", n.shown));
    let mut out = Vec::new();
    for action in alter.actions() {
        let ast::AlterTableAction::AddColumn(add) = action else {
            continue;
        };
        let column = add.column_name().map(|c| c.text()).unwrap_or_default();
        for constraint in add.constraints() {
            let rewrite = format!(
                "PostgreSQL rewrites {table} under ACCESS EXCLUSIVE to store it in every existing \
                 row: reads and writes wait until it is done"
            );
            match constraint {
                ast::Constraint::DefaultConstraint(default) => {
                    let Some(expr) = default.expr() else {
                        continue;
                    };
                    out.push((
                        start(expr.syntax()),
                        format!(
                            "the DEFAULT `{}` of new column `{column}` is volatile, or not known \
                             not to be (only constants and a list of built-in functions without \
                             arguments are): {rewrite}; a non-volatile DEFAULT is stored once, \
                             without a rewrite",
                            compact(expr.syntax())
                        ),
                    ));
                }
                ast::Constraint::GeneratedConstraint(generated) => {
                    let what = match generated.generated_as() {
                        Some(ast::GeneratedAs::GeneratedIdentity(_)) => {
                            "an identity column: each existing row takes a value from its \
                             sequence, and"
                        }
                        _ => {
                            "a stored generated column: its expression is computed for each \
                              existing row, and"
                        }
                    };
                    out.push((
                        start(generated.syntax()),
                        format!("new column `{column}` is {what} {rewrite}"),
                    ));
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse_statements as stmts;

    fn ty(sql_type: &str) -> ColumnType {
        let sql = format!("CREATE TABLE t (c {sql_type})");
        let stmts = stmts(&sql);
        let ast::Stmt::CreateTable(c) = &stmts[0] else {
            panic!("{sql}");
        };
        let Some(ast::TableArg::Column(col)) = c.table_arg_list().unwrap().args().next() else {
            panic!("{sql}");
        };
        ColumnType::of(&col.ty().unwrap()).unwrap()
    }

    #[test]
    fn types_are_named_as_postgresql_names_them() {
        for (written, shown) in [
            ("varchar(20)", "character varying(20)"),
            ("CHARACTER VARYING", "character varying"),
            ("char(3)", "character(3)"),
            ("character", "character(1)"),
            ("bpchar", "character"),
            ("int", "integer"),
            ("INT4", "integer"),
            ("serial", "integer"),
            ("bigserial", "bigint"),
            ("pg_catalog.int8", "bigint"),
            ("decimal(10, 2)", "numeric(10,2)"),
            ("timestamp", "timestamp without time zone"),
            ("timestamptz(3)", "timestamp(3) with time zone"),
            ("timestamp(3) with time zone", "timestamp(3) with time zone"),
            ("time with time zone", "time with time zone"),
            ("double precision", "double precision"),
            ("float(10)", "real"),
            ("text[]", "text[]"),
            ("varchar(5) array", "character varying(5)[]"),
            ("myschema.mood", "myschema.mood"),
            ("citext", "citext"),
        ] {
            assert_eq!(ty(written).to_string(), shown, "{written}");
        }
        assert!(!ty("citext").known && !ty("myschema.mood").known && ty("int").known);
    }

    #[test]
    fn rewrites_by_type_pair() {
        use Rewrite::*;
        let utc = Zone::Utc("UTC".into());
        let berlin = Zone::Other("Europe/Berlin".into());
        let cases: &[(&str, &str, &Zone, Rewrite)] = &[
            ("varchar(10)", "varchar(20)", &Zone::Unset, Catalog),
            ("varchar(20)", "varchar(10)", &Zone::Unset, Table),
            ("varchar(10)", "text", &Zone::Unset, Catalog),
            ("varchar(10)", "varchar", &Zone::Unset, Catalog),
            ("text", "varchar", &Zone::Unset, Catalog),
            ("text", "varchar(10)", &Zone::Unset, Table),
            ("varchar", "varchar(10)", &Zone::Unset, Table),
            ("char(10)", "char(20)", &Zone::Unset, Table),
            ("char(10)", "text", &Zone::Unset, Table),
            ("int", "bigint", &Zone::Unset, Table),
            ("int4", "integer", &Zone::Unset, Catalog),
            ("numeric(10,2)", "numeric(12,2)", &Zone::Unset, Catalog),
            ("numeric(10,2)", "numeric(12,3)", &Zone::Unset, Table),
            ("numeric(10,2)", "numeric", &Zone::Unset, Catalog),
            ("numeric", "numeric(10,2)", &Zone::Unset, Table),
            (
                "timestamp",
                "timestamptz",
                &utc,
                Indexes("under time zone 'UTC'".into()),
            ),
            (
                "timestamptz",
                "timestamp",
                &utc,
                Indexes("under time zone 'UTC'".into()),
            ),
            ("timestamp", "timestamptz", &berlin, Table),
            ("timestamp", "timestamptz", &Zone::Unset, UnlessUtc),
            ("timestamp", "timestamptz(3)", &utc, Table),
            ("timestamp(3)", "timestamp(6)", &Zone::Unset, Catalog),
            ("timestamp", "timestamp(3)", &Zone::Unset, Table),
            ("cidr", "inet", &Zone::Unset, Catalog),
            ("varchar(10)[]", "varchar(20)[]", &Zone::Unset, Table),
            ("int[]", "int[]", &Zone::Unset, Catalog),
        ];
        for (old, new, zone, expected) in cases {
            assert_eq!(
                classify(Some(&ty(old)), &ty(new), false, false, zone),
                *expected,
                "{old} -> {new} under {zone:?}"
            );
        }
        assert_eq!(
            classify(Some(&ty("text")), &ty("int"), true, false, &Zone::Unset),
            Table
        );
        assert!(matches!(
            classify(None, &ty("text"), false, false, &Zone::Unset),
            Unknown(_)
        ));
        assert!(matches!(
            classify(Some(&ty("citext")), &ty("text"), false, false, &Zone::Unset),
            Unknown(_)
        ));
        assert!(matches!(
            classify(Some(&ty("text")), &ty("text"), false, true, &Zone::Unset),
            Indexes(_)
        ));
    }

    #[test]
    fn columns_follow_the_migrations() {
        let mut columns = Columns::default();
        for stmt in stmts(
            "CREATE TABLE a (v varchar(10), n int, gone text);\n\
             ALTER TABLE a ADD COLUMN w varchar(5), DROP COLUMN gone, RENAME COLUMN n TO m;\n\
             ALTER TABLE a ALTER COLUMN w TYPE varchar(50);\n\
             ALTER TABLE a RENAME TO b;\n\
             CREATE TABLE c AS SELECT 1 AS x;",
        ) {
            columns.apply(&stmt);
        }
        let get = |t: &str, c: &str| {
            columns
                .types
                .get(&(t.into(), c.into()))
                .map(|t| t.to_string())
        };
        assert_eq!(get("b", "v").as_deref(), Some("character varying(10)"));
        assert_eq!(get("b", "m").as_deref(), Some("integer"));
        assert_eq!(get("b", "w").as_deref(), Some("character varying(50)"));
        assert_eq!(get("a", "v"), None);
        assert_eq!(get("b", "gone"), None);
        assert_eq!(get("c", "x"), None);
    }

    #[test]
    fn computed_using_expressions() {
        let using = |sql: &str| {
            let stmts = stmts(sql);
            let ast::Stmt::AlterTable(a) = &stmts[0] else {
                panic!()
            };
            let Some(ast::AlterTableAction::AlterColumn(c)) = a.actions().next() else {
                panic!()
            };
            let Some(ast::AlterColumnOption::SetType(s)) = c.option() else {
                panic!()
            };
            computed(&s.using_expr().unwrap().expr().unwrap(), "c")
        };
        assert!(!using("ALTER TABLE t ALTER c TYPE text USING c"));
        assert!(!using("ALTER TABLE t ALTER c TYPE text USING c::text"));
        assert!(!using("ALTER TABLE t ALTER c TYPE text USING (c)"));
        assert!(using("ALTER TABLE t ALTER c TYPE int USING c::int + 1"));
        assert!(using("ALTER TABLE t ALTER c TYPE int USING length(c)"));
        assert!(using("ALTER TABLE t ALTER c TYPE int USING d::int"));
    }
}
