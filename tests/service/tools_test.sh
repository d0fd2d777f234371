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

"$bin/devbroker/devbroker" --topic ev:3 --topic up:3 --topic dl:1 --topic seg:2 --topic csv:1 >"$work/broker.out" 2>"$work/broker.err" &
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
# A CSV without a header loses no row; a bad row is reported by its line.
csv="$src/deploy/demo/data/rees46-2019oct-head/events.csv"
{ sed -n 2,3p "$csv"; echo "2019-10-01 00:00:09 UTC,teleport,1,2,,,1.0,42,s"; } >"$work/noheader.csv"
rc=0
"$ctl" produce --bootstrap "$bootstrap" --topic csv --format csv "$work/noheader.csv" \
  2>"$work/csv.err" || rc=$?
[ "$rc" -eq 1 ] || fail "produce should exit 1 on a bad CSV row, got $rc"
grep -q "line 3: unknown event_type 'teleport'" "$work/csv.err" || fail "bad CSV row not named by line"
grep -q "3 rows (no header)" "$work/csv.err" || fail "CSV rows not counted"
grep -q "produced 2 records (2 delivered, 0 failed, 1 bad input)" "$work/csv.err" \
  || fail "headerless CSV lost a row"
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

# Serve (with a bearer token on /v1) and look one profile up over HTTP; a
# clean restart consumes nothing.
sed 's|http: {listen: "127.0.0.1:0"}|http: {listen: "127.0.0.1:0", token: s3cret}|' \
  "$work/profiled.yaml" >"$work/token.yaml"
"$bin/profiled/profiled" --config "$work/token.yaml" >"$work/run2.out" 2>"$work/run2.err" &
pid=$!
for _ in $(seq 1 100); do grep -q "on port" "$work/run2.err" 2>/dev/null && break; sleep 0.1; done
port=$(grep -o "on port [0-9]*" "$work/run2.err" | awk '{print $3}')
for _ in $(seq 1 50); do "$ctl" http --http "127.0.0.1:$port" /readyz >/dev/null 2>&1 && break; sleep 0.2; done
"$ctl" http --http "127.0.0.1:$port" /readyz >"$work/ready.out" 2>&1 || fail "/readyz is not 200 once caught up"
grep -q "ready" "$work/ready.out" || fail "/readyz body"
rc=0
"$ctl" get --http "127.0.0.1:$port" user_id 541312140 >/dev/null 2>"$work/get401.err" || rc=$?
[ "$rc" -eq 1 ] || fail "/v1 without the token should be refused"
grep -q "bearer token is required" "$work/get401.err" || fail "401 body"
"$ctl" get --http "127.0.0.1:$port" --token s3cret user_id 541312140 >"$work/get.json" 2>"$work/get.err" || fail "get"
grep -q '"profileId":"p-' "$work/get.json" || fail "get output"
grep -q '"counters":{"events":"' "$work/get.json" || fail "get counters"
# The auth scheme is case-insensitive (RFC 7235); the token is not.
raw_get() {  # AUTHORIZATION -> status line
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET /v1/profiles/user_id/541312140 HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n' "$1" >&3
  head -n 1 <&3 | tr -d '\r'
  exec 3<&-
}
[ "$(raw_get "bEaReR s3cret")" = "HTTP/1.1 200 OK" ] || fail "the Bearer scheme must match in any case"
[ "$(raw_get "Bearer S3CRET")" = "HTTP/1.1 401 Unauthorized" ] || fail "the token must match exactly"
rc=0
"$ctl" get --http "127.0.0.1:$port" --token s3cret user_id nobody >/dev/null 2>"$work/get404.err" || rc=$?
[ "$rc" -eq 1 ] || fail "get of an unknown profile should exit 1"
grep -q "no profile for user_id 'nobody'" "$work/get404.err" || fail "404 body"
grep -q "HTTP 404" "$work/get404.err" || fail "404 status"
# Malformed lookups are 400 with a reason, as JSON even when the request quotes back.
expect_http() {  # PATH STATUS TEXT
  rc=0
  "$ctl" http --http "127.0.0.1:$port" --token s3cret "$1" >/dev/null 2>"$work/http.err" || rc=$?
  [ "$rc" -eq 1 ] || fail "$1 should fail"
  grep -q "HTTP $2" "$work/http.err" || fail "$1: expected HTTP $2, got $(head -n 1 "$work/http.err")"
  grep -qF "$3" "$work/http.err" || fail "$1: body lacks '$3': $(cat "$work/http.err")"
  tail -n 1 "$work/http.err" | /usr/bin/python3 -c 'import json,sys; json.load(sys.stdin)' \
    || fail "$1: error body is not JSON"
}
expect_http /v1/profiles/user_id 400 "non-empty kind and value"
expect_http /v1/profiles/user_id/ 400 "non-empty kind and value"
expect_http "/v1/profiles/User%20Id/541312140" 400 "is not a kind name"
expect_http "/v1/profiles/user_id/$(printf 'x%.0s' $(seq 1 1100))" 400 "longer than 1024 bytes"
expect_http '/v1/profiles/user_id/say%22hi%22%5C' 404 'no profile for user_id'
kill -TERM "$pid"
wait "$pid" || fail "profiled did not exit 0 on SIGTERM"
"$bin/profiled/profiled" --config "$work/profiled.yaml" --once >"$work/run3.out" 2>"$work/run3.err" \
  || fail "restart"
grep -q "events consumed:   0" "$work/run3.out" || fail "a clean restart reprocessed events"

# Raw Segment JSON: a real fixture file (one document) and JSON lines, two
# of them bad. profiled (with a tight string limit) dead-letters those two;
# after the limit is raised, redrive sends the fixable one back and it applies.
long=$(printf 'x%.0s' $(seq 1 100))
cat >"$work/seg.jsonl" <<JSON
{"type":"track","event":"Product Viewed","messageId":"s1","userId":"seg-1","timestamp":"2024-03-01T10:00:00Z","properties":{"product_id":"P1"}}
{"type":"track","event":"Product Viewed","messageId":"s2","userId":"seg-1","timestamp":"2024-03-01T10:01:00Z","properties":{"note":"$long"}}
{"type":
JSON
"$ctl" produce --bootstrap "$bootstrap" --topic seg --format segment-json "$work/seg.jsonl" \
  2>>"$work/produce.err" || fail "produce --format segment-json"
"$ctl" produce --bootstrap "$bootstrap" --topic seg --format segment-json \
  "$src/tests/data/segment-spec/test-enqueue-track.json" 2>>"$work/produce.err" || fail "produce a fixture file"
grep -q "produced 1 records" "$work/produce.err" || fail "a pretty-printed fixture is one record"
segment_config() {
  sed "s|input: {topics: \[ev\], group_id: tools-test}|input: {topics: [ev, {name: seg, format: segment-json}], group_id: tools-test, json_limits: {max_string_bytes: $1}}|" \
    "$work/profiled.yaml" >"$work/segment.yaml"
}
segment_config 64
"$bin/profiled/profiled" --config "$work/segment.yaml" --once >"$work/run4.out" 2>"$work/run4.err" \
  || fail "profiled with a Segment topic"
grep -q "events applied:    2" "$work/run4.out" || fail "expected 2 Segment events applied"
grep -q "events rejected:   2" "$work/run4.out" || fail "expected 2 Segment messages rejected"
"$ctl" redrive --bootstrap "$bootstrap" --topic dl --reason string_too_long --dry-run \
  >"$work/dry.out" 2>"$work/dry.err" || fail "redrive --dry-run"
grep -q "string_too_long -> seg" "$work/dry.out" || fail "dry run lists the letter"
grep -q "would re-drive 1 dead letters (1 skipped, 0 of them cut)" "$work/dry.err" || fail "dry run counts"
"$ctl" redrive --bootstrap "$bootstrap" --topic dl --reason string_too_long \
  >"$work/redrive.out" 2>"$work/redrive.err" || fail "redrive"
grep -q "re-drove 1 of 1 dead letters" "$work/redrive.err" || fail "redrive count"
segment_config 8192
"$bin/profiled/profiled" --config "$work/segment.yaml" --once >"$work/run5.out" 2>"$work/run5.err" \
  || fail "profiled after the fix"
grep -q "events applied:    1" "$work/run5.out" || fail "the re-driven event was not applied"
grep -q "events rejected:   0" "$work/run5.out" || fail "the re-driven event was rejected again"
echo "PASS: tools"
