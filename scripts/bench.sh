#!/usr/bin/env bash
# Reproduces the figures of bench/README.md: builds Release into build-perf, then for each
# workload starts a fresh sluiced on a temp dir on loopback, runs `sluice bench` RUNS times
# (default 3) and prints the median of each figure, with the broker's CPU per message
# (utime+stime of the sluiced process across the run, from /proc/PID/stat) and its peak
# RssAnon during the run (sampled every 100 ms from /proc/PID/status).
#
#   bash scripts/bench.sh                 # every workload but the 5M-message memory check
#   WORKLOADS="pub1 drain" bash scripts/bench.sh
#   WORKLOADS=memory bash scripts/bench.sh   # 5M x 1 KiB backlog (~7 GB of disk), 4 consumers
#
# Environment: BUILD_DIR (build-perf), RUNS (3), DURATION (10s), JOBS (2), TMPDIR,
# SKIP_BUILD=1 to use the binaries as they are, SLUICE_CLI (the `sluice` binary to drive them),
# SKIP_DISK=1 to leave out the disk's fdatasync rates (fio) printed first.
# Each JSON line also has broker_write_bytes_per_msg: write_bytes of the sluiced process
# (/proc/PID/io, bytes it sent toward the device) across the run ÷ messages.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir="${BUILD_DIR:-build-perf}"
runs="${RUNS:-3}"
duration="${DURATION:-10s}"
workloads="${WORKLOADS:-pub1 pub4 pubsync latency drain pub1-async}"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build_dir" -j "${JOBS:-2}" --target sluiced sluice_cli >/dev/null
fi
sluiced="$build_dir/broker/src/sluiced"
# SLUICE_CLI: another build's client, so that two brokers are compared with the same one.
sluice="${SLUICE_CLI:-$build_dir/client-lib/cli/sluice}"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')," \
     "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
echo "kernel:  $(uname -sr)"
disk_dev=$(df --output=source "${TMPDIR:-/tmp}" | tail -1)
echo "disk:    ${TMPDIR:-/tmp} on $disk_dev ($(df -h --output=size "${TMPDIR:-/tmp}" | tail -1 | tr -d ' '))," \
     "rotational=$(cat /sys/block/"$(basename "$disk_dev")"/queue/rotational 2>/dev/null || echo '?')"
echo "build:   $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes'), $build_dir (Release)"

# The disk's own limits in this sitting (fio): 4 KiB writes each followed by fdatasync, appended
# to a growing file, and overwriting blocks already written. A durable publish can be no faster
# than one of these per commit; the day's figures vary by 2x, so compare against these.
disk_rates() {
  if ! command -v fio >/dev/null; then
    echo "disk:    fio is missing (bash scripts/install-deps.sh installs it); no fdatasync rates"
    return
  fi
  local dir append overwrite
  dir=$(mktemp -d "${TMPDIR:-/tmp}/sluice-disk.XXXXXX")
  append=$(fio --name=append --filename="$dir/append" --rw=write --bs=4k --size=256m \
    --fdatasync=1 --runtime=5 --ioengine=sync --fallocate=none --output-format=json |
    jq '.jobs[0].write.iops')
  fio --name=fill --filename="$dir/overwrite" --rw=write --bs=1m --size=32m --end_fsync=1 \
    --output-format=json >/dev/null
  overwrite=$(fio --name=overwrite --filename="$dir/overwrite" --rw=write --bs=4k --size=32m \
    --fdatasync=1 --runtime=5 --time_based --overwrite=1 --ioengine=sync --output-format=json |
    jq '.jobs[0].write.iops')
  rm -rf "$dir"
  printf 'fsync:   4 KiB write + fdatasync: append %.0f/s, overwrite %.0f/s (fio, 5 s each)\n' \
    "$append" "$overwrite"
}
if [[ "${SKIP_DISK:-0}" != 1 ]]; then disk_rates; fi
echo

broker_pid=""
broker_dir=""
broker_addr=""
start_broker() {  # extra sluiced flags
  broker_dir=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
  local out="$broker_dir/stdout"
  "$sluiced" --data "$broker_dir/data" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
    --log-level warn "$@" >"$out" 2>"$broker_dir/stderr" &
  broker_pid=$!
  for _ in $(seq 1 200); do
    if grep -q '^ready rpc=' "$out" 2>/dev/null; then break; fi
    sleep 0.05
  done
  local port
  port=$(sed -n 's/^ready rpc=\([0-9]*\).*/\1/p' "$out")
  [[ -n "$port" ]] || { echo "sluiced did not start:"; cat "$broker_dir/stderr"; exit 1; }
  broker_addr="127.0.0.1:$port"
}
stop_broker() {
  if [[ -n "$broker_pid" ]]; then
    kill -TERM "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  [[ -n "$broker_dir" ]] && rm -rf "$broker_dir"
  broker_pid=""
  broker_dir=""
}
trap stop_broker EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$broker_pid/stat"; }
write_bytes() { awk '/^write_bytes/ {print $2}' "/proc/$broker_pid/io"; }
rss_anon_kib() { awk '/RssAnon/ {print $2}' "/proc/$broker_pid/status"; }
bench() { "$sluice" --broker "$broker_addr" --json bench "$@"; }

# Highest RssAnon of the broker, sampled every 100 ms until the file $1 disappears.
sample_rss_peak() {
  local flag=$1 peak=0 now
  while [[ -e "$flag" ]]; do
    now=$(rss_anon_kib 2>/dev/null || echo 0)
    ((now > peak)) && peak=$now
    sleep 0.1
  done
  echo "$peak"
}

# Runs `bench ARGS` while measuring the broker; prints the bench JSON extended with
# broker_cpu_us_per_msg and broker_rss_anon_mib (the peak RssAnon sampled during the run).
measured() {
  local before after written_before written_after json flag peak_file
  flag="$broker_dir/sampling"
  peak_file="$broker_dir/rss_peak"
  touch "$flag"
  sample_rss_peak "$flag" >"$peak_file" &
  local sampler=$!
  before=$(cpu_ticks)
  written_before=$(write_bytes)
  json=$(bench "$@")
  after=$(cpu_ticks)
  written_after=$(write_bytes)
  rm -f "$flag"
  wait "$sampler"
  jq -c --argjson ticks "$((after - before))" --argjson hz "$(getconf CLK_TCK)" \
        --argjson rss "$(cat "$peak_file")" --argjson written "$((written_after - written_before))" \
    '. + {broker_cpu_us_per_msg: (if .messages > 0 then $ticks * 1e6 / $hz / .messages else 0 end),
          broker_write_bytes_per_msg: (if .messages > 0 then $written / .messages else 0 end),
          broker_rss_anon_mib: ($rss / 1024)}' <<<"$json"
}

# One run of a workload on a fresh broker; prints one JSON line.
run_once() {
  local workload=$1
  case "$workload" in
    pub1) start_broker
      measured publish bench --create --producers 1 --in-flight 256 --duration "$duration" ;;
    pub4) start_broker
      measured publish bench --create --producers 4 --in-flight 256 --duration "$duration" ;;
    pubsync) start_broker
      measured publish bench --create --producers 1 --in-flight 1 --duration "$duration" ;;
    pub1-async) start_broker --durability=async
      measured publish bench --create --producers 1 --in-flight 256 --duration "$duration" ;;
    latency) start_broker
      measured latency bench --create --rate 5000 --duration "$duration" ;;
    drain) start_broker
      bench publish bench --create --producers 2 --in-flight 256 --count 500000 >/dev/null
      measured consume bench --group drain --consumers 1 --prefetch 1000 --count 500000 ;;
    memory) start_broker
      # The peak over the whole run: filling the 5M backlog, then four consumers each holding a
      # full prefetch window while the backlog stays on disk.
      touch "$broker_dir/filling"
      sample_rss_peak "$broker_dir/filling" >"$broker_dir/fill_peak" &
      local filler=$!
      bench publish bench --create --producers 2 --in-flight 256 --count 5000000 >/dev/null
      rm -f "$broker_dir/filling"
      wait "$filler"
      measured consume bench --group mem --consumers 4 --prefetch 1000 --count 200000 |
        jq -c --argjson fill "$(cat "$broker_dir/fill_peak")" \
          '.broker_rss_anon_mib = ([.broker_rss_anon_mib, $fill / 1024] | max)' ;;
    *) echo "unknown workload $workload"; exit 2 ;;
  esac
  stop_broker
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

printf '%-11s %12s %9s %9s %9s %9s %9s %10s %8s\n' workload msg/s MB/s p50_ms p99_ms p99.9_ms max_ms cpu_us/msg rss_MiB
for workload in $workloads; do
  results=()
  for _ in $(seq 1 "$runs"); do
    results+=("$(run_once "$workload")")
  done
  printf '%s\n' "${results[@]}" >"${TMPDIR:-/tmp}/sluice-bench-$workload.jsonl"
  pick() { printf '%s\n' "${results[@]}" | jq -r "$1" | median; }
  lat='(.e2e_latency // .ack_latency // {})'
  printf '%-11s %12.0f %9.1f %9.2f %9.2f %9.2f %9.2f %10.2f %8.1f\n' "$workload" \
    "$(pick .msgs_per_sec)" "$(pick .mb_per_sec)" \
    "$(pick "$lat.p50_us // 0 | . / 1000")" "$(pick "$lat.p99_us // 0 | . / 1000")" \
    "$(pick "$lat.p999_us // 0 | . / 1000")" "$(pick "$lat.max_us // 0 | . / 1000")" \
    "$(pick .broker_cpu_us_per_msg)" "$(pick .broker_rss_anon_mib)"
done
echo
echo "Latency columns: publish -> ack for publish workloads, publish -> consumer receipt for"
echo "latency. pub1-async runs sluiced --durability=async (acknowledged before fsync; opt-in)."
echo "Raw runs: ${TMPDIR:-/tmp}/sluice-bench-<workload>.jsonl"
