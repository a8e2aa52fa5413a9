#!/usr/bin/env bash
# Replicated against single-broker publishing, side by side in one sitting: each round runs
# `sluice bench publish` (1 producer, 256 in flight, 1 KiB) once against a standalone broker and
# once against the leader of a three-broker cluster (replication factor 3, min_insync 2, one
# etcd member), the order alternating between rounds, everything on loopback and this machine's
# one disk. Prints every run and the medians.
#
#   bash scripts/bench-cluster.sh
#   ROUNDS=5 DURATION=10s BUILD_DIR=build-perf bash scripts/bench-cluster.sh
#
# Needs a Release build (sluiced, sluice), etcd (Debian etcd-server) and jq.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build="${BUILD_DIR:-build-perf}"
rounds="${ROUNDS:-3}"
duration="${DURATION:-10s}"
sluiced="$(pwd)/$build/broker/src/sluiced"
cli="$(pwd)/$build/client-lib/cli/sluice"
[[ -x $sluiced && -x $cli ]] || { echo "no Release build in $build (cmake --build $build)" >&2; exit 2; }
command -v etcd >/dev/null || { echo "etcd not found (apt-get install etcd-server)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench-cluster.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # seconds command...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "timed out waiting for: $*" >&2; exit 1; }
    sleep 0.05
  done
}

# One run against a broker at $1: prints msg/s.
publish() {
  "$cli" --broker "$1" --json bench publish "bench$RANDOM" --create --in-flight 256 \
    --duration "$duration" | jq -r .msgs_per_sec
}

single() {
  local dir="$work/single-$1" out="$work/single-$1.out"
  "$sluiced" --data "$dir" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --log-level warn >"$out" 2>"$dir.err" &
  local pid=$!
  pids+=("$pid")
  wait_for 20 grep -q '^ready' "$out"
  local port
  port=$(grep -o 'rpc=[0-9]*' "$out" | cut -d= -f2)
  publish "127.0.0.1:$port"
  kill -TERM "$pid"; wait "$pid" || true
}

replicated() {
  local base="$work/cluster-$1" client peer
  client=$(free_port); peer=$(free_port)
  mkdir -p "$base"
  etcd --data-dir "$base/etcd" --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "default=http://127.0.0.1:$peer" >"$base/etcd.log" 2>&1 &
  local etcd=$!
  pids+=("$etcd")
  wait_for 20 curl -sf "http://127.0.0.1:$client/health"
  local brokers=() ports=()
  for i in 1 2 3; do
    local rpc repl
    rpc=$(free_port); repl=$(free_port)
    "$sluiced" --data "$base/b$i" --listen "127.0.0.1:$rpc" --admin 127.0.0.1:0 \
      --replication-listen "127.0.0.1:$repl" --etcd "127.0.0.1:$client" --broker-id "b$i" \
      >"$base/b$i.out" 2>"$base/b$i.err" &
    brokers+=($!); pids+=($!); ports+=("$rpc")
    wait_for 20 grep -q '^ready' "$base/b$i.out"
  done
  # b1 started first and leads; it takes writes once both followers are in sync.
  wait_for 20 grep -q '3 in-sync member' "$base/b1.err"
  publish "127.0.0.1:${ports[0]}"
  for pid in "${brokers[@]}" "$etcd"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${brokers[@]}" "$etcd"; do wait "$pid" 2>/dev/null || true; done
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(git rev-parse --short HEAD)"
echo "workload: publish, 1 producer, 256 in flight, 1 KiB, $duration per run, $rounds rounds"
singles=() clusters=()
for round in $(seq 1 "$rounds"); do
  if ((round % 2)); then
    s=$(single "$round"); c=$(replicated "$round")
  else
    c=$(replicated "$round"); s=$(single "$round")
  fi
  printf 'round %d: single %.0f msg/s, replicated (R=3) %.0f msg/s\n' "$round" "$s" "$c"
  singles+=("$s"); clusters+=("$c")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ms=$(median "${singles[@]}"); mc=$(median "${clusters[@]}")
printf 'median: single %.0f msg/s, replicated %.0f msg/s (%.0f %%)\n' "$ms" "$mc" \
  "$(echo "100 * $mc / $ms" | bc -l)"
