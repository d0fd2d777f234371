#!/usr/bin/env bash
# The embedded demo: installs packages, builds profiled, and runs it against
# an in-process Kafka mock cluster and a local RocksDB, replaying the bundled
# REES46 sample. Extra arguments go to profiled (e.g. --once).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/setup-debian.sh
bash deploy/build.sh profiled
exec ./build/services/profiled/profiled \
  --config deploy/demo/profiled.yaml \
  --replay deploy/demo/data/rees46-2019oct-head/events.csv \
  --fresh "$@"
