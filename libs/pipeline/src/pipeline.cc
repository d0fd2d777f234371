#include "profiled/pipeline/pipeline.h"

#include <chrono>
#include <limits>

#include "profiled/base/failpoint.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/codec/state_codec.h"
#include "profiled/codec/update_codec.h"
#include "profiled/ingest/protobuf_decoder.h"
#include "profiled/internal/v1/profile_state.pb.h"
#include "profiled/v1/control.pb.h"
#include "profiled/pipeline/output_limits.h"
#include "profiled/pipeline/publisher.h"
#include "profiled/pipeline/purger.h"
#include "absl/strings/str_cat.h"
#include "batch_state.h"
#include "erasure.h"
#include "outbox_records.h"
#include "committer.h"
#include "hot_cache.h"
#include "worker_pool.h"

namespace profiled::pipeline {

using internal::OutboxRecordFor;
using internal::TombstoneRecordFor;

namespace {

// A consent update from the control topic as the event it stands for: the
// identity and the decisions, at the time the person decided.
std::optional<v1::InteractionEvent> ConsentEventOf(const v1::ConsentUpdate& update) {
  if (update.request_id().empty() || update.kind().empty() || update.value().empty() ||
      update.purposes().empty() || update.decided_ms() <= 0) {
    return std::nullopt;
  }
  v1::InteractionEvent e;
  e.set_event_id(update.request_id());
  e.set_type("consent_updated");
  e.set_event_time_ms(update.decided_ms());
  core::SetIdentity({update.kind(), update.value()}, *e.mutable_identities());
  for (const auto& [purpose, granted] : update.purposes()) {
    (*e.mutable_context()->mutable_consent())[purpose] = granted;
  }
  return e;
}

// What a batch adds to the counters, recorded once the batch is committed so
// the counters always describe stored state.
struct BatchCounts {
  std::vector<std::pair<prometheus::Counter*, uint64_t>> consumed;  // per topic
  std::vector<ingest::RejectReason> reasons;
  std::vector<std::string> refusals;
  std::vector<int64_t> erasure_latencies_ms;
  uint64_t merges = 0, applied = 0, consent_suppressed = 0, erasure_suppressed = 0,
           erasures = 0, duplicates = 0, clamped = 0, privacy_dropped = 0, privacy_hashed = 0,
           updates = 0, holdout_switches = 0, truncated = 0;

  void RecordIn(PipelineMetrics& metrics) const {
    for (const auto& [counter, n] : consumed) counter->Increment(static_cast<double>(n));
    for (ingest::RejectReason r : reasons) metrics.dead_letters(r).Increment();
    for (const std::string& rule : refusals) metrics.refused(rule).Increment();
    for (int64_t ms : erasure_latencies_ms) {
      metrics.erasure_latency.Observe(static_cast<double>(ms) / 1000.0);
    }
    metrics.merges.Increment(static_cast<double>(merges));
    metrics.holdout_switches.Increment(static_cast<double>(holdout_switches));
    metrics.updates_truncated.Increment(static_cast<double>(truncated));
    metrics.applied.Increment(static_cast<double>(applied));
    metrics.consent_suppressed.Increment(static_cast<double>(consent_suppressed));
    metrics.erasure_suppressed.Increment(static_cast<double>(erasure_suppressed));
    metrics.erasures.Increment(static_cast<double>(erasures));
    metrics.duplicates.Increment(static_cast<double>(duplicates));
    metrics.clamped.Increment(static_cast<double>(clamped));
    metrics.privacy_dropped.Increment(static_cast<double>(privacy_dropped));
    metrics.privacy_hashed.Increment(static_cast<double>(privacy_hashed));
    metrics.updates_enqueued.Increment(static_cast<double>(updates));
    metrics.batches.Increment();
  }
};

}  // namespace

void Pipeline::AppendAudit(const v1::InteractionEvent& event,
                           const std::vector<core::Identity>& ids,
                           const identity::Resolution& r, int64_t now_ms,
                           store::CommitBatch& batch) const {
  if (r.absorbed.empty() && r.refusals.empty()) return;
  ::profiled::internal::v1::MergeRecord record;
  record.set_time_ms(now_ms);
  record.set_event_id(event.event_id());
  for (const core::Identity& id : ids) record.add_identities(absl::StrCat(id.kind, ":", id.value));
  record.set_survivor(r.target);
  if (!r.absorbed.empty()) {
    ::profiled::internal::v1::MergeRecord merge = record;
    for (const std::string& a : r.absorbed) merge.add_absorbed(a);
    merge.set_rule(r.explicit_alias ? "alias_merge" : "merge");
    const std::string bytes = merge.SerializeAsString();
    batch.audit.emplace_back(r.target, bytes);
    for (const std::string& a : r.absorbed) batch.audit.emplace_back(a, bytes);
  }
  for (const identity::Refusal& refusal : r.refusals) {
    ::profiled::internal::v1::MergeRecord refused = record;
    refused.set_rule(refusal.rule);
    refused.set_refused(true);
    refused.set_detail(refusal.detail);
    refused.add_absorbed(refusal.other_profile);
    const std::string bytes = refused.SerializeAsString();
    batch.audit.emplace_back(r.target, bytes);
    if (refusal.other_profile != r.target) batch.audit.emplace_back(refusal.other_profile, bytes);
  }
}

Pipeline::Pipeline(const PipelineOptions& options, PipelineParts parts,
                   identity::IdentityRules rules, privacy::PrivacyFilter privacy)
    : options_(options),
      parts_(parts),
      rules_(std::move(rules)),
      resolver_(rules_),
      privacy_(std::move(privacy)),
      signals_(options.signals),
      workers_(std::make_unique<internal::WorkerPool>(options.worker_threads)),
      clock_(parts.wall_clock, options.clock_mode),
      cache_(std::make_unique<internal::HotCache>(options.profile_cache_bytes)),
      committer_(std::make_unique<internal::Committer>()) {}

Pipeline::~Pipeline() = default;

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(
    const PipelineOptions& options, kafka::ConsumerOptions consumer_options,
    PipelineParts parts) {
  if (options.output_topic.empty()) return absl::InvalidArgumentError("output topic is required");
  RETURN_IF_ERROR(options.event_limits.Validate());
  if (absl::Status fits = CheckOutputLimits(options); !fits.ok()) {
    // The configuration reader refuses this; a caller that means it (a
    // top_k far above any real key count) gets updates cut to fit instead.
    LogWarn("output.max_message_bytes: ", fits.message(), "; larger updates are cut to fit");
  }
  ASSIGN_OR_RETURN(identity::IdentityRules rules, identity::IdentityRules::Create(options.identity));
  ASSIGN_OR_RETURN(privacy::PrivacyFilter privacy, privacy::PrivacyFilter::Create(options.privacy));
  std::unique_ptr<Pipeline> p(
      new Pipeline(options, parts, std::move(rules), std::move(privacy)));
  // One decoder per topic per lane: a decoder keeps its parser's buffers.
  p->json_decoders_.resize(options.worker_threads + 1);
  for (auto& lane : p->json_decoders_) {
    for (const auto& [topic, input] : options.inputs) {
      if (input.format == InputFormat::kSegmentJson) {
        auto decoder = std::make_shared<ingest::SegmentDecoder>(
            ingest::SegmentOptions{input.default_channel, options.json_limits});
        lane[topic] = [decoder](std::string_view payload, auto& out) {
          return decoder->Decode(payload, out);
        };
      } else if (input.format == InputFormat::kMappedJson) {
        auto created = ingest::MappedJsonDecoder::Create(
            {input.default_channel, options.json_limits, input.map});
        if (!created.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("field map of topic ", topic, ": ", created.status().message()));
        }
        auto decoder = std::make_shared<ingest::MappedJsonDecoder>(std::move(*created));
        lane[topic] = [decoder](std::string_view payload, auto& out) {
          return decoder->Decode(payload, out);
        };
      }
    }
  }
  if (!options.control_topic.empty()) {
    p->secret_ = options.erasure_secret;
    if (p->secret_.empty()) {
      ASSIGN_OR_RETURN(p->secret_, parts.store.DeploymentSecret());
    }
    ASSIGN_OR_RETURN(p->suppressions_exist_, parts.store.HasSuppressions());
  }
  RETURN_IF_ERROR(p->LoadPositions());
  Pipeline* raw = p.get();
  ASSIGN_OR_RETURN(p->consumer_, kafka::Consumer::Create(
                                     consumer_options,
                                     [raw](const core::PartitionKey& key) -> std::optional<int64_t> {
                                       // Seek from what the store has, including
                                       // the batch still being written.
                                       (void)raw->FinishInFlight();
                                       auto it = raw->positions_.find(key);
                                       if (it == raw->positions_.end()) return std::nullopt;
                                       return it->second;
                                     }));
  return p;
}

absl::Status Pipeline::LoadPositions() {
  ASSIGN_OR_RETURN(std::vector<store::PartitionPosition> stored, parts_.store.LoadPositions());
  positions_.clear();
  clock_.Reset();  // stream time as stored: not advanced by a batch that never committed
  for (const store::PartitionPosition& pos : stored) {
    core::PartitionKey key{pos.topic, pos.partition};
    positions_[key] = pos.next_offset;
    clock_.Observe(key, pos.stream_time_ms);
  }
  return absl::OkStatus();
}

absl::Status Pipeline::Restart() {
  (void)committer_->Wait();  // nothing may be in flight
  in_flight_.reset();
  cache_->Clear();
  next_timer_due_ms_ = 0;
  failed_ = absl::OkStatus();
  RETURN_IF_ERROR(LoadPositions());
  if (!options_.control_topic.empty()) {
    ASSIGN_OR_RETURN(suppressions_exist_, parts_.store.HasSuppressions());
  }
  // Whatever was consumed after the last committed batch is read again.
  RETURN_IF_ERROR(consumer_->Rewind());
  if (!paused_) consumer_->ResumeAll();  // KeepAlive paused it
  return absl::OkStatus();
}

void Pipeline::KeepAlive(int timeout_ms) {
  // Paused, polling serves the group (heartbeats, rebalances) without
  // taking input; anything already fetched is read again after Restart().
  consumer_->PauseAll();
  std::vector<kafka::ConsumedMessage> ignored;
  (void)consumer_->Poll(1, timeout_ms, ignored);
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

absl::Status Pipeline::Fail(absl::Status s) {
  // The cache may hold what never reached the store: forget it. The pipeline
  // stops; a restart resumes from the last committed batch.
  cache_->Clear();
  if (failed_.ok()) failed_ = s;
  return s;
}

absl::Status Pipeline::FinishInFlight() {
  if (!in_flight_.has_value()) return failed_;
  absl::Status s = committer_->Wait();
  InFlight done = std::move(*in_flight_);
  in_flight_.reset();
  if (!s.ok()) return Fail(s);
  for (const kafka::CommitPosition& c : done.commits) positions_[c.partition] = c.next_offset;
  consumer_->CommitAsync(done.commits);
  cache_->Committed(done.seq);
  parts_.health.ReportCommit();
  return absl::OkStatus();
}

absl::StatusOr<size_t> Pipeline::RunOnce() {
  RETURN_IF_ERROR(failed_);
  UpdateBackPressure();
  std::vector<kafka::ConsumedMessage> messages;
  RETURN_IF_ERROR(consumer_->Poll(paused_ ? 1 : options_.batch_max_events,
                                  options_.poll_timeout_ms, messages));
  if (!messages.empty()) {
    const auto started = std::chrono::steady_clock::now();
    if (absl::Status s = ProcessBatch(messages); !s.ok()) {
      (void)FinishInFlight();  // the batch before it still lands
      return Fail(s);          // profiles taken from the cache may be half-applied
    }
    parts_.metrics.batch_size.Observe(static_cast<double>(messages.size()));
    parts_.metrics.batch_duration.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  } else {
    // Idle: let the last batch land, so what was consumed is stored.
    RETURN_IF_ERROR(FinishInFlight());
    if (!paused_) parts_.health.ReportIdle();
    // An idle partition at its high watermark is caught up (e.g. after a
    // restart with nothing new): its clock, and so its timers, run on wall time.
    for (const auto& [partition, next_offset] : positions_) {
      std::optional<int64_t> high = consumer_->CachedHighWatermark(partition);
      if (high.has_value() && next_offset + options_.caught_up_max_lag >= *high) {
        clock_.SetCaughtUp(partition, true);
      }
    }
  }
  // While paused the outbox is full: time-driven updates wait too.
  if (!paused_) RETURN_IF_ERROR(FireTimers());
  UpdateStatus();
  return messages.size();
}

v1::ProfileUpdate Pipeline::BuildUpdate(const core::Profile& profile, int64_t as_of_ms,
                                        bool& truncated) const {
  v1::ProfileUpdate update = codec::BuildProfileUpdate(profile, as_of_ms, options_.scoring, signals_);
  truncated = codec::FitUpdate(options_.max_output_message_bytes - kRecordOverheadBytes, update);
  if (truncated) {
    LogWarn("update of ", profile.id, " exceeded output.max_message_bytes and was cut ",
            "(a profile stored before the size caps; its next event trims it)");
  }
  return update;
}

int64_t Pipeline::NextDueMs(const core::Profile& profile, int64_t now_ms) const {
  int64_t next = signals_.NextTransitionMs(profile, now_ms, options_.scoring);
  if (options_.retention_ttl_ms > 0) {
    const int64_t expiry = profile.last_seen_ms + options_.retention_ttl_ms;
    if (next == 0 || expiry < next) next = std::max(expiry, now_ms + 1);
  }
  return next;
}

void Pipeline::RecordTimerChange(int64_t old_due_ms, const core::Profile& profile,
                                 const core::PartitionKey& partition, store::CommitBatch& batch) {
  if (old_due_ms == profile.timer_due_ms) return;
  if (old_due_ms != 0) batch.timers_deleted.emplace_back(old_due_ms, profile.id);
  if (profile.timer_due_ms != 0) {
    batch.timers_set.push_back({profile.timer_due_ms, profile.id, partition.topic, partition.partition});
  }
}

void Pipeline::Reschedule(core::Profile& profile, int64_t now_ms, const core::PartitionKey& partition,
                          store::CommitBatch& batch) const {
  const int64_t old_due = profile.timer_due_ms;
  profile.timer_due_ms = NextDueMs(profile, now_ms);
  RecordTimerChange(old_due, profile, partition, batch);
}

absl::Status Pipeline::Expire(const core::Profile& profile, store::CommitBatch& batch) {
  batch.deleted_profiles.push_back(profile.id);
  --batch.profiles_added;
  batch.timers_deleted.emplace_back(profile.timer_due_ms, profile.id);
  for (const core::Identity& id : profile.identities) {
    batch.identity_links_deleted.push_back(store::IdentityKey(id.kind, id.value));
  }
  ASSIGN_OR_RETURN(auto audit, parts_.store.ReadAuditEntries(profile.id));
  for (const auto& [key, record] : audit) batch.audit_deleted.push_back(key);
  batch.outbox.push_back(TombstoneRecordFor(options_.output_topic, profile.id));
  return absl::OkStatus();
}

absl::Status Pipeline::FireTimers() {
  // No partition's clock reads later than this: nothing after it is due.
  int64_t horizon = 0;
  for (const auto& [partition, offset] : positions_) {
    horizon = std::max(horizon, clock_.NowMs(partition));
  }
  // Most polls have nothing due: skip them without waiting for the batch in
  // flight or reading the store.
  if (horizon < next_timer_due_ms_) return absl::OkStatus();
  RETURN_IF_ERROR(FinishInFlight());  // the timers column is current
  std::vector<store::Timer> due;
  RETURN_IF_ERROR(parts_.store.ReadDueTimers(horizon, options_.batch_max_events, due));
  store::CommitBatch batch;
  uint64_t fired = 0, expired = 0, truncated_updates = 0;
  // Profiles re-evaluated (to return to the cache) and expired.
  std::vector<std::pair<core::Profile, size_t>> kept;
  std::vector<core::Profile> expired_profiles;
  for (const store::Timer& t : due) {
    const core::PartitionKey partition{t.topic, t.partition};
    const int64_t now = clock_.NowMs(partition);
    if (t.due_ms > now) continue;  // its own partition's clock is not there yet
    std::optional<core::Profile> profile;
    size_t charge = 0;
    internal::HotCache::Taken taken;
    switch (cache_->TakeProfile(t.profile_id, taken)) {
      case internal::HotCache::kPresent:
        profile = std::move(taken.profile);
        charge = taken.charge;
        break;
      case internal::HotCache::kAbsent:
        break;
      case internal::HotCache::kMiss: {
        ASSIGN_OR_RETURN(std::optional<std::string> bytes, parts_.store.Get(t.profile_id));
        if (bytes.has_value()) {
          ASSIGN_OR_RETURN(profile, codec::DecodeProfileState(*bytes));
          charge = internal::HotCache::ProfileCharge(bytes->size());
        }
        break;
      }
    }
    if (!profile.has_value() || profile->timer_due_ms != t.due_ms) {
      batch.timers_deleted.emplace_back(t.due_ms, t.profile_id);  // superseded
      if (profile.has_value()) kept.emplace_back(std::move(*profile), charge);
      continue;
    }
    if (options_.retention_ttl_ms > 0 && now - profile->last_seen_ms >= options_.retention_ttl_ms) {
      RETURN_IF_ERROR(Expire(*profile, batch));
      expired_profiles.push_back(std::move(*profile));
      ++expired;
      continue;
    }
    const int64_t as_of = std::max(now, profile->last_seen_ms);
    bool truncated = false;
    const v1::ProfileUpdate update = BuildUpdate(*profile, as_of, truncated);
    truncated_updates += truncated;
    const uint64_t fingerprint = signals::Fingerprint(update.signals());
    if (fingerprint != profile->signals_fingerprint) {
      // Same version (no event was applied), later as_of: see output-contract.md.
      profile->signals_fingerprint = fingerprint;
      batch.outbox.push_back(OutboxRecordFor(options_.output_topic, update));
    }
    Reschedule(*profile, as_of, partition, batch);
    std::string state = codec::EncodeProfileState(*profile);
    charge = internal::HotCache::ProfileCharge(state.size());
    batch.profiles.emplace_back(profile->id, std::move(state));
    kept.emplace_back(std::move(*profile), charge);
    ++fired;
  }
  // The timer's deletion, the new state and the update commit together:
  // a crash before re-fires it, after never fires it twice.
  if (absl::Status s = parts_.store.Commit(batch); !s.ok()) return Fail(s);
  for (auto& [profile, charge] : kept) {
    const std::string id = profile.id;
    cache_->PutProfile(id, std::move(profile), charge, 0);
  }
  for (const core::Profile& profile : expired_profiles) {
    cache_->PutProfileAbsent(profile.id, 0);
    for (const core::Identity& id : profile.identities) {
      cache_->PutLink(store::IdentityKey(id.kind, id.value), std::nullopt, 0);
    }
  }
  // The earliest timer left decides when to look again.
  std::vector<store::Timer> next;
  RETURN_IF_ERROR(parts_.store.ReadDueTimers(std::numeric_limits<int64_t>::max(), 1, next));
  next_timer_due_ms_ = next.empty() ? std::numeric_limits<int64_t>::max() : next[0].due_ms;
  if (batch.empty()) return absl::OkStatus();
  if (parts_.publisher != nullptr && !batch.outbox.empty()) parts_.publisher->Notify();
  parts_.metrics.timers_fired.Increment(static_cast<double>(fired));
  parts_.metrics.updates_truncated.Increment(static_cast<double>(truncated_updates));
  parts_.metrics.expired.Increment(static_cast<double>(expired));
  parts_.metrics.updates_enqueued.Increment(static_cast<double>(batch.outbox.size()));
  return absl::OkStatus();
}

Pipeline::DecodedMessage Pipeline::DecodeMessage(const kafka::ConsumedMessage& m,
                                                  JsonDecoders& decoders, int64_t wall_now_ms,
                                                  privacy::PrivacyFilter::Counts& counts) const {
  DecodedMessage d;
  if (auto it = decoders.find(m.topic()); it != decoders.end()) {
    d.rejection = it->second(m.payload(), d.events);
  } else if (m.payload().size() > options_.json_limits.max_message_bytes) {
    d.rejection = ingest::Rejection{
        ingest::RejectReason::kPayloadTooLarge,
        absl::StrCat("value is ", m.payload().size(), " bytes (limit ",
                     options_.json_limits.max_message_bytes, ")")};
  } else {
    d.rejection = ingest::DecodeProtobufEvent(m.payload(), d.events.emplace_back());
  }
  if (d.rejection) return d;
  for (const v1::InteractionEvent& event : d.events) {
    // A message is accepted whole or not at all (the dead letter keeps it).
    if ((d.rejection = ingest::CheckEventLimits(event, options_.event_limits))) return d;
  }
  for (v1::InteractionEvent& event : d.events) {
    const privacy::PrivacyFilter::Counts n = privacy_.Apply(event);
    counts.dropped += n.dropped;
    counts.hashed += n.hashed;
    switch (ingest::CheckEventTime(options_.event_time, wall_now_ms, event)) {
      case ingest::EventTimeVerdict::kAccepted: break;
      case ingest::EventTimeVerdict::kClamped: ++d.clamped; break;
      case ingest::EventTimeVerdict::kRejected: d.in_future = true; break;
    }
    d.ids.push_back(rules_.IdentitiesOf(event, nullptr));
  }
  return d;
}

// Everything one batch accumulates on its way from messages to a WriteBatch.
struct Pipeline::BatchWork {
  struct Accepted {
    const kafka::ConsumedMessage* message;
    v1::InteractionEvent event;
    std::vector<core::Identity> ids;
    bool consent_only = false;  // a consent update from the control topic
  };
  // An absorbed profile's merge notice, published after the survivor's update.
  struct Notice {
    std::string absorbed;
    uint64_t version;
    std::string survivor;
    core::PartitionKey partition;
  };
  std::vector<Accepted> accepted;
  std::vector<core::Identity> mentioned;  // every identity to load
  std::vector<v1::EraseRequest> erasures;
  std::vector<DeadLetter> letters;
  // Per input partition: the position after this batch and its message count.
  struct Touched {
    store::PartitionPosition position;
    uint64_t messages = 0;
  };
  absl::flat_hash_map<core::PartitionKey, Touched> touched;
  std::vector<Notice> notices;
  // What the batch's erasures leave on disk to purge once it commits.
  store::PurgeKeys purge;
  // Per changed profile, the oldest input timestamp behind its update.
  absl::flat_hash_map<std::string, int64_t> source_time_ms;
  store::CommitBatch batch;
  BatchCounts counts;

  void NoteSource(const std::string& id, int64_t ms) {
    if (ms <= 0) return;
    auto [it, inserted] = source_time_ms.try_emplace(id, ms);
    if (!inserted) it->second = std::min(it->second, ms);
  }
};

absl::Status Pipeline::ProcessBatch(const std::vector<kafka::ConsumedMessage>& messages) {
  BatchWork work;
  ReadMessages(messages, work);
  // The graph entries and profiles involved: from the cache, else the store.
  internal::BatchState state(parts_.store, *cache_);
  RETURN_IF_ERROR(state.Preload(work.mentioned));
  RETURN_IF_ERROR(ApplyEvents(state, work));
  RETURN_IF_ERROR(ApplyErasures(state, work));
  const absl::flat_hash_map<std::string, size_t> charges = BuildOutputs(state, work);
  // The profiles go back to the cache, pinned until this batch is stored.
  const uint64_t seq = ++last_seq_;
  state.ReturnTo(seq, charges);
  return Submit(seq, work);
}

void Pipeline::ReadMessages(const std::vector<kafka::ConsumedMessage>& messages, BatchWork& work) {
  work.accepted.reserve(messages.size());
  auto reject = [&](const kafka::ConsumedMessage& m, ingest::RejectReason reason,
                    std::string detail) {
    LogDebug("rejected ", m.topic(), "/", m.partition(), "@", m.offset(), ": ",
             ingest::ReasonCode(reason), ": ", detail);
    work.counts.reasons.push_back(reason);
    DeadLetter& letter = work.letters.emplace_back(DeadLetter{
        std::string(ingest::ReasonCode(reason)), std::move(detail), m.topic(), m.partition(),
        m.offset(), std::string(m.key()), std::string(m.payload())});
    if (json_decoders_[0].contains(m.topic())) {
      // Personal data the filter would have dropped stays out of the dead letter too.
      if (std::optional<std::string> clean = privacy_.RedactJson(m.payload())) {
        letter.value = std::move(*clean);
        letter.redacted = true;
      }
    }
  };
  // Decoding, the privacy filter, event-time checks and identity extraction
  // are per message: done on every core first, in chunks, one decoder set per lane.
  std::vector<DecodedMessage> decoded_messages(messages.size());
  {
    const int64_t wall_now = parts_.wall_clock.NowMs();
    std::vector<privacy::PrivacyFilter::Counts> privacy_counts(json_decoders_.size());
    std::atomic<size_t> next_chunk{0};
    constexpr size_t kChunk = 64;
    workers_->ParallelFor(json_decoders_.size(), [&](size_t lane) {
      for (size_t start = next_chunk.fetch_add(kChunk); start < messages.size();
           start = next_chunk.fetch_add(kChunk)) {
        for (size_t i = start; i < std::min(messages.size(), start + kChunk); ++i) {
          if (!options_.control_topic.empty() && messages[i].topic() == options_.control_topic) {
            continue;
          }
          decoded_messages[i] = DecodeMessage(messages[i], json_decoders_[lane], wall_now,
                                              privacy_counts[lane]);
        }
      }
    }, /*min_items=*/messages.size() >= 2 * kChunk ? 1 : json_decoders_.size() + 1);
    for (const privacy::PrivacyFilter::Counts& n : privacy_counts) {
      work.counts.privacy_dropped += n.dropped;
      work.counts.privacy_hashed += n.hashed;
    }
  }
  // Then, in order: positions, control requests, rejections, accepted events.
  for (size_t index = 0; index < messages.size(); ++index) {
    const kafka::ConsumedMessage& m = messages[index];
    const core::PartitionKey key{m.topic(), m.partition()};
    BatchWork::Touched& touched = work.touched[key];
    ++touched.messages;
    store::PartitionPosition& pos = touched.position;
    pos.topic = m.topic();
    pos.partition = m.partition();
    pos.next_offset = std::max(pos.next_offset, m.offset() + 1);

    if (!options_.control_topic.empty() && m.topic() == options_.control_topic) {
      v1::ControlRequest control;
      if (!control.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size()))) {
        reject(m, ingest::RejectReason::kUndecodable, "not a profiled.v1.ControlRequest");
        continue;
      }
      if (control.has_erase() && !control.erase().request_id().empty() &&
          !control.erase().kind().empty() && !control.erase().value().empty()) {
        work.mentioned.push_back(
            rules_.Normalize({control.erase().kind(), control.erase().value()}));
        work.erasures.push_back(control.erase());
        continue;
      }
      std::optional<v1::InteractionEvent> consent;
      if (control.has_consent()) consent = ConsentEventOf(control.consent());
      std::vector<core::Identity> ids;
      if (consent) ids = rules_.IdentitiesOf(*consent, nullptr);
      if (ids.empty()) {
        reject(m, ingest::RejectReason::kUndecodable,
               "a ControlRequest needs an erase (request_id, kind, value) or a consent update "
               "(request_id, kind, value, purposes, decided_ms) with a usable identity");
        continue;
      }
      work.mentioned.insert(work.mentioned.end(), ids.begin(), ids.end());
      work.accepted.push_back({&m, std::move(*consent), std::move(ids), /*consent_only=*/true});
      continue;
    }
    DecodedMessage& d = decoded_messages[index];
    if (d.rejection) {
      reject(m, d.rejection->reason, std::move(d.rejection->detail));
      continue;
    }
    if (d.in_future) {
      reject(m, ingest::RejectReason::kEventInFuture,
             absl::StrCat("event time more than ", options_.event_time.future_tolerance_ms,
                          " ms ahead of the wall clock"));
      continue;
    }
    // A message is accepted whole or not at all (the dead letter keeps it).
    if (std::any_of(d.ids.begin(), d.ids.end(), [](const auto& ids) { return ids.empty(); })) {
      reject(m, ingest::RejectReason::kBlockedIdentities,
             "every identity is a blocked value (e.g. \"undefined\", \"0\")");
      continue;
    }
    work.counts.clamped += d.clamped;
    for (size_t e = 0; e < d.events.size(); ++e) {
      const BatchWork::Accepted& a =
          work.accepted.emplace_back(BatchWork::Accepted{&m, std::move(d.events[e]), std::move(d.ids[e])});
      work.mentioned.insert(work.mentioned.end(), a.ids.begin(), a.ids.end());
      if (a.event.type() == "alias" && !a.event.previous_id().empty()) {
        for (const char* kind : {"user_id", "anonymous_id"}) {
          work.mentioned.push_back(rules_.Normalize({kind, a.event.previous_id()}));
        }
      }
    }
  }
  for (const auto& [partition, touched] : work.touched) {
    std::optional<int64_t> high = consumer_->CachedHighWatermark(partition);
    const int64_t next = touched.position.next_offset;
    clock_.SetCaughtUp(partition, high.has_value() && next + options_.caught_up_max_lag >= *high);
  }
}

absl::Status Pipeline::ApplyEvents(internal::BatchState& state, BatchWork& work) {
  BatchCounts& counts = work.counts;
  // Events naming an erased identity within its suppression window are refused.
  std::vector<bool> suppressed(work.accepted.size(), false);
  if (suppressions_exist_) {
    std::vector<std::string> hashes;
    std::vector<size_t> owner;
    for (size_t i = 0; i < work.accepted.size(); ++i) {
      for (const core::Identity& id : work.accepted[i].ids) {
        hashes.push_back(internal::SuppressionHash(secret_, id));
        owner.push_back(i);
      }
    }
    std::vector<std::optional<int64_t>> until;
    RETURN_IF_ERROR(parts_.store.MultiGetSuppressions(hashes, until));
    const int64_t wall_now = parts_.wall_clock.NowMs();
    for (size_t h = 0; h < hashes.size(); ++h) {
      if (until[h].has_value() && *until[h] > wall_now) suppressed[owner[h]] = true;
    }
  }
  // Resolve and apply every event in arrival order.
  for (size_t index = 0; index < work.accepted.size(); ++index) {
    BatchWork::Accepted& a = work.accepted[index];
    if (suppressed[index]) {
      ++counts.erasure_suppressed;
      continue;
    }
    const core::PartitionKey partition{a.message->topic(), a.message->partition()};
    clock_.Observe(partition, a.event.event_time_ms());
    const int64_t now = clock_.NowMs(partition);
    const bool alias = a.event.type() == "alias";
    if (alias) {
      if (auto previous = resolver_.PreviousIdentity(a.event, state)) a.ids.push_back(*previous);
    }
    const identity::Resolution r = resolver_.Resolve(a.ids, alias, now, state);
    if (!r.create && r.absorbed.empty() && r.link.empty()) {
      // A re-sent event that changes nothing is not even touched.
      const core::Profile* existing = state.Find(r.target);
      if (existing != nullptr && core::AlreadyApplied(a.event, *existing)) {
        ++counts.duplicates;
        continue;
      }
    }
    if (r.create) state.Create(r.target);
    core::Profile& profile = state.Touch(r.target, partition);
    work.NoteSource(r.target, a.message->timestamp_ms());
    for (const std::string& absorbed_id : r.absorbed) {
      const core::Profile absorbed = state.Take(absorbed_id);
      if (absorbed.timer_due_ms != 0) {
        work.batch.timers_deleted.emplace_back(absorbed.timer_due_ms, absorbed_id);
      }
      const signals::SignalOptions& holdout = signals_.options();
      if (holdout.holdout_percent > 0 &&
          signals::InHoldout(core::HoldoutKey(absorbed), holdout.holdout_percent,
                             holdout.holdout_salt) !=
              signals::InHoldout(core::HoldoutKey(profile), holdout.holdout_percent,
                                 holdout.holdout_salt)) {
        ++counts.holdout_switches;  // one side's group changes: the first seen wins
      }
      core::MergeProfiles(absorbed, options_.scoring, profile);
      profile.merge_times_ms.push_back(now);
      std::erase_if(profile.merge_times_ms,
                    [now](int64_t t) { return t <= now - identity::kMergeRateWindowMs; });
      for (const core::Identity& id : absorbed.identities) state.Link(id, r.target);
      if (auto it = work.source_time_ms.find(absorbed_id); it != work.source_time_ms.end()) {
        work.NoteSource(r.target, it->second);
      }
      work.notices.push_back({absorbed_id, absorbed.version + 1, r.target, partition});
      ++counts.merges;
    }
    for (const core::Identity& id : r.link) {
      core::LinkIdentity(id, profile);
      state.Link(id, r.target);
    }
    const core::ConsentOptions& consent = options_.scoring.consent;
    const bool duplicate = core::AlreadyApplied(a.event, profile);
    if (!duplicate) core::RecordConsent(a.event, consent, profile.consent);
    if (a.consent_only) {
      // The decision is recorded; there is no event to apply.
    } else if (duplicate) {
      ++counts.duplicates;  // its links and merges still counted: they are new
    } else if (!core::Allows(profile.consent, core::kAnalyticsPurpose, consent)) {
      // Without analytics consent only the decision and the identities are
      // kept (to honour it next time); the event itself is not stored.
      ++counts.consent_suppressed;
    } else {
      core::ApplyEvent(a.event, options_.scoring, profile);
      ++counts.applied;
    }
    AppendAudit(a.event, a.ids, r, now, work.batch);
    for (const identity::Refusal& refusal : r.refusals) counts.refusals.push_back(refusal.rule);
  }
  return absl::OkStatus();
}

absl::Status Pipeline::ApplyErasures(internal::BatchState& state, BatchWork& work) {
  // After the batch's events, so those events go with the person. Erasure
  // reads audit records from the store: the batch in flight lands first.
  if (!work.erasures.empty()) RETURN_IF_ERROR(FinishInFlight());
  for (const v1::EraseRequest& request : work.erasures) {
    const int64_t wall_now = parts_.wall_clock.NowMs();
    ASSIGN_OR_RETURN(v1::ErasureReceipt receipt,
                     internal::Erase(request, rules_, secret_,
                                     wall_now + options_.erasure_suppression_ms, wall_now,
                                     {options_.output_topic, options_.receipts_topic,
                                      options_.max_output_message_bytes},
                                     state, parts_.store, work.batch, work.purge));
    work.batch.purges_pending.push_back(request.request_id());
    LogInfo("erased ", receipt.erased_profile_ids_size(), " profile(s) for request ",
            request.request_id());
    if (request.requested_ms() > 0) {
      work.counts.erasure_latencies_ms.push_back(wall_now - request.requested_ms());
    }
  }
  work.counts.erasures = work.erasures.size();
  work.batch.identity_links_deleted = state.unlinked();
  return absl::OkStatus();
}

absl::flat_hash_map<std::string, size_t> Pipeline::BuildOutputs(internal::BatchState& state,
                                                                BatchWork& work) {
  store::CommitBatch& batch = work.batch;
  // States, one update per changed profile, merge notices and tombstones,
  // graph links, positions. Each changed profile's update, timer and state
  // are independent of the others: built on both cores, then added in order.
  const std::vector<std::pair<core::Profile*, const core::PartitionKey*>> changed = state.Changed();
  struct Built {
    int64_t as_of_ms = 0;
    int64_t old_due_ms = 0;
    bool truncated = false;
    std::string record;
    std::string state;
  };
  std::vector<Built> built(changed.size());
  for (size_t i = 0; i < changed.size(); ++i) {
    built[i].as_of_ms = std::max(clock_.NowMs(*changed[i].second), changed[i].first->last_seen_ms);
  }
  workers_->ParallelFor(changed.size(), [&](size_t i) {
    core::Profile& profile = *changed[i].first;
    Built& out = built[i];
    const v1::ProfileUpdate update = BuildUpdate(profile, out.as_of_ms, out.truncated);
    profile.signals_fingerprint = signals::Fingerprint(update.signals());
    out.old_due_ms = profile.timer_due_ms;
    profile.timer_due_ms = NextDueMs(profile, out.as_of_ms);
    auto source = work.source_time_ms.find(profile.id);
    out.record = OutboxRecordFor(options_.output_topic, update,
                                 source == work.source_time_ms.end() ? 0 : source->second);
    out.state = codec::EncodeProfileState(profile);
  });
  absl::flat_hash_map<std::string, size_t> charges;
  charges.reserve(changed.size());
  for (size_t i = 0; i < changed.size(); ++i) {
    const core::Profile& profile = *changed[i].first;
    RecordTimerChange(built[i].old_due_ms, profile, *changed[i].second, batch);
    if (profile.timer_due_ms != 0) {
      next_timer_due_ms_ = std::min(next_timer_due_ms_, profile.timer_due_ms);
    }
    charges[profile.id] = internal::HotCache::ProfileCharge(built[i].state.size());
    work.counts.truncated += built[i].truncated;
    batch.outbox.push_back(std::move(built[i].record));
    batch.profiles.emplace_back(profile.id, std::move(built[i].state));
  }
  for (const BatchWork::Notice& n : work.notices) {
    v1::ProfileUpdate notice;
    notice.set_profile_id(n.absorbed);
    notice.set_version(n.version);
    notice.set_as_of_ms(clock_.NowMs(n.partition));
    notice.set_merged_into(n.survivor);
    batch.outbox.push_back(OutboxRecordFor(options_.output_topic, notice));
    batch.outbox.push_back(TombstoneRecordFor(options_.output_topic, n.absorbed));
  }
  batch.deleted_profiles = state.deleted();
  batch.profiles_added = state.profiles_added();
  for (const auto& [key, id] : state.new_links()) batch.identity_links.emplace_back(key, id);
  absl::flat_hash_map<std::string, uint64_t> per_topic;
  for (auto& [partition, touched] : work.touched) {
    touched.position.stream_time_ms = clock_.StreamTimeMs(partition);
    batch.positions.push_back(touched.position);
    per_topic[partition.topic] += touched.messages;
  }
  for (const auto& [topic, n] : per_topic) {
    work.counts.consumed.emplace_back(&parts_.metrics.consumed(topic), n);
  }
  work.counts.updates = batch.outbox.size();
  return charges;
}

absl::Status Pipeline::Submit(uint64_t seq, BatchWork& work) {
  std::vector<kafka::CommitPosition> commits;
  for (const store::PartitionPosition& pos : work.batch.positions) {
    commits.push_back({{pos.topic, pos.partition}, pos.next_offset});
  }
  // Written on the committer thread while the next batch is prepared; the
  // previous batch is written first. Dead letters are acknowledged before
  // their offsets are stored; one atomic write; then the publisher is told.
  RETURN_IF_ERROR(FinishInFlight());
  committer_->Submit([this, batch = std::move(work.batch), letters = std::move(work.letters),
                      counts = std::move(work.counts)]() -> absl::Status {
    RETURN_IF_ERROR(parts_.dead_letters.PublishAll(letters, parts_.should_stop));
    PROFILED_FAILPOINT("before_commit");
    RETURN_IF_ERROR(parts_.store.Commit(batch));
    PROFILED_FAILPOINT("after_commit");
    if (parts_.publisher != nullptr) parts_.publisher->Notify();
    counts.RecordIn(parts_.metrics);
    return absl::OkStatus();
  });
  in_flight_ = InFlight{seq, std::move(commits)};
  if (!work.erasures.empty()) {
    // Later batches check suppressions in the store: this one must be there.
    suppressions_exist_ = true;
    RETURN_IF_ERROR(FinishInFlight());
    if (parts_.purger != nullptr) {
      std::vector<std::string> requests;
      for (const v1::EraseRequest& r : work.erasures) requests.push_back(r.request_id());
      // Every record of this batch (tombstones, receipts) comes before this.
      parts_.purger->Schedule(std::move(requests), std::move(work.purge),
                              parts_.store.NextOutboxSeq());
    }
  }
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

void Pipeline::UpdateStatus() {
  // Assignment() copies librdkafka's list and RocksDB's properties take its
  // locks: at most every 200 ms.
  const auto now = std::chrono::steady_clock::now();
  if (now < next_status_update_) return;
  next_status_update_ = now + std::chrono::milliseconds(200);
  parts_.metrics.RecordStoreStats(parts_.store.Stats());
  parts_.metrics.RecordOffsetResets(consumer_->OffsetResets());
  parts_.metrics.RecordProfileCache(cache_->hits(), cache_->misses(), cache_->bytes());
  std::vector<Health::PartitionState> partitions;
  for (const core::PartitionKey& p : consumer_->Assignment()) {
    auto it = positions_.find(p);
    partitions.push_back({p, it == positions_.end() ? 0 : it->second,
                          consumer_->CachedHighWatermark(p)});
  }
  parts_.health.ReportAssignment(std::move(partitions));
}

void Pipeline::Close() {
  if (absl::Status s = FinishInFlight(); !s.ok() && !absl::IsCancelled(s)) {
    LogError("last batch not stored: ", s.ToString());
  }
  consumer_->Close();
}

}  // namespace profiled::pipeline
