#!/usr/bin/env bash
# Partitioned failover (docs/benchmarks.md, "Failover"): two instances, 12
# partitions, zipf 100k offered at 1,000 events/s; the second instance is
# killed with SIGKILL 8 s in. Prints, per run and as medians, the time until
# every repartition partition publishes again (anything: the moved ones'
# backlog first), until each publishes input produced after the kill, and a
# bare consumer group's failover (two members, one killed) on the same broker
# with the same session timeout (6 s). The rate and length keep each
# changelog partition under the mock broker's ~5 MiB: it has no compaction,
# and a restore from a changelog missing its start is refused.
# With a standby (cluster.standby_replicas: 1) the survivor takes the
# killed instance's partitions from warm copies instead of restoring them.
#   bash benchmarks/e2e/failover.sh [runs] [standby_replicas]
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/setup-debian.sh >/dev/null
bash deploy/build.sh profiled devbroker profiled_loadgen profiled_e2e_bench >/dev/null
runs=${1:-3}
standby=${2:-0}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for run in $(seq 1 "$runs"); do
  echo "run $run" >&2
  build/benchmarks/profiled_e2e_bench --bin build --profiles 100000 --keys zipf --rate 1000 \
    --seconds 25 --partitions 12 --instances 2 --kill-at 8 --standby "$standby" 2>/dev/null | grep '^JSON' | sed 's/^JSON //' >>"$out" || true
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| run | complete | available again ms | failover ms | bare group ms | available − bare ms | failover − bare ms |")
print("|---|---|---|---|---|---|---|")
for i, r in enumerate(rows, 1):
    print(f"| {i} | {r['complete']} | {r['available_ms']:,} | {r['failover_ms']:,} | {r['bare_failover_ms']:,} | "
          f"{r['available_ms'] - r['bare_failover_ms']:,} | {r['failover_ms'] - r['bare_failover_ms']:,} |")
# A run where a side never recovered within its minute reports -1: shown, not in the medians.
ok = [r for r in rows if min(r['failover_ms'], r['available_ms'], r['bare_failover_ms']) >= 0]
if ok:
    med = lambda k: statistics.median(r[k] for r in ok)
    diff = lambda k: statistics.median(r[k] - r['bare_failover_ms'] for r in ok)
    print(f"| median of {len(ok)} | {sum(r['complete'] for r in rows)}/{len(rows)} | {med('available_ms'):,.0f} | "
          f"{med('failover_ms'):,.0f} | {med('bare_failover_ms'):,.0f} | {diff('available_ms'):,.0f} | "
          f"{diff('failover_ms'):,.0f} |")
PY
