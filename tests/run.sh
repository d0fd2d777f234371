#!/usr/bin/env bash
# Installs packages, builds everything and runs the whole suite through CTest.
# Extra arguments go to ctest (e.g. -L unit for the fast tier alone).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup-debian.sh
bash deploy/build.sh
cd build
ctest --output-on-failure -j2 --timeout 600 "$@"
