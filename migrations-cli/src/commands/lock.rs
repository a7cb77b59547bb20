//! `lock` and `verify`: the lock file that proves no released migration was edited (SPEC 5).

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use serde_json::{json, Value};

use migrations_core::plan::Status;
use migrations_core::{snapshot, Migrations};
use migrations_format::lockfile::{self, Finding, LockFile, LOCK_FILE};
use migrations_format::Version;

use crate::context::Context;
use crate::exit::Error;
use crate::output::Style;

fn lock_path(ctx: &Context<'_>) -> PathBuf {
    ctx.global.dir.join(LOCK_FILE)
}

/// Reads the lock file; `None` when there is none.
pub(super) fn read_lock(ctx: &Context<'_>) -> Result<Option<LockFile>, Error> {
    let path = lock_path(ctx);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(format!("cannot read {}: {e}", path.display()))),
    };
    lockfile::parse(&text)
        .map(Some)
        .map_err(|e| Error::Usage(e.located(&path).join("\n")))
}

fn write_lock(ctx: &Context<'_>, lock: &LockFile) -> Result<(), Error> {
    let path = lock_path(ctx);
    fs::write(&path, lockfile::render(lock))
        .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))
}

fn in_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

pub(super) fn finding_json(f: &Finding) -> Value {
    json!({
        "kind": f.kind.id(),
        "error": f.is_error(),
        "version": f.version.value(),
        "name": f.name,
        "file": f.file.display().to_string(),
        "line": f.line,
        "lock_line": f.lock_line,
        "locked": f.locked.map(|c| c.to_hex()),
        "current": f.current.map(|c| c.to_hex()),
        "message": f.message,
    })
}

/// Prints findings (text and, in GitHub Actions, annotations); returns how many are errors.
pub(super) fn print_findings(ctx: &Context<'_>, findings: &[Finding]) -> usize {
    let github = in_github_actions();
    for f in findings {
        let style = if f.is_error() { Style::Bad } else { Style::Dim };
        ctx.out.line(&format!(
            "{}: {}: {}",
            f.location(),
            ctx.out.paint(style, f.kind.id()),
            f.message
        ));
        if github && f.is_error() {
            // Like every result line: a closed pipe is not worth a panic.
            let _ = writeln!(std::io::stdout(), "{}", f.github_annotation());
        }
    }
    findings.iter().filter(|f| f.is_error()).count()
}

pub fn lock(ctx: &Context<'_>, rewrite: Option<&str>) -> Result<(), Error> {
    let directory = ctx.directory()?;
    let existing = read_lock(ctx)?.unwrap_or_default();
    let (lock, changed) = match rewrite {
        Some(spelling) => {
            let version = Version::parse(spelling)
                .map_err(|e| Error::Usage(format!("`{spelling}` is not a version: {e}")))?;
            let lock = lockfile::rewrite(&existing, &directory, &version)
                .map_err(|e| Error::Usage(e.to_string()))?;
            // Recorded in the audit when a database is given.
            if ctx.global.database_url.is_some() {
                let migrations = Migrations::from_directory(&directory);
                let mut client = ctx.connect()?;
                let entry = lock
                    .entries
                    .iter()
                    .find(|e| e.version.value() == version.value());
                ctx.migrator(&migrations).record_audit(
                    &mut client,
                    "lock-rewrite",
                    Some(version.value()),
                    entry.map(|e| e.name.as_str()),
                    entry.map(|e| e.up.to_hex()).as_deref(),
                    Some("migrations.lock entry rewritten to match the directory"),
                )?;
            }
            (lock, vec![format!("rewrote {}", version)])
        }
        None => {
            let errors: Vec<Finding> = lockfile::verify(&existing, &directory)
                .into_iter()
                .filter(|f| f.is_error())
                .collect();
            if !errors.is_empty() {
                print_findings(ctx, &errors);
                return Err(Error::Usage(format!(
                    "{} locked migration{} changed; fix the files, or accept a deliberate change \
                     with `migrations lock --rewrite <version>`",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                )));
            }
            let lock = lockfile::append(&existing, &directory);
            let added: Vec<String> = lock.entries[existing.entries.len()..]
                .iter()
                .map(|e| format!("locked {} {}", e.version, e.name))
                // A repeatable's change is recorded, never refused: it is meant to change.
                .chain(lockfile::repeatable_changes(&existing, &directory))
                .collect();
            (lock, added)
        }
    };
    write_lock(ctx, &lock)?;
    if changed.is_empty() {
        ctx.out.line("nothing to lock: every migration is locked");
    }
    for line in &changed {
        ctx.out.line(line);
    }
    ctx.out
        .document(json!({ "command": "lock", "changes": changed }));
    Ok(())
}

pub fn verify(ctx: &Context<'_>, online: bool, schema_drift: bool) -> Result<(), Error> {
    let directory = ctx.directory()?;
    let Some(lock) = read_lock(ctx)? else {
        return Err(Error::Usage(format!(
            "{} does not exist: run `migrations lock` and commit it",
            lock_path(ctx).display()
        )));
    };
    let findings = lockfile::verify(&lock, &directory);
    let mut errors = print_findings(ctx, &findings);

    let mut online_json = Vec::new();
    if online {
        let migrations = Migrations::from_directory(&directory);
        crate::spelling::remember(&migrations);
        let mut client = ctx.connect()?;
        for line in ctx.migrator(&migrations).status(&mut client)? {
            let bad = !matches!(
                line.status,
                Status::Applied | Status::Pending | Status::Future
            );
            if matches!(line.status, Status::Applied | Status::Code) {
                continue;
            }
            let text = format!(
                "database: {} {}: {}",
                crate::spelling::version(line.version),
                line.name,
                line.status.as_str()
            );
            ctx.out.line(&if bad {
                ctx.out.paint(Style::Bad, &text)
            } else {
                text
            });
            if bad {
                errors += 1;
            }
            online_json.push(json!({
                "version": line.version,
                "name": line.name,
                "status": line.status.as_str(),
                "error": bad,
            }));
        }
    }
    let mut drift_json = Vec::new();
    if schema_drift {
        let migrations = Migrations::from_directory(&directory);
        crate::spelling::remember(&migrations);
        let names = ctx.names(&migrations);
        let mut client = ctx.connect()?;
        let drift = snapshot::schema_drift(&mut client, &names)
            .map_err(|e| Error::Io(format!("cannot compare the schema with its snapshot: {e}")))?;
        let Some(snapshot::SchemaDrift {
            recorded,
            differences,
        }) = drift
        else {
            return Err(Error::Usage(
                "no schema snapshot is recorded: set `record_schema = true` in migrations.toml \
                 (or run `migrations up --record-schema`), then run `up`"
                    .to_owned(),
            ));
        };
        for d in &differences {
            ctx.out
                .line(&ctx.out.paint(Style::Bad, &format!("schema drift: {d}")));
            drift_json.push(json!(d.to_string()));
        }
        if differences.is_empty() {
            ctx.out.line(&format!(
                "schema: unchanged since the snapshot recorded after version {} at {}",
                recorded
                    .version
                    .map(crate::spelling::version)
                    .unwrap_or_else(|| "?".into()),
                recorded.recorded_at
            ));
        }
        errors += differences.len();
    }
    if errors == 0 {
        ctx.out.line(&format!(
            "ok: {} locked migration{} verified{}",
            lock.entries.len(),
            if lock.entries.len() == 1 { "" } else { "s" },
            if online { ", database agrees" } else { "" }
        ));
    }
    ctx.out.document(json!({
        "command": "verify",
        "ok": errors == 0,
        "findings": findings.iter().map(finding_json).collect::<Vec<_>>(),
        "database": online_json,
        "schema_drift": drift_json,
    }));
    if errors > 0 {
        return Err(Error::Findings);
    }
    Ok(())
}
