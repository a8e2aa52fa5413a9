#!/usr/bin/env bash
# Installs everything needed to build, test and run Sluice on Debian 12.
#
# Idempotent: when every package is already installed it does nothing (no apt-get update), so
# the other scripts call it on every run. Runs apt-get as root, through sudo when not root.
#
# Usage: bash scripts/install-deps.sh [--build] [--print]
#   --build  only what building needs (not the test tools: browser, promtool, python, node)
#   --print  list the packages and exit
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
  libhttp-parser-dev        # the admin endpoint's HTTP request parsing
)
# Only the tests need these (`--build` leaves them out, e.g. for the Docker image).
TEST_PACKAGES=(
  python3                   # HTTP API tests and example (tests/http), ops checks (tests/ops)
  nodejs                    # the Node HTTP example and the console's browser test
  chromium                  # the console's browser test (tests/browser), headless
  prometheus                # promtool checks the alert rules (tests/ops)
  wrk                       # scripts/bench-http.sh
  fio                       # scripts/bench.sh: the disk's own fdatasync rates
  etcd-server               # the cluster tests (tests/cluster) run a real etcd cluster
)

# The browser test's one npm package, pinned in tests/browser/package-lock.json: playwright-core
# drives Debian's chromium (no browser download).
install_npm_packages() {
  local dir="$1"
  local want got
  want="$(sed -n 's/.*"playwright-core": "\([0-9.]*\)".*/\1/p' "$dir/package.json" | head -n 1)"
  got="$(sed -n 's/.*"version": "\([0-9.]*\)".*/\1/p' \
    "$dir/node_modules/playwright-core/package.json" 2>/dev/null | head -n 1 || true)"
  if [[ -n "$want" && "$want" == "$got" ]]; then
    echo "install-deps: $dir: playwright-core $got already installed"
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-deps: npm is missing (Node.js without npm); install Debian's npm package" >&2
    return 1
  fi
  local node_major
  node_major="$(node --version 2>/dev/null | sed -n 's/^v\([0-9]*\).*/\1/p')"
  if [[ -z "$node_major" || "$node_major" -lt 20 ]]; then
    echo "install-deps: warning: Node.js $(node --version 2>/dev/null) is older than 20, which" \
      "playwright-core needs: the browser test will fail until Node.js 20 is installed" \
      "(e.g. from NodeSource)" >&2
  fi
  echo "install-deps: $dir: npm ci"
  (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts)
}
browser_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"

build_only=0
print_only=0
for arg in "$@"; do
  case "$arg" in
    --build) build_only=1 ;;
    --print) print_only=1 ;;
    *)
      echo "install-deps: unknown argument $arg (use --build, --print)" >&2
      exit 2
      ;;
  esac
done
if ((!build_only)); then PACKAGES+=("${TEST_PACKAGES[@]}"); fi

if ((print_only)); then
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
  if ((!build_only)) && [[ -f "$browser_dir/package.json" ]]; then install_npm_packages "$browser_dir"; fi
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
# Node.js from Debian comes without npm; from NodeSource it brings its own (and Debian's npm
# would conflict with it).
if ! command -v npm >/dev/null 2>&1; then
  "${as_root[@]}" apt-get install -y --no-install-recommends npm
fi
if ((!build_only)) && [[ -f "$browser_dir/package.json" ]]; then install_npm_packages "$browser_dir"; fi
echo "install-deps: done"
