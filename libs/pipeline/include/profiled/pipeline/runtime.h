// Runtime: the pipeline's parts assembled in one place — the RocksDB store,
// the outbox publisher, the dead-letter sink, health and its monitor, the
// metrics probes and the pipeline itself — so the service and the tests run
// the same composition. Beside them, the purchase model's fitter.
//
//   ASSIGN_OR_RETURN(auto rt, Runtime::Start(options, registry, wall_clock, should_stop));
//   while (!stop) RETURN_IF_ERROR(rt->RunOnce().status());
//   rt->Shutdown(absl::Seconds(30));   // leave the group, drain the outbox
//
// A failed store write does not end the process: the pipeline stops, the
// store_failed fault holds (/readyz, metric, alert, one log line), and every
// few seconds the runtime asks the store to recover (disk space back, device
// healthy); once a write works again the pipeline resumes from the last
// committed batch, exactly as a restart would, without leaving the group
// (the consumer is polled, paused, meanwhile). Any other pipeline error
// (a corrupt stored profile, a bug) would repeat: RunOnce returns it.
//
// A monitor thread asks the brokers for the assigned partitions' high
// watermarks (every 2 s, from a client of its own) and evaluates Health
// twice a second, so lag and readiness stay true while the pipeline thread
// is blocked or consumption is paused.
//
// Not thread-safe: one thread calls RunOnce and Shutdown; the publisher and
// the monitor run on their own threads; store(), health() and the metrics
// may be read from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "profiled/cluster/group_lease.h"
#include "profiled/core/clock.h"
#include "profiled/kafka/consumer.h"
#include "profiled/kafka/watermarks.h"
#include "profiled/pipeline/dead_letters.h"
#include "profiled/pipeline/health.h"
#include "profiled/pipeline/metrics.h"
#include "profiled/pipeline/model_fitter.h"
#include "profiled/pipeline/pipeline.h"
#include "profiled/pipeline/publisher.h"
#include "profiled/pipeline/purger.h"
#include "profiled/store/profile_store.h"

namespace profiled::pipeline {
namespace internal {
class HealthMonitor;
}

struct RuntimeOptions {
  store::StoreOptions store;
  // Topics, group and librdkafka properties of the input consumer.
  kafka::ConsumerOptions consumer;
  // librdkafka properties of the update and dead-letter producers.
  kafka::Properties producer_properties;
  std::string dead_letter_topic = "profiled.deadletter";
  PipelineOptions pipeline;
  PublisherOptions publisher;
  HealthOptions health;
  // Fitting the purchase model from the store (model_fitter.h).
  ModelFitOptions model_fit;
  // After a store failure, how long to wait before asking it to recover;
  // doubles up to 30 s while it keeps failing. Default: 1 s.
  absl::Duration recovery_backoff = absl::Seconds(1);
  // The group lease (cluster/group_lease.h) that fences a second instance
  // off the group. Its group_id and mode are the consumer's group and
  // single mode; an empty instance_id becomes DefaultInstanceId(store.path).
  cluster::GroupLeaseOptions lease;

  // `lease` with the group, mode and instance id filled in.
  cluster::GroupLeaseOptions Lease() const;

  // Every problem of every part, one per line, each named by its path
  // ("pipeline.output_topic: is required").
  [[nodiscard]] absl::Status Validate() const;
};

class Runtime {
 public:
  // Takes the group lease (FailedPrecondition naming the holder when
  // another instance has the group), opens the store, starts the
  // publisher and subscribes the consumer.
  // `should_stop` lets a batch blocked on dead-letter delivery give up.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Runtime>> Start(
      const RuntimeOptions& options, prometheus::Registry& registry,
      const core::Clock& wall_clock, std::function<bool()> should_stop);
  ~Runtime();

  // One batch (see Pipeline::RunOnce), or, after a store failure, one
  // recovery attempt when it is due (returns 0 messages meanwhile).
  // Cancelled when should_stop interrupted a batch. While the group lease
  // is lapsed nothing is consumed (0 messages); once it is lost for good
  // (another instance took the group), FailedPrecondition.
  [[nodiscard]] absl::StatusOr<size_t> RunOnce();
  // Leaves the consumer group, publishes until the outbox is empty or
  // `timeout` passes, then releases the group lease. True when drained.
  // Idempotent.
  bool Shutdown(absl::Duration timeout);

  Pipeline& pipeline() { return *pipeline_; }
  store::ProfileStore& store() { return *store_; }
  Health& health() { return *health_; }
  PipelineMetrics& metrics() { return pipeline_metrics_; }
  PublisherMetrics& publisher_metrics() { return publisher_metrics_; }
  ModelFitter& model_fitter() { return *fitter_; }

 private:
  Runtime(prometheus::Registry& registry, const RuntimeOptions& options,
          const core::Clock& wall_clock);
  // Asks the store to recover and restarts the pipeline; backs off on failure.
  absl::StatusOr<size_t> Recover();

  const RuntimeOptions options_;
  std::unique_ptr<cluster::GroupLease> lease_;
  PipelineMetrics pipeline_metrics_;
  PublisherMetrics publisher_metrics_;
  std::unique_ptr<Health> health_;
  std::unique_ptr<store::ProfileStore> store_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<DeadLetterSink> dead_letters_;
  std::unique_ptr<Purger> purger_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<ModelFitter> fitter_;
  bool failed_ = false;  // the pipeline stopped on a store failure
  bool lease_paused_ = false;  // consumption paused while the lease lapsed
  absl::Time next_recovery_ = absl::InfinitePast();
  uint64_t commits_at_recovery_ = 0;
  absl::Duration backoff_;
  std::unique_ptr<internal::HealthMonitor> monitor_;
  bool shut_down_ = false;
};

}  // namespace profiled::pipeline
