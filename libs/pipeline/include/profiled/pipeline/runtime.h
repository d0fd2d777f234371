// Runtime: the pipeline's parts assembled in one place — the RocksDB store,
// the outbox publisher, the dead-letter sink, the metrics probes and the
// pipeline itself — so the service and the tests run the same composition.
//
//   ASSIGN_OR_RETURN(auto rt, Runtime::Start(options, registry, wall_clock, should_stop));
//   while (!stop) RETURN_IF_ERROR(rt->RunOnce().status());
//   rt->Shutdown(absl::Seconds(30));   // leave the group, drain the outbox
//
// Not thread-safe: one thread calls RunOnce and Shutdown; the publisher runs
// on its own thread; store() and the metrics may be read from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "profiled/core/clock.h"
#include "profiled/kafka/consumer.h"
#include "profiled/pipeline/dead_letters.h"
#include "profiled/pipeline/metrics.h"
#include "profiled/pipeline/pipeline.h"
#include "profiled/pipeline/publisher.h"
#include "profiled/store/profile_store.h"

namespace profiled::pipeline {

struct RuntimeOptions {
  store::StoreOptions store;
  // Topics, group and librdkafka properties of the input consumer.
  kafka::ConsumerOptions consumer;
  // librdkafka properties of the update and dead-letter producers.
  kafka::Properties producer_properties;
  std::string dead_letter_topic = "profiled.deadletter";
  PipelineOptions pipeline;
  PublisherOptions publisher;
};

class Runtime {
 public:
  // Opens the store, starts the publisher and subscribes the consumer.
  // `should_stop` lets a batch blocked on dead-letter delivery give up.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Runtime>> Start(
      const RuntimeOptions& options, prometheus::Registry& registry,
      const core::Clock& wall_clock, std::function<bool()> should_stop);
  ~Runtime();

  [[nodiscard]] absl::StatusOr<size_t> RunOnce() { return pipeline_->RunOnce(); }
  // Leaves the consumer group, then publishes until the outbox is empty or
  // `timeout` passes. True when drained. Idempotent.
  bool Shutdown(absl::Duration timeout);

  Pipeline& pipeline() { return *pipeline_; }
  store::ProfileStore& store() { return *store_; }
  PipelineMetrics& metrics() { return pipeline_metrics_; }
  PublisherMetrics& publisher_metrics() { return publisher_metrics_; }

 private:
  Runtime(prometheus::Registry& registry, const std::vector<std::string>& topics);

  PipelineMetrics pipeline_metrics_;
  PublisherMetrics publisher_metrics_;
  std::unique_ptr<store::ProfileStore> store_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<DeadLetterSink> dead_letters_;
  std::unique_ptr<Pipeline> pipeline_;
  bool shut_down_ = false;
};

}  // namespace profiled::pipeline
