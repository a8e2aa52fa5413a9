#!/usr/bin/env bash
# TLS against plaintext, side by side in one sitting (bench/README.md). Certificates are made
# here with openssl (a CA and an EC P-256 server certificate for localhost). Each run starts a
# fresh sluiced with both listeners and drives one of them; ROUNDS rounds (default 3), the
# order alternating (plain tls, tls plain, ...):
#   publish  bench publish bench --create --producers 1 --in-flight 256 --duration DURATION
#   latency  bench latency bench --create --rate 5000 --duration DURATION (consumer acks each)
# Each line is the kind, the transport and the `sluice --json bench` output plus the broker's
# CPU per message (utime+stime of sluiced across the run / messages); then medians.
# COMPARE=auth compares authentication off against on instead (both plaintext): with --auth the
# client is the principal "bench", whose 1,000 rules put the one that matches last.
#
#   bash scripts/bench-tls.sh                      # BUILD_DIR=build-perf (Release), 5 s runs
#   ROUNDS=5 DURATION=10s bash scripts/bench-tls.sh
#   COMPARE=auth bash scripts/bench-tls.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir="${BUILD_DIR:-build-perf}"
rounds="${ROUNDS:-3}"
duration="${DURATION:-5s}"
variants=(plain tls)
[[ "${COMPARE:-tls}" == auth ]] && variants=(off auth)
source scripts/bench-lib.sh

pki="$work/pki"
mkdir -p "$pki"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj /CN=bench-ca \
  -days 2 2>/dev/null
openssl req "${ec[@]}" -keyout "$pki/server.key" -out "$pki/server.csr" -subj /CN=localhost \
  2>/dev/null
printf 'subjectAltName=DNS:localhost\n' >"$pki/ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
  -CAcreateserial -out "$pki/server.crt" -days 2 -extfile "$pki/ext" 2>/dev/null

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "build:   $(git rev-parse --short HEAD), $build_dir"
results="$work/results"
: >"$results"
admin_token=$(openssl rand -hex 32)
# 999 rules that do not match the topic "bench", then the one that does.
bench_rules=()
for i in $(seq 999); do bench_rules+=(--allow "publish,consume,manage:team$i.>"); done
bench_rules+=(--allow "publish,consume,manage:bench")
run() {  # KIND TRANSPORT
  local kind=$1 transport=$2 data="$work/data-$RANDOM" out before
  local server=(--listen-tls 127.0.0.1:0 --tls-cert "$pki/server.crt" --tls-key "$pki/server.key")
  [[ $transport == auth ]] && server=(--auth)
  SLUICE_ADMIN_TOKEN=$admin_token start "$data" "${server[@]}"
  local client=(--broker "$addr")
  if [[ $transport == tls ]]; then
    client=(--broker "$tls_addr" --tls-ca "$pki/ca.crt" --tls-server-name localhost)
  elif [[ $transport == auth ]]; then
    SLUICE_TOKEN=$admin_token "$sluice" --broker "$addr" auth principals create bench \
      "${bench_rules[@]}" >/dev/null
    echo -n "$(SLUICE_TOKEN=$admin_token "$sluice" --broker "$addr" auth tokens create bench \
      2>/dev/null)" >"$work/token"
    client+=(--token-file "$work/token")
  fi
  before=$(cpu_ticks)
  case "$kind" in
    publish)
      out=$("$sluice" "${client[@]}" --json bench publish bench --create --producers 1 \
        --in-flight 256 --duration "$duration")
      ;;
    latency)
      out=$("$sluice" "${client[@]}" --json bench latency bench --create --rate 5000 \
        --duration "$duration")
      ;;
  esac
  out=$(with_cpu "$before" "$out")
  stop
  rm -rf "$data"
  echo "$kind $transport $out" | tee -a "$results"
}
for round in $(seq "$rounds"); do
  order=("${variants[@]}")
  ((round % 2 == 0)) && order=("${variants[1]}" "${variants[0]}")
  for transport in "${order[@]}"; do run publish "$transport"; done
  for transport in "${order[@]}"; do run latency "$transport"; done
done

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
pick() { grep "^$1 $2 " "$results" | cut -d' ' -f3- | jq -r "$3" | median; }
echo
printf '%-8s %-6s %10s %8s %8s %9s %11s\n' kind mode msg/s p50_ms p99_ms p99.9_ms cpu_us/msg
for kind in publish latency; do
  lat=.ack_latency
  [[ $kind == latency ]] && lat=.e2e_latency
  for transport in "${variants[@]}"; do
    printf '%-8s %-6s %10.0f %8.2f %8.2f %9.2f %11.2f\n' "$kind" "$transport" \
      "$(pick "$kind" "$transport" .msgs_per_sec)" \
      "$(pick "$kind" "$transport" "$lat.p50_us / 1000")" \
      "$(pick "$kind" "$transport" "$lat.p99_us / 1000")" \
      "$(pick "$kind" "$transport" "$lat.p999_us / 1000")" \
      "$(pick "$kind" "$transport" .broker_cpu_us_per_msg)"
  done
done
