#include "route_stage.h"

#include "profiled/core/profile_id.h"

namespace profiled::pipeline::internal {

profiled::internal::v1::Origin RouteStage::OriginOf(const kafka::ConsumedMessage& m, int64_t epoch) {
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
  profiled::internal::v1::IdentityTopicRecord record;
  for (const AcceptedEvent& a : batch.accepted) {
    // The read stage accepts no event without an identity.
    record.Clear();
    *record.mutable_origin() = OriginOf(*a.message, epoch);
    profiled::internal::v1::RoutedEvent& routed = *record.mutable_event();
    *routed.mutable_event() = a.event;
    for (const core::Identity& id : a.ids) {
      profiled::internal::v1::IdentityRef& ref = *routed.add_identities();
      ref.set_kind(id.kind);
      ref.set_value(id.value);
    }
    routed.set_consent_only(a.consent_only);
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
