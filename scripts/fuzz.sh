#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan, then runs each one for
# SECONDS (default 30) from its committed seed corpus. Exits non-zero if a target finds a crash,
# a sanitizer report, a leak or a hang; the reproducer is in <build>/fuzz-artifacts/<target>/.
#
# Usage: bash scripts/fuzz.sh [SECONDS] [TARGET...]   targets: record_codec write_batch names
#                                                     cli_parse rpc subjects auth http
#        bash scripts/fuzz.sh --seeds [TARGET...]           rewrite tests/fuzz/corpus/<target>
#
# CI (scripts/test.sh) runs it with a short bound: 20 s per target. Longer runs, as humans do them:
#   bash scripts/fuzz.sh 3600                # an hour per target, corpus kept between runs
#   build-fuzz/tests/fuzz/fuzz_rpc -jobs=2 -workers=2 build-fuzz/fuzz-corpus/rpc tests/fuzz/corpus/rpc
# Reproduce a finding:  build-fuzz/tests/fuzz/fuzz_<target> <artifact file>
#
# Environment:
#   SLUICE_FUZZ_BUILD_DIR   default build-fuzz
#   SLUICE_JOBS             parallel compile jobs; default: number of cores
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
build_dir="${SLUICE_FUZZ_BUILD_DIR:-build-fuzz}"
jobs="${SLUICE_JOBS:-$(nproc)}"
all_targets=(record_codec write_batch names cli_parse rpc subjects auth http)

write_seeds=0
seconds=30
targets=()
for arg in "$@"; do
  case "$arg" in
    --seeds) write_seeds=1 ;;
    ''|*[!0-9]*)
      if [[ " ${all_targets[*]} " == *" $arg "* ]]; then
        targets+=("$arg")
      else
        echo "fuzz: unknown argument '$arg' (SECONDS, --seeds or one of: ${all_targets[*]})" >&2
        exit 2
      fi
      ;;
    *) seconds="$arg" ;;
  esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")

# clang and its libFuzzer runtime come with the project's other packages.
bash scripts/install-deps.sh >/dev/null

# Warnings are not errors here: scripts/test.sh lints with the project's compiler.
cmake -S . -B "$build_dir" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSLUICE_FUZZ=ON -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_EXAMPLES=OFF -DSLUICE_WERROR=OFF \
  >/dev/null
cmake --build "$build_dir" -j "$jobs" --target $(printf 'fuzz_%s ' "${targets[@]}")

if ((write_seeds)); then
  for target in "${targets[@]}"; do
    rm -rf "tests/fuzz/corpus/$target"
    SLUICE_FUZZ_WRITE_SEEDS="$root/tests/fuzz/corpus/$target" "$build_dir/tests/fuzz/fuzz_$target"
  done
  exit 0
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for target in "${targets[@]}"; do
  corpus="$build_dir/fuzz-corpus/$target"      # grows across runs
  artifacts="$build_dir/fuzz-artifacts/$target/"
  mkdir -p "$corpus" "$artifacts"
  max_len=4096
  [[ "$target" == rpc ]] && max_len=65536
  [[ "$target" == http ]] && max_len=16384  # Past the server's 4 KiB reads.
  echo "fuzz: $target for ${seconds}s"
  if ! "$build_dir/tests/fuzz/fuzz_$target" \
      -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len="$max_len" \
      -print_final_stats=1 -artifact_prefix="$artifacts" \
      "$corpus" "tests/fuzz/corpus/$target" 2>"$build_dir/fuzz-$target.log"; then
    failed+=("$target")
    tail -n 60 "$build_dir/fuzz-$target.log" >&2
  else
    grep -E '^stat::(number_of_executed_units|new_units_added)|cov: ' "$build_dir/fuzz-$target.log" |
      tail -n 3 | sed "s/^/fuzz: $target: /"
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (reproducers in $build_dir/fuzz-artifacts/)" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a finding"
