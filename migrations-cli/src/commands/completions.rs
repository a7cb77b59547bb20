//! `completions <shell>`: generated from the same clap definitions as `--help`.

use std::io::Write;

use crate::cli;
use crate::exit::Error;

pub fn run(shell: clap_complete::Shell) -> Result<(), Error> {
    // Generated into memory first: clap_complete panics when its writer fails, and a reader
    // that stops early (`completions bash | head`) closes the pipe. A closed pipe is the reader's
    // choice, not an error: the rest is dropped quietly, as for every other command's output.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli::command(), "migrations", &mut script);
    let _ = std::io::stdout().lock().write_all(&script);
    Ok(())
}
