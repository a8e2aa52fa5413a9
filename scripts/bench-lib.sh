# Helpers shared by the benchmark scripts that drive a Release sluiced through `sluice`.
# Source after setting build_dir; defines sluiced, sluice, work (removed on exit), pid, addr,
# tls_addr (with --listen-tls), admin_addr, ready_ms, and start, stop, cpu_ticks, with_cpu, rss, peak_while
# and sl.
sluiced="$build_dir/broker/src/sluiced"
sluice="$build_dir/client-lib/cli/sluice"
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
pid=""
addr=""
ready_ms=0
cleanup() { [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() {  # DATA_DIR [SLUICED_ARGS...] -> sets pid, addr, tls_addr, admin_addr and ready_ms
  local data=$1 out="$work/stdout.$RANDOM" t0 t1
  shift
  t0=$(date +%s%N)
  "$sluiced" --data "$data" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --log-level warn "$@" \
    >"$out" 2>>"$work/stderr" &
  pid=$!
  until grep -q '^ready rpc=' "$out" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
    sleep 0.005
  done
  t1=$(date +%s%N)
  addr="127.0.0.1:$(sed -n 's/^ready rpc=\([0-9]*\).*/\1/p' "$out")"
  tls_addr="127.0.0.1:$(sed -n 's/^ready .*tls=\([0-9]*\).*/\1/p' "$out")"
  admin_addr="127.0.0.1:$(sed -n 's/^ready .*admin=\([0-9]*\).*/\1/p' "$out")"
  ready_ms=$(((t1 - t0) / 1000000))
}
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=""; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }  # utime+stime of sluiced so far
# Prints JSON (a `sluice --json bench` line) with broker_cpu_us_per_msg added: the broker's CPU
# since BEFORE (cpu_ticks) per message.
with_cpu() {  # BEFORE JSON
  jq -c --argjson ticks "$(($(cpu_ticks) - $1))" --argjson hz "$(getconf CLK_TCK)" \
    '. + {broker_cpu_us_per_msg: (if .messages > 0 then $ticks * 1e6 / $hz / .messages else 0 end)}' \
    <<<"$2"
}
rss() { awk '/RssAnon/ {print $2}' "/proc/$pid/status"; }
peak_while() {  # runs "$@" while sampling RssAnon every 100 ms; prints the peak in KiB
  local peak=0 now
  "$@" >/dev/null &
  local job=$!
  while kill -0 "$job" 2>/dev/null; do
    now=$(rss); ((now > peak)) && peak=$now
    sleep 0.1
  done
  wait "$job"
  echo "$peak"
}
sl() { "$sluice" --broker "$addr" "$@"; }
