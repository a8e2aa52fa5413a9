#!/usr/bin/env bash
# The key-ordered group figure: one backlog of COUNT messages (default 500,000 x 1 KiB) over
# KEYS keys (default 10,000), drained by CONSUMERS consumers (default 8) as a fresh unordered
# group and as a fresh key-ordered group, alternating, ROUNDS times (default 3), on one broker.
# Each line: the group kind and `sluice bench consume --json` output.
#
#   bash scripts/bench-ordered.sh                # BUILD_DIR=build-perf (Release)
#   PREFETCH=100 ROUNDS=1 bash scripts/bench-ordered.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir="${BUILD_DIR:-build-perf}"
count="${COUNT:-500000}"
keys="${KEYS:-10000}"
consumers="${CONSUMERS:-8}"
prefetch="${PREFETCH:-1000}"
rounds="${ROUNDS:-3}"
source scripts/bench-lib.sh

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "build:   $(git rev-parse --short HEAD), $build_dir"
start "$work/data"
sl bench publish ordered --create --producers 2 --in-flight 256 --count "$count" --keys "$keys" \
  >/dev/null
echo "published $count x 1 KiB over $keys keys; $consumers consumers, prefetch $prefetch"
for round in $(seq "$rounds"); do
  for kind in unordered key-ordered; do
    flag=()
    [[ "$kind" == key-ordered ]] && flag=(--key-ordered)
    echo "$kind $(sl --json bench consume ordered --group "$kind-$round" --consumers "$consumers" \
      --prefetch "$prefetch" --count "$count" "${flag[@]}")"
  done
done
