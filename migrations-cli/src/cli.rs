//! The command line: each flag documented where it is defined; the same definitions feed
//! `--help`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// PostgreSQL migrations: plain SQL up/down pairs, checksummed, applied safely.
#[derive(Debug, Parser)]
#[command(name = "migrations", version, about, max_term_width = 100)]
pub struct Cli {
    /// The migrations directory.
    #[arg(long, global = true, default_value = "migrations", value_name = "DIR")]
    pub dir: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the migrations directory and a `build.rs` that makes Cargo notice new migration
    /// files (run it in the crate that calls `embed_migrations!`).
    Init,
    /// Create the next migration: its version follows the directory's style (sequential with
    /// the same zero padding, or timestamps) and its layout follows the newest migration.
    New {
        /// What the migration does, for example `add_users_email`.
        name: String,
        /// Write no down file.
        #[arg(long)]
        no_down: bool,
        /// Mark the up file to run outside a transaction (for CREATE INDEX CONCURRENTLY and
        /// the like).
        #[arg(long)]
        no_transaction: bool,
    },
}
