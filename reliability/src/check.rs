//! What a run leaves in the database, read back and compared with a clean run.

use std::time::{Duration, Instant};

use migrations_core::{Names, Snapshot};
use postgres::{Client, NoTls};

/// The state a run leaves: the schema snapshot, the rows of every table (counts), how many
/// times each migration logged itself, and the history.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
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

pub fn connect(url: &str) -> Result<Client, String> {
    Client::connect(url, NoTls).map_err(|e| format!("connect: {e}"))
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
