//! `wait`: block until the database has every migration of the directory, for replicas and
//! init containers that must not migrate. No lock, nothing written.

use std::time::Duration;

use serde_json::json;

use migrations_core::Phase;

use crate::context::Context;
use crate::exit::Error;
use crate::output::millis;

/// How long `wait` waits without `--timeout`: long enough for a deploy's migration job, short
/// enough that a stuck one fails the rollout visibly.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

pub fn run(ctx: &Context<'_>, timeout: Option<Duration>, phase: Phase) -> Result<(), Error> {
    let migrations = ctx.migrations_compared()?;
    let mut client = ctx.connect()?;
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    let ready = ctx
        .migrator(&migrations)
        .phase(phase)
        .wait_until_migrated(&mut client, timeout)?;
    ctx.out.line(&format!(
        "the database is migrated ({} migrations{}, waited {} ms)",
        migrations.iter().filter(|m| phase.includes(m)).count(),
        match phase {
            Phase::Pre => ", pre-deployment phase",
            Phase::Post => ", post-deployment phase",
            _ => "",
        },
        millis(ready.waited)
    ));
    ctx.out.document(json!({
        "command": "wait",
        "phase": phase.as_str(),
        "waited_ms": ready.waited.as_millis() as u64,
        "checks": ready.checks,
        "up_to_date_fast": ready.up_to_date_fast,
    }));
    Ok(())
}
