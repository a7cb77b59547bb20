//! `test`: the round trip (SPEC section 7) on a scratch database created on the server of
//! `--database-url` / `DATABASE_URL` / `PG*`, dropped after, also on Ctrl-C.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

use migrations_core::roundtrip::{
    self, DataChange, Interrupt, MigrationCheck, ObservedLock, Options, Outcome, RoundTripReport,
};
use migrations_core::snapshot::{Change, Difference};

use crate::context::Context;
use crate::exit::Error;
use crate::output::{millis, Style};

/// The command's own flags.
pub struct Flags {
    pub ignore_column_order: bool,
    pub schema_only: bool,
    pub max_lock: Option<String>,
    pub rows: usize,
}

pub fn run(
    ctx: &Context<'_>,
    from: Option<&str>,
    to: Option<&str>,
    flags: Flags,
) -> Result<(), Error> {
    // Read before the migrations are loaded: the directory it comes from is dropped at once,
    // so a big file is not held twice.
    let settings = ctx.directory()?.settings.test;
    let migrations = ctx.migrations()?;
    let from = from.map(|v| ctx.version(v)).transpose()?;
    let to = to.map(|v| ctx.version(v)).transpose()?;
    // Connecting first gives the command's own connection errors (and exit codes); the
    // check's parts connect with the same options.
    drop(ctx.connect()?);

    let interrupt = Interrupt::new();
    install_interrupt_handler(ctx, &interrupt);

    let global = ctx.global;
    let flags_max_lock = flags.max_lock.is_some();
    let names = ctx.names(&migrations);
    let mut options = Options::new()
        .schema(names.schema)
        .table(names.table)
        .ignore_column_order(flags.ignore_column_order)
        .schema_only(flags.schema_only)
        .rows(flags.rows)
        .interrupt(&interrupt);
    // --max-lock, else `max_lock` in `[test]` of migrations.toml.
    let max_lock = flags.max_lock.or(settings.max_lock);
    if let Some(jobs) = settings.jobs {
        options = options.jobs(jobs);
    }
    if let Some(mode) = &max_lock {
        options = options.max_lock(mode.clone());
    }
    if let Some(v) = from {
        options = options.from(v);
    }
    if let Some(v) = to {
        options = options.to(v);
    }
    if let Some(path) = &global.search_path {
        options = options.search_path(path.clone());
    }
    if let Some(t) = global.lock_timeout {
        options = options.lock_timeout(t);
    }
    if let Some(t) = global.statement_timeout {
        options = options.statement_timeout(t);
    }
    let out = &ctx.out;
    let live = out.live("round trip on a scratch database".to_owned());
    let options = options.on_result(|check| {
        let print = || out.line(&painted(ctx, check));
        match &live {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    });

    let result = roundtrip::check_on(&ctx.connect_options(), &migrations, options);
    if let Some(bar) = &live {
        bar.finish_and_clear();
    }
    let report = result.map_err(|e| match e {
        roundtrip::Error::UnknownVersion(v) => Error::Usage(format!(
            "version {v} is not one of the migrations in {}",
            global.dir.display()
        )),
        roundtrip::Error::Setup(e) => Error::from(*e),
        e @ roundtrip::Error::Placeholder(_) => Error::Usage(e.to_string()),
        e @ roundtrip::Error::LockMode(_) => Error::Usage(if flags_max_lock {
            format!("--max-lock: {e}")
        } else {
            format!("max_lock in [test] of migrations.toml: {e}")
        }),
        other => Error::Io(other.to_string()),
    })?;

    for name in &report.stale_dropped {
        out.line(&format!(
            "dropped the stale scratch database {name}: its check was killed before it could drop it"
        ));
    }
    let summary = report.summary();
    out.line(&if report.passed() {
        out.paint(Style::Good, &summary)
    } else {
        out.paint(Style::Bad, &summary)
    });
    out.line(&report.timing());
    out.document(report_json(&report));
    if report.passed() {
        Ok(())
    } else {
        Err(Error::Findings)
    }
}

/// First Ctrl-C (or SIGTERM): cancel the running query and stop, so the scratch database is
/// dropped before exiting. A second one exits at once (the database may then be left behind;
/// its name starts with `migrations_test_`).
fn install_interrupt_handler(ctx: &Context<'_>, interrupt: &Interrupt) {
    let interrupt = interrupt.clone();
    let quiet = ctx.out.quiet;
    let hits = AtomicUsize::new(0);
    let installed = ctrlc::set_handler(move || {
        if hits.fetch_add(1, Ordering::SeqCst) == 0 {
            if !quiet {
                eprintln!(
                    "interrupted: stopping and dropping the scratch database (press Ctrl-C \
                     again to quit at once)"
                );
            }
            interrupt.trigger();
        } else {
            std::process::exit(130);
        }
    });
    if let Err(e) = installed {
        log::warn!("cannot handle Ctrl-C ({e}); an interrupted run may leave its scratch database");
    }
}

/// The migration's lines, with its first word coloured.
fn painted(ctx: &Context<'_>, check: &MigrationCheck) -> String {
    let text = check.to_string();
    let style = match check.outcome {
        _ if check.is_failure() => Style::Bad,
        Outcome::Passed => Style::Good,
        _ => Style::Warn,
    };
    match text.split_once(' ') {
        Some((word, rest)) => format!("{} {rest}", ctx.out.paint(style, word)),
        None => text,
    }
}

fn report_json(report: &RoundTripReport) -> Value {
    json!({
        "command": "test",
        "passed": report.passed(),
        "summary": report.summary(),
        "migrations": report.migrations.iter().map(check_json).collect::<Vec<_>>(),
        "stopped": report.stopped.as_ref().map(|s| json!({
            "version": s.version,
            "name": s.name,
            "reason": s.reason,
            "not_checked": s.not_checked.iter()
                .map(|n| json!({"version": n.version, "name": n.name}))
                .collect::<Vec<_>>(),
        })),
        "scratch_database": report.database,
        "stale_dropped": report.stale_dropped,
        "restarts": report.restarts,
        "duration_ms": millis(report.duration),
        "timing": report.timing(),
        "slowest": report.slowest(3).iter()
            .map(|m| json!({"version": m.version, "name": m.name, "duration_ms": millis(m.duration)}))
            .collect::<Vec<_>>(),
    })
}

fn check_json(check: &MigrationCheck) -> Value {
    let mut value = json!({
        "version": check.version,
        "name": check.name,
        "result": if check.outcome == Outcome::Passed && check.is_failure() {
            "lock_too_strong"
        } else {
            check.outcome.kind()
        },
        "failed": check.is_failure(),
        "duration_ms": millis(check.duration),
        "locks": check.locks.iter().map(lock_json).collect::<Vec<_>>(),
        "locks_over_max": check.locks_over.iter().map(lock_json).collect::<Vec<_>>(),
        "down_locks": check.down_locks.iter().map(lock_json).collect::<Vec<_>>(),
        "non_deterministic": check.non_deterministic.iter().map(difference_json).collect::<Vec<_>>(),
        "lossy_up": check.lossy_up.iter().map(change_json).collect::<Vec<_>>(),
        "unfilled": check.unfilled.iter()
            .map(|u| json!({"table": u.table, "why": u.why}))
            .collect::<Vec<_>>(),
    });
    let extra = match &check.outcome {
        Outcome::UpFailed { error } | Outcome::DownFailed { error } => json!({ "error": error }),
        Outcome::DataLoss { changes } => json!({
            "data_loss": changes.iter().map(change_json).collect::<Vec<_>>(),
        }),
        Outcome::AcknowledgedLoss { reason, changes } => json!({
            "reason": reason,
            "data_loss": changes.iter().map(change_json).collect::<Vec<_>>(),
        }),
        Outcome::Mismatch {
            after_down,
            after_redo,
            redo_error,
        } => json!({
            "after_down": after_down.iter().map(difference_json).collect::<Vec<_>>(),
            "after_down_lines": roundtrip::difference_lines(after_down, "after down"),
            "redo_error": redo_error,
            "after_redo": after_redo.iter().map(difference_json).collect::<Vec<_>>(),
            "after_redo_lines": roundtrip::difference_lines(after_redo, "after up again"),
        }),
        // A kind added later: its `kind` and `text` say it all.
        _ => json!({}),
    };
    if let (Value::Object(map), Value::Object(extra)) = (&mut value, extra) {
        map.extend(extra);
    }
    value
}

fn lock_json(lock: &ObservedLock) -> Value {
    json!({ "table": lock.table, "mode": lock.mode_name(), "held_ms": millis(lock.held) })
}

fn change_json(c: &DataChange) -> Value {
    json!({
        "table": c.table,
        "column": c.column,
        "rows": c.rows,
        "of": c.of,
        "example": c.example,
        "text": c.to_string(),
    })
}

fn difference_json(d: &Difference) -> Value {
    let mut value = json!({ "object": d.object, "text": d.to_string() });
    let extra = match &d.change {
        Change::Missing => json!({ "change": "missing" }),
        Change::Unexpected => json!({ "change": "unexpected" }),
        Change::Attribute {
            name,
            expected,
            actual,
        } => json!({
            "change": "attribute",
            "attribute": name,
            "expected": expected,
            "actual": actual,
        }),
        Change::ColumnOrder { expected, actual } => json!({
            "change": "column_order",
            "expected": expected,
            "actual": actual,
        }),
        // A kind added later: its `text` says it.
        _ => json!({}),
    };
    if let (Value::Object(map), Value::Object(extra)) = (&mut value, extra) {
        map.extend(extra);
    }
    value
}
