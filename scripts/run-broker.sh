#!/usr/bin/env bash
# Quick start: installs the dependencies, builds Sluice (Release) into build/ and runs the broker
# in the foreground on ./data and 127.0.0.1:7400. Extra arguments go to sluiced, e.g.
#   bash scripts/run-broker.sh --log-level debug
# Environment: SLUICE_BUILD_DIR (default build), SLUICE_JOBS (default: number of cores).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir="${SLUICE_BUILD_DIR:-build}"
jobs="${SLUICE_JOBS:-$(nproc)}"

bash scripts/install-deps.sh --build

# Warnings are not errors here: this script is for running the broker, scripts/test.sh lints.
cmake -S . -B "$build_dir" \
  -DCMAKE_BUILD_TYPE=Release \
  -DSLUICE_BUILD_TESTS=OFF \
  -DSLUICE_BUILD_EXAMPLES=ON \
  -DSLUICE_WERROR=OFF \
  -DSLUICE_SANITIZE=OFF
cmake --build "$build_dir" -j "$jobs"

mkdir -p data
echo "run-broker: starting $build_dir/broker/src/sluiced (Ctrl-C or SIGTERM stops it cleanly)"
exec "$build_dir/broker/src/sluiced" --data ./data --listen 127.0.0.1:7400 "$@"
