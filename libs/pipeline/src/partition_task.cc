#include "partition_task.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "outbox_records.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/cluster/protocol_codec.h"
#include "profiled/codec/state_codec.h"
#include "profiled/core/consent.h"
#include "profiled/internal/v1/profile_state.pb.h"

namespace profiled::pipeline::internal {
namespace {

using cluster::ProfileRef;

// The profile states of one batch's slots, decoded once, changed with
// core's exact operations (as the single-mode apply stage does).
class TaskProfiles final : public cluster::ProfileSide {
 public:
  TaskProfiles(const core::ScoringOptions& scoring, TaskCounts& counts)
      : scoring_(scoring), counts_(counts) {}

  void Load(const std::string& id, core::Profile profile) { profiles_[id] = std::move(profile); }

  void Apply(const ProfileRef& ref, const std::string& payload) override {
    ::profiled::internal::v1::RoutedEvent routed;
    if (!routed.ParseFromString(payload)) {
      ++counts_.damaged;  // made by our own route stage: cannot happen
      LogError("an event for ", ref.id, " does not parse; skipped");
      return;
    }
    core::Profile& profile = Touch(ref.id);
    NoteSource(ref.id, routed.source_time_ms());
    const v1::InteractionEvent& event = routed.event();
    const core::ConsentOptions& consent = scoring_.consent;
    const bool duplicate = core::AlreadyApplied(event, profile);
    if (!duplicate) core::RecordConsent(event, consent, profile.consent);
    if (routed.consent_only()) return;
    if (duplicate) {
      ++counts_.duplicates;
    } else if (!core::Allows(profile.consent, core::kAnalyticsPurpose, consent)) {
      ++counts_.consent_suppressed;
    } else {
      core::ApplyEvent(event, scoring_, profile);
      ++counts_.applied;
    }
  }

  std::string Take(const ProfileRef& absorbed, const ProfileRef& /*survivor*/,
                   int64_t /*time_ms*/) override {
    auto it = profiles_.find(absorbed.id);
    if (it == profiles_.end()) return "";
    std::string state = codec::EncodeProfileState(it->second);
    profiles_.erase(it);
    return state;
  }

  void Merge(const ProfileRef& survivor, const ProfileRef& absorbed, const std::string& state,
             int64_t /*time_ms*/) override {
    core::Profile& into = Touch(survivor.id);
    uint64_t absorbed_version = 0;
    if (!state.empty()) {
      absl::StatusOr<core::Profile> shipped = codec::DecodeProfileState(state);
      if (!shipped.ok()) {
        ++counts_.damaged;
        LogError("the state shipped from ", absorbed.id,
                 " does not decode: ", shipped.status().ToString());
        return;
      }
      absorbed_version = shipped->version;
      core::MergeProfiles(*shipped, scoring_, into);
    }
    if (auto it = source_times_.find(absorbed.id); it != source_times_.end()) {
      NoteSource(survivor.id, it->second);
    }
    notices_.push_back({absorbed.id, absorbed_version + 1, survivor.id});
    ++counts_.merges;
  }

  void Refused(const ProfileRef& profile, const ProfileRef& other, identity::RefusalRule rule,
               const std::string& detail, int64_t /*time_ms*/) override {
    counts_.refusals.push_back(rule);
    LogInfo("refused ", identity::RuleName(rule), " between ", profile.id, " and ", other.id, ": ",
            detail);
  }

  // The profile's state, or null when the slot holds none.
  core::Profile* Find(const std::string& id) {
    auto it = profiles_.find(id);
    return it == profiles_.end() ? nullptr : &it->second;
  }
  // Profiles changed by the batch, in first-touch order.
  const std::vector<std::string>& touched() const { return touched_; }
  struct Notice {
    std::string absorbed;
    uint64_t version;
    std::string survivor;
  };
  const std::vector<Notice>& notices() const { return notices_; }
  // The Kafka timestamp of the oldest input behind the profile's changes
  // in this batch; 0 when none (a merge of state shipped from elsewhere).
  int64_t SourceTime(const std::string& id) const {
    auto it = source_times_.find(id);
    return it == source_times_.end() ? 0 : it->second;
  }

 private:
  void NoteSource(const std::string& id, int64_t source_time_ms) {
    if (source_time_ms <= 0) return;
    auto [it, added] = source_times_.try_emplace(id, source_time_ms);
    if (!added) it->second = std::min(it->second, source_time_ms);
  }

  core::Profile& Touch(const std::string& id) {
    auto [it, created] = profiles_.try_emplace(id, core::Profile{});
    if (created) it->second = core::Profile::New(id);
    if (touched_set_.insert(id).second) touched_.push_back(id);
    return it->second;
  }

  const core::ScoringOptions& scoring_;
  TaskCounts& counts_;
  absl::flat_hash_map<std::string, core::Profile> profiles_;
  std::vector<std::string> touched_;
  absl::flat_hash_set<std::string> touched_set_;
  std::vector<Notice> notices_;
  absl::flat_hash_map<std::string, int64_t> source_times_;
};

// An outbox record produced to `partition` of `topic`.
std::string ToPartition(const std::string& topic, int32_t partition, const std::string& key,
                        std::string value) {
  ::profiled::internal::v1::OutboxRecord r;
  r.set_topic(topic);
  r.set_partition(partition);
  r.set_key(key);
  r.set_value(std::move(value));
  return r.SerializeAsString();
}

std::string BarrierRecord() {
  ::profiled::internal::v1::OutboxRecord r;
  r.set_barrier(true);
  return r.SerializeAsString();
}

}  // namespace

void PartitionTask::Resume(const std::optional<cluster::ChangelogMarker>& marker, int64_t epoch) {
  filter_ = cluster::OriginFilter();
  next_offset_ = 0;
  epoch_ = epoch;
  if (!marker.has_value()) return;
  filter_.Restore(*marker);
  next_offset_ = marker->next_offset();
}

cluster::ChangelogMarker PartitionTask::CurrentMarker() const {
  cluster::ChangelogMarker marker;
  marker.set_next_offset(next_offset_);
  filter_.SaveTo(marker);
  marker.set_epoch(epoch_);
  return marker;
}

absl::Status PartitionTask::Reassert(const std::vector<std::string>& keys) {
  std::vector<std::string> slots;
  bool marker = false;
  for (const std::string& key : keys) {
    if (key == cluster::kMarkerKey) {
      marker = true;
    } else {
      slots.push_back(key);
    }
  }
  std::vector<std::optional<std::string>> stored;
  RETURN_IF_ERROR(store_.MultiGet(slots, stored));
  store::CommitBatch batch;
  ::profiled::internal::v1::SlotValue value;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (!stored[i].has_value()) continue;
    if (!value.ParseFromString(*stored[i])) {
      return absl::DataLossError(absl::StrCat("slot ", slots[i], " does not parse"));
    }
    value.set_epoch(epoch_);
    std::string bytes = value.SerializeAsString();
    batch.outbox.push_back(ToPartition(topics_.changelog, partition_, slots[i], bytes));
    batch.profiles.emplace_back(slots[i], std::move(bytes));
  }
  if (marker) {
    batch.outbox.push_back(ToPartition(topics_.changelog, partition_,
                                       std::string(cluster::kMarkerKey),
                                       CurrentMarker().SerializeAsString()));
  }
  if (batch.outbox.empty()) return absl::OkStatus();
  return store_.Commit(batch);
}

absl::Status SlotRestorer::Add(std::string_view key, std::optional<std::string_view> value) {
  if (value.has_value()) {
    batch_.profiles.emplace_back(std::string(key), std::string(*value));
  } else {
    batch_.deleted_profiles.emplace_back(key);
  }
  if (++pending_ < 1000) return absl::OkStatus();
  return Finish();
}

absl::Status SlotRestorer::Finish() {
  if (pending_ == 0) return absl::OkStatus();
  RETURN_IF_ERROR(store_.Commit(batch_));
  batch_ = store::CommitBatch();
  pending_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<TaskCounts> PartitionTask::RunBatch(
    const std::vector<kafka::ConsumedMessage>& records) {
  TaskCounts counts;
  struct Admitted {
    int64_t offset;
    cluster::ProtocolMessage message;
  };
  std::vector<Admitted> admitted;
  ::profiled::internal::v1::RepartitionRecord record;
  for (const kafka::ConsumedMessage& m : records) {
    if (m.offset() < next_offset_) continue;  // delivered again by the consumer
    if (m.offset() > next_offset_) {
      // Fetched from where the partition was before a rebalance handed it
      // back at an earlier position: taking it would pass records over.
      counts.gap = true;
      break;
    }
    next_offset_ = m.offset() + 1;
    const std::string_view value = m.payload();
    if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      ++counts.damaged;
      LogError(topics_.repartition, "/", partition_, "@", m.offset(), " does not parse; skipped");
      continue;
    }
    if (!filter_.Admit(record.origin())) {
      ++counts.resent;
      continue;
    }
    if (!record.has_protocol()) {
      ++counts.damaged;  // erasures are not routed in partitioned mode yet
      LogError(topics_.repartition, "/", partition_, "@", m.offset(),
               " is not a protocol record; skipped");
      continue;
    }
    absl::StatusOr<cluster::ProtocolMessage> message = cluster::FromRecord(record.protocol());
    if (!message.ok()) {
      ++counts.damaged;
      LogError(topics_.repartition, "/", partition_, "@", m.offset(), ": ",
               message.status().ToString());
      continue;
    }
    admitted.push_back({m.offset(), std::move(*message)});
  }

  // Every slot the batch's records name, from the store, decoded once.
  std::vector<std::string> keys;
  keys.reserve(admitted.size());
  for (const Admitted& a : admitted) keys.push_back(a.message.Key());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<std::optional<std::string>> stored;
  RETURN_IF_ERROR(store_.MultiGet(keys, stored));
  cluster::PartitionState state;
  TaskProfiles profiles(options_.scoring, counts);
  ::profiled::internal::v1::SlotValue slot_value;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!stored[i].has_value()) continue;
    if (!slot_value.ParseFromString(*stored[i])) {
      return absl::DataLossError(absl::StrCat("slot ", keys[i], " does not parse"));
    }
    std::string bytes;
    ASSIGN_OR_RETURN(state.slots[keys[i]], cluster::FromSlotValue(slot_value, &bytes));
    if (bytes.empty()) continue;
    ASSIGN_OR_RETURN(core::Profile profile, codec::DecodeProfileState(bytes));
    profiles.Load(keys[i], std::move(profile));
  }

  store::CommitBatch batch;
  std::vector<cluster::ProtocolMessage> out;
  for (const Admitted& a : admitted) {
    out.clear();
    protocol_.Handle(a.message, a.offset, state, profiles, out);
    ++counts.records;
    for (size_t i = 0; i < out.size(); ++i) {
      ::profiled::internal::v1::RepartitionRecord sent;
      ::profiled::internal::v1::Origin& origin = *sent.mutable_origin();
      origin.set_topic(topics_.repartition);
      origin.set_partition(partition_);
      origin.set_offset(a.offset);
      origin.set_index(static_cast<int32_t>(i));
      *sent.mutable_protocol() = cluster::ToRecord(out[i]);
      const std::string key = out[i].Key();
      batch.outbox.push_back(ToPartition(
          topics_.repartition, cluster::IdentityProtocol::PartitionOf(key, topics_.partitions), key,
          sent.SerializeAsString()));
      ++counts.sent;
    }
  }

  // The changed profiles' updates (identities: their record's members) —
  // those an event or merge touched, in that order, then those whose
  // members changed — then the merge notices and tombstones, in the
  // contract's order.
  std::vector<std::string> changed(state.changed.begin(), state.changed.end());
  std::sort(changed.begin(), changed.end());
  std::vector<std::string> updated = profiles.touched();
  const absl::flat_hash_set<std::string> touched(updated.begin(), updated.end());
  for (const std::string& key : changed) {
    if (!touched.contains(key)) updated.push_back(key);
  }
  for (const std::string& id : updated) {
    core::Profile* profile = profiles.Find(id);
    auto slot = state.slots.find(id);
    if (profile == nullptr || slot == state.slots.end() || !slot->second.profile.has_value() ||
        slot->second.profile->absorbed_into.has_value()) {
      continue;  // shipped away within the batch
    }
    profile->identities = slot->second.profile->members;
    Output built = output_.Build(*profile, profile->last_seen_ms, profiles.SourceTime(id));
    profile->signals_fingerprint = built.fingerprint;
    batch.outbox.push_back(std::move(built.record));
    ++counts.updates;
  }
  for (const TaskProfiles::Notice& n : profiles.notices()) {
    v1::ProfileUpdate notice;
    notice.set_profile_id(n.absorbed);
    notice.set_version(n.version);
    notice.set_merged_into(n.survivor);
    batch.outbox.push_back(OutboxRecordFor(options_.output_topic, notice));
    batch.outbox.push_back(TombstoneRecordFor(options_.output_topic, n.absorbed));
    ++counts.updates;
  }

  // Everything above acknowledged before any of the batch's changelog:
  // a restore that sees one of its slots ahead knows its sends went out.
  batch.outbox.push_back(BarrierRecord());
  for (const std::string& key : changed) {
    const core::Profile* profile = profiles.Find(key);
    ::profiled::internal::v1::SlotValue slot = cluster::ToSlotValue(
        state.slots.at(key), profile == nullptr ? "" : codec::EncodeProfileState(*profile));
    slot.set_epoch(epoch_);
    std::string value = slot.SerializeAsString();
    batch.outbox.push_back(ToPartition(topics_.changelog, partition_, key, value));
    batch.profiles.emplace_back(key, std::move(value));
  }
  batch.outbox.push_back(ToPartition(topics_.changelog, partition_,
                                     std::string(cluster::kMarkerKey),
                                     CurrentMarker().SerializeAsString()));
  batch.positions.push_back({topics_.repartition, partition_, next_offset_, 0});
  RETURN_IF_ERROR(store_.Commit(batch));
  return counts;
}

}  // namespace profiled::pipeline::internal
