#!/usr/bin/env bash
# Installs everything needed to build, test and run Sluice on Debian 12.
#
# Idempotent: when every package is already installed it does nothing (no apt-get update), so
# the other scripts call it on every run. Runs apt-get as root, through sudo when not root.
#
# Usage: bash scripts/install-deps.sh [--print]   (--print: list the packages and exit)
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  capnproto libcapnp-dev
  libssl-dev                # TLS (kj-tls), checks of TLS files, SHA-256 of transactions
  liblmdb-dev lmdb-utils
  libspdlog-dev libfmt-dev
  libasio-dev
  libcli11-dev nlohmann-json3-dev libtomlplusplus-dev
  catch2
  clang-format
  clang libclang-rt-14-dev  # libFuzzer targets (tests/fuzz, scripts/fuzz.sh)
  jq                        # scripts/bench.sh reads sluice bench --json
  openssl                   # scripts/bench-tls.sh makes its certificates
)

if [[ "${1:-}" == "--print" ]]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: this script needs a Debian 12 system (dpkg and apt-get); install by hand:" >&2
  echo "  ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  # "installed" only: half-installed or config-files states count as missing.
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

as_root=(env DEBIAN_FRONTEND=noninteractive)
if [[ "$(id -u)" -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing packages (${missing[*]}) and not root; run as root or install sudo" >&2
    exit 1
  fi
  as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
fi

echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y --no-install-recommends "${PACKAGES[@]}"
echo "install-deps: done"
