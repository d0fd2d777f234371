// Integration-test plumbing around the real parts: produce events to a
// broker, read a topic back with an independent consumer, and run the whole
// pipeline (store + publisher + pipeline) in-process on its own thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "profiled/core/clock.h"
#include "profiled/kafka/consumer.h"
#include "profiled/obs/metrics.h"
#include "profiled/pipeline/runtime.h"
#include "profiled/v1/event.pb.h"

namespace profiled::testing {

// Produces (key, value) records in order; waits for every delivery report.
void ProduceRecords(const std::string& bootstrap, const std::string& topic,
                    const std::vector<std::pair<std::string, std::string>>& records);

// Produces each event (Protobuf) keyed by its routing identity; waits for
// every delivery report.
void ProduceEvents(const std::string& bootstrap, const std::string& topic,
                   const std::vector<v1::InteractionEvent>& events);

// Reads `topic` from the beginning with a fresh consumer group until at least
// `expected` records arrived (or a minute passed).
std::vector<kafka::ConsumedMessage> ReadTopic(const std::string& bootstrap,
                                              const std::string& topic, size_t expected);

// Reads `topic` from the beginning until every partition is consumed up to
// its high watermark (for topics whose record count is not known).
std::vector<kafka::ConsumedMessage> ReadTopicToEnd(const std::string& bootstrap,
                                                   const std::string& topic);

// The value of an unlabelled counter or gauge in Prometheus text, or -1.
double MetricIn(const std::string& exposition, const std::string& name);

// The value of an unlabelled counter or gauge scraped from http://host_port/metrics,
// or -1 when the endpoint or the metric is not there.
double ScrapeCounter(const std::string& host_port, const std::string& name);

// The runtime options PipelineRunner's first constructor uses, for tests
// that change a few more.
pipeline::RuntimeOptions RunnerOptions(const std::string& store_path,
                                       const pipeline::PipelineOptions& options,
                                       const std::vector<std::string>& input_topics,
                                       const std::string& input_bootstrap,
                                       const std::string& output_bootstrap,
                                       const pipeline::HealthOptions& health = {});

// A running pipeline: store in a temp directory, publisher and pipeline
// threads. Consumes from `input_bootstrap`, publishes updates and dead
// letters (topic "deadletters") to `output_bootstrap`.
class PipelineRunner {
 public:
  static constexpr char kDeadLetterTopic[] = "deadletters";

  // `wall` (when given) is the pipeline's wall clock, e.g. a ManualClock the
  // test advances; it must outlive the runner.
  PipelineRunner(const std::string& store_path, const pipeline::PipelineOptions& options,
                 const std::vector<std::string>& input_topics, const std::string& input_bootstrap,
                 const std::string& output_bootstrap, const core::Clock* wall = nullptr,
                 const pipeline::HealthOptions& health = {});
  // Full control over the runtime's options (store, producers, health ...);
  // the consumer group is made unique as above.
  PipelineRunner(pipeline::RuntimeOptions options, const core::Clock* wall = nullptr);
  ~PipelineRunner();

  // Stops the loop, leaves the group and drains the outbox (bounded).
  void Stop();
  pipeline::PipelineMetrics& metrics() { return runtime_->metrics(); }
  pipeline::PublisherMetrics& publisher_metrics() { return runtime_->publisher_metrics(); }
  // The registry the pipeline counts in, renderable for /metrics.
  obs::Metrics& observability() { return observability_; }
  bool paused() { return runtime_->pipeline().paused(); }
  bool ready() { return runtime_->health().ready(); }
  pipeline::Health& health() { return runtime_->health(); }
  pipeline::Runtime& runtime() { return *runtime_; }
  store::ProfileStore& store() { return runtime_->store(); }

 private:
  core::SystemClock wall_;
  obs::Metrics observability_;
  std::unique_ptr<pipeline::Runtime> runtime_;
  std::atomic<bool> stop_{false};
  std::thread loop_;
};

}  // namespace profiled::testing
