#!/usr/bin/env bash
# The profiled binary with its output broker frozen (SIGSTOP), as an operator
# would see it: /readyz turns 503 naming output_stalled, /metrics shows
# profiled_fault{reason="output_stalled"} 1 and the lag of what waits; once
# the broker continues (SIGCONT) everything is published and /readyz is 200.
#   frozen_broker_test.sh BIN_DIR SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
work=$(mktemp -d)
pids=()
cleanup() {  # profiled first (it drains to the brokers), then the brokers
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -CONT "${pids[i]}" 2>/dev/null || true
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$work"/*.err; do echo "--- $f"; tail -20 "$f"; done; exit 1; }

start_broker() {  # NAME TOPIC... -> bootstrap in $work/NAME.out
  local name=$1; shift
  local args=()
  for t in "$@"; do args+=(--topic "$t"); done
  "$bin/devbroker/devbroker" "${args[@]}" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 1 100); do [ -s "$work/$name.out" ] && break; sleep 0.1; done
}
start_broker input ev:2
input_pid=${pids[-1]}
start_broker output up:2 dl:1
output_pid=${pids[-1]}
input=$(head -n 1 "$work/input.out")
output=$(head -n 1 "$work/output.out")
ctl="$bin/profilectl/profilectl"

cat >"$work/profiled.yaml" <<YAML
kafka:
  bootstrap: "$input"
  producer_properties: {bootstrap.servers: "$output"}
input: {topics: [ev], group_id: frozen}
output: {topic: up, dead_letter_topic: dl}
store: {path: $work/store}
http: {listen: "127.0.0.1:0"}
clock: {mode: event_time}
health: {stall_timeout: 2s}
YAML
"$bin/profiled/profiled" --config "$work/profiled.yaml" >"$work/profiled.out" 2>"$work/profiled.err" &
pids+=($!)
port=""
for _ in $(seq 1 100); do
  port=$(grep -o "on port [0-9]*" "$work/profiled.err" 2>/dev/null | head -n 1 | awk "{print \$3}" || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || fail "profiled did not print its HTTP port"
http() { "$ctl" http --http "127.0.0.1:$port" "$1" 2>&1 || true; }
wait_for() {  # PATH TEXT SECONDS
  for _ in $(seq 1 $(($3 * 10))); do http "$1" | grep -q "$2" && return 0; sleep 0.1; done
  fail "$1 never showed '$2'; last: $(http "$1" | head -c 400)"
}

"$ctl" convert rees46 "$src/deploy/demo/data/rees46-2019oct-head/events.csv" >"$work/events.jsonl" 2>/dev/null
sed -n 1,500p "$work/events.jsonl" >"$work/first.jsonl"
sed -n 501,1000p "$work/events.jsonl" >"$work/second.jsonl"
"$ctl" produce --bootstrap "$input" --topic ev "$work/first.jsonl" 2>"$work/produce.err"
wait_for /readyz "^ready" 30
wait_for /metrics "profiled_updates_published_total [1-9]" 30

kill -STOP "$output_pid"
"$ctl" produce --bootstrap "$input" --topic ev "$work/second.jsonl" 2>>"$work/produce.err"
wait_for /readyz "output_stalled" 30
http /readyz | grep -q "not ready" || fail "/readyz should be 503 while the output is frozen"
wait_for /metrics 'profiled_fault{reason="output_stalled"} 1' 10
grep -q "ERROR fault output_stalled" "$work/profiled.err" || fail "the fault was not logged"
[ "$(grep -c "fault output_stalled:" "$work/profiled.err")" -eq 1 ] || fail "the fault was logged more than once"

kill -CONT "$output_pid"
wait_for /readyz "^ready" 60
wait_for /metrics 'profiled_fault{reason="output_stalled"} 0' 10
grep -q "fault output_stalled cleared" "$work/profiled.err" || fail "the clearing was not logged"
wait_for /metrics "profiled_outbox_depth 0" 30
wait_for /metrics "profiled_events_applied_total 1000" 30
echo "PASS: frozen output broker: /readyz, /metrics and the log said so; all 1000 events applied and published"
