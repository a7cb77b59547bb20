//! One module per command; each returns `Result<(), Error>` and prints its results on stdout.

mod init;
mod new;

use crate::cli::{Cli, Command};
use crate::exit::Error;

pub fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Init => init::run(&cli.dir),
        Command::New {
            name,
            no_down,
            no_transaction,
        } => new::run(&cli.dir, name, !no_down, *no_transaction),
    }
}
