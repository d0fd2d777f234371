#include "read_stage.h"

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/core/event_types.h"
#include "profiled/ingest/event_limits.h"
#include "profiled/ingest/event_time_policy.h"

namespace profiled::pipeline::internal {
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
  e.set_type(std::string(core::EventTypeName(core::EventType::kConsentUpdated)));
  e.set_event_time_ms(update.decided_ms());
  core::SetIdentity({update.kind(), update.value()}, *e.mutable_identities());
  for (const auto& [purpose, granted] : update.purposes()) {
    (*e.mutable_context()->mutable_consent())[purpose] = granted;
  }
  return e;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ReadStage>> ReadStage::Create(const PipelineOptions& options,
                                                             const identity::IdentityRules& rules,
                                                             const privacy::PrivacyFilter& privacy,
                                                             WorkerPool& workers) {
  std::unique_ptr<ReadStage> stage(new ReadStage(options, rules, privacy, workers));
  const ingest::EventFormat* protobuf = ingest::FindEventFormat("protobuf");
  // One decoder per topic per lane: a decoder keeps its parser's buffers.
  stage->lanes_.resize(options.worker_threads + 1);
  for (Lane& lane : stage->lanes_) {
    ASSIGN_OR_RETURN(lane.protobuf, protobuf->create({"web", options.json_limits, {}}));
    for (const auto& [topic, input] : options.inputs) {
      const ingest::EventFormat* format = ingest::FindEventFormat(input.format);
      if (format == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("topic ", topic, ": unknown format '",
                                                       input.format, "' (",
                                                       ingest::EventFormatNames(), ")"));
      }
      absl::StatusOr<std::unique_ptr<ingest::EventDecoder>> decoder =
          format->create({input.default_channel, options.json_limits, input.map});
      if (!decoder.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("topic ", topic, " (", std::string(format->name), "): ",
                         decoder.status().message()));
      }
      lane.by_topic[topic] = *std::move(decoder);
      stage->redactable_[topic] = format->redactable_json;
    }
  }
  return stage;
}

std::vector<std::string> ReadStage::Subscription(const PipelineOptions& options,
                                                 std::vector<std::string> inputs) {
  if (!options.control_topic.empty() &&
      std::find(inputs.begin(), inputs.end(), options.control_topic) == inputs.end()) {
    inputs.push_back(options.control_topic);
  }
  return inputs;
}

ReadStage::Decoded ReadStage::Decode(const kafka::ConsumedMessage& m, Lane& lane,
                                     int64_t wall_now_ms) const {
  Decoded d;
  auto it = lane.by_topic.find(m.topic());
  ingest::EventDecoder& decoder = it == lane.by_topic.end() ? *lane.protobuf : *it->second;
  if ((d.rejection = decoder.Decode(m.payload(), d.events))) return d;
  for (const v1::InteractionEvent& event : d.events) {
    // A message is accepted whole or not at all (the dead letter keeps it).
    if ((d.rejection = ingest::CheckEventLimits(event, options_.event_limits))) return d;
  }
  for (v1::InteractionEvent& event : d.events) {
    const privacy::PrivacyFilter::Counts n = privacy_.Apply(event);
    lane.privacy.dropped += n.dropped;
    lane.privacy.hashed += n.hashed;
    switch (ingest::CheckEventTime(options_.event_time, wall_now_ms, event)) {
      case ingest::EventTimeVerdict::kAccepted: break;
      case ingest::EventTimeVerdict::kClamped: ++d.clamped; break;
      case ingest::EventTimeVerdict::kRejected: d.in_future = true; break;
    }
    d.ids.push_back(rules_.IdentitiesOf(event, nullptr));
  }
  return d;
}

void ReadStage::Reject(const kafka::ConsumedMessage& m, ingest::RejectReason reason,
                       std::string detail, ReadBatch& batch) const {
  LogDebug("rejected ", m.topic(), "/", m.partition(), "@", m.offset(), ": ",
           ingest::ReasonCode(reason), ": ", detail);
  batch.reasons.push_back(reason);
  DeadLetter& letter = batch.letters.emplace_back(DeadLetter{
      std::string(ingest::ReasonCode(reason)), std::move(detail), m.topic(), m.partition(),
      m.offset(), std::string(m.key()), std::string(m.payload())});
  if (auto it = redactable_.find(m.topic()); it != redactable_.end() && it->second) {
    // Personal data the filter would have dropped stays out of the dead letter too.
    if (std::optional<std::string> clean = privacy_.RedactJson(m.payload())) {
      letter.value = std::move(*clean);
      letter.redacted = true;
    }
  }
}

void ReadStage::ReadControl(const kafka::ConsumedMessage& m, ReadBatch& batch) const {
  v1::ControlRequest control;
  if (!control.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size()))) {
    return Reject(m, ingest::RejectReason::kUndecodable, "not a profiled.v1.ControlRequest", batch);
  }
  if (control.has_erase() && !control.erase().request_id().empty() &&
      !control.erase().kind().empty() && !control.erase().value().empty()) {
    batch.mentioned.push_back(rules_.Normalize({control.erase().kind(), control.erase().value()}));
    batch.erasures.push_back({control.erase(), &m});
    return;
  }
  std::optional<v1::InteractionEvent> consent;
  if (control.has_consent()) consent = ConsentEventOf(control.consent());
  std::vector<core::Identity> ids;
  if (consent) ids = rules_.IdentitiesOf(*consent, nullptr);
  if (ids.empty()) {
    return Reject(m, ingest::RejectReason::kUndecodable,
                  "a ControlRequest needs an erase (request_id, kind, value) or a consent update "
                  "(request_id, kind, value, purposes, decided_ms) with a usable identity",
                  batch);
  }
  batch.mentioned.insert(batch.mentioned.end(), ids.begin(), ids.end());
  batch.accepted.push_back({&m, std::move(*consent), std::move(ids), /*consent_only=*/true});
}

ReadBatch ReadStage::Read(const std::vector<kafka::ConsumedMessage>& messages,
                          int64_t wall_now_ms) {
  ReadBatch batch;
  batch.accepted.reserve(messages.size());
  const auto is_control = [&](const kafka::ConsumedMessage& m) {
    return !options_.control_topic.empty() && m.topic() == options_.control_topic;
  };
  // Per message on every core first, in chunks, one decoder set per lane.
  std::vector<Decoded> decoded(messages.size());
  std::atomic<size_t> next_chunk{0};
  constexpr size_t kChunk = 64;
  workers_.ParallelFor(lanes_.size(), [&](size_t lane) {
    for (size_t start = next_chunk.fetch_add(kChunk); start < messages.size();
         start = next_chunk.fetch_add(kChunk)) {
      for (size_t i = start; i < std::min(messages.size(), start + kChunk); ++i) {
        if (!is_control(messages[i])) decoded[i] = Decode(messages[i], lanes_[lane], wall_now_ms);
      }
    }
  }, /*min_items=*/messages.size() >= 2 * kChunk ? 1 : lanes_.size() + 1);
  for (Lane& lane : lanes_) {
    batch.privacy_dropped += std::exchange(lane.privacy.dropped, 0);
    batch.privacy_hashed += std::exchange(lane.privacy.hashed, 0);
  }
  // Then, in order: positions, control requests, rejections, accepted events.
  for (size_t index = 0; index < messages.size(); ++index) {
    const kafka::ConsumedMessage& m = messages[index];
    ReadBatch::Touched& touched = batch.touched[core::PartitionKey{m.topic(), m.partition()}];
    ++touched.messages;
    store::PartitionPosition& pos = touched.position;
    pos.topic = m.topic();
    pos.partition = m.partition();
    pos.next_offset = std::max(pos.next_offset, m.offset() + 1);

    if (is_control(m)) {
      ReadControl(m, batch);
      continue;
    }
    Decoded& d = decoded[index];
    if (d.rejection) {
      Reject(m, d.rejection->reason, std::move(d.rejection->detail), batch);
      continue;
    }
    if (d.in_future) {
      Reject(m, ingest::RejectReason::kEventInFuture,
             absl::StrCat("event time more than ", options_.event_time.future_tolerance_ms,
                          " ms ahead of the wall clock"),
             batch);
      continue;
    }
    // A message is accepted whole or not at all (the dead letter keeps it).
    if (std::any_of(d.ids.begin(), d.ids.end(), [](const auto& ids) { return ids.empty(); })) {
      Reject(m, ingest::RejectReason::kBlockedIdentities,
             "every identity is a blocked value (e.g. \"undefined\", \"0\")", batch);
      continue;
    }
    batch.clamped += d.clamped;
    for (size_t e = 0; e < d.events.size(); ++e) {
      const AcceptedEvent& a = batch.accepted.emplace_back(
          AcceptedEvent{&m, std::move(d.events[e]), std::move(d.ids[e])});
      batch.mentioned.insert(batch.mentioned.end(), a.ids.begin(), a.ids.end());
      if (core::EventTypeOf(a.event.type()) == core::EventType::kAlias &&
          !a.event.previous_id().empty()) {
        for (const char* kind : {"user_id", "anonymous_id"}) {
          batch.mentioned.push_back(rules_.Normalize({kind, a.event.previous_id()}));
        }
      }
    }
  }
  return batch;
}

}  // namespace profiled::pipeline::internal
