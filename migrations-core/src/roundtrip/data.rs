//! The data half of the round trip: fill every table with a few generated rows before a
//! migration, read every row back after its up and after its down, and say which values the
//! down did not restore (or the up changed).
//!
//! Written once over [`Conn`] (simple-protocol text rows), like the engine, so the sync and the
//! async check share it.
//!
//! Rows are generated server-side: each value is an SQL expression cast to the column's type
//! (so domains check their constraints, enums and arrays are built by the server), foreign
//! keys pick a row of the referenced table with a scalar subquery (`NULL` while that table is
//! empty: self-references and cycles get `NULL` where the column allows it), and tables are
//! filled parents first. A row the server refuses (a `CHECK`, a unique key, a bad cast: SQLSTATE
//! class 22 or 23) is tried again with other values; a table no value satisfies is reported with
//! the server's last error, never skipped in silence.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::db::{Conn, DbError};
use crate::snapshot::Snapshot;
use crate::sql::{quote_ident, quote_literal, Names};

/// A table that could not be filled before a migration, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfilled {
    /// `schema.table`, quoted as `quote_ident` does.
    pub table: String,
    /// The server's error for the last values tried (or what made the table unfillable).
    pub why: String,
}

impl fmt::Display for Unfilled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "table {} could not be filled: {}", self.table, self.why)
    }
}

/// Values that did not survive a step: after the down (data loss) or after the up (a lossy up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataChange {
    /// `schema.table`.
    pub table: String,
    /// The column whose values differ; `None` when whole rows are missing.
    pub column: Option<String>,
    /// How many rows differ (or are missing).
    pub rows: usize,
    /// How many rows the table had before the step.
    pub of: usize,
    /// One example: the row's key and the value before and after.
    pub example: String,
}

impl fmt::Display for DataChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(
                f,
                "{}.{column}: {} of {} rows differ, e.g. {}",
                self.table, self.rows, self.of, self.example
            ),
            None => write!(
                f,
                "{}: {} of {} rows missing, e.g. {}",
                self.table, self.rows, self.of, self.example
            ),
        }
    }
}

/// One column of a user table, as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    name: String,
    /// The name as `quote_ident` writes it (as snapshots name the column).
    quoted: String,
    /// `format_type` of the column (typmod included).
    ty: String,
    not_null: bool,
    /// Filled by the server: identity, generated, or a `nextval` default.
    automatic: bool,
    /// The base type (domains followed): its `format_type`, category and `typname`.
    base: String,
    category: String,
    typname: String,
    /// For an array: the element's base type, category and `typname`.
    elem: Option<(String, String, String)>,
}

/// A foreign key: these columns reference those of another table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ForeignKey {
    columns: Vec<String>,
    table: String,
    referenced: Vec<String>,
}

/// A user table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    oid: u32,
    /// `"schema"."table"`.
    name: String,
    /// `r` (table) or `p` (partitioned table).
    kind: char,
    /// A partition: filled through its parent.
    partition: bool,
    columns: Vec<Column>,
    primary_key: Vec<String>,
    foreign_keys: Vec<ForeignKey>,
}

/// The user tables of a database, read in one query.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    tables: Vec<Table>,
}

/// Every row of every table, as text (`None` for NULL).
#[derive(Debug, Clone, Default)]
pub(crate) struct Data {
    tables: BTreeMap<String, TableData>,
}

#[derive(Debug, Clone, Default)]
struct TableData {
    oid: u32,
    columns: Vec<(String, String)>,
    primary_key: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

/// Rows read per table at most: the generated ones and whatever the migrations seeded.
const MAX_ROWS: usize = 10_000;

const SEP: char = '\u{1f}';

/// Columns, primary keys and foreign keys of every user table (not the history tables, not
/// the catalogs, not an extension's), in one query.
fn catalog_sql(names: &Names) -> String {
    let schema = quote_literal(&names.schema);
    let history = quote_literal(&names.table);
    let audit = quote_literal(&format!("{}_audit", names.table));
    let schema_table = quote_literal(&format!("{}_schema", names.table));
    // The runner's one-row table of the chain digest (history format 3).
    let meta = quote_literal(&format!("{}_meta", names.table));
    format!(
        "WITH RECURSIVE rels AS ( \
           SELECT c.oid, c.relkind, c.relispartition, \
                  quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relkind IN ('r', 'p') \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
             AND NOT (n.nspname = {schema} \
                      AND c.relname IN ({history}, {audit}, {schema_table}, {meta})) \
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
                             WHERE d.classid = 'pg_catalog.pg_class'::regclass \
                               AND d.objid = c.oid AND d.deptype = 'e') \
         ), base(root, oid, depth) AS ( \
           SELECT t.oid, t.oid, 0 FROM pg_catalog.pg_type t \
           UNION ALL \
           SELECT b.root, t.typbasetype, b.depth + 1 FROM base b \
           JOIN pg_catalog.pg_type t ON t.oid = b.oid \
           WHERE t.typtype = 'd' AND b.depth < 8 \
         ), resolved AS ( \
           SELECT DISTINCT ON (root) root, oid FROM base ORDER BY root, depth DESC \
         ) \
         SELECT 'c', r.oid::text, r.name, r.relkind::text, r.relispartition::text, \
                a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                a.attnotnull::text, \
                (a.attidentity <> '' OR a.attgenerated <> '' \
                 OR COALESCE(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) LIKE 'nextval(%', \
                             false))::text, \
                pg_catalog.format_type(bt.oid, NULL), bt.typcategory::text, bt.typname::text, \
                pg_catalog.format_type(et.oid, NULL), et.typcategory::text, et.typname::text, \
                a.attnum, quote_ident(a.attname) \
         FROM rels r \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 \
              AND NOT a.attisdropped \
         LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum \
         JOIN resolved rb ON rb.root = a.atttypid \
         JOIN pg_catalog.pg_type bt ON bt.oid = rb.oid \
         LEFT JOIN resolved re ON re.root = bt.typelem AND bt.typcategory = 'A' \
         LEFT JOIN pg_catalog.pg_type et ON et.oid = re.oid \
         UNION ALL \
         SELECT CASE k.contype WHEN 'p' THEN 'p' ELSE 'f' END, r.oid::text, r.name, '', '', \
                (SELECT string_agg(a.attname::text, E'{SEP}' ORDER BY u.i) \
                   FROM unnest(k.conkey) WITH ORDINALITY u(n, i) \
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n), \
                CASE WHEN k.contype = 'f' THEN \
                  (SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) \
                     FROM pg_catalog.pg_class c \
                     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                    WHERE c.oid = k.confrelid) END, \
                CASE WHEN k.contype = 'f' THEN \
                  (SELECT string_agg(a.attname::text, E'{SEP}' ORDER BY u.i) \
                     FROM unnest(k.confkey) WITH ORDINALITY u(n, i) \
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid \
                          AND a.attnum = u.n) END, \
                NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL \
         FROM rels r JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid \
         WHERE k.contype IN ('p', 'f') AND k.conparentid = 0 \
         ORDER BY 1, 3, 16",
        SEP = SEP
    )
}

fn text(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

fn split(list: &str) -> Vec<String> {
    list.split(SEP).map(str::to_owned).collect()
}

impl Catalog {
    /// Reads the catalog; the query is prepared once per session (`*prepared` false: it is
    /// prepared and the flag set), which spares planning it three times per migration.
    pub(crate) async fn read<C: Conn>(
        conn: &mut C,
        names: &Names,
        prepared: &mut bool,
    ) -> Result<Catalog, DbError> {
        const NAME: &str = "migrations_roundtrip_catalog";
        let sql = if *prepared {
            format!("EXECUTE {NAME}")
        } else {
            format!("PREPARE {NAME} AS {};\nEXECUTE {NAME}", catalog_sql(names))
        };
        let rows = conn.simple(&sql).await?;
        *prepared = true;
        let mut tables: BTreeMap<u32, Table> = BTreeMap::new();
        for row in &rows {
            let oid: u32 = text(row, 1).parse().unwrap_or(0);
            match text(row, 0).as_str() {
                "c" => {
                    let table = tables.entry(oid).or_insert_with(|| Table {
                        oid,
                        name: text(row, 2),
                        kind: text(row, 3).chars().next().unwrap_or('r'),
                        partition: text(row, 4) == "true",
                        columns: Vec::new(),
                        primary_key: Vec::new(),
                        foreign_keys: Vec::new(),
                    });
                    table.columns.push(Column {
                        name: text(row, 5),
                        quoted: text(row, 16),
                        ty: text(row, 6),
                        not_null: text(row, 7) == "true",
                        automatic: text(row, 8) == "true",
                        base: text(row, 9),
                        category: text(row, 10),
                        typname: text(row, 11),
                        elem: row
                            .get(12)
                            .cloned()
                            .flatten()
                            .map(|e| (e, text(row, 13), text(row, 14))),
                    });
                }
                kind => {
                    // Constraints sort after columns ('c' < 'f' < 'p'): the table is known.
                    let Some(table) = tables.get_mut(&oid) else {
                        continue;
                    };
                    let columns = split(&text(row, 5));
                    if kind == "p" {
                        table.primary_key = columns;
                    } else {
                        table.foreign_keys.push(ForeignKey {
                            columns,
                            table: text(row, 6),
                            referenced: split(&text(row, 7)),
                        });
                    }
                }
            }
        }
        let mut tables: Vec<Table> = tables.into_values().collect();
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Catalog { tables })
    }

    /// The tables and columns of this catalog (read before an up) that the up left in place:
    /// a table still there by name, and in it the columns there by name with the same type,
    /// as the schema snapshots taken before (`before`) and after the up (`after`) say. Reading
    /// the rows after the up through it spares a second catalog query per migration.
    pub(crate) fn surviving(&self, before: &Snapshot, after: &Snapshot) -> Catalog {
        let tables = self
            .tables
            .iter()
            .filter(|t| after.contains(&format!("table {}", t.name)))
            .map(|t| {
                let same_type = |c: &&Column| {
                    let key = format!("column {}.{}", t.name, c.quoted);
                    let ty = |s: &Snapshot| s.get(&key).and_then(|a| a.get("type")).cloned();
                    ty(before).is_some() && ty(before) == ty(after)
                };
                Table {
                    columns: t.columns.iter().filter(same_type).cloned().collect(),
                    ..t.clone()
                }
            })
            .collect();
        Catalog { tables }
    }

    /// `TRUNCATE` of every table (empty when there is none).
    pub(crate) fn truncate_sql(&self) -> String {
        let names: Vec<&str> = self
            .tables
            .iter()
            .filter(|t| !t.partition)
            .map(|t| t.name.as_str())
            .collect();
        if names.is_empty() {
            String::new()
        } else {
            format!("TRUNCATE {} CASCADE", names.join(", "))
        }
    }

    /// Tables whose rows are read: every table but a partitioned parent (its partitions hold
    /// the rows).
    fn stored(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter().filter(|t| t.kind == 'r')
    }
}

impl Data {
    /// Every row of every table of `catalog`, in one round trip.
    pub(crate) async fn read<C: Conn>(conn: &mut C, catalog: &Catalog) -> Result<Data, DbError> {
        let mut data = Data::default();
        let mut sql = String::new();
        let tables: Vec<&Table> = catalog.stored().collect();
        for (i, t) in tables.iter().enumerate() {
            let columns: Vec<String> = t.columns.iter().map(|c| quote_ident(&c.name)).collect();
            let select = if columns.is_empty() {
                String::new()
            } else {
                format!(", {}", columns.join(", "))
            };
            sql.push_str(&format!(
                "SELECT {i}{select} FROM {} LIMIT {MAX_ROWS};\n",
                t.name
            ));
            data.tables.insert(
                t.name.clone(),
                TableData {
                    oid: t.oid,
                    columns: t
                        .columns
                        .iter()
                        .map(|c| (c.name.clone(), c.ty.clone()))
                        .collect(),
                    primary_key: t.primary_key.clone(),
                    rows: Vec::new(),
                },
            );
        }
        if sql.is_empty() {
            return Ok(data);
        }
        for mut row in conn.simple(&sql).await? {
            let index: usize = row
                .first()
                .cloned()
                .flatten()
                .and_then(|i| i.parse().ok())
                .unwrap_or(usize::MAX);
            if let Some(t) = tables.get(index) {
                row.remove(0);
                if let Some(d) = data.tables.get_mut(&t.name) {
                    d.rows.push(row);
                }
            }
        }
        Ok(data)
    }

    /// The OIDs of the tables read (for the lock report: the tables that existed before).
    pub(crate) fn oids(&self) -> BTreeMap<u32, String> {
        self.tables
            .iter()
            .map(|(name, t)| (t.oid, name.clone()))
            .collect()
    }

    fn is_empty(&self, table: &str) -> bool {
        self.tables.get(table).is_none_or(|t| t.rows.is_empty())
    }
}

/// Fills every empty table of `catalog` (partitioned tables through their parent) with up to
/// `rows` generated rows, parents before children. Returns the tables that could not be
/// filled, with why, and whether any row was inserted.
pub(crate) async fn fill<C: Conn>(
    conn: &mut C,
    catalog: &Catalog,
    data: &Data,
    rows: usize,
) -> Result<(Vec<Unfilled>, bool), DbError> {
    let mut unfilled = Vec::new();
    let mut inserted = false;
    for table in fill_order(catalog) {
        if table.partition || rows == 0 {
            continue;
        }
        if table.kind == 'p' {
            // Its rows were read from its partitions, which no catalog link here names: ask.
            let any = conn
                .simple(&format!("SELECT 1 FROM {} LIMIT 1", table.name))
                .await?;
            if !any.is_empty() {
                continue;
            }
        } else if !data.is_empty(&table.name) {
            continue;
        }
        let mut last_error: Option<DbError> = None;
        let mut count = 0;
        for row in 1..=rows {
            let mut done = false;
            for variant in 0..VARIANTS {
                let Some(sql) = insert_sql(table, row, variant) else {
                    continue;
                };
                match conn.simple(&sql).await {
                    Ok(_) => {
                        done = true;
                        break;
                    }
                    // Data exceptions (22), integrity violations (23) and a trigger's own
                    // exception (P0001): other values may do. Anything else is not about the
                    // values.
                    Err(e)
                        if e.code.as_deref().is_some_and(|c| {
                            c.starts_with("22") || c.starts_with("23") || c == "P0001"
                        }) =>
                    {
                        last_error = Some(e)
                    }
                    Err(e) if e.is_connection_error() => return Err(e),
                    Err(e) => {
                        last_error = Some(e);
                        break;
                    }
                }
            }
            if done {
                count += 1;
            } else if row == 1 {
                break;
            }
        }
        inserted |= count > 0;
        if count == 0 {
            unfilled.push(Unfilled {
                table: table.name.clone(),
                why: last_error
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "no column can be given a value".to_owned()),
            });
        }
    }
    Ok((unfilled, inserted))
}

/// Parents before children (a foreign key's referenced table first); a cycle is broken in name
/// order (its foreign keys get `NULL` where allowed, while the referenced table is empty).
fn fill_order(catalog: &Catalog) -> Vec<&Table> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::new();
    let mut left: Vec<&Table> = catalog.tables.iter().collect();
    while !left.is_empty() {
        let ready = left.iter().position(|t| {
            t.foreign_keys.iter().all(|fk| {
                fk.table == t.name
                    || done.contains(fk.table.as_str())
                    || !catalog.tables.iter().any(|o| o.name == fk.table)
            })
        });
        let next = left.remove(ready.unwrap_or(0));
        done.insert(&next.name);
        order.push(next);
    }
    order
}

/// How many shapes of numbers (and, separately, of strings) a value is tried with.
const SHAPES: usize = 5;

/// How many sets of values a row is tried with: every shape of numbers with every shape of
/// strings, so that a `CHECK` on a number and another on a string are met together.
const VARIANTS: usize = SHAPES * SHAPES;

/// `INSERT INTO t (...) VALUES (...)` for row `row` (1-based) with the `variant`-th choice of
/// values; `None` when the variant has nothing new to try.
fn insert_sql(table: &Table, row: usize, variant: usize) -> Option<String> {
    let mut columns = Vec::new();
    let mut values = Vec::new();
    let fk_of: HashMap<&str, (&ForeignKey, usize)> = table
        .foreign_keys
        .iter()
        .flat_map(|fk| {
            fk.columns
                .iter()
                .enumerate()
                .map(move |(i, c)| (c.as_str(), (fk, i)))
        })
        .collect();
    for column in &table.columns {
        if column.automatic {
            continue;
        }
        let value = if let Some((fk, i)) = fk_of.get(column.name.as_str()) {
            // The last variant gives NULL to a nullable reference (a cycle, an empty parent).
            if variant == VARIANTS - 1 && !column.not_null {
                "NULL".to_owned()
            } else {
                let order: Vec<String> = fk.referenced.iter().map(|c| quote_ident(c)).collect();
                format!(
                    "(SELECT {col} FROM {t} ORDER BY {order} OFFSET ({row} - 1) % \
                     greatest(1, (SELECT count(*) FROM {t})) LIMIT 1)",
                    col = quote_ident(&fk.referenced[*i]),
                    t = fk.table,
                    order = order.join(", ")
                )
            }
        } else {
            match value(column, row, variant) {
                Some(v) => format!("({v})::{}", column.ty),
                None if !column.not_null => "NULL".to_owned(),
                // Let the default (if any) or the NOT NULL error speak.
                None => continue,
            }
        };
        columns.push(quote_ident(&column.name));
        values.push(value);
    }
    if columns.is_empty() {
        return (variant == 0).then(|| format!("INSERT INTO {} DEFAULT VALUES", table.name));
    }
    Some(format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table.name,
        columns.join(", "),
        values.join(", ")
    ))
}

/// An SQL expression of the column's base type for `row` and `variant` (cast by the caller).
fn value(column: &Column, row: usize, variant: usize) -> Option<String> {
    scalar(
        &column.base,
        &column.category,
        &column.typname,
        row,
        variant,
    )
    .or_else(|| {
        let (base, category, typname) = column.elem.as_ref()?;
        let elem = scalar(base, category, typname, row, variant)?;
        Some(format!("ARRAY[({elem})::{base}]"))
    })
}

fn scalar(base: &str, category: &str, typname: &str, row: usize, variant: usize) -> Option<String> {
    // Each variant moves the numbers elsewhere (a CHECK may want them positive, large, small or
    // zero), and strings to another shape (a CHECK may want digits, an e-mail, a length).
    let (number_shape, string_shape) = (variant % SHAPES, variant / SHAPES);
    let n: i64 = match number_shape {
        0 => row as i64,
        1 => 100 + row as i64,
        2 => -(row as i64),
        3 => row as i64 * 1000,
        _ => 0,
    };
    let s = match string_shape {
        0 => format!("v{row}"),
        1 => format!("{row}"),
        2 => format!("user{row}@example.com"),
        3 => format!("{}{row}", "x".repeat(40)),
        _ => format!("V{row}"),
    };
    let lit = quote_literal;
    Some(match (category, typname) {
        ("B", _) => format!("{}", row % 2 == 0),
        ("N", _) => format!("{n}"),
        ("S", _) => lit(&s),
        ("D", "date") => format!("date '2024-01-01' + {n}"),
        ("D", "time" | "timetz") => format!("time '00:00' + {n} * interval '1 minute'"),
        ("D", _) => format!("timestamp '2024-01-01 00:00' + {n} * interval '1 hour'"),
        ("T", _) => format!("{n} * interval '1 minute'"),
        ("U", "uuid") => format!("md5('{row}:{variant}')::uuid"),
        ("U", "json" | "jsonb") => lit(&format!("{{\"n\": {n}, \"s\": \"{s}\"}}")),
        ("U", "bytea") => format!("decode('{:02x}', 'hex')", row % 256),
        ("U", "xml") => lit(&format!("<v>{row}</v>")),
        ("U", "tsvector") => lit(&s),
        ("I", "cidr") => lit(&format!("10.{}.0.0/16", row % 256)),
        ("I", _) => lit(&format!("10.0.{}.{}", variant, row % 256)),
        ("U", "macaddr") => lit(&format!("08:00:2b:01:{variant:02x}:{:02x}", row % 256)),
        ("E", _) => format!(
            "(enum_range(NULL::{base}))[1 + ({row} + {variant} - 1) % \
             array_length(enum_range(NULL::{base}), 1)]"
        ),
        ("R", _) => lit("empty"),
        ("V", _) => format!("B'{}'", row % 2),
        ("G", "point") => format!("point({n}, {n})"),
        ("A", _) => return None,
        // Any other type (an extension's, say citext's input is text): its text input.
        _ if string_shape < 2 => lit(&s),
        _ => return None,
    })
}

/// What a step did to the rows that were there before it: each column of `before` still in
/// `after` (same name; with `same_type`, also the same type) compared row by row, by primary
/// key where the table has one both times, else as whole rows.
pub(crate) fn compare(before: &Data, after: &Data, same_type: bool) -> Vec<DataChange> {
    let mut changes = Vec::new();
    for (name, b) in &before.tables {
        let Some(a) = after.tables.get(name) else {
            // A table gone: the schema comparison reports it, in one line.
            continue;
        };
        if b.rows.is_empty() {
            continue;
        }
        // The columns both have (by name, and by type when asked), in `before`'s order.
        let common: Vec<(usize, usize, &str)> = b
            .columns
            .iter()
            .enumerate()
            .filter_map(|(bi, (column, ty))| {
                let ai = a
                    .columns
                    .iter()
                    .position(|(c, t)| c == column && (!same_type || t == ty))?;
                Some((bi, ai, column.as_str()))
            })
            .collect();
        if common.is_empty() {
            continue;
        }
        let key: Option<Vec<(usize, usize)>> = (!b.primary_key.is_empty()
            && b.primary_key == a.primary_key)
            .then(|| {
                b.primary_key
                    .iter()
                    .map(|k| {
                        common
                            .iter()
                            .find(|(_, _, c)| c == k)
                            .map(|(bi, ai, _)| (*bi, *ai))
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .flatten();
        let show = |v: &Option<String>| match v {
            Some(v) => quote_literal(v).trim_start_matches('E').to_owned(),
            None => "NULL".to_owned(),
        };
        match key {
            Some(key) => {
                let index: HashMap<Vec<&Option<String>>, &Vec<Option<String>>> = a
                    .rows
                    .iter()
                    .map(|r| (key.iter().map(|(_, ai)| &r[*ai]).collect(), r))
                    .collect();
                let label = |r: &Vec<Option<String>>| {
                    key.iter()
                        .map(|(bi, _)| format!("{}={}", b.columns[*bi].0, show(&r[*bi])))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut missing = (0, String::new());
                let mut per_column: BTreeMap<usize, (usize, String)> = BTreeMap::new();
                for r in &b.rows {
                    let k: Vec<&Option<String>> = key.iter().map(|(bi, _)| &r[*bi]).collect();
                    match index.get(&k) {
                        None => {
                            if missing.0 == 0 {
                                missing.1 = format!("the row {}", label(r));
                            }
                            missing.0 += 1;
                        }
                        Some(after_row) => {
                            for (pos, (bi, ai, column)) in common.iter().enumerate() {
                                if r[*bi] != after_row[*ai] {
                                    let entry = per_column.entry(pos).or_default();
                                    if entry.0 == 0 {
                                        entry.1 = format!(
                                            "{}: {column} {} -> {}",
                                            label(r),
                                            show(&r[*bi]),
                                            show(&after_row[*ai])
                                        );
                                    }
                                    entry.0 += 1;
                                }
                            }
                        }
                    }
                }
                if missing.0 > 0 {
                    changes.push(DataChange {
                        table: name.clone(),
                        column: None,
                        rows: missing.0,
                        of: b.rows.len(),
                        example: missing.1,
                    });
                }
                for (pos, (count, example)) in per_column {
                    changes.push(DataChange {
                        table: name.clone(),
                        column: Some(common[pos].2.to_owned()),
                        rows: count,
                        of: b.rows.len(),
                        example,
                    });
                }
            }
            None => {
                // No key: rows as wholes (over the common columns), as a multiset. A column is
                // named when its own values, as a multiset, changed.
                let project = |r: &Vec<Option<String>>, after: bool| -> Vec<Option<String>> {
                    common
                        .iter()
                        .map(|(bi, ai, _)| r[if after { *ai } else { *bi }].clone())
                        .collect()
                };
                let mut left: HashMap<Vec<Option<String>>, usize> = HashMap::new();
                for r in &a.rows {
                    *left.entry(project(r, true)).or_default() += 1;
                }
                let mut lost = Vec::new();
                for r in &b.rows {
                    let p = project(r, false);
                    match left.get_mut(&p) {
                        Some(n) if *n > 0 => *n -= 1,
                        _ => lost.push(p),
                    }
                }
                if lost.is_empty() {
                    continue;
                }
                let whole = |p: &Vec<Option<String>>| {
                    common
                        .iter()
                        .zip(p)
                        .map(|((_, _, c), v)| format!("{c}={}", show(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut named = Vec::new();
                for (pos, (bi, ai, column)) in common.iter().enumerate() {
                    let mut values: HashMap<&Option<String>, isize> = HashMap::new();
                    for r in &b.rows {
                        *values.entry(&r[*bi]).or_default() += 1;
                    }
                    for r in &a.rows {
                        *values.entry(&r[*ai]).or_default() -= 1;
                    }
                    let differing = values
                        .values()
                        .filter(|n| **n > 0)
                        .map(|n| *n as usize)
                        .sum();
                    if differing > 0 {
                        let example = lost
                            .iter()
                            .find(|p| values.get(&p[pos]).is_some_and(|n| *n > 0))
                            .unwrap_or(&lost[0]);
                        named.push(DataChange {
                            table: name.clone(),
                            column: Some(column.to_string()),
                            rows: differing,
                            of: b.rows.len(),
                            example: format!("the row ({})", whole(example)),
                        });
                    }
                }
                // Every column changed: say rows are missing, not each column.
                if !named.is_empty() && named.len() < common.len() {
                    changes.extend(named);
                } else {
                    changes.push(DataChange {
                        table: name.clone(),
                        column: None,
                        rows: lost.len(),
                        of: b.rows.len(),
                        example: format!("the row ({})", whole(&lost[0])),
                    });
                }
            }
        }
    }
    changes
}

/// The strongest lock a step took on a table that existed before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedLock {
    /// `schema.table`.
    pub table: String,
    /// PostgreSQL's name of the mode, e.g. `AccessExclusiveLock`.
    pub mode: String,
    /// How long the step held it: the step's whole transaction (a lock is released at commit).
    pub held: std::time::Duration,
}

impl ObservedLock {
    /// The mode as the documentation spells it: `ACCESS EXCLUSIVE`.
    pub fn mode_name(&self) -> String {
        lock_mode_name(&self.mode)
    }
}

impl fmt::Display for ObservedLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} for {} ms",
            self.mode_name(),
            self.table,
            self.held.as_millis()
        )
    }
}

/// The table lock modes, weakest first, as `pg_locks.mode` names them.
pub(crate) const LOCK_MODES: [&str; 8] = [
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

/// `AccessExclusiveLock` -> `ACCESS EXCLUSIVE`.
pub(crate) fn lock_mode_name(mode: &str) -> String {
    let core = mode.strip_suffix("Lock").unwrap_or(mode);
    let mut out = String::new();
    for (i, c) in core.char_indices() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Reads `ACCESS EXCLUSIVE`, `access-exclusive`, `AccessExclusiveLock`...: the index in
/// [`LOCK_MODES`].
pub(crate) fn parse_lock_mode(text: &str) -> Option<usize> {
    let wanted: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    let wanted = wanted.strip_suffix("lock").unwrap_or(&wanted).to_owned();
    LOCK_MODES.iter().position(|m| {
        m.strip_suffix("Lock")
            .unwrap_or(m)
            .eq_ignore_ascii_case(&wanted)
    })
}

/// The strongest mode seen on each table of `before` (by oid), with how long it was held;
/// `seen` is `(relation oid, index in [`LOCK_MODES`], held)`. Tables created by the step
/// itself are not in `before`, so they are left out.
pub(crate) fn strongest_locks(
    seen: impl IntoIterator<Item = (u32, usize, std::time::Duration)>,
    before: &BTreeMap<u32, String>,
) -> Vec<ObservedLock> {
    let mut strongest: BTreeMap<&str, (usize, std::time::Duration)> = BTreeMap::new();
    for (oid, mode, held) in seen {
        let Some(table) = before.get(&oid) else {
            continue;
        };
        let slot = strongest.entry(table.as_str()).or_insert((mode, held));
        if mode > slot.0 {
            *slot = (mode, held);
        }
    }
    strongest
        .into_iter()
        .map(|(table, (mode, held))| ObservedLock {
            table: table.to_owned(),
            mode: LOCK_MODES[mode].to_owned(),
            held,
        })
        .collect()
}

/// The locks a transactional step held just before its `COMMIT` (read by the engine in the
/// step's own batch: ground truth from the server), on the tables of `before`.
pub(crate) fn step_locks(
    step: &crate::engine::HeldLocks,
    before: &BTreeMap<u32, String>,
) -> Vec<ObservedLock> {
    let seen = step.locks.iter().filter_map(|(oid, mode)| {
        let mode = LOCK_MODES.iter().position(|m| m == mode)?;
        Some((*oid, mode, step.held))
    });
    strongest_locks(seen, before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_modes_read_and_print() {
        assert_eq!(lock_mode_name("AccessExclusiveLock"), "ACCESS EXCLUSIVE");
        assert_eq!(
            lock_mode_name("ShareUpdateExclusiveLock"),
            "SHARE UPDATE EXCLUSIVE"
        );
        assert_eq!(parse_lock_mode("ACCESS EXCLUSIVE"), Some(7));
        assert_eq!(parse_lock_mode("share-update-exclusive"), Some(3));
        assert_eq!(parse_lock_mode("RowExclusiveLock"), Some(2));
        assert_eq!(parse_lock_mode("exclusive"), Some(6));
        assert_eq!(parse_lock_mode("share"), Some(4));
        assert_eq!(parse_lock_mode("strong"), None);
    }
}
