#!/usr/bin/env bash
# The delayed-delivery figures: COUNT messages (default 1,000,000 x 1 KiB) published with one
# delivery time LEAD seconds ahead, so that they fall due together; then
#   - how long a group takes to pass them all into its on-disk due index, and the broker's
#     RssAnon after the publish and at its peak meanwhile,
#   - restart to `ready` with them scheduled (SIGTERM, start again on the same store),
#   - the rate at which they are delivered (and acked) once due.
#
#   bash scripts/bench-scheduled.sh            # BUILD_DIR=build-perf (Release), 1M, LEAD=40
#   COUNT=200000 LEAD=20 bash scripts/bench-scheduled.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir="${BUILD_DIR:-build-perf}"
count="${COUNT:-1000000}"
lead="${LEAD:-40}"
source scripts/bench-lib.sh

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "build:   $(git rev-parse --short HEAD), $build_dir"
start "$work/data"
at=$(date -u -d "+$lead sec" +%Y-%m-%dT%H:%M:%SZ)
sl bench publish scheduled --create --producers 2 --in-flight 256 --count "$count" --at "$at" \
  >/dev/null
echo "published $count x 1 KiB due at $at, RssAnon $(( $(rss) / 1024 )) MiB"
passing() {  # A consumer of group g while the group passes every message into its due index.
  "$sluice" --broker "$addr" consume scheduled --group g --wait 1h >/dev/null &
  local consumer=$! t0 t1
  t0=$(date +%s%N)
  until [[ "$(sl --json groups describe scheduled g 2>/dev/null | jq -r .pending)" == "$count" ]]; do
    sleep 0.05
  done
  t1=$(date +%s%N)
  kill -TERM "$consumer"
  wait "$consumer" || true
  echo "$(((t1 - t0) / 1000000))" >"$work/pass_ms"
}
peak=$(peak_while passing)
echo "group passed $count into its due index in $(cat "$work/pass_ms") ms, RssAnon peak $((peak / 1024)) MiB"
stop
start "$work/data"
echo "restart to ready with $count scheduled: ${ready_ms} ms, RssAnon $(( $(rss) / 1024 )) MiB"
now=$(date +%s)
due=$(date -d "$at" +%s)
((now <= due)) && sleep $((due - now + 1))
rate=$(sl --json bench consume scheduled --group g --prefetch 1000 --count "$count" | jq -r .msgs_per_sec)
printf 'due together: delivered and acked %.0f msg/s, RssAnon after %d MiB\n' "$rate" $(( $(rss) / 1024 ))
