//! The quickstart: a service that embeds its migrations at build time and migrates its database
//! on start.
//!
//! ```sh
//! cargo run --example quickstart                       # a throwaway local database
//! DATABASE_URL=postgres://... cargo run --example quickstart
//! ```
//!
//! Without `DATABASE_URL`, a throwaway PostgreSQL cluster is started from the local server
//! binaries (the test harness's) and removed when the demo exits.

use migrations_core::connect::{connect, ConnectOptions};
use migrations_core::{embed_migrations, Event, Migrations, Migrator};

static MIGRATIONS: Migrations = embed_migrations!("quickstart/migrations");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("{} migrations embedded at build time:", MIGRATIONS.len());
    for m in MIGRATIONS.iter() {
        let mode = if m.no_transaction() {
            "no-transaction"
        } else {
            "transaction"
        };
        println!(
            "  {:04} {:<20} {:<15} sha256 {}",
            m.version(),
            m.name(),
            mode,
            &m.checksum()[..16]
        );
    }

    // The database: DATABASE_URL, or a throwaway one.
    let throwaway;
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            println!("DATABASE_URL is not set: starting a throwaway local PostgreSQL");
            throwaway = migrations_tests::test_db();
            throwaway.url().to_owned()
        }
    };
    // As the `migrations` CLI connects: the URL (or key=value pairs), PG* variables, .pgpass,
    // sslmode.
    let mut client = connect(&ConnectOptions {
        url: Some(url),
        ..ConnectOptions::default()
    })?;

    // What a service does on start: one call.
    let report = Migrator::new(&MIGRATIONS)
        .on_event(|event| {
            if let Event::Started { version, name, .. } = event {
                println!("applying {version:04} {name} ...");
            }
        })
        .run(&mut client)?;
    for ran in &report.ran {
        println!(
            "applied  {:04} {} in {:?}",
            ran.version, ran.name, ran.duration
        );
    }
    println!("{} applied in {:?}", report.ran.len(), report.duration);

    // Every later start: nothing to do, proven in one round trip without taking the lock.
    let again = Migrator::new(&MIGRATIONS).run(&mut client)?;
    println!(
        "second start: {} applied, up to date by the warm-start check: {} ({:?})",
        again.ran.len(),
        again.up_to_date_fast,
        again.duration
    );
    for line in Migrator::new(&MIGRATIONS).status(&mut client)? {
        println!(
            "  {:04} {:<20} {}",
            line.version,
            line.name,
            line.status.as_str()
        );
    }
    Ok(())
}
