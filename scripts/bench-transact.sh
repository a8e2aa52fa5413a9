#!/usr/bin/env bash
# The atomic ack-and-publish figure: a fresh sluiced on a temp dir per run, a backlog of COUNT
# (default 200,000) x 1 KiB messages, then `sluice bench transact` (one input -> one output,
# 256 in flight) driving that build's own `sluice`. With two build directories the runs
# alternate between them (A B, B A, ...), ROUNDS rounds (default 3), in one sitting. Each line:
# the build, tx/s, latency, and CPU per transaction of the broker's event loop and writer
# (/proc/PID/task) and of the bench (time).
#
#   bash scripts/bench-transact.sh                      # build-perf alone
#   bash scripts/bench-transact.sh build-old build-perf # side by side
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
builds=("$@")
[[ ${#builds[@]} -gt 0 ]] || builds=(build-perf)
count="${COUNT:-200000}"

run() {  # BUILD_DIR -> one line
  local build_dir=$1
  (
    source scripts/bench-lib.sh
    start "$work/data"
    sl bench publish in --create --producers 2 --in-flight 256 --count "$count" >/dev/null
    threads() { for t in /proc/"$pid"/task/*; do awk '{printf "%s ", $14 + $15}' "$t/stat"; done; }
    read -r -a before <<<"$(threads)"
    /usr/bin/time -f "%U %S" -o "$work/time" "$sluice" --broker "$addr" --json \
      bench transact in --to out --create --group tx >"$work/out.json"
    read -r -a after <<<"$(threads)"
    read -r user sys <"$work/time"
    python3 - "$build_dir" "$work/out.json" "${before[0]}" "${after[0]}" "${before[1]}" \
      "${after[1]}" "$user" "$sys" <<'PY'
import json, sys
build, path = sys.argv[1], sys.argv[2]
loop0, loop1, writer0, writer1 = map(int, sys.argv[3:7])  # clock ticks (1/100 s)
user, system = map(float, sys.argv[7:9])
run = json.load(open(path))
n, lat = run["messages"], run["transact_latency"]
print(f"{build:12s} {run['msgs_per_sec']:9.0f} tx/s  p50 {lat['p50_us'] / 1000:6.2f}"
      f" p99 {lat['p99_us'] / 1000:6.2f} p99.9 {lat['p999_us'] / 1000:6.2f} ms"
      f"  loop {(loop1 - loop0) * 1e4 / n:5.1f} writer {(writer1 - writer0) * 1e4 / n:5.1f}"
      f" bench {(user + system) * 1e6 / n:5.1f} us/tx  pending_after {run['pending_after']}")
PY
  )
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
for round in $(seq "${ROUNDS:-3}"); do
  if ((round % 2)); then order=("${builds[@]}"); else order=($(printf '%s\n' "${builds[@]}" | tac)); fi
  for build in "${order[@]}"; do
    run "$build"
  done
done
