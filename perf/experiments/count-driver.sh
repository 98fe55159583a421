#!/bin/sh
# Instructions per packet NIC to NIC through the virtio-net driver, the
# device model taken out (perf/RESULTS.md, "NIC to NIC through the
# virtio-net driver"). Callgrind at 3 200 and 35 200 packets, the
# difference over 32 000; the same again collecting only inside the
# simulated device (`--toggle-collect`), subtracted.
#
# usage: perf/experiments/count-driver.sh [macswap-driver|udp-echo-driver ...]
# Build first: cargo build --release -p warpcore-benches --bin count-driver
set -eu
binary=${COUNT_DRIVER:-target/release/count-driver}
[ -x "$binary" ] || { echo "count-driver.sh: $binary is missing: cargo build --release -p warpcore-benches --bin count-driver" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "count-driver.sh: valgrind is missing (Debian package valgrind)" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
total() {
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>&1
    grep -E '^(totals|summary):' "$out" | tail -1 | awk '{print $2}'
}
device='--toggle-collect=*SimulatedWire*reflect*'
[ $# -gt 0 ] || set -- macswap-driver udp-echo-driver
for workload in "$@"; do
    a=$(total "$binary" "$workload" 3200)
    b=$(total "$binary" "$workload" 35200)
    c=$(total "$device" "$binary" "$workload" 3200)
    d=$(total "$device" "$binary" "$workload" 35200)
    awk -v w="$workload" -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN {
        printf "%s: everything %.2f, device model %.2f, driver + pipeline %.2f instructions/packet\n",
            w, (b - a) / 32000, (d - c) / 32000, ((b - a) - (d - c)) / 32000 }'
done
