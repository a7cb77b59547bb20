//! `wait`: block until the database has every migration of the directory, for replicas and
//! init containers that must not migrate. No lock, nothing written.

use std::time::Duration;

use serde_json::json;

use migrations_core::Phase;

use crate::context::{Context, WaitStart};
use crate::exit::Error;
use crate::output::millis;

/// How long `wait` waits without `--timeout`: long enough for a deploy's migration job, short
/// enough that a stuck one fails the rollout visibly.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

pub fn run(ctx: &Context<'_>, timeout: Option<Duration>, phase: Phase) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let (migrations, client) = match ctx.wait_start(phase)? {
        // The warm record's check, nothing loaded (docs/cache.md).
        WaitStart::Migrated(count) => {
            migrated(ctx, phase, count, started.elapsed(), 1, true);
            return Ok(());
        }
        WaitStart::Heads(migrations, client) => (migrations, client),
    };
    let mut client = client.finish()?;
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    let ready = ctx
        .migrator(&migrations)
        .phase(phase)
        .wait_until_migrated(&mut client, timeout)?;
    let count = migrations.iter().filter(|m| phase.includes(m)).count();
    migrated(
        ctx,
        phase,
        count,
        ready.waited,
        ready.checks,
        ready.up_to_date_fast,
    );
    Ok(())
}

/// The line and the document of a database found migrated: `count` migrations of `phase`.
fn migrated(
    ctx: &Context<'_>,
    phase: Phase,
    count: usize,
    waited: Duration,
    checks: u32,
    up_to_date_fast: bool,
) {
    ctx.out.line(&format!(
        "the database is migrated ({} migrations{}, waited {} ms)",
        count,
        match phase {
            Phase::Pre => ", pre-deployment phase",
            Phase::Post => ", post-deployment phase",
            _ => "",
        },
        millis(waited)
    ));
    ctx.out.document(json!({
        "command": "wait",
        "phase": phase.as_str(),
        "waited_ms": waited.as_millis() as u64,
        "checks": checks,
        "up_to_date_fast": up_to_date_fast,
    }));
}
