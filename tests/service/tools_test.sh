#!/usr/bin/env bash
# The tools together, as separate processes:
#   devbroker -> profilectl convert + produce -> profiled (external broker)
#   -> profilectl tail --exit-at-end, profilectl get, and a clean restart.
#   tools_test.sh BIN_DIR SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
work=$(mktemp -d)
broker_pid=""
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$work"/*.err; do echo "--- $f"; tail -20 "$f"; done; exit 1; }

"$bin/devbroker/devbroker" --topic ev:3 --topic up:3 --topic dl:1 >"$work/broker.out" 2>"$work/broker.err" &
broker_pid=$!
for _ in $(seq 1 100); do [ -s "$work/broker.out" ] && break; sleep 0.1; done
bootstrap=$(head -n 1 "$work/broker.out")
[[ "$bootstrap" == 127.0.0.1:* ]] || fail "devbroker printed no bootstrap address"

ctl="$bin/profilectl/profilectl"
"$ctl" convert rees46 "$src/deploy/demo/data/rees46-2019oct-head/events.csv" >"$work/events.jsonl" \
  2>"$work/convert.err" || fail "convert"
[ "$(wc -l <"$work/events.jsonl")" -eq 5019 ] || fail "convert did not give 5019 lines"
grep -q '"eventId":"rees46-1","type":"product_viewed"' "$work/events.jsonl" || fail "convert output shape"
# One line that is not an event: produce reports it and exits 1, the rest still go out.
head -n 300 "$work/events.jsonl" >"$work/some.jsonl"
echo '{"eventId": 12' >>"$work/some.jsonl"
rc=0
"$ctl" produce --bootstrap "$bootstrap" --topic ev "$work/some.jsonl" 2>"$work/produce.err" || rc=$?
[ "$rc" -eq 1 ] || fail "produce should exit 1 on a bad line, got $rc"
grep -q "line 301" "$work/produce.err" || fail "produce did not name the bad line"
tail -n +301 "$work/events.jsonl" | "$ctl" produce --bootstrap "$bootstrap" --topic ev - \
  2>>"$work/produce.err" || fail "produce from stdin"

# Restarts reuse the group. The mock broker holds a departed member's
# partitions for its session timeout even after a clean leave: keep it short.
cat >"$work/profiled.yaml" <<YAML
kafka: {bootstrap: "$bootstrap", consumer_properties: {session.timeout.ms: 6000}}
input: {topics: [ev], group_id: tools-test}
output: {topic: up, dead_letter_topic: dl}
store: {path: $work/store}
http: {listen: "127.0.0.1:0"}
clock: {mode: event_time}
YAML
"$bin/profiled/profiled" --config "$work/profiled.yaml" --once >"$work/run1.out" 2>"$work/run1.err" \
  || fail "profiled --once against devbroker"
grep -q "events applied:    5019" "$work/run1.out" || fail "not all events applied"
grep -q "profiles stored:   1755" "$work/run1.out" || fail "expected 1755 profiles"
published=$(grep -o "updates published: [0-9]*" "$work/run1.out" | awk '{print $3}')

"$ctl" tail --bootstrap "$bootstrap" --topic up --from-beginning --exit-at-end \
  >"$work/tail.jsonl" 2>"$work/tail.err" || fail "tail"
[ "$(wc -l <"$work/tail.jsonl")" -eq "$published" ] || fail "tail printed $(wc -l <"$work/tail.jsonl") of $published updates"
grep -q '"identities":\[{"kind":"user_id","value":"541312140"}\]' "$work/tail.jsonl" || fail "tail JSON shape"

# Serve and look one profile up over HTTP; a clean restart consumes nothing.
"$bin/profiled/profiled" --config "$work/profiled.yaml" >"$work/run2.out" 2>"$work/run2.err" &
pid=$!
for _ in $(seq 1 100); do grep -q "on port" "$work/run2.err" 2>/dev/null && break; sleep 0.1; done
port=$(grep -o "on port [0-9]*" "$work/run2.err" | awk '{print $3}')
"$ctl" get --http "127.0.0.1:$port" user_id 541312140 >"$work/get.json" 2>"$work/get.err" || fail "get"
grep -q '"profileId":"p-' "$work/get.json" || fail "get output"
grep -q '"counters":{"events":"' "$work/get.json" || fail "get counters"
rc=0
"$ctl" get --http "127.0.0.1:$port" user_id nobody >/dev/null 2>"$work/get404.err" || rc=$?
[ "$rc" -eq 1 ] || fail "get of an unknown profile should exit 1"
grep -q "no profile for user_id 'nobody'" "$work/get404.err" || fail "404 body"
kill -TERM "$pid"
wait "$pid" || fail "profiled did not exit 0 on SIGTERM"
"$bin/profiled/profiled" --config "$work/profiled.yaml" --once >"$work/run3.out" 2>"$work/run3.err" \
  || fail "restart"
grep -q "events consumed:   0" "$work/run3.out" || fail "a clean restart reprocessed events"
echo "PASS: tools"
