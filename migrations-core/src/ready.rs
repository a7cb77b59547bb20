//! Waiting for the database to be migrated, for replicas and init containers that must not
//! migrate themselves: no lock, nothing written, a read-only role is enough.

use std::time::{Duration, Instant};

use crate::db::Conn;
use crate::embedded::Migrations;
use crate::engine::{self, Config};
use crate::error::Error;
use crate::history::{AppliedMigration, State};
use crate::plan::{self, Operation};

/// What [`Migrator::wait_until_migrated`](crate::Migrator::wait_until_migrated) found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ready {
    /// How long it waited.
    pub waited: Duration,
    /// How many times it looked at the database.
    pub checks: u32,
    /// Whether the first look was the one-query warm check (everything applied already).
    pub up_to_date_fast: bool,
}

/// Polls until every migration of `config.phase` is applied, or `timeout` passes. Drift and an
/// incompatible database end it at once: waiting cannot cure them.
pub(crate) async fn wait_until_migrated<C: Conn>(
    conn: &mut C,
    migrations: &Migrations,
    config: &Config,
    timeout: Duration,
    poll: Duration,
) -> Result<Ready, Error> {
    let started = Instant::now();
    let mut checks = 0;
    loop {
        checks += 1;
        // The O(1) warm check first: the chain digest proves every migration applied.
        if engine::up_to_date(conn, migrations, config).await {
            return Ok(Ready {
                waited: started.elapsed(),
                checks,
                up_to_date_fast: checks == 1,
            });
        }
        let pending = pending(conn, migrations, config).await?;
        if pending.is_empty() {
            return Ok(Ready {
                waited: started.elapsed(),
                checks,
                up_to_date_fast: false,
            });
        }
        let waited = started.elapsed();
        if waited >= timeout {
            let shown = pending
                .iter()
                .map(|(version, name)| {
                    let spelled = migrations
                        .get(*version)
                        .map_or_else(|| version.to_string(), crate::error::spelling);
                    format!("{spelled} {name}")
                })
                .collect();
            return Err(Error::WaitTimeout {
                waited,
                pending,
                shown,
            });
        }
        conn.sleep(poll.min(timeout - waited)).await;
    }
}

/// The migrations of the phase not applied yet (a `running` one among them: a runner is at
/// it), or the refusal a runner would meet (drift, the compatibility floor).
async fn pending<C: Conn>(
    conn: &mut C,
    migrations: &Migrations,
    config: &Config,
) -> Result<Vec<(i64, String)>, Error> {
    let history = engine::read_history_if_any(conn, &config.names).await?;
    // A `running` row is a runner at work: not yet applied, not a failure to report. Unless
    // that runner died: then waiting cannot end, and the row is the failure the next runner
    // will record.
    let (running, mut settled): (Vec<_>, Vec<_>) = history
        .into_iter()
        .partition(|row| row.state == State::Running);
    let (dead, running) = dead_runners(conn, config, running).await?;
    settled.extend(dead);
    let plan = plan::plan_with(
        migrations,
        &settled,
        &Operation::Up { to: None },
        &config.plan_options(),
    )?;
    let mut pending: Vec<(i64, String)> = plan
        .steps
        .iter()
        .map(|s| (s.version, s.name.clone()))
        .collect();
    for row in running {
        if !pending.iter().any(|(v, _)| *v == row.version) {
            pending.push((row.version, row.name));
        }
    }
    Ok(pending)
}

/// The rows of `running` whose runner is proven dead, as `failed` rows with the error the next
/// runner will record, and the others. A runner writes a `running` row under the migrations
/// lock and holds the lock until the row is settled; so when, after the rows were read, no
/// session holds the lock, and a second read finds the same rows unchanged (same start, same
/// progress), the runner that wrote them was gone in between: alive, it would have held the
/// lock; finished, it would have settled them; a new runner would have marked them failed.
async fn dead_runners<C: Conn>(
    conn: &mut C,
    config: &Config,
    running: Vec<AppliedMigration>,
) -> Result<(Vec<AppliedMigration>, Vec<AppliedMigration>), Error> {
    if running.is_empty() || engine::lock_is_held(conn, &config.names).await? {
        return Ok((Vec::new(), running));
    }
    let again = engine::read_history_if_any(conn, &config.names).await?;
    let unchanged = |row: &AppliedMigration| {
        again.iter().any(|now| {
            now.version == row.version
                && now.state == State::Running
                && now.applied_at == row.applied_at
                && now.statements_done == row.statements_done
                && now.error == row.error
        })
    };
    let (mut dead, alive): (Vec<_>, Vec<_>) = running.into_iter().partition(unchanged);
    for row in &mut dead {
        row.error = Some(engine::dead_runner_error(row));
        row.state = State::Failed;
    }
    Ok((dead, alive))
}
