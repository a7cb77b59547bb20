//! `up`, `down`, `redo`: run the engine with a live line per migration, or print its plan.

use serde_json::{json, Value};

use migrations_core::plan::Step;
use migrations_core::{DownTarget, Drift, Event, Migrations, Migrator, Operation, Report};

use crate::context::Context;
use crate::exit::Error;
use crate::output::{millis, Output, Style};

pub fn up(
    ctx: &Context<'_>,
    to: Option<&str>,
    dry_run: bool,
    allow_out_of_order: bool,
    single_transaction: bool,
    record_schema: bool,
) -> Result<(), Error> {
    let to = to.map(|v| ctx.version(v)).transpose()?;
    let operation = Operation::Up { to };
    execute(ctx, "up", &operation, dry_run, |m| {
        let m = m
            .allow_out_of_order(allow_out_of_order)
            .single_transaction(single_transaction);
        // The flag turns recording on; without it, migrations.toml decides.
        if record_schema {
            m.record_schema(true)
        } else {
            m
        }
    })
}

pub fn down(
    ctx: &Context<'_>,
    count: Option<usize>,
    to: Option<&str>,
    all: bool,
    dry_run: bool,
) -> Result<(), Error> {
    let target = match (to, all) {
        (_, true) => DownTarget::All,
        (Some(v), false) => DownTarget::To(ctx.version(v)?),
        (None, false) => DownTarget::Count(count.unwrap_or(1)),
    };
    execute(ctx, "down", &Operation::Down(target), dry_run, |m| m)
}

pub fn redo(ctx: &Context<'_>, count: usize) -> Result<(), Error> {
    execute(ctx, "redo", &Operation::Redo { count }, false, |m| m)
}

fn execute(
    ctx: &Context<'_>,
    command: &str,
    operation: &Operation,
    dry_run: bool,
    configure: impl FnOnce(Migrator<'_>) -> Migrator<'_>,
) -> Result<(), Error> {
    let migrations = ctx.migrations()?;
    let mut client = ctx.connect()?;
    if dry_run {
        let migrator = configure(ctx.migrator(&migrations));
        let plan = migrator.plan(&mut client, operation)?;
        for warning in &plan.warnings {
            ctx.out.warn(&warning.to_string());
        }
        if plan.steps.is_empty() {
            ctx.out.line("nothing to do");
        }
        for step in &plan.steps {
            ctx.out.line(&format!(
                "would run {} {} {} ({})",
                step.direction.as_str(),
                step.version,
                step.name,
                mode(step.no_transaction)
            ));
        }
        ctx.out.document(json!({
            "command": command,
            "dry_run": true,
            "plan": plan.steps.iter().map(step_json).collect::<Vec<_>>(),
            "warnings": plan.warnings.iter().map(drift_json).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let report = run_live(ctx, &migrations, operation, configure, &mut client)?;
    if report.ran.is_empty() {
        ctx.out.line("nothing to do: the database is up to date");
    } else {
        ctx.out.line(&format!(
            "{} migration{} in {} ms",
            report.ran.len(),
            if report.ran.len() == 1 { "" } else { "s" },
            millis(report.duration)
        ));
    }
    ctx.out.document(report_json(command, &report));
    Ok(())
}

/// Runs with a line per migration as it finishes (and a live spinner on a terminal).
fn run_live(
    ctx: &Context<'_>,
    migrations: &Migrations,
    operation: &Operation,
    configure: impl FnOnce(Migrator<'_>) -> Migrator<'_>,
    client: &mut postgres::Client,
) -> Result<Report, Error> {
    let out: &Output = &ctx.out;
    let mut live = None;
    let mut migrator = configure(ctx.migrator(migrations)).on_event(move |event| match event {
        Event::WaitingForLock { key } => out.warn(&format!(
            "another runner holds the migrations lock (advisory lock {key}); waiting"
        )),
        Event::Warning(drift) => out.warn(&drift.to_string()),
        Event::Started {
            version,
            name,
            direction,
            ..
        } => live = out.live(format!("{} {version} {name}", direction.as_str())),
        Event::Retrying {
            version,
            name,
            attempt,
            after,
        } => out.warn(&format!(
            "{version} {name}: lock_timeout expired (attempt {attempt}); retrying in {} ms",
            millis(*after)
        )),
        Event::Finished {
            version,
            name,
            direction,
            duration,
        } => {
            if let Some(bar) = live.take() {
                bar.finish_and_clear();
            }
            out.line(&format!(
                "{} {version} {name} {}",
                out.paint(Style::Good, direction.as_str()),
                out.paint(Style::Dim, &format!("({} ms)", millis(*duration)))
            ));
        }
        _ => {}
    });
    Ok(migrator.execute(client, operation)?)
}

fn mode(no_transaction: bool) -> &'static str {
    if no_transaction {
        "outside a transaction"
    } else {
        "in a transaction"
    }
}

fn step_json(step: &Step) -> Value {
    json!({
        "version": step.version,
        "name": step.name,
        "direction": step.direction.as_str(),
        "transaction": !step.no_transaction,
    })
}

pub fn drift_json(drift: &Drift) -> Value {
    json!({
        "kind": drift.kind.as_str(),
        "migrations": drift.items.iter().map(|i| json!({
            "version": i.version,
            "name": i.name,
            "detail": i.detail,
        })).collect::<Vec<_>>(),
    })
}

fn report_json(command: &str, report: &Report) -> Value {
    json!({
        "command": command,
        "dry_run": false,
        "ran": report.ran.iter().map(|r| json!({
            "version": r.version,
            "name": r.name,
            "direction": r.direction.as_str(),
            "transaction": !r.no_transaction,
            "duration_ms": millis(r.duration),
        })).collect::<Vec<_>>(),
        "warnings": report.warnings.iter().map(drift_json).collect::<Vec<_>>(),
        "up_to_date": report.ran.is_empty(),
        "duration_ms": millis(report.duration),
    })
}
