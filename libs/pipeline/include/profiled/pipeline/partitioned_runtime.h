// PartitionedRuntime: one instance of partitioned mode (docs/scaling.md).
// N instances with the same options join one consumer group subscribed to
// the input topics and the repartition topic; Kafka's group protocol
// assigns partitions of both and nothing else coordinates.
//
//   ASSIGN_OR_RETURN(auto rt, PartitionedRuntime::Start(options, registry, wall_clock));
//   while (!stop) RETURN_IF_ERROR(rt->RunOnce().status());
//   rt->Shutdown(absl::Seconds(30));
//
// Input partitions are routed: read (decode, limits, privacy, dead
// letters) and produced to the repartition partition of each event's
// anchor, the input offsets committed to the group once every routed
// record is acknowledged (at least once; re-sends carry the same origin
// and are skipped). Each repartition partition assigned here gets its own
// store under `store.path`, restored from the changelog partition before
// its first record (from offset 0: a partition is always rebuilt from the
// changelog when it arrives), its own publisher, and a PartitionTask; a
// partition no longer assigned is closed and its directory removed.
//
// Not yet in partitioned mode (refused by the configuration check):
// timers and TTL, erasure and consent requests, lookups, standbys,
// explicit aliases, the group lease's member addresses.
// Not thread-safe: one thread calls RunOnce and Shutdown.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "profiled/core/clock.h"
#include "profiled/pipeline/runtime.h"
#include "profiled/store/profile_store.h"
#include "prometheus/registry.h"

namespace profiled::pipeline {

struct PartitionedOptions {
  // store.path holds one store per owned partition ("partition-<k>");
  // consumer.topics are the input topics.
  RuntimeOptions runtime;
  std::string repartition_topic = "profiled.repartition";
  std::string changelog_topic = "profiled.changelog";
  // Partitions of both (the maximum parallelism). Default: 12.
  int32_t partitions = 12;
  // Routing pauses while an owned partition has more records than this not
  // yet run (resuming at half): the repartition topic's retention and
  // memory bound how far routing may run ahead of applying. Default: 2,000.
  int64_t max_run_ahead = 2000;

  [[nodiscard]] absl::Status Validate() const;
};

class PartitionedRuntime {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PartitionedRuntime>> Start(
      const PartitionedOptions& options, prometheus::Registry& registry,
      const core::Clock& wall_clock);
  ~PartitionedRuntime();

  // One poll: routes its input records, runs each repartition partition's
  // records as one batch. Returns the number of records handled.
  [[nodiscard]] absl::StatusOr<size_t> RunOnce();
  // Publishes every owned partition's outbox until empty or `timeout`
  // passes, then leaves the group. True when drained. Idempotent.
  bool Shutdown(absl::Duration timeout);

  // Started, committing, faults: for /readyz and the metrics. Any thread.
  Health& health();
  // The store of an owned partition, or null (for tests and tools).
  store::ProfileStore* store(int32_t partition);
  // Records not yet published by any owned partition.
  uint64_t OutboxDepth();

  struct Impl;

 private:
  explicit PartitionedRuntime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace profiled::pipeline
