#!/usr/bin/env bash
# Side-by-side comparison of two builds of sluiced in one sitting: for each workload, RUNS
# rounds, each round running the workload once on build A and once on build B (the order
# alternating between rounds), all driven by build B's `sluice` client. Prints per build the
# median of each figure. The disk and CPU of a machine drift over a day; only figures taken
# like this, interleaved, are comparable.
#
#   bash scripts/bench-compare.sh OLD_BUILD_DIR NEW_BUILD_DIR
#   RUNS=5 DURATION=5s WORKLOADS="pub1 latency" bash scripts/bench-compare.sh build-old build-perf
#
# Both directories must hold Release builds (sluiced, sluice). Environment as scripts/bench.sh
# (RUNS default 3 here, DURATION default 5s, WORKLOADS default "pub1 pub4 pubsync latency
# drain").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $# -eq 2 ]] || { echo "usage: $0 BUILD_A BUILD_B" >&2; exit 2; }
a=$1
b=$2
runs="${RUNS:-3}"
workloads="${WORKLOADS:-pub1 pub4 pubsync latency drain}"
export DURATION="${DURATION:-5s}"
cli="$(cd "$b" && pwd)/client-lib/cli/sluice"
out=$(mktemp -d "${TMPDIR:-/tmp}/sluice-compare.XXXXXX")
trap 'rm -rf "$out"' EXIT

one() {  # build workload -> appends one JSON line to $out/<build-index>-<workload>.jsonl
  local dir=$1 index=$2 workload=$3
  mkdir -p "$out/tmp-$index"
  TMPDIR="$out/tmp-$index" BUILD_DIR="$dir" SKIP_BUILD=1 RUNS=1 WORKLOADS="$workload" \
    SLUICE_CLI="$cli" bash scripts/bench.sh >/dev/null
  cat "$out/tmp-$index/sluice-bench-$workload.jsonl" >>"$out/$index-$workload.jsonl"
}

echo "A: $a ($(git -C "$a" rev-parse --short HEAD 2>/dev/null || echo "$a"))"
echo "B: $b"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "runs: $runs interleaved rounds per workload, $DURATION each, 1 KiB payloads"
echo
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
printf '%-9s %-2s %10s %8s %8s %9s %10s %12s\n' workload b msg/s p50_ms p99_ms p99.9_ms cpu_us/msg write_B/msg
for workload in $workloads; do
  for round in $(seq 1 "$runs"); do
    if ((round % 2)); then one "$a" A "$workload"; one "$b" B "$workload"
    else one "$b" B "$workload"; one "$a" A "$workload"; fi
  done
  for index in A B; do
    f="$out/$index-$workload.jsonl"
    pick() { jq -r "$1" "$f" | median; }
    lat='(.e2e_latency // .ack_latency // {})'
    printf '%-9s %-2s %10.0f %8.2f %8.2f %9.2f %10.2f %12.0f\n' "$workload" "$index" \
      "$(pick .msgs_per_sec)" "$(pick "$lat.p50_us // 0 | . / 1000")" \
      "$(pick "$lat.p99_us // 0 | . / 1000")" "$(pick "$lat.p999_us // 0 | . / 1000")" \
      "$(pick .broker_cpu_us_per_msg)" "$(pick .broker_write_bytes_per_msg)"
  done
done
