//! `reliability`: the heavy reliability runs of the `migrations` binary (not part of CI).
//!
//! ```text
//! cargo run --release -p reliability -- crash-loop --runs 100 [--seed N]
//! cargo run --release -p reliability -- server-faults --rounds 5 [--seed N]
//! cargo run --release -p reliability -- concurrency --processes 16 --trials 50
//! cargo run --release -p reliability -- all
//! ```
//!
//! Exit status 0 when no inconsistency was found, 1 otherwise. The databases come from the
//! test harness (`DATABASE_URL`, else a throwaway local cluster); `server-faults` always starts
//! a cluster of its own.

use clap::{Parser, Subcommand};

use reliability::{bin, concurrency, crash, faults, rng, Summary};

#[derive(Parser)]
#[command(about = "Reliability runs of the migrations binary; see RELIABILITY.md")]
struct Args {
    /// Print one line per run.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// `migrations up` killed with SIGKILL at random instants, rerun, compared with a clean run.
    CrashLoop {
        /// How many kills must land.
        #[arg(long, default_value_t = 100)]
        runs: usize,
        /// Seed of the kill instants (default: from the clock; always printed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Server restarted and session terminated mid-migration (on a cluster of our own).
    ServerFaults {
        /// Rounds of each fault (restart, terminate) in each kind of migration, and of the
        /// server-starting case.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Many `migrations up` processes at once on one database.
    Concurrency {
        #[arg(long, default_value_t = 16)]
        processes: usize,
        #[arg(long, default_value_t = 50)]
        trials: usize,
    },
    /// All three with their default sizes.
    All {
        #[arg(long)]
        seed: Option<u64>,
    },
}

fn main() {
    let args = Args::parse();
    let bin = match bin::migrations_binary() {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    println!("binary under test: {}", bin.display());
    let verbose = args.verbose;
    let summaries: Vec<Summary> = match args.command {
        Command::CrashLoop { runs, seed } => vec![crash::run(
            &bin,
            &crash::Options {
                runs,
                seed: seed.unwrap_or_else(rng::clock_seed),
                verbose,
            },
        )],
        Command::ServerFaults { rounds, seed } => vec![faults::run(
            &bin,
            &faults::Options {
                rounds,
                seed: seed.unwrap_or_else(rng::clock_seed),
                verbose,
            },
        )],
        Command::Concurrency { processes, trials } => vec![concurrency::run(
            &bin,
            &concurrency::Options {
                processes,
                trials,
                verbose,
            },
        )],
        Command::All { seed } => {
            let seed = seed.unwrap_or_else(rng::clock_seed);
            vec![
                crash::run(
                    &bin,
                    &crash::Options {
                        runs: 100,
                        seed,
                        verbose,
                    },
                ),
                faults::run(
                    &bin,
                    &faults::Options {
                        rounds: 5,
                        seed,
                        verbose,
                    },
                ),
                concurrency::run(
                    &bin,
                    &concurrency::Options {
                        processes: 16,
                        trials: 50,
                        verbose,
                    },
                ),
            ]
        }
    };
    let mut failed = false;
    for s in &summaries {
        s.print();
        failed |= !s.inconsistencies.is_empty();
    }
    std::process::exit(if failed { 1 } else { 0 });
}
