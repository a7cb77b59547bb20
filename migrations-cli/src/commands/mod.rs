//! One module per command; each prints its results through `Output` and returns
//! `Result<(), Error>`.

mod apply;
mod baseline;
mod completions;
mod database;
mod fleet;
mod init;
mod inspect;
mod lint;
mod lock;
mod new;
mod sql;
mod test;
mod wait;

use crate::cli::{Cli, Command, DatabaseCommand};
use crate::context::Context;
use crate::exit::Error;

pub fn run(cli: &Cli) -> Result<(), Error> {
    // `--set NAME` becomes the set's --dir and history table for every command.
    let global = crate::sets::resolve(&cli.global)?;
    let ctx = Context::new(&global);
    match &cli.command {
        Command::Init => init::run(&ctx),
        Command::New {
            name,
            no_down,
            no_transaction,
        } => new::run(&ctx, name, !no_down, *no_transaction),
        Command::Up {
            to,
            dry_run,
            allow_out_of_order,
            single_transaction,
            record_schema,
            phase,
            fleet,
        } if fleet::active(fleet) => fleet::up(
            &ctx,
            fleet,
            to.as_deref(),
            *dry_run,
            *allow_out_of_order,
            *single_transaction,
            *record_schema,
            phase.phase(),
        ),
        Command::Up {
            to,
            dry_run,
            allow_out_of_order,
            single_transaction,
            record_schema,
            phase,
            fleet: _,
        } => apply::up(
            &ctx,
            to.as_deref(),
            *dry_run,
            *allow_out_of_order,
            *single_transaction,
            *record_schema,
            phase.phase(),
        ),
        Command::Down {
            count,
            to,
            all,
            dry_run,
            allow_data_loss,
            stored_downs,
        } => apply::down(
            &ctx,
            *count,
            to.as_deref(),
            *all,
            *dry_run,
            *allow_data_loss,
            *stored_downs,
        ),
        Command::Redo {
            count,
            allow_data_loss,
        } => apply::redo(&ctx, count.unwrap_or(1), *allow_data_loss),
        Command::Current => inspect::current(&ctx),
        Command::History { verbose } => inspect::history(&ctx, *verbose),
        Command::Status { exit_code, fleet } if fleet::active(fleet) => {
            fleet::status(&ctx, fleet, *exit_code)
        }
        Command::Status { exit_code, .. } => inspect::status(&ctx, *exit_code),
        Command::Baseline {
            version,
            from_diesel,
            from_sqlx,
        } => baseline::baseline(&ctx, version.as_deref(), *from_diesel, *from_sqlx),
        Command::Repair {
            version,
            accept_checksum,
        } => baseline::repair(&ctx, version.as_deref(), *accept_checksum),
        Command::Sql {
            from,
            to,
            down,
            phase,
        } => sql::run(&ctx, from.as_deref(), to.as_deref(), *down, phase.phase()),
        Command::Wait {
            timeout,
            phase,
            fleet,
        } if fleet::active(fleet) => fleet::wait(&ctx, fleet, *timeout, phase.phase()),
        Command::Wait { timeout, phase, .. } => wait::run(&ctx, *timeout, phase.phase()),
        Command::Test {
            from,
            to,
            ignore_column_order,
            schema_only,
            max_lock,
            rows,
        } => test::run(
            &ctx,
            from.as_deref(),
            to.as_deref(),
            test::Flags {
                ignore_column_order: *ignore_column_order,
                schema_only: *schema_only,
                max_lock: max_lock.clone(),
                rows: *rows,
            },
        ),
        Command::Lint {
            paths,
            select,
            exclude,
            since,
            list_rules,
        } => lint::run(&ctx, paths, select, exclude, since.as_deref(), *list_rules),
        Command::Lock { rewrite } => lock::lock(&ctx, rewrite.as_deref()),
        Command::Verify {
            online,
            schema_drift,
            fleet,
        } if fleet::active(fleet) => fleet::verify(&ctx, fleet, *online, *schema_drift),
        Command::Verify {
            online,
            schema_drift,
            ..
        } => lock::verify(&ctx, *online, *schema_drift),
        Command::Completions { shell } => completions::run(*shell),
        Command::Database { command } => match command {
            DatabaseCommand::Create => database::create(&ctx),
            DatabaseCommand::Drop { force } => database::drop(&ctx, *force),
            DatabaseCommand::Reset { force } => database::reset(&ctx, *force),
            DatabaseCommand::Setup => database::setup(&ctx),
        },
    }
}
