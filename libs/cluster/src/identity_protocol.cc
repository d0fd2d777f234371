#include "profiled/cluster/identity_protocol.h"

#include <algorithm>

#include "profiled/core/profile_id.h"

namespace profiled::cluster {

bool SurvivesOver(const ProfileRef& a, const ProfileRef& b) {
  if (a.rank != b.rank) return a.rank < b.rank;
  return a.id < b.id;
}

std::string ProtocolMessage::Key() const {
  switch (kind) {
    case MessageKind::kEvent:
    case MessageKind::kLink:
      return core::ProfileIdFor(ids.front());  // the identity's owner
    case MessageKind::kMerge:
      return absorbed.id;  // the absorbed profile's owner ships it
    case MessageKind::kApply:
    case MessageKind::kMember:
    case MessageKind::kShip:
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
    step.slot.profile = ProfileEntry{.self = ref};
    step.changed = true;
  }
  return *step.slot.profile;
}

void IdentityProtocol::Handle(const ProtocolMessage& message, int64_t offset, PartitionState& state,
                              ProfileSide& side, std::vector<ProtocolMessage>& out) {
  const std::string key = message.Key();
  Slot& slot = state.slots[key];
  // Restored ahead of this record: it holds its effect, its sends went out.
  if (slot.applied >= offset) return;
  Step step{key, slot, side, out};
  switch (message.kind) {
    case MessageKind::kEvent:
      OnEvent(message, step);
      break;
    case MessageKind::kApply:
      OnApply(message.profile, message.payload, step);
      break;
    case MessageKind::kLink:
      OnLink(message.ids.front(), message.profile, message.absorbed, step);
      break;
    case MessageKind::kMember:
      OnMember(message.ids.front(), message.profile, step);
      break;
    case MessageKind::kMerge:
      OnMerge(message.absorbed, message.profile, step);
      break;
    case MessageKind::kShip:
      OnShip(message, step);
      break;
  }
  if (step.changed) {
    slot.applied = offset;
    state.changed.insert(key);
  }
}

void IdentityProtocol::OnEvent(const ProtocolMessage& m, Step& step) {
  const core::Identity& anchor = m.ids.front();
  if (!step.slot.identity.has_value()) {
    // A new identity founds its own profile, in its own slot.
    const ProfileRef founded = FoundedBy(anchor);
    ProfileEntry& record = ProfileOf(founded, step);
    step.slot.identity = IdentityEntry{record.absorbed_into.value_or(founded)};
    if (record.absorbed_into.has_value()) {
      step.out.push_back({MessageKind::kMember, {anchor}, *record.absorbed_into, {}, {}});
    } else if (std::find(record.members.begin(), record.members.end(), anchor) ==
               record.members.end()) {
      record.members.push_back(anchor);
    }
    step.changed = true;
  }
  const ProfileRef profile = step.slot.identity->label;
  if (profile.id == step.key) {
    OnApply(profile, m.payload, step);
  } else {
    step.out.push_back({MessageKind::kApply, {}, profile, {}, m.payload});
  }
  const ProfileEntry* known = profile.id == step.key ? &*step.slot.profile : nullptr;
  for (size_t i = 1; i < m.ids.size(); ++i) {
    const core::Identity& id = m.ids[i];
    // Already a member of the anchor's profile (known when it is this slot's).
    if (known != nullptr && !known->absorbed_into.has_value() &&
        std::find(known->members.begin(), known->members.end(), id) != known->members.end()) {
      continue;
    }
    step.out.push_back({MessageKind::kLink, {id}, profile, {}, {}});
  }
}

void IdentityProtocol::OnApply(const ProfileRef& profile, const std::string& event, Step& step) {
  ProfileEntry& record = ProfileOf(profile, step);
  if (record.absorbed_into.has_value()) {
    // Merged away: the event follows its state to the survivor.
    step.out.push_back({MessageKind::kApply, {}, *record.absorbed_into, {}, event});
    return;
  }
  step.side.Apply(profile, event);
  step.changed = true;
}

void IdentityProtocol::OnLink(const core::Identity& id, const ProfileRef& profile,
                              const ProfileRef& replaces, Step& step) {
  std::optional<IdentityEntry>& entry = step.slot.identity;
  if (!entry.has_value() || entry->label == replaces) {
    entry = IdentityEntry{profile};
    step.changed = true;
    step.out.push_back({MessageKind::kMember, {id}, profile, {}, {}});
    return;
  }
  const ProfileRef current = entry->label;
  if (current == profile) return;
  // One person, two profiles: the worse merges into the better. The label
  // moves when the merge relinks the absorbed profile's members.
  const bool keep_current = SurvivesOver(current, profile);
  step.out.push_back({MessageKind::kMerge,
                      {},
                      keep_current ? current : profile,
                      keep_current ? profile : current,
                      {}});
}

void IdentityProtocol::OnMember(const core::Identity& id, const ProfileRef& profile, Step& step) {
  ProfileEntry& record = ProfileOf(profile, step);
  if (record.absorbed_into.has_value()) {
    // Labelled with a profile merged away meanwhile: relink it.
    step.out.push_back({MessageKind::kLink, {id}, *record.absorbed_into, profile, {}});
    return;
  }
  if (std::find(record.members.begin(), record.members.end(), id) != record.members.end()) return;
  record.members.push_back(id);
  step.changed = true;
}

void IdentityProtocol::OnMerge(const ProfileRef& absorbed, const ProfileRef& survivor, Step& step) {
  if (survivor == absorbed) return;
  if (!SurvivesOver(survivor, absorbed)) {
    step.out.push_back({MessageKind::kMerge, {}, absorbed, survivor, {}});
    return;
  }
  ProfileEntry& record = ProfileOf(absorbed, step);
  if (record.absorbed_into.has_value()) {
    // Already merged, maybe elsewhere: the two survivors are one person too.
    const ProfileRef other = *record.absorbed_into;
    if (other == survivor) return;
    const bool keep_other = SurvivesOver(other, survivor);
    step.out.push_back({MessageKind::kMerge,
                        {},
                        keep_other ? other : survivor,
                        keep_other ? survivor : other,
                        {}});
    return;
  }
  // The forward pointer is set once and never moved.
  record.absorbed_into = survivor;
  std::vector<core::Identity> members = std::move(record.members);
  record.members.clear();
  step.changed = true;
  step.out.push_back({MessageKind::kShip, members, survivor, absorbed, step.side.Take(absorbed)});
  for (const core::Identity& id : members) {
    step.out.push_back({MessageKind::kLink, {id}, survivor, absorbed, {}});
  }
}

void IdentityProtocol::OnShip(const ProtocolMessage& m, Step& step) {
  ProfileEntry& record = ProfileOf(m.profile, step);
  if (record.absorbed_into.has_value()) {
    ProtocolMessage forward = m;
    forward.profile = *record.absorbed_into;
    step.out.push_back(std::move(forward));
    return;
  }
  if (std::find(record.absorbed_ids.begin(), record.absorbed_ids.end(), m.absorbed.id) !=
      record.absorbed_ids.end()) {
    return;  // a shipment is merged once
  }
  step.side.Merge(m.profile, m.absorbed, m.payload);
  record.absorbed_ids.push_back(m.absorbed.id);
  for (const core::Identity& id : m.ids) {
    if (std::find(record.members.begin(), record.members.end(), id) == record.members.end()) {
      record.members.push_back(id);
    }
  }
  step.changed = true;
}

}  // namespace profiled::cluster
