//! `migrations`: a thin binary over `migrations-core` and `migrations-format`. `main` → `run` →
//! one exit code, decided in [`exit`].

mod cli;
mod commands;
mod exit;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match commands::run(&cli) {
        Ok(()) => exit::Code::Ok,
        Err(error) => {
            eprintln!("error: {error}");
            error.code()
        }
    };
    std::process::exit(code as i32);
}
