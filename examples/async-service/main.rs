//! An async (tokio) service that migrates its database on start.
//!
//! ```sh
//! DATABASE_URL=postgres://... cargo run --example async-service
//! DATABASE_URL=postgres://... cargo run --example async-service -- --migrate-only
//! ```
//!
//! It connects as the `migrations` CLI does (`migrations_core::connect`): `DATABASE_URL` (a URL
//! or `key=value` pairs), else the `PG*` variables, `.pgpass`, `sslmode` up to `verify-full`,
//! and waiting a while for a database that is still starting.
//!
//! If the migration future is dropped mid-run (a timeout, a shutdown), discard the client: its
//! session may still hold the migrations lock until the connection closes.

use migrations_core::connect::{connect_async, ConnectOptions};
use migrations_core::{embed_migrations, Migrations, Migrator};

static MIGRATIONS: Migrations = embed_migrations!("quickstart/migrations");

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let migrate_only = std::env::args().any(|a| a == "--migrate-only");
    // The connection's task is spawned on this runtime (its end is logged through `log`).
    let mut client = connect_async(&ConnectOptions {
        application_name: Some("async-service".into()),
        ..ConnectOptions::default()
    })
    .await?;

    let report = Migrator::new(&MIGRATIONS).run_async(&mut client).await?;
    println!(
        "migrations: {} applied in {:?}",
        report.ran.len(),
        report.duration
    );
    if migrate_only {
        return Ok(());
    }
    let users: i64 = client
        .query_one("SELECT count(*) FROM users", &[])
        .await?
        .get(0);
    println!("serving: {users} users");
    Ok(())
}
