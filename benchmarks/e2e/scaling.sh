#!/usr/bin/env bash
# Partitioned mode beside single mode, flat out on zipf 100k (docs/benchmarks.md,
# "Scale-out"): sustained events/s, profiled CPU, events per CPU-second and its
# ratio to single mode's in the same run, for 1, 2 and 3 partitioned instances.
#   bash benchmarks/e2e/scaling.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/setup-debian.sh >/dev/null
bash deploy/build.sh profiled devbroker profiled_loadgen profiled_e2e_bench >/dev/null
runs=3 seconds=20
if [ "${1:-}" = "--quick" ]; then runs=1 seconds=8; fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq 1 "$runs"); do  # interleaved: drift on a noisy machine hits every row alike
  for instances in 0 1 2 3; do
    echo "running instances=$instances" >&2
    line=$(build/benchmarks/profiled_e2e_bench --bin build --profiles 100000 --keys zipf --rate 0 \
             --seconds "$seconds" --partitions 12 --instances "$instances" 2>/dev/null | grep '^JSON' || true)
    echo "$instances ${line#JSON }" >>"$out"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    n, _, body = line.partition(" {")
    if body:
        rows.setdefault(int(n), []).append(json.loads("{" + body))
med = lambda runs, k: statistics.median(r[k] for r in runs)
single = med(rows[0], "per_cpu_second") if 0 in rows else float("nan")
print("| mode | runs | complete | sustained/s | profiled cores | events/CPU-s | ratio to single (events/CPU-s) | raw consume/s | sustained / raw consume |")
print("|---|---|---|---|---|---|---|---|---|")
for n in sorted(rows):
    runs = rows[n]
    name = "single" if n == 0 else f"partitioned, {n} instance{'s' if n > 1 else ''}"
    print(f"| {name} | {len(runs)} | {sum(r['complete'] for r in runs)}/{len(runs)} | "
          f"{med(runs, 'sustained'):,.0f} | {med(runs, 'cores'):.2f} | {med(runs, 'per_cpu_second'):,.0f} | "
          f"{med(runs, 'per_cpu_second') / single:.2f} | {med(runs, 'raw_consume'):,.0f} | "
          f"{med(runs, 'sustained') / med(runs, 'raw_consume'):.3f} |")
PY
