//! A Rust-code migration that backfills a column in batches, resumable after a kill.
//!
//! ```sh
//! DATABASE_URL=postgres://... cargo run --example code-backfill -- --seed 100000
//! # kill it (Ctrl-C) while it backfills, then start it again: it goes on from where it was
//! DATABASE_URL=postgres://... cargo run --example code-backfill
//! migrations --dir examples/quickstart/migrations status   # 4: code (applied by the service)
//! ```
//!
//! Migration 4 is a function (`Migrations::with_code`), declared no-transaction: each batch
//! commits on its own, so a kill loses at most one batch. The runner that dies leaves its
//! history row `running`; the next start finds it (`failed`, the runner is gone), and since
//! this function resumes by design (it only touches rows still NULL), the service repairs the
//! row and runs it again. See docs/code-migrations.md.

use migrations_core::connect::{connect, ConnectOptions};
use migrations_core::plan::{Operation, Status};
use migrations_core::{
    embed_migrations, CodeFuture, CodeMigration, CodeTx, Error, Migrations, Migrator,
};

static MIGRATIONS: Migrations = embed_migrations!("quickstart/migrations");

/// Rows per batch: one short transaction each, so locks on `users` are held briefly.
const BATCH: u32 = 1000;

/// `users.email_domain`, added if missing (a resumed run finds it), then filled in batches
/// with the part of the email after `@`, lowercased in Rust.
fn backfill_email_domain(tx: &mut CodeTx) -> CodeFuture<'_> {
    Box::pin(async move {
        tx.execute("ALTER TABLE users ADD COLUMN IF NOT EXISTS email_domain text")
            .await?;
        let mut done = 0usize;
        loop {
            let rows = tx
                .query(&format!(
                    "SELECT id, email FROM users WHERE email_domain IS NULL ORDER BY id \
                     LIMIT {BATCH}"
                ))
                .await?;
            if rows.is_empty() {
                eprintln!("backfill: done ({done} rows in this run)");
                return Ok(());
            }
            // One UPDATE per batch, from a VALUES list computed here.
            let values: Vec<String> = rows
                .iter()
                .filter_map(|row| {
                    let (id, email) = (row[0].as_deref()?, row[1].as_deref()?);
                    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
                    Some(format!(
                        "({id}::bigint, {})",
                        CodeTx::literal(&domain.to_lowercase())
                    ))
                })
                .collect();
            tx.execute(&format!(
                "UPDATE users u SET email_domain = v.domain FROM (VALUES {}) AS v(id, domain) \
                 WHERE u.id = v.id",
                values.join(", ")
            ))
            .await?;
            done += rows.len();
            eprintln!("backfill: {done} rows");
        }
    })
}

/// Revision "1": bump it when the function changes in a way that matters (it is what the
/// checksum covers).
const BACKFILL: CodeMigration = CodeMigration::new(
    BACKFILL_VERSION,
    "backfill_email_domain",
    "1",
    backfill_email_domain,
)
.no_transaction();

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut client = connect(&ConnectOptions {
        application_name: Some("code-backfill".into()),
        ..ConnectOptions::default()
    })?;
    let set = MIGRATIONS.clone().with_code(BACKFILL)?;

    if let Some(n) = seed_count() {
        // The tables first (up to 3), then rows to backfill.
        Migrator::new(&set).execute(&mut client, &Operation::Up { to: Some(3) })?;
        client.batch_execute(&format!(
            "INSERT INTO users (email) SELECT 'user' || g || '@Example' || (g % 7) || '.org' \
             FROM generate_series(1, {n}) g ON CONFLICT DO NOTHING"
        ))?;
    }

    let report = match Migrator::new(&set).run(&mut client) {
        // A previous run was killed during the backfill: its row is failed. The function
        // resumes by design, so clear the row and run again.
        Err(Error::Plan(refusal)) if backfill_failed(&set, &mut client)? => {
            eprintln!("{refusal}\nresuming the backfill");
            Migrator::new(&set).repair(&mut client, Some(BACKFILL_VERSION), false)?;
            Migrator::new(&set).run(&mut client)?
        }
        other => other?,
    };
    println!("migrations: {} applied", report.ran.len());
    Ok(())
}

const BACKFILL_VERSION: i64 = 4;

fn backfill_failed(
    set: &Migrations,
    client: &mut postgres::Client,
) -> Result<bool, Box<dyn std::error::Error>> {
    Ok(Migrator::new(set)
        .status(client)?
        .iter()
        .any(|line| line.version == BACKFILL_VERSION && line.status == Status::Failed))
}

fn seed_count() -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--seed")?;
    args.get(at + 1)?.parse().ok()
}
