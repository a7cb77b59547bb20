//! `database create|drop|reset|setup`, as in sqlx-cli and diesel_cli: the database the
//! connection string names, created or dropped from the server's maintenance database
//! (`migrations_core::database`); `reset` and `setup` then apply the migrations as `up` does.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::json;

use migrations_core::connect::describe_target;
use migrations_core::database;

use crate::context::Context;
use crate::exit::Error;

pub fn create(ctx: &Context<'_>) -> Result<(), Error> {
    let options = ctx.connect_options();
    let name = database::name(&options)?;
    let created = database::create(&options)?;
    ctx.out.line(&created_line(&name, created));
    ctx.out.document(json!({
        "command": "database create",
        "database": name,
        "created": created,
    }));
    Ok(())
}

pub fn drop(ctx: &Context<'_>, force: bool) -> Result<(), Error> {
    let options = ctx.connect_options();
    let name = database::name(&options)?;
    confirm(ctx, "drop", &name, force)?;
    let dropped = database::drop(&options, force)?;
    ctx.out.line(&dropped_line(&name, dropped));
    ctx.out.document(json!({
        "command": "database drop",
        "database": name,
        "dropped": dropped,
    }));
    Ok(())
}

/// Drop (confirmed as `drop` is), create, then `up`. The migrations are loaded first: a
/// directory with a problem stops the command before anything is dropped.
pub fn reset(ctx: &Context<'_>, force: bool) -> Result<(), Error> {
    let migrations = ctx.migrations()?;
    let options = ctx.connect_options();
    let name = database::name(&options)?;
    confirm(ctx, "reset", &name, force)?;
    let dropped = database::drop(&options, force)?;
    ctx.out.line(&dropped_line(&name, dropped));
    let created = database::create(&options)?;
    ctx.out.line(&created_line(&name, created));
    let up = super::apply::up_default(ctx, &migrations)?;
    ctx.out.document(json!({
        "command": "database reset",
        "database": name,
        "dropped": dropped,
        "created": created,
        "up": up,
    }));
    Ok(())
}

/// Create the database when it is missing, then `up`.
pub fn setup(ctx: &Context<'_>) -> Result<(), Error> {
    let migrations = ctx.migrations()?;
    let options = ctx.connect_options();
    let name = database::name(&options)?;
    let created = database::create(&options)?;
    ctx.out.line(&created_line(&name, created));
    let up = super::apply::up_default(ctx, &migrations)?;
    ctx.out.document(json!({
        "command": "database setup",
        "database": name,
        "created": created,
        "up": up,
    }));
    Ok(())
}

fn created_line(name: &str, created: bool) -> String {
    if created {
        format!("created database \"{name}\"")
    } else {
        format!("database \"{name}\" already exists")
    }
}

fn dropped_line(name: &str, dropped: bool) -> String {
    if dropped {
        format!("dropped database \"{name}\"")
    } else {
        format!("database \"{name}\" does not exist; nothing to drop")
    }
}

/// Dropping needs a yes: `--force`, or an answer on a terminal. Without a terminal to ask on
/// (CI, a pipe) it refuses with the fix, so a script never drops a database by surprise.
fn confirm(ctx: &Context<'_>, command: &str, name: &str, force: bool) -> Result<(), Error> {
    if force {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::Usage(format!(
            "`database {command}` drops database \"{name}\" and there is no terminal to \
             confirm on: run `migrations database {command} --force` to drop it without \
             asking (--force also ends the sessions still connected to it)"
        )));
    }
    let target = describe_target(&ctx.connect_options()).unwrap_or_else(|_| name.to_owned());
    eprint!("Drop database \"{name}\" ({target}) and everything in it? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    // A closed or unreadable stdin is a no.
    let _ = stdin.lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES") {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "database \"{name}\" was not dropped (not confirmed)"
        )))
    }
}
