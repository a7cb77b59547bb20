//! `completions <shell>`: generated from the same clap definitions as `--help`.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Error;

pub fn run(shell: clap_complete::Shell) -> Result<(), Error> {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "migrations",
        &mut std::io::stdout(),
    );
    Ok(())
}
