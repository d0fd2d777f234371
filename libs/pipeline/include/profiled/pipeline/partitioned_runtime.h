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
// its first record (or, given straight back by a rebalance, its kept store
// reused: decision 70), its own publisher, and a PartitionTask; a
// partition no longer assigned is parked for a minute, then closed and
// its directory removed.
//
// With standby_replicas, it also keeps warm copies of partitions others
// own (internal::StandbyCopy), so that taking one reads only the changelog
// written since instead of all of it.
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
  // consumer.topics are the input topics. runtime.lease: this instance's
  // lease on the members topic (mode partitioned: it fences single-mode
  // instances off the group and tells others which partitions it owns and
  // where it answers /v1); an empty lease.topic takes none.
  RuntimeOptions runtime;
  std::string repartition_topic = "profiled.repartition";
  std::string changelog_topic = "profiled.changelog";
  // Partitions of both (the maximum parallelism). Default: 12.
  int32_t partitions = 12;
  // Routing pauses while an owned partition has more records than this not
  // yet run (resuming at half): the repartition topic's retention and
  // memory bound how far routing may run ahead of applying. Default: 2,000.
  int64_t max_run_ahead = 2000;
  // How long the internal topics may keep a record (stated on erasure
  // receipts: cluster.internal_retention). Default: 7 days.
  int64_t internal_retention_ms = 7LL * 24 * 3600 * 1000;
  // Warm copies: each instance follows the changelogs of the partitions
  // the next this many members own (cluster::StandbyPartitions). Needs the
  // members topic (runtime.lease.topic). 0 to 3; default 0.
  int standby_replicas = 0;

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

  // Lookups, from any thread. The committed value of slot `key` (a
  // SlotValue) in partition `partition`, nullopt when the slot is empty;
  // FailedPrecondition when this instance does not own the partition now.
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> ReadSlot(int32_t partition,
                                                                    const std::string& key) const;
  // Where the owner of `partition` answers /v1, as the members topic said
  // at this instance's last heartbeat; nullopt when nobody (or no lease).
  std::optional<std::string> OwnerAddress(int32_t partition) const;
  int32_t partitions() const;
  // Records not yet published by any owned partition.
  uint64_t OutboxDepth();

  struct Impl;

 private:
  explicit PartitionedRuntime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace profiled::pipeline
