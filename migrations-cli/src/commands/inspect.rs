//! `current`, `history`, `status`: read-only views of the database against the directory.

use serde_json::{json, Value};

use migrations_core::plan::Status;
use migrations_core::RepeatableState;
use migrations_core::State;
use migrations_format::Version;

use crate::context::Context;
use crate::exit::Error;
use crate::output::Style;
use crate::spelling::Spellings;

pub fn current(ctx: &Context<'_>) -> Result<(), Error> {
    let migrations = ctx.migrations_compared()?;
    let mut client = ctx.connect()?;
    let history = ctx.migrator(&migrations).history(&mut client)?;
    let newest = history
        .iter()
        .filter(|r| r.state == State::Applied)
        .max_by(|a, b| Version::compare_digits(&a.version_digits, &b.version_digits));
    let spell = Spellings::of(&migrations);
    match newest {
        Some(row) => ctx.out.line(&format!(
            "{} {}",
            spell.or_digits(row.version, &row.version_digits),
            row.name
        )),
        None => ctx.out.line("none"),
    }
    ctx.out.document(json!({
        "command": "current",
        "version": newest.map(|r| r.version),
        "name": newest.map(|r| r.name.clone()),
    }));
    Ok(())
}

pub fn history(ctx: &Context<'_>, verbose: bool) -> Result<(), Error> {
    let migrations = ctx.migrations_compared()?;
    let mut client = ctx.connect()?;
    let migrator = ctx.migrator(&migrations);
    let mut rows = migrator.history(&mut client)?;
    rows.sort_by(|a, b| Version::compare_digits(&a.version_digits, &b.version_digits));
    if rows.is_empty() {
        ctx.out.line("no migration applied");
    }
    let spell = Spellings::of(&migrations);
    for row in &rows {
        let mut line = format!(
            "{} {} {}",
            spell.or_digits(row.version, &row.version_digits),
            row.name,
            row.state
        );
        if verbose {
            line.push_str(&format!(
                "  at {} by {} in {} ms, {}, sha256 {}",
                row.applied_at,
                row.applied_by,
                row.execution_ms.unwrap_or(0),
                if row.no_transaction {
                    "no transaction"
                } else {
                    "transaction"
                },
                row.checksum
            ));
            if let Some(error) = &row.error {
                line.push_str(&format!("\n    error: {error}"));
            }
        }
        ctx.out.line(&line);
    }
    let audit = if verbose {
        migrator.audit(&mut client)?
    } else {
        Vec::new()
    };
    if verbose && !audit.is_empty() {
        ctx.out.line("\naudit:");
        for e in &audit {
            ctx.out.line(&format!(
                "  {} {} {} {}{}",
                e.at,
                e.by,
                e.event,
                e.version.map(|v| spell.get(v)).unwrap_or_default(),
                e.detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
        }
    }
    let mut doc = json!({
        "command": "history",
        "applied": rows.iter().map(|r| json!({
            "version": r.version,
            "name": r.name,
            "state": r.state.as_str(),
            "applied_at": r.applied_at,
            "applied_by": r.applied_by,
            "execution_ms": r.execution_ms,
            "checksum": r.checksum,
            "transaction": !r.no_transaction,
            "statements_done": r.statements_done,
            "statements_total": r.statements_total,
            "error": r.error,
            "invalid_indexes": r.invalid_indexes,
        })).collect::<Vec<Value>>(),
    });
    if verbose {
        doc["audit"] = json!(audit
            .iter()
            .map(|e| json!({
                "id": e.id,
                "at": e.at,
                "by": e.by,
                "event": e.event,
                "version": e.version,
                "name": e.name,
                "checksum": e.checksum,
                "detail": e.detail,
            }))
            .collect::<Vec<Value>>());
    }
    ctx.out.document(doc);
    Ok(())
}

pub fn status(ctx: &Context<'_>, exit_code: bool) -> Result<(), Error> {
    let migrations = ctx.migrations_compared()?;
    let mut client = ctx.connect()?;
    let lines = ctx.migrator(&migrations).status(&mut client)?;
    let spell = Spellings::of(&migrations);
    let mut not_applied = 0;
    for line in &lines {
        let style = match line.status {
            // A code migration's row, applied by the service that has the function.
            Status::Applied | Status::Code => Style::Good,
            Status::Pending => Style::Warn,
            _ => Style::Bad,
        };
        if !matches!(line.status, Status::Applied | Status::Code) {
            not_applied += 1;
        }
        ctx.out.line(&format!(
            "{:<12} {} {}",
            ctx.out.paint(style, line.status.as_str()),
            spell.or_digits(line.version, &line.version_digits),
            line.name
        ));
    }
    if lines.is_empty() {
        ctx.out.line("no migrations");
    }
    // Repeatables (R__<name>.sql): `changed` and `pending` are work the next `up` does.
    let repeatables = ctx.migrator(&migrations).repeatable_status(&mut client)?;
    for r in &repeatables {
        let style = match r.state {
            RepeatableState::Applied => Style::Good,
            RepeatableState::Changed | RepeatableState::Pending => Style::Warn,
            _ => Style::Bad,
        };
        if matches!(r.state, RepeatableState::Changed | RepeatableState::Pending) {
            not_applied += 1;
        }
        ctx.out.line(&format!(
            "{:<12} R__{}.sql (repeatable)",
            ctx.out.paint(style, r.state.as_str()),
            r.name
        ));
    }
    ctx.out.document(json!({
        "command": "status",
        "migrations": lines.iter().map(|l| json!({
            "version": l.version,
            "name": l.name,
            "status": l.status.as_str(),
        })).collect::<Vec<Value>>(),
        "repeatables": repeatables.iter().map(|r| json!({
            "name": r.name,
            "status": r.state.as_str(),
            "checksum": r.checksum,
            "applied_at": r.applied_at,
        })).collect::<Vec<Value>>(),
        "pending_or_drifted": not_applied,
    }));
    if exit_code && not_applied > 0 {
        return Err(Error::Findings);
    }
    Ok(())
}
