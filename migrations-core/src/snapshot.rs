//! Schema snapshots (SPEC section 7): a canonical, comparable description of a database's
//! schema, read from the catalog in one query, and a readable diff between two of them.
//!
//! A [`Snapshot`] is a sorted map from an object's identity to its attributes:
//!
//! ```text
//! table public.users            kind=table  columns=id, email
//! column public.users.email     type=character varying(255)  not_null=true  default=...
//! index public.users_email_ix   definition=CREATE INDEX users_email_ix ON public.users USING btree (email)
//! ```
//!
//! Identities are built from names only (quoted as PostgreSQL's `quote_ident` does), never from
//! OIDs, creation order or the database's name, so the same DDL run in two databases, in any
//! order, gives equal snapshots. Definitions come from the server's own deparsers
//! (`pg_get_indexdef`, `pg_get_constraintdef`, `pg_get_viewdef`, `pg_get_functiondef`,
//! `pg_get_triggerdef`, `pg_get_expr`, `format_type`), read with `search_path` set to
//! `pg_catalog` so every name in them is schema-qualified whatever the session's path.
//!
//! What is covered: schemas, extensions (name, version, schema), tables (kind, partition key
//! and bound, parents, persistence, row level security, options, column order), columns (type,
//! nullability, default, identity, generated expression, collation), constraints (table and
//! domain), indexes (those not backing a primary key, unique or exclusion constraint, which the
//! constraint stands for), sequences (type, start, increment, min, max, cache, cycle, owner; not
//! the current value), views and materialized views, rules, functions, procedures and
//! aggregates, triggers and event triggers, types (enums with their labels in order,
//! composites, domains, ranges), policies, and comments on all of these.
//!
//! Left out: the system schemas (`pg_catalog`, `information_schema`, `pg_toast`, temporary
//! schemas), objects that belong to an extension (the extension and its version stand for
//! them), the migrations history tables (given by [`Names`]: `<table>`, `<table>_audit` and
//! `<table>_schema`, where [`record`] keeps snapshots), ownership, privileges,
//! tablespaces, statistics, and data.
//!
//! **Schema drift**: [`record`] stores a snapshot beside the history (after an `up`), and
//! [`schema_drift`] compares the live schema with the newest one stored, object by object.
//!
//! A snapshot reads the catalog only. Its query sets `search_path` for its own implicit
//! transaction (`set_config(..., true)`), so call it outside an explicit transaction block.

use std::collections::BTreeMap;
use std::fmt;

#[cfg(feature = "tokio-postgres")]
use crate::db::AsyncConn;
#[cfg(feature = "postgres")]
use crate::db::SyncConn;
use crate::db::{Conn, DbError};
use crate::sql::{quote_literal, Names};

/// The first line of the text form.
const TEXT_HEADER: &str = "-- migrations schema snapshot, format 1";

/// The attribute of a table listing its columns in order (compared specially: see [`diff`]).
const COLUMNS: &str = "columns";

/// A canonical description of a database's schema. See the [module documentation](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    objects: BTreeMap<String, BTreeMap<String, String>>,
}

/// One object's attributes, by name.
pub type Attributes = BTreeMap<String, String>;

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// Reads the schema of the database `client` is connected to, leaving out the history
    /// tables named by `names`. One catalog query; call it outside an explicit transaction
    /// block (it sets `search_path` for its own implicit transaction).
    ///
    /// ```no_run
    /// use migrations_core::{Names, Snapshot};
    ///
    /// let url = std::env::var("DATABASE_URL")?;
    /// let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
    /// let before = Snapshot::read(&mut client, &Names::default())?;
    /// client.batch_execute("CREATE TABLE notes (id bigint PRIMARY KEY, body text)")?;
    /// let after = Snapshot::read(&mut client, &Names::default())?;
    /// for difference in before.diff(&after) {
    ///     println!("{difference}"); // `table public.notes: unexpected`, ...
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "postgres")]
    pub fn read(client: &mut postgres::Client, names: &Names) -> Result<Snapshot, DbError> {
        crate::db::block_on(read(&mut SyncConn(client), names))
    }

    /// Async twin of [`Snapshot::read`].
    #[cfg(feature = "tokio-postgres")]
    pub async fn read_async(
        client: &tokio_postgres::Client,
        names: &Names,
    ) -> Result<Snapshot, DbError> {
        read(&mut AsyncConn(client), names).await
    }

    /// The objects, sorted by identity (`kind schema.name...`).
    pub fn objects(&self) -> impl Iterator<Item = (&str, &Attributes)> + '_ {
        self.objects.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The identities, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.objects.keys().map(String::as_str)
    }

    /// One object's attributes, by identity (for example `column public.users.email`).
    pub fn get(&self, key: &str) -> Option<&Attributes> {
        self.objects.get(key)
    }

    /// Whether the snapshot holds an object with this identity.
    pub fn contains(&self, key: &str) -> bool {
        self.objects.contains_key(key)
    }

    /// How many objects the snapshot holds (columns, indexes, ... each count as one).
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the snapshot holds no object (an empty database, beside the history tables).
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Adds (or replaces) one attribute of an object, creating the object if needed.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        attribute: impl Into<String>,
        value: impl Into<String>,
    ) {
        self.objects
            .entry(key.into())
            .or_default()
            .insert(attribute.into(), value.into());
    }

    /// Adds an object with no attributes (if it is not there yet).
    pub fn insert_object(&mut self, key: impl Into<String>) {
        self.objects.entry(key.into()).or_default();
    }

    /// Removes an object; returns its attributes.
    pub fn remove(&mut self, key: &str) -> Option<Attributes> {
        self.objects.remove(key)
    }

    /// What changed from `self` (expected, "before") to `after`. See [`diff`].
    pub fn diff(&self, after: &Snapshot) -> Vec<Difference> {
        diff(self, after)
    }

    /// The compact text form, for storage: a header line, then each object's identity on a
    /// line of its own followed by its attributes, one per line, indented by two spaces
    /// (`  name value`). Backslash, newline, carriage return and tab are escaped (`\\`, `\n`,
    /// `\r`, `\t`), so every entry stays on one line. [`Snapshot::from_text`] reads it back.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(64 * self.objects.len() + TEXT_HEADER.len() + 1);
        out.push_str(TEXT_HEADER);
        out.push('\n');
        for (key, attributes) in &self.objects {
            out.push_str(&escape(key));
            out.push('\n');
            for (name, value) in attributes {
                out.push_str("  ");
                out.push_str(&escape(name).replace(' ', "\\s"));
                out.push(' ');
                out.push_str(&escape(value));
                out.push('\n');
            }
        }
        out
    }

    /// Reads the text form written by [`Snapshot::to_text`].
    pub fn from_text(text: &str) -> Result<Snapshot, ParseError> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, TEXT_HEADER)) => {}
            _ => {
                return Err(ParseError {
                    line: 1,
                    message: format!("expected the header `{TEXT_HEADER}`"),
                })
            }
        }
        let mut snapshot = Snapshot::new();
        let mut current: Option<String> = None;
        for (index, line) in lines {
            let number = index + 1;
            let error = |message: &str| ParseError {
                line: number,
                message: message.to_owned(),
            };
            if let Some(entry) = line.strip_prefix("  ") {
                let key = current
                    .as_ref()
                    .ok_or_else(|| error("an attribute before any object"))?;
                let (name, value) = entry
                    .split_once(' ')
                    .ok_or_else(|| error("an attribute without a value"))?;
                let name = unescape(name).map_err(|m| error(&m))?;
                let value = unescape(value).map_err(|m| error(&m))?;
                snapshot.insert(key.clone(), name, value);
            } else if line.is_empty() {
                return Err(error("an empty line"));
            } else {
                let key = unescape(line).map_err(|m| error(&m))?;
                snapshot.insert_object(key.clone());
                current = Some(key);
            }
        }
        Ok(snapshot)
    }
}

/// A line of [`Snapshot::from_text`]'s input that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schema snapshot, line {line}: {message}")]
pub struct ParseError {
    /// 1-based line of the text.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('s') => out.push(' '),
            Some(other) => return Err(format!("unknown escape `\\{other}`")),
            None => return Err("a lone `\\` at the end of the line".to_owned()),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Differences
// ---------------------------------------------------------------------------------------

/// One way two snapshots differ, about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The object's identity, for example `column public.users.email`.
    pub object: String,
    /// How it differs.
    pub change: Change,
}

/// What differs about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// In the expected ("before") snapshot, not in the other.
    Missing,
    /// In the other snapshot, not in the expected one.
    Unexpected,
    /// An attribute differs (`None`: the attribute is absent on that side).
    Attribute {
        /// The attribute, for example `type` or `default`.
        name: String,
        /// Its value in the expected ("before") snapshot.
        expected: Option<String>,
        /// Its value in the other snapshot.
        actual: Option<String>,
    },
    /// A table's columns present on both sides are in another order.
    ColumnOrder {
        /// Those columns in the expected snapshot's order.
        expected: Vec<String>,
        /// The same columns in the other snapshot's order.
        actual: Vec<String>,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.object)?;
        match &self.change {
            Change::Missing => f.write_str("missing"),
            Change::Unexpected => f.write_str("unexpected"),
            Change::ColumnOrder { expected, actual } => write!(
                f,
                "column order {} -> {}",
                expected.join(", "),
                actual.join(", ")
            ),
            Change::Attribute {
                name,
                expected,
                actual,
            } => {
                let short = |v: &Option<String>| {
                    v.as_deref()
                        .is_none_or(|v| !v.contains('\n') && v.chars().count() <= 120)
                };
                if short(expected) && short(actual) {
                    return write!(f, "{name} {} -> {}", shown(expected), shown(actual));
                }
                // A long or multi-line value (a function body, a view): the first line that
                // differs, as `diff` compares them (indentation and blank lines aside).
                let (e, a) = (
                    expected.as_deref().unwrap_or(""),
                    actual.as_deref().unwrap_or(""),
                );
                let (mut el, mut al) = (text_lines(e), text_lines(a));
                loop {
                    match (el.next(), al.next()) {
                        (Some((_, x)), Some((_, y))) if x == y => {}
                        (x, y) => {
                            let line = x.map(|(n, _)| n).unwrap_or(e.lines().count() + 1);
                            // Both lines clipped from the same place: shortly before their
                            // first differing character, so two long lines that differ late
                            // (an index on a long expression) do not print as equal.
                            let skip = match (x, y) {
                                (Some((_, x)), Some((_, y))) => first_difference(x, y),
                                _ => 0,
                            };
                            let quote = |l: Option<(usize, &str)>| match l {
                                Some((_, l)) => format!("{:?}", clip_from(l, skip)),
                                None => "(end)".to_owned(),
                            };
                            return write!(
                                f,
                                "{name} differs at line {line}: {} -> {}",
                                quote(x),
                                quote(y)
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The non-blank lines of a multi-line value, trimmed, with their 1-based line numbers.
fn text_lines(text: &str) -> impl Iterator<Item = (usize, &str)> + '_ {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// Two multi-line values (function bodies are stored as written) that differ only in
/// indentation, trailing blanks or blank lines.
fn same_text(a: Option<&String>, b: Option<&String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) if a.contains('\n') || b.contains('\n') => text_lines(a)
            .map(|(_, l)| l)
            .eq(text_lines(b).map(|(_, l)| l)),
        _ => false,
    }
}

fn shown(value: &Option<String>) -> String {
    match value {
        None => "(none)".to_owned(),
        Some(v) if v.is_empty() => "''".to_owned(),
        Some(v) => v.clone(),
    }
}

/// How many characters to leave out at the start of two lines so that their first difference
/// shows with some context: none when it falls within the first [`CLIP`] characters.
fn first_difference(a: &str, b: &str) -> usize {
    let same = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    if same < CLIP - CONTEXT {
        0
    } else {
        same - CONTEXT
    }
}

/// The most characters of a line a diff shows.
const CLIP: usize = 100;
/// Characters shown before the first difference when the start is left out.
const CONTEXT: usize = 30;

/// `text` without its first `skip` characters (marked by `…`), clipped to [`CLIP`].
fn clip_from(text: &str, skip: usize) -> String {
    let mut clipped = String::new();
    if skip > 0 {
        clipped.push('…');
    }
    let mut rest = text.chars().skip(skip);
    clipped.extend(rest.by_ref().take(CLIP));
    if rest.next().is_some() {
        clipped.push('…');
    }
    clipped
}

/// What changed from `expected` to `actual`, object by object, in identity order:
/// an object only in `expected` is [`Change::Missing`], one only in `actual` is
/// [`Change::Unexpected`], and each attribute that differs is a [`Change::Attribute`].
///
/// Multi-line values (function and view definitions) are compared line by line with each
/// line's leading and trailing blanks and blank lines ignored: PostgreSQL keeps a PL/pgSQL
/// body as written, and a down that recreates a function with other indentation restores it
/// (a change of indentation inside a multi-line string literal is missed).
///
/// A table's column order is compared on the columns present on both sides only, so an added
/// or dropped column is reported once (as its own `column` object), and a column that moved
/// (dropped and added again at the end, say) is a [`Change::ColumnOrder`].
pub fn diff(expected: &Snapshot, actual: &Snapshot) -> Vec<Difference> {
    let mut out = Vec::new();
    // Both maps are sorted by identity: one pass over the two, side by side (the round trip
    // compares two snapshots of thousands of objects twice per migration).
    let mut e = expected.objects.iter().peekable();
    let mut a = actual.objects.iter().peekable();
    loop {
        let order = match (e.peek(), a.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((ek, _)), Some((ak, _))) => ek.cmp(ak),
        };
        match order {
            std::cmp::Ordering::Less => {
                let (key, _) = e.next().expect("peeked");
                out.push(Difference {
                    object: key.clone(),
                    change: Change::Missing,
                });
            }
            std::cmp::Ordering::Greater => {
                let (key, _) = a.next().expect("peeked");
                out.push(Difference {
                    object: key.clone(),
                    change: Change::Unexpected,
                });
            }
            std::cmp::Ordering::Equal => {
                let ((key, ea), (_, aa)) = (e.next().expect("peeked"), a.next().expect("peeked"));
                if ea != aa {
                    attribute_differences(key, ea, aa, &mut out);
                }
            }
        }
    }
    out
}

/// The attributes of one object that differ between its two versions, in name order.
fn attribute_differences(
    key: &str,
    expected: &Attributes,
    actual: &Attributes,
    out: &mut Vec<Difference>,
) {
    let mut names: Vec<&String> = expected.keys().chain(actual.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (ev, av) = (expected.get(name), actual.get(name));
        if ev == av || same_text(ev, av) {
            continue;
        }
        if name == COLUMNS {
            if let Some(change) = column_order(ev, av) {
                out.push(Difference {
                    object: key.to_owned(),
                    change,
                });
            }
            continue;
        }
        out.push(Difference {
            object: key.to_owned(),
            change: Change::Attribute {
                name: name.clone(),
                expected: ev.cloned(),
                actual: av.cloned(),
            },
        });
    }
}

/// The relative order of the columns both lists hold, when it differs.
fn column_order(expected: Option<&String>, actual: Option<&String>) -> Option<Change> {
    let e = split_names(expected.map(String::as_str).unwrap_or(""));
    let a = split_names(actual.map(String::as_str).unwrap_or(""));
    let common_e: Vec<String> = e.iter().filter(|c| a.contains(c)).cloned().collect();
    let common_a: Vec<String> = a.iter().filter(|c| e.contains(c)).cloned().collect();
    (common_e != common_a).then_some(Change::ColumnOrder {
        expected: common_e,
        actual: common_a,
    })
}

/// `a, "b, c", d` → `a`, `"b, c"`, `d` (names as `quote_ident` writes them).
fn split_names(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = list.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => {
                out.push(current.trim().to_owned());
                current.clear();
                if chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            c => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

// ---------------------------------------------------------------------------------------
// Reading the catalog
// ---------------------------------------------------------------------------------------

/// Reads a snapshot through any connection the engine can drive (one round trip).
pub(crate) async fn read<C: Conn>(conn: &mut C, names: &Names) -> Result<Snapshot, DbError> {
    let rows = conn.simple(&snapshot_query(names)).await?;
    Ok(from_rows(rows))
}

/// The name of the snapshot query prepared by [`read_prepared`].
#[cfg(feature = "postgres")]
const PREPARED: &str = "migrations_snapshot";

/// [`read`] for a session that reads many snapshots (the round trip: three per migration):
/// the query is prepared once (when `*prepared` is false; it is then set) and executed after,
/// which spares the server planning it each time, about 40% of its cost. PostgreSQL re-plans
/// it by itself when a catalog change requires it. Only the round trip (feature `postgres`)
/// reads that many.
#[cfg(feature = "postgres")]
pub(crate) async fn read_prepared<C: Conn>(
    conn: &mut C,
    names: &Names,
    prepared: &mut bool,
) -> Result<Snapshot, DbError> {
    let query = snapshot_query(names);
    // `set_config(...)` (for the statement that follows, in the same implicit transaction),
    // then the query itself.
    let (set, body) = query.split_once(";\n").unwrap_or(("", &query));
    let sql = if *prepared {
        format!("{set};\nEXECUTE {PREPARED}")
    } else {
        format!("{set};\nPREPARE {PREPARED} AS {body};\nEXECUTE {PREPARED}")
    };
    let rows = conn.simple(&sql).await?;
    *prepared = true;
    Ok(from_rows(rows))
}

fn from_rows(rows: Vec<crate::db::Row>) -> Snapshot {
    let mut snapshot = Snapshot::new();
    // An object's rows come one after the other (each section lists an object's attributes
    // together): gathered, then inserted once, not looked up in the map row by row.
    let mut current: Option<(String, Attributes)> = None;
    for row in rows {
        // The first statement (set_config) returns a row of one column; skip it.
        let [key, attribute, value] = <[Option<String>; 3]>::try_from(row).unwrap_or_default();
        let Some(key) = key else { continue };
        let attributes = match &mut current {
            Some((k, attributes)) if *k == key => attributes,
            _ => {
                if let Some((k, attributes)) = current.take() {
                    snapshot.objects.entry(k).or_default().extend(attributes);
                }
                &mut current.insert((key, Attributes::new())).1
            }
        };
        if let (Some(attribute), Some(value)) = (attribute, value) {
            attributes.insert(attribute, value);
        }
    }
    if let Some((k, attributes)) = current {
        snapshot.objects.entry(k).or_default().extend(attributes);
    }
    snapshot
}

/// Schemas that are never part of a snapshot.
fn user_schema(n: &str) -> String {
    format!(
        "({n}.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') \
         AND {n}.nspname NOT LIKE 'pg\\_temp\\_%' AND {n}.nspname NOT LIKE 'pg\\_toast\\_temp\\_%')"
    )
}

/// The object is not a member of an extension.
fn not_in_extension(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend x WHERE x.classid = \
         'pg_catalog.{catalog}'::pg_catalog.regclass AND x.objid = {oid} AND x.deptype = 'e')"
    )
}

/// The one query: every object as rows of (identity, attribute, value); a NULL value means
/// the attribute is absent (the object is still there).
///
/// Comments are read by a subquery on `pg_description` (its index on the object), not with
/// `obj_description`/`col_description`: those are SQL functions the executor runs once per
/// object, and they were half the query's cost (the round trip reads three snapshots per
/// migration).
fn snapshot_query(names: &Names) -> String {
    let history = quote_literal(&names.history());
    let audit = quote_literal(&names.audit());
    let recorded = quote_literal(&recorded_table(names));
    // The history's own objects (format 3): the stored digest's table and trigger function.
    let meta = quote_literal(&names.meta());
    let digest_fn = quote_literal(&format!("{}()", names.digest_function()));
    let ns = user_schema("n");
    let rel_not_ext = not_in_extension("pg_class", "c.oid");
    let proc_not_ext = not_in_extension("pg_proc", "p.oid");
    let type_not_ext = not_in_extension("pg_type", "t.oid");
    let ns_not_ext = not_in_extension("pg_namespace", "n.oid");
    let evt_not_ext = not_in_extension("pg_event_trigger", "e.oid");
    format!(
        r#"SELECT pg_catalog.set_config('search_path', 'pg_catalog', true);
WITH history(oid) AS (
  SELECT r FROM unnest(ARRAY[to_regclass({history}), to_regclass({audit}), to_regclass({recorded}), to_regclass({meta})]) AS r
  WHERE r IS NOT NULL
), excluded(oid) AS (
  SELECT oid FROM history
  UNION SELECT d.objid FROM pg_depend d
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.refobjid IN (SELECT oid FROM history) AND d.deptype IN ('a', 'i')
), rels AS (
  SELECT c.oid, c.relkind, c.relname, n.nspname, c.relpersistence, c.relispartition,
         c.relpartbound, c.relrowsecurity, c.relforcerowsecurity, c.reloptions,
         c.relreplident, c.relispopulated, c.reltype,
         quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS q
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE {ns} AND {rel_not_ext}
    AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S', 'i', 'I')
    AND c.oid NOT IN (SELECT oid FROM excluded)
), tables AS (
  SELECT * FROM rels WHERE relkind IN ('r', 'p', 'f')
)
-- Only the attributes that have a value travel, and every object's `comment` (present in
-- each section, last): the one row that keeps an object with no other attribute (two thirds
-- of the rows were NULL values, which the client only turned into "absent").
SELECT s.k, s.a, s.v FROM (
-- schemas
SELECT 'schema ' || quote_ident(n.nspname), 'comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = n.oid
    AND ds.classoid = 'pg_namespace'::regclass AND ds.objsubid = 0)
FROM pg_namespace n WHERE {ns} AND {ns_not_ext}
-- extensions
UNION ALL
SELECT 'extension ' || quote_ident(e.extname), a.k, a.v
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace,
LATERAL (VALUES ('version', e.extversion), ('schema', quote_ident(n.nspname)),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = e.oid
    AND ds.classoid = 'pg_extension'::regclass AND ds.objsubid = 0))) a(k, v)
-- tables
UNION ALL
SELECT 'table ' || t.q, a.k, a.v FROM tables t, LATERAL (VALUES
  ('kind', CASE t.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
    ELSE 'foreign table' END),
  ('persistence', CASE t.relpersistence WHEN 'u' THEN 'unlogged' END),
  ('partition_key', CASE WHEN t.relkind = 'p' THEN pg_get_partkeydef(t.oid) END),
  ('partition_bound', CASE WHEN t.relispartition THEN pg_get_expr(t.relpartbound, t.oid) END),
  ('inherits', (SELECT string_agg(quote_ident(pn.nspname) || '.' || quote_ident(pc.relname), ', '
      ORDER BY i.inhseqno)
    FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
    JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = t.oid)),
  ('row_security', CASE WHEN t.relrowsecurity THEN 'enabled' END),
  ('force_row_security', CASE WHEN t.relforcerowsecurity THEN 'enabled' END),
  ('replica_identity', CASE t.relreplident WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full'
    WHEN 'i' THEN 'index' END),
  ('options', (SELECT string_agg(o, ', ' ORDER BY o) FROM unnest(t.reloptions) o)),
  ('{COLUMNS}', (SELECT coalesce(string_agg(quote_ident(att.attname), ', ' ORDER BY att.attnum), '')
    FROM pg_attribute att WHERE att.attrelid = t.oid AND att.attnum > 0 AND NOT att.attisdropped)),
  ('server', (SELECT quote_ident(s.srvname) FROM pg_foreign_table ft
    JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE ft.ftrelid = t.oid)),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = t.oid
    AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = 0))) a(k, v)
-- columns (of tables, views and materialized views)
UNION ALL
SELECT 'column ' || r.q || '.' || quote_ident(att.attname), a.k, a.v
FROM rels r JOIN pg_attribute att ON att.attrelid = r.oid
LEFT JOIN pg_attrdef ad ON ad.adrelid = att.attrelid AND ad.adnum = att.attnum
JOIN pg_type ty ON ty.oid = att.atttypid,
LATERAL (VALUES
  ('type', format_type(att.atttypid, att.atttypmod)),
  ('not_null', CASE WHEN att.attnotnull THEN 'true' ELSE 'false' END),
  ('default', CASE WHEN att.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END),
  ('generated', CASE WHEN att.attgenerated = 's' THEN 'stored: ' || pg_get_expr(ad.adbin, ad.adrelid) END),
  ('identity', CASE att.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END),
  ('collation', CASE WHEN att.attcollation <> ty.typcollation THEN
    (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co
     JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = att.attcollation) END),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = att.attrelid
    AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = att.attnum))) a(k, v)
WHERE r.relkind IN ('r', 'p', 'f', 'v', 'm') AND att.attnum > 0 AND NOT att.attisdropped
-- constraints of tables
UNION ALL
SELECT 'constraint ' || t.q || '.' || quote_ident(con.conname), a.k, a.v
FROM tables t JOIN pg_constraint con ON con.conrelid = t.oid,
LATERAL (VALUES ('definition', pg_get_constraintdef(con.oid)),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = con.oid
    AND ds.classoid = 'pg_constraint'::regclass AND ds.objsubid = 0))) a(k, v)
-- constraints of domains
UNION ALL
SELECT 'constraint ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname) || '.'
  || quote_ident(con.conname), a.k, a.v
FROM pg_constraint con JOIN pg_type t ON t.oid = con.contypid
JOIN pg_namespace n ON n.oid = t.typnamespace,
LATERAL (VALUES ('definition', pg_get_constraintdef(con.oid)), ('on', 'domain'),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = con.oid
    AND ds.classoid = 'pg_constraint'::regclass AND ds.objsubid = 0))) a(k, v)
WHERE {ns} AND {type_not_ext}
-- indexes (not those backing a constraint: the constraint stands for them)
UNION ALL
SELECT 'index ' || r.q, a.k, a.v
FROM rels r JOIN pg_index i ON i.indexrelid = r.oid,
LATERAL (VALUES ('definition', pg_get_indexdef(r.oid)),
  ('valid', CASE WHEN NOT i.indisvalid THEN 'false' END),
  ('clustered', CASE WHEN i.indisclustered THEN 'true' END),
  ('replica_identity', CASE WHEN i.indisreplident THEN 'true' END),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = r.oid
    AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = 0))) a(k, v)
WHERE r.relkind IN ('i', 'I') AND NOT EXISTS (SELECT 1 FROM pg_constraint con
  WHERE con.conindid = r.oid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
-- sequences
UNION ALL
SELECT 'sequence ' || r.q, a.k, a.v
FROM rels r JOIN pg_sequence s ON s.seqrelid = r.oid,
LATERAL (VALUES ('type', format_type(s.seqtypid, NULL)), ('start', s.seqstart::text),
  ('increment', s.seqincrement::text), ('min', s.seqmin::text), ('max', s.seqmax::text),
  ('cache', s.seqcache::text), ('cycle', CASE WHEN s.seqcycle THEN 'true' ELSE 'false' END),
  ('persistence', CASE r.relpersistence WHEN 'u' THEN 'unlogged' END),
  ('owned_by', (SELECT quote_ident(dn.nspname) || '.' || quote_ident(dc.relname) || '.'
      || quote_ident(da.attname)
    FROM pg_depend d JOIN pg_class dc ON dc.oid = d.refobjid
    JOIN pg_namespace dn ON dn.oid = dc.relnamespace
    JOIN pg_attribute da ON da.attrelid = d.refobjid AND da.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid
      AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
    LIMIT 1)),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = r.oid
    AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = 0))) a(k, v)
WHERE r.relkind = 'S'
-- views and materialized views
UNION ALL
SELECT CASE r.relkind WHEN 'v' THEN 'view ' ELSE 'materialized view ' END || r.q, a.k, a.v
FROM rels r, LATERAL (VALUES ('definition', pg_get_viewdef(r.oid)),
  ('options', (SELECT string_agg(o, ', ' ORDER BY o) FROM unnest(r.reloptions) o)),
  ('populated', CASE WHEN r.relkind = 'm' THEN r.relispopulated::text END),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = r.oid
    AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = 0))) a(k, v)
WHERE r.relkind IN ('v', 'm')
-- rules (other than the ones that make views)
UNION ALL
SELECT 'rule ' || r.q || '.' || quote_ident(ru.rulename), a.k, a.v
FROM rels r JOIN pg_rewrite ru ON ru.ev_class = r.oid,
LATERAL (VALUES ('definition', pg_get_ruledef(ru.oid)),
  ('enabled', CASE ru.ev_enabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'
    WHEN 'A' THEN 'always' END),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = ru.oid
    AND ds.classoid = 'pg_rewrite'::regclass AND ds.objsubid = 0))) a(k, v)
WHERE ru.rulename <> '_RETURN'
-- functions, procedures, window functions
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' ELSE 'function ' END
  || quote_ident(n.nspname) || '.' || quote_ident(p.proname)
  || '(' || pg_get_function_identity_arguments(p.oid) || ')', a.k, a.v
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
LATERAL (VALUES ('definition', pg_get_functiondef(p.oid)),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = p.oid
    AND ds.classoid = 'pg_proc'::regclass AND ds.objsubid = 0))) a(k, v)
WHERE {ns} AND {proc_not_ext} AND p.prokind IN ('f', 'p', 'w')
  AND p.oid IS DISTINCT FROM to_regprocedure({digest_fn})
  -- not the constructors a range type makes for itself
  AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_proc'::regclass
    AND x.objid = p.oid AND x.deptype = 'i')
-- aggregates (pg_get_functiondef refuses them)
UNION ALL
SELECT 'aggregate ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname)
  || '(' || pg_get_function_identity_arguments(p.oid) || ')', a.k, a.v
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_aggregate ag ON ag.aggfnoid = p.oid,
LATERAL (VALUES ('kind', CASE ag.aggkind WHEN 'n' THEN 'normal' WHEN 'o' THEN 'ordered-set'
    ELSE 'hypothetical-set' END),
  ('sfunc', ag.aggtransfn::regprocedure::text),
  ('stype', format_type(ag.aggtranstype, NULL)),
  ('finalfunc', NULLIF(ag.aggfinalfn, 0)::regprocedure::text),
  ('combinefunc', NULLIF(ag.aggcombinefn, 0)::regprocedure::text),
  ('initcond', ag.agginitval),
  ('returns', format_type(p.prorettype, NULL)),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = p.oid
    AND ds.classoid = 'pg_proc'::regclass AND ds.objsubid = 0))) a(k, v)
WHERE {ns} AND {proc_not_ext} AND p.prokind = 'a'
-- triggers
UNION ALL
SELECT 'trigger ' || r.q || '.' || quote_ident(tg.tgname), a.k, a.v
FROM rels r JOIN pg_trigger tg ON tg.tgrelid = r.oid,
LATERAL (VALUES ('definition', pg_get_triggerdef(tg.oid)),
  ('enabled', CASE tg.tgenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'
    WHEN 'A' THEN 'always' END),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = tg.oid
    AND ds.classoid = 'pg_trigger'::regclass AND ds.objsubid = 0))) a(k, v)
WHERE NOT tg.tgisinternal
-- event triggers
UNION ALL
SELECT 'event trigger ' || quote_ident(e.evtname), a.k, a.v
FROM pg_event_trigger e, LATERAL (VALUES ('event', e.evtevent),
  ('function', e.evtfoid::regprocedure::text),
  ('tags', array_to_string(e.evttags, ', ')),
  ('enabled', CASE e.evtenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'
    WHEN 'A' THEN 'always' END),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = e.oid
    AND ds.classoid = 'pg_event_trigger'::regclass AND ds.objsubid = 0))) a(k, v)
WHERE {evt_not_ext}
-- types: enums, composites, domains, ranges (not array types, not tables' row types)
UNION ALL
SELECT 'type ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname), a.k, a.v
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace,
LATERAL (VALUES
  ('kind', CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'c' THEN 'composite' WHEN 'd' THEN 'domain'
    WHEN 'r' THEN 'range' WHEN 'b' THEN 'base' WHEN 'p' THEN 'pseudo' ELSE t.typtype::text END),
  ('labels', CASE WHEN t.typtype = 'e' THEN (SELECT string_agg(quote_literal(el.enumlabel), ', '
      ORDER BY el.enumsortorder) FROM pg_enum el WHERE el.enumtypid = t.oid) END),
  ('attributes', CASE WHEN t.typtype = 'c' THEN (SELECT string_agg(quote_ident(att.attname)
      || ' ' || format_type(att.atttypid, att.atttypmod), ', ' ORDER BY att.attnum)
    FROM pg_attribute att WHERE att.attrelid = t.typrelid AND att.attnum > 0
      AND NOT att.attisdropped) END),
  ('base', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END),
  ('not_null', CASE WHEN t.typtype = 'd' AND t.typnotnull THEN 'true' END),
  ('default', CASE WHEN t.typtype = 'd' THEN t.typdefault END),
  ('subtype', (SELECT format_type(rg.rngsubtype, NULL) FROM pg_range rg WHERE rg.rngtypid = t.oid)),
  ('collation', CASE WHEN t.typcollation <> 0 AND t.typcollation <> 100 THEN
    (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co
     JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = t.typcollation) END),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = t.oid
    AND ds.classoid = 'pg_type'::regclass AND ds.objsubid = 0))) a(k, v)
WHERE {ns} AND {type_not_ext}
  AND t.typtype IN ('e', 'c', 'd', 'r', 'b', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_type el WHERE el.typarray = t.oid)
  AND (t.typtype <> 'c' OR EXISTS (SELECT 1 FROM pg_class tc WHERE tc.oid = t.typrelid
    AND tc.relkind = 'c'))
-- policies
UNION ALL
SELECT 'policy ' || t.q || '.' || quote_ident(pol.polname), a.k, a.v
FROM tables t JOIN pg_policy pol ON pol.polrelid = t.oid,
LATERAL (VALUES
  ('command', CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
    WHEN 'd' THEN 'DELETE' ELSE 'ALL' END),
  ('permissive', CASE WHEN pol.polpermissive THEN 'true' ELSE 'false' END),
  ('roles', (SELECT string_agg(rn, ', ' ORDER BY rn) FROM (SELECT CASE WHEN ro = 0
      THEN 'public' ELSE quote_ident(pg_get_userbyid(ro)::text) END AS rn
    FROM unnest(pol.polroles) ro) roles)),
  ('using', pg_get_expr(pol.polqual, pol.polrelid)),
  ('with_check', pg_get_expr(pol.polwithcheck, pol.polrelid)),
  ('comment', (SELECT ds.description FROM pg_description ds WHERE ds.objoid = pol.oid
    AND ds.classoid = 'pg_policy'::regclass AND ds.objsubid = 0))) a(k, v)
) s(k, a, v) WHERE s.v IS NOT NULL OR s.a = 'comment'"#
    )
}

// ---------------------------------------------------------------------------------------
// Schema drift: a recorded snapshot and the live schema
// ---------------------------------------------------------------------------------------

/// `<schema>."<table>_schema"`: where [`record`] keeps the snapshots (beside the history).
fn recorded_table(names: &Names) -> String {
    format!(
        "{}.{}",
        crate::sql::quote_ident(&names.schema),
        crate::sql::quote_ident(&format!("{}_schema", names.table))
    )
}

/// A snapshot stored by [`record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The schema as it was recorded.
    pub snapshot: Snapshot,
    /// The newest applied version when it was recorded (none on an empty history).
    pub version: Option<i64>,
    /// When, in RFC 3339, UTC, to the millisecond (`2025-08-01T00:00:15.123Z`).
    pub recorded_at: String,
    /// `current_user` of the session that recorded it.
    pub recorded_by: String,
}

/// What [`schema_drift`] found: the recorded snapshot it compared with, and what changed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaDrift {
    /// The newest recorded snapshot.
    pub recorded: Recorded,
    /// What differs from it now, object by object (`missing`: gone since it was recorded,
    /// `unexpected`: appeared since); empty when nothing changed.
    pub differences: Vec<Difference>,
}

/// Errors of [`record`], [`recorded`] and [`schema_drift`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriftError {
    /// A query failed.
    #[error("{context}: {source}")]
    Db {
        /// What was being done, for example `reading the recorded schema`.
        context: &'static str,
        /// The server's (or the connection's) error.
        source: DbError,
    },
    /// The stored snapshot's text could not be read back (written by an incompatible version,
    /// or edited by hand).
    #[error(transparent)]
    Parse(#[from] ParseError),
}

fn db(context: &'static str) -> impl FnOnce(DbError) -> DriftError {
    move |source| DriftError::Db { context, source }
}

/// Reads the schema and stores it (text form) in `<schema>."<table>_schema"`, created if
/// needed, beside the history tables. PostgreSQL compresses the text itself (TOAST), so a
/// large schema costs a few kilobytes. Each call adds a row; [`recorded`] reads the newest.
/// Meant to run right after an `up` (SPEC 7, "schema drift"), with `version` the newest
/// applied one.
pub(crate) async fn record_with<C: Conn>(
    conn: &mut C,
    names: &Names,
    version: Option<i64>,
) -> Result<Snapshot, DriftError> {
    let table = recorded_table(names);
    conn.simple(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (\n\
         id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n\
         recorded_at timestamptz NOT NULL DEFAULT now(),\n\
         recorded_by text NOT NULL DEFAULT current_user,\n\
         version bigint,\n\
         snapshot text NOT NULL)"
    ))
    .await
    .map_err(db("creating the recorded schema table"))?;
    let snapshot = read(conn, names).await.map_err(db("reading the schema"))?;
    let version = version.map_or_else(|| "NULL".to_owned(), |v| v.to_string());
    conn.simple(&format!(
        "INSERT INTO {table} (version, snapshot) VALUES ({version}, {})",
        quote_literal(&snapshot.to_text())
    ))
    .await
    .map_err(db("storing the schema snapshot"))?;
    Ok(snapshot)
}

/// The newest snapshot stored by [`record`], if any (none when nothing was ever recorded).
pub(crate) async fn recorded_with<C: Conn>(
    conn: &mut C,
    names: &Names,
) -> Result<Option<Recorded>, DriftError> {
    let table = quote_literal(&recorded_table(names));
    let exists = conn
        .simple(&format!("SELECT to_regclass({table}) IS NOT NULL"))
        .await
        .map_err(db("looking for the recorded schema table"))?;
    if exists
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .as_deref()
        != Some("t")
    {
        return Ok(None);
    }
    let rows = conn
        .simple(&format!(
            "SELECT snapshot, version, {}, recorded_by FROM {} \
             ORDER BY id DESC LIMIT 1",
            crate::sql::rfc3339("recorded_at"),
            recorded_table(names)
        ))
        .await
        .map_err(db("reading the recorded schema"))?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let mut row = row.into_iter();
    let mut next = || row.next().flatten();
    let text = next().unwrap_or_default();
    let version = next().and_then(|v| v.parse().ok());
    Ok(Some(Recorded {
        snapshot: Snapshot::from_text(&text)?,
        version,
        recorded_at: next().unwrap_or_default(),
        recorded_by: next().unwrap_or_default(),
    }))
}

/// What changed outside migrations: the newest recorded snapshot against the live schema
/// (`None` when nothing was recorded). Differences read as in [`diff`]: `missing` is gone
/// since it was recorded, `unexpected` appeared since.
pub(crate) async fn schema_drift_with<C: Conn>(
    conn: &mut C,
    names: &Names,
) -> Result<Option<SchemaDrift>, DriftError> {
    let Some(recorded) = recorded_with(conn, names).await? else {
        return Ok(None);
    };
    let live = read(conn, names).await.map_err(db("reading the schema"))?;
    let differences = diff(&recorded.snapshot, &live);
    Ok(Some(SchemaDrift {
        recorded,
        differences,
    }))
}

/// Reads the schema of `client`'s database and stores it.
#[cfg(feature = "postgres")]
pub fn record(
    client: &mut postgres::Client,
    names: &Names,
    version: Option<i64>,
) -> Result<Snapshot, DriftError> {
    crate::db::block_on(record_with(&mut SyncConn(client), names, version))
}

/// Sync: the newest recorded snapshot, if any.
#[cfg(feature = "postgres")]
pub fn recorded(
    client: &mut postgres::Client,
    names: &Names,
) -> Result<Option<Recorded>, DriftError> {
    crate::db::block_on(recorded_with(&mut SyncConn(client), names))
}

/// Sync: the recorded snapshot and what changed since, object by object (`None` when nothing
/// was recorded).
#[cfg(feature = "postgres")]
pub fn schema_drift(
    client: &mut postgres::Client,
    names: &Names,
) -> Result<Option<SchemaDrift>, DriftError> {
    crate::db::block_on(schema_drift_with(&mut SyncConn(client), names))
}

/// Async twin of [`record`].
#[cfg(feature = "tokio-postgres")]
pub async fn record_async(
    client: &tokio_postgres::Client,
    names: &Names,
    version: Option<i64>,
) -> Result<Snapshot, DriftError> {
    record_with(&mut AsyncConn(client), names, version).await
}

/// Async twin of [`schema_drift`].
#[cfg(feature = "tokio-postgres")]
pub async fn schema_drift_async(
    client: &tokio_postgres::Client,
    names: &Names,
) -> Result<Option<SchemaDrift>, DriftError> {
    schema_drift_with(&mut AsyncConn(client), names).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        let mut s = Snapshot::new();
        s.insert("table public.users", "kind", "table");
        s.insert("table public.users", COLUMNS, "id, email");
        s.insert("column public.users.email", "type", "text");
        s.insert("column public.users.email", "not_null", "false");
        s.insert("column public.users.id", "type", "integer");
        s.insert(
            "function public.f()",
            "definition",
            "CREATE OR REPLACE FUNCTION public.f()\n RETURNS int\nAS $$ SELECT 1 \\ $$\tx",
        );
        s.insert_object("schema public");
        s.insert("type public.\"we ird\"", "labels", "'a', 'b, c'");
        s.insert("view public.v", "comment", "");
        s
    }

    #[test]
    fn text_form_round_trips() {
        let s = sample();
        let text = s.to_text();
        assert!(text.starts_with(TEXT_HEADER));
        assert_eq!(Snapshot::from_text(&text).unwrap(), s);
        assert!(text.lines().all(|l| !l.contains('\t')));
    }

    #[test]
    fn text_form_errors_name_the_line() {
        let err = Snapshot::from_text("nope").unwrap_err();
        assert_eq!(err.line, 1);
        let err = Snapshot::from_text(&format!("{TEXT_HEADER}\n  type text\n")).unwrap_err();
        assert_eq!(err.line, 2);
        let err = Snapshot::from_text(&format!("{TEXT_HEADER}\nx\n  a b\\q\n")).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
    }

    #[test]
    fn diffs_read_well() {
        let before = sample();
        let mut after = sample();
        after.insert(
            "column public.users.email",
            "type",
            "character varying(255)",
        );
        after.remove("column public.users.id");
        after.insert(
            "index public.ix",
            "definition",
            "CREATE INDEX ix ON public.users (email)",
        );
        after.insert(
            "function public.f()",
            "definition",
            "CREATE OR REPLACE FUNCTION public.f()\n RETURNS bigint\nAS $$ SELECT 1 \\ $$\tx",
        );
        after.insert("table public.users", COLUMNS, "email");
        let lines: Vec<String> = diff(&before, &after)
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "column public.users.email: type text -> character varying(255)",
                "column public.users.id: missing",
                "function public.f(): definition differs at line 2: \"RETURNS int\" -> \"RETURNS bigint\"",
                "index public.ix: unexpected",
            ]
        );
    }

    #[test]
    fn a_long_line_that_differs_late_shows_where() {
        // An index on a long expression, as lemmy's history has: the first 100 characters
        // are the same, so clipping both from the start would print two equal strings.
        let head = format!(
            "CREATE INDEX ix ON public.t USING btree ({}",
            "x".repeat(100)
        );
        let mut a = Snapshot::new();
        a.insert(
            "index public.ix",
            "definition",
            format!("{head}, published DESC)"),
        );
        let mut b = Snapshot::new();
        b.insert(
            "index public.ix",
            "definition",
            format!("{head}, published)"),
        );
        let lines: Vec<String> = diff(&a, &b).iter().map(|d| d.to_string()).collect();
        let tail = "x".repeat(CONTEXT - ", published".len());
        assert_eq!(
            lines,
            [format!(
                "index public.ix: definition differs at line 1: \"…{tail}, published DESC)\" -> \"…{tail}, published)\""
            )]
        );
    }

    #[test]
    fn indentation_of_multi_line_values_is_not_a_difference() {
        let mut a = Snapshot::new();
        a.insert(
            "function f()",
            "definition",
            "AS $$\n    BEGIN\n      RETURN 1;\n    END\n$$",
        );
        let mut b = Snapshot::new();
        b.insert(
            "function f()",
            "definition",
            "AS $$\nBEGIN\n\n  RETURN 1;  \nEND\n$$",
        );
        assert!(diff(&a, &b).is_empty());
        b.insert(
            "function f()",
            "definition",
            "AS $$\nBEGIN\n  RETURN 'a  b';\nEND\n$$",
        );
        assert_eq!(
            diff(&a, &b)[0].to_string(),
            "function f(): definition differs at line 3: \"RETURN 1;\" -> \"RETURN 'a  b';\""
        );
        // Single-line values are compared exactly.
        a.insert("column t.c", "default", "'a'");
        b.insert("column t.c", "default", "'a '");
        assert_eq!(diff(&a, &b).len(), 2);
    }

    #[test]
    fn column_order_is_compared_on_common_columns() {
        let mut a = Snapshot::new();
        a.insert("table t", COLUMNS, "a, b, \"c, d\", e");
        let mut b = Snapshot::new();
        b.insert("table t", COLUMNS, "a, \"c, d\", e, x");
        assert!(diff(&a, &b).is_empty(), "{:?}", diff(&a, &b));
        b.insert("table t", COLUMNS, "a, e, \"c, d\"");
        assert_eq!(
            diff(&a, &b)[0].to_string(),
            "table t: column order a, \"c, d\", e -> a, e, \"c, d\""
        );
    }
}
