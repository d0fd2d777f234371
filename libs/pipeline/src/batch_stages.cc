#include "batch_stages.h"

#include "profiled/base/status_macros.h"

namespace profiled::pipeline::internal {

absl::Status BatchStages::ResolveAndApply(BatchState& state, BatchWork& work,
                                          std::string_view secret, bool check_suppressions,
                                          int64_t wall_now_ms) {
  std::vector<bool> suppressed(work.read.accepted.size(), false);
  if (check_suppressions) {
    ASSIGN_OR_RETURN(suppressed, resolve_.Suppressed(work.read.accepted, secret, wall_now_ms));
  }
  for (size_t index = 0; index < work.read.accepted.size(); ++index) {
    AcceptedEvent& a = work.read.accepted[index];
    if (suppressed[index]) {
      ++work.counts.erasure_suppressed;
      continue;
    }
    const core::PartitionKey partition{a.message->topic(), a.message->partition()};
    clock_.Observe(partition, a.event.event_time_ms());
    const int64_t now = clock_.NowMs(partition);
    const identity::Resolution r = resolve_.Decide(a, now, state);
    if (apply_.SkipsUnchanged(a, r, state)) {
      ++work.counts.duplicates;
      continue;
    }
    resolve_.Commit(a, r, now, state, work);
    apply_.Apply(a, r, now, partition, state, work);
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::flat_hash_map<std::string, size_t>> BatchStages::Run(
    BatchState& state, BatchWork& work, std::string_view secret, bool check_suppressions,
    int64_t wall_now_ms) {
  RETURN_IF_ERROR(ResolveAndApply(state, work, secret, check_suppressions, wall_now_ms));
  // After the batch's events, so those events go with the person.
  if (!work.read.erasures.empty()) RETURN_IF_ERROR(apply_.Erase(secret, wall_now_ms, state, work));
  return output_.BuildBatch(state, clock_, work);
}

}  // namespace profiled::pipeline::internal
