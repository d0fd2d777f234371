#!/usr/bin/env bash
# The same end-to-end scenarios against an older profiled, built beside this
# one and run alternately in one session (issue 19: "before" is the old
# commit built and run side by side). Only the profiled binary differs: the
# broker, the load generator and the driver are this checkout's.
#   bash benchmarks/e2e/before_after.sh [OLD_COMMIT] [RUNS] [SCENARIO_PREFIX]
# SCENARIO_PREFIX runs only the scenarios whose name starts with it
# (e.g. "zipf 100k, flat" for the primary target alone).
set -euo pipefail
cd "$(dirname "$0")/../.."
old=${1:-c17b1d8}
runs=${2:-3}
only=${3:-}
bash deploy/setup-debian.sh >/dev/null
bash deploy/build.sh profiled devbroker profiled_loadgen profiled_e2e_bench >/dev/null
tree=/tmp/profiled-before-$old
if [ ! -x "$tree/build/services/profiled/profiled" ]; then
  rm -rf "$tree"
  git worktree add -f -q "$tree" "$old"
  (cd "$tree" && cmake --preset default >/dev/null && cmake --build build -j"$(nproc)" --target profiled >/dev/null)
fi
mixed=$(mktemp -d)
out=$(mktemp)
trap 'rm -rf "$mixed" "$out"' EXIT
mkdir -p "$mixed/services/profiled" "$mixed/services/devbroker" "$mixed/benchmarks"
ln -s "$tree/build/services/profiled/profiled" "$mixed/services/profiled/profiled"
ln -s "$PWD/build/services/devbroker/devbroker" "$mixed/services/devbroker/devbroker"
ln -s "$PWD/build/benchmarks/profiled_loadgen" "$mixed/benchmarks/profiled_loadgen"
scenario() {  # NAME RUNS ARGS...
  local name=$1 n=$2
  shift 2
  [[ "$name" == "$only"* ]] || return 0
  for _ in $(seq 1 "$n"); do
    for side in before after; do
      local bin=build
      [ "$side" = before ] && bin=$mixed
      echo "running $name ($side): $*" >&2
      line=$(build/benchmarks/profiled_e2e_bench --bin "$bin" "$@" 2>/dev/null | grep '^JSON' || true)
      echo "$name|$side ${line#JSON }" >>"$out"
    done
  done
}
scenario "zipf 100k, flat out" "$runs" --profiles 100000 --keys zipf --rate 0 --seconds 30
scenario "uniform 10M, flat out" 1 --profiles 10000000 --keys uniform --rate 0 --seconds 60
scenario "zipf 100k, 5k/s offered" 1 --profiles 100000 --keys zipf --rate 5000 --seconds 30 --partitions 4
scenario "zipf 100k, 10k/s offered" 1 --profiles 100000 --keys zipf --rate 10000 --seconds 30 --partitions 4
scenario "zipf 100k, 15k/s offered" 1 --profiles 100000 --keys zipf --rate 15000 --seconds 30 --partitions 4
/usr/bin/python3 - "$out" "$old" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    key, _, body = line.partition(" {")
    if not body:
        continue
    rows.setdefault(key, []).append(json.loads("{" + body))
print(f"| scenario | side | runs | complete | sustained/s | profiled cores | events/CPU-s | p50 / p95 / p99 ms | raw two-hop p99 ms (ratio) | peak RSS MiB | raw consume/s (ratio) | raw get+put/s (ratio) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
def raw_hops(runs):  # offered a rate only: the two-hop relay's p99 and profiled's ratio to it
    raw = [r.get("raw_p99_ms", -1) for r in runs]
    if min(raw) <= 0:
        return "—"
    p99 = statistics.median(r["p99_ms"] for r in runs)
    return f"{statistics.median(raw):.0f} ({p99 / statistics.median(raw):.1f})"
for key, runs in rows.items():
    name, side = key.split("|")
    med = lambda k: statistics.median(r[k] for r in runs)
    label = f"before ({sys.argv[2]})" if side == "before" else "after"
    print(f"| {name} | {label} | {len(runs)} | {sum(r['complete'] for r in runs)}/{len(runs)} | "
          f"{med('sustained'):,.0f} | {med('cores'):.2f} | {med('per_cpu_second'):,.0f} | "
          f"{med('p50_ms'):.0f} / {med('p95_ms'):.0f} / {med('p99_ms'):.0f} | {raw_hops(runs)} | "
          f"{med('peak_rss_mib'):.0f} | "
          f"{med('raw_consume'):,.0f} ({med('sustained') / med('raw_consume'):.3f}) | "
          f"{med('raw_rocksdb'):,.0f} ({med('sustained') / med('raw_rocksdb'):.2f}) |")
PY
