//! `baseline` and `repair`: maintenance of the history itself, each change audited.

use serde_json::json;

use migrations_core::Tool;

use crate::context::Context;
use crate::exit::Error;

pub fn baseline(
    ctx: &Context<'_>,
    version: Option<&str>,
    from_diesel: bool,
    from_sqlx: bool,
) -> Result<(), Error> {
    let version = version.map(|v| ctx.version(v)).transpose()?;
    let migrations = ctx.migrations_as_written()?;
    let mut client = ctx.connect()?;
    let mut migrator = ctx.migrator(&migrations);
    let done = match (from_diesel, from_sqlx) {
        (true, _) => migrator.adopt(&mut client, Tool::Diesel, version)?,
        (_, true) => migrator.adopt(&mut client, Tool::Sqlx, version)?,
        // clap requires VERSION unless --from-diesel or --from-sqlx is given.
        _ => match version {
            Some(version) => migrator.baseline(&mut client, version)?,
            None => {
                return Err(Error::Usage(
                    "baseline needs the newest version the database already has, for example \
                     `migrations baseline 20250801000015`"
                        .into(),
                ))
            }
        },
    };
    print(ctx, "baseline", &done);
    Ok(())
}

pub fn repair(
    ctx: &Context<'_>,
    version: Option<&str>,
    accept_checksum: bool,
) -> Result<(), Error> {
    let version = version.map(|v| ctx.version(v)).transpose()?;
    let migrations = ctx.migrations_as_written()?;
    let mut client = ctx.connect()?;
    let done = ctx
        .migrator(&migrations)
        .repair(&mut client, version, accept_checksum)?;
    print(ctx, "repair", &done);
    Ok(())
}

fn print(ctx: &Context<'_>, command: &str, done: &[String]) {
    if done.is_empty() {
        ctx.out.line("nothing to do");
    }
    for line in done {
        ctx.out.line(line);
    }
    ctx.out
        .document(json!({ "command": command, "changes": done }));
}
