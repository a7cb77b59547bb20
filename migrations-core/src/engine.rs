//! The run: lock, read, plan, apply, unlock. Written once, generic over [`Conn`]; the sync and
//! async drivers differ only in how a query string reaches the server.
//!
//! The engine decides nothing about *what* to run (the planner does); it owns *how*: the
//! advisory lock, the transaction shapes, retries, session hygiene and bookkeeping.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use migrations_format::sql::created_index_name;

mod batch;

use crate::db::{Conn, DbError, Row};
use crate::embedded::{Migration, Migrations, Script};
use crate::error::{Error, Location};
use crate::history::{AppliedMigration, State};
use crate::plan::{self, Direction, DriftPolicy, Operation, Phase, Plan, PlanOptions, Step};
use crate::report::{Event, Ran, Report};
use crate::sql::{
    self, invalid_among, new_invalid_indexes, parse_format_comment, parse_history_row,
    quote_literal, Markers, Names, SessionBaseline, StepSql, DOWN_IN_PROGRESS, FORMAT_VERSION,
    INVALID_INDEX_OIDS, IN_TRANSACTION_BLOCK, SNAPSHOT_SESSION,
};
use batch::{Batch, FailedAt, Piece, Pieces};

/// How a run behaves; built by [`Migrator`](crate::Migrator).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub names: Names,
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
    pub lock_wait: Duration,
    pub lock_poll: Duration,
    pub lock_retries: u32,
    pub retry_backoff: Duration,
    pub search_path: Option<String>,
    pub policy: DriftPolicy,
    pub grouped: bool,
    /// Store a schema snapshot after an `up` that applied something.
    pub record_schema: bool,
    /// Run downs marked `-- migrations:lossy-down` (else the plan is refused).
    pub allow_data_loss: bool,
    /// Which migrations an `up` applies (`-- migrations:phase=post`).
    pub phase: Phase,
    /// Revert migrations this binary lacks with the down script stored in the history.
    pub stored_downs: bool,
    /// Where each transactional step (not grouped) puts the relation locks its session held
    /// just before its `COMMIT` (the round trip's observed locks): read by one more statement
    /// in the step's own batch, so that the round trip need not run each script once more in
    /// a transaction it rolls back only to look at its locks.
    pub observe_locks: Option<LockSink>,
}

/// See [`Config::observe_locks`].
pub(crate) type LockSink = std::sync::Arc<std::sync::Mutex<Vec<HeldLocks>>>;

/// The relation locks one transactional step held before its `COMMIT`.
// Read by the round trip only (feature `postgres`); the engine fills it under every driver.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
#[derive(Debug, Clone)]
pub(crate) struct HeldLocks {
    pub version: i64,
    pub direction: Direction,
    /// `(relation oid, mode as pg_locks names it)`, granted, in the current database.
    pub locks: Vec<(u32, String)>,
    /// How long the step's batch took (the locks are held until its end).
    pub held: Duration,
}

/// The statement that reads the step's own relation locks, before the bookkeeping and
/// `COMMIT`, and the tag that starts each of its rows: random, so that rows a script's own
/// `SELECT`s return are never taken for the probe's.
fn lock_probe() -> (String, String) {
    use std::hash::{BuildHasher, Hasher};
    let nonce = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let tag = format!("migrations:held-lock:{nonce:016x}");
    let sql = format!(
        "{};\n",
        sql::relation_locks(&format!("'{tag}', "), "pg_catalog.pg_backend_pid()")
    );
    (sql, tag)
}

/// The probe's rows among a batch's.
fn held_locks(rows: &[Row], tag: &str) -> Vec<(u32, String)> {
    rows.iter()
        .filter_map(|row| match row.as_slice() {
            [Some(t), Some(oid), Some(mode)] if t == tag => Some((oid.parse().ok()?, mode.clone())),
            _ => None,
        })
        .collect()
}

impl Config {
    /// What the planner needs of the configuration.
    pub(crate) fn plan_options(&self) -> PlanOptions {
        let mut options = PlanOptions::with_policy(self.policy);
        options.phase = self.phase;
        options.stored_downs = self.stored_downs;
        options
    }
}

pub(crate) type EventSink<'a> = dyn FnMut(&Event<'_>) + Send + 'a;

/// Runs `operation`. Takes the lock only when the warm-start check cannot prove there is
/// nothing to do.
pub(crate) async fn run<C: Conn>(
    conn: &mut C,
    migrations: &Migrations,
    config: &Config,
    operation: &Operation,
    events: &mut EventSink<'_>,
) -> Result<Report, Error> {
    let started = Instant::now();
    if *operation == (Operation::Up { to: None }) && up_to_date(conn, migrations, config).await {
        return Ok(Report {
            up_to_date_fast: true,
            duration: started.elapsed(),
            ..Report::default()
        });
    }
    let pid = acquire_lock(conn, config, events).await?;
    let mut engine = Engine {
        conn: &mut *conn,
        migrations,
        config,
        events,
        pid,
        baseline: SessionBaseline::default(),
        record: Record::Prepare,
        prepare_sent: false,
    };
    // A panic in a callback must not leave the lock held: catch it, unlock, then let it go on.
    let outcome = CatchUnwind(Box::pin(engine.locked(operation))).await;
    // With the unlock, the statement the run prepared is deallocated: the caller's session
    // keeps nothing of the run. One release only: a second unlock of a lock no longer held
    // makes the server warn ("you don't own a lock of type ExclusiveLock").
    let release = if engine.prepare_sent {
        config.names.unlock_and_deallocate()
    } else {
        config.names.unlock()
    };
    let mut report = unlock_then(conn, &release, outcome).await?;
    report.duration = started.elapsed();
    Ok(report)
}

/// Releases the migrations lock (`release`: [`Names::unlock`], or more statements that begin
/// with it), then returns the locked section's result or resumes its panic. Every locked
/// section ends here, so no exit path keeps the lock.
async fn unlock_then<C: Conn, T>(
    conn: &mut C,
    release: &str,
    outcome: Result<Result<T, Error>, Box<dyn Any + Send>>,
) -> Result<T, Error> {
    let _ = conn.simple(release).await;
    match outcome {
        Ok(result) => result,
        Err(panic) => resume_unwind(panic),
    }
}

/// Reads the history and plans, without the lock and without changing anything.
pub(crate) async fn dry_run<C: Conn>(
    conn: &mut C,
    migrations: &Migrations,
    config: &Config,
    operation: &Operation,
) -> Result<Plan, Error> {
    let history = read_history_if_any(conn, &config.names).await?;
    let plan = plan::plan_with(migrations, &history, operation, &config.plan_options())?;
    if !config.allow_data_loss {
        plan::refuse_data_loss(migrations, &plan)?;
    }
    Ok(plan)
}

/// A maintenance operation on the history itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Maintenance {
    /// Clear failed rows (all, or one version): drop the invalid indexes they name, delete
    /// the row so the next `up` runs the file again from its first statement; with
    /// `accept_checksum`, also record the file's current checksum for edited rows.
    Repair {
        version: Option<i64>,
        accept_checksum: bool,
    },
    /// Record every known migration up to `version` as applied without running it.
    Baseline { version: i64 },
    /// Import another tool's history (all of it, or its rows up to `version`), checking what
    /// can be checked.
    Adopt { tool: Tool, version: Option<i64> },
    /// Append an event to the audit table (for example `lock-rewrite` from the CLI).
    Record {
        event: String,
        version: Option<i64>,
        name: Option<String>,
        checksum: Option<String>,
        detail: Option<String>,
    },
}

impl Maintenance {
    /// [`Maintenance::Record`] of borrowed values.
    pub(crate) fn record(
        event: &str,
        version: Option<i64>,
        name: Option<&str>,
        checksum: Option<&str>,
        detail: Option<&str>,
    ) -> Maintenance {
        Maintenance::Record {
            event: event.to_owned(),
            version,
            name: name.map(str::to_owned),
            checksum: checksum.map(str::to_owned),
            detail: detail.map(str::to_owned),
        }
    }
}

/// A migration tool whose history table can be adopted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tool {
    /// `__diesel_schema_migrations`: versions only, no checksums (taken on trust).
    Diesel,
    /// `_sqlx_migrations`: SHA-384 checksums, checked against the files; failed rows refused.
    Sqlx,
}

/// What a maintenance operation changed, one line per migration.
pub(crate) async fn maintain<C: Conn>(
    conn: &mut C,
    migrations: &Migrations,
    config: &Config,
    operation: &Maintenance,
    events: &mut EventSink<'_>,
) -> Result<Vec<String>, Error> {
    let pid = acquire_lock(conn, config, events).await?;
    let outcome = CatchUnwind(Box::pin(maintain_locked(
        conn, migrations, config, operation, pid,
    )))
    .await;
    unlock_then(conn, &config.names.unlock(), outcome).await
}

async fn maintain_locked<C: Conn>(
    conn: &mut C,
    migrations: &Migrations,
    config: &Config,
    operation: &Maintenance,
    pid: i64,
) -> Result<Vec<String>, Error> {
    let rows = conn
        .simple("SELECT pg_backend_pid()")
        .await
        .map_err(Error::db("checking the session"))?;
    check_backend(&rows, pid)?;
    let names = &config.names;
    ensure_history(conn, names).await?;
    let history = read_history(conn, names, FORMAT_VERSION).await?;
    let mut done = Vec::new();
    let mut batch = String::new();
    // A row as people read its version: its file's spelling, else the digits the history kept.
    let row_spelling = |row: &crate::history::AppliedMigration| match migrations.get(row.version) {
        Some(m) => crate::error::spelling(m),
        None if !row.version_digits.is_empty() => row.version_digits.clone(),
        None => row.version.to_string(),
    };
    match operation {
        Maintenance::Repair {
            version,
            accept_checksum,
        } => {
            if let Some(v) = version {
                if !history.iter().any(|r| r.version == *v) {
                    return Err(Error::Plan(crate::plan::PlanError::UnknownTarget(*v)));
                }
            }
            for row in history
                .iter()
                .filter(|r| version.is_none_or(|v| v == r.version))
            {
                if row.state != State::Applied {
                    // Dropped one by one: DROP INDEX CONCURRENTLY refuses to run in a
                    // multi-statement string.
                    for index in &row.invalid_indexes {
                        conn.simple(&sql::drop_invalid_index(index))
                            .await
                            .map_err(Error::db(format!("dropping invalid index {index}")))?;
                    }
                    let detail = format!(
                        "cleared {} state{}",
                        row.state,
                        if row.invalid_indexes.is_empty() {
                            String::new()
                        } else {
                            format!(", dropped {}", row.invalid_indexes.join(", "))
                        }
                    );
                    batch.push_str(&names.clear_row(row, &detail));
                    done.push(format!("{} {}: {detail}", row_spelling(row), row.name));
                } else if *accept_checksum {
                    if let Some(m) = migrations.get(row.version) {
                        if m.checksum() != row.checksum || m.no_transaction() != row.no_transaction
                        {
                            // A mode flipped in metadata.toml leaves the checksum as it was:
                            // say what was accepted.
                            let detail = if m.checksum() != row.checksum {
                                format!("accepted checksum {} (was {})", m.checksum(), row.checksum)
                            } else {
                                let mode = |no_tx: bool| {
                                    if no_tx {
                                        "outside a transaction"
                                    } else {
                                        "in a transaction"
                                    }
                                };
                                format!(
                                    "accepted running {} (was {})",
                                    mode(m.no_transaction()),
                                    mode(row.no_transaction)
                                )
                            };
                            batch.push_str(&names.accept_checksum(m, &detail));
                            done.push(format!("{} {}: {detail}", row_spelling(row), row.name));
                        }
                    }
                }
            }
        }
        Maintenance::Baseline { version } => {
            let target = migrations
                .get(*version)
                .ok_or(crate::plan::PlanError::UnknownTarget(*version))?;
            for m in migrations.iter() {
                if migrations_format::Version::compare_digits(
                    m.version_digits(),
                    target.version_digits(),
                ) == std::cmp::Ordering::Greater
                {
                    break;
                }
                if history.iter().any(|r| r.version == m.version()) {
                    continue;
                }
                batch.push_str(
                    &names.record_without_running(m, "recorded as applied without running it"),
                );
                done.push(format!(
                    "{} {}: recorded as applied",
                    crate::error::spelling(m),
                    m.name()
                ));
            }
        }
        Maintenance::Record {
            event,
            version,
            name,
            checksum,
            detail,
        } => {
            batch.push_str(&names.audit_insert(
                event,
                *version,
                name.as_deref(),
                checksum.as_deref(),
                detail.as_deref(),
            ));
            batch.push_str(";\n");
            done.push(format!("recorded {event} in the audit"));
        }
        Maintenance::Adopt { tool, version } => {
            let target = version
                .map(|v| {
                    migrations
                        .get(v)
                        .ok_or(crate::plan::PlanError::UnknownTarget(v))
                })
                .transpose()?;
            let foreign = read_foreign(conn, *tool).await?;
            let mut problems = Vec::new();
            for row in &foreign {
                let known = migrations.iter().find(|m| {
                    m.version_digits() == row.digits || m.version().to_string() == row.digits
                });
                let Some(m) = known else {
                    problems.push(format!("{}: not a migration of this set", row.digits));
                    continue;
                };
                let above_target = target.is_some_and(|target| {
                    migrations_format::Version::compare_digits(
                        m.version_digits(),
                        target.version_digits(),
                    ) == std::cmp::Ordering::Greater
                });
                if above_target || history.iter().any(|r| r.version == m.version()) {
                    continue;
                }
                if row.success == Some(false) {
                    problems.push(format!(
                        "{} {}: sqlx recorded it as failed (success = false); fix it with sqlx \
                         first",
                        m.version(),
                        m.name()
                    ));
                    continue;
                }
                if let Some(theirs) = &row.sha384 {
                    let ours = sha384_hex(m.up().sql());
                    if !sqlx_checksum_matches(theirs, m.up().sql()) {
                        problems.push(format!(
                            "{} {}: sqlx checksum {theirs} differs from the file's {ours} \
                             (edited since it ran?)",
                            m.version(),
                            m.name()
                        ));
                        continue;
                    }
                }
                let detail = format!("adopted from {}", tool.table());
                batch.push_str(&names.record_without_running(m, &detail));
                done.push(format!(
                    "{} {}: {detail}",
                    crate::error::spelling(m),
                    m.name()
                ));
            }
            if !problems.is_empty() {
                return Err(Error::Adopt {
                    table: tool.table().to_owned(),
                    problems,
                });
            }
        }
    }
    if !batch.is_empty() {
        let batch = format!("BEGIN;\n{batch}COMMIT;");
        if let Err(e) = conn.simple(&batch).await {
            let _ = conn.simple("ROLLBACK").await;
            return Err(Error::db("updating the history")(e));
        }
    }
    Ok(done)
}

impl Tool {
    /// The tool's history table, looked up on the `search_path`.
    pub fn table(self) -> &'static str {
        match self {
            Tool::Diesel => "__diesel_schema_migrations",
            Tool::Sqlx => "_sqlx_migrations",
        }
    }
}

/// A row of another tool's history.
struct ForeignRow {
    digits: String,
    success: Option<bool>,
    sha384: Option<String>,
}

async fn read_foreign<C: Conn>(conn: &mut C, tool: Tool) -> Result<Vec<ForeignRow>, Error> {
    // Both tools keep their table on the search_path (normally public).
    let query = match tool {
        Tool::Diesel => {
            "SELECT replace(version, '-', ''), NULL, NULL FROM __diesel_schema_migrations"
        }
        Tool::Sqlx => {
            "SELECT version::text, success::text, encode(checksum, 'hex') FROM _sqlx_migrations"
        }
    };
    let rows = conn
        .simple(query)
        .await
        .map_err(Error::db(format!("reading {}", tool.table())))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let mut r = r.into_iter();
            Some(ForeignRow {
                digits: r.next()??,
                success: r.next().flatten().map(|s| s == "true" || s == "t"),
                sha384: r.next().flatten(),
            })
        })
        .collect())
}

/// Whether sqlx's checksum is that of the file. sqlx hashes the bytes as read, ours the
/// normalised text (line endings LF): a file saved with CRLF is compared in that form too.
fn sqlx_checksum_matches(theirs: &str, normalized: &str) -> bool {
    *theirs == sha384_hex(normalized)
        || (normalized.contains('\n') && *theirs == sha384_hex(&normalized.replace('\n', "\r\n")))
}

fn sha384_hex(text: &str) -> String {
    use sha2::{Digest, Sha384};
    Sha384::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The audit events (none when there is no history table yet).
pub(crate) async fn read_audit<C: Conn>(
    conn: &mut C,
    names: &Names,
) -> Result<Vec<crate::history::AuditEvent>, Error> {
    if history_format(conn, names).await?.is_none() {
        return Ok(Vec::new());
    }
    let rows = conn
        .simple(&names.select_audit())
        .await
        .map_err(Error::db("reading the audit table"))?;
    Ok(rows
        .iter()
        .filter_map(|r| sql::parse_audit_row(r))
        .collect())
}

/// Creates the history tables when they do not exist, or upgrades an older format's to
/// [`FORMAT_VERSION`] (`sql::UPGRADES`, idempotent), under the lock: two runners upgrading
/// at once take turns, and the second finds the table upgraded.
async fn ensure_history<C: Conn>(conn: &mut C, names: &Names) -> Result<(), Error> {
    let found = history_format(conn, names).await?;
    if found.is_some_and(|f| f >= FORMAT_VERSION) {
        return Ok(());
    }
    if let Err(source) = conn.simple(&names.create()).await {
        // A failed CREATE leaves its transaction open.
        let _ = conn.simple("ROLLBACK").await;
        return Err(match found {
            None => Error::CreateHistory {
                table: names.history(),
                schema: sql::quote_ident(&names.schema),
                source,
            },
            Some(from) => Error::UpgradeHistory {
                table: names.history(),
                from,
                to: FORMAT_VERSION,
                source,
            },
        });
    }
    if let Some(from) = found {
        log::info!(
            "upgraded the history table {} from format {from} to {FORMAT_VERSION}",
            names.history()
        );
        let detail = format!("history format {from} upgraded to {FORMAT_VERSION}");
        let audit = names.audit_insert("history-upgrade", None, None, None, Some(&detail));
        conn.simple(&audit)
            .await
            .map_err(Error::db("recording the history upgrade"))?;
    }
    Ok(())
}

/// The history rows, or none when there is no history table yet.
pub(crate) async fn read_history_if_any<C: Conn>(
    conn: &mut C,
    names: &Names,
) -> Result<Vec<AppliedMigration>, Error> {
    match history_format(conn, names).await? {
        None => Ok(Vec::new()),
        // Read as it is, older formats included: no lock, nothing written.
        Some(format) => read_history(conn, names, format).await,
    }
}

/// One round trip reading one row: does the chain digest stored in the history (history
/// format 3, kept by a trigger) say that every migration this run's phase applies is applied,
/// with no failed or running row? Any error (no table yet, an older format, no permission)
/// just means "take the slow path", which reports errors properly.
pub(crate) async fn up_to_date<C: Conn>(
    conn: &mut C,
    migrations: &Migrations,
    config: &Config,
) -> bool {
    let Ok(rows) = conn.simple(&config.names.warm_check()).await else {
        return false;
    };
    digest_row_is_current(rows.first(), migrations, config.phase)
}

/// The warm check of a plain `up` ([`up_to_date`]) that also knows the repeatable migrations:
/// the stored digest and the repeatables' recorded checksums in the same round trip (two
/// statements, one query string), so a set with repeatables starts in one query too. Every
/// repeatable of the set must be recorded with its checksum (a recorded one the set lacks
/// runs nothing); no table of repeatables yet means some are due.
pub(crate) async fn up_to_date_with_repeatables<C: Conn>(
    conn: &mut C,
    migrations: &Migrations,
    config: &Config,
) -> bool {
    if migrations.repeatables().is_empty() {
        return up_to_date(conn, migrations, config).await;
    }
    let query = format!(
        "{};\nSELECT name, checksum FROM {}",
        config.names.warm_check(),
        crate::repeatable::table(&config.names)
    );
    let Ok(rows) = conn.simple(&query).await else {
        return false;
    };
    // The meta table holds one row (its key is `true`): the first row is the digest, the
    // others the repeatables'.
    let mut rows = rows.into_iter();
    if !digest_row_is_current(rows.next().as_ref(), migrations, config.phase) {
        return false;
    }
    let recorded: std::collections::HashMap<String, String> = rows
        .filter_map(|row| {
            let mut row = row.into_iter();
            Some((row.next()??, row.next()??))
        })
        .collect();
    migrations
        .repeatables()
        .iter()
        .all(|r| recorded.get(r.name()).map(String::as_str) == Some(r.checksum()))
}

/// Whether the warm check's row (the stored digest) says there is nothing to do.
fn digest_row_is_current(row: Option<&Row>, migrations: &Migrations, phase: Phase) -> bool {
    // The table's format is not read here (obj_description costs ~1.3 ms on a new
    // connection): a matching digest already proves every migration of this binary applied
    // with its checksum; any mismatch takes the slow path, which checks the format.
    let stored = row
        .and_then(|r| r.first())
        .and_then(|c| c.as_deref())
        .and_then(sql::parse_digest_bits);
    stored.is_some_and(|stored| digest_is_current(&stored, migrations, phase))
}

/// Whether `stored`, the history's chain digest, is one this binary's `up` of `phase` has
/// nothing to add to. A running or failed row never matches (its digest carries its state).
fn digest_is_current(stored: &[u8; 32], migrations: &Migrations, phase: Phase) -> bool {
    let Some(all) = migrations_format::Checksum::from_hex(migrations.chain_digest()) else {
        return false;
    };
    if stored == all.as_bytes() {
        return true;
    }
    if phase != Phase::Pre {
        return false;
    }
    // A plain `up` leaves post-deployment migrations pending, and they run in version order
    // among themselves, so after it the pending ones are the newest post-deployment ones:
    // each such suffix taken out of the whole chain is a state with nothing to do. Only
    // these few items are hashed at run time, and only when the constant did not match.
    let mut expected = *all.as_bytes();
    for m in migrations.iter().rev().filter(|m| m.post_deploy()) {
        let item =
            migrations_format::checksum::chain_item(m.version(), m.checksum(), m.no_transaction());
        migrations_format::checksum::xor_into(&mut expected, &item);
        if &expected == stored {
            return true;
        }
    }
    false
}

/// Polls `pg_try_advisory_lock` outside any transaction until it is ours or `lock_wait`
/// passes. Never a blocking `pg_advisory_lock`: a waiter blocked inside a statement deadlocks
/// with a `CREATE INDEX CONCURRENTLY` in the holder, which waits for every open transaction.
async fn acquire_lock<C: Conn>(
    conn: &mut C,
    config: &Config,
    events: &mut EventSink<'_>,
) -> Result<i64, Error> {
    let key = config.names.lock_key();
    let query = config.names.try_lock();
    let started = Instant::now();
    let mut announced = false;
    loop {
        let rows = conn
            .simple(&query)
            .await
            .map_err(Error::db("taking the migrations lock"))?;
        let row = rows.first();
        if row.and_then(|r| r.first()).and_then(|c| c.as_deref()) == Some("t") {
            let pid = row
                .and_then(|r| r.get(1))
                .and_then(|c| c.as_deref())
                .and_then(|p| p.parse().ok())
                .unwrap_or_default();
            return Ok(pid);
        }
        if started.elapsed() >= config.lock_wait {
            return Err(Error::LockWait {
                key,
                waited: config.lock_wait,
                holder: lock_holder(conn, &config.names).await,
            });
        }
        if !announced {
            let holder = lock_holder(conn, &config.names).await;
            log::info!("waiting for the migrations lock (advisory lock {key}, {holder:?})");
            events(&Event::WaitingForLock { key, holder });
            announced = true;
        }
        conn.sleep(config.lock_poll).await;
    }
}

/// What a `running` row left by a runner that died records as its error (the runner under
/// the lock, and `wait`, which proves the death without it, say the same).
pub(crate) fn dead_runner_error(row: &AppliedMigration) -> String {
    let reverting = row.error.as_deref() == Some(DOWN_IN_PROGRESS);
    let done = row.statements_done.unwrap_or(0).max(0) as usize;
    let total = row.statements_total.unwrap_or(0).max(0) as usize;
    if crate::code::is_code_checksum(&row.checksum) {
        format!(
            "the runner stopped (killed, crashed or lost its connection) while the code \
             migration's {} function ran",
            if reverting { "down" } else { "up" }
        )
    } else {
        format!(
            "the runner stopped (killed, crashed or lost its connection) during statement {} of \
             {total}{}",
            done + 1,
            if reverting { " of the down script" } else { "" }
        )
    }
}

/// Whether any session of this database holds the migrations lock. A failed read is an
/// error: the caller decides from it.
pub(crate) async fn lock_is_held<C: Conn>(conn: &mut C, names: &Names) -> Result<bool, Error> {
    let rows = conn
        .simple(&names.lock_holder())
        .await
        .map_err(Error::db("looking for the holder of the migrations lock"))?;
    Ok(!rows.is_empty())
}

/// Who holds the migrations lock, for the messages of a runner that waits for it. Only a
/// message depends on it: a failed read is `None`, never an error of the run.
async fn lock_holder<C: Conn>(conn: &mut C, names: &Names) -> Option<crate::LockHolder> {
    let rows = conn.simple(&names.lock_holder()).await.ok()?;
    crate::sql::parse_lock_holder(rows.first()?)
}

/// The history table's format, `None` when there is no table yet; an error for a table of a
/// newer format or none.
pub(crate) async fn history_format<C: Conn>(
    conn: &mut C,
    names: &Names,
) -> Result<Option<u32>, Error> {
    let rows = conn.simple(&names.probe()).await.map_err(|source| {
        // insufficient_privilege on the lookup itself: no USAGE on the schema. The fix is a
        // grant or another schema, which the generic error would not say.
        if source.code.as_deref() == Some("42501") {
            Error::HistorySchemaAccess {
                table: names.history(),
                schema: sql::quote_ident(&names.schema),
                source,
            }
        } else {
            Error::Db {
                context: "looking for the history table".to_owned(),
                source,
            }
        }
    })?;
    let row = rows.first();
    let exists = row.and_then(|r| r.first()).and_then(|c| c.as_deref()) == Some("t");
    if !exists {
        return Ok(None);
    }
    let comment = row.and_then(|r| r.get(1)).and_then(|c| c.as_deref());
    match parse_format_comment(comment) {
        Some(found) if found > FORMAT_VERSION => Err(Error::NewerHistoryFormat {
            table: names.history(),
            found,
            supported: FORMAT_VERSION,
        }),
        Some(found) => Ok(Some(found)),
        None => Err(Error::NotAHistoryTable {
            table: names.history(),
        }),
    }
}

async fn read_history<C: Conn>(
    conn: &mut C,
    names: &Names,
    format: u32,
) -> Result<Vec<AppliedMigration>, Error> {
    let rows = conn
        .simple(&names.select_history(format))
        .await
        .map_err(Error::db("reading the history table"))?;
    rows.iter()
        .map(|row| {
            parse_history_row(row).ok_or_else(|| Error::NotAHistoryTable {
                table: names.history(),
            })
        })
        .collect()
}

struct Engine<'e, 'cb, C: Conn> {
    conn: &'e mut C,
    migrations: &'e Migrations,
    config: &'e Config,
    events: &'e mut EventSink<'cb>,
    /// The backend that holds the lock; any other backend means a pooler is in between.
    pid: i64,
    /// The caller's session settings, restored after each migration.
    baseline: SessionBaseline,
    /// How an up step's bookkeeping is sent.
    record: Record,
    /// A `PREPARE` of [`sql::RECORD_STATEMENT`] was sent (it may exist even if its batch
    /// failed: a prepared statement outlives a rollback): deallocated at the end of the run.
    prepare_sent: bool,
}

/// How a transactional up step sends its bookkeeping ([`StepSql::record`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    /// `PREPARE` in the step's batch, after the script (where it takes the same locks as the
    /// statement itself would), then `EXECUTE`: the first up step of the run.
    Prepare,
    /// `EXECUTE` of the statement an earlier step prepared: no parse, no plan.
    Execute,
    /// The statement as text: the name was taken on the caller's session, or the statement
    /// was deallocated under the run (a script's `DEALLOCATE ALL`, a pooler's other session).
    Text,
}

/// A step's script and its identity, ready to run.
struct Job<'m> {
    migration: &'m Migration,
    script: &'m Script,
    direction: Direction,
    /// The audit `detail` of the step when it succeeds ([`STORED_DOWN_DETAIL`] for a stored
    /// down).
    detail: Option<&'static str>,
}

/// The audit `detail` of a down run with the script stored in the history.
const STORED_DOWN_DETAIL: &str = "stored down";

impl Job<'_> {
    /// Refuses a script that holds a statement the transaction it runs in cannot take (found
    /// when the script was loaded), before anything is sent.
    fn check_transactional(&self) -> Result<(), Error> {
        match self.script.refused_in_transaction() {
            Some(refusal) => Err(Error::RefusedInTransaction {
                version: self.migration.version(),
                spelling: crate::error::spelling(self.migration),
                name: self.migration.name().to_owned(),
                direction: self.direction,
                line: refusal.line(),
                what: refusal.what().to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// The step's bookkeeping statements.
    fn step<'s>(&'s self, names: &'s Names) -> StepSql<'s> {
        let step = StepSql::new(names, self.migration, self.script, self.direction);
        match self.detail {
            Some(detail) => step.detail(detail),
            None => step,
        }
    }
}

impl<'e, C: Conn> Engine<'e, '_, C> {
    async fn query(&mut self, sql: &str, context: &str) -> Result<Vec<Row>, Error> {
        self.conn.simple(sql).await.map_err(Error::db(context))
    }

    async fn locked(&mut self, operation: &Operation) -> Result<Report, Error> {
        // Behind a transaction pooler the next query may reach another server session, which
        // does not hold the lock: find out before touching anything.
        let rows = self
            .query("SELECT pg_backend_pid()", "checking the session")
            .await?;
        self.check_backend(&rows)?;
        let names = &self.config.names;
        ensure_history(self.conn, names).await?;
        let baseline = self
            .query(SNAPSHOT_SESSION, "reading session settings")
            .await?;
        self.baseline = SessionBaseline::from_rows(&baseline);
        let mut history = read_history(self.conn, names, FORMAT_VERSION).await?;
        self.mark_dead_runners(&mut history).await?;
        let plan = plan::plan_with(
            self.migrations,
            &history,
            operation,
            &self.config.plan_options(),
        )?;
        if !self.config.allow_data_loss {
            plan::refuse_data_loss(self.migrations, &plan)?;
        }
        for warning in &plan.warnings {
            log::warn!("{warning}");
            (self.events)(&Event::Warning(warning));
        }
        let mut report = Report {
            warnings: plan.warnings.clone(),
            ..Report::default()
        };
        let stored = self.stored_downs(&plan, &history).await?;
        let jobs: Vec<Job<'_>> = plan
            .steps
            .iter()
            .filter_map(|step| match step.stored_down {
                true => {
                    let migration = stored.iter().find(|m| m.version() == step.version)?;
                    Some(Job {
                        migration,
                        script: migration.down()?,
                        direction: Direction::Down,
                        detail: Some(STORED_DOWN_DETAIL),
                    })
                }
                false => self.job(step),
            })
            .collect();
        if self.config.grouped {
            // One batch cannot wait for a function between two scripts.
            if let Some(job) = jobs.iter().find(|j| j.script.code().is_some()) {
                let source = DbError::runner(
                    "a code migration cannot run in grouped mode (one query string for every \
                     migration)"
                        .to_owned(),
                    Some("run without grouped mode".to_owned()),
                );
                return Err(self.script_error(job, source, 1, None, None));
            }
        }
        if self.config.grouped && !jobs.is_empty() {
            report.ran = self.apply_grouped(&jobs).await?;
            self.record_schema(&report).await?;
            return Ok(report);
        }
        for job in &jobs {
            (self.events)(&Event::Started {
                version: job.migration.version(),
                name: job.migration.name(),
                direction: job.direction,
                no_transaction: job.script.no_transaction(),
            });
            let duration = if let Some(code) = job.script.code() {
                self.apply_code(job, code).await?
            } else if job.script.no_transaction() {
                self.apply_statements(job).await?
            } else {
                self.apply_transactional(job).await?
            };
            (self.events)(&Event::Finished {
                version: job.migration.version(),
                name: job.migration.name(),
                direction: job.direction,
                duration,
            });
            report.ran.push(Ran {
                version: job.migration.version(),
                name: job.migration.name().to_owned(),
                direction: job.direction,
                no_transaction: job.script.no_transaction(),
                duration,
            });
        }
        self.record_schema(&report).await?;
        Ok(report)
    }

    /// With `record_schema`, stores the schema after an `up` that applied something, for
    /// `verify --schema-drift`.
    async fn record_schema(&mut self, report: &Report) -> Result<(), Error> {
        let mut applied = report.ran.iter().filter(|r| r.direction == Direction::Up);
        let Some(newest) = applied.next_back() else {
            return Ok(());
        };
        if !self.config.record_schema {
            return Ok(());
        }
        crate::snapshot::record_with(self.conn, &self.config.names, Some(newest.version))
            .await
            .map(|_| ())
            .map_err(|e| Error::Db {
                context: "recording the schema snapshot".to_owned(),
                source: match e {
                    crate::snapshot::DriftError::Db { source, .. } => source,
                    other => DbError::runner(other.to_string(), None),
                },
            })
    }

    fn job(&self, step: &Step) -> Option<Job<'e>> {
        let migrations: &'e Migrations = self.migrations;
        let migration = migrations.get(step.version)?;
        let script = match step.direction {
            Direction::Up => migration.up(),
            Direction::Down => migration.down()?,
        };
        Some(Job {
            migration,
            script,
            direction: step.direction,
            detail: None,
        })
    }

    /// The migrations the plan reverts with the down script stored in the history: read
    /// from the history only now, for these rows alone.
    async fn stored_downs(
        &mut self,
        plan: &Plan,
        history: &[AppliedMigration],
    ) -> Result<Vec<Migration>, Error> {
        let mut out = Vec::new();
        for step in plan.steps.iter().filter(|s| s.stored_down) {
            let Some(row) = history.iter().find(|r| r.version == step.version) else {
                continue;
            };
            let Some(stored) = &row.stored_down else {
                continue;
            };
            let rows = self
                .query(
                    &self.config.names.select_stored_down(step.version),
                    "reading a stored down script",
                )
                .await?;
            let Some(text) = rows.first().and_then(|r| r.first()).cloned().flatten() else {
                return Err(Error::Plan(plan::PlanError::NoStoredDown(vec![(
                    row.version,
                    row.name.clone(),
                )])));
            };
            out.push(Migration::stored(
                row,
                text,
                stored.checksum.clone(),
                stored.no_transaction,
            ));
        }
        Ok(out)
    }

    /// Rows left `running` belong to a runner that died: this one holds the lock, so no other
    /// runner is alive. They become `failed`, naming the invalid indexes that exist now.
    async fn mark_dead_runners(&mut self, history: &mut [AppliedMigration]) -> Result<(), Error> {
        for row in history.iter_mut().filter(|r| r.state == State::Running) {
            let reverting = row.error.as_deref() == Some(DOWN_IN_PROGRESS);
            // Only the indexes this migration's own statements name: an unrelated invalid
            // index (another session's build in progress, a leftover of someone's manual
            // attempt) is not this migration's to report, nor `repair`'s to drop.
            let invalid = match self.own_index_names(row.version, reverting) {
                names if names.is_empty() => Vec::new(),
                names => match invalid_among(&names) {
                    Some(query) => {
                        first_column(self.query(&query, "looking for invalid indexes").await?)
                    }
                    None => Vec::new(),
                },
            };
            let done = row.statements_done.unwrap_or(0).max(0) as usize;
            let total = row.statements_total.unwrap_or(0).max(0) as usize;
            let error = dead_runner_error(row);
            let sql = self
                .config
                .names
                .fail(row.version, done, total, &error, &invalid);
            self.query(&sql, "recording a dead runner's migration as failed")
                .await?;
            row.state = State::Failed;
            row.error = Some(error);
            row.invalid_indexes = invalid;
        }
        Ok(())
    }

    /// Index names that a migration's no-transaction script creates.
    fn own_index_names(&self, version: i64, down: bool) -> Vec<String> {
        let Some(m) = self.migrations.get(version) else {
            return Vec::new();
        };
        let script = if down { m.down() } else { Some(m.up()) };
        script
            .map(|s| s.statements().filter_map(created_index_name).collect())
            .unwrap_or_default()
    }

    fn check_backend(&self, rows: &[Row]) -> Result<(), Error> {
        check_backend(rows, self.pid)
    }

    /// The settings a migration runs under: the file's timeouts (else the run's), the run's
    /// `search_path`, and `client_connection_check_interval`, so that if the runner dies (or
    /// its future is dropped) during a long statement the server notices within a second,
    /// rolls back and releases the lock instead of finishing the query string first.
    fn timeouts(&self, script: &Script, local: bool) -> String {
        self.settings_sql(
            script.lock_timeout_ms(),
            script.statement_timeout_ms(),
            local,
        )
    }

    fn settings_sql(&self, lock: Option<u64>, statement: Option<u64>, local: bool) -> String {
        let lock = lock.unwrap_or(self.config.lock_timeout.as_millis() as u64);
        let statement = statement.unwrap_or(self.config.statement_timeout.as_millis() as u64);
        // One statement for all of them (`set_config(..., true)` is `SET LOCAL`): each
        // statement of a migration's batch costs the server a parse and a snapshot.
        let mut calls = vec![
            format!("set_config('lock_timeout', '{lock}ms', {local})"),
            format!("set_config('statement_timeout', '{statement}ms', {local})"),
        ];
        if local {
            // In grouped mode the previous migration's bookkeeping turned it on in this
            // transaction: no script runs with the digest trigger off.
            calls.push(sql::BOOKKEEPING_OFF.to_owned());
        }
        // PostgreSQL 14+ on Linux, macOS and the BSDs (probed once per run with the session
        // baseline); elsewhere the setting is refused, and the run goes on without it.
        if self.baseline.check_interval {
            calls.push(format!(
                "set_config('client_connection_check_interval', '1000', {local})"
            ));
        }
        if let Some(path) = &self.config.search_path {
            calls.push(format!(
                "set_config('search_path', {}, {local})",
                quote_literal(path)
            ));
        }
        format!("SELECT {};\n", calls.join(", "))
    }

    /// The bookkeeping of a finished transactional step, as statements to append to its
    /// transaction.
    fn bookkeeping(&self, job: &Job<'_>, execution_ms: Option<u128>) -> String {
        job.step(&self.config.names).commit(execution_ms)
    }

    /// Lock-timeout retries: the pause before attempt `attempt` (from 1), doubling each time.
    fn backoff(&self, attempt: u32) -> Duration {
        self.config
            .retry_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
    }

    /// A transactional script and its history row, committed together in one round trip. The
    /// bookkeeping follows a `\n;\n`, so a script ending in a `--` comment or without a newline
    /// cannot swallow it.
    ///
    /// Every statement of the batch costs the server a parse, a plan and a snapshot, so the
    /// runner's own are as few as the guarantees allow: the marker after the script's last
    /// statement also gives the caller's role and session authorization back (the bookkeeping
    /// runs as the caller, whatever role the script set) and turns on
    /// [`sql::BOOKKEEPING_ON`]; the history row, the audit row and the stored digest are one
    /// statement ([`StepSql::record`]); after `COMMIT`, `RESET ALL` (a script's session-level
    /// `SET`, `set_config`, from wherever) and the last row's statement gives the caller's own
    /// settings back. Seven statements besides the script's, where it was ten and a trigger.
    async fn apply_transactional(&mut self, job: &Job<'_>) -> Result<Duration, Error> {
        job.check_transactional()?;
        let identity = self.baseline.identity_calls();
        let tail = if identity.is_empty() {
            format!(", {}", sql::BOOKKEEPING_ON)
        } else {
            format!(", {identity}, {}", sql::BOOKKEEPING_ON)
        };
        let timeouts = self.timeouts(job.script, true);
        let settings = self.baseline.settings_calls();
        let names = self.config.names.clone();
        let step = job.step(&names);
        let probe = self.config.observe_locks.as_ref().map(|_| lock_probe());
        let batch = |record: &str| {
            let mut batch = Batch::new(Markers::of(&names));
            batch.push("BEGIN;\n");
            batch.script(0, job.script, true, &timeouts, &tail);
            if let Some((probe, _)) = &probe {
                batch.push(probe);
            }
            batch.push(record);
            batch.finish_with("RESET ALL;\n", &settings);
            batch
        };
        let (Some(execute), mode) = (step.execute_record(), self.record) else {
            let batch = batch(&step.record(None));
            return self.send_step(&batch, job, probe.as_ref()).await;
        };
        let sent = match mode {
            Record::Text => step.record(None),
            Record::Execute => execute.clone(),
            Record::Prepare => {
                self.prepare_sent = true;
                format!("{};\n{execute}", names.prepare_record())
            }
        };
        match self.send_step(&batch(&sent), job, probe.as_ref()).await {
            Ok(duration) => {
                if mode == Record::Prepare {
                    self.record = Record::Execute;
                }
                Ok(duration)
            }
            // The name is taken on the caller's session (42P05), or the statement is gone
            // (26000: a script's `DEALLOCATE ALL`, another session behind a transaction
            // pooler): the step was rolled back whole; it runs again with the statement as
            // text, and so does the rest of the run.
            Err(Error::Migration { source, .. })
                if mode != Record::Text && (source.code_is("26000") || source.code_is("42P05")) =>
            {
                self.record = Record::Text;
                if source.code_is("42P05") {
                    // The caller's own statement: not ours to deallocate.
                    self.prepare_sent = false;
                }
                let batch = batch(&step.record(None));
                self.send_step(&batch, job, probe.as_ref()).await
            }
            other => other,
        }
    }

    /// [`Engine::send_batch`] for one transactional step, keeping the locks it held when they
    /// are observed ([`Config::observe_locks`]).
    async fn send_step(
        &mut self,
        batch: &Batch<'_>,
        job: &Job<'_>,
        probe: Option<&(String, String)>,
    ) -> Result<Duration, Error> {
        let (held, rows) = self
            .send_batch_rows(batch, std::slice::from_ref(job), None)
            .await?;
        if let (Some(sink), Some((_, tag))) = (&self.config.observe_locks, probe) {
            // A poisoned lock only means a panic elsewhere; the list inside is still valid.
            let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
            sink.push(HeldLocks {
                version: job.migration.version(),
                direction: job.direction,
                locks: held_locks(&rows, tag),
                held,
            });
        }
        Ok(held)
    }

    /// A Rust-code migration (`crate::code`). Transactional: `BEGIN` and the timeouts, the
    /// function (each statement it sends one round trip, in the transaction), then the
    /// bookkeeping and `COMMIT`; a failure anywhere is rolled back, the function's work with
    /// the history row. No-transaction: the `running` row, the function, then the row
    /// finished, or marked failed (`repair` clears it), as for a no-transaction file.
    async fn apply_code(&mut self, job: &Job<'_>, code: crate::CodeFn) -> Result<Duration, Error> {
        let started = Instant::now();
        let names = self.config.names.clone();
        let step = job.step(&names);
        let in_tx = !job.script.no_transaction();
        let mut prelude = if in_tx {
            "BEGIN;\n".to_owned()
        } else {
            String::new()
        };
        prelude.push_str(&self.timeouts(job.script, in_tx));
        if !in_tx {
            prelude.push_str(&step.start(0));
        }
        prelude.push_str("SELECT pg_backend_pid();\n");
        let outcome = match self.query(&prelude, "starting a code migration").await {
            Ok(rows) => match self.check_backend(&rows) {
                Ok(()) => Ok(crate::code::drive(code, self.conn).await),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let (result, sent) = match outcome {
            Ok(done) => done,
            Err(e) => {
                if in_tx {
                    let _ = self.conn.simple("ROLLBACK").await;
                }
                return Err(e);
            }
        };
        let elapsed = started.elapsed();
        let error = match result {
            Ok(()) => {
                let mut finish = self.identity();
                if in_tx {
                    finish.push_str(&step.commit(Some(elapsed.as_millis())));
                    finish.push_str("COMMIT;\n");
                } else {
                    finish.push_str(&step.finish(Some(elapsed.as_millis())));
                }
                finish.push_str(&self.restore_settings());
                finish.push_str("SELECT pg_backend_pid();");
                match self.conn.simple(&finish).await {
                    Ok(rows) => {
                        self.check_backend(&rows)?;
                        return Ok(elapsed);
                    }
                    Err(source) => (
                        source,
                        "it came after the function, in the bookkeeping or at COMMIT".to_owned(),
                    ),
                }
            }
            // A DbError keeps its SQLSTATE; any other error is the function's own.
            Err(e) => match e.downcast::<DbError>() {
                Ok(db) => (
                    *db,
                    format!("the function failed after {sent} statement(s)"),
                ),
                Err(other) => (
                    DbError::runner(format!("the function returned an error: {other}"), None),
                    format!("the function failed after {sent} statement(s)"),
                ),
            },
        };
        let (source, mut note) = error;
        if in_tx {
            let _ = self.conn.simple("ROLLBACK").await;
            let restore = self.restore();
            let _ = self.conn.simple(&restore).await;
            note.push_str("; its transaction was rolled back, nothing of it is applied");
        } else {
            let record = format!(
                "{}{}{}",
                self.identity(),
                // No statement count: the function's statements are not the file's.
                step.fail(0, 0, &source.to_string(), &[]),
                self.restore_settings()
            );
            if let Err(e) = self.conn.simple(&record).await {
                log::error!(
                    "could not record the failure of {}: {e}",
                    job.migration.name()
                );
            }
            note.push_str(&format!(
                "; no transaction: its statements stay committed; once the function can \
                 resume, `repair {}` clears the failed row",
                job.migration.version()
            ));
        }
        Err(self.script_error(job, source, 1, None, Some(note)))
    }

    /// Sends a transactional batch, retrying it whole when `lock_timeout` expires. On failure
    /// the transaction is rolled back, the progress markers say which statement failed (the
    /// server's position does for an error it located), and they are released.
    async fn send_batch(
        &mut self,
        batch: &Batch<'_>,
        jobs: &[Job<'_>],
        note: Option<String>,
    ) -> Result<Duration, Error> {
        Ok(self.send_batch_rows(batch, jobs, note).await?.0)
    }

    /// [`Engine::send_batch`], with the rows of the batch's last piece (its pid, its lock
    /// probe).
    async fn send_batch_rows(
        &mut self,
        batch: &Batch<'_>,
        jobs: &[Job<'_>],
        note: Option<String>,
    ) -> Result<(Duration, Vec<Row>), Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let mut pieces = batch.pieces();
            let (source, piece) = match self.send_pieces(&mut pieces).await {
                Ok(rows) => {
                    self.check_backend(&rows)?;
                    return Ok((started.elapsed(), rows));
                }
                Err(failed) => failed,
            };
            let _ = self.conn.simple("ROLLBACK").await;
            // Read (and released) whatever the error: a client-side failure may leave the
            // session, and the markers, alive.
            let held = self.read_markers(batch.markers()).await;
            let found = pieces.failed_at(jobs, held, &source, &piece);
            drop(piece);
            let Some(FailedAt {
                job: index,
                statement,
            }) = found
            else {
                // The session is gone (a broken connection, a terminated backend), the markers
                // with it: which statement was running is not known, nor whether the COMMIT
                // reached the server. The next run reads the history and goes on from there.
                return Err(self.session_lost(jobs, source, attempt, note.clone()));
            };
            let job = &jobs[index.min(jobs.len().saturating_sub(1))];
            if source.is_lock_timeout() && attempt <= self.config.lock_retries {
                self.pause_before_retry(job, attempt).await;
                continue;
            }
            let note = match (statement, &note) {
                (Some(_), _) => note.clone(),
                (None, note) => Some(
                    [Some(AFTER_LAST_STATEMENT), note.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            };
            return Err(self.script_error(job, source, attempt, statement, note));
        }
    }

    /// Sends a batch's pieces in order, each one query string, until one fails (the error and
    /// that piece). Only the last piece's rows are read (the pid, the lock probe): the pieces
    /// before it return only the markers' rows, which are not even kept.
    async fn send_pieces<'s>(
        &mut self,
        pieces: &mut Pieces<'_, 's>,
    ) -> Result<Vec<Row>, (DbError, Piece<'s>)> {
        while let Some(piece) = pieces.next_piece() {
            let sent = if pieces.is_done() {
                self.conn.simple(piece.text()).await
            } else {
                self.conn.execute(piece.text()).await.map(|()| Vec::new())
            };
            match sent {
                Ok(rows) if pieces.is_done() => return Ok(rows),
                Ok(_) => {}
                Err(source) => return Err((source, piece)),
            }
        }
        Ok(Vec::new())
    }

    /// The error of a transactional batch whose session ended while it ran.
    fn session_lost(
        &self,
        jobs: &[Job<'_>],
        source: DbError,
        attempts: u32,
        grouped: Option<String>,
    ) -> Error {
        match jobs {
            [job] if grouped.is_none() => {
                let note = "the session ended while it ran, so which statement was running is \
                            not known; it was rolled back unless its COMMIT had reached the \
                            server (the history says which)";
                self.script_error(job, source, attempts, None, Some(note.to_owned()))
            }
            _ => Error::Db {
                context: format!(
                    "the session ended during the single transaction of {} migrations (rolled \
                     back, unless its COMMIT had reached the server: the history says which)",
                    jobs.len()
                ),
                source,
            },
        }
    }

    /// The progress marker this session holds (`None`: none, the batch failed before its first
    /// marker), released on the way; an error when they cannot be read (the session is gone).
    async fn read_markers(&mut self, markers: &Markers) -> Result<Option<u32>, DbError> {
        let rows = self.conn.simple(&markers.read_and_release()).await?;
        Ok(first_column(rows)
            .iter()
            .filter_map(|value| value.parse::<u32>().ok())
            .max())
    }

    async fn pause_before_retry(&mut self, job: &Job<'_>, attempt: u32) {
        let after = self.backoff(attempt);
        log::warn!(
            "{} {} {}: lock_timeout expired; retrying in {after:?}",
            job.direction.as_str(),
            job.migration.version(),
            job.migration.name()
        );
        (self.events)(&Event::Retrying {
            version: job.migration.version(),
            name: job.migration.name(),
            attempt,
            after,
        });
        self.conn.sleep(after).await;
    }

    fn restore(&self) -> String {
        format!("{};\n", self.baseline.restore())
    }

    /// The caller's role and session authorization again (before a step's bookkeeping).
    fn identity(&self) -> String {
        format!("{};\n", self.baseline.identity())
    }

    /// The caller's settings again (after a step's bookkeeping).
    fn restore_settings(&self) -> String {
        format!("{};\n", self.baseline.settings())
    }

    /// Turns a server error into the error a user reads: which migration, which file, which
    /// statement and line.
    fn script_error(
        &self,
        job: &Job<'_>,
        source: DbError,
        attempts: u32,
        statement: Option<Location>,
        note: Option<String>,
    ) -> Error {
        let m = job.migration;
        if source.is_lock_timeout() {
            return Error::LockTimeout {
                version: m.version(),
                spelling: crate::error::spelling(m),
                name: m.name().to_owned(),
                direction: job.direction,
                file: job.script.path().to_owned(),
                statement,
                attempts,
                source,
            };
        }
        Error::Migration {
            version: m.version(),
            spelling: crate::error::spelling(m),
            name: m.name().to_owned(),
            direction: job.direction,
            file: job.script.path().to_owned(),
            statement,
            source,
            note,
        }
    }

    /// A no-transaction script: each statement its own query (a multi-statement string is an
    /// implicit transaction), a `running` row first, progress after each statement, and the
    /// `indisvalid` check after each. On failure the row says `failed`, with the statement,
    /// the server's error and the invalid indexes, and later runs refuse until `repair`.
    ///
    /// The file may hold a `BEGIN ... COMMIT` block of its own: its statements run inside it,
    /// progress too. When one of them fails, the block is rolled back (with the progress made
    /// in it) before the failure is recorded with the real statement number; a block still
    /// open after the last statement is rolled back too, and the migration fails, rather than
    /// commit the block as a side effect of the bookkeeping.
    async fn apply_statements(&mut self, job: &Job<'_>) -> Result<Duration, Error> {
        let started = Instant::now();
        let names = self.config.names.clone();
        let statements: Vec<&str> = job.script.statements().collect();
        let total = statements.len();
        let step = job.step(&names);
        let mut prelude = self.timeouts(job.script, false);
        prelude.push_str(&step.start(total));
        prelude.push_str("SELECT pg_backend_pid();\n");
        let rows = self
            .query(&prelude, "starting a no-transaction migration")
            .await?;
        self.check_backend(&rows)?;
        let before: Vec<String> = self
            .query(INVALID_INDEX_OIDS, "looking for invalid indexes")
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();

        // The statement (index) that opened the user's own transaction block, while it is open.
        let mut block: Option<usize> = None;
        for (index, statement) in statements.iter().enumerate() {
            let number = index + 1;
            let named: Vec<String> = created_index_name(statement).into_iter().collect();
            let check = new_invalid_indexes(&before, &named);
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.conn.simple(statement).await {
                    Ok(_) => {
                        // A statement may have changed the session's identity (`SET ROLE` to a
                        // role that cannot write the history): the progress is written as the
                        // caller, the script's identity kept before (transaction-local) and
                        // given back after, for its next statement (inside its own block too:
                        // the values follow the block). One query string, no round trip more.
                        let identity = self.baseline.identity_calls();
                        let progress = format!(
                            "{IN_TRANSACTION_BLOCK}, {}{}{};\n{}{};\n{check}",
                            sql::KEEP_SCRIPT_IDENTITY,
                            if identity.is_empty() { "" } else { ", " },
                            identity,
                            step.progress(number),
                            sql::GIVE_SCRIPT_IDENTITY_BACK,
                        );
                        let mut rows = self
                            .query(&progress, "recording progress")
                            .await?
                            .into_iter();
                        let in_block_row = rows.next();
                        // The give-back's row.
                        rows.next();
                        let in_block = in_block_row
                            .and_then(|r| r.into_iter().next().flatten())
                            .as_deref()
                            == Some("t");
                        block = match (in_block, block) {
                            (false, _) => None,
                            (true, None) => Some(index),
                            (true, opened) => opened,
                        };
                        let invalid = first_column(rows.collect());
                        if !invalid.is_empty() {
                            let source = DbError::runner(
                                format!(
                                    "the statement succeeded but left invalid index {}",
                                    invalid.join(", ")
                                ),
                                Some(
                                    "an IF NOT EXISTS may have found an index left by an \
                                     earlier failed build"
                                        .into(),
                                ),
                            );
                            let failure = Failure {
                                index,
                                total,
                                line: self.statement_line(job, index),
                                block,
                            };
                            return Err(self.fail(job, failure, source, invalid, attempt).await);
                        }
                        break;
                    }
                    Err(source) => {
                        // A statement that failed inside the user's block aborted it: roll it
                        // back first, or every later query fails (25P02) and the lock stays.
                        let rolled_back = self.leave_block().await;
                        // When the connection itself is gone this fails too; the statement's
                        // own error is the one to report.
                        let invalid = self
                            .conn
                            .simple(&check)
                            .await
                            .map(first_column)
                            .unwrap_or_default();
                        let in_block = rolled_back || block.is_some();
                        // One statement of a rolled-back block cannot be retried on its own.
                        if source.is_lock_timeout()
                            && attempt <= self.config.lock_retries
                            && !in_block
                        {
                            // A CONCURRENTLY build that timed out may leave its index behind,
                            // invalid; drop it so the retry builds it again.
                            for index_name in &invalid {
                                let drop = sql::drop_invalid_index(index_name);
                                self.query(&drop, "dropping an invalid index before a retry")
                                    .await?;
                            }
                            self.pause_before_retry(job, attempt).await;
                            continue;
                        }
                        let failure = Failure {
                            index,
                            total,
                            line: self.statement_line(job, index),
                            block,
                        };
                        return Err(self.fail(job, failure, source, invalid, attempt).await);
                    }
                }
            }
        }
        if let Some(opened) = block {
            let line = self.statement_line(job, opened);
            let source = DbError::runner(
                format!(
                    "the transaction block opened by statement {} (line {line}) is never \
                     closed; the runner rolled it back rather than commit it with its \
                     bookkeeping",
                    opened + 1
                ),
                Some(
                    "end the block with COMMIT, or drop its BEGIN (the file runs outside a \
                     transaction, statement by statement)"
                        .into(),
                ),
            );
            let failure = Failure {
                index: opened,
                total,
                line,
                // Said in the message already.
                block: None,
            };
            return Err(self.fail(job, failure, source, Vec::new(), 1).await);
        }
        let elapsed = started.elapsed();
        let mut finish = self.identity();
        finish.push_str(&step.finish(Some(elapsed.as_millis())));
        finish.push_str(&self.restore_settings());
        finish.push_str("SELECT pg_backend_pid();");
        let rows = self
            .query(&finish, "recording a no-transaction migration")
            .await?;
        self.check_backend(&rows)?;
        Ok(elapsed)
    }

    /// 1-based line where statement `index` of the job's script starts: a count of the lines
    /// before it, so only for a failure (once per statement, 200,000 statements took minutes).
    fn statement_line(&self, job: &Job<'_>, index: usize) -> u32 {
        let start = job.script.ranges().get(index).map_or(0, |r| r.0);
        job.script.line_at(start)
    }

    /// When the session is inside a transaction block (the user's `BEGIN`, aborted by an error
    /// or still open), rolls it back, so that the bookkeeping which follows commits and the
    /// caller's client is left idle. Returns whether it did. Decided by SQLSTATE: in an aborted
    /// block every query fails with 25P02.
    async fn leave_block(&mut self) -> bool {
        let in_block = match self.conn.simple(IN_TRANSACTION_BLOCK).await {
            Ok(rows) => first_column(rows).first().map(String::as_str) == Some("t"),
            Err(e) => e.code_is("25P02"),
        };
        if in_block {
            let _ = self.conn.simple("ROLLBACK").await;
        }
        in_block
    }

    /// Records a no-transaction failure and builds the error to return.
    async fn fail(
        &mut self,
        job: &Job<'_>,
        failure: Failure,
        source: DbError,
        invalid: Vec<String>,
        attempts: u32,
    ) -> Error {
        let m = job.migration;
        // The bookkeeping must not run inside the user's block (it would be rolled back with
        // it, or committed by the user's work).
        self.leave_block().await;
        let mut notes = Vec::new();
        if let Some(opened) = failure.block {
            let line = self.statement_line(job, opened);
            notes.push(format!(
                "the transaction block opened by statement {} (line {line}) was rolled back, \
                 with the statements in it",
                opened + 1
            ));
        }
        if !invalid.is_empty() {
            notes.push(format!(
                "invalid index left behind: {} (`migrations repair {}` drops it)",
                invalid.join(", "),
                m.version()
            ));
        }
        let note = (!notes.is_empty()).then(|| notes.join("; "));
        let mut message = match job.direction {
            Direction::Up => source.to_string(),
            Direction::Down => format!("down script: {source}"),
        };
        if let Some(note) = &note {
            message.push_str(&format!("; {note}"));
        }
        let record = format!(
            "{}{}{}",
            self.identity(),
            job.step(&self.config.names)
                .fail(failure.index, failure.total, &message, &invalid),
            self.restore_settings()
        );
        if let Err(e) = self.conn.simple(&record).await {
            log::error!(
                "could not record the failure of {} {}: {e}",
                m.version(),
                m.name()
            );
        }
        let statement = Location {
            number: failure.index + 1,
            total: failure.total,
            line: failure.line,
        };
        self.script_error(job, source, attempts, Some(statement), note)
    }

    /// Grouped mode: every pending transactional migration in one transaction, all or nothing.
    async fn apply_grouped(&mut self, jobs: &[Job<'_>]) -> Result<Vec<Ran>, Error> {
        if let Some(job) = jobs.iter().find(|j| j.script.no_transaction()) {
            return Err(Error::GroupedNoTransaction {
                version: job.migration.version(),
                spelling: crate::error::spelling(job.migration),
                name: job.migration.name().to_owned(),
            });
        }
        let mut batch = Batch::new(Markers::of(&self.config.names));
        batch.push("BEGIN;\n");
        for (index, job) in jobs.iter().enumerate() {
            job.check_transactional()?;
            // Each migration gets the run's settings (and its file's own timeouts) again: the
            // previous migration's session restore (`RESET ALL`) also undid the `SET LOCAL`s,
            // which left every migration after the first without `lock_timeout` (a grouped
            // migration waiting for a lock then queues all traffic on its table behind it).
            let prefix = self.timeouts(job.script, true);
            batch.script(index, job.script, index == 0, &prefix, "");
            batch.push(&self.restore());
            batch.push(&self.bookkeeping(job, Some(0)));
        }
        batch.finish();
        let started = Instant::now();
        let note = format!(
            "the single transaction of {} migration{} was rolled back: none of them is applied",
            jobs.len(),
            if jobs.len() == 1 { "" } else { "s" }
        );
        self.send_batch(&batch, jobs, Some(note)).await?;
        let each = started.elapsed() / jobs.len().max(1) as u32;
        Ok(jobs
            .iter()
            .map(|job| Ran {
                version: job.migration.version(),
                name: job.migration.name().to_owned(),
                direction: job.direction,
                no_transaction: false,
                duration: each,
            })
            .collect())
    }
}

/// The last row of a batch is `pg_backend_pid()`: a different backend than the one holding the
/// lock means a transaction pooler hands out sessions per transaction.
fn check_backend(rows: &[Row], pid: i64) -> Result<(), Error> {
    let after = rows
        .last()
        .and_then(|r| r.first())
        .and_then(|c| c.as_deref())
        .and_then(|p| p.parse::<i64>().ok());
    match after {
        Some(after) if after != pid => Err(Error::PoolerDetected { before: pid, after }),
        _ => Ok(()),
    }
}

fn first_column(rows: Vec<Row>) -> Vec<String> {
    rows.into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect()
}

/// The note of a transactional failure that came after the script's last statement.
const AFTER_LAST_STATEMENT: &str = "it came after the file's last statement: a deferred \
     constraint checked at COMMIT, or the runner's bookkeeping";

/// Where a no-transaction script failed.
struct Failure {
    /// 0-based index of the statement.
    index: usize,
    /// How many statements the script holds.
    total: usize,
    /// 1-based line where the statement starts.
    line: u32,
    /// The statement (index) that opened the user's transaction block the failure was in.
    block: Option<usize>,
}

/// Catches a panic raised while polling the inner future, so the lock can be released before
/// the panic goes on.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
