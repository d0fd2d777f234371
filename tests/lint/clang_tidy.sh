#!/usr/bin/env bash
# clang-tidy with the repository's .clang-tidy over every source of libs/
# and services/, using the build's compile_commands.json, with clang's
# thread-safety analysis on (.clang-tidy turns its diagnostics into checks,
# so every ABSL_GUARDED_BY is checked in the same parse). Findings are errors.
#   tests/lint/clang_tidy.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
[ -f "$build/compile_commands.json" ] || { echo "clang_tidy: build first" >&2; exit 2; }
command -v clang-tidy >/dev/null || { echo "clang_tidy: clang-tidy missing (deploy/setup-debian.sh)" >&2; exit 2; }
/usr/bin/python3 - "$build/compile_commands.json" "$PWD" > "$build/clang_tidy.files" <<'PY'
import json, sys
root = sys.argv[2]
for entry in json.load(open(sys.argv[1])):
    f = entry["file"]
    if f.startswith(root + "/libs/") or f.startswith(root + "/services/"):
        print(f)
PY
total=$(wc -l < "$build/clang_tidy.files")
# g++'s -Werror and flags clang does not know stay out of clang-tidy's way.
if xargs -P "$(nproc)" -n 1 clang-tidy -p "$build" --quiet \
     --extra-arg=-Wno-unknown-warning-option --extra-arg=-Wno-error \
     --extra-arg=-Wthread-safety --extra-arg=-Wthread-safety-beta \
     < "$build/clang_tidy.files" > "$build/clang_tidy.log" 2>&1; then
  echo "clang_tidy: $total sources, no findings"
else
  grep -E "(warning|error): .*\[" "$build/clang_tidy.log" | sort -u | head -60 >&2
  echo "clang_tidy: findings above ($total sources)" >&2
  exit 1
fi
