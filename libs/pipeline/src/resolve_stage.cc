#include "resolve_stage.h"

#include "erasure.h"
#include "profiled/base/status_macros.h"
#include "profiled/core/event_types.h"
#include "profiled/identity/merge_audit.h"

namespace profiled::pipeline::internal {

absl::StatusOr<std::vector<bool>> ResolveStage::Suppressed(
    const std::vector<AcceptedEvent>& accepted, std::string_view secret, int64_t wall_now_ms) {
  std::vector<bool> suppressed(accepted.size(), false);
  std::vector<std::string> hashes;
  std::vector<size_t> owner;
  for (size_t i = 0; i < accepted.size(); ++i) {
    for (const core::Identity& id : accepted[i].ids) {
      hashes.push_back(SuppressionHash(secret, id));
      owner.push_back(i);
    }
  }
  std::vector<std::optional<int64_t>> until;
  RETURN_IF_ERROR(store_.MultiGetSuppressions(hashes, until));
  for (size_t h = 0; h < hashes.size(); ++h) {
    if (until[h].has_value() && *until[h] > wall_now_ms) suppressed[owner[h]] = true;
  }
  return suppressed;
}

identity::Resolution ResolveStage::Decide(AcceptedEvent& a, int64_t now_ms,
                                          BatchState& state) const {
  const bool alias = core::EventTypeOf(a.event.type()) == core::EventType::kAlias;
  if (alias) {
    if (auto previous = resolver_.PreviousIdentity(a.event, state)) a.ids.push_back(*previous);
  }
  return resolver_.Resolve(a.ids, alias, now_ms, state);
}

void ResolveStage::Commit(const AcceptedEvent& a, const identity::Resolution& r, int64_t now_ms,
                          BatchState& state, BatchWork& work) const {
  identity::ApplyResolution(r, now_ms, state);
  for (auto& [profile_id, record] : identity::MergeAuditRecords(a.event, a.ids, r, now_ms)) {
    work.batch.audit.emplace_back(std::move(profile_id), std::move(record));
  }
  for (const identity::Refusal& refusal : r.refusals) work.counts.refusals.push_back(refusal.rule);
}

}  // namespace profiled::pipeline::internal
