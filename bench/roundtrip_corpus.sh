#!/bin/sh
# The data round trip of crates.io's 285 migrations (`migrations test`, data included), timed
# for one or more builds of the CLI, interleaved (A B A B ...) so that a shared machine's load
# hits them alike; the load average is printed before and after (issue 14 item 6: at most 15 s
# with a release build on a 2-core machine).
#
#   bench/roundtrip_corpus.sh URL RUNS BINARY [BINARY...]
#
# URL is a server whose role may create databases, e.g.
# "postgres://postgres@localhost:55433/postgres?host=/tmp" (a throwaway cluster with
# fsync=off, as the tests use). Each run prints the binary, its wall time and its summary line
# (which must read "285 migrations checked: 245 ok, 40 failed"), then the medians.
# Example, before and after a change: build (`cargo build --release -p migrations-cli`), copy
# target/release/migrations to /tmp/before, change, build again, then
#   bench/roundtrip_corpus.sh "$URL" 3 /tmp/before target/release/migrations
set -eu
url=$1
runs=$2
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp -r "$here/corpus/crates.io/migrations" "$dir/m"
printf 'ignore = ["data_oauth_github.sql"]\n' >"$dir/m/migrations.toml"
echo "load before: $(uptime)"
i=0
while [ "$i" -lt "$runs" ]; do
    for bin in "$@"; do
        start=$(date +%s.%N)
        summary=$("$bin" test --dir "$dir/m" --database-url "$url" --color never 2>&1 \
            | grep 'migrations checked' || true)
        end=$(date +%s.%N)
        t=$(echo "$end - $start" | bc)
        echo "$bin $t s: $summary"
        echo "$bin $t" >>"$dir/times"
    done
    i=$((i + 1))
done
echo "load after: $(uptime)"
for bin in "$@"; do
    grep -F "$bin " "$dir/times" | awk '{print $2}' | sort -n \
        | awk -v b="$bin" '{a[NR]=$1} END {print "median " b ": " a[int((NR+1)/2)] " s (" NR " runs)"}'
done
