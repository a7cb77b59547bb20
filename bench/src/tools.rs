//! Each tool behind one interface: connect, then run "migrate to the newest" on that
//! connection. Every set is loaded before the clock starts (ours with `Migrations::from_dir`,
//! refinery with `load_sql_migrations`, sqlx with `Migrator::new(path)`, diesel from a
//! pre-read source shaped like its `embed_migrations!`), so the figures are the apply path.

use std::time::{Duration, Instant};

use diesel::migration::{
    Migration as DieselMigration, MigrationMetadata, MigrationName, MigrationSource,
    MigrationVersion,
};
use diesel::pg::Pg;
use diesel::Connection as _;
use diesel_migrations::MigrationHarness;
use migrations_core::{Migrations, Migrator};
use sqlx::Connection as _;

use crate::sets::Mig;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tool {
    Ours,
    OursGrouped,
    Refinery,
    Sqlx,
    Diesel,
    /// `BEGIN; <sql>; COMMIT` in one simple query per migration, no bookkeeping.
    Floor,
    /// The floor over the transactional migrations only (what refinery can run).
    FloorTx,
}

impl Tool {
    pub fn label(self) -> &'static str {
        match self {
            Tool::Ours => "ours (migrations-core)",
            Tool::OursGrouped => "ours, grouped (single_transaction)",
            Tool::Refinery => "refinery",
            Tool::Sqlx => "sqlx",
            Tool::Diesel => "diesel_migrations",
            Tool::Floor => "floor (plain postgres::Client)",
            Tool::FloorTx => "floor, transactional ones only",
        }
    }
}

/// A set, loaded by every tool.
pub struct Loaded {
    pub ours: Migrations,
    pub refinery: Vec<refinery::Migration>,
    pub sqlx: sqlx::migrate::Migrator,
    pub diesel: &'static [DieselMig],
    pub floor: Vec<FloorMig>,
    /// How long our `Migrations::from_dir` took (read, parse, hash every file).
    pub ours_load: Duration,
    pub count: usize,
    pub refinery_count: usize,
}

pub struct FloorMig {
    pub sql: String,
    pub no_transaction: bool,
    pub statements: Vec<String>,
}

pub fn load(set: &[Mig], layouts: &crate::sets::Layouts, rt: &tokio::runtime::Runtime) -> Loaded {
    let started = Instant::now();
    let ours = Migrations::from_dir(&layouts.ours).expect("our loader accepts the set");
    let ours_load = started.elapsed();
    assert_eq!(ours.len(), set.len());
    let refinery = refinery::load_sql_migrations(&layouts.refinery).expect("refinery loads");
    let sqlx = rt
        .block_on(sqlx::migrate::Migrator::new(layouts.sqlx.clone()))
        .expect("sqlx loads");
    let diesel: Vec<DieselMig> = set
        .iter()
        .map(|m| DieselMig {
            name: format!("{}_{}", m.spelling, m.name),
            version: m.digits.clone(),
            up: m.up.clone(),
            down: m.down.clone().unwrap_or_default(),
            in_transaction: !m.no_transaction,
        })
        .collect();
    let floor = ours
        .iter()
        .map(|m| FloorMig {
            sql: m.up().sql().to_owned(),
            no_transaction: m.no_transaction(),
            statements: m.up().statements().map(str::to_owned).collect(),
        })
        .collect();
    Loaded {
        count: set.len(),
        refinery_count: refinery.len(),
        ours,
        refinery,
        sqlx,
        diesel: Box::leak(diesel.into_boxed_slice()),
        floor,
        ours_load,
    }
}

/// A connection of the tool's own kind.
pub enum Conn {
    Pg(postgres::Client),
    Sqlx(sqlx::PgConnection),
    Diesel(diesel::PgConnection),
}

pub fn connect(tool: Tool, url: &str, rt: &tokio::runtime::Runtime) -> Conn {
    match tool {
        Tool::Sqlx => Conn::Sqlx(
            rt.block_on(sqlx::PgConnection::connect(&format!(
                "{url}?sslmode=disable"
            )))
            .expect("sqlx connects"),
        ),
        Tool::Diesel => Conn::Diesel(
            diesel::PgConnection::establish(&format!("{url}?sslmode=disable&gssencmode=disable"))
                .expect("diesel connects"),
        ),
        _ => Conn::Pg(postgres::Client::connect(url, postgres::NoTls).expect("postgres connects")),
    }
}

/// Migrates to the newest version on `conn`; returns the wall time of that call and how many
/// migrations it applied.
pub fn migrate(
    tool: Tool,
    conn: &mut Conn,
    set: &Loaded,
    rt: &tokio::runtime::Runtime,
) -> (Duration, usize) {
    let started = Instant::now();
    let applied = match (tool, conn) {
        (Tool::Ours, Conn::Pg(client)) => {
            let report = Migrator::new(&set.ours).run(client).expect("ours runs");
            report.ran.len()
        }
        (Tool::OursGrouped, Conn::Pg(client)) => {
            let report = Migrator::new(&set.ours)
                .single_transaction(true)
                .run(client)
                .expect("ours (grouped) runs");
            report.ran.len()
        }
        (Tool::Refinery, Conn::Pg(client)) => {
            let report = refinery::Runner::new(&set.refinery)
                .set_grouped(false)
                .run(client)
                .expect("refinery runs");
            report.applied_migrations().len()
        }
        (Tool::Sqlx, Conn::Sqlx(conn)) => {
            rt.block_on(set.sqlx.run(&mut *conn)).expect("sqlx runs");
            // sqlx does not say how many it applied; the caller counts the history rows.
            usize::MAX
        }
        (Tool::Diesel, Conn::Diesel(conn)) => conn
            .run_pending_migrations(DieselSource(set.diesel))
            .expect("diesel runs")
            .len(),
        (Tool::Floor | Tool::FloorTx, Conn::Pg(client)) => {
            let mut n = 0;
            for m in &set.floor {
                if m.no_transaction {
                    if tool == Tool::FloorTx {
                        continue;
                    }
                    for s in &m.statements {
                        client.simple_query(s).expect("floor statement");
                    }
                } else {
                    client
                        .simple_query(&format!("BEGIN;\n{}\n;\nCOMMIT;", m.sql))
                        .expect("floor migration");
                }
                n += 1;
            }
            n
        }
        (tool, _) => unreachable!("{tool:?} on the wrong connection"),
    };
    (started.elapsed(), applied)
}

/// Like diesel's `embed_migrations!` output: the files' text in memory.
pub struct DieselMig {
    name: String,
    version: String,
    up: String,
    down: String,
    in_transaction: bool,
}

struct DieselSource(&'static [DieselMig]);

impl MigrationSource<Pg> for DieselSource {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn DieselMigration<Pg>>>> {
        Ok(self
            .0
            .iter()
            .map(|m| Box::new(m) as Box<dyn DieselMigration<Pg>>)
            .collect())
    }
}

impl DieselMigration<Pg> for &'static DieselMig {
    fn run(
        &self,
        conn: &mut dyn diesel::connection::BoxableConnection<Pg>,
    ) -> diesel::migration::Result<()> {
        conn.batch_execute(&self.up)?;
        Ok(())
    }

    fn revert(
        &self,
        conn: &mut dyn diesel::connection::BoxableConnection<Pg>,
    ) -> diesel::migration::Result<()> {
        conn.batch_execute(&self.down)?;
        Ok(())
    }

    fn metadata(&self) -> &dyn MigrationMetadata {
        *self
    }

    fn name(&self) -> &dyn MigrationName {
        *self
    }
}

impl MigrationMetadata for DieselMig {
    fn run_in_transaction(&self) -> bool {
        self.in_transaction
    }
}

impl MigrationName for DieselMig {
    fn version(&self) -> MigrationVersion<'_> {
        MigrationVersion::from(self.version.as_str())
    }
}

impl std::fmt::Display for DieselMig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// A peer's command-line tool, measured as a process beside `migrations up`.
pub struct PeerCli {
    pub program: std::path::PathBuf,
    /// `<program> --version`, for the report.
    pub version: String,
}

/// The crate, binary and features `cargo install` needs for a peer's CLI (PostgreSQL only).
fn cli_crate(tool: Tool) -> (&'static str, &'static str, &'static str) {
    match tool {
        Tool::Sqlx => ("sqlx-cli", "sqlx", "postgres,rustls"),
        Tool::Diesel => ("diesel_cli", "diesel", "postgres"),
        Tool::Refinery => ("refinery_cli", "refinery", "postgresql"),
        other => unreachable!("{other:?} has no peer CLI"),
    }
}

/// The bench-local root peers' CLIs are installed into when absent (`bench/target/peer-clis`).
pub fn peer_root() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/peer-clis"))
}

/// Finds a peer's CLI: the path given on the command line, else the bench-local root, else
/// `PATH`; when none has it, `cargo install`s it into the bench-local root under `nice -n 19`
/// (diesel_cli links libpq: `apt-get install libpq-dev`). `None` when the install failed.
pub fn peer_cli(tool: Tool, given: Option<&std::path::Path>) -> Option<PeerCli> {
    use std::process::Command;
    let (krate, bin, features) = cli_crate(tool);
    let root = peer_root();
    let local = root.join("bin").join(bin);
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(bin))
            .find(|p| p.is_file())
    });
    let program = match given.map(std::path::Path::to_path_buf) {
        Some(p) => p,
        None if local.is_file() => local,
        None => match on_path {
            Some(p) => p,
            None => {
                eprintln!(
                    "{krate} not found: cargo install into {} (niced; a few minutes)",
                    root.display()
                );
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let status = Command::new("nice")
                    .args(["-n", "19"])
                    .arg(cargo)
                    .args(["install", "--locked", "--root"])
                    .arg(&root)
                    .arg("--target-dir")
                    .arg(root.with_file_name("peer-clis-build"))
                    .args([krate, "--no-default-features", "--features", features])
                    .env_remove("RUSTFLAGS")
                    .status();
                if !status.is_ok_and(|s| s.success()) {
                    eprintln!("cargo install {krate} failed: its CLI row is skipped");
                    return None;
                }
                local
            }
        },
    };
    let version = Command::new(&program)
        .arg("--version")
        .output()
        .map(|o| {
            // `sqlx-cli 0.9.0`, `refinery_cli 0.10.0`, or diesel's three lines: the first word
            // that looks like a version.
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let number = text
                .split_whitespace()
                .find(|w| w.starts_with(|c: char| c.is_ascii_digit()) && w.contains('.'))
                .unwrap_or("?")
                .to_owned();
            format!("{krate} {number}")
        })
        .unwrap_or_default();
    Some(PeerCli { program, version })
}
