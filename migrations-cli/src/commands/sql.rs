//! `sql`: an offline script for `psql -f`, bookkeeping included (Alembic's `--sql`).

use std::io::Write;

use migrations_core::plan::Direction;
use migrations_core::{offline_script_with, OfflineError, OfflineRange, Phase};

use crate::context::Context;
use crate::exit::Error;

pub fn run(
    ctx: &Context<'_>,
    from: Option<&str>,
    to: Option<&str>,
    down: bool,
    phase: Phase,
) -> Result<(), Error> {
    let migrations = ctx.migrations()?;
    let range = OfflineRange {
        from: from.map(|v| ctx.version(v)).transpose()?,
        to: to.map(|v| ctx.version(v)).transpose()?,
        direction: if down { Direction::Down } else { Direction::Up },
    };
    let script = offline_script_with(&migrations, &ctx.names(&migrations), range, phase).map_err(
        |e| match e {
            // Said in the flags' words, with the command that was probably meant.
            OfflineError::EmptyRange {
                direction: Direction::Up,
                ..
            } => Error::Usage(format!(
                "--from {} --to {} selects no migration: an up script applies the migrations \
                 after --from up to and including --to, so --from must be below --to; for a \
                 script that reverts them, add --down",
                from.unwrap_or_default(),
                to.unwrap_or_default()
            )),
            OfflineError::EmptyRange { .. } => Error::Usage(format!(
                "--from {} --to {} selects no migration: a down script reverts the migrations \
                 from --from down to (not including) --to, so --from must be above --to; for a \
                 script that applies them, leave out --down",
                from.unwrap_or_default(),
                to.unwrap_or_default()
            )),
            e => Error::Usage(e.to_string()),
        },
    )?;
    if ctx.out.json() {
        ctx.out
            .document(serde_json::json!({ "command": "sql", "script": script }));
    } else {
        std::io::stdout()
            .write_all(script.as_bytes())
            .map_err(|e| Error::Io(format!("cannot write the script: {e}")))?;
    }
    Ok(())
}
