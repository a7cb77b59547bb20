//! The migration sets (1000 generated ones, the crates.io corpus) and their layout for each
//! tool, written to a temporary directory at run time.

use std::fs;
use std::path::{Path, PathBuf};

/// One migration, tool-neutral.
#[derive(Clone, Debug)]
pub struct Mig {
    /// The version as written in the file name (diesel's dashes kept).
    pub spelling: String,
    /// Dashes dropped.
    pub digits: String,
    pub name: String,
    pub up: String,
    pub down: Option<String>,
    pub no_transaction: bool,
}

/// 1000 small migrations, a realistic mix: tables, columns, indexes, foreign keys, rows,
/// updates, views and functions, in groups of ten around two tables.
pub fn generated(count: usize) -> Vec<Mig> {
    (0..count)
        .map(|i| {
            let k = i / 10;
            let t = format!("t{k}");
            let items = format!("t{k}_items");
            let (name, up, down) = match i % 10 {
                0 => (
                    format!("create_{t}"),
                    format!(
                        "-- A table.\nCREATE TABLE {t} (\n    id bigserial PRIMARY KEY,\n    name text NOT NULL,\n    created_at timestamptz NOT NULL DEFAULT now()\n);\n"
                    ),
                    format!("DROP TABLE {t};\n"),
                ),
                1 => (
                    format!("add_{t}_amount"),
                    format!("ALTER TABLE {t} ADD COLUMN amount integer;\n"),
                    format!("ALTER TABLE {t} DROP COLUMN amount;\n"),
                ),
                2 => (
                    format!("index_{t}_amount"),
                    format!("CREATE INDEX {t}_amount_idx ON {t} (amount);\n"),
                    format!("DROP INDEX {t}_amount_idx;\n"),
                ),
                3 => (
                    format!("seed_{t}"),
                    format!(
                        "INSERT INTO {t} (name, amount) VALUES\n    ('alpha', 1),\n    ('beta', 2),\n    ('gamma', 3);\n"
                    ),
                    format!("DELETE FROM {t} WHERE name IN ('alpha', 'beta', 'gamma');\n"),
                ),
                4 => (
                    format!("add_{t}_status"),
                    format!(
                        "ALTER TABLE {t} ADD COLUMN status text NOT NULL DEFAULT 'new';\nCOMMENT ON COLUMN {t}.status IS 'new, active or closed';\n"
                    ),
                    format!("ALTER TABLE {t} DROP COLUMN status;\n"),
                ),
                5 => (
                    format!("create_{items}"),
                    format!(
                        "CREATE TABLE {items} (\n    id bigserial PRIMARY KEY,\n    parent_id bigint NOT NULL REFERENCES {t} (id),\n    qty integer NOT NULL CHECK (qty > 0)\n);\nCREATE INDEX {items}_parent_idx ON {items} (parent_id);\n"
                    ),
                    format!("DROP TABLE {items};\n"),
                ),
                6 => (
                    format!("seed_{items}"),
                    format!("INSERT INTO {items} (parent_id, qty) SELECT id, 1 FROM {t};\n"),
                    format!("DELETE FROM {items};\n"),
                ),
                7 => (
                    format!("view_{t}_totals"),
                    format!(
                        "CREATE VIEW {t}_totals AS\n    SELECT p.id, p.name, sum(i.qty) AS qty\n    FROM {t} p JOIN {items} i ON i.parent_id = p.id\n    GROUP BY p.id, p.name;\n"
                    ),
                    format!("DROP VIEW {t}_totals;\n"),
                ),
                8 => (
                    format!("activate_{t}"),
                    format!(
                        "UPDATE {t} SET status = 'active' WHERE amount > 1;\nALTER TABLE {t} ALTER COLUMN status SET DEFAULT 'active';\n"
                    ),
                    format!("ALTER TABLE {t} ALTER COLUMN status SET DEFAULT 'new';\n"),
                ),
                _ => (
                    format!("function_{t}_count"),
                    format!(
                        "CREATE FUNCTION {t}_count() RETURNS bigint\n    LANGUAGE sql STABLE\n    AS $$ SELECT count(*) FROM {t} $$;\n"
                    ),
                    format!("DROP FUNCTION {t}_count();\n"),
                ),
            };
            // Zero-padded to the set's width: diesel orders versions as text.
            let spelling = format!("{:0width$}", i + 1, width = count.to_string().len().max(4));
            Mig {
                digits: spelling.clone(),
                spelling,
                name,
                up,
                down: Some(down),
                no_transaction: false,
            }
        })
        .collect()
}

/// The crates.io corpus in diesel's order, read by our loader (diesel layout; the stray
/// `data_oauth_github.sql` and the README are not copied).
pub fn corpus(src: &Path, scratch: &Path) -> Vec<Mig> {
    let copy = scratch.join("corpus-copy");
    fs::create_dir_all(&copy).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let to = copy.join(entry.file_name());
            fs::create_dir_all(&to).unwrap();
            for f in fs::read_dir(entry.path()).unwrap() {
                let f = f.unwrap();
                fs::copy(f.path(), to.join(f.file_name())).unwrap();
            }
        }
    }
    let set = migrations_core::Migrations::from_dir(&copy).expect("the corpus loads");
    let spellings: std::collections::HashMap<String, String> = fs::read_dir(&copy)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let spelling = name.split('_').next().unwrap().to_owned();
            (spelling.replace('-', ""), spelling)
        })
        .collect();
    set.iter()
        .map(|m| Mig {
            spelling: spellings[m.version_digits()].clone(),
            digits: m.version_digits().to_owned(),
            name: m.name().to_owned(),
            up: m.up().sql().to_owned(),
            down: m.down().map(|d| d.sql().to_owned()),
            no_transaction: m.no_transaction(),
        })
        .collect()
}

/// Where each tool's copy of a set lives.
pub struct Layouts {
    pub ours: PathBuf,
    pub refinery: PathBuf,
    pub sqlx: PathBuf,
    pub diesel: PathBuf,
}

/// Writes the set in each tool's layout. refinery cannot run a migration outside a
/// transaction, so the no-transaction ones are left out of its copy (returned).
pub fn write_layouts(set: &[Mig], root: &Path) -> (Layouts, Vec<String>) {
    let l = Layouts {
        ours: root.join("ours"),
        refinery: root.join("refinery"),
        sqlx: root.join("sqlx"),
        diesel: root.join("diesel"),
    };
    for d in [&l.ours, &l.refinery, &l.sqlx, &l.diesel] {
        let _ = fs::remove_dir_all(d);
        fs::create_dir_all(d).unwrap();
    }
    let mut skipped = Vec::new();
    for (index, m) in set.iter().enumerate() {
        // Ours: the flat layout, or diesel's folders when the set came from diesel (timestamps).
        let word: String = m
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if m.digits.len() >= 14 {
            let folder = l.ours.join(format!("{}_{}", m.spelling, m.name));
            fs::create_dir_all(&folder).unwrap();
            fs::write(folder.join("up.sql"), &m.up).unwrap();
            if let Some(down) = &m.down {
                fs::write(folder.join("down.sql"), down).unwrap();
            }
            if m.no_transaction {
                fs::write(folder.join("metadata.toml"), "run_in_transaction = false\n").unwrap();
            }
        } else {
            let base = format!("{}_{}", m.spelling, m.name);
            let header = if m.no_transaction {
                "-- migrations:no-transaction\n"
            } else {
                ""
            };
            fs::write(
                l.ours.join(format!("{base}.up.sql")),
                format!("{header}{}", m.up),
            )
            .unwrap();
            if let Some(down) = &m.down {
                fs::write(l.ours.join(format!("{base}.down.sql")), down).unwrap();
            }
        }
        // diesel: its folders, with metadata.toml for no-transaction.
        let folder = l.diesel.join(format!("{}_{}", m.spelling, m.name));
        fs::create_dir_all(&folder).unwrap();
        fs::write(folder.join("up.sql"), &m.up).unwrap();
        fs::write(folder.join("down.sql"), m.down.as_deref().unwrap_or("")).unwrap();
        if m.no_transaction {
            fs::write(folder.join("metadata.toml"), "run_in_transaction = false\n").unwrap();
        }
        // sqlx: <i64>_<description>.up.sql / .down.sql; `-- no-transaction` on the first line.
        // Versions renumbered 1.. in order: diesel's spellings (14 digits, or 18 with `-0000`)
        // have no order-preserving numeric form that keeps them apart (`2026-05-27-120000` and
        // `2026-05-27-120000-0000` are both in the corpus).
        let base = format!("{}_{}", index + 1, word);
        let header = if m.no_transaction {
            "-- no-transaction\n"
        } else {
            ""
        };
        fs::write(
            l.sqlx.join(format!("{base}.up.sql")),
            format!("{header}{}", m.up),
        )
        .unwrap();
        fs::write(
            l.sqlx.join(format!("{base}.down.sql")),
            m.down.as_deref().unwrap_or("SELECT 1;\n"),
        )
        .unwrap();
        // refinery: V<i32>__<word>.sql, versions renumbered 1.. in order (its versions are
        // i32, too small for timestamps); no way to run outside a transaction.
        if m.no_transaction {
            skipped.push(format!("{}_{}", m.spelling, m.name));
        } else {
            fs::write(
                l.refinery.join(format!("V{}__{}.sql", index + 1, word)),
                &m.up,
            )
            .unwrap();
        }
    }
    (l, skipped)
}
