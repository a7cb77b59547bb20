//! `reliability`: the heavy reliability runs of the `migrations` binary (not part of CI).
//!
//! ```text
//! cargo run --release -p reliability -- crash-loop --runs 100 [--command up|up-single-transaction|down|redo|repair|all] [--seed N]
//! cargo run --release -p reliability -- server-faults --rounds 5 [--seed N]
//! cargo run --release -p reliability -- network-faults --trials 52 [--seed N]
//! cargo run --release -p reliability -- disk-full --trials 10        (root: mounts a tmpfs)
//! cargo run --release -p reliability -- concurrency --processes 16 --trials 50
//! cargo run --release -p reliability -- all
//! ```
//!
//! Exit status 0 when no inconsistency was found, 1 otherwise. The databases come from the
//! test harness (`DATABASE_URL`, else a throwaway local cluster); `server-faults`,
//! `network-faults` and `disk-full` always start a cluster of their own.

use std::time::Duration;

use clap::{Parser, Subcommand};

use reliability::{bin, concurrency, crash, disk, faults, network, rng, Summary};

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
    /// A migrations command killed with SIGKILL at random instants, rerun, compared with a
    /// clean run.
    CrashLoop {
        /// How many kills must land (for each command).
        #[arg(long, default_value_t = 100)]
        runs: usize,
        /// The command killed: up, up-single-transaction, down, redo, repair, or all (each in
        /// turn).
        #[arg(long, default_value = "up")]
        command: String,
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
    /// The connection cut or stalled mid-statement by a proxy of our own.
    NetworkFaults {
        /// Trials in all, spread over (cut, stall) × (transactional, no-transaction).
        #[arg(long, default_value_t = 52)]
        trials: usize,
        #[arg(long)]
        seed: Option<u64>,
        /// Seconds a stalled runner is given to end by itself.
        #[arg(long, default_value_t = 120)]
        stall_limit: u64,
        /// Only this fault: cut or stall.
        #[arg(long)]
        only: Option<String>,
    },
    /// The data directory's file system (a small tmpfs) fills up during a migration. Needs
    /// root (mount).
    DiskFull {
        /// Trials in all, alternating a transactional and a no-transaction migration.
        #[arg(long, default_value_t = 10)]
        trials: usize,
    },
    /// Many `migrations up` processes at once on one database.
    Concurrency {
        #[arg(long, default_value_t = 16)]
        processes: usize,
        #[arg(long, default_value_t = 50)]
        trials: usize,
    },
    /// Everything with its default sizes (disk-full only as root).
    All {
        #[arg(long)]
        seed: Option<u64>,
    },
}

fn crash_loops(
    bin: &std::path::Path,
    modes: &[crash::Mode],
    runs: usize,
    seed: u64,
    verbose: bool,
) -> Vec<Summary> {
    modes
        .iter()
        .map(|&mode| {
            crash::run(
                bin,
                &crash::Options {
                    runs,
                    seed,
                    verbose,
                    mode,
                    sleep: 1.0,
                },
            )
        })
        .collect()
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
        Command::CrashLoop {
            runs,
            command,
            seed,
        } => {
            let modes = if command == "all" {
                crash::Mode::ALL.to_vec()
            } else if let Some(mode) = crash::Mode::parse(&command) {
                vec![mode]
            } else {
                eprintln!(
                    "error: unknown --command {command:?}: use up, up-single-transaction, \
                     down, redo, repair or all"
                );
                std::process::exit(2);
            };
            let seed = seed.unwrap_or_else(rng::clock_seed);
            crash_loops(&bin, &modes, runs, seed, verbose)
        }
        Command::ServerFaults { rounds, seed } => vec![faults::run(
            &bin,
            &faults::Options {
                rounds,
                seed: seed.unwrap_or_else(rng::clock_seed),
                verbose,
            },
        )],
        Command::NetworkFaults {
            trials,
            seed,
            stall_limit,
            only,
        } => {
            let only = match only.as_deref() {
                None => None,
                Some("cut") => Some(network::NetFault::Cut),
                Some("stall") => Some(network::NetFault::Stall),
                Some(other) => {
                    eprintln!("error: unknown --only {other:?}: use cut or stall");
                    std::process::exit(2);
                }
            };
            vec![network::run(
                &bin,
                &network::Options {
                    trials,
                    seed: seed.unwrap_or_else(rng::clock_seed),
                    stall_limit: Duration::from_secs(stall_limit),
                    only,
                    verbose,
                },
            )]
        }
        Command::DiskFull { trials } => vec![disk::run(&bin, &disk::Options { trials, verbose })],
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
            let mut all = crash_loops(&bin, &crash::Mode::ALL, 100, seed, verbose);
            all.push(faults::run(
                &bin,
                &faults::Options {
                    rounds: 5,
                    seed,
                    verbose,
                },
            ));
            all.push(network::run(
                &bin,
                &network::Options {
                    trials: 52,
                    seed,
                    stall_limit: Duration::from_secs(120),
                    only: None,
                    verbose,
                },
            ));
            if disk::can_mount() {
                all.push(disk::run(
                    &bin,
                    &disk::Options {
                        trials: 10,
                        verbose,
                    },
                ));
            } else {
                println!("disk-full skipped: it needs root to mount a tmpfs");
            }
            all.push(concurrency::run(
                &bin,
                &concurrency::Options {
                    processes: 16,
                    trials: 50,
                    verbose,
                },
            ));
            all
        }
    };
    let mut failed = false;
    for s in &summaries {
        s.print();
        failed |= !s.inconsistencies.is_empty();
    }
    std::process::exit(if failed { 1 } else { 0 });
}
