#!/usr/bin/env bash
# Drives the profiled binary as a user would.
#   profiled_binary_test.sh PROFILED_BIN SOURCE_DIR CASE
# CASE: once | sigterm | bad-config | json-logs
set -euo pipefail
bin=$1
src=$2
case_name=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sample="$src/deploy/demo/data/rees46-2019oct-head/events.csv"
config="$src/deploy/demo/profiled.yaml"

fail() { echo "FAIL: $*" >&2; echo "--- stdout"; cat "$work/out" 2>/dev/null || true; echo "--- stderr"; tail -30 "$work/err" 2>/dev/null || true; exit 1; }

case "$case_name" in
  once)
    # The README's run command with --once: replay the sample, summarize, exit 0.
    "$bin" --config "$config" --replay "$sample" --store "$work/store" --http 127.0.0.1:0 --once >"$work/out" 2>"$work/err" \
      || fail "exit code $?"
    grep -q "events consumed:   5019" "$work/out" || fail "not all 5019 sample rows consumed"
    grep -q "events applied:    5019" "$work/out" || fail "not all events applied"
    grep -q "events rejected:   0" "$work/out" || fail "events rejected"
    # SOURCE.txt of the sample: 1,755 users.
    grep -q "profiles stored:   1755" "$work/out" || fail "expected 1755 profiles"
    grep -q "scores as of:      2019-10-01 02:28:17 UTC" "$work/out" || fail "not evaluated on stream time"
    grep -q "category " "$work/out" || fail "no category scores shown"
    tail -n 1 "$work/err" | grep -q "draining" || true
    grep "\[progress\]" "$work/out" | tail -n 1 | grep -q "outbox 0" || fail "outbox not drained"
    # A first start with nothing to consume prints no zeros dated 1970.
    "$bin" --embedded-kafka --store "$work/empty" --http 127.0.0.1:0 --once >"$work/out" 2>"$work/err" \
      || fail "exit code $? on empty topics"
    grep -q "nothing consumed and no profiles stored yet" "$work/out" || fail "no empty summary"
    ! grep -q "1970" "$work/out" || fail "summary dated 1970"
    # A control topic in embedded mode is created like the inputs, with
    # embedded.partitions (the mock would auto-create it with 4), and consumed.
    printf 'embedded: {partitions: 2}\ninput: {topics: [profiled.events], control_topic: profiled.control}\n' \
      >"$work/control.yaml"
    "$bin" --config "$work/control.yaml" --store "$work/control" --http 127.0.0.1:0 --once \
      >"$work/out" 2>"$work/err" || fail "exit code $? with a control topic"
    grep -q "assigned profiled.control/1" "$work/err" || fail "the control topic was not consumed"
    ! grep -q "profiled.control/2" "$work/err" || fail "the control topic was not created by profiled"
    ;;
  sigterm)
    # Keeps serving after the summary; SIGTERM drains and exits 0.
    "$bin" --config "$config" --replay "$sample" --store "$work/store" --http 127.0.0.1:0 \
      >"$work/out" 2>"$work/err" &
    pid=$!
    for _ in $(seq 1 600); do
      grep -q "serving until Ctrl-C" "$work/out" 2>/dev/null && break
      kill -0 "$pid" 2>/dev/null || fail "profiled exited early"
      sleep 0.1
    done
    grep -q "serving until Ctrl-C" "$work/out" || fail "never caught up"
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "exit code $rc after SIGTERM"
    grep -q "shutting down" "$work/err" || fail "no orderly shutdown"
    # The store reopens with the positions of everything consumed.
    "$bin" --config "$config" --store "$work/store" --http 127.0.0.1:0 --once >"$work/out2" 2>"$work/err2" \
      && fail "embedded mode must refuse a store with positions from an earlier broker"
    grep -q "pass --fresh" "$work/err2" || fail "no hint about --fresh"
    ;;
  bad-config)
    cat >"$work/bad.yaml" <<'YAML'
input: {topics: [], group_id: ""}
output: {topic: out, outbox_max_entries: -1}
scoring: {families: {category: {half_life: soon}}}
colour: blue
YAML
    rc=0
    "$bin" --check-config --config "$work/bad.yaml" >"$work/out" 2>"$work/err" || rc=$?
    [ "$rc" -eq 2 ] || fail "expected exit code 2, got $rc"
    for expect in "colour: unknown key" "input.topics: must list at least one topic" \
                  "input.group_id: must not be empty" "output.outbox_max_entries: must be between" \
                  "scoring.families.category.half_life: bad duration 'soon'"; do
      grep -q "$expect" "$work/err" || fail "missing error: $expect"
    done
    rc=0
    "$bin" --config "$work/bad.yaml" >"$work/out" 2>"$work/err" || rc=$?
    [ "$rc" -eq 2 ] || fail "start with a bad config: expected exit code 2, got $rc"
    "$bin" --check-config --config "$config" >"$work/out" 2>"$work/err" || fail "demo config rejected"
    ;;
  json-logs)
    # log.format json: every stderr line is one JSON object with ts, level, msg.
    { cat "$config"; printf '\nlog: {format: json, level: debug}\n'; } >"$work/json.yaml"
    "$bin" --config "$work/json.yaml" --replay "$sample" --store "$work/store" --http 127.0.0.1:0 --once \
      >"$work/out" 2>"$work/err" || fail "exit code $?"
    /usr/bin/python3 - "$work/err" <<'PY' || fail "stderr is not JSON lines"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert len(lines) >= 5, f"only {len(lines)} log lines"
levels = set()
for n, line in enumerate(lines, 1):
    record = json.loads(line)
    assert set(record) == {"ts", "level", "msg"}, f"line {n}: keys {sorted(record)}"
    assert record["ts"].endswith("Z") and len(record["ts"]) == 24, f"line {n}: ts {record['ts']}"
    levels.add(record["level"])
assert levels <= {"debug", "info", "warn", "error"}, levels
assert "info" in levels, levels
print(f"{len(lines)} JSON log lines, levels {sorted(levels)}")
PY
    ;;
  *) fail "unknown case $case_name" ;;
esac
echo "PASS: $case_name"
