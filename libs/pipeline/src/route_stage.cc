#include "route_stage.h"

#include <algorithm>
#include <tuple>

#include "profiled/core/event_types.h"
#include "profiled/core/profile_id.h"

namespace profiled::pipeline::internal {

profiled::internal::v1::Origin RouteStage::OriginOf(const kafka::ConsumedMessage& m,
                                                    int64_t epoch) {
  profiled::internal::v1::Origin origin;
  origin.set_topic(m.topic());
  origin.set_partition(m.partition());
  origin.set_offset(m.offset());
  origin.set_epoch(epoch);
  return origin;
}

std::vector<RoutedRecord> RouteStage::Route(const ReadBatch& batch,
                                            const identity::IdentityRules& rules, int64_t epoch,
                                            int64_t suppress_until_ms) {
  // Made with the message each comes from, then put in offset order per
  // upstream partition: a receiver skips an origin at or below the highest
  // it took, so an erase request routed after a later control message of
  // its partition would be taken for a re-send.
  std::vector<std::pair<const kafka::ConsumedMessage*, RoutedRecord>> made;
  made.reserve(batch.accepted.size() + batch.erasures.size());
  profiled::internal::v1::RepartitionRecord record;
  profiled::internal::v1::RoutedEvent routed;
  for (const AcceptedEvent& a : batch.accepted) {
    // The read stage accepts no event without an identity.
    record.Clear();
    routed.Clear();
    *record.mutable_origin() = OriginOf(*a.message, epoch);
    profiled::internal::v1::ProtocolRecord& event = *record.mutable_protocol();
    event.set_kind(profiled::internal::v1::ProtocolRecord::EVENT);
    *routed.mutable_event() = a.event;
    routed.set_source_time_ms(a.message->timestamp_ms());
    for (const core::Identity& id : a.ids) {
      profiled::internal::v1::IdentityRef& ref = *event.add_ids();
      ref.set_kind(id.kind);
      ref.set_value(id.value);
      *routed.add_identities() = ref;
    }
    routed.set_consent_only(a.consent_only);
    event.set_payload(routed.SerializeAsString());
    event.set_time_ms(a.event.event_time_ms());
    const bool alias = core::EventTypeOf(a.event.type()) == core::EventType::kAlias;
    event.set_explicit_alias(alias);
    if (alias && !a.event.previous_id().empty() && !rules.IsBlocked(a.event.previous_id())) {
      // Resolved where the previous id's slots are (identity_protocol.h).
      for (const char* kind : {"user_id", "anonymous_id"}) {
        const core::Identity previous = rules.Normalize({kind, a.event.previous_id()});
        profiled::internal::v1::IdentityRef& ref = *event.add_alias();
        ref.set_kind(previous.kind);
        ref.set_value(previous.value);
      }
    }
    made.push_back({a.message, {core::ProfileIdFor(a.ids.front()), record.SerializeAsString()}});
  }
  for (const auto& [erase, message] : batch.erasures) {
    record.Clear();
    *record.mutable_origin() = OriginOf(*message, epoch);
    const core::Identity asked = rules.Normalize({erase.kind(), erase.value()});
    profiled::internal::v1::ProtocolRecord& request = *record.mutable_protocol();
    request.set_kind(profiled::internal::v1::ProtocolRecord::ERASE);
    profiled::internal::v1::IdentityRef& ref = *request.add_ids();
    ref.set_kind(asked.kind);
    ref.set_value(asked.value);
    request.set_payload(erase.SerializeAsString());
    request.set_suppress_until_ms(suppress_until_ms);
    made.push_back({message, {core::ProfileIdFor(asked), record.SerializeAsString()}});
  }
  std::stable_sort(made.begin(), made.end(), [](const auto& a, const auto& b) {
    return std::forward_as_tuple(a.first->topic(), a.first->partition(), a.first->offset()) <
           std::forward_as_tuple(b.first->topic(), b.first->partition(), b.first->offset());
  });
  std::vector<RoutedRecord> out;
  out.reserve(made.size());
  for (auto& [message, routed_record] : made) out.push_back(std::move(routed_record));
  return out;
}

}  // namespace profiled::pipeline::internal
