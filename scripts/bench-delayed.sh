#!/usr/bin/env bash
# The pending-state-out-of-RAM figures: 1,000,000 messages nacked with a 1-hour delay (so the
# whole backlog sits in the group's on-disk redelivery schedule), then
#   - the broker's RssAnon (peak while nacking, and settled afterwards),
#   - restart to `ready` (SIGTERM, start again on the same store),
#   - publish throughput on another topic of that broker against a fresh broker, interleaved.
#
#   bash scripts/bench-delayed.sh                 # BUILD_DIR=build-perf (Release), 1M messages
#   COUNT=200000 bash scripts/bench-delayed.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir="${BUILD_DIR:-build-perf}"
count="${COUNT:-1000000}"
source scripts/bench-lib.sh
pub_rate() { sl --json bench publish "$1" --create --producers 1 --in-flight 256 --duration 5s | jq -r .msgs_per_sec; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "build:   $(git rev-parse --short HEAD), $build_dir"
start "$work/data"
echo "ready, RssAnon $(( $(rss) / 1024 )) MiB"
sl bench publish delayed --create --producers 2 --in-flight 256 --count "$count" >/dev/null
echo "published $count x 1 KiB, RssAnon $(( $(rss) / 1024 )) MiB"
peak=$(peak_while sl bench consume delayed --group g --consumers 2 --prefetch 1000 \
  --count "$count" --nack-delay 1h)
pending=$(sl --json groups describe delayed g | jq -r .pending)
echo "nacked with 1h delay: pending $pending, RssAnon peak $((peak / 1024)) MiB, now $(( $(rss) / 1024 )) MiB"
sleep 2  # let the 25 ms tick run against the full schedule
echo "after 2 s of ticks: RssAnon $(( $(rss) / 1024 )) MiB, broker CPU $(awk '{print ($14+$15)}' /proc/$pid/stat) ticks total"

echo "publish 1x256 on another topic, 5 s, loaded broker (L) and fresh broker (F), interleaved:"
fresh="$work/fresh"
for round in 1 2 3; do
  l=$(pub_rate "other$round")
  loaded_pid=$pid loaded_addr=$addr
  start "$fresh$round"
  f=$(pub_rate other)
  stop
  rm -rf "$fresh$round"
  pid=$loaded_pid addr=$loaded_addr
  printf '  round %d: L %.0f msg/s   F %.0f msg/s\n' "$round" "$l" "$f"
done

stop
start "$work/data"
echo "restart to ready with $pending pending: ${ready_ms} ms, RssAnon $(( $(rss) / 1024 )) MiB"
echo "pending after restart: $(sl --json groups describe delayed g | jq -r .pending)"
