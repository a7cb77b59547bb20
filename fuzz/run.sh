#!/bin/sh
# Runs every fuzz target (or the ones named) one after the other, each for $SECONDS_PER_TARGET
# seconds (default 600), with libFuzzer through `cargo fuzz` on the stable toolchain
# (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags). New inputs go to corpus/<target>/,
# the hand-made seeds stay in seeds/<target>/, crashes land in artifacts/<target>/.
# See RELIABILITY.md.
set -eu
cd "$(dirname "$0")"
seconds=${SECONDS_PER_TARGET:-600}
targets=${*:-names directives splitter lockfile}
export RUSTC_BOOTSTRAP=1
target_dir=${CARGO_TARGET_DIR:-target}
cargo fuzz build --target-dir "$target_dir"
for t in $targets; do
    mkdir -p "corpus/$t"
    echo "== $t: ${seconds}s"
    cargo fuzz run --target-dir "$target_dir" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
