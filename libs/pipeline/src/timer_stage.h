// TimerStage: profiles whose timer is due on their partition's clock. Each
// is re-evaluated — an update when its signals changed (same version, later
// as_of; docs/output-contract.md) and its next timer — or, once past the
// retention TTL, expired: deleted with its links, audit and timer, and a
// tombstone published. All of it is one commit: a crash before re-fires the
// timers, after never fires them twice. Private to the pipeline.
//
//   ASSIGN_OR_RETURN(TimerWork work, timers.Collect(due, clock));
//   RETURN_IF_ERROR(store.Commit(work.batch));
//   timers.ReturnToCache(work);
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "hot_cache.h"
#include "output_stage.h"
#include "profiled/core/clock.h"
#include "profiled/core/profile.h"
#include "profiled/pipeline/pipeline.h"
#include "profiled/store/profile_store.h"

namespace profiled::pipeline::internal {

struct TimerWork {
  store::CommitBatch batch;
  std::vector<std::pair<core::Profile, size_t>> kept;  // re-evaluated, with cache charges
  std::vector<core::Profile> expired;
  uint64_t fired = 0, truncated = 0;
};

class TimerStage {
 public:
  TimerStage(const PipelineOptions& options, const OutputStage& output, store::ProfileStore& store,
             HotCache& cache)
      : options_(options), output_(output), store_(store), cache_(cache) {}

  // What the `due` timers do, as one commit. Profiles come from the cache,
  // else the store; a timer its profile no longer points at is dropped.
  [[nodiscard]] absl::StatusOr<TimerWork> Collect(const std::vector<store::Timer>& due,
                                                  const core::PipelineClock& clock);
  // Once `work` is committed: profiles back to the cache, expired ones and
  // their links marked absent.
  void ReturnToCache(TimerWork& work);

 private:
  // Deletes an expired profile (state, links, audit, timer) and queues its tombstone.
  [[nodiscard]] absl::Status Expire(const core::Profile& profile, store::CommitBatch& batch);

  const PipelineOptions& options_;
  const OutputStage& output_;
  store::ProfileStore& store_;
  HotCache& cache_;
};

}  // namespace profiled::pipeline::internal
