//! Small versions of the reliability runs, in the normal test suite (about 15 s): 5 crash-loop
//! kills and one trial of 16 concurrent processes. The full runs (100 kills, 50 trials, server
//! faults) are the `reliability` binary's; see RELIABILITY.md.

use reliability::{bin, concurrency, crash};

#[test]
fn crash_loop_smoke() {
    let bin = bin::migrations_binary().unwrap_or_else(|e| panic!("{e}"));
    let seed = reliability::rng::clock_seed();
    let summary = crash::run(
        &bin,
        &crash::Options {
            runs: 5,
            seed,
            verbose: true,
        },
    );
    summary.print();
    assert!(
        summary.inconsistencies.is_empty(),
        "seed {seed}: {:#?}",
        summary.inconsistencies
    );
}

#[test]
fn concurrency_smoke() {
    let bin = bin::migrations_binary().unwrap_or_else(|e| panic!("{e}"));
    let summary = concurrency::run(
        &bin,
        &concurrency::Options {
            processes: 16,
            trials: 1,
            verbose: true,
        },
    );
    summary.print();
    assert!(
        summary.inconsistencies.is_empty(),
        "{:#?}",
        summary.inconsistencies
    );
}
