#!/usr/bin/env bash
# Configures (once) and builds the given targets (default: everything) in ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/CMakeCache.txt ]; then
  cmake --preset default >/dev/null
fi
cmake --build build -j"$(nproc)" ${1:+--target "$@"}
