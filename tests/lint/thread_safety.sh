#!/usr/bin/env bash
# Clang's thread-safety analysis over every source of libs/ and services/:
# each mutex-protected member carries ABSL_GUARDED_BY, each function that
# needs a lock says so, and clang checks every access (g++ ignores the
# annotations). Reuses the build's compile_commands.json, syntax only.
#   tests/lint/thread_safety.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
commands="$build/compile_commands.json"
[ -f "$commands" ] || { echo "thread_safety: $commands missing (build first)" >&2; exit 2; }
command -v clang++ >/dev/null || { echo "thread_safety: clang++ missing (deploy/setup-debian.sh)" >&2; exit 2; }

# One clang command per source: the build's flags, syntax only, the
# analysis on and fatal. Generated Protobuf code is not ours to annotate.
/usr/bin/python3 - "$commands" "$PWD" > "$build/thread_safety.cmds" <<'PY'
import json, shlex, sys
root = sys.argv[2]
for entry in json.load(open(sys.argv[1])):
    f = entry["file"]
    if not (f.startswith(root + "/libs/") or f.startswith(root + "/services/")):
        continue
    args = shlex.split(entry["command"])[1:]
    keep, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT"):
            skip = True
            continue
        if a in ("-MD", "-c") or a == f:
            continue
        keep.append(a)
    cmd = ["clang++", "-fsyntax-only", "-Wthread-safety", "-Wthread-safety-beta",
           "-Werror=thread-safety", "-Wno-unknown-warning-option", "-Wno-unused-command-line-argument"]
    cmd += [a for a in keep if a != "-Werror"] + [f]
    print("cd " + shlex.quote(entry["directory"]) + " && " + shlex.join(cmd))
PY
total=$(wc -l < "$build/thread_safety.cmds")
failed=0
# Two at a time: the machine has two cores.
if ! tr '\n' '\0' < "$build/thread_safety.cmds" | xargs -0 -P "$(nproc)" -n 1 bash -c 2>"$build/thread_safety.log"; then
  failed=1
fi
if grep -q "warning: \|error: " "$build/thread_safety.log"; then
  grep -B1 -A3 "warning: \|error: " "$build/thread_safety.log" | head -80 >&2
  failed=1
fi
if [ "$failed" -ne 0 ]; then
  echo "thread_safety: problems above ($total sources checked)" >&2
  exit 1
fi
echo "thread_safety: $total sources, no findings"
