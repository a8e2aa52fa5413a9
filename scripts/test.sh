#!/usr/bin/env bash
# Everything CI checks, in order:
#   1. deps        scripts/install-deps.sh
#   2. format      clang-format --dry-run --Werror over the project's *.cpp and *.h files
#   3. build       build/      RelWithDebInfo, tests and examples on, warnings are errors
#   4. test        ctest on build/ (every test)
#   5. asan-build  build-asan/ Debug with AddressSanitizer + UndefinedBehaviorSanitizer
#   6. asan-test   ctest on build-asan/ (every test again, leaks and UB are failures)
#   7. fuzz        scripts/fuzz.sh: each libFuzzer target for a bounded time from its seed corpus
# A failing stage does not stop the later ones, except that tests are skipped when their build
# failed. Exits non-zero if any stage failed. Extra arguments go to both ctest runs, e.g.
#   bash scripts/test.sh -L unit
#
# Environment:
#   SLUICE_SKIP_SANITIZERS=1   skip stages 5, 6 and 7 for a fast local loop (ignored when CI=true)
#   SLUICE_FUZZ_SECONDS        seconds per fuzz target; default 20
#   SLUICE_BUILD_DIR           default build
#   SLUICE_ASAN_BUILD_DIR      default build-asan
#   SLUICE_JOBS                parallel compile jobs; default: number of cores
#   SLUICE_TEST_JOBS           parallel tests (ctest -j); default 2
#   SLUICE_TEST_TIMEOUT        seconds per test without its own TIMEOUT property; default 300
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
build_dir="${SLUICE_BUILD_DIR:-build}"
asan_dir="${SLUICE_ASAN_BUILD_DIR:-build-asan}"
jobs="${SLUICE_JOBS:-$(nproc)}"
test_jobs="${SLUICE_TEST_JOBS:-2}"
test_timeout="${SLUICE_TEST_TIMEOUT:-300}"
ctest_args=("$@")

skip_sanitizers=0
if [[ "${SLUICE_SKIP_SANITIZERS:-0}" == "1" ]]; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "test.sh: CI=true, ignoring SLUICE_SKIP_SANITIZERS=1: CI always runs the sanitizer pass"
  else
    skip_sanitizers=1
  fi
fi

log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT

summary=()  # "stage|result|seconds"
any_failed=0
stage_rc=0
script_start=$SECONDS

fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# Runs "$@" as stage $1 in a subshell with errexit on, records result and time in the summary,
# and leaves the exit status in stage_rc. Never fails itself: errexit would be ignored inside a
# function called from `if` or `||`, so callers test stage_rc instead.
stage() {
  local name="$1"
  shift
  local start=$SECONDS result
  echo
  echo "==> [$name] $(date +%H:%M:%S)"
  set +e
  (
    set -e
    "$@"
  )
  stage_rc=$?
  set -e
  local took=$((SECONDS - start))
  if ((stage_rc == 0)); then
    result="ok"
  else
    result="FAILED (exit $stage_rc)"
    any_failed=1
  fi
  summary+=("$name|$result|$took")
  echo "<== [$name] $result in $(fmt_secs "$took")"
}

skip() {
  summary+=("$1|skipped ($2)|0")
  echo
  echo "==> [$1] skipped: $2"
}

check_format() {
  local files=() bad=()
  if git -c safe.directory="$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked files plus new ones not yet added (but not ignored ones such as build trees).
    mapfile -t files < <(git -c safe.directory="$root" ls-files --cached --others \
      --exclude-standard -- '*.cpp' '*.h' | sort -u)
  else
    mapfile -t files < <(find . \( -path './build*' -o -path ./data -o -path ./.git \) -prune \
      -o -type f \( -name '*.cpp' -o -name '*.h' \) -print | sed 's|^\./||' | sort)
  fi
  local existing=()
  for f in "${files[@]}"; do
    if [[ -f "$f" ]]; then existing+=("$f"); fi
  done
  if ((${#existing[@]} == 0)); then
    echo "format: no *.cpp or *.h files found"
    return 0
  fi
  # shellcheck disable=SC2016  # $1 is expanded by the inner sh, not here.
  mapfile -t bad < <(printf '%s\0' "${existing[@]}" | xargs -0 -P "$jobs" -n 1 \
    sh -c 'clang-format --dry-run --Werror "$1" >/dev/null 2>&1 || printf "%s\n" "$1"' sh |
    sort)
  if ((${#bad[@]} > 0)); then
    echo "format: ${#bad[@]} of ${#existing[@]} files are not formatted as .clang-format says:"
    printf '  %s\n' "${bad[@]}"
    echo "format: fix them with: bash scripts/format.sh   (or clang-format -i FILE...)"
    return 1
  fi
  echo "format: ${#existing[@]} files ok ($(clang-format --version))"
}

build_main() {
  cmake -S . -B "$build_dir" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSLUICE_BUILD_TESTS=ON \
    -DSLUICE_BUILD_EXAMPLES=ON \
    -DSLUICE_WERROR=ON \
    -DSLUICE_SANITIZE=OFF
  cmake --build "$build_dir" -j "$jobs"
}

# Warnings are already errors in the main build; sanitizer instrumentation makes GCC report
# spurious ones (-Wmaybe-uninitialized, -Wstringop-overflow), so they are not errors here.
# Examples are left out: they add no tests.
build_asan() {
  cmake -S . -B "$asan_dir" \
    -DCMAKE_BUILD_TYPE=Debug \
    -DSLUICE_BUILD_TESTS=ON \
    -DSLUICE_BUILD_EXAMPLES=OFF \
    -DSLUICE_WERROR=OFF \
    -DSLUICE_SANITIZE=ON
  cmake --build "$asan_dir" -j "$jobs"
}

# run_ctest DIR LOGNAME: every test in DIR, output kept in $log_dir/LOGNAME for the summary.
run_ctest() {
  ctest --test-dir "$1" --output-on-failure --no-tests=error -j "$test_jobs" \
    --timeout "$test_timeout" "${ctest_args[@]}" 2>&1 | tee "$log_dir/$2"
}

test_asan() {
  # Our settings first; options already in the environment come later and win.
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
    LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
    run_ctest "$asan_dir" asan.log
}

stage deps bash scripts/install-deps.sh
if ((stage_rc != 0)); then
  echo "test.sh: dependencies could not be installed; stopping" >&2
  exit 1
fi

stage format check_format

stage build build_main
if ((stage_rc == 0)); then
  stage test run_ctest "$build_dir" main.log
else
  skip test "build failed"
fi

if ((skip_sanitizers)); then
  skip asan-build "SLUICE_SKIP_SANITIZERS=1"
  skip asan-test "SLUICE_SKIP_SANITIZERS=1"
else
  stage asan-build build_asan
  if ((stage_rc == 0)); then
    stage asan-test test_asan
  else
    skip asan-test "build failed"
  fi
fi

if ((skip_sanitizers)); then
  skip fuzz "SLUICE_SKIP_SANITIZERS=1"
else
  stage fuzz bash scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-20}"
fi

echo
echo "==== test.sh summary ===="
for row in "${summary[@]}"; do
  IFS='|' read -r name result took <<<"$row"
  printf '  %-11s %-36s %s\n' "$name" "$result" "$(fmt_secs "$took")"
done
printf '  %-11s %-36s %s\n' total "" "$(fmt_secs $((SECONDS - script_start)))"

# One closing line over both ctest runs, from ctest's own "N% tests passed, F tests failed out
# of T" lines.
passed=0 failed=0 counted=0
for log in "$log_dir"/main.log "$log_dir"/asan.log; do
  [[ -f "$log" ]] || continue
  line="$(grep -Eo '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)"
  [[ -n "$line" ]] || continue
  read -r f _ _ _ _ t <<<"$line"
  failed=$((failed + f))
  passed=$((passed + t - f))
  counted=1
done
if ((counted)); then
  echo "tests: $passed passed, $failed failed"
fi

if ((any_failed)); then
  echo "test.sh: FAILED" >&2
  exit 1
fi
echo "test.sh: all stages passed"
