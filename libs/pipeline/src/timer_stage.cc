#include "timer_stage.h"

#include <limits>

#include "outbox_records.h"
#include "profiled/base/status_macros.h"
#include "profiled/codec/state_codec.h"

namespace profiled::pipeline::internal {

void TimerWork::RecordIn(PipelineMetrics& metrics) const {
  metrics.timers_fired.Increment(static_cast<double>(fired));
  metrics.updates_truncated.Increment(static_cast<double>(truncated));
  metrics.expired.Increment(static_cast<double>(expired.size()));
  metrics.updates_enqueued.Increment(static_cast<double>(batch.outbox.size()));
}

absl::Status TimerStage::Expire(const core::Profile& profile, store::CommitBatch& batch) {
  batch.deleted_profiles.push_back(profile.id);
  --batch.profiles_added;
  batch.timers_deleted.emplace_back(profile.timer_due_ms, profile.id);
  for (const core::Identity& id : profile.identities) {
    batch.identity_links_deleted.push_back(store::IdentityKey(id.kind, id.value));
  }
  ASSIGN_OR_RETURN(auto audit, store_.ReadAuditEntries(profile.id));
  for (const auto& [key, record] : audit) batch.audit_deleted.push_back(key);
  batch.outbox.push_back(TombstoneRecordFor(options_.output_topic, profile.id));
  return absl::OkStatus();
}

absl::StatusOr<TimerWork> TimerStage::Collect(int64_t horizon, const core::PipelineClock& clock) {
  std::vector<store::Timer> due;
  RETURN_IF_ERROR(store_.ReadDueTimers(horizon, options_.batch_max_events, due));
  TimerWork work;
  store::CommitBatch& batch = work.batch;
  for (const store::Timer& t : due) {
    const core::PartitionKey partition{t.topic, t.partition};
    const int64_t now = clock.NowMs(partition);
    if (t.due_ms > now) continue;  // its own partition's clock is not there yet
    std::optional<core::Profile> profile;
    size_t charge = 0;
    HotCache::Taken taken;
    switch (cache_.TakeProfile(t.profile_id, taken)) {
      case HotCache::kPresent:
        profile = std::move(taken.profile);
        charge = taken.charge;
        break;
      case HotCache::kAbsent:
        break;
      case HotCache::kMiss: {
        ASSIGN_OR_RETURN(std::optional<std::string> bytes, store_.Get(t.profile_id));
        if (bytes.has_value()) {
          ASSIGN_OR_RETURN(profile, codec::DecodeProfileState(*bytes));
          charge = HotCache::ProfileCharge(bytes->size());
        }
        break;
      }
    }
    if (!profile.has_value() || profile->timer_due_ms != t.due_ms) {
      batch.timers_deleted.emplace_back(t.due_ms, t.profile_id);  // superseded
      if (profile.has_value()) work.kept.emplace_back(std::move(*profile), charge);
      continue;
    }
    if (options_.retention_ttl_ms > 0 && now - profile->last_seen_ms >= options_.retention_ttl_ms) {
      RETURN_IF_ERROR(Expire(*profile, batch));
      work.expired.push_back(std::move(*profile));
      continue;
    }
    const int64_t as_of = std::max(now, profile->last_seen_ms);
    Output out = output_.Build(*profile, as_of, /*source_time_ms=*/0);
    work.truncated += out.truncated;
    if (out.fingerprint != profile->signals_fingerprint) {
      // Same version (no event was applied), later as_of: see output-contract.md.
      profile->signals_fingerprint = out.fingerprint;
      batch.outbox.push_back(std::move(out.record));
    }
    const int64_t old_due = profile->timer_due_ms;
    profile->timer_due_ms = out.next_due_ms;
    OutputStage::RecordTimerChange(old_due, *profile, partition, batch);
    std::string state = codec::EncodeProfileState(*profile);
    charge = HotCache::ProfileCharge(state.size());
    batch.profiles.emplace_back(profile->id, std::move(state));
    work.kept.emplace_back(std::move(*profile), charge);
    ++work.fired;
  }
  return work;
}

absl::Status TimerStage::Committed(TimerWork& work) {
  for (auto& [profile, charge] : work.kept) {
    const std::string id = profile.id;
    cache_.PutProfile(id, std::move(profile), charge, 0);
  }
  for (const core::Profile& profile : work.expired) {
    cache_.PutProfileAbsent(profile.id, 0);
    for (const core::Identity& id : profile.identities) {
      cache_.PutLink(store::IdentityKey(id.kind, id.value), std::nullopt, 0);
    }
  }
  std::vector<store::Timer> next;
  RETURN_IF_ERROR(store_.ReadDueTimers(std::numeric_limits<int64_t>::max(), 1, next));
  next_due_ms_ = next.empty() ? std::numeric_limits<int64_t>::max() : next[0].due_ms;
  return absl::OkStatus();
}

}  // namespace profiled::pipeline::internal
