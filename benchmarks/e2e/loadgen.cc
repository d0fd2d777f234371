// profiled_loadgen: produces synthetic Segment JSON events (REES46-shaped,
// benchmarks/e2e/synthetic_events.h) onto a topic, in its own process.
//
//   profiled_loadgen --bootstrap HOST:PORT --topic T --sample rees46.csv
//       [--profiles 100000] [--keys zipf|uniform|sequential] [--zipf-s 1.1] [--seed 1]
//       [--rate EVENTS_PER_S | 0] [--seconds 30]
//       [--metrics HOST:PORT[,HOST:PORT...] --window 100000]   (flat out only;
//        several: partitioned instances, their consumed counts summed)
//       [--partition-window 5000]   (flat out: also wait while any input
//        partition lags more, as the mock drops a partition's oldest ~5 MiB)
//       [--linger-ms 5]   (the mock broker serves one produced batch per partition
//                          per fetch: tiny batches cap its throughput)
//
// --rate R: open loop, event i is due at start + i/R regardless of how the
// consumer keeps up, so back-pressure cannot hide latency; the largest slip
// behind that schedule is reported (a slipping generator invalidates the run).
// --rate 0: flat out, but never more than --window events ahead of what
// profiled has consumed (read from its /metrics): the mock broker keeps only
// a few MiB per partition, so an unbounded producer would outrun retention.
// Prints one line: produced=N seconds=S rate=R max_slip_ms=M.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "bench_support.h"
#include "profiled/kafka/producer.h"
#include "synthetic_events.h"

using profiled::bench::EventShapes;
using profiled::bench::Flags;
using profiled::bench::KeySampler;

int main(int argc, char** argv) {
  Flags flags(argc, argv);
  if (!flags.error().empty()) {
    std::fprintf(stderr, "profiled_loadgen: %s\n", flags.error().c_str());
    return 2;
  }
  const std::string bootstrap = flags.Get("--bootstrap", "");
  const std::string topic = flags.Get("--topic", "");
  std::ifstream in(flags.Get("--sample", ""), std::ios::binary);
  if (bootstrap.empty() || topic.empty() || !in) {
    std::fprintf(stderr, "profiled_loadgen: --bootstrap, --topic and a readable --sample are required\n");
    return 2;
  }
  std::stringstream csv;
  csv << in.rdbuf();
  auto shapes = EventShapes::FromRees46Csv(csv.str());
  if (!shapes.ok()) {
    std::fprintf(stderr, "profiled_loadgen: %s\n", std::string(shapes.status().message()).c_str());
    return 2;
  }
  const auto population = static_cast<uint64_t>(flags.Number("--profiles", 100000));
  const std::string skew = flags.Get("--keys", "zipf");
  if (skew != "zipf" && skew != "uniform" && skew != "sequential") {
    std::fprintf(stderr, "profiled_loadgen: --keys must be zipf, uniform or sequential\n");
    return 2;
  }
  KeySampler keys(population,
                  skew == "zipf"      ? KeySampler::Skew::kZipf
                  : skew == "uniform" ? KeySampler::Skew::kUniform
                                      : KeySampler::Skew::kSequential,
                  flags.Number("--zipf-s", 1.1), static_cast<uint64_t>(flags.Number("--seed", 1)));
  const double rate = flags.Number("--rate", 0);
  const double seconds = flags.Number("--seconds", 30);
  const std::string metrics = flags.Get("--metrics", "");
  const auto window = static_cast<uint64_t>(flags.Number("--window", 200000));
  // And never while one input partition lags more than this (0: no limit).
  const double partition_window = flags.Number("--partition-window", 0);
  bool behind = false;
  if (rate <= 0 && metrics.empty()) {
    std::fprintf(stderr, "profiled_loadgen: flat out (--rate 0) needs --metrics of the profiled under test\n");
    return 2;
  }

  auto producer = profiled::kafka::Producer::Create(
      {{"bootstrap.servers", bootstrap},
       {"enable.idempotence", "false"},
       {"acks", "1"},
       {"linger.ms", flags.Get("--linger-ms", "5")},
       {"batch.num.messages", "10000"},
       {"queue.buffering.max.messages", "1000000"},
       {"queue.buffering.max.kbytes", "1048576"}},
      [](uint64_t, const absl::Status& s) {
        if (!s.ok()) std::fprintf(stderr, "profiled_loadgen: delivery failed: %s\n", s.ToString().c_str());
      });
  if (!producer.ok()) {
    std::fprintf(stderr, "profiled_loadgen: %s\n", producer.status().ToString().c_str());
    return 1;
  }

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  uint64_t produced = 0;
  double max_slip_ms = 0;
  double consumed = 0;
  auto next_scrape = start;
  std::string key;
  while (Clock::now() < end) {
    const auto now = Clock::now();
    uint64_t due;
    if (rate > 0) {
      due = static_cast<uint64_t>(std::chrono::duration<double>(now - start).count() * rate);
    } else {
      if (now >= next_scrape) {
        double sum = 0, lag = 0;
        for (absl::string_view endpoint : absl::StrSplit(metrics, ',')) {
          sum += std::max(profiled::bench::ScrapeSum(std::string(endpoint),
                                                     "profiled_events_consumed_total"),
                          0.0);
          lag = std::max(lag, profiled::bench::ScrapeMax(std::string(endpoint),
                                                         "profiled_consumer_lag"));
        }
        consumed = std::max(consumed, sum);
        // One partition far behind (its instance busy) holds the whole load.
        behind = partition_window > 0 && lag > partition_window;
        next_scrape = now + std::chrono::milliseconds(20);
      }
      due = behind ? 0 : static_cast<uint64_t>(std::max(consumed, 0.0)) + window;
    }
    if (produced >= due) {
      (*producer)->Poll(0);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    const int64_t wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch()).count();
    // Up to 1000 per round, then serve delivery reports.
    for (int i = 0; i < 1000 && produced < due; ++i) {
      const uint64_t user = keys.Next();
      key = "u" + std::to_string(user);
      const std::string value = shapes->SegmentJson(produced, user, wall_ms);
      absl::Status s = (*producer)->Produce(topic, key, value, {}, produced);
      if (absl::IsResourceExhausted(s)) {
        (*producer)->Poll(1);
        break;
      }
      if (!s.ok()) {
        std::fprintf(stderr, "profiled_loadgen: %s\n", s.ToString().c_str());
        return 1;
      }
      ++produced;
    }
    (*producer)->Poll(0);
    if (rate > 0) {
      const double behind_s = static_cast<double>(due - std::min(due, produced)) / rate;
      max_slip_ms = std::max(max_slip_ms, behind_s * 1000);
    }
  }
  if (absl::Status s = (*producer)->Flush(60000); !s.ok()) {
    std::fprintf(stderr, "profiled_loadgen: flush: %s\n", s.ToString().c_str());
    return 1;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("produced=%llu seconds=%.2f rate=%.0f max_slip_ms=%.1f\n",
              static_cast<unsigned long long>(produced), elapsed, produced / elapsed, max_slip_ms);
  return 0;
}
