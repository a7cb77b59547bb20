//! A sync service that migrates its database on start.
//!
//! ```sh
//! DATABASE_URL=postgres://... cargo run --example sync-service                  # migrate, then serve
//! DATABASE_URL=postgres://... cargo run --example sync-service -- --migrate-only # a deploy step
//! ```
//!
//! It connects as the `migrations` CLI does (`migrations_core::connect`): `DATABASE_URL` (a URL
//! or `key=value` pairs), else the `PG*` variables, `.pgpass`, `sslmode` up to `verify-full`,
//! and waiting a while for a database that is still starting (a container started with it).
//!
//! Any number of replicas may start at once: one applies the migrations, the others wait for
//! the lock, then find nothing to do.

use migrations_core::connect::{connect, ConnectOptions};
use migrations_core::{embed_migrations, Event, Migrations, Migrator};

// The same directory as the quickstart, embedded at build time.
static MIGRATIONS: Migrations = embed_migrations!("quickstart/migrations");

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let migrate_only = std::env::args().any(|a| a == "--migrate-only");
    let mut client = connect(&ConnectOptions {
        application_name: Some("sync-service".into()),
        ..ConnectOptions::default()
    })?;

    let report = Migrator::new(&MIGRATIONS)
        // A replica that starts while another migrates says whom it waits for.
        .on_event(|event| {
            if let Event::WaitingForLock {
                holder: Some(holder),
                ..
            } = event
            {
                eprintln!("waiting for the migrations lock, held by {holder}");
            }
        })
        .run(&mut client)?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "migrations: {} applied in {:?}",
        report.ran.len(),
        report.duration
    );
    if migrate_only {
        return Ok(());
    }

    // The service proper would start here; this one answers a single query and exits.
    let users: i64 = client.query_one("SELECT count(*) FROM users", &[])?.get(0);
    println!("serving: {users} users");
    Ok(())
}
