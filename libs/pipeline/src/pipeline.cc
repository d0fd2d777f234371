#include "profiled/pipeline/pipeline.h"

#include "profiled/base/failpoint.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/codec/state_codec.h"
#include "profiled/codec/update_codec.h"
#include "profiled/core/profile_id.h"
#include "profiled/ingest/protobuf_decoder.h"
#include "profiled/internal/v1/profile_state.pb.h"
#include "profiled/pipeline/publisher.h"

namespace profiled::pipeline {
namespace {

// The events of one batch that belong to one profile, in arrival order.
struct ProfileGroup {
  std::string id;
  std::vector<const v1::InteractionEvent*> events;
  core::PartitionKey last_partition;
};

std::string OutboxRecordFor(const std::string& topic, const v1::ProfileUpdate& update) {
  internal::v1::OutboxRecord r;
  r.set_topic(topic);
  r.set_key(update.profile_id());
  r.set_value(update.SerializeAsString());
  r.add_header_names(std::string(codec::kContentTypeHeader));
  r.add_header_values(std::string(codec::kProtobufContentType));
  r.add_header_names(std::string(codec::kSchemaHeader));
  r.add_header_values(std::string(codec::kProfileUpdateSchema));
  return r.SerializeAsString();
}

}  // namespace

Pipeline::Pipeline(const PipelineOptions& options, PipelineParts parts)
    : options_(options), parts_(parts), clock_(parts.wall_clock, options.clock_mode) {}

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(
    const PipelineOptions& options, kafka::ConsumerOptions consumer_options,
    PipelineParts parts) {
  if (options.output_topic.empty()) return absl::InvalidArgumentError("output topic is required");
  std::unique_ptr<Pipeline> p(new Pipeline(options, parts));
  ASSIGN_OR_RETURN(std::vector<store::PartitionPosition> stored, parts.store.LoadPositions());
  for (const store::PartitionPosition& pos : stored) {
    core::PartitionKey key{pos.topic, pos.partition};
    p->positions_[key] = pos.next_offset;
    p->clock_.Observe(key, pos.stream_time_ms);
  }
  Pipeline* raw = p.get();
  ASSIGN_OR_RETURN(p->consumer_, kafka::Consumer::Create(
                                     consumer_options,
                                     [raw](const core::PartitionKey& key) -> std::optional<int64_t> {
                                       auto it = raw->positions_.find(key);
                                       if (it == raw->positions_.end()) return std::nullopt;
                                       return it->second;
                                     }));
  return p;
}

void Pipeline::UpdateBackPressure() {
  const uint64_t depth = parts_.store.OutboxDepth();
  const bool full = depth >= options_.outbox_max_entries;
  // Resume only once half the bound has drained, so a slow output does not
  // flip consumption on and off with every delivery report.
  const bool drained = depth <= options_.outbox_max_entries / 2;
  if (full && !paused_) {
    LogWarn("outbox holds ", depth, " updates (bound ", options_.outbox_max_entries,
            "): pausing consumption until the output catches up");
    consumer_->PauseAll();
    paused_ = true;
    parts_.metrics.paused.Set(1);
  } else if (drained && paused_) {
    LogInfo("outbox drained to ", depth, ": resuming consumption");
    consumer_->ResumeAll();
    paused_ = false;
    parts_.metrics.paused.Set(0);
  }
}

absl::StatusOr<size_t> Pipeline::RunOnce() {
  UpdateBackPressure();
  std::vector<kafka::ConsumedMessage> messages;
  RETURN_IF_ERROR(consumer_->Poll(paused_ ? 1 : options_.batch_max_events,
                                  options_.poll_timeout_ms, messages));
  if (messages.empty()) return 0;
  RETURN_IF_ERROR(ProcessBatch(messages));
  return messages.size();
}

absl::Status Pipeline::ProcessBatch(const std::vector<kafka::ConsumedMessage>& messages) {
  // 1. Decode and group by profile, keeping arrival order within a profile.
  std::vector<v1::InteractionEvent> events(messages.size());
  std::vector<ProfileGroup> groups;
  absl::flat_hash_map<std::string, size_t> group_of;
  absl::flat_hash_map<core::PartitionKey, store::PartitionPosition> touched;
  std::vector<DeadLetter> letters;
  std::vector<ingest::RejectReason> reasons;
  for (size_t i = 0; i < messages.size(); ++i) {
    const kafka::ConsumedMessage& m = messages[i];
    core::PartitionKey partition{m.topic(), m.partition()};
    store::PartitionPosition& pos = touched[partition];
    pos.topic = m.topic();
    pos.partition = m.partition();
    pos.next_offset = std::max(pos.next_offset, m.offset() + 1);

    if (auto rejection = ingest::DecodeProtobufEvent(m.payload(), events[i])) {
      LogDebug("rejected ", m.topic(), "/", m.partition(), "@", m.offset(), ": ",
               rejection->code(), ": ", rejection->detail);
      reasons.push_back(rejection->reason);
      letters.push_back({std::string(rejection->code()), std::move(rejection->detail), m.topic(),
                         m.partition(), m.offset(), std::string(m.key()),
                         std::string(m.payload())});
      continue;
    }
    std::string id = *core::ProfileIdFor(events[i]);  // validated: has an identity
    auto [it, inserted] = group_of.try_emplace(id, groups.size());
    if (inserted) groups.push_back({std::move(id), {}, {}});
    ProfileGroup& g = groups[it->second];
    g.events.push_back(&events[i]);
    g.last_partition = partition;
    clock_.Observe(partition, events[i].event_time_ms());
  }
  for (auto& [partition, pos] : touched) {
    std::optional<int64_t> high = consumer_->CachedHighWatermark(partition);
    clock_.SetCaughtUp(partition,
                       high.has_value() && pos.next_offset + options_.caught_up_max_lag >= *high);
    pos.stream_time_ms = clock_.StreamTimeMs(partition);
  }

  // 2. Load the touched profiles.
  std::vector<std::string> ids;
  ids.reserve(groups.size());
  for (const ProfileGroup& g : groups) ids.push_back(g.id);
  std::vector<std::optional<std::string>> stored;
  RETURN_IF_ERROR(parts_.store.MultiGet(ids, stored));

  // 3. Apply, and build the batch: states, one update per profile, positions.
  store::CommitBatch batch;
  batch.profiles.reserve(groups.size());
  batch.outbox.reserve(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    core::Profile profile;
    if (stored[i]) {
      ASSIGN_OR_RETURN(profile, codec::DecodeProfileState(*stored[i]));
    } else {
      profile = core::Profile::New(groups[i].id);
    }
    for (const v1::InteractionEvent* e : groups[i].events) {
      core::ApplyEvent(*e, options_.scoring, profile);
    }
    const int64_t as_of =
        std::max(clock_.NowMs(groups[i].last_partition), profile.last_seen_ms);
    batch.outbox.push_back(OutboxRecordFor(
        options_.output_topic, codec::BuildProfileUpdate(profile, as_of, options_.scoring)));
    batch.profiles.emplace_back(groups[i].id, codec::EncodeProfileState(profile));
  }
  std::vector<kafka::CommitPosition> commits;
  for (auto& [partition, pos] : touched) {
    commits.push_back({partition, pos.next_offset});
    batch.positions.push_back(std::move(pos));
  }

  // 4. Dead letters are acknowledged before their offsets are stored.
  RETURN_IF_ERROR(parts_.dead_letters.PublishAll(letters, parts_.should_stop));

  // 5. One atomic write, then tell the publisher and the group.
  PROFILED_FAILPOINT("before_commit");
  RETURN_IF_ERROR(parts_.store.Commit(batch));
  PROFILED_FAILPOINT("after_commit");
  for (const kafka::CommitPosition& c : commits) positions_[c.partition] = c.next_offset;
  if (parts_.publisher != nullptr) parts_.publisher->Notify();
  consumer_->CommitAsync(commits);

  // Counted only once committed, so the counters always describe stored state.
  PipelineMetrics& metrics = parts_.metrics;
  for (const kafka::ConsumedMessage& m : messages) metrics.consumed(m.topic()).Increment();
  for (ingest::RejectReason r : reasons) metrics.dead_letters(r).Increment();
  metrics.applied.Increment(static_cast<double>(messages.size() - letters.size()));
  metrics.updates_enqueued.Increment(static_cast<double>(groups.size()));
  metrics.batches.Increment();
  return absl::OkStatus();
}

bool Pipeline::CaughtUp(int timeout_ms) {
  std::vector<core::PartitionKey> assigned = consumer_->Assignment();
  if (assigned.empty()) return false;
  for (const core::PartitionKey& p : assigned) {
    absl::StatusOr<int64_t> high = consumer_->QueryHighWatermark(p, timeout_ms);
    if (!high.ok()) return false;
    auto it = positions_.find(p);
    const int64_t position = it == positions_.end() ? 0 : it->second;
    if (position + options_.caught_up_max_lag < *high) return false;
  }
  return true;
}

void Pipeline::Close() { consumer_->Close(); }

}  // namespace profiled::pipeline
