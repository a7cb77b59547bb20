//! A sqlx service that migrates its database on start, on its own pool: no second client.
//!
//! ```sh
//! DATABASE_URL=postgres://... cargo run --example sqlx-service
//! DATABASE_URL=postgres://... cargo run --example sqlx-service -- --migrate-only
//! ```
//!
//! `Migrator::run_sqlx_pool` takes one connection out of the pool for the run and closes it
//! after, so a run cut short (a timeout, a shutdown) never returns a session that still holds
//! the migrations lock to the pool. To migrate on a connection you already hold, use
//! `Migrator::run_sqlx(&mut conn)` (a `PoolConnection` derefs to a `PgConnection`).
//!
//! sqlx reads `DATABASE_URL` as a URL only (not libpq's `key=value` pairs, `.pgpass` or every
//! `PG*` variable that `migrations_core::connect` resolves).

use migrations_core::{embed_migrations, Migrations, Migrator};
use sqlx::postgres::PgPoolOptions;

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
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL to the service's database (postgres://user@host/db)")?;
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .connect(&url)
        .await?;

    let report = Migrator::new(&MIGRATIONS).run_sqlx_pool(&pool).await?;
    println!(
        "migrations: {} applied in {:?}",
        report.ran.len(),
        report.duration
    );
    if migrate_only {
        return Ok(());
    }
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await?;
    println!("serving: {users} users");
    Ok(())
}
