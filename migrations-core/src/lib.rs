#![warn(missing_docs)]
//! PostgreSQL migrations for Rust services.
//!
//! `embed_migrations!()` reads the crate's `migrations/` directory at build time and expands to
//! a constant [`Migrations`]: the SQL of every up and down file, its SHA-256 checksum and its
//! transaction mode. Nothing is read, parsed or hashed at run time.
//!
//! ```
//! use migrations_core::{embed_migrations, Migrations};
//!
//! static MIGRATIONS: Migrations = embed_migrations!("tests/fixtures/doc");
//!
//! for m in MIGRATIONS.iter() {
//!     println!("{} {} {} {}", m.version(), m.name(), m.checksum(), m.no_transaction());
//! }
//! ```
//!
//! Editing a migration file rebuilds the crate. Cargo cannot tell a proc macro that a *new* file
//! appeared, so add a one-line `build.rs` to the crate (see [`build`]).

// A run returns at most one error, so its size costs nothing; boxing would only add noise.
#![allow(clippy::result_large_err)]
// Without a driver the crate offers the types, the planner and the offline script; the engine
// it cannot drive is compiled all the same, so that each driver only adds a few lines.
#![cfg_attr(
    not(any(feature = "postgres", feature = "tokio-postgres")),
    allow(dead_code, unused_imports)
)]

// Lets the macro's generated paths (`::migrations_core::...`) resolve inside this crate's own
// tests and doc tests too.
extern crate self as migrations_core;

pub mod build;
mod code;
#[cfg(feature = "connect")]
pub mod database;
mod db;
#[cfg(feature = "sqlx")]
mod db_sqlx;
mod embedded;
mod engine;
mod error;
#[cfg(feature = "connect")]
pub mod fleet;
mod history;
mod migrator;
mod offline;
pub mod plan;
mod ready;
mod repeatable;
mod report;
#[cfg(feature = "postgres")]
pub mod roundtrip;
pub mod snapshot;
mod sql;
#[cfg(feature = "connect")]
pub mod watchdog;

pub use sql::Names;

pub use code::{
    is_code_checksum, BoxError, CodeFn, CodeFuture, CodeMigration, CodeMigrationError, CodeTx,
    CODE_PREFIX,
};
pub use db::{DbError, DbErrorKind};
pub use embedded::{Migration, Migrations, Refusal, RunDefaults, Script};
pub use engine::Tool;
pub use error::{Error, Location};
pub use history::{AppliedMigration, AuditEvent, State, StoredDown};
pub use migrator::{
    Migrator, DEFAULT_LOCK_TIMEOUT, DEFAULT_LOCK_WAIT, DEFAULT_SCHEMA, DEFAULT_STATEMENT_TIMEOUT,
    DEFAULT_TABLE,
};
pub use offline::{offline_script, offline_script_with, OfflineError, OfflineRange};
pub use plan::{
    DownTarget, Drift, DriftKind, DriftPolicy, Operation, Phase, Plan, PlanOptions, Policy,
};
pub use ready::Ready;
pub use repeatable::{RanRepeatable, Repeatable, RepeatableState, RepeatableStatus};
pub use report::{Event, LockHolder, Ran, Report};
pub use snapshot::{Difference, Snapshot};

/// Embeds a migrations directory at compile time.
///
/// ```text
/// static MIGRATIONS: Migrations = embed_migrations!();                  // ./migrations
/// static MIGRATIONS: Migrations = embed_migrations!("db/migrations");   // another directory
/// static MIGRATIONS: Migrations = embed_migrations!("migrations", require_down);
/// ```
///
/// The path is relative to the calling crate's `Cargo.toml`. Every problem in the directory
/// (a bad file name, a duplicate version, an unknown directive, a statement that cannot run in a
/// transaction, ...) is a compile error naming the file and line.
///
/// Options after the path:
/// - `require_down`: every migration must have a down file (also `require_down = true` in
///   `migrations.toml`).
/// - `verify_lock`: the directory must agree with `migrations.lock` (also `verify_lock = true`
///   in `migrations.toml`).
///
pub use migrations_macros::embed_migrations;

#[cfg(feature = "connect")]
pub mod connect;
