#!/usr/bin/env bash
# A real Prometheus (Debian package) on loopback scrapes a running profiled;
# every PromQL expression of the Grafana dashboard and of the alert rules is
# then evaluated through Prometheus's HTTP API. A renamed metric cannot
# silently blank a panel or disarm an alert.
#   prometheus_eval_test.sh PROFILED_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
work=$(mktemp -d)
profiled_pid=""
prometheus_pid=""
cleanup() {
  [ -n "$prometheus_pid" ] && kill "$prometheus_pid" 2>/dev/null || true
  [ -n "$profiled_pid" ] && kill "$profiled_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.err; do echo "--- $f"; tail -20 "$f"; done
  exit 1
}
command -v prometheus >/dev/null || fail "prometheus is not installed (deploy/setup-debian.sh installs it)"

# profiled replays the bundled sample and keeps serving.
"$bin" --config "$src/deploy/demo/profiled.yaml" \
  --replay "$src/deploy/demo/data/rees46-2019oct-head/events.csv" \
  --store "$work/store" --http 127.0.0.1:0 >"$work/profiled.out" 2>"$work/profiled.err" &
profiled_pid=$!
for _ in $(seq 1 600); do
  grep -q "serving until Ctrl-C" "$work/profiled.out" 2>/dev/null && break
  kill -0 "$profiled_pid" 2>/dev/null || fail "profiled exited early"
  sleep 0.1
done
port=$(grep -o "on port [0-9]*" "$work/profiled.err" | head -n 1 | awk '{print $3}')
[ -n "$port" ] || fail "profiled did not print its HTTP port"

# Prometheus with the shipped rules, scraping every second.
prom_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cp "$src/deploy/prometheus/alerts.yml" "$work/alerts.yml"
cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [alerts.yml]
scrape_configs:
  - job_name: profiled
    static_configs: [{targets: ["127.0.0.1:$port"]}]
YAML
promtool check config "$work/prometheus.yml" >/dev/null || fail "test scrape config"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.out" 2>"$work/prometheus.err" &
prometheus_pid=$!

/usr/bin/python3 - "http://127.0.0.1:$prom_port" "$src/deploy/grafana/profiled-dashboard.json" \
  "$src/deploy/prometheus/alerts.yml" <<'PY' || fail "PromQL evaluation"
import json, re, sys, time, urllib.parse, urllib.request
import yaml

api, dashboard_path, rules_path = sys.argv[1:4]

def get(path, **params):
    url = f"{api}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)

def query(expr):
    body = get("/api/v1/query", query=expr)
    assert body["status"] == "success", f"{expr}: {body}"
    return body["data"]["result"]

# Ready to answer, and enough scrapes for rate() over a 1m window.
deadline = time.time() + 60
while True:
    try:
        if query('up{job="profiled"} == 1') and query('count_over_time(up{job="profiled"}[1m]) >= 5'):
            break
    except Exception:
        pass
    assert time.time() < deadline, "Prometheus never scraped profiled five times"
    time.sleep(0.5)

# Grafana's variables, as Grafana would substitute them for one instance.
def grafana(expr):
    return expr.replace("$__rate_interval", "1m").replace('"$instance"', '".*"')

dashboard = json.load(open(dashboard_path))
panel_exprs = [(p["title"], t["legendFormat"], grafana(t["expr"]))
               for p in dashboard["panels"] for t in p["targets"]]
empty = []
for title, legend, expr in panel_exprs:
    if not query(expr):
        empty.append(f"panel '{title}' / {legend}: {expr}")
assert not empty, "dashboard queries with no data:\n  " + "\n  ".join(empty)
print(f"dashboard: {len(panel_exprs)} queries in {len(dashboard['panels'])} panels, all return data")

# Alert expressions return nothing while healthy, by design: evaluate each
# (it must parse and run) and require data for every series it reads.
rules = [r for g in yaml.safe_load(open(rules_path))["groups"] for r in g["rules"]]
missing = []
for rule in rules:
    query(rule["expr"])
    for name in sorted(set(re.findall(r"\b(profiled_[a-z_]+|up)\b", rule["expr"]))):
        if not query(f'count({{__name__="{name}"}})'):
            missing.append(f"{rule['alert']}: no series {name}")
assert not missing, "alert rules reading absent series:\n  " + "\n  ".join(missing)

# Prometheus evaluates the loaded rules itself: none may report an error,
# and none may fire on a healthy, caught-up instance (ProfiledNoInput and
# ProfiledDown have "for:" windows far longer than this test).
deadline = time.time() + 30
while True:
    groups = get("/api/v1/rules")["data"]["groups"]
    loaded = [r for g in groups for r in g["rules"]]
    if len(loaded) == len(rules) and all(r.get("lastEvaluation", "").startswith("2") and
                                         not r["lastEvaluation"].startswith("0001") for r in loaded):
        break
    assert time.time() < deadline, "rules not evaluated"
    time.sleep(0.5)
bad = [f"{r['name']}: {r.get('lastError')}" for r in loaded if r["health"] != "ok"]
assert not bad, "rules with evaluation errors:\n  " + "\n  ".join(bad)
firing = [r["name"] for r in loaded if r["state"] == "firing"]
assert not firing, f"alerts firing on a healthy instance: {firing}"
print(f"alerts: {len(rules)} rules evaluated by Prometheus, healthy, none firing")
PY
echo "PASS: prometheus"
