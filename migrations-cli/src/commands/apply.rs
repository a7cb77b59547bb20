//! `up`, `down`, `redo`: run the engine with a live line per migration, or print its plan.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};

use migrations_core::plan::{Direction, Step};
use migrations_core::watchdog::{Stall, StallTiming, Watchdog};
use migrations_core::State;
use migrations_core::{DownTarget, Drift, Event, Migrations, Migrator, Operation, Ran, Report};

use crate::context::{Context, WarmStart};
use crate::exit::{Error, Partial};
use crate::output::{holder_json, millis, Output, Style};
use crate::spelling;

pub fn up(
    ctx: &Context<'_>,
    to: Option<&str>,
    dry_run: bool,
    allow_out_of_order: bool,
    single_transaction: bool,
    record_schema: bool,
    phase: migrations_core::Phase,
) -> Result<(), Error> {
    let to = to.map(|v| ctx.version(v)).transpose()?;
    let operation = Operation::Up { to };
    let started = std::time::Instant::now();
    let mut warm = None;
    if !dry_run && to.is_none() {
        // The warm start (docs/cache.md): the one-query warm check before anything else is
        // sent (the stall watchdog's own query included) and before any SQL text is read.
        // Only when it cannot prove the database current is the text loaded, on the same
        // connection.
        match ctx.warm_start(phase)? {
            WarmStart::UpToDate => {
                let report = Report {
                    up_to_date_fast: true,
                    duration: started.elapsed(),
                    ..Report::default()
                };
                ctx.out.line(&nothing_to_do(&operation));
                ctx.out.document(report_json("up", &report));
                return Ok(());
            }
            WarmStart::Unproven(client) => warm = Some(*client),
            WarmStart::NotChecked => {}
        }
    }
    execute(ctx, "up", &operation, dry_run, warm, |m| {
        let m = m
            .allow_out_of_order(allow_out_of_order)
            .single_transaction(single_transaction)
            .phase(phase);
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
    allow_data_loss: bool,
    stored_downs: bool,
) -> Result<(), Error> {
    let target = match (to, all) {
        (_, true) => DownTarget::All,
        (Some(v), false) => DownTarget::To(ctx.version(v)?),
        (None, false) => DownTarget::Count(count.unwrap_or(1)),
    };
    execute(ctx, "down", &Operation::Down(target), dry_run, None, |m| {
        m.allow_data_loss(allow_data_loss)
            .stored_downs(stored_downs)
    })
}

pub fn redo(ctx: &Context<'_>, count: usize, allow_data_loss: bool) -> Result<(), Error> {
    execute(ctx, "redo", &Operation::Redo { count }, false, None, |m| {
        m.allow_data_loss(allow_data_loss)
    })
}

/// Runs `operation` (or prints its plan), on `warm`, the connection of a warm start that
/// could not prove the database current, when there is one.
fn execute(
    ctx: &Context<'_>,
    command: &str,
    operation: &Operation,
    dry_run: bool,
    warm: Option<postgres::Client>,
    configure: impl Fn(Migrator<'_>) -> Migrator<'_>,
) -> Result<(), Error> {
    let migrations = ctx.migrations()?;
    let mut client = match warm {
        Some(client) => client,
        None => ctx.connect()?,
    };
    if dry_run {
        let migrator = configure(ctx.migrator(&migrations));
        let plan = migrator.plan(&mut client, operation)?;
        for warning in &plan.warnings {
            ctx.out.warn(&spelling::drift(warning));
        }
        for step in &plan.steps {
            ctx.out.line(&format!(
                "would run {} {} {} ({})",
                step.direction.as_str(),
                spelling::version(step.version),
                step.name,
                mode(step.no_transaction)
            ));
        }
        // A complete `up` then applies the repeatables that are new or changed.
        let repeatables: Vec<_> = if *operation == (Operation::Up { to: None }) {
            migrator
                .repeatable_status(&mut client)?
                .into_iter()
                .filter(|r| {
                    matches!(
                        r.state,
                        migrations_core::RepeatableState::Changed
                            | migrations_core::RepeatableState::Pending
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        for r in &repeatables {
            ctx.out.line(&format!(
                "would run repeatable {} ({})",
                r.name,
                r.state.as_str()
            ));
        }
        if plan.steps.is_empty() && repeatables.is_empty() {
            ctx.out.line("nothing to do");
        }
        ctx.out.document(json!({
            "command": command,
            "dry_run": true,
            "plan": plan.steps.iter().map(step_json).collect::<Vec<_>>(),
            "repeatables": repeatables.iter().map(|r| json!({
                "name": r.name,
                "status": r.state.as_str(),
            })).collect::<Vec<_>>(),
            "warnings": plan.warnings.iter().map(drift_json).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let report = run_live(
        ctx,
        command,
        &migrations,
        operation,
        &configure,
        &mut client,
    )?;
    repeatable_lines(ctx, &report);
    if report.ran.is_empty() {
        ctx.out.line(&nothing_to_do(operation));
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

/// Why a run did nothing, in the command's own terms: "up to date" after a `down` that found
/// nothing applied would say the opposite of the truth.
fn nothing_to_do(operation: &Operation) -> String {
    match operation {
        Operation::Down(DownTarget::Count(0)) | Operation::Redo { count: 0 } => {
            "nothing to do".to_owned()
        }
        Operation::Down(DownTarget::To(version)) => format!(
            "nothing to revert: no migration above {} is applied",
            spelling::version(*version)
        ),
        Operation::Down(_) => "nothing to revert: no migration is applied".to_owned(),
        Operation::Redo { .. } => "nothing to redo: no migration is applied".to_owned(),
        _ => "nothing to do: the database is up to date".to_owned(),
    }
}

/// What a run has done so far, from the engine's events: a failure reports it with the error.
#[derive(Default)]
struct Progress {
    /// The steps that finished (committed, or for a no-transaction script, recorded).
    ran: Vec<Ran>,
    /// The step that started and has not finished: the one an error stopped.
    running: Option<Ran>,
    /// Drift allowed by its policy.
    warnings: Vec<Value>,
}

/// Runs with a line per migration as it finishes (and a live spinner on a terminal). On an
/// error, the steps done before it come back with it ([`Error::Partial`]).
fn run_live(
    ctx: &Context<'_>,
    command: &str,
    migrations: &Migrations,
    operation: &Operation,
    configure: impl FnOnce(Migrator<'_>) -> Migrator<'_>,
    client: &mut postgres::Client,
) -> Result<Report, Error> {
    let out: &Output = &ctx.out;
    let mut live = None;
    let mut progress = Progress::default();
    // Ends the run (and the process) if the connection stalls: see `stall`.
    let seen = Arc::new(Mutex::new(Progress::default()));
    let watchdog = Watchdog::start(
        &ctx.connect_options(),
        client,
        ctx.names(migrations),
        StallTiming::default(),
        stall_handler(ctx, command, seen.clone()),
    )?;
    let watched = seen.clone();
    let events = &mut progress;
    let spinner = &mut live;
    let mut migrator = configure(ctx.migrator(migrations)).on_event(move |event| match event {
        Event::WaitingForLock { key, holder } => {
            // Who to wait for (or to end): the JSON document's `lock_holder` too.
            let who = match holder {
                Some(holder) => {
                    out.add_field("lock_holder", holder_json(holder));
                    format!("; held by {holder}")
                }
                None => String::new(),
            };
            out.warn(&format!(
                "another runner holds the migrations lock (advisory lock {key}{who}); waiting"
            ))
        }
        Event::Warning(drift) => {
            events.warnings.push(drift_json(drift));
            out.warn(&spelling::drift(drift))
        }
        Event::Started {
            version,
            name,
            direction,
            no_transaction,
        } => {
            events.running = Some(Ran {
                version: *version,
                name: (*name).to_owned(),
                direction: *direction,
                no_transaction: *no_transaction,
                duration: Default::default(),
            });
            lock(&watched).running = events.running.clone();
            *spinner = out.live(format!(
                "{} {} {name}",
                direction.as_str(),
                spelling::version(*version)
            ))
        }
        Event::Retrying {
            version,
            name,
            attempt,
            after,
        } => out.warn(&format!(
            "{} {name}: lock_timeout expired (attempt {attempt}); retrying in {} ms",
            spelling::version(*version),
            millis(*after)
        )),
        Event::Finished {
            version,
            name,
            direction,
            duration,
        } => {
            if let Some(bar) = spinner.take() {
                bar.finish_and_clear();
            }
            if let Some(mut ran) = events.running.take() {
                ran.duration = *duration;
                events.ran.push(ran.clone());
                let mut watched = lock(&watched);
                watched.running = None;
                watched.ran.push(ran);
            }
            out.line(&format!(
                "{} {} {name} {}",
                out.paint(Style::Good, direction.as_str()),
                spelling::version(*version),
                out.paint(Style::Dim, &format!("({} ms)", millis(*duration)))
            ));
        }
        _ => {}
    });
    migrator = migrator.watch(&watchdog);
    let result = migrator.execute(client, operation);
    // The callback borrows `progress` and `live`; the migrator goes first.
    drop(migrator);
    drop(watchdog);
    // A step that failed leaves its spinner running: clear it before the error is printed.
    if let Some(bar) = live.take() {
        bar.finish_and_clear();
    }
    result.map_err(|error| partial(ctx, command, migrations, operation, progress, error.into()))
}

fn lock(progress: &Mutex<Progress>) -> MutexGuard<'_, Progress> {
    // Poisoned only by a panic in the event callback; what it holds is still right.
    progress.lock().unwrap_or_else(|e| e.into_inner())
}

/// What happens when the watchdog finds the connection stalled (the server answered, the
/// answer never arrived): the runner's thread is blocked in the driver for good, so this prints
/// the run's one error line (and, in JSON mode, its document) and ends the process with exit 1.
fn stall_handler(
    ctx: &Context<'_>,
    command: &str,
    seen: Arc<Mutex<Progress>>,
) -> impl FnOnce(Stall) + Send + 'static {
    let options = global_options(ctx);
    let json = ctx.out.json();
    let command = command.to_owned();
    move |stall: Stall| {
        let progress = lock(&seen);
        let message = crate::redact::redact_text(&stall_message(&stall, &progress, &options));
        eprintln!("error: {message}");
        if let Some(done) = done_before_the_error(&progress.ran) {
            eprintln!("{done}");
        }
        if json {
            let mut error = json!({ "kind": "stall", "message": message, "exit_code": 1 });
            if let (Some(r), Some(object)) = (&progress.running, error.as_object_mut()) {
                object.insert("version".into(), r.version.into());
                object.insert("name".into(), r.name.clone().into());
            }
            let doc = json!({
                "command": command,
                "dry_run": false,
                "ran": progress.ran.iter().map(ran_json).collect::<Vec<_>>(),
                "warnings": progress.warnings.clone(),
                "error": error,
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        std::process::exit(crate::exit::Code::Failure as i32);
    }
}

/// The stall's one line: what happened, the state the database is in, what to do.
fn stall_message(stall: &Stall, progress: &Progress, options: &str) -> String {
    let what = match &progress.running {
        Some(r) => format!(
            "{} {} {} stopped",
            r.direction.as_str(),
            spelling::version(r.version),
            r.name
        ),
        None => "the run stopped".to_owned(),
    };
    let heard = match stall.finished_ago {
        Some(ago) => format!(
            "the server finished the query {} s ago but its answer never arrived",
            ago.as_secs()
        ),
        None if stall.state.is_some() => format!(
            "the server has been unable to send its answer for {} s",
            stall.waited.as_secs()
        ),
        None => format!(
            "the server session ended but the client heard nothing for {} s",
            stall.waited.as_secs()
        ),
    };
    let session = if stall.terminated {
        "the runner's session was ended (pg_terminate_backend), which released the migrations lock"
            .to_owned()
    } else if stall.state.is_none() {
        "the runner's session is gone, and the migrations lock with it".to_owned()
    } else {
        format!(
            "ending the runner's session failed, so it may still hold the migrations lock: \
             end it with SELECT pg_terminate_backend({})",
            stall.pid
        )
    };
    let state = match (&progress.running, &stall.history) {
        (None, _) => "no migration was running".to_owned(),
        (Some(_), Err(e)) => format!("the history could not be read ({e})"),
        (Some(r), Ok(history)) => {
            let row = history.iter().find(|h| h.version == r.version);
            let v = spelling::version(r.version);
            match (r.no_transaction, r.direction, row.map(|h| h.state)) {
                (false, Direction::Up, Some(State::Applied)) => {
                    format!("migration {v} was committed and is recorded as applied")
                }
                (false, Direction::Up, _) => {
                    format!("migration {v} was rolled back and is not applied")
                }
                (false, Direction::Down, None) => {
                    format!("the down of {v} was committed: it is no longer applied")
                }
                (false, Direction::Down, Some(_)) => {
                    format!("the down of {v} was rolled back: it is still applied")
                }
                (true, _, Some(state)) => format!(
                    "migration {} ran outside a transaction and is recorded as `{}`{}; \
                     `migrations{options} repair` clears it before a rerun",
                    v,
                    state.as_str(),
                    row.and_then(|h| h.statements_done.zip(h.statements_total))
                        .map(|(d, t)| format!(" ({d} of its {t} statements done)"))
                        .unwrap_or_default()
                ),
                (true, _, None) => format!(
                    "migration {} ran outside a transaction and is not recorded as applied",
                    v
                ),
            }
        }
    };
    format!(
        "{what}: the connection to {} stalled: {heard}; {session}; {state}; check with \
         `migrations{options} status`, then run the command again",
        stall.endpoint
    )
}

/// The error of a run that stopped, with what it had done: the steps that finished (the same
/// shape as the success document's `ran`) and, for `redo`, the migrations its down phase left
/// unapplied and the command that applies them again.
fn partial(
    ctx: &Context<'_>,
    command: &str,
    migrations: &Migrations,
    operation: &Operation,
    progress: Progress,
    error: Error,
) -> Error {
    let mut document = serde_json::Map::new();
    document.insert("command".into(), command.into());
    document.insert("dry_run".into(), false.into());
    document.insert(
        "ran".into(),
        progress.ran.iter().map(ran_json).collect::<Vec<_>>().into(),
    );
    document.insert("warnings".into(), progress.warnings.clone().into());
    document.extend(ctx.out.extra_fields());
    let mut notes = Vec::new();
    notes.extend(done_before_the_error(&progress.ran));
    if let Operation::Redo { .. } = operation {
        let (unapplied, restore) = restore(ctx, migrations, &progress);
        if let Some(restore) = &restore {
            notes.push(format!(
                "now unapplied: {}; to apply {} again: {restore}",
                unapplied
                    .iter()
                    .map(|m| format!("{} {}", spelling::version(m.version()), m.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
                if unapplied.len() == 1 { "it" } else { "them" }
            ));
        }
        document.insert(
            "unapplied".into(),
            unapplied
                .iter()
                .map(|m| m.version())
                .collect::<Vec<_>>()
                .into(),
        );
        document.insert("restore".into(), restore.into());
    }
    Error::Partial(Box::new(Partial {
        error,
        document,
        notes,
    }))
}

/// After a `redo` stopped: the migrations that are no longer applied (reverted by its down
/// phase and not applied again, plus a no-transaction one that failed part-way, whose row is
/// `failed`), in version order, and the command that applies them again, or `None` when the
/// database is as it was.
fn restore<'m>(
    ctx: &Context<'_>,
    migrations: &'m Migrations,
    progress: &Progress,
) -> (Vec<&'m migrations_core::Migration>, Option<String>) {
    let done = |version: i64, direction: Direction| {
        progress
            .ran
            .iter()
            .any(|r| r.version == version && r.direction == direction)
    };
    let failed_part_way = progress.running.as_ref().filter(|r| r.no_transaction);
    let unapplied: Vec<_> = migrations
        .iter()
        .filter(|m| {
            (done(m.version(), Direction::Down) && !done(m.version(), Direction::Up))
                || failed_part_way.is_some_and(|r| r.version == m.version())
        })
        .collect();
    let Some(newest_unapplied) = unapplied.last() else {
        return (unapplied, None);
    };
    let options = global_options(ctx);
    // `up` alone would also apply pending migrations newer than those the redo reverted.
    let up = if migrations.iter().last().map(|m| m.version()) == Some(newest_unapplied.version()) {
        format!("migrations{options} up")
    } else {
        format!(
            "migrations{options} up --to {}",
            spelling::version(newest_unapplied.version())
        )
    };
    // A no-transaction script that failed part-way left a `failed` row that `up` refuses
    // until `repair` clears it.
    let command = if failed_part_way.is_some() {
        format!("migrations{options} repair && {up}")
    } else {
        up
    };
    (unapplied, Some(command))
}

/// The stderr line that lists the steps a failed or stalled run finished first (none when it
/// finished none).
fn done_before_the_error(ran: &[Ran]) -> Option<String> {
    (!ran.is_empty()).then(|| {
        let steps: Vec<String> = ran
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r.direction.as_str(),
                    spelling::version(r.version),
                    r.name
                )
            })
            .collect();
        format!("done before the error: {}", steps.join(", "))
    })
}

/// The global options that choose the files and the history, as given, for a command the user
/// can paste. (The database comes from the same place as before; a URL is never repeated.)
fn global_options(ctx: &Context<'_>) -> String {
    let g = ctx.global;
    let mut options = String::new();
    if g.dir != Path::new("migrations") {
        options.push_str(&format!(" --dir {}", shell_word(&g.dir.to_string_lossy())));
    }
    for (flag, value) in [
        ("--schema", &g.schema),
        ("--table", &g.table),
        ("--search-path", &g.search_path),
    ] {
        if let Some(value) = value {
            options.push_str(&format!(" {flag} {}", shell_word(value)));
        }
    }
    options
}

/// `text` as one POSIX shell word: as it is when that is safe, else single-quoted.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=,@%+".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
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
        "ran": report.ran.iter().map(ran_json).collect::<Vec<_>>(),
        "warnings": report.warnings.iter().map(drift_json).collect::<Vec<_>>(),
        "up_to_date": report.ran.is_empty(),
        "duration_ms": millis(report.duration),
        "repeatables": report.repeatables.iter().map(|r| json!({
            "name": r.name,
            "changed": r.changed,
            "duration_ms": millis(r.duration),
        })).collect::<Vec<_>>(),
    })
}

/// One line per repeatable migration the run applied (after the versioned ones).
fn repeatable_lines(ctx: &Context<'_>, report: &Report) {
    for r in &report.repeatables {
        ctx.out.line(&format!(
            "applied repeatable {} ({}) in {} ms",
            r.name,
            if r.changed { "changed" } else { "new" },
            millis(r.duration)
        ));
    }
}

/// One step that ran, as in `ran` of the success document and of a failed run's document.
fn ran_json(r: &Ran) -> Value {
    json!({
        "version": r.version,
        "name": r.name,
        "direction": r.direction.as_str(),
        "transaction": !r.no_transaction,
        "duration_ms": millis(r.duration),
    })
}

/// `up` with the defaults, for `database setup` and `database reset`: the same live lines and
/// failure report as `up`, and `up`'s JSON document returned for the caller's own document.
pub(crate) fn up_default(ctx: &Context<'_>, migrations: &Migrations) -> Result<Value, Error> {
    let operation = Operation::Up { to: None };
    let mut client = ctx.connect()?;
    let report = run_live(ctx, "up", migrations, &operation, |m| m, &mut client)?;
    repeatable_lines(ctx, &report);
    if report.ran.is_empty() {
        ctx.out.line(&nothing_to_do(&operation));
    } else {
        ctx.out.line(&format!(
            "{} migration{} in {} ms",
            report.ran.len(),
            if report.ran.len() == 1 { "" } else { "s" },
            millis(report.duration)
        ));
    }
    Ok(report_json("up", &report))
}
