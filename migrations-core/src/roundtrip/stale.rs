//! Scratch databases left behind by a check that was killed outright (`SIGKILL`, a CI job
//! cancelled): each check, before it creates its own, drops those whose owner is gone.
//!
//! A scratch database is named `migrations_test_<pid>_<unix time>_<n>` and its comment says
//! which process on which host made it (`migrations test scratch database of pid <pid> on host
//! <host>`). One is stale when no session is connected to it (a running check always holds
//! one) and either its process is gone from this host, or, made on another host or before the
//! comment existed, it is more than an hour old. It is dropped without `FORCE`, so a session
//! that connects meanwhile keeps it; one this role may not drop is left alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::db::Conn;
use crate::sql::{quote_ident, quote_literal};

/// Every scratch database's name starts with this.
pub(crate) const PREFIX: &str = "migrations_test_";

/// How old a scratch database of another host must be before it counts as stale.
const FOREIGN_AGE_SECS: u64 = 3600;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A unique scratch database name: `migrations_test_<pid>_<unix time>_<n>`.
pub(crate) fn scratch_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{PREFIX}{}_{}_{}",
        std::process::id(),
        now_secs(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// This machine's name (Linux; `None` elsewhere: then only age makes a database stale).
fn host() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// `COMMENT ON DATABASE`: who made the scratch database.
pub(crate) fn marker_sql(name: &str) -> String {
    format!(
        "COMMENT ON DATABASE {} IS {}",
        quote_ident(name),
        quote_literal(&marker(std::process::id(), host().as_deref()))
    )
}

fn marker(pid: u32, host: Option<&str>) -> String {
    format!(
        "migrations test scratch database of pid {pid} on host {}",
        host.unwrap_or("?")
    )
}

/// Whether process `pid` of this host is gone (`None`: cannot tell, no `/proc`).
fn process_gone(pid: u32) -> Option<bool> {
    if !std::path::Path::new("/proc/self").exists() {
        return None;
    }
    Some(!std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Whether a scratch database (its name, comment, and whether a session is connected to it)
/// is stale, for a check running as `me` on `here`.
fn is_stale(
    name: &str,
    comment: Option<&str>,
    connected: bool,
    me: u32,
    here: Option<&str>,
    now: u64,
    gone: impl Fn(u32) -> Option<bool>,
) -> bool {
    if connected {
        return false;
    }
    let mut parts = name.strip_prefix(PREFIX).unwrap_or("").split('_');
    let (Some(Ok(pid)), Some(Ok(secs))) = (
        parts.next().map(str::parse::<u32>),
        parts.next().map(str::parse::<u64>),
    ) else {
        // Not one of ours (a user's database with a look-alike name).
        return false;
    };
    if pid == me {
        return false;
    }
    let same_host = here.is_some() && comment == Some(marker(pid, here).as_str());
    if same_host {
        if let Some(gone) = gone(pid) {
            return gone;
        }
    }
    now.saturating_sub(secs) > FOREIGN_AGE_SECS
}

/// Drops the stale scratch databases of this server (see the module documentation); returns
/// their names. Failing to list or drop them is logged, never an error: it is housekeeping.
pub(crate) async fn drop_stale<C: Conn>(admin: &mut C) -> Vec<String> {
    let list = admin
        .simple(&format!(
            "SELECT d.datname::text, pg_catalog.shobj_description(d.oid, 'pg_database'), \
                    EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.datid = d.oid)::text \
             FROM pg_catalog.pg_database d WHERE d.datname LIKE {} ORDER BY 1",
            quote_literal(&format!("{}%", PREFIX.replace('_', "\\_")))
        ))
        .await;
    let rows = match list {
        Ok(rows) => rows,
        Err(e) => {
            log::debug!("could not look for stale scratch databases: {e}");
            return Vec::new();
        }
    };
    let (me, here, now) = (std::process::id(), host(), now_secs());
    let mut dropped = Vec::new();
    for row in rows {
        let [Some(name), comment, Some(connected)] =
            <[Option<String>; 3]>::try_from(row).unwrap_or_default()
        else {
            continue;
        };
        if !is_stale(
            &name,
            comment.as_deref(),
            connected == "true",
            me,
            here.as_deref(),
            now,
            process_gone,
        ) {
            continue;
        }
        // No FORCE: a session that connected since the list was read keeps the database.
        match admin
            .simple(&format!("DROP DATABASE IF EXISTS {}", quote_ident(&name)))
            .await
        {
            Ok(_) => {
                log::info!("dropped the stale scratch database {name} (its check was killed)");
                dropped.push(name);
            }
            Err(e) => log::debug!("left the scratch database {name}: {e}"),
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_when_its_process_is_gone_or_it_is_old_and_foreign() {
        let here = Some("box");
        let mine = marker(42, here);
        let gone = |pid: u32| Some(pid == 42);
        let now = 10_000;
        let stale = |name: &str, comment: Option<&str>, connected: bool| {
            is_stale(name, comment, connected, 7, here, now, gone)
        };
        // Same host, process gone, nobody connected.
        assert!(stale("migrations_test_42_9990_0", Some(&mine), false));
        // Someone is connected: a live check.
        assert!(!stale("migrations_test_42_9990_0", Some(&mine), true));
        // Same host, process alive.
        let alive = marker(43, here);
        assert!(!stale("migrations_test_43_1_0", Some(&alive), false));
        // Another host: only when old.
        let foreign = marker(42, Some("other"));
        assert!(!stale("migrations_test_42_9990_0", Some(&foreign), false));
        assert!(stale("migrations_test_42_1_0", Some(&foreign), false));
        // Our own, and names that are not ours.
        assert!(!is_stale(
            "migrations_test_7_1_0",
            None,
            false,
            7,
            here,
            now,
            gone
        ));
        assert!(!stale("migrations_test_prod", None, false));
    }
}
