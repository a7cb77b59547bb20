//! `up`, `status`, `verify --online` and `wait` over a fleet (`--fleet FILE`,
//! `--tenants-query SQL`): the library's fleet run, a live counts line on a terminal, a final
//! table or one JSON document, and the worst target's exit code.

use std::io::IsTerminal;
use std::time::Duration;

use serde_json::{json, Value};

use migrations_core::fleet::{
    Action, Fleet, FleetError, Progress, Target, TargetReport, TargetState,
};
use migrations_core::{Migrator, Operation, Phase};

use crate::cli::{FleetArgs, Format};
use crate::context::Context;
use crate::exit::{Code, Error};
use crate::output::{millis, Style};
use crate::spelling;

/// How many targets run at once without `--jobs`.
const DEFAULT_JOBS: usize = 4;

/// Whether any fleet flag was given: then the command is a fleet run (and a flag without
/// `--fleet` or `--tenants-query` is a usage error, never silently ignored).
pub fn active(args: &FleetArgs) -> bool {
    args.fleet.is_some()
        || args.tenants_query.is_some()
        || args.jobs.is_some()
        || args.canary.is_some()
        || args.wave_size.is_some()
        || args.fail_fast
        || args.shard.is_some()
}

#[allow(clippy::too_many_arguments)]
pub fn up(
    ctx: &Context<'_>,
    args: &FleetArgs,
    to: Option<&str>,
    dry_run: bool,
    allow_out_of_order: bool,
    single_transaction: bool,
    record_schema: bool,
    phase: Phase,
) -> Result<(), Error> {
    if dry_run {
        return Err(Error::Usage(
            "`up --dry-run` plans one database: run it on one target (--database-url), or \
             `status --fleet`/`--tenants-query` for every target's pending migrations"
                .to_owned(),
        ));
    }
    let to = to.map(|v| ctx.version(v)).transpose()?;
    let action = Action::Run(Operation::Up { to });
    run(
        ctx,
        args,
        "up",
        &action,
        &move |m: Migrator<'_>| {
            let m = m
                .allow_out_of_order(allow_out_of_order)
                .single_transaction(single_transaction)
                .phase(phase);
            if record_schema {
                m.record_schema(true)
            } else {
                m
            }
        },
        Findings::Errors,
    )
}

pub fn status(ctx: &Context<'_>, args: &FleetArgs, exit_code: bool) -> Result<(), Error> {
    let findings = if exit_code {
        Findings::PendingOrDrift
    } else {
        Findings::None
    };
    run(ctx, args, "status", &Action::Status, &|m| m, findings)
}

pub fn verify(
    ctx: &Context<'_>,
    args: &FleetArgs,
    online: bool,
    schema_drift: bool,
) -> Result<(), Error> {
    if !online {
        return Err(Error::Usage(
            "the fleet flags check databases: add --online (`verify --online --fleet ...`)"
                .to_owned(),
        ));
    }
    if schema_drift {
        return Err(Error::Usage(
            "`verify --schema-drift` is not available over a fleet yet: run it per database"
                .to_owned(),
        ));
    }
    // The directory against the lock file, once: it is the same for every target.
    let directory = ctx.directory()?;
    let Some(lock) = super::lock::read_lock(ctx)? else {
        return Err(Error::Usage(format!(
            "{} does not exist: run `migrations lock` and commit it",
            ctx.global
                .dir
                .join(migrations_format::lockfile::LOCK_FILE)
                .display()
        )));
    };
    let findings = migrations_format::lockfile::verify(&lock, &directory);
    let errors = super::lock::print_findings(ctx, &findings);
    ctx.out.add_field(
        "findings",
        Value::Array(findings.iter().map(super::lock::finding_json).collect()),
    );
    let result = run(
        ctx,
        args,
        "verify",
        &Action::Verify,
        &|m| m,
        Findings::Drift,
    );
    match result {
        Ok(()) if errors > 0 => Err(Error::Reported(Code::Findings)),
        other => other,
    }
}

pub fn wait(
    ctx: &Context<'_>,
    args: &FleetArgs,
    timeout: Option<Duration>,
    phase: Phase,
) -> Result<(), Error> {
    // As `wait` on one database: long enough for a deploy's migration job.
    let timeout = timeout.unwrap_or(Duration::from_secs(300));
    run(
        ctx,
        args,
        "wait",
        &Action::Wait { timeout },
        &move |m| m.phase(phase),
        Findings::Errors,
    )
}

/// Which target states, besides errors, make the exit code 3.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Findings {
    /// Only errors count (up, wait).
    Errors,
    /// `status` without `--exit-code`: nothing does (as `status` on one database).
    None,
    /// `status --exit-code`: pending work or drift.
    PendingOrDrift,
    /// `verify --online`: drift.
    Drift,
}

/// The targets: the fleet file's databases (else the one database of the connection flags),
/// each replaced by its tenants when `--tenants-query` is given; then the shard's slice.
fn targets(ctx: &Context<'_>, args: &FleetArgs) -> Result<(Vec<Target>, usize), Error> {
    let defaults = ctx.connect_options();
    let bases = match &args.fleet {
        Some(path) => {
            migrations_core::fleet::read_fleet_file(path, &defaults).map_err(fleet_error)?
        }
        None => {
            let name = migrations_core::connect::describe_target(&defaults)?;
            vec![Target::database(name, defaults)]
        }
    };
    let mut targets = Vec::new();
    match &args.tenants_query {
        None => targets = bases,
        Some(query) => {
            for base in &bases {
                // Listed before any target runs, one registry session at a time.
                let tenants = migrations_core::fleet::list_tenants_blocking(base, query)
                    .map_err(fleet_error)?;
                for tenant in tenants {
                    let target = base.tenant(&tenant);
                    // A tenant of the only database is named after its schema alone.
                    targets.push(if args.fleet.is_none() {
                        target.named(tenant)
                    } else {
                        target
                    });
                }
            }
        }
    }
    let listed = targets.len();
    if let Some(shard) = args.shard {
        targets.retain(|t| shard.contains(t.name()));
    }
    Ok((targets, listed))
}

fn fleet_error(e: FleetError) -> Error {
    match e {
        FleetError::File(message) => Error::Usage(message),
        FleetError::Tenants { target, source } => match *source {
            migrations_core::Error::Connect(e) => Error::Connect(e),
            migrations_core::Error::Db { context, source } => {
                Error::from(migrations_core::Error::Db {
                    context: format!("{target}: {context}"),
                    source,
                })
            }
            other => Error::from(other),
        },
        other => Error::Io(other.to_string()),
    }
}

/// A target's error as the CLI reports (and codes) it.
fn cli_error(e: migrations_core::Error) -> Error {
    match e {
        migrations_core::Error::Connect(e) => Error::Connect(e),
        e => Error::from(e),
    }
}

fn run(
    ctx: &Context<'_>,
    args: &FleetArgs,
    command: &str,
    action: &Action,
    extra: &dyn Fn(Migrator<'_>) -> Migrator<'_>,
    findings: Findings,
) -> Result<(), Error> {
    let g = ctx.global;
    if args.fleet.is_none() && args.tenants_query.is_none() {
        return Err(Error::Usage(
            "the fleet flags need targets: --fleet FILE (databases) or --tenants-query SQL \
             (tenant schemas)"
                .to_owned(),
        ));
    }
    let tenants = args.tenants_query.is_some();
    if tenants && g.schema.is_some() {
        return Err(Error::Usage(
            "--schema names one history schema, and each tenant keeps its history in its own \
             schema: drop --schema with --tenants-query"
                .to_owned(),
        ));
    }
    let placeholders = ctx.placeholders();
    if tenants && placeholders.get("tenant").is_some() {
        return Err(Error::Usage(
            "${tenant} is each tenant's schema name under --tenants-query: do not give it a \
             value (--placeholder, MIGRATIONS_PLACEHOLDER_TENANT)"
                .to_owned(),
        ));
    }
    let jobs = args.jobs.unwrap_or(DEFAULT_JOBS);
    if jobs == 0 {
        return Err(Error::Usage("--jobs must be at least 1".to_owned()));
    }
    // The files as written: each target's migrator substitutes its own values (`${tenant}`).
    let migrations = ctx.migrations_as_written()?;
    spelling::remember(&migrations);
    if matches!(action, Action::Run(_)) {
        // A placeholder without a value is a file problem for every target: say it once,
        // before connecting (exit 2), with any identifier standing in for `${tenant}`.
        let mut check = placeholders.clone();
        if tenants {
            let _ = check.insert("tenant", "tenant".to_owned());
        }
        migrations.with_placeholders(&check).map_err(Error::Files)?;
    }
    let (targets, listed) = targets(ctx, args)?;
    let total = targets.len();

    let live = ctx.out.format == Format::Text && !ctx.out.quiet && std::io::stderr().is_terminal();
    let bar = live.then(|| {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} targets  {msg}  {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let shown = bar.clone();
    let mut fleet = Fleet::new(&migrations, targets)
        .jobs(jobs)
        .fail_fast(args.fail_fast)
        .configure(move |mut m: Migrator<'_>, target: &Target| {
            if target.tenant_schema().is_none() {
                if let Some(schema) = &g.schema {
                    m = m.schema(schema.clone());
                }
            }
            if let Some(table) = &g.table {
                m = m.table(table.clone());
            }
            if let Some(path) = &g.search_path {
                m = m.search_path(path.clone());
            }
            if let Some(t) = g.lock_timeout {
                m = m.lock_timeout(t);
            }
            if let Some(t) = g.statement_timeout {
                m = m.statement_timeout(t);
            }
            if let Some(t) = g.lock_wait {
                m = m.lock_wait(t);
            }
            extra(m.placeholders(placeholders.iter()))
        })
        .on_progress(move |p: &Progress, _| {
            if let Some(bar) = &shown {
                bar.set_position((p.ok + p.failed + p.skipped) as u64);
                bar.set_message(format!(
                    "{} running, {} ok, {} failed, {} skipped",
                    p.running, p.ok, p.failed, p.skipped
                ));
            }
        });
    if let Some(k) = args.canary {
        fleet = fleet.canary(k);
    }
    if let Some(n) = args.wave_size {
        fleet = fleet.wave_size(n);
    }
    let report = fleet.run(action).map_err(|e| Error::Io(e.to_string()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    // The table (text) or the document (JSON), and the worst code.
    let mut worst = Code::Ok;
    let mut rows = Vec::new();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let duration = report.duration;
    let peak = report.peak_connections;
    for mut t in report.targets {
        *counts.entry(t.state.as_str()).or_default() += 1;
        let error = t.error.take().map(cli_error);
        let code = match (&error, t.state) {
            (Some(e), _) => e.code(),
            (None, TargetState::Drift)
                if matches!(findings, Findings::Drift | Findings::PendingOrDrift) =>
            {
                Code::Findings
            }
            (None, TargetState::Pending) if findings == Findings::PendingOrDrift => Code::Findings,
            _ => Code::Ok,
        };
        worst = worst.worst(code);
        if let Some(e) = &error {
            let message = crate::redact::redact_text(&e.to_string());
            // Diagnostics on stderr, as for one database; the table repeats them.
            eprintln!(
                "{} {}: {message}",
                ctx.out.paint(Style::Bad, "error:"),
                t.name
            );
        }
        print_row(ctx, &t, error.as_ref());
        rows.push(row_json(&t, error.as_ref(), code));
    }
    let shard = args.shard.map(|s| s.to_string());
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    ctx.out.line(&format!(
        "{total} target{}{}: {} ({} ms, at most {peak} connection{} at once)",
        if total == 1 { "" } else { "s" },
        shard
            .as_deref()
            .map(|s| format!(" in shard {s} (of {listed})"))
            .unwrap_or_default(),
        if summary.is_empty() {
            "nothing to do".to_owned()
        } else {
            summary.join(", ")
        },
        millis(duration),
        if peak == 1 { "" } else { "s" },
    ));
    ctx.out.document(json!({
        "command": command,
        "fleet": true,
        "shard": shard,
        "listed": listed,
        "jobs": jobs,
        "targets": rows,
        "summary": counts,
        "duration_ms": millis(duration),
        "peak_connections": peak,
        "exit_code": worst as i32,
    }));
    match worst {
        Code::Ok => Ok(()),
        code => Err(Error::Reported(code)),
    }
}

fn print_row(ctx: &Context<'_>, t: &TargetReport, error: Option<&Error>) {
    let style = match t.state {
        TargetState::Migrated | TargetState::Current => Style::Good,
        TargetState::Pending | TargetState::Skipped => Style::Warn,
        _ => Style::Bad,
    };
    let detail = if let Some(e) = error {
        crate::redact::redact_text(&e.to_string())
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    } else if let Some(why) = &t.skipped_because {
        format!("not started: {why}")
    } else if !t.applied.is_empty() {
        format!(
            "applied {}",
            t.applied
                .iter()
                .map(|r| spelling::version(r.version))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else if !t.drifted.is_empty() {
        t.drifted
            .iter()
            .map(|(v, n, s)| format!("{} {n}: {}", spelling::version(*v), s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    } else if !t.pending.is_empty() {
        format!("{} pending", t.pending.len())
    } else {
        String::new()
    };
    ctx.out.line(&format!(
        "{:<9} {:<24} {:>7} ms  {detail}",
        ctx.out.paint(style, t.state.as_str()),
        t.name,
        millis(t.duration)
    ));
}

fn row_json(t: &TargetReport, error: Option<&Error>, code: Code) -> Value {
    let error = error.map(|e| {
        let mut object = serde_json::Map::new();
        object.insert("kind".into(), json!(e.kind()));
        object.insert(
            "message".into(),
            json!(crate::redact::redact_text(&e.to_string())),
        );
        object.insert("exit_code".into(), json!(e.code() as i32));
        object.extend(e.migration_fields());
        Value::Object(object)
    });
    json!({
        "name": t.name,
        "tenant": t.tenant,
        "labels": t.labels,
        "state": t.state.as_str(),
        "stage": t.stage,
        "applied": t.applied.iter().map(|r| json!({
            "version": r.version,
            "name": r.name,
            "duration_ms": millis(r.duration),
        })).collect::<Vec<_>>(),
        "pending": t.pending.iter().map(|(v, n)| json!({"version": v, "name": n})).collect::<Vec<_>>(),
        "drifted": t.drifted.iter().map(|(v, n, s)| json!({
            "version": v, "name": n, "status": s.as_str(),
        })).collect::<Vec<_>>(),
        "duration_ms": millis(t.duration),
        "error": error,
        "skipped_because": t.skipped_because,
        "exit_code": code as i32,
    })
}
