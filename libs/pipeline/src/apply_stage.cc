#include "apply_stage.h"

#include <algorithm>

#include "erasure.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/core/consent.h"

namespace profiled::pipeline::internal {

bool ApplyStage::SkipsUnchanged(const AcceptedEvent& a, const identity::Resolution& r,
                                const BatchState& state) const {
  if (r.create || !r.absorbed.empty() || !r.link.empty()) return false;
  const core::Profile* existing = state.Profile(r.target);
  return existing != nullptr && core::AlreadyApplied(a.event, *existing);
}

void ApplyStage::Absorb(const std::string& absorbed_id, int64_t now_ms,
                        const core::PartitionKey& partition, core::Profile& survivor,
                        BatchState& state, BatchWork& work) const {
  const core::Profile absorbed = state.TakeProfile(absorbed_id);
  if (absorbed.timer_due_ms != 0) {
    work.batch.timers_deleted.emplace_back(absorbed.timer_due_ms, absorbed_id);
  }
  // A survivor founded by this very event (version 0) was in no group yet.
  if (signals_.holdout_percent > 0 && survivor.version > 0 &&
      signals::InHoldout(core::HoldoutKey(absorbed), signals_.holdout_percent,
                         signals_.holdout_salt) !=
          signals::InHoldout(core::HoldoutKey(survivor), signals_.holdout_percent,
                             signals_.holdout_salt)) {
    ++work.counts.holdout_switches;  // one side's group changes: the first seen wins
  }
  core::MergeProfiles(absorbed, scoring_, survivor);
  identity::NoteMerge(now_ms, survivor.merge_times_ms);
  if (auto it = work.source_time_ms.find(absorbed_id); it != work.source_time_ms.end()) {
    work.NoteSource(survivor.id, it->second);
  }
  work.notices.push_back({absorbed_id, absorbed.version + 1, survivor.id, partition});
  ++work.counts.merges;
}

void ApplyStage::Apply(const AcceptedEvent& a, const identity::Resolution& r, int64_t now_ms,
                       const core::PartitionKey& partition, BatchState& state,
                       BatchWork& work) const {
  if (r.create) state.CreateProfile(r.target);
  core::Profile& profile = state.Touch(r.target, partition);
  work.NoteSource(r.target, a.message->timestamp_ms());
  for (const std::string& absorbed_id : r.absorbed) {
    Absorb(absorbed_id, now_ms, partition, profile, state, work);
  }
  for (const core::Identity& id : r.link) core::LinkIdentity(id, profile);
  const core::ConsentOptions& consent = scoring_.consent;
  const bool duplicate = core::AlreadyApplied(a.event, profile);
  if (!duplicate) core::RecordConsent(a.event, consent, profile.consent);
  if (a.consent_only) {
    // The decision is recorded; there is no event to apply.
  } else if (duplicate) {
    ++work.counts.duplicates;  // its links and merges still counted: they are new
  } else if (!core::Allows(profile.consent, core::kAnalyticsPurpose, consent)) {
    // Without analytics consent only the decision and the identities are
    // kept (to honour it next time); the event itself is not stored.
    ++work.counts.consent_suppressed;
  } else {
    core::ApplyEvent(a.event, scoring_, profile);
    ++work.counts.applied;
  }
}

absl::Status ApplyStage::Erase(std::string_view secret, int64_t wall_now_ms, BatchState& state,
                               BatchWork& work) const {
  for (const ErasureRequest& erasure : work.read.erasures) {
    const v1::EraseRequest& request = erasure.request;
    ASSIGN_OR_RETURN(v1::ErasureReceipt receipt,
                     internal::Erase(request, rules_, secret,
                                     wall_now_ms + options_.erasure_suppression_ms, wall_now_ms,
                                     {options_.output_topic, options_.receipts_topic,
                                      options_.max_output_message_bytes},
                                     state, store_, work.batch, work.purge));
    work.batch.purges_pending.push_back(request.request_id());
    LogInfo("erased ", receipt.erased_profile_ids_size(), " profile(s) for request ",
            request.request_id());
    if (request.requested_ms() > 0) {
      work.counts.erasure_latencies_ms.push_back(wall_now_ms - request.requested_ms());
    }
  }
  work.counts.erasures = work.read.erasures.size();
  work.batch.identity_links_deleted = state.unlinked();
  return absl::OkStatus();
}

}  // namespace profiled::pipeline::internal
