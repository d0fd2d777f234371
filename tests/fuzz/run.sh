#!/usr/bin/env bash
# Builds the decoders' libFuzzer targets with clang (ASan + UBSan) and runs
# each for a bounded time, seeded from the bundled real data (Segment spec
# fixtures, ESP webhooks, REES46 rows, the naughty strings). Exits non-zero
# on any crash, leak, sanitizer report or failed invariant; the input that
# caused it is kept as BUILD/crash-*.
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]      default 20 (PROFILED_FUZZ_SECONDS)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-${PROFILED_FUZZ_SECONDS:-20}}
build=${PROFILED_FUZZ_BUILD:-$src/build-fuzz}

cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DPROFILED_FUZZ=ON \
  -DPROFILED_BUILD_TESTS=OFF -DPROFILED_BUILD_BENCHMARKS=OFF -DPROFILED_WERROR=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target segment_json_fuzz mapped_json_fuzz \
  protobuf_decoder_fuzz make_seeds >/dev/null

corpus=$build/corpus
rm -rf "$corpus"
mkdir -p "$corpus/segment" "$corpus/mapped" "$corpus/protobuf"
"$build/tests/fuzz/make_seeds" "$src" "$corpus"
cp "$src"/tests/data/segment-spec/*.json "$corpus/segment/"
cp "$src"/tests/data/email-webhooks/*.json "$corpus/mapped/"

status=0
for pair in segment:segment_json_fuzz mapped:mapped_json_fuzz protobuf:protobuf_decoder_fuzz; do
  dir=${pair%%:*}
  target=${pair#*:}
  log=$build/$target.log
  seeds=$(ls "$corpus/$dir" | wc -l)
  rc=0
  "$build/tests/fuzz/$target" "$corpus/$dir" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/crash-$target-" \
    >"$log" 2>&1 || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{print $2}')
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $target FAILED (exit $rc) after ${runs:-?} runs; see $log"
    tail -n 40 "$log"
    status=1
  else
    echo "fuzz: $target ok: ${runs:-?} runs in ${seconds}s from $seeds seeds, corpus now $(ls "$corpus/$dir" | wc -l)"
  fi
done
exit $status
