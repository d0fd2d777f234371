#include "profiled/cluster/protocol_codec.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "absl/strings/str_cat.h"
#include "profiled/base/status_macros.h"

namespace profiled::cluster {
namespace {

using internal::v1::ProtocolRecord;

void Put(const ProfileRef& ref, internal::v1::ProfileRef& out) {
  out.set_id(ref.id);
  out.set_rank(ref.rank);
  out.set_incarnation(ref.incarnation);
}

ProfileRef Get(const internal::v1::ProfileRef& ref) {
  return {ref.id(), ref.rank(), ref.incarnation()};
}

void PutRefs(const std::vector<ProfileRef>& refs,
             google::protobuf::RepeatedPtrField<internal::v1::ProfileRef>& out) {
  for (const ProfileRef& ref : refs) Put(ref, *out.Add());
}

// `refs`, and the bare ids a record written before incarnations holds
// instead (incarnation 0, as that record's profiles have).
std::vector<ProfileRef> GetRefs(
    const google::protobuf::RepeatedPtrField<internal::v1::ProfileRef>& refs,
    const google::protobuf::RepeatedPtrField<std::string>& legacy_ids) {
  std::vector<ProfileRef> out;
  out.reserve(static_cast<size_t>(refs.size()) + static_cast<size_t>(legacy_ids.size()));
  for (const internal::v1::ProfileRef& ref : refs) out.push_back(Get(ref));
  for (const std::string& id : legacy_ids) out.push_back({id});
  return out;
}

void PutIds(const std::vector<core::Identity>& ids,
            google::protobuf::RepeatedPtrField<internal::v1::IdentityRef>& out) {
  for (const core::Identity& id : ids) {
    internal::v1::IdentityRef& ref = *out.Add();
    ref.set_kind(id.kind);
    ref.set_value(id.value);
  }
}

std::vector<core::Identity> GetIds(
    const google::protobuf::RepeatedPtrField<internal::v1::IdentityRef>& ids) {
  std::vector<core::Identity> out;
  out.reserve(static_cast<size_t>(ids.size()));
  for (const internal::v1::IdentityRef& ref : ids) out.push_back({ref.kind(), ref.value()});
  return out;
}

// What each kind cannot do without.
absl::Status Check(const ProtocolMessage& m) {
  const bool needs_identity = m.kind == MessageKind::kEvent || m.kind == MessageKind::kLink ||
                              m.kind == MessageKind::kClaim || m.kind == MessageKind::kBind ||
                              m.kind == MessageKind::kRelease || m.kind == MessageKind::kErase ||
                              m.kind == MessageKind::kStale || m.kind == MessageKind::kDropped;
  if (needs_identity && m.ids.empty()) return absl::InvalidArgumentError("no identity");
  for (const core::Identity& id : m.ids) {
    if (id.kind.empty() || id.value.empty()) {
      return absl::InvalidArgumentError("an identity without kind or value");
    }
  }
  if (m.kind != MessageKind::kEvent && m.kind != MessageKind::kErase &&
      m.kind != MessageKind::kStale && m.profile.id.empty()) {
    return absl::InvalidArgumentError("no profile");
  }
  if (m.kind == MessageKind::kForget && m.ids.empty() && m.other.id.empty()) {
    return absl::InvalidArgumentError("a forget names no slot");
  }
  const bool needs_other = m.kind == MessageKind::kOffer || m.kind == MessageKind::kInvite ||
                           m.kind == MessageKind::kShip || m.kind == MessageKind::kDecline ||
                           m.kind == MessageKind::kStale;
  if (needs_other && m.other.id.empty()) return absl::InvalidArgumentError("no absorbed profile");
  return absl::OkStatus();
}

}  // namespace

ProtocolRecord ToRecord(const ProtocolMessage& m) {
  ProtocolRecord r;
  r.set_kind(static_cast<ProtocolRecord::Kind>(m.kind));
  PutIds(m.ids, *r.mutable_ids());
  if (!m.profile.id.empty()) Put(m.profile, *r.mutable_profile());
  if (!m.other.id.empty()) Put(m.other, *r.mutable_other());
  r.set_payload(m.payload);
  r.set_time_ms(m.time_ms);
  r.set_explicit_alias(m.explicit_alias);
  for (int64_t t : m.merge_times_ms) r.add_merge_times_ms(t);
  PutRefs(m.absorbed, *r.mutable_absorbed());
  if (m.refused.has_value()) r.set_refused(static_cast<int32_t>(*m.refused) + 1);
  r.set_suppress_until_ms(m.suppress_until_ms);
  PutIds(m.alias, *r.mutable_alias());
  r.set_expiry(m.expiry);
  PutIds(m.linked, *r.mutable_linked());
  return r;
}

absl::StatusOr<ProtocolMessage> FromRecord(const ProtocolRecord& r) {
  if (!ProtocolRecord::Kind_IsValid(r.kind()) ||
      r.kind() > static_cast<int>(MessageKind::kDropped)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown protocol record kind ", r.kind()));
  }
  ProtocolMessage m;
  m.kind = static_cast<MessageKind>(r.kind());
  m.ids = GetIds(r.ids());
  m.profile = Get(r.profile());
  m.other = Get(r.other());
  m.payload = r.payload();
  m.time_ms = r.time_ms();
  m.explicit_alias = r.explicit_alias();
  m.merge_times_ms.assign(r.merge_times_ms().begin(), r.merge_times_ms().end());
  m.absorbed = GetRefs(r.absorbed(), r.absorbed_ids());
  if (r.refused() < 0 || r.refused() > static_cast<int>(identity::RefusalRule::kMergeRate) + 1) {
    return absl::InvalidArgumentError(absl::StrCat("unknown refusal rule ", r.refused()));
  }
  if (r.refused() > 0) m.refused = static_cast<identity::RefusalRule>(r.refused() - 1);
  m.suppress_until_ms = r.suppress_until_ms();
  m.alias = GetIds(r.alias());
  m.expiry = r.expiry();
  m.linked = GetIds(r.linked());
  RETURN_IF_ERROR(Check(m));
  return m;
}

internal::v1::SlotValue ToSlotValue(const Slot& slot, std::string state) {
  internal::v1::SlotValue v;
  if (slot.identity.has_value()) Put(slot.identity->label, *v.mutable_label());
  if (slot.profile.has_value()) {
    const ProfileEntry& p = *slot.profile;
    internal::v1::SlotValue::Profile& out = *v.mutable_profile();
    Put(p.self, *out.mutable_self());
    PutIds(p.members, *out.mutable_members());
    for (int64_t t : p.merge_times_ms) out.add_merge_times_ms(t);
    if (p.absorbed_into.has_value()) Put(*p.absorbed_into, *out.mutable_absorbed_into());
    PutRefs(p.absorbed, *out.mutable_absorbed());
    if (p.awaiting.has_value()) Put(*p.awaiting, *out.mutable_awaiting());
    for (const ProtocolMessage& m : p.deferred) *out.add_deferred() = ToRecord(m);
    for (const std::string& record : p.audit) out.add_audit(record);
    out.set_audit_dropped(p.audit_dropped);
  }
  v.set_state(std::move(state));
  v.set_applied(slot.applied);
  v.set_suppressed_until_ms(slot.suppressed_until_ms);
  if (slot.erasure.has_value()) {
    internal::v1::SlotValue::Erasure& e = *v.mutable_erasure();
    e.set_request(slot.erasure->request);
    e.set_pending(slot.erasure->pending);
    e.set_identities(slot.erasure->identities);
    for (const std::string& id : slot.erasure->profile_ids) e.add_profile_ids(id);
    e.set_awaiting(slot.erasure->awaiting);
  }
  if (slot.expiry.has_value()) {
    const Expiry& in = *slot.expiry;
    internal::v1::SlotValue::Expiry& e = *v.mutable_expiry();
    e.set_id(in.id);
    e.set_pending(in.pending);
    Put(in.self, *e.mutable_self());
    PutIds(in.members, *e.mutable_members());
    PutRefs(in.absorbed, *e.mutable_absorbed());
    for (const ProtocolMessage& m : in.held) *e.add_held() = ToRecord(m);
  }
  PutRefs(slot.forgotten, *v.mutable_forgotten());
  v.set_forgotten_until_ms(slot.forgotten_until_ms);
  return v;
}

absl::StatusOr<Slot> FromSlotValue(const internal::v1::SlotValue& v, std::string* state) {
  Slot slot;
  if (v.has_label()) slot.identity = IdentityEntry{Get(v.label())};
  if (v.has_profile()) {
    const internal::v1::SlotValue::Profile& in = v.profile();
    ProfileEntry p;
    p.self = Get(in.self());
    p.members = GetIds(in.members());
    p.merge_times_ms.assign(in.merge_times_ms().begin(), in.merge_times_ms().end());
    if (in.has_absorbed_into()) p.absorbed_into = Get(in.absorbed_into());
    p.absorbed = GetRefs(in.absorbed(), in.absorbed_ids());
    if (in.has_awaiting()) p.awaiting = Get(in.awaiting());
    for (const ProtocolRecord& r : in.deferred()) {
      ASSIGN_OR_RETURN(ProtocolMessage m, FromRecord(r));
      p.deferred.push_back(std::move(m));
    }
    p.audit.assign(in.audit().begin(), in.audit().end());
    p.audit_dropped = in.audit_dropped();
    slot.profile = std::move(p);
  }
  slot.applied = v.applied();
  slot.suppressed_until_ms = v.suppressed_until_ms();
  if (v.has_erasure()) {
    const internal::v1::SlotValue::Erasure& e = v.erasure();
    slot.erasure = Erasure{.request = e.request(),
                           .pending = e.pending(),
                           .identities = e.identities(),
                           .profile_ids = {e.profile_ids().begin(), e.profile_ids().end()},
                           .awaiting = e.awaiting()};
  }
  if (v.has_expiry()) {
    const internal::v1::SlotValue::Expiry& e = v.expiry();
    Expiry expiry{.id = e.id(),
                  .pending = e.pending(),
                  .self = Get(e.self()),
                  .members = GetIds(e.members()),
                  .absorbed = GetRefs(e.absorbed(), e.absorbed_ids())};
    for (const ProtocolRecord& r : e.held()) {
      ASSIGN_OR_RETURN(ProtocolMessage m, FromRecord(r));
      expiry.held.push_back(std::move(m));
    }
    slot.expiry = std::move(expiry);
  }
  slot.forgotten = GetRefs(v.forgotten(), {});
  slot.forgotten_until_ms = v.forgotten_until_ms();
  if (state != nullptr) *state = v.state();
  return slot;
}

absl::StatusOr<Slot> ParseSlot(std::string_view value, std::string* state) {
  internal::v1::SlotValue parsed;
  if (!parsed.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError("a slot does not parse");
  }
  return FromSlotValue(parsed, state);
}

namespace {

// A varint field of a serialized SlotValue, read without parsing the rest;
// 0 when absent or damaged.
int64_t SlotVarint(std::string_view value, int field) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(value.data()),
                                            static_cast<int>(value.size()));
  int64_t found = 0;
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) == field &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_VARINT) {
      uint64_t v = 0;
      if (!in.ReadVarint64(&v)) return 0;
      found = static_cast<int64_t>(v);  // the last occurrence wins, as in a parse
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return 0;
    }
  }
  return found;
}

}  // namespace

int64_t SlotEpoch(std::string_view value) {
  return SlotVarint(value, internal::v1::SlotValue::kEpochFieldNumber);
}

int64_t SlotTimerDue(std::string_view value) {
  return SlotVarint(value, internal::v1::SlotValue::kTimerDueMsFieldNumber);
}

}  // namespace profiled::cluster
