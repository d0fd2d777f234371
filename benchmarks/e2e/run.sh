#!/usr/bin/env bash
# Runs the end-to-end scenarios of docs/benchmarks.md and prints a table of
# medians (sustained events/s, latency, RSS, ratios to the raw baselines).
#   bash benchmarks/e2e/run.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/setup-debian.sh >/dev/null
bash deploy/build.sh profiled devbroker profiled_loadgen profiled_e2e_bench >/dev/null
runs=3 seconds=30 long=120
if [ "${1:-}" = "--quick" ]; then runs=1 seconds=8 long=10; fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
scenario() {  # NAME RUNS ARGS...
  local name=$1 n=$2
  shift 2
  for _ in $(seq 1 "$n"); do
    echo "running $name: $*" >&2
    line=$(build/benchmarks/profiled_e2e_bench --bin build "$@" 2>/dev/null | grep '^JSON' || true)
    echo "$name ${line#JSON }" >>"$out"
  done
}
scenario "zipf 100k, flat out" "$runs" --profiles 100000 --keys zipf --rate 0 --seconds "$seconds"
scenario "zipf 100k, 10k/s offered" "$runs" --profiles 100000 --keys zipf --rate 10000 --seconds "$seconds" --partitions 4
scenario "zipf 100k, 20k/s offered" 1 --profiles 100000 --keys zipf --rate 20000 --seconds "$seconds" --partitions 4
scenario "zipf 100k, 30k/s offered" 1 --profiles 100000 --keys zipf --rate 30000 --seconds "$seconds" --partitions 8
scenario "zipf 100k, 50k/s offered" 1 --profiles 100000 --keys zipf --rate 50000 --seconds "$seconds"
scenario "uniform 10M, flat out" 1 --profiles 10000000 --keys uniform --rate 0 --seconds "$long"
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, _, body = line.partition(" {")
    if not body:
        continue
    rows.setdefault(name, []).append(json.loads("{" + body))
print("| scenario | runs | complete | sustained/s | profiled cores | events/CPU-s | p50 ms | p99 ms | p999 ms | peak RSS MiB | profiles | B/profile | raw consume/s (ratio) | raw get+put/s (ratio) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for name, runs in rows.items():
    med = lambda k: statistics.median(r[k] for r in runs)
    print(f"| {name} | {len(runs)} | {sum(r['complete'] for r in runs)}/{len(runs)} | {med('sustained'):,.0f} | "
          f"{med('cores'):.2f} | {med('per_cpu_second'):,.0f} | "
          f"{med('p50_ms'):.0f} | {med('p99_ms'):.0f} | {med('p999_ms'):.0f} | {med('peak_rss_mib'):.0f} | "
          f"{med('stored'):,.0f} | {med('disk_bytes_per_profile'):.0f} | "
          f"{med('raw_consume'):,.0f} ({med('sustained') / med('raw_consume'):.3f}) | "
          f"{med('raw_rocksdb'):,.0f} ({med('sustained') / med('raw_rocksdb'):.2f}) |")
PY
