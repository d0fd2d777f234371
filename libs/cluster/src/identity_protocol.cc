#include "profiled/cluster/identity_protocol.h"

#include <algorithm>

#include "profiled/core/profile_id.h"

namespace profiled::cluster {
namespace {

// A record caused by `cause`: its time and alias flag carry over.
ProtocolMessage Make(MessageKind kind, std::vector<core::Identity> ids, ProfileRef profile,
                     ProfileRef other, const ProtocolMessage& cause) {
  ProtocolMessage m;
  m.kind = kind;
  m.ids = std::move(ids);
  m.profile = std::move(profile);
  m.other = std::move(other);
  m.time_ms = cause.time_ms;
  m.explicit_alias = cause.explicit_alias;
  return m;
}

// A forget to the slot of `ids[0]`, or of profile `slot_of` when no id:
// drop `person` and the profiles it absorbed, suppressed until `until`.
ProtocolMessage Forget(std::vector<core::Identity> ids, const std::string& slot_of,
                       const ProfileRef& person, const std::vector<ProfileRef>& absorbed,
                       int64_t until, const ProtocolMessage& cause) {
  ProtocolMessage f = Make(MessageKind::kForget, std::move(ids), person, {slot_of}, cause);
  f.absorbed = absorbed;
  f.suppress_until_ms = until;
  return f;
}

bool Contains(const std::vector<core::Identity>& ids, const core::Identity& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// Whether `ref` is the person `person` or one of the profiles it absorbed,
// incarnations included (a profile founded again under one of their ids
// since is someone else).
bool OfPerson(const ProfileRef& person, const std::vector<ProfileRef>& absorbed,
              const ProfileRef& ref) {
  return ref == person || Names(absorbed, ref);
}

// The slot's identity drops a label of the person; true if it held one.
bool DropLabel(Slot& slot, const ProfileRef& person, const std::vector<ProfileRef>& absorbed) {
  if (!slot.identity.has_value() || !OfPerson(person, absorbed, slot.identity->label)) {
    return false;
  }
  slot.identity.reset();
  return true;
}

// The identity's list of gone profiles no longer matters: it is labelled
// afresh, or nothing sent before the list was made can still arrive.
void ClearForgotten(Slot& slot) {
  slot.forgotten.clear();
  slot.forgotten_until_ms = 0;
}

// A link found a gone profile and a live one one person (an offer keyed by
// the survivor, or an invitation by the absorbed one): a survivor waiting
// to absorb the gone profile stops waiting (to `out`), and the linking
// identities are relinked to the live one from their own slots (to
// `relinks`).
void RelinkFromGone(const ProtocolMessage& m, const ProfileRef& gone,
                    std::vector<ProtocolMessage>& out, std::vector<ProtocolMessage>& relinks) {
  if (m.kind == MessageKind::kInvite) {
    out.push_back(Make(MessageKind::kDecline, {}, m.profile, m.other, m));
  }
  const ProfileRef& live = m.profile == gone ? m.other : m.profile;
  for (const core::Identity& id : m.linked) {
    relinks.push_back(Make(MessageKind::kStale, {id}, live, gone, m));
  }
}

}  // namespace

bool SurvivesOver(const ProfileRef& a, const ProfileRef& b) {
  if (a.rank != b.rank) return a.rank < b.rank;
  if (a.id != b.id) return a.id < b.id;
  return a.incarnation > b.incarnation;
}

bool Names(const std::vector<ProfileRef>& refs, const ProfileRef& ref) {
  return std::any_of(refs.begin(), refs.end(), [&](const ProfileRef& r) {
    return r.id == ref.id && r.incarnation == ref.incarnation;
  });
}

std::string ProtocolMessage::Key() const {
  switch (kind) {
    case MessageKind::kEvent:
    case MessageKind::kLink:
    case MessageKind::kBind:
    case MessageKind::kErase:
    case MessageKind::kStale:
    case MessageKind::kDropped:
      return core::ProfileIdFor(ids.front());  // the identity's slot
    case MessageKind::kForget:
      return ids.empty() ? other.id : core::ProfileIdFor(ids.front());
    case MessageKind::kInvite:
      return other.id;  // the absorbed profile decides
    case MessageKind::kApply:
    case MessageKind::kClaim:
    case MessageKind::kRelease:
    case MessageKind::kOffer:
    case MessageKind::kShip:
    case MessageKind::kDecline:
    case MessageKind::kErasePerson:
    case MessageKind::kForgotten:
    case MessageKind::kExpire:
      return profile.id;
  }
  return profile.id;
}

int32_t IdentityProtocol::PartitionOf(std::string_view key, int32_t partitions) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<int32_t>(h % static_cast<uint64_t>(partitions));
}

ProfileRef IdentityProtocol::FoundedBy(const core::Identity& id) const {
  return {core::ProfileIdFor(id), rules_.KindRank(id.kind)};
}

ProfileEntry& IdentityProtocol::ProfileOf(const ProfileRef& ref, Step& step) {
  if (!step.slot.profile.has_value()) {
    ProfileRef self = ref;
    self.incarnation = step.offset + 1;  // the same when the record runs again
    step.slot.profile = ProfileEntry{.self = std::move(self)};
    step.changed = true;
  }
  return *step.slot.profile;
}

void IdentityProtocol::Offer(const ProfileRef& a, const ProfileRef& b,
                             std::vector<core::Identity> linked, const ProtocolMessage& cause,
                             std::vector<ProtocolMessage>& out) {
  if (a == b) return;
  const bool a_survives = SurvivesOver(a, b);
  ProtocolMessage offer =
      Make(MessageKind::kOffer, {}, a_survives ? a : b, a_survives ? b : a, cause);
  offer.linked = std::move(linked);
  out.push_back(std::move(offer));
}

void IdentityProtocol::StopAwaiting(ProfileEntry& record, Step& step) {
  record.awaiting.reset();
  for (ProtocolMessage& m : record.deferred) step.out.push_back(std::move(m));
  record.deferred.clear();
  step.changed = true;
}

void IdentityProtocol::Handle(const ProtocolMessage& message, int64_t offset,
                              int64_t record_time_ms, PartitionState& state, ProfileSide& side,
                              std::vector<ProtocolMessage>& out) {
  const std::string key = message.Key();
  Slot& slot = state.slots[key];
  // Restored ahead of this record: it holds its effect, its sends went out
  // — all but a forget's acknowledgement, which waits for a purge (after
  // the changelog): owed again.
  if (slot.applied >= offset) {
    if (message.kind == MessageKind::kForget && message.expiry == 0) {
      Acknowledge(message, offset, key, state);
    }
    return;
  }
  Step step{message, key, slot, side, out, state, offset, record_time_ms};
  if (!slot.forgotten.empty() && slot.forgotten_until_ms != 0 &&
      record_time_ms >= slot.forgotten_until_ms) {
    ClearForgotten(slot);
    step.changed = true;
  }
  const bool erasing =
      message.kind >= MessageKind::kErase && message.kind <= MessageKind::kForgotten;
  // The identity's records are refused at once. A live profile here is
  // still to be erased (its erase-person is on its way: the erased
  // identity's slot is suppressed first): until then the records about it
  // run as usual, or a merge it waits for would never end.
  const bool about_identity =
      message.kind == MessageKind::kEvent || message.kind == MessageKind::kLink ||
      message.kind == MessageKind::kBind || message.kind == MessageKind::kStale ||
      message.kind == MessageKind::kDropped;
  const bool live = slot.profile.has_value() && !slot.profile->absorbed_into.has_value();
  // An expiring profile's records are the expiry's (an identity in its
  // slot erased meanwhile is not the expired person any more).
  const bool expiring = slot.expiry.has_value() && !about_identity;
  if (!erasing && !expiring && (about_identity || !live) &&
      slot.suppressed_until_ms > record_time_ms) {
    OnSuppressed(step);
  } else {
    Dispatch(step);
  }
  if (step.changed) {
    slot.applied = offset;
    state.changed.insert(key);
  }
}

void IdentityProtocol::Dispatch(Step& step) {
  const ProtocolMessage& message = step.m;
  if (step.slot.expiry.has_value() && WhileExpiring(step)) return;
  if (ForGone(step)) return;
  switch (message.kind) {
    case MessageKind::kEvent:
      OnEvent(step);
      break;
    case MessageKind::kApply:
      OnApply(message.profile, step);
      break;
    case MessageKind::kLink:
      OnLink(step);
      break;
    case MessageKind::kClaim:
      OnClaim(step);
      break;
    case MessageKind::kBind:
      OnBind(step);
      break;
    case MessageKind::kRelease:
      OnRelease(step);
      break;
    case MessageKind::kOffer:
      OnOffer(step);
      break;
    case MessageKind::kInvite:
      OnInvite(step);
      break;
    case MessageKind::kShip:
      OnShip(step);
      break;
    case MessageKind::kDecline:
      OnDecline(step);
      break;
    case MessageKind::kErase:
      OnErase(step);
      break;
    case MessageKind::kErasePerson:
      OnErasePerson(step);
      break;
    case MessageKind::kForget:
      OnForget(step);
      break;
    case MessageKind::kForgotten:
      OnForgotten(step);
      break;
    case MessageKind::kExpire:
      OnExpire(step);
      break;
    case MessageKind::kStale:
      OnStale(step);
      break;
    case MessageKind::kDropped:
      OnDropped(step);
      break;
  }
}

void IdentityProtocol::OnEvent(Step& step) {
  const ProtocolMessage& m = step.m;
  const core::Identity& anchor = m.ids.front();
  if (!m.other.id.empty() && step.slot.identity.has_value() &&
      step.slot.identity->label == m.other) {
    // Sent back by the profile this label named, which is gone: the label
    // was stale, and the event founds the person afresh.
    Forgot(step, m.other, {});
  }
  if (step.slot.identity.has_value() && step.slot.identity->label.id == step.key &&
      !(step.slot.profile.has_value() && step.slot.profile->self == step.slot.identity->label)) {
    // A label of this very slot's profile, naming an incarnation it no
    // longer holds: stale.
    Forgot(step, step.slot.identity->label, {});
  }
  if (!step.slot.identity.has_value()) {
    // A new identity founds its own profile, in its own slot.
    ClearForgotten(step.slot);
    ProfileEntry& record = ProfileOf(FoundedBy(anchor), step);
    step.slot.identity = IdentityEntry{record.absorbed_into.value_or(record.self)};
    if (record.absorbed_into.has_value()) {
      step.out.push_back(Make(MessageKind::kClaim, {anchor}, *record.absorbed_into, {}, m));
    } else if (!Contains(record.members, anchor)) {
      record.members.push_back(anchor);
    }
    step.changed = true;
  }
  const ProfileRef profile = step.slot.identity->label;
  if (profile.id == step.key) {
    OnApply(profile, step);
  } else {
    // The identities ride along: a forward corrects the anchor's label, an
    // expiry holding the apply founds the person afresh with all of them.
    ProtocolMessage apply = Make(MessageKind::kApply, m.ids, profile, m.other, m);
    apply.payload = m.payload;
    apply.alias = m.alias;
    step.out.push_back(std::move(apply));
  }
  const ProfileEntry* known = profile.id == step.key ? &*step.slot.profile : nullptr;
  for (size_t i = 1; i < m.ids.size(); ++i) {
    // Already a member of the anchor's profile (known when it is this slot's).
    if (known != nullptr && !known->absorbed_into.has_value() &&
        Contains(known->members, m.ids[i])) {
      continue;
    }
    step.out.push_back(Make(MessageKind::kLink, {m.ids[i]}, profile, {}, m));
  }
  if (!m.alias.empty() && !Contains(m.ids, m.alias.front())) {
    // An alias's previous id, as a user id; its slot knows whether it is
    // known as one, and links the anonymous id instead when not.
    ProtocolMessage link = Make(MessageKind::kLink, {m.alias.front()}, profile, {}, m);
    link.alias.assign(m.alias.begin() + 1, m.alias.end());
    step.out.push_back(std::move(link));
  }
}

void IdentityProtocol::OnApply(const ProfileRef& profile, Step& step) {
  ProfileEntry& record = *step.slot.profile;  // this incarnation's (ForGone, OnEvent)
  if (record.absorbed_into.has_value()) {
    // Merged away: the event follows its state to the survivor, and the
    // anchor's label, left behind by relinks that crossed, is corrected.
    const ProfileRef& survivor = *record.absorbed_into;
    ProtocolMessage apply = Make(MessageKind::kApply, step.m.ids, survivor, step.m.other, step.m);
    apply.payload = step.m.payload;
    apply.alias = step.m.alias;
    step.out.push_back(std::move(apply));
    if (step.slot.identity.has_value() && step.slot.identity->label == record.self) {
      step.slot.identity->label = survivor;  // this slot's own identity
      step.changed = true;
    }
    if (!step.m.ids.empty() && core::ProfileIdFor(step.m.ids.front()) != step.key) {
      step.out.push_back(
          Make(MessageKind::kLink, {step.m.ids.front()}, survivor, record.self, step.m));
    }
    return;
  }
  step.side.Apply(profile, step.m.payload);
  step.changed = true;
}

void IdentityProtocol::OnLink(Step& step) {
  const ProtocolMessage& m = step.m;
  std::optional<IdentityEntry>& entry = step.slot.identity;
  if (!entry.has_value()) {
    if (!m.alias.empty()) {
      // An alias's previous id unknown as a user id: it is an anonymous id.
      step.out.push_back(Make(MessageKind::kLink, {m.alias.front()}, m.profile, m.other, m));
      return;
    }
    // A new identity asks to join where its profile's record is.
    step.out.push_back(Make(MessageKind::kClaim, m.ids, m.profile, {}, m));
    return;
  }
  if (entry->label == m.profile) return;
  if (!m.other.id.empty() && entry->label == m.other) {
    // Its profile merged into m.profile, which holds it already.
    entry->label = m.profile;
    step.changed = true;
    return;
  }
  Offer(entry->label, m.profile, {m.ids.front()}, m, step.out);
}

void IdentityProtocol::OnClaim(Step& step) {
  const ProtocolMessage& m = step.m;
  ProfileEntry& record = *step.slot.profile;
  if (record.absorbed_into.has_value()) {
    step.out.push_back(Make(MessageKind::kClaim, m.ids, *record.absorbed_into, {}, m));
    return;
  }
  if (record.awaiting.has_value()) {
    record.deferred.push_back(m);  // counted once the merge is decided
    step.changed = true;
    return;
  }
  const core::Identity& id = m.ids.front();
  if (!Contains(record.members, id)) {
    const identity::IdentityRecord counted{record.self.id, record.members, record.merge_times_ms};
    std::string detail;
    if (std::optional<identity::RefusalRule> rule =
            resolver_.Violation({&counted}, {id}, m.time_ms, 0, m.explicit_alias, &detail)) {
      // The identity stays where it was: unknown, so its next event founds its own.
      // Its slot drops a label of this profile it may hold (a claim made
      // again after a release, or by an event labelling it first).
      step.side.Refused(record.self, FoundedBy(id), *rule, detail, m.time_ms);
      ProtocolMessage unlabel = Make(MessageKind::kStale, m.ids, {}, record.self, m);
      unlabel.refused = rule;
      unlabel.absorbed = record.absorbed;  // a label of one of them led here too
      step.out.push_back(std::move(unlabel));
      step.changed = true;
      return;
    }
    record.members.push_back(id);
    step.changed = true;
  }
  step.out.push_back(Make(MessageKind::kBind, m.ids, record.self, {}, m));
}

void IdentityProtocol::OnBind(Step& step) {
  const ProtocolMessage& m = step.m;
  std::optional<IdentityEntry>& entry = step.slot.identity;
  if (!entry.has_value()) {
    // A bind sent before the profile expired, arriving after its forget:
    // the profile is gone (and forgot this identity); nothing to undo.
    if (Names(step.slot.forgotten, m.profile)) return;
    entry = IdentityEntry{m.profile};
    ClearForgotten(step.slot);
    step.changed = true;
    return;
  }
  if (entry->label == m.profile) return;
  // Labelled meanwhile (by its own event, or another claim): it stays, the
  // claim is undone, and the two profiles are offered a merge.
  step.out.push_back(Make(MessageKind::kRelease, m.ids, m.profile, entry->label, m));
  Offer(entry->label, m.profile, m.ids, m, step.out);
}

void IdentityProtocol::OnRelease(Step& step) {
  const ProtocolMessage& m = step.m;
  ProfileEntry& record = *step.slot.profile;
  if (record.absorbed_into.has_value()) {
    // Its members moved with its state.
    step.out.push_back(Make(MessageKind::kRelease, m.ids, *record.absorbed_into, m.other, m));
    return;
  }
  auto it = std::find(record.members.begin(), record.members.end(), m.ids.front());
  if (it == record.members.end()) return;
  // Released in favour of this very profile, or of one merged into it
  // (which brought it again): it is a member.
  if (m.other == record.self || Names(record.absorbed, m.other)) return;
  record.members.erase(it);
  // The release travelled another path than the links of the identity
  // sent since (it may have been forwarded here after a merge), so it can
  // be older than the claim that labelled the identity with this profile;
  // and the profile it stays with may have expired meanwhile. Its slot,
  // the authority on its label, claims the profile again if so.
  step.out.push_back(Make(MessageKind::kDropped, m.ids, record.self, {}, m));
  step.changed = true;
}

void IdentityProtocol::OnOffer(Step& step) {
  const ProtocolMessage& m = step.m;
  ProfileEntry& record = *step.slot.profile;
  if (record.absorbed_into.has_value()) {
    // Merged away meanwhile: its survivor, better still, takes the offer.
    Offer(*record.absorbed_into, m.other, m.linked, m, step.out);
    return;
  }
  if (m.other == record.self || Names(record.absorbed, m.other)) return;  // merged already
  if (record.awaiting.has_value()) {
    record.deferred.push_back(m);
    step.changed = true;
    return;
  }
  // Wait for the absorbed profile to decide, holding everything that could
  // change what it decides on.
  record.awaiting = m.other;
  ProtocolMessage invite = Make(MessageKind::kInvite, record.members, record.self, m.other, m);
  invite.merge_times_ms = record.merge_times_ms;
  invite.linked = m.linked;
  step.out.push_back(std::move(invite));
  step.changed = true;
}

void IdentityProtocol::OnInvite(Step& step) {
  const ProtocolMessage& m = step.m;
  const ProfileRef& survivor = m.profile;
  ProfileEntry& record = *step.slot.profile;  // m.other's
  if (record.absorbed_into.has_value()) {
    // Merged elsewhere first: the survivor stops waiting, and the two
    // survivors are one person.
    step.out.push_back(Make(MessageKind::kDecline, {}, survivor, record.self, m));
    Offer(*record.absorbed_into, survivor, m.linked, m, step.out);
    return;
  }
  if (record.awaiting.has_value()) {
    record.deferred.push_back(m);  // decided once its own merge is
    step.changed = true;
    return;
  }
  const identity::IdentityRecord absorbed{record.self.id, record.members, record.merge_times_ms};
  const identity::IdentityRecord into{survivor.id, m.ids, m.merge_times_ms};
  std::string detail;
  if (std::optional<identity::RefusalRule> rule =
          resolver_.Violation({&into, &absorbed}, {}, m.time_ms, 1, m.explicit_alias, &detail)) {
    step.side.Refused(record.self, survivor, *rule, detail, m.time_ms);
    ProtocolMessage decline = Make(MessageKind::kDecline, {}, survivor, record.self, m);
    decline.refused = rule;
    decline.payload = detail;
    step.out.push_back(std::move(decline));
    step.changed = true;
    return;
  }
  // The forward pointer is set once and never moved.
  record.absorbed_into = survivor;
  std::vector<core::Identity> members = std::move(record.members);
  record.members.clear();
  step.changed = true;
  ProtocolMessage ship = Make(MessageKind::kShip, members, survivor, record.self, m);
  ship.payload = step.side.Take(record.self, survivor, m.time_ms);
  ship.merge_times_ms = std::move(record.merge_times_ms);
  record.merge_times_ms.clear();
  ship.absorbed = record.absorbed;
  step.out.push_back(std::move(ship));
  for (const core::Identity& id : members) {
    step.out.push_back(Make(MessageKind::kLink, {id}, survivor, record.self, m));
  }
}

void IdentityProtocol::OnShip(Step& step) {
  const ProtocolMessage& m = step.m;
  ProfileEntry& record = *step.slot.profile;
  if (record.absorbed_into.has_value()) {
    ProtocolMessage forward = m;
    forward.profile = *record.absorbed_into;
    step.out.push_back(std::move(forward));
    return;
  }
  if (Names(record.absorbed, m.other)) return;  // a shipment is merged once
  step.side.Merge(record.self, m.other, m.payload, m.time_ms);
  record.absorbed.push_back(m.other);
  for (const ProfileRef& ref : m.absorbed) {
    if (!Names(record.absorbed, ref)) record.absorbed.push_back(ref);
  }
  for (const core::Identity& id : m.ids) {
    if (!Contains(record.members, id)) record.members.push_back(id);
  }
  record.merge_times_ms.insert(record.merge_times_ms.end(), m.merge_times_ms.begin(),
                               m.merge_times_ms.end());
  std::sort(record.merge_times_ms.begin(), record.merge_times_ms.end());
  identity::NoteMerge(m.time_ms, record.merge_times_ms);
  step.changed = true;
  if (record.awaiting == m.other) StopAwaiting(record, step);
}

void IdentityProtocol::OnDecline(Step& step) {
  const ProtocolMessage& m = step.m;
  ProfileEntry& record = *step.slot.profile;
  if (m.refused.has_value()) {
    step.side.Refused(record.self, m.other, *m.refused, m.payload, m.time_ms);
    step.changed = true;
  }
  if (record.awaiting == m.other) StopAwaiting(record, step);
}

void IdentityProtocol::OnErase(Step& step) {
  const ProtocolMessage& m = step.m;
  Slot& slot = step.slot;
  slot.suppressed_until_ms = std::max(slot.suppressed_until_ms, m.suppress_until_ms);
  step.changed = true;
  step.state.purge_keys.push_back(step.key);
  if (!slot.identity.has_value()) {
    // Nobody holds the identity: suppressed all the same, nothing to erase.
    step.side.Erased({.request = m.payload});
    return;
  }
  ProtocolMessage person = Make(MessageKind::kErasePerson, m.ids, slot.identity->label, {}, m);
  person.payload = m.payload;
  person.suppress_until_ms = m.suppress_until_ms;
  step.out.push_back(std::move(person));
  slot.identity.reset();
}

void IdentityProtocol::OnErasePerson(Step& step) {
  const ProtocolMessage& m = step.m;
  Slot& slot = step.slot;
  if (slot.erasure.has_value()) {
    // Being erased, under an earlier request's receipt.
    step.side.Erased({.request = m.payload});
    return;
  }
  if (slot.profile->absorbed_into.has_value()) {
    ProtocolMessage forward = m;  // the person is the survivor now
    forward.profile = *slot.profile->absorbed_into;
    step.out.push_back(std::move(forward));
    return;
  }
  const ProfileEntry record = std::move(*slot.profile);
  slot.profile.reset();
  slot.suppressed_until_ms = std::max(slot.suppressed_until_ms, m.suppress_until_ms);
  step.changed = true;
  Erasure erasure{.request = m.payload,
                  .identities = static_cast<int64_t>(record.members.size()),
                  .profile_ids = {record.self.id}};
  for (const ProfileRef& ref : record.absorbed) erasure.profile_ids.push_back(ref.id);
  for (const std::string& id : erasure.profile_ids) step.side.Erase(id);
  // Every slot that may hold the person forgets them, this one included
  // (its old value leaves the disk before the receipt too).
  auto forget = [&](std::vector<core::Identity> ids, const std::string& slot_of) {
    step.out.push_back(
        Forget(std::move(ids), slot_of, record.self, record.absorbed, m.suppress_until_ms, m));
    ++erasure.pending;
  };
  for (const std::string& id : erasure.profile_ids) forget({}, id);
  for (const core::Identity& id : record.members) forget({id}, "");
  if (record.awaiting.has_value()) {
    // A merge into the person is in flight: the receipts wait for its
    // shipment (whose slots are then forgotten too) or its decline.
    erasure.awaiting = record.awaiting->id;
    ++erasure.pending;
  }
  // Held-back records: a survivor waiting for this profile stops waiting;
  // claims and offers to the person are dropped with them.
  for (const ProtocolMessage& held : record.deferred) {
    if (held.kind == MessageKind::kInvite) {
      step.out.push_back(Make(MessageKind::kDecline, {}, held.profile, record.self, held));
    }
  }
  slot.erasure = std::move(erasure);
}

void IdentityProtocol::OnForget(Step& step) {
  const ProtocolMessage& m = step.m;
  Slot& slot = step.slot;
  auto of_person = [&](const ProfileRef& ref) { return OfPerson(m.profile, m.absorbed, ref); };
  bool held = false;
  if (m.expiry != 0) {
    Forgot(step, m.profile, m.absorbed);  // the label, if it is the person's
  } else {
    held = DropLabel(slot, m.profile, m.absorbed);
  }
  if (slot.profile.has_value() &&
      (of_person(slot.profile->self) ||
       (slot.profile->absorbed_into.has_value() && of_person(*slot.profile->absorbed_into)))) {
    slot.profile.reset();
    held = true;
  }
  if (m.expiry != 0) {
    // An expiry's: the label goes, nothing is suppressed or purged, and
    // the answer goes at once (after every apply this slot sent before).
    step.changed = step.changed || held;
    ProtocolMessage done = Make(MessageKind::kForgotten, {}, m.profile, {}, m);
    done.expiry = m.expiry;
    step.out.push_back(std::move(done));
    return;
  }
  // A slot that meanwhile holds someone else keeps them, unsuppressed.
  if (held) slot.suppressed_until_ms = std::max(slot.suppressed_until_ms, m.suppress_until_ms);
  step.changed = true;
  Acknowledge(m, step.offset, step.key, step.state);
}

void IdentityProtocol::Acknowledge(const ProtocolMessage& forget, int64_t offset,
                                   const std::string& key, PartitionState& state) {
  state.purge_keys.push_back(key);
  state.after_purge.emplace_back(offset,
                                 Make(MessageKind::kForgotten, {}, forget.profile, {}, forget));
}

void IdentityProtocol::OnForgotten(Step& step) {
  // An expiry's answer with no expiry here: it ended (or restarted) already.
  if (!step.slot.erasure.has_value() || step.m.expiry != 0) return;
  ErasurePartDone(step);
}

void IdentityProtocol::OnExpire(Step& step) {
  Slot& slot = step.slot;
  // Merged away, erased, expiring, or a merge into it in flight (a link
  // of the person is recent): not now; its timer tries again.
  // A timer of an incarnation gone since (a retry left over) expires nothing.
  if (!slot.profile.has_value() || slot.profile->absorbed_into.has_value() ||
      slot.profile->awaiting.has_value() || slot.erasure.has_value() ||
      slot.profile->self != step.m.profile) {
    return;
  }
  if (!step.side.Expire(slot.profile->self, step.m.payload)) return;  // seen since
  const ProfileEntry record = std::move(*slot.profile);
  slot.profile.reset();
  step.changed = true;
  Expiry expiry{.id = step.offset,
                .self = record.self,
                .members = record.members,
                .absorbed = record.absorbed};
  // Every slot that may hold a label of the person drops it: the members'
  // and the absorbed profiles' (their forward pointers).
  auto forget = [&](std::vector<core::Identity> ids, const std::string& slot_of) {
    ProtocolMessage f = Forget(std::move(ids), slot_of, record.self, record.absorbed, 0, step.m);
    f.expiry = expiry.id;
    step.out.push_back(std::move(f));
    ++expiry.pending;
  };
  for (const ProfileRef& ref : record.absorbed) forget({}, ref.id);
  for (const core::Identity& id : record.members) forget({id}, "");
  if (expiry.pending > 0) slot.expiry = std::move(expiry);
}

bool IdentityProtocol::WhileExpiring(Step& step) {
  const ProtocolMessage& m = step.m;
  Expiry& expiry = *step.slot.expiry;
  switch (m.kind) {
    case MessageKind::kEvent:
    case MessageKind::kApply:
      // For the person (this is the expired profile's slot, and its
      // founding identity's): held, to found them afresh once no label
      // leads to the expired profile any more.
      expiry.held.push_back(m);
      step.changed = true;
      return true;
    case MessageKind::kInvite:
    case MessageKind::kOffer: {
      // A link found the expired profile and another one person: the
      // linking identity's label here is about to go, so once it has, it
      // is linked to the other profile again (as an event after single
      // mode's expiry links it) — by its own slot, so the claim follows
      // any release that slot sent before. A survivor waiting to absorb
      // the expired profile stops waiting.
      RelinkFromGone(m, m.kind == MessageKind::kInvite ? m.other : m.profile, step.out,
                     expiry.held);
      step.changed = step.changed || !m.linked.empty();
      return true;
    }
    case MessageKind::kForgotten:
      if (m.expiry == 0) return false;  // an erasure's
      if (m.expiry == expiry.id) ExpiryPartDone(step);
      return true;
    case MessageKind::kClaim: {
      // Not joined: the identity stays unknown, as after single mode's
      // expiry. It may already carry the expired profile's label (an
      // event labels an identity before its claim is decided), so it is
      // forgotten like a member, and the expiry waits for that too.
      ProtocolMessage f = Forget(m.ids, "", expiry.self, expiry.absorbed, 0, m);
      f.expiry = expiry.id;
      step.out.push_back(std::move(f));
      ++expiry.pending;
      step.changed = true;
      return true;
    }
    case MessageKind::kRelease:
    case MessageKind::kDecline:
    case MessageKind::kExpire:
      // About the expired profile: dropped. (A shipment never comes:
      // only a waiting profile is shipped to, and a waiting one does not
      // expire.)
    case MessageKind::kShip:
      return true;
    case MessageKind::kLink:
    case MessageKind::kBind:
    case MessageKind::kErase:
    case MessageKind::kForget:
    case MessageKind::kStale:
    case MessageKind::kDropped:
      return false;  // about the slot's identity entry: as usual
    case MessageKind::kErasePerson:
      // The person expired before the erasure found them: nobody to erase
      // (the asked identity's slot is suppressed already), and the held
      // events, a new person's, meet that suppression when sent again — as
      // in single mode, where the expiry came first.
      return false;
  }
  return false;
}

bool IdentityProtocol::ForGone(Step& step) {
  const ProtocolMessage& m = step.m;
  const ProfileRef* target = nullptr;  // the profile the record is for
  switch (m.kind) {
    case MessageKind::kApply:
    case MessageKind::kClaim:
    case MessageKind::kRelease:
    case MessageKind::kOffer:
    case MessageKind::kShip:
    case MessageKind::kDecline:
    case MessageKind::kErasePerson:
      target = &m.profile;
      break;
    case MessageKind::kInvite:
      target = &m.other;  // the absorbed profile decides
      break;
    default:
      return false;  // about the slot's identity, or matched by expiry or erasure id
  }
  if (step.slot.profile.has_value() && step.slot.profile->self == *target) return false;
  switch (m.kind) {
    case MessageKind::kApply: {
      // The label that sent the event here is stale: the event goes back
      // to its anchor, naming the gone profile, so the anchor drops exactly
      // that label and finds the person afresh, as an event after single
      // mode's expiry does.
      ProtocolMessage again = m;
      again.kind = MessageKind::kEvent;
      again.other = m.profile;
      again.profile = {};
      step.out.push_back(std::move(again));
      return true;
    }
    case MessageKind::kClaim:
      // The identity stays unknown here; a label of the gone profile it
      // may carry (an event labels before its claim is decided) goes.
      step.out.push_back(Make(MessageKind::kStale, m.ids, {}, m.profile, m));
      return true;
    case MessageKind::kOffer:
    case MessageKind::kInvite:
      // The survivor of an offer, or the absorbed profile of an invitation,
      // is gone: the linking identities belong with the other profile, as
      // single mode links them once the gone one is forgotten.
      RelinkFromGone(m, *target, step.out, step.out);
      return true;
    case MessageKind::kErasePerson:
      // Gone before the erasure found them: nobody to erase (the asked
      // identity's slot is suppressed already).
      step.side.Erased({.request = m.payload});
      return true;
    default:
      // Nothing to release or stop waiting for. A shipment never comes to
      // a gone profile: only a waiting survivor is shipped to, a waiting
      // profile does not expire, and an erased one refuses it (suppressed).
      return true;
  }
}

void IdentityProtocol::OnStale(Step& step) {
  if (step.m.refused.has_value()) {
    // Refused by a live profile: a label of it (or of one it absorbed)
    // goes, and nothing is remembered (a later bind of it is a real one).
    if (DropLabel(step.slot, step.m.other, step.m.absorbed)) step.changed = true;
    return;
  }
  Forgot(step, step.m.other, {});
  if (step.m.profile.id.empty()) return;
  // A claim whatever the label: it travels this slot's partition pair to
  // the profile (and its forwards) behind any release this slot sent
  // there before, so a member dropped by an older release is added back.
  // Its bind then labels the identity, or offers a merge with its label.
  step.out.push_back(Make(MessageKind::kClaim, step.m.ids, step.m.profile, {}, step.m));
}

void IdentityProtocol::OnDropped(Step& step) {
  const std::optional<IdentityEntry>& entry = step.slot.identity;
  if (!entry.has_value() || entry->label != step.m.profile) return;
  step.out.push_back(Make(MessageKind::kClaim, step.m.ids, step.m.profile, {}, step.m));
}

void IdentityProtocol::Forgot(Step& step, const ProfileRef& person,
                              const std::vector<ProfileRef>& absorbed) const {
  Slot& slot = step.slot;
  DropLabel(slot, person, absorbed);
  // Kept even when labelled with someone else: that label may go later,
  // and a bind for the gone profile may still be in flight then.
  if (!Names(slot.forgotten, person)) slot.forgotten.push_back(person);
  for (const ProfileRef& ref : absorbed) {
    if (!Names(slot.forgotten, ref)) slot.forgotten.push_back(ref);
  }
  if (record_horizon_ms_ > 0) slot.forgotten_until_ms = step.time_ms + record_horizon_ms_;
  step.changed = true;
}

void IdentityProtocol::ExpiryPartDone(Step& step) {
  Expiry& expiry = *step.slot.expiry;
  step.changed = true;
  if (--expiry.pending > 0) return;
  // Every label of the person is gone: the held events found them afresh,
  // each keyed by its anchor, as single mode treats an event after the
  // expiry; the held relinks (links found meanwhile) are sent again.
  for (ProtocolMessage& held : expiry.held) {
    if (held.kind == MessageKind::kEvent || held.kind == MessageKind::kApply) {
      held.kind = MessageKind::kEvent;
      held.profile = {};
      held.other = {};
    }
    step.out.push_back(std::move(held));
  }
  step.slot.expiry.reset();
}

void IdentityProtocol::ErasurePartDone(Step& step) {
  std::optional<Erasure>& erasure = step.slot.erasure;
  if (erasure->pending <= 0) return;
  step.changed = true;
  if (--erasure->pending > 0) return;
  step.side.Erased(*erasure);
  erasure.reset();
  // The receipt names the person's profile ids: purged once it is out.
  step.state.purge_keys.push_back(step.key);
}

void IdentityProtocol::OnSuppressed(Step& step) {
  const ProtocolMessage& m = step.m;
  switch (m.kind) {
    case MessageKind::kEvent:
    case MessageKind::kApply:
      step.side.Suppressed();
      return;
    case MessageKind::kBind:
      // The profile that accepted the identity drops it again.
      step.out.push_back(Make(MessageKind::kRelease, m.ids, m.profile, {}, m));
      return;
    case MessageKind::kInvite:
      // The absorbed profile is erased: its survivor stops waiting.
      step.out.push_back(Make(MessageKind::kDecline, {}, m.profile, m.other, m));
      return;
    case MessageKind::kDecline:
      // The merge the erased person was waiting for will not come.
      if (step.slot.erasure.has_value() && step.slot.erasure->awaiting == m.other.id) {
        step.slot.erasure->awaiting.clear();
        ErasurePartDone(step);
      }
      return;
    case MessageKind::kShip: {
      // A state shipped to an erased survivor never brings the person
      // back: it is dropped, and every slot it names forgets the person.
      std::vector<ProfileRef> gone = m.absorbed;
      gone.push_back(m.other);
      const int64_t until = step.slot.suppressed_until_ms;
      int64_t sent = 0;
      for (const ProfileRef& ref : gone) {
        step.side.Erase(ref.id);
        step.out.push_back(Forget({}, ref.id, m.profile, gone, until, m));
        ++sent;
      }
      for (const core::Identity& id : m.ids) {
        step.out.push_back(Forget({id}, "", m.profile, gone, until, m));
        ++sent;
      }
      if (step.slot.erasure.has_value()) {
        // Still being erased: the receipt waits for these too.
        Erasure& erasure = *step.slot.erasure;
        erasure.pending += sent;
        erasure.identities += static_cast<int64_t>(m.ids.size());
        for (const ProfileRef& ref : gone) erasure.profile_ids.push_back(ref.id);
        step.changed = true;
        if (erasure.awaiting == m.other.id) {
          erasure.awaiting.clear();
          ErasurePartDone(step);  // the shipment awaited: its forgets now count instead
        }
      }
      return;
    }
    case MessageKind::kLink:
      // An alias's previous id erased as a user id: it is unknown as one,
      // so the anonymous id is linked instead, as single mode looks it up.
      if (!m.alias.empty()) {
        step.out.push_back(Make(MessageKind::kLink, {m.alias.front()}, m.profile, m.other, m));
      }
      return;
    default:
      return;  // claims, offers, releases: the person is gone
  }
}

}  // namespace profiled::cluster
