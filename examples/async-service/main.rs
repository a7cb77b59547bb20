//! An async (tokio) service that migrates its database on start.
//!
//! ```sh
//! DATABASE_URL=postgres://... cargo run --example async-service
//! DATABASE_URL=postgres://... cargo run --example async-service -- --migrate-only
//! ```
//!
//! If the migration future is dropped mid-run (a timeout, a shutdown), discard the client: its
//! session may still hold the migrations lock until the connection closes.

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
    let url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?;
    let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("connection error: {e}");
        }
    });

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
