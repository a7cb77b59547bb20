//! The quickstart: a service that embeds its migrations at build time and migrates its database
//! on start.
//!
//! ```sh
//! cargo run --example quickstart                       # a throwaway local database
//! DATABASE_URL=postgres://... cargo run --example quickstart
//! ```
//!
//! Without `DATABASE_URL`, a throwaway PostgreSQL cluster is started from the local server
//! binaries (the test harness's) and removed when the demo exits. Without those either, it
//! says what to install (`scripts/demo` installs it) and exits 1.

use migrations_core::connect::{connect, ConnectOptions};
use migrations_core::{embed_migrations, Event, Migrations, Migrator};

static MIGRATIONS: Migrations = embed_migrations!("quickstart/migrations");

fn main() {
    // Errors are printed with Display, which names the migration, the file and the fix; a
    // `main` returning the error would print its Debug form.
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

/// What to do when there is neither a `DATABASE_URL` nor server binaries to start a throwaway
/// database from (`scripts/install-deps --demo` is what `scripts/demo` runs).
const NO_SERVER: &str = "no PostgreSQL to migrate: DATABASE_URL is not set, and PostgreSQL's \
server binaries (initdb, postgres), from which the demo starts a throwaway database, are not \
installed. Either
  - install them: scripts/install-deps --demo (Debian/Ubuntu: it runs apt-get install \
postgresql-15), or run scripts/demo, which does that and then this demo;
  - or point MIGRATIONS_TEST_PG_BINDIR at the directory that holds initdb and postgres;
  - or set DATABASE_URL=postgres://user:password@host:5432/db to migrate a database of yours.";

fn run() -> Result<(), Box<dyn std::error::Error>> {
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
            // Checked first: the harness would panic, and a panic is no message for a user.
            if let Err(reason) = migrations_tests::server_bin_dir() {
                let chosen =
                    std::env::var_os("MIGRATIONS_TEST_PG_BINDIR").is_some_and(|d| !d.is_empty());
                return Err(if chosen {
                    // The directory the user chose is wrong: the harness says how.
                    reason.into()
                } else {
                    NO_SERVER.into()
                });
            }
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
    // Repeatable migrations (`R__<name>.sql`) follow, when new or changed.
    for r in &report.repeatables {
        println!("applied  repeatable {} in {:?}", r.name, r.duration);
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
