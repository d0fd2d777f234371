// Cost of the decay hot path: adding to an existing key, inserting new keys
// (which runs the bounds), and ranking a family for an update.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "profiled/core/score_family.h"

namespace profiled::core {
namespace {

constexpr int64_t t0 = 1'569'888'000'000;

void BM_AddExistingKey(benchmark::State& state) {
  FamilyOptions options;
  ScoreFamily f;
  const int keys = static_cast<int>(state.range(0));
  std::vector<std::string> names;
  for (int i = 0; i < keys; ++i) names.push_back("electronics.smartphone." + std::to_string(i));
  for (int i = 0; i < keys; ++i) f.Add(names[i], 1.0, t0, options);
  int64_t t = t0;
  int i = 0;
  for (auto _ : state) {
    f.Add(names[i++ % keys], 1.0, t += 1000, options);
  }
  benchmark::DoNotOptimize(f);
}
BENCHMARK(BM_AddExistingKey)->Arg(8)->Arg(50);

void BM_InsertWithBounds(benchmark::State& state) {
  FamilyOptions options;
  options.top_k = static_cast<size_t>(state.range(0));
  ScoreFamily f;
  int64_t t = t0;
  uint64_t i = 0;
  for (auto _ : state) {
    f.Add("key-" + std::to_string(i++), 1.0, t += 1000, options);
  }
  benchmark::DoNotOptimize(f);
}
BENCHMARK(BM_InsertWithBounds)->Arg(20)->Arg(50);

void BM_RankedAt(benchmark::State& state) {
  FamilyOptions options;
  ScoreFamily f;
  for (int i = 0; i < 50; ++i) f.Add("key-" + std::to_string(i), 1.0 + i, t0 + i * 1000, options);
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.RankedAt(t0 + 100000, options));
  }
}
BENCHMARK(BM_RankedAt);

}  // namespace
}  // namespace profiled::core

BENCHMARK_MAIN();
