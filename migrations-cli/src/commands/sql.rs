//! `sql`: an offline script for `psql -f`, bookkeeping included (Alembic's `--sql`).

use std::io::Write;

use migrations_core::plan::Direction;
use migrations_core::{offline_script, OfflineRange};

use crate::context::Context;
use crate::exit::Error;

pub fn run(
    ctx: &Context<'_>,
    from: Option<&str>,
    to: Option<&str>,
    down: bool,
) -> Result<(), Error> {
    let migrations = ctx.migrations()?;
    let range = OfflineRange {
        from: from.map(|v| ctx.version(v)).transpose()?,
        to: to.map(|v| ctx.version(v)).transpose()?,
        direction: if down { Direction::Down } else { Direction::Up },
    };
    let script = offline_script(&migrations, &ctx.names(&migrations), range)
        .map_err(|e| Error::Usage(e.to_string()))?;
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
