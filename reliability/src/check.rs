//! What a run leaves in the database, read back and compared with a clean run.

use std::time::{Duration, Instant};

use migrations_core::{Names, Snapshot};
use postgres::{Client, NoTls};

/// The state a run leaves: the schema snapshot, the rows of every table (counts), how many
/// times each migration logged itself, and the history.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The schema, as `migrations_core::Snapshot` reads it (history tables left out).
    pub snapshot: Snapshot,
    /// `(table, rows)` for every table and materialized view in `public` but the history.
    pub counts: Vec<(String, i64)>,
    /// `(version, times)` from `applied_log`, when the set has it.
    pub applied_log: Vec<(i32, i64)>,
    /// `(version, state)` from the history table.
    pub history: Vec<(i64, String)>,
    /// Names of invalid indexes.
    pub invalid_indexes: Vec<String>,
}

/// A plain (no TLS) blocking connection.
pub fn connect(url: &str) -> Result<Client, String> {
    Client::connect(url, NoTls).map_err(|e| format!("connect: {}", pg_error(&e)))
}

/// A client error with the server's message and SQLSTATE when there is one (the `Display` of
/// `postgres::Error` says only "db error").
pub fn pg_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Reads the state of the database at `url`.
pub fn read_state(url: &str) -> Result<State, String> {
    let mut client = connect(url)?;
    let snapshot = Snapshot::read(&mut client, &Names::default())
        .map_err(|e| format!("reading the schema snapshot: {e}"))?;
    let tables: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm', 'p') \
             AND c.relname NOT LIKE 'migrations\\_history%' ORDER BY 1",
            &[],
        )
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut counts = Vec::new();
    for table in tables {
        let sql = format!(
            "SELECT count(*) FROM public.\"{}\"",
            table.replace('"', "\"\"")
        );
        let n: i64 = client
            .query_one(&sql, &[])
            .map_err(|e| format!("{sql}: {e}"))?
            .get(0);
        counts.push((table, n));
    }
    let applied_log = if counts.iter().any(|(t, _)| t == "applied_log") {
        client
            .query(
                "SELECT version, count(*) FROM public.applied_log GROUP BY 1 ORDER BY 1",
                &[],
            )
            .map_err(|e| e.to_string())?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    } else {
        Vec::new()
    };
    let history = history(&mut client)?;
    let invalid_indexes = invalid_indexes(&mut client)?;
    Ok(State {
        snapshot,
        counts,
        applied_log,
        history,
        invalid_indexes,
    })
}

/// `(version, state)` of every history row; empty when there is no history table yet.
pub fn history(client: &mut Client) -> Result<Vec<(i64, String)>, String> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('public.migrations_history') IS NOT NULL",
            &[],
        )
        .map_err(|e| e.to_string())?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    Ok(client
        .query(
            "SELECT version, state::text FROM public.migrations_history ORDER BY version",
            &[],
        )
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Names of the invalid indexes (`NOT indisvalid`) of the database.
pub fn invalid_indexes(client: &mut Client) -> Result<Vec<String>, String> {
    Ok(client
        .query(
            "SELECT i.indexrelid::regclass::text FROM pg_index i WHERE NOT i.indisvalid ORDER BY 1",
            &[],
        )
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Every way `actual` differs from the clean run's `reference`, one line each.
pub fn compare(reference: &State, actual: &State) -> Vec<String> {
    let mut out = Vec::new();
    let diff = reference.snapshot.diff(&actual.snapshot);
    if !diff.is_empty() {
        let shown: Vec<String> = diff.iter().take(5).map(|d| d.to_string()).collect();
        out.push(format!(
            "schema differs from a clean run ({} objects): {}",
            diff.len(),
            shown.join("; ")
        ));
    }
    if reference.counts != actual.counts {
        out.push(format!(
            "row counts differ: clean {:?}, here {:?}",
            reference.counts, actual.counts
        ));
    }
    if reference.applied_log != actual.applied_log {
        out.push(format!(
            "migrations did not run exactly once: clean {:?}, here {:?}",
            reference.applied_log, actual.applied_log
        ));
    }
    if reference.history != actual.history {
        out.push(format!(
            "history differs: clean {:?}, here {:?}",
            reference.history, actual.history
        ));
    }
    if !actual.invalid_indexes.is_empty() {
        out.push(format!(
            "invalid indexes left: {:?}",
            actual.invalid_indexes
        ));
    }
    out
}

/// Advisory locks held in database `dbname`.
pub fn advisory_locks(admin: &mut Client, dbname: &str) -> Result<i64, String> {
    Ok(admin
        .query_one(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND d.datname = $1",
            &[&dbname],
        )
        .map_err(|e| e.to_string())?
        .get(0))
}

/// Waits (at most `limit`) until no session of the `migrations` binary is left on `dbname`:
/// a killed runner's backend lives on until it notices its client is gone.
pub fn wait_runner_sessions_gone(
    admin: &mut Client,
    dbname: &str,
    limit: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND application_name = 'migrations'",
                &[&dbname],
            )
            .map_err(|e| e.to_string())?
            .get(0);
        if n == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            return Err(format!(
                "{n} runner session(s) still on {dbname} after {limit:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The key of the runner's advisory lock (the default history table's), as the engine takes
/// it: `pg_try_advisory_lock(bigint)`.
pub fn migrations_lock_key() -> i64 {
    Names::default().lock_key()
}

/// Rows of `pg_locks` (held or awaited) for the runner's advisory lock in database `dbname`.
/// A `bigint` advisory key shows as `classid` (high 32 bits), `objid` (low 32 bits) and
/// `objsubid = 1`.
pub fn migrations_locks(admin: &mut Client, dbname: &str) -> Result<i64, String> {
    Ok(admin
        .query_one(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND d.datname = $1 \
             AND ((l.classid::int8 << 32) | l.objid::int8) = $2",
            &[&dbname, &migrations_lock_key()],
        )
        .map_err(|e| format!("reading pg_locks: {e}"))?
        .get(0))
}

/// Waits (at most `limit`) until nobody holds or awaits the runner's advisory lock on
/// `dbname`: the server may need a moment to notice that a session's client is gone. Returns
/// how long that took, or how many locks are left.
pub fn wait_lock_released(
    admin: &mut Client,
    dbname: &str,
    limit: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let n = migrations_locks(admin, dbname)?;
        if n == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            return Err(format!(
                "the migrations advisory lock is still held on {dbname} {limit:?} after the \
                 runner ended ({n} row(s) in pg_locks)"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Shows that [`migrations_locks`] sees a held lock: a session of our own takes the runner's
/// lock on `url`'s database, the query must count it, and after the unlock it must not.
/// Without this, a query that can never match would pass every "no lock left" check.
pub fn prove_lock_query(url: &str, admin: &mut Client, dbname: &str) -> Result<(), String> {
    let mut holder = connect(url)?;
    let key = migrations_lock_key();
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .map_err(|e| e.to_string())?;
    let held = migrations_locks(admin, dbname)?;
    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .map_err(|e| e.to_string())?;
    let after = migrations_locks(admin, dbname)?;
    if held == 1 && after == 0 {
        Ok(())
    } else {
        Err(format!(
            "the pg_locks query for the migrations lock counted {held} while a session held \
             it and {after} after the unlock (expected 1 and 0)"
        ))
    }
}

/// `true` when the history holds a `failed` row: the only case in which a rerun may go
/// through `repair` (decided on the database's facts, not on the wording of a message).
pub fn has_failed_row(url: &str) -> Result<bool, String> {
    let mut client = connect(url)?;
    Ok(history(&mut client)?.iter().any(|(_, s)| s == "failed"))
}

/// The version of a `failed` row that failed while its down script ran, if there is one: the
/// runner writes `down script: <error>` for a down that failed, and `... of the down script`
/// for a down whose runner died (history format 1 has no direction column).
pub fn failed_down(url: &str) -> Result<Option<i64>, String> {
    let mut client = connect(url)?;
    if history(&mut client)?.is_empty() {
        return Ok(None);
    }
    client
        .query_opt(
            "SELECT version FROM public.migrations_history \
             WHERE state = 'failed' \
             AND (starts_with(error, 'down script: ') OR error LIKE '% of the down script') \
             ORDER BY version DESC LIMIT 1",
            &[],
        )
        .map(|row| row.map(|r| r.get(0)))
        .map_err(|e| e.to_string())
}

/// How a rerun went: the commands it took, and how many of them were `repair`.
#[derive(Debug, Clone, Default)]
pub struct Rerun {
    /// Each command run, with how it ended when it did not succeed.
    pub steps: Vec<String>,
    /// How many `repair`s were needed.
    pub repairs: usize,
}

/// Runs `args` (for example `["up"]`) until it succeeds: when it refuses with exit 3 and the
/// history holds a `failed` row (a no-transaction migration interrupted part-way, SPEC 3.3),
/// `repair` first, then again; at most [`RERUN_ROUNDS`] rounds. Any other outcome is an error
/// describing it.
pub fn rerun(cli: &crate::bin::Cli, args: &[&str], url: &str) -> Result<Rerun, String> {
    let mut done = Rerun::default();
    let what = args.join(" ");
    for _ in 0..RERUN_ROUNDS {
        let run = cli.run(args);
        if run.code == Some(0) {
            done.steps.push(what);
            return Ok(done);
        }
        if run.code == Some(3) && has_failed_row(url)? {
            done.steps.push(format!("{what} (exit 3: failed)"));
            // A down that stopped part-way: `repair` clears its row, which would make the
            // next `down` skip the rest of that down (RELIABILITY.md, finding 6, open). The
            // recovery an operator is told (`redo`'s restore command): `repair`, then `up` to
            // apply that migration whole again, then the command again.
            let reapply = failed_down(url)?;
            let repair = cli.run(&["repair"]);
            if repair.code != Some(0) {
                return Err(format!(
                    "repair failed after {:?}: {}",
                    done.steps,
                    repair.describe()
                ));
            }
            done.repairs += 1;
            done.steps.push("repair".to_owned());
            if let Some(version) = reapply {
                let to = version.to_string();
                let up = cli.run(&["up", "--to", &to]);
                if up.code != Some(0) {
                    return Err(format!(
                        "up --to {to} after repairing a failed down failed after {:?}: {}",
                        done.steps,
                        up.describe()
                    ));
                }
                done.steps.push(format!("up --to {to}"));
            }
            continue;
        }
        return Err(format!(
            "the rerun `{what}` failed after {:?}: {}",
            done.steps,
            run.describe()
        ));
    }
    Err(format!(
        "the rerun did not complete in {RERUN_ROUNDS} rounds: {:?}",
        done.steps
    ))
}

/// How many rounds of a command (and `repair`) a rerun may take before it counts as stuck.
pub const RERUN_ROUNDS: usize = 4;

/// The clean states after each version of `set`: `[k]` is the state with the first `k`
/// versions applied (`[0]`: before anything), read from the (empty) database at `url`
/// stepped up with `up --to`.
pub fn references(
    bin: &std::path::Path,
    url: &str,
    dir: &std::path::Path,
    set: &[crate::sets::Migration],
) -> Result<Vec<State>, String> {
    let cli = crate::bin::Cli::new(bin, url, dir);
    let mut out = vec![read_state(url)?];
    for (version, ..) in set {
        let up = cli.run(&["up", "--to", &version.to_string()]);
        if up.code != Some(0) {
            return Err(format!(
                "the clean run failed at {version}: {}",
                up.describe()
            ));
        }
        out.push(read_state(url)?);
    }
    Ok(out)
}
