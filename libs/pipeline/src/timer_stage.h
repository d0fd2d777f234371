// TimerStage: profiles whose timer is due on their partition's clock. Each
// is re-evaluated — an update when its signals changed (same version, later
// as_of; docs/output-contract.md) and its next timer — or, once past the
// retention TTL, expired: deleted with its links, audit and timer, and a
// tombstone published. All of it is one commit: a crash before re-fires the
// timers, after never fires them twice. Private to the pipeline.
//
//   if (!timers.MaybeDue(horizon)) return;           // most polls: no store read
//   ASSIGN_OR_RETURN(TimerWork work, timers.Collect(horizon, clock));
//   RETURN_IF_ERROR(store.Commit(work.batch));
//   RETURN_IF_ERROR(timers.Committed(work));
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "hot_cache.h"
#include "output_stage.h"
#include "profiled/core/clock.h"
#include "profiled/core/profile.h"
#include "profiled/pipeline/metrics.h"
#include "profiled/pipeline/pipeline.h"
#include "profiled/store/profile_store.h"

namespace profiled::pipeline::internal {

struct TimerWork {
  store::CommitBatch batch;
  std::vector<std::pair<core::Profile, size_t>> kept;  // re-evaluated, with cache charges
  std::vector<core::Profile> expired;
  uint64_t fired = 0, truncated = 0;

  // What it adds to the counters, once committed.
  void RecordIn(PipelineMetrics& metrics) const;
};

class TimerStage {
 public:
  TimerStage(const PipelineOptions& options, const OutputStage& output, store::ProfileStore& store,
             HotCache& cache)
      : options_(options), output_(output), store_(store), cache_(cache) {}

  // False when no stored timer is due by `horizon` (the latest clock of any
  // partition): known without reading the store.
  bool MaybeDue(int64_t horizon) const { return horizon >= next_due_ms_; }
  // A timer was set for `due_ms` (by a batch not yet committed).
  void NoteSet(int64_t due_ms) { next_due_ms_ = std::min(next_due_ms_, due_ms); }
  // Forget what is known (after a restart from the store).
  void Reset() { next_due_ms_ = 0; }

  // What the timers due by `horizon` do, as one commit (at most
  // batch_max_events of them). Profiles come from the cache, else the
  // store; a timer its profile no longer points at is dropped.
  [[nodiscard]] absl::StatusOr<TimerWork> Collect(int64_t horizon,
                                                  const core::PipelineClock& clock);
  // Once `work` is committed: profiles back to the cache, expired ones and
  // their links marked absent; the earliest timer left is looked up.
  [[nodiscard]] absl::Status Committed(TimerWork& work);

 private:
  // Deletes an expired profile (state, links, audit, timer) and queues its tombstone.
  [[nodiscard]] absl::Status Expire(const core::Profile& profile, store::CommitBatch& batch);

  const PipelineOptions& options_;
  const OutputStage& output_;
  store::ProfileStore& store_;
  HotCache& cache_;
  // No stored timer is due before this (0: unknown, look).
  int64_t next_due_ms_ = 0;
};

}  // namespace profiled::pipeline::internal
