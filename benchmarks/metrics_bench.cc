// Hot-path cost of our metrics: what one event pays for a counter increment
// and a histogram observation, on one thread and on two threads sharing the
// same child (the pipeline and publisher threads do). Baselines: a relaxed
// atomic add (the floor) and resolving a labelled child per call (what the
// pipeline avoids by resolving children once).
//   build/benchmarks/metrics_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstdint>

namespace {

prometheus::Registry& SharedRegistry() {
  static prometheus::Registry registry;
  return registry;
}

prometheus::Family<prometheus::Counter>& CounterFamily() {
  static auto& family =
      prometheus::BuildCounter().Name("bench_events_total").Help("bench").Register(SharedRegistry());
  return family;
}

prometheus::Counter& SharedCounter() {
  static auto& counter = CounterFamily().Add({{"topic", "events"}});
  return counter;
}

prometheus::Histogram& SharedHistogram() {
  static auto& histogram = prometheus::BuildHistogram()
                               .Name("bench_latency_seconds")
                               .Help("bench")
                               .Register(SharedRegistry())
                               .Add({}, prometheus::Histogram::BucketBoundaries{
                                            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                            10, 30, 60});
  return histogram;
}

std::atomic<uint64_t> g_raw{0};

void BM_RawAtomicAdd(benchmark::State& state) {
  for (auto _ : state) g_raw.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_RawAtomicAdd)->Threads(1)->Threads(2);

void BM_CounterIncrement(benchmark::State& state) {
  prometheus::Counter& counter = SharedCounter();
  for (auto _ : state) counter.Increment();
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(2);

void BM_HistogramObserve(benchmark::State& state) {
  prometheus::Histogram& histogram = SharedHistogram();
  double value = 0.0001 * (state.thread_index() + 1);
  for (auto _ : state) {
    histogram.Observe(value);
    value = value < 30 ? value * 1.7 : 0.0001;  // walk the buckets
  }
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2);

void BM_CounterResolvedPerCall(benchmark::State& state) {
  for (auto _ : state) CounterFamily().Add({{"topic", "events"}}).Increment();
}
BENCHMARK(BM_CounterResolvedPerCall)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
