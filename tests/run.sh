#!/usr/bin/env bash
# Installs packages, builds everything and runs the whole suite through CTest.
# Extra arguments go to ctest instead (e.g. -L unit for the fast tier alone).
#
# The whole suite runs the clang-tidy lint beside the other tests, at the
# lowest CPU priority, instead of alone at the end: the integration and
# crash tiers mostly wait on the broker and the clock, and the lint soaks up
# the idle cores (nice 19 gets ~1.5% of a core against a busy test, so the
# timing-sensitive tests keep theirs). Its result counts like a test's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup-debian.sh
bash deploy/build.sh
cd build
if [ "$#" -gt 0 ]; then
  exec ctest --output-on-failure -j2 --timeout 600 "$@"
fi
setsid nice -n 19 bash ../tests/lint/clang_tidy.sh "$PWD" > lint.out 2>&1 &
lint=$!
# Its own session: stopped with its clang-tidy processes if we are.
trap 'kill -- -"$lint" 2>/dev/null || true' EXIT
suite=0
ctest --output-on-failure -j2 --timeout 600 -LE lint || suite=$?
linted=0
wait "$lint" || linted=$?
cat lint.out
if [ "$linted" -ne 0 ]; then
  echo "lint (tests/lint/clang_tidy.sh) failed: exit $linted" >&2
fi
[ "$suite" -eq 0 ] && [ "$linted" -eq 0 ]
