#!/bin/sh
# Instructions per packet on the loopback harness (perf/RESULTS.md, the
# udp-echo / macswap / smoltcp-echo rows): callgrind at 3 200 and 35 200
# packets, the difference over 32 000, so start-up cost drops out.
#
# usage: perf/experiments/count-pipeline.sh [udp-echo|macswap|smoltcp-echo ...]
# Build first: cargo build --release -p warpcore-benches --bin count-pipeline
set -eu
binary=${COUNT_PIPELINE:-target/release/count-pipeline}
[ -x "$binary" ] || { echo "count-pipeline.sh: $binary is missing: cargo build --release -p warpcore-benches --bin count-pipeline" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "count-pipeline.sh: valgrind is missing (Debian package valgrind)" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
total() {
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>&1
    grep -E '^(totals|summary):' "$out" | tail -1 | awk '{print $2}'
}
[ $# -gt 0 ] || set -- udp-echo macswap smoltcp-echo
for workload in "$@"; do
    a=$(total "$binary" "$workload" 3200)
    b=$(total "$binary" "$workload" 35200)
    awk -v w="$workload" -v a="$a" -v b="$b" 'BEGIN {
        printf "%s: %.2f instructions/packet\n", w, (b - a) / 32000 }'
done
