// Per-event costs of the pipeline's pure stages, on the synthetic events the
// end-to-end harness sends (REES46-shaped Segment JSON, ~300 bytes):
// decode (Segment JSON, Protobuf), apply to a profile, derive signals, build
// and serialize the update, encode and decode the stored state — and, for
// the ratios issue 19 targets, the raw operations on the same bytes in the
// same run: a plain ParseFromString / SerializeToString of the state and of
// the update, and the decay updates of the keys an event touches.
//   build/benchmarks/pipeline_bench --sample deploy/demo/data/rees46-2019oct-head/events.csv
#include <benchmark/benchmark.h>
#include <google/protobuf/arena.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "profiled/codec/state_codec.h"
#include "profiled/codec/update_codec.h"
#include "profiled/core/profile.h"
#include "profiled/ingest/protobuf_decoder.h"
#include "profiled/ingest/segment_json.h"
#include "profiled/internal/v1/profile_state.pb.h"
#include "profiled/signals/signals.h"
#include "synthetic_events.h"

namespace profiled::bench {
namespace {

constexpr int64_t kNowMs = 1'795'382'576'000;
constexpr int kEventsPerProfile = 50;  // a returning shopper

std::string g_sample_path = "deploy/demo/data/rees46-2019oct-head/events.csv";

const EventShapes& Shapes() {
  static const EventShapes shapes = [] {
    std::ifstream in(g_sample_path);
    std::stringstream csv;
    csv << in.rdbuf();
    auto parsed = EventShapes::FromRees46Csv(csv.str());
    if (!parsed.ok()) {
      std::fprintf(stderr, "pipeline_bench: %s (pass --sample)\n",
                   parsed.status().ToString().c_str());
      std::exit(2);
    }
    return *std::move(parsed);
  }();
  return shapes;
}

// The synthetic events of one user, decoded, `kEventsPerProfile` of them.
const std::vector<v1::InteractionEvent>& UserEvents() {
  static const std::vector<v1::InteractionEvent> events = [] {
    ingest::SegmentDecoder decoder({});
    std::vector<v1::InteractionEvent> out;
    for (int i = 0; i < kEventsPerProfile; ++i) {
      const std::string json = Shapes().SegmentJson(static_cast<uint64_t>(i) * 97, 7,
                                                    kNowMs - (kEventsPerProfile - i) * 60'000);
      if (decoder.Decode(json, out)) std::exit(3);
    }
    return out;
  }();
  return events;
}

core::Profile ProfileWithHistory(const core::ScoringOptions& options) {
  core::Profile p;
  p.id = "p-0123456789abcdef0123456789abcdef";
  for (const v1::InteractionEvent& e : UserEvents()) core::ApplyEvent(e, options, p);
  return p;
}

void BM_SegmentJsonDecode(benchmark::State& state) {
  ingest::SegmentDecoder decoder({});
  std::vector<std::string> messages;
  for (uint64_t i = 0; i < 1024; ++i) messages.push_back(Shapes().SegmentJson(i * 31, i, kNowMs));
  std::vector<v1::InteractionEvent> out;
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    out.clear();
    const std::string& m = messages[i++ % messages.size()];
    bytes += m.size();
    benchmark::DoNotOptimize(decoder.Decode(m, out));
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_SegmentJsonDecode);

void BM_ProtobufDecode(benchmark::State& state) {
  std::vector<std::string> messages;
  for (const v1::InteractionEvent& e : UserEvents()) messages.push_back(e.SerializeAsString());
  v1::InteractionEvent event;
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ingest::DecodeProtobufEvent(messages[i++ % messages.size()], event));
  }
}
BENCHMARK(BM_ProtobufDecode);

void BM_ApplyEvent(benchmark::State& state) {
  const core::ScoringOptions options;
  core::Profile p = ProfileWithHistory(options);
  std::vector<v1::InteractionEvent> events = UserEvents();
  int64_t t = kNowMs;
  size_t i = 0;
  for (auto _ : state) {
    v1::InteractionEvent& e = events[i++ % events.size()];
    e.set_event_time_ms(t += 1000);
    core::ApplyEvent(e, options, p);
  }
  benchmark::DoNotOptimize(p);
}
BENCHMARK(BM_ApplyEvent);

void BM_DeriveSignals(benchmark::State& state) {
  const core::ScoringOptions options;
  const signals::Signals signals({});
  const core::Profile p = ProfileWithHistory(options);
  for (auto _ : state) benchmark::DoNotOptimize(signals.Derive(p, kNowMs, options));
}
BENCHMARK(BM_DeriveSignals);

// When the profile's signals next change with time alone, run once per
// changed profile when its timer is set. Arg 1: the profile as it is, a
// customer (the purchase model searches for the next churn tenth); arg 0:
// the same profile without its order days (the recency heuristic) — the
// difference is the search's cost.
void BM_NextTransition(benchmark::State& state) {
  const core::ScoringOptions options;
  const signals::Signals signals({});
  core::Profile p = ProfileWithHistory(options);
  if (p.purchase_days.count == 0) std::exit(4);  // the sample's user must have ordered
  if (state.range(0) == 0) p.purchase_days = {};
  for (auto _ : state) benchmark::DoNotOptimize(signals.NextTransitionMs(p, kNowMs, options));
}
BENCHMARK(BM_NextTransition)->Arg(0)->Arg(1);

// Raw: what applying an event must do at least — the decay update of
// every (family, key) the event touches, on the same profile. Baseline of
// BM_ApplyEvent.
void BM_RawDecaySameKeys(benchmark::State& state) {
  const core::ScoringOptions options;
  core::Profile p = ProfileWithHistory(options);
  std::vector<v1::InteractionEvent> events = UserEvents();
  struct Touch {
    core::Family family;
    std::vector<std::string> keys;
    double weight;
  };
  std::vector<std::vector<Touch>> touches;
  for (const v1::InteractionEvent& e : events) {
    std::vector<Touch>& t = touches.emplace_back();
    for (core::Family f : core::kAllFamilies) {
      t.push_back({f, core::KeysFor(e, f), options.WeightOf(e.type())});
    }
  }
  int64_t t = kNowMs;
  size_t i = 0;
  for (auto _ : state) {
    t += 1000;
    for (const Touch& touch : touches[i++ % touches.size()]) {
      for (const std::string& key : touch.keys) {
        p.family(touch.family).Add(key, touch.weight, t, options.family(touch.family));
      }
    }
  }
  benchmark::DoNotOptimize(p);
}
BENCHMARK(BM_RawDecaySameKeys);

// Raw: a plain protobuf serialize of the update BM_BuildAndSerializeUpdate
// builds (the same bytes).
void BM_RawUpdateSerialize(benchmark::State& state) {
  const core::ScoringOptions options;
  const signals::Signals signals({});
  const v1::ProfileUpdate update =
      codec::BuildProfileUpdate(ProfileWithHistory(options), kNowMs, options, signals);
  std::string bytes;
  for (auto _ : state) {
    update.SerializeToString(&bytes);
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["update_bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_RawUpdateSerialize);

// Raw: a plain protobuf parse and serialize of the stored state
// BM_StateDecode / BM_StateEncode work on (the same bytes).
void BM_RawStateParse(benchmark::State& state) {
  const std::string bytes = codec::EncodeProfileState(ProfileWithHistory({}));
  internal::v1::StoredProfile stored;
  for (auto _ : state) {
    benchmark::DoNotOptimize(stored.ParseFromString(bytes));
  }
}
BENCHMARK(BM_RawStateParse);

void BM_RawStateSerialize(benchmark::State& state) {
  internal::v1::StoredProfile stored;
  if (!stored.ParseFromString(codec::EncodeProfileState(ProfileWithHistory({})))) std::exit(5);
  std::string bytes;
  for (auto _ : state) {
    stored.SerializeToString(&bytes);
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["state_bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_RawStateSerialize);

void BM_BuildAndSerializeUpdate(benchmark::State& state) {
  const core::ScoringOptions options;
  const signals::Signals signals({});
  const core::Profile p = ProfileWithHistory(options);
  std::string bytes;
  for (auto _ : state) {
    codec::BuildProfileUpdate(p, kNowMs, options, signals).SerializeToString(&bytes);
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["update_bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_BuildAndSerializeUpdate);

// As the output stage builds it: on an arena whose first block is reused.
void BM_BuildAndSerializeUpdateOnArena(benchmark::State& state) {
  const core::ScoringOptions options;
  const signals::Signals signals({});
  const core::Profile p = ProfileWithHistory(options);
  std::vector<char> first_block(64 << 10);
  std::string bytes;
  for (auto _ : state) {
    google::protobuf::Arena arena(first_block.data(), first_block.size());
    v1::ProfileUpdate& u = *google::protobuf::Arena::CreateMessage<v1::ProfileUpdate>(&arena);
    codec::BuildProfileUpdateInto(p, kNowMs, options, signals, u);
    u.SerializeToString(&bytes);
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["update_bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_BuildAndSerializeUpdateOnArena);

// As the output stage encodes it now: identities and score families written
// straight from the profile, the rest built on the arena (the same bytes).
void BM_EncodeUpdate(benchmark::State& state) {
  const core::ScoringOptions options;
  const signals::Signals signals({});
  const core::Profile p = ProfileWithHistory(options);
  std::vector<char> first_block(64 << 10);
  std::string bytes;
  for (auto _ : state) {
    google::protobuf::Arena arena(first_block.data(), first_block.size());
    v1::ProfileUpdate& tail = *google::protobuf::Arena::CreateMessage<v1::ProfileUpdate>(&arena);
    core::Rankings ranked(p, kNowMs, options);
    codec::EncodeProfileUpdate(ranked, signals, tail, bytes);
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["update_bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_EncodeUpdate);

void BM_StateEncode(benchmark::State& state) {
  const core::Profile p = ProfileWithHistory({});
  std::string bytes;
  for (auto _ : state) {
    bytes = codec::EncodeProfileState(p);
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["state_bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_StateEncode);

void BM_StateDecode(benchmark::State& state) {
  const std::string bytes = codec::EncodeProfileState(ProfileWithHistory({}));
  for (auto _ : state) benchmark::DoNotOptimize(codec::DecodeProfileState(bytes));
}
BENCHMARK(BM_StateDecode);

}  // namespace
}  // namespace profiled::bench

int main(int argc, char** argv) {
  // --sample PATH is ours; the rest belongs to Google Benchmark.
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--sample" && i + 1 < argc) {
      profiled::bench::g_sample_path = argv[++i];
    } else {
      args.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
