// OutputStage: what a changed profile publishes and stores — its update
// (cut to the output's size if need be), the fingerprint of its signals, its
// next timer and its encoded state — built one way for events and timers;
// and a batch's outputs: every changed profile's, then merge notices and
// tombstones. Pure but for the worker pool. Private to the pipeline.
//
//   Output out = output.Build(profile, as_of_ms, source_time_ms);
//   charges = output.BuildBatch(state, clock, work);
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "batch_state.h"
#include "batch_work.h"
#include "profiled/core/clock.h"
#include "profiled/core/profile.h"
#include "profiled/pipeline/pipeline.h"
#include "profiled/signals/signals.h"
#include "profiled/store/profile_store.h"
#include "worker_pool.h"

namespace profiled::pipeline::internal {

struct Output {
  std::string record;         // the update as an outbox record
  uint64_t fingerprint = 0;   // of the update's signals
  bool truncated = false;     // cut to output.max_message_bytes
  int64_t next_due_ms = 0;    // when the profile's timer should fire next (0: never)
};

class OutputStage {
 public:
  OutputStage(const PipelineOptions& options, const signals::Signals& signals, WorkerPool& workers)
      : options_(options), signals_(signals), workers_(workers) {}

  // The profile's output at `as_of_ms`. `source_time_ms`: the Kafka timestamp
  // of the oldest input behind it, 0 for time-driven updates. Any thread.
  Output Build(const core::Profile& profile, int64_t as_of_ms, int64_t source_time_ms) const;

  // Every changed profile of the batch: its update, state and timer (built
  // on every core, added in first-touch order), then the merge notices and
  // tombstones of absorbed profiles. Returns each changed profile's cache
  // charge by id; the timers set are in work.batch.timers_set.
  absl::flat_hash_map<std::string, size_t> BuildBatch(BatchState& state,
                                                      const core::PipelineClock& clock,
                                                      BatchWork& work);

  // Moves the stored timer from `old_due_ms` to profile.timer_due_ms.
  static void RecordTimerChange(int64_t old_due_ms, const core::Profile& profile,
                                const core::PartitionKey& partition, store::CommitBatch& batch);

 private:
  const PipelineOptions& options_;
  const signals::Signals& signals_;
  WorkerPool& workers_;
};

}  // namespace profiled::pipeline::internal
