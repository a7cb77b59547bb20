//! The quickstart: a service that embeds its migrations at build time.
//!
//! `cargo run --example quickstart` lists what the binary carries: every migration with its
//! version, name, transaction mode and SHA-256 checksum, computed at build time.

use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("quickstart/migrations");

fn main() {
    println!("{} migrations embedded:", MIGRATIONS.len());
    for m in MIGRATIONS.iter() {
        let mode = if m.no_transaction() {
            "no-transaction"
        } else {
            "transaction"
        };
        println!(
            "  {:04} {:<22} {:<15} {}",
            m.version(),
            m.name(),
            mode,
            m.checksum()
        );
    }
}
