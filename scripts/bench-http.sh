#!/usr/bin/env bash
# The admin endpoint's HTTP server, measured with wrk (Debian's wrk), side by side in one
# sitting (bench/README.md). Each round starts a fresh sluiced per build and drives it for
# DURATION with 16 connections (one request each: the server closes after every answer):
#   healthz   GET /healthz: request parsing and the answer, nothing else
#   topics    GET /api/v1/topics?limit=50 over 1,000 topics (this build only)
#   publish   POST /api/v1/topics/bench/messages, 100 x 1 KiB per request (this build only)
# OLD_SLUICED=path runs `healthz` on that binary too, in alternating order, e.g. a build of the
# commit before the HTTP API (its handwritten parser) beside this one (http-parser).
#
#   bash scripts/bench-http.sh                        # BUILD_DIR=build-perf (Release)
#   OLD_SLUICED=/tmp/build-old/broker/src/sluiced ROUNDS=3 bash scripts/bench-http.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir="${BUILD_DIR:-build-perf}"
rounds="${ROUNDS:-3}"
duration="${DURATION:-10s}"
source scripts/bench-lib.sh
command -v wrk >/dev/null || { echo "bench-http: needs wrk (apt-get install wrk)" >&2; exit 1; }
new_sluiced="$sluiced"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "build:   $(git rev-parse --short HEAD), $build_dir${OLD_SLUICED:+; old: $OLD_SLUICED}"

# Prints "requests/s p50 p99" of one wrk run; extra arguments go to wrk.
measure() {  # URL [WRK_ARGS...]
  local url=$1
  shift
  wrk -t1 -c16 -d"$duration" --latency "$@" "$url" | awk '
    /Requests\/sec/ {rps = $2}
    $1 == "50%" {p50 = $2}
    $1 == "99%" {p99 = $2}
    /Non-2xx/ {bad = $NF}
    END {if (bad) print "non-2xx answers: " bad > "/dev/stderr"; printf "%s %s %s\n", rps, p50, p99}'
}

run_healthz() {  # LABEL BINARY
  sluiced="$2"
  start "$work/data-$1-$RANDOM"
  echo "healthz $1 $(measure "http://$admin_addr/healthz")"
  stop
}

body="$work/publish.lua"
payload=$(head -c 1024 /dev/zero | tr '\0' 'x')
messages=$(for i in $(seq 100); do
  if ((i > 1)); then printf ,; fi
  printf '{"payload":"%s"}' "$payload"
done)
cat >"$body" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"messages":[$messages]}'
LUA

for round in $(seq "$rounds"); do
  if [[ -n "${OLD_SLUICED:-}" ]]; then
    if ((round % 2)); then
      run_healthz old "$OLD_SLUICED"
      run_healthz new "$new_sluiced"
    else
      run_healthz new "$new_sluiced"
      run_healthz old "$OLD_SLUICED"
    fi
  else
    run_healthz new "$new_sluiced"
  fi
  sluiced="$new_sluiced"
  start "$work/data-api-$RANDOM"
  for i in $(seq 0 999); do printf '{"name":"topic-%04d"}\n' "$i"; done |
    while read -r json; do
      curl -sf -o /dev/null -XPOST -H 'Content-Type: application/json' \
        "http://$admin_addr/api/v1/topics" -d "$json"
    done
  echo "topics new $(measure "http://$admin_addr/api/v1/topics?limit=50")"
  curl -sf -o /dev/null -XPOST -H 'Content-Type: application/json' \
    "http://$admin_addr/api/v1/topics" -d '{"name":"bench"}'
  echo "publish new $(measure "http://$admin_addr/api/v1/topics/bench/messages" -s "$body")" \
    "(x100 messages per request)"
  stop
done
