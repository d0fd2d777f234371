#include "route_stage.h"

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
                                            const identity::IdentityRules& rules, int64_t epoch) {
  std::vector<RoutedRecord> out;
  out.reserve(batch.accepted.size() + batch.erasures.size());
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
    event.set_explicit_alias(core::EventTypeOf(a.event.type()) == core::EventType::kAlias);
    out.push_back({core::ProfileIdFor(a.ids.front()), record.SerializeAsString()});
  }
  for (const auto& [erase, message] : batch.erasures) {
    record.Clear();
    *record.mutable_origin() = OriginOf(*message, epoch);
    *record.mutable_erase() = erase;
    out.push_back({core::ProfileIdFor(rules.Normalize({erase.kind(), erase.value()})),
                   record.SerializeAsString()});
  }
  return out;
}

}  // namespace profiled::pipeline::internal
