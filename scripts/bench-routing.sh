#!/usr/bin/env bash
# The subject-routing figures, side by side in one sitting (bench/README.md):
#  1. direct against routed publishes, 1 producer x 256 in flight x 1 KiB, DURATION each, on a
#     fresh sluiced per run, ROUNDS rounds with the order rotating:
#       direct   bench publish bench --create
#       own      bench publish --subject bench --create     (a topic capturing its own name)
#       pattern  topic bench capturing 'bench.>', bench publish --subject bench.orders.created
#     Each line is the kind and the `sluice --json bench publish` output plus broker_cpu_us_per_msg
#     (utime+stime of sluiced across the run / messages); then the medians of each kind, and the
#     median over rounds of each routed kind's rate against the direct run of its own round.
#  2. filtered_backlog: COUNT (default 1,000,000) x 1 KiB, 1 % matching, a new filtered group
#     timed from subscribe to its last match, FILTER_ROUNDS times on one broker (0: skipped).
#
#   bash scripts/bench-routing.sh                        # BUILD_DIR=build-perf (Release)
#   ROUNDS=5 DURATION=5s COUNT=200000 bash scripts/bench-routing.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir="${BUILD_DIR:-build-perf}"
rounds="${ROUNDS:-3}"
duration="${DURATION:-5s}"
count="${COUNT:-1000000}"
filter_rounds="${FILTER_ROUNDS:-3}"
source scripts/bench-lib.sh
backlog="$build_dir/tests/bench/filtered_backlog"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "build:   $(git rev-parse --short HEAD), $build_dir"
kinds=(direct own pattern)
results="$work/results"
: >"$results"
run_kind() {
  local kind=$1 data="$work/data-$RANDOM"
  start "$data"
  local common=(--producers 1 --in-flight 256 --duration "$duration")
  local out before
  before=$(cpu_ticks)
  case "$kind" in
    direct) out=$(sl --json bench publish bench --create "${common[@]}") ;;
    own) out=$(sl --json bench publish --subject bench --create "${common[@]}") ;;
    pattern)
      sl topics create bench --subjects 'bench.>' >/dev/null
      out=$(sl --json bench publish --subject bench.orders.created "${common[@]}")
      ;;
  esac
  out=$(with_cpu "$before" "$out")
  stop
  rm -rf "$data"
  echo "$round $kind $out" | tee -a "$results"
}
for round in $(seq "$rounds"); do
  for i in 0 1 2; do
    run_kind "${kinds[$(((i + round) % 3))]}"
  done
done
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
echo
printf '%-8s %10s %8s %8s %9s %11s %15s\n' kind msg/s p50_ms p99_ms p99.9_ms cpu_us/msg \
  vs_direct_round
rate() { grep "^$1 $2 " "$results" | cut -d' ' -f3- | jq -r .msgs_per_sec; }
for kind in "${kinds[@]}"; do
  pick() { grep " $kind " "$results" | cut -d' ' -f3- | jq -r "$1" | median; }
  ratio=$(for round in $(seq "$rounds"); do
    echo "$(rate "$round" "$kind") $(rate "$round" direct)" | awk '{print $1 / $2}'
  done | median)
  printf '%-8s %10.0f %8.2f %8.2f %9.2f %11.2f %15.3f\n' "$kind" "$(pick .msgs_per_sec)" \
    "$(pick '.ack_latency.p50_us / 1000')" "$(pick '.ack_latency.p99_us / 1000')" \
    "$(pick '.ack_latency.p999_us / 1000')" "$(pick .broker_cpu_us_per_msg)" "$ratio"
done
((filter_rounds > 0)) || exit 0

echo
start "$work/data-filtered"
"$backlog" "$addr" --messages "$count"
for round in $(seq 2 "$filter_rounds"); do
  "$backlog" "$addr" --messages "$count" --reuse
done
stop
