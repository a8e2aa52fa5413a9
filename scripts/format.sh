#!/usr/bin/env bash
# Formats the project's *.cpp and *.h files in place with clang-format: the set that
# scripts/test.sh checks (tracked files plus new, not ignored ones).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
git -c safe.directory="$(pwd)" ls-files -z --cached --others --exclude-standard -- '*.cpp' '*.h' |
  while IFS= read -r -d '' f; do
    if [[ -f "$f" ]]; then printf '%s\0' "$f"; fi
  done |
  xargs -0 -r -n 50 clang-format -i
echo "format: done"
