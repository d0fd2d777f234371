#include "partition_task.h"

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "outbox_records.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/cluster/protocol_codec.h"
#include "profiled/codec/state_codec.h"
#include "profiled/core/consent.h"
#include "profiled/identity/merge_audit.h"
#include "profiled/internal/v1/profile_state.pb.h"
#include "profiled/pipeline/output_limits.h"
#include "profiled/v1/control.pb.h"

namespace profiled::pipeline::internal {
namespace {

using cluster::ProfileRef;

// The profile states of one batch's slots, decoded once, changed with
// core's exact operations (as the single-mode apply stage does).
class TaskProfiles final : public cluster::ProfileSide {
 public:
  TaskProfiles(const PipelineOptions& options, int64_t internal_retention_ms, TaskCounts& counts)
      : options_(options),
        internal_retention_ms_(internal_retention_ms),
        scoring_(options.scoring),
        counts_(counts) {}

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

  std::string Take(const ProfileRef& absorbed, const ProfileRef& survivor,
                   int64_t time_ms) override {
    Audit(absorbed.id,
          identity::MergeAuditRecord(time_ms, survivor.id, absorbed.id, std::nullopt, ""));
    auto it = profiles_.find(absorbed.id);
    if (it == profiles_.end()) return "";
    std::string state = codec::EncodeProfileState(it->second);
    DropTimer(it->second);
    profiles_.erase(it);
    return state;
  }

  void Merge(const ProfileRef& survivor, const ProfileRef& absorbed, const std::string& state,
             int64_t time_ms) override {
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
    Audit(survivor.id,
          identity::MergeAuditRecord(time_ms, survivor.id, absorbed.id, std::nullopt, ""));
  }

  void Refused(const ProfileRef& profile, const ProfileRef& other, identity::RefusalRule rule,
               const std::string& detail, int64_t time_ms) override {
    counts_.refusals.push_back(rule);
    // Only this profile is named: a record naming the other would outlive
    // that person's erasure in this slot.
    Audit(profile.id, identity::MergeAuditRecord(time_ms, profile.id, "", rule, detail));
    LogInfo("refused ", identity::RuleName(rule), " between ", profile.id, " and ", other.id, ": ",
            detail);
  }

  void Erase(const std::string& profile_id) override {
    if (auto it = profiles_.find(profile_id); it != profiles_.end()) {
      if (it->second.timer_due_ms != 0) {
        erased_timers_.emplace_back(it->second.timer_due_ms, profile_id);
      }
      DropTimer(it->second);
      profiles_.erase(it);
    }
    tombstones_.push_back(profile_id);
  }

  void Suppressed() override { ++counts_.erasure_suppressed; }

  // Retention: `seen` is the profile's last_seen_ms when its timer found
  // it idle; an event or merge since moved it (or the state is gone).
  bool Expire(const ProfileRef& ref, const std::string& seen) override {
    auto it = profiles_.find(ref.id);
    if (it == profiles_.end() || absl::StrCat(it->second.last_seen_ms) != seen) return false;
    DropTimer(it->second);
    profiles_.erase(it);
    tombstones_.push_back(ref.id);
    ++counts_.expired;
    return true;
  }

  // Every slot that held the person is purged: both receipts at once
  // (docs/scaling.md, erasure), the first stating how long the internal
  // topics may keep copies.
  void Erased(const cluster::Erasure& erasure) override {
    v1::EraseRequest request;
    if (!request.ParseFromString(erasure.request)) {
      ++counts_.damaged;  // made by our own route stage: cannot happen
      LogError("an erasure's request does not parse; no receipt");
      return;
    }
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    v1::ErasureReceipt receipt;
    receipt.set_request_id(request.request_id());
    receipt.set_requested_ms(request.requested_ms());
    receipt.set_identities_erased(static_cast<int32_t>(erasure.identities));
    receipt.set_profiles_erased(static_cast<int32_t>(erasure.profile_ids.size()));
    const size_t listed = MaxReceiptProfileIds(options_.max_output_message_bytes);
    for (const std::string& id : erasure.profile_ids) {
      if (static_cast<size_t>(receipt.erased_profile_ids_size()) >= listed) break;
      receipt.add_erased_profile_ids(id);
    }
    receipt.set_completed_ms(now_ms);
    receipt.set_internal_copies_until_ms(now_ms + internal_retention_ms_);
    ++counts_.erasures;
    if (request.requested_ms() > 0) {
      counts_.erasure_latencies_s.push_back(
          static_cast<double>(std::max<int64_t>(0, now_ms - request.requested_ms())) / 1000.0);
    }
    if (options_.receipts_topic.empty()) return;
    v1::ErasureReceipt purged;  // names the request and the time, nobody
    purged.set_request_id(request.request_id());
    purged.set_purged_ms(now_ms);
    for (const v1::ErasureReceipt* r : {&receipt, &purged}) {
      receipts_.push_back(MessageRecordFor(options_.receipts_topic, request.request_id(), *r,
                                           "profiled.v1.ErasureReceipt"));
    }
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
  // Erased and expired profile ids.
  const std::vector<std::string>& tombstones() const { return tombstones_; }
  const std::vector<std::string>& receipts() const { return receipts_; }
  // Timers of profiles shipped away or erased (due ms, profile id); the
  // erased ones' are purged from disk too.
  const std::vector<std::pair<int64_t, std::string>>& dropped_timers() const {
    return dropped_timers_;
  }
  const std::vector<std::pair<int64_t, std::string>>& erased_timers() const {
    return erased_timers_;
  }
  // Merge audit records the batch made, by profile: each under the profile
  // whose slot decided it (the side is always called at that slot).
  const absl::flat_hash_map<std::string, std::vector<std::string>>& audit() const { return audit_; }
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

  void Audit(const std::string& profile_id, std::string record) {
    audit_[profile_id].push_back(std::move(record));
  }

  void DropTimer(const core::Profile& profile) {
    if (profile.timer_due_ms != 0) dropped_timers_.emplace_back(profile.timer_due_ms, profile.id);
  }

  core::Profile& Touch(const std::string& id) {
    auto [it, created] = profiles_.try_emplace(id, core::Profile{});
    if (created) it->second = core::Profile::New(id);
    if (touched_set_.insert(id).second) touched_.push_back(id);
    return it->second;
  }

  const PipelineOptions& options_;
  const int64_t internal_retention_ms_;
  const core::ScoringOptions& scoring_;
  TaskCounts& counts_;
  absl::flat_hash_map<std::string, core::Profile> profiles_;
  std::vector<std::string> touched_;
  absl::flat_hash_set<std::string> touched_set_;
  std::vector<Notice> notices_;
  std::vector<std::string> tombstones_;
  std::vector<std::string> receipts_;  // outbox records
  std::vector<std::pair<int64_t, std::string>> dropped_timers_, erased_timers_;
  absl::flat_hash_map<std::string, std::vector<std::string>> audit_;
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

// Where a record this partition sends came from (upstream `topic`).
::profiled::internal::v1::Origin OriginOf(const std::string& topic, int32_t partition,
                                          int64_t offset, int32_t index) {
  ::profiled::internal::v1::Origin origin;
  origin.set_topic(topic);
  origin.set_partition(partition);
  origin.set_offset(offset);
  origin.set_index(index);
  return origin;
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
  purge_keys_.clear();
  after_purge_.clear();
  purge_timers_.clear();
  purge_everything_ = false;
  stream_time_ms_ = 0;
  next_due_ms_ = 0;
  timer_sends_ = 0;
  if (!marker.has_value()) return;
  if (marker->epoch() == epoch) timer_sends_ = marker->timer_sends();
  filter_.Restore(*marker);
  next_offset_ = marker->next_offset();
  stream_time_ms_ = marker->stream_time_ms();
  purge_keys_.assign(marker->purge_keys().begin(), marker->purge_keys().end());
  after_purge_.assign(marker->after_purge().begin(), marker->after_purge().end());
  for (const auto& timer : marker->purge_timers()) {
    purge_timers_.emplace_back(timer.due_ms(), timer.profile_id());
  }
  // The restore copied the changelog's older values too: all of it goes.
  purge_everything_ = purge_due();
}

cluster::ChangelogMarker PartitionTask::CurrentMarker() const {
  cluster::ChangelogMarker marker;
  marker.set_next_offset(next_offset_);
  filter_.SaveTo(marker);
  marker.set_epoch(epoch_);
  for (const std::string& key : purge_keys_) marker.add_purge_keys(key);
  for (const auto& record : after_purge_) *marker.add_after_purge() = record;
  for (const auto& [due_ms, id] : purge_timers_) {
    ::profiled::internal::v1::TimerRef& timer = *marker.add_purge_timers();
    timer.set_due_ms(due_ms);
    timer.set_profile_id(id);
  }
  marker.set_stream_time_ms(stream_time_ms_);
  marker.set_timer_sends(timer_sends_);
  return marker;
}

store::PurgeKeys PartitionTask::PurgeDue() const {
  store::PurgeKeys keys;
  keys.profile_ids = purge_keys_;
  keys.timers = purge_timers_;
  keys.everything = purge_everything_;
  return keys;
}

absl::Status PartitionTask::SendAfterPurge() {
  store::CommitBatch batch;
  for (const ::profiled::internal::v1::RepartitionRecord& ack : after_purge_) {
    const std::string& key = ack.protocol().profile().id();  // the erasure's coordinator
    batch.outbox.push_back(ToPartition(
        topics_.repartition, cluster::IdentityProtocol::PartitionOf(key, topics_.partitions), key,
        ack.SerializeAsString()));
  }
  // The marker owes nothing once this commits; until then (a failed
  // commit is retried) the task still owes it all.
  std::vector<std::string> keys = std::move(purge_keys_);
  std::vector<::profiled::internal::v1::RepartitionRecord> owed = std::move(after_purge_);
  std::vector<std::pair<int64_t, std::string>> timers = std::move(purge_timers_);
  purge_keys_.clear();
  after_purge_.clear();
  purge_timers_.clear();
  AppendMarker(batch);
  if (absl::Status s = store_.Commit(batch); !s.ok()) {
    purge_keys_ = std::move(keys);
    after_purge_ = std::move(owed);
    purge_timers_ = std::move(timers);
    return s;
  }
  purge_everything_ = false;
  return absl::OkStatus();
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
  if (marker) AppendMarker(batch);
  if (batch.outbox.empty()) return absl::OkStatus();
  return store_.Commit(batch);
}

absl::Status SlotRestorer::Add(std::string_view key, std::optional<std::string_view> value) {
  // Only each key's final timer is indexed (in Finish): an older value's,
  // left in the index, could name a profile erased since.
  const int64_t due = value.has_value() ? cluster::SlotTimerDue(*value) : 0;
  if (due != 0) {
    timers_[std::string(key)] = due;
  } else {
    timers_.erase(std::string(key));
  }
  if (value.has_value()) {
    batch_.profiles.emplace_back(std::string(key), std::string(*value));
  } else {
    batch_.deleted_profiles.emplace_back(key);
  }
  if (++pending_ < 1000) return absl::OkStatus();
  return Flush();
}

absl::Status SlotRestorer::Flush() {
  if (pending_ == 0) return absl::OkStatus();
  RETURN_IF_ERROR(store_.Commit(batch_));
  batch_ = store::CommitBatch();
  pending_ = 0;
  return absl::OkStatus();
}

absl::Status SlotRestorer::Finish() {
  RETURN_IF_ERROR(Flush());
  for (auto& [key, due] : timers_) {
    batch_.timers_set.push_back({due, key, partition_.topic, partition_.partition});
    if (++pending_ >= 1000) RETURN_IF_ERROR(Flush());
  }
  timers_.clear();
  return Flush();
}

absl::StatusOr<TaskCounts> PartitionTask::RunBatch(
    const std::vector<kafka::ConsumedMessage>& records) {
  TaskCounts counts;
  struct Admitted {
    int64_t offset;
    int64_t time_ms;  // the record's Kafka timestamp
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
    absl::StatusOr<cluster::ProtocolMessage> message = cluster::FromRecord(record.protocol());
    if (!message.ok()) {
      ++counts.damaged;
      LogError(topics_.repartition, "/", partition_, "@", m.offset(), ": ",
               message.status().ToString());
      continue;
    }
    admitted.push_back({m.offset(), m.timestamp_ms(), std::move(*message)});
  }

  // Every slot the batch's records name, from the store, decoded once.
  std::vector<std::string> keys;
  keys.reserve(admitted.size());
  for (const Admitted& a : admitted) keys.push_back(a.message.Key());
  cluster::PartitionState state;
  TaskProfiles profiles(options_, topics_.retention_ms, counts);
  RETURN_IF_ERROR(ReadSlots(
      std::move(keys),
      [&](const std::string& key, cluster::Slot slot, const std::string& bytes) -> absl::Status {
        state.slots[key] = std::move(slot);
        if (bytes.empty()) return absl::OkStatus();
        ASSIGN_OR_RETURN(core::Profile profile, codec::DecodeProfileState(bytes));
        profiles.Load(key, std::move(profile));
        return absl::OkStatus();
      }));

  store::CommitBatch batch;
  std::vector<cluster::ProtocolMessage> out;
  for (const Admitted& a : admitted) {
    out.clear();
    protocol_.Handle(a.message, a.offset, a.time_ms, state, profiles, out);
    ++counts.records;
    for (size_t i = 0; i < out.size(); ++i) {
      AppendSend(OriginOf(topics_.repartition, partition_, a.offset, static_cast<int32_t>(i)),
                 out[i], batch);
      ++counts.sent;
    }
  }

  // The audit into the profiles' records (kept with the slot: restored and
  // erased with it), the newest kAuditKept of each.
  for (const auto& [id, made] : profiles.audit()) {
    auto slot = state.slots.find(id);
    if (slot == state.slots.end() || !slot->second.profile.has_value()) continue;  // erased
    cluster::ProfileEntry& entry = *slot->second.profile;
    entry.audit.insert(entry.audit.end(), made.begin(), made.end());
    if (entry.audit.size() > kAuditKept) {
      const size_t dropped = entry.audit.size() - kAuditKept;
      entry.audit.erase(entry.audit.begin(), entry.audit.begin() + static_cast<long>(dropped));
      entry.audit_dropped += static_cast<int64_t>(dropped);
    }
    state.changed.insert(id);
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
    if (!touched.contains(id) && profile->identities == slot->second.profile->members) {
      continue;  // the slot changed (its identity entry, a suppression), the profile did not
    }
    profile->identities = slot->second.profile->members;
    Output built = output_.Build(*profile, profile->last_seen_ms, profiles.SourceTime(id));
    profile->signals_fingerprint = built.fingerprint;
    stream_time_ms_ = std::max(stream_time_ms_, profile->last_seen_ms);
    const int64_t old_due = profile->timer_due_ms;
    profile->timer_due_ms = built.next_due_ms;
    OutputStage::RecordTimerChange(old_due, *profile, {topics_.repartition, partition_}, batch);
    counts.truncated += built.truncated;
    batch.outbox.push_back(std::move(built.record));
    ++counts.updates;
  }
  for (const auto& timer : profiles.dropped_timers()) batch.timers_deleted.push_back(timer);
  for (const TaskProfiles::Notice& n : profiles.notices()) {
    v1::ProfileUpdate notice;
    notice.set_profile_id(n.absorbed);
    notice.set_version(n.version);
    notice.set_merged_into(n.survivor);
    batch.outbox.push_back(OutboxRecordFor(options_.output_topic, notice));
    batch.outbox.push_back(TombstoneRecordFor(options_.output_topic, n.absorbed));
    ++counts.updates;
  }
  for (const std::string& id : profiles.tombstones()) {
    batch.outbox.push_back(TombstoneRecordFor(options_.output_topic, id));
  }
  for (const std::string& receipt : profiles.receipts()) batch.outbox.push_back(receipt);
  // Erasure: what this partition must purge, and the acknowledgements sent
  // once it has (SendAfterPurge), kept in the marker until then.
  purge_keys_.insert(purge_keys_.end(), state.purge_keys.begin(), state.purge_keys.end());
  purge_timers_.insert(purge_timers_.end(), profiles.erased_timers().begin(),
                       profiles.erased_timers().end());
  for (const auto& [offset, ack] : state.after_purge) {
    // Acknowledgements are their own upstream: sent after later records of
    // this partition, in the order of the forgets they answer, each with
    // that forget's offset (a re-run makes the same, skipped downstream).
    ::profiled::internal::v1::RepartitionRecord& owed = after_purge_.emplace_back();
    *owed.mutable_origin() =
        OriginOf(absl::StrCat(topics_.repartition, kAcknowledgements), partition_, offset, 0);
    *owed.mutable_protocol() = cluster::ToRecord(ack);
  }

  AppendChangelog(
      changed, state, [&profiles](const std::string& key) { return profiles.Find(key); }, batch);
  batch.positions.push_back({topics_.repartition, partition_, next_offset_, 0});
  RETURN_IF_ERROR(store_.Commit(batch));
  NoteTimers(batch);
  return counts;
}

void PartitionTask::AppendSend(const ::profiled::internal::v1::Origin& origin,
                               const cluster::ProtocolMessage& message,
                               store::CommitBatch& batch) const {
  ::profiled::internal::v1::RepartitionRecord sent;
  *sent.mutable_origin() = origin;
  *sent.mutable_protocol() = cluster::ToRecord(message);
  const std::string key = message.Key();
  batch.outbox.push_back(ToPartition(
      topics_.repartition, cluster::IdentityProtocol::PartitionOf(key, topics_.partitions), key,
      sent.SerializeAsString()));
}

template <typename FindProfile>
void PartitionTask::AppendChangelog(const std::vector<std::string>& keys,
                                    const cluster::PartitionState& state, FindProfile profiles,
                                    store::CommitBatch& batch) const {
  // Everything before acknowledged before any of the batch's changelog:
  // a restore that sees one of its slots ahead knows its sends went out.
  batch.outbox.push_back(BarrierRecord());
  for (const std::string& key : keys) {
    const core::Profile* profile = profiles(key);
    ::profiled::internal::v1::SlotValue slot = cluster::ToSlotValue(
        state.slots.at(key), profile == nullptr ? "" : codec::EncodeProfileState(*profile));
    slot.set_epoch(epoch_);
    if (profile != nullptr) slot.set_timer_due_ms(profile->timer_due_ms);
    std::string value = slot.SerializeAsString();
    batch.outbox.push_back(ToPartition(topics_.changelog, partition_, key, value));
    batch.profiles.emplace_back(key, std::move(value));
  }
  AppendMarker(batch);
}

void PartitionTask::AppendMarker(store::CommitBatch& batch) const {
  std::string marker = CurrentMarker().SerializeAsString();
  batch.outbox.push_back(
      ToPartition(topics_.changelog, partition_, std::string(cluster::kMarkerKey), marker));
  // The store's copy: a partition given back compares it with the changelog's end.
  batch.changelog_marker = std::move(marker);
}

absl::Status PartitionTask::ReadSlots(
    std::vector<std::string> keys,
    absl::FunctionRef<absl::Status(const std::string&, cluster::Slot, const std::string&)> visit) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<std::optional<std::string>> stored;
  RETURN_IF_ERROR(store_.MultiGet(keys, stored));
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!stored[i].has_value()) continue;
    std::string bytes;
    absl::StatusOr<cluster::Slot> slot = cluster::ParseSlot(*stored[i], &bytes);
    if (!slot.ok()) {
      return absl::DataLossError(
          absl::StrCat("slot ", keys[i], " does not decode: ", slot.status().message()));
    }
    RETURN_IF_ERROR(visit(keys[i], *std::move(slot), bytes));
  }
  return absl::OkStatus();
}

void PartitionTask::NoteTimers(const store::CommitBatch& batch) {
  if (next_due_ms_ == 0) return;  // unknown: looked up when next asked
  for (const store::Timer& t : batch.timers_set) next_due_ms_ = std::min(next_due_ms_, t.due_ms);
}

absl::StatusOr<TaskCounts> PartitionTask::RunTimers(int64_t now_ms) {
  TaskCounts counts;
  if (!MaybeTimersDue(now_ms)) return counts;
  std::vector<store::Timer> due;
  RETURN_IF_ERROR(store_.ReadDueTimers(now_ms, options_.batch_max_events, due));
  std::vector<std::string> keys;
  keys.reserve(due.size());
  for (const store::Timer& t : due) keys.push_back(t.profile_id);
  cluster::PartitionState state;
  absl::flat_hash_map<std::string, core::Profile> live;  // slots holding a live profile
  RETURN_IF_ERROR(ReadSlots(
      std::move(keys),
      [&](const std::string& key, cluster::Slot slot, const std::string& bytes) -> absl::Status {
        if (bytes.empty() || !slot.profile.has_value() || slot.profile->absorbed_into.has_value()) {
          return absl::OkStatus();
        }
        ASSIGN_OR_RETURN(live[key], codec::DecodeProfileState(bytes));
        state.slots[key] = std::move(slot);
        return absl::OkStatus();
      }));

  store::CommitBatch batch;
  std::vector<std::string> changed;
  for (const store::Timer& t : due) {
    auto it = live.find(t.profile_id);
    if (it == live.end() || it->second.timer_due_ms != t.due_ms) {
      batch.timers_deleted.emplace_back(t.due_ms, t.profile_id);  // superseded
      continue;
    }
    core::Profile& profile = it->second;
    const int64_t old_due = profile.timer_due_ms;
    const int64_t ttl = options_.retention_ttl_ms;
    if (ttl > 0 && now_ms - profile.last_seen_ms >= ttl) {
      // Idle for the TTL: the expiry is its slot's to run, in offset order.
      cluster::ProtocolMessage expire;
      expire.kind = cluster::MessageKind::kExpire;
      expire.profile = state.slots.at(t.profile_id).profile->self;
      expire.payload = absl::StrCat(profile.last_seen_ms);
      expire.time_ms = now_ms;
      AppendSend(
          OriginOf(absl::StrCat(topics_.repartition, kTimers), partition_, epoch_, timer_sends_++),
          expire, batch);
      ++counts.sent;
      profile.timer_due_ms = now_ms + kExpiryRetryMs;
    } else {
      Output out = output_.Build(profile, std::max(now_ms, profile.last_seen_ms), 0);
      counts.truncated += out.truncated;
      if (out.fingerprint != profile.signals_fingerprint) {
        // Same version (no event was applied), later as_of: see output-contract.md.
        profile.signals_fingerprint = out.fingerprint;
        batch.outbox.push_back(std::move(out.record));
        ++counts.updates;
      }
      profile.timer_due_ms = out.next_due_ms;
    }
    OutputStage::RecordTimerChange(old_due, profile, {topics_.repartition, partition_}, batch);
    changed.push_back(t.profile_id);
    ++counts.timers_fired;
  }
  if (!changed.empty() || !batch.timers_deleted.empty()) {
    AppendChangelog(
        changed, state,
        [&live](const std::string& key) -> const core::Profile* {
          auto it = live.find(key);
          return it == live.end() ? nullptr : &it->second;
        },
        batch);
    RETURN_IF_ERROR(store_.Commit(batch));
  }
  // The earliest timer left, so most polls read nothing.
  std::vector<store::Timer> next;
  RETURN_IF_ERROR(store_.ReadDueTimers(std::numeric_limits<int64_t>::max(), 1, next));
  next_due_ms_ = next.empty() ? std::numeric_limits<int64_t>::max() : next[0].due_ms;
  return counts;
}

}  // namespace profiled::pipeline::internal
