// IdentityProtocol: what one partition of the internal repartition topic
// does with each record in partitioned mode — resolve an event's anchor,
// found profiles, link identities, merge profiles, forward to survivors,
// ship absorbed state (docs/scaling.md, "Identity across partitions").
// Pure: state and a record in, state and the records to send out; the task
// around it reads and writes the store, produces, and de-duplicates
// re-sent records by origin (origin_filter.h) before they get here.
//
// Every record is keyed by a profile id (core::ProfileIdFor of an
// identity), and partition PartitionOf(key) owns: the graph entry of each
// identity x whose ProfileIdFor(x) is a key of it, and the record and
// state of each profile whose id is — so a profile lives with its founding
// identity's entry, and a merge's record and state travel together.
//
//   IdentityProtocol protocol(rules, partition, partitions);
//   std::vector<ProtocolMessage> out;
//   protocol.Handle(record, offset, state, side, out);   // for each admitted record
//   // commit state (and side's profiles) with the batch; then send `out`
//
// A record reads and changes only the slot of its key, and what it sends
// is made from that slot alone, so a batch run again after a crash sends
// the same records (with the same origins, which receivers skip). A slot
// restored from a changelog ahead of the batch being run again (`applied`
// at or past the record's offset) already holds the record's effect and
// its sends went out (a batch's records are sent before its changelog):
// the record is skipped there.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "profiled/core/profile.h"
#include "profiled/identity/identity_rules.h"

namespace profiled::cluster {

// A profile id and its founding identity's kind rank: all the survivor
// rule (decision 55) needs, so any partition can compare two profiles.
struct ProfileRef {
  std::string id;
  size_t rank = 0;
  bool operator==(const ProfileRef&) const = default;
};
// The survivor order: the better (smaller) founding rank, then the smaller
// id. Total, and the same wherever it is evaluated.
bool SurvivesOver(const ProfileRef& a, const ProfileRef& b);

enum class MessageKind {
  kEvent,   // from route: an accepted event, keyed by its anchor
  kApply,   // an event resolved to `profile`, keyed by it
  kLink,    // ids[0] belongs with `profile` (replacing `absorbed`, when set)
  kMember,  // ids[0] is now labelled `profile`: add it to the record
  kMerge,   // `absorbed` merges into `profile`; keyed by the absorbed id
  kShip,    // the absorbed profile's state (`payload`) and members (`ids`)
};

struct ProtocolMessage {
  MessageKind kind = MessageKind::kEvent;
  // kEvent: the event's identities, ranked, the anchor first. kLink and
  // kMember: the one identity. kShip: the absorbed profile's members.
  std::vector<core::Identity> ids;
  ProfileRef profile;   // the target (kApply, kLink, kMember) or survivor (kMerge, kShip)
  ProfileRef absorbed;  // kMerge, kShip; kLink: the label it replaces (empty id: none)
  std::string payload;  // kEvent, kApply: the event; kShip: the absorbed state

  // The profile id the record is keyed by; it goes to PartitionOf(Key()).
  std::string Key() const;
  bool operator==(const ProtocolMessage&) const = default;
};

// Where an identity's profile is: the label it resolves to.
struct IdentityEntry {
  ProfileRef label;
};

// A profile's identity side: its members (the identities labelled with it)
// and, once merged into another, where it went (a forward pointer, set
// once: later records for it follow the pointer).
struct ProfileEntry {
  ProfileRef self;
  std::vector<core::Identity> members;
  std::optional<ProfileRef> absorbed_into;
  std::vector<std::string> absorbed_ids;  // shipments merged in, each once
};

// Everything under one key h: the graph entry of the identity x with
// ProfileIdFor(x) = h, and profile h's record (its state is the
// ProfileSide's, under the same key). A record changes one slot only —
// effects on other slots are records sent to them — and a slot is one
// changelog record, so a slot restored from a changelog is either before a
// record's effect or holds all of it.
struct Slot {
  std::optional<IdentityEntry> identity;
  std::optional<ProfileEntry> profile;
  int64_t applied = -1;  // offset of the last record that changed the slot
};

// The slots of one partition that a batch touches, and which changed (what
// the batch writes and puts on the changelog).
struct PartitionState {
  absl::flat_hash_map<std::string, Slot> slots;
  absl::flat_hash_set<std::string> changed;
};

// The profile states the protocol moves; the apply side implements it. Each
// call changes the state of a profile whose ProfileEntry is written with
// it, under the same key.
class ProfileSide {
 public:
  virtual ~ProfileSide() = default;
  // Applies an event (kEvent/kApply payload) to the profile, created if new.
  virtual void Apply(const ProfileRef& profile, const std::string& event) = 0;
  // Removes the profile's state and returns it, to be shipped.
  virtual std::string Take(const ProfileRef& profile) = 0;
  // Merges a shipped state into the survivor: its merged update, then the
  // absorbed profile's merge notice and tombstone, in the output's order.
  virtual void Merge(const ProfileRef& survivor, const ProfileRef& absorbed,
                     const std::string& state) = 0;
};

class IdentityProtocol {
 public:
  IdentityProtocol(const identity::IdentityRules& rules, int32_t partition, int32_t partitions)
      : rules_(rules), partition_(partition), partitions_(partitions) {}

  // Handles the record at `offset` of this partition (its key's slot,
  // created when absent); the records to send are appended to `out`, in
  // order.
  void Handle(const ProtocolMessage& message, int64_t offset, PartitionState& state,
              ProfileSide& side, std::vector<ProtocolMessage>& out);

  // The profile an identity founds: its id and rank.
  ProfileRef FoundedBy(const core::Identity& id) const;

  // The partition owning `key`: FNV-1a of its bytes, stable across
  // processes and versions (producers pick partitions explicitly with it).
  static int32_t PartitionOf(std::string_view key, int32_t partitions);

 private:
  // One record's handling: its slot, and what it sends.
  struct Step {
    const std::string& key;
    Slot& slot;
    ProfileSide& side;
    std::vector<ProtocolMessage>& out;
    bool changed = false;
  };
  void OnEvent(const ProtocolMessage& m, Step& step);
  void OnApply(const ProfileRef& profile, const std::string& event, Step& step);
  void OnLink(const core::Identity& id, const ProfileRef& profile, const ProfileRef& replaces,
              Step& step);
  void OnMember(const core::Identity& id, const ProfileRef& profile, Step& step);
  void OnMerge(const ProfileRef& absorbed, const ProfileRef& survivor, Step& step);
  void OnShip(const ProtocolMessage& m, Step& step);
  // The slot's profile record, created when absent.
  static ProfileEntry& ProfileOf(const ProfileRef& ref, Step& step);

  const identity::IdentityRules& rules_;
  int32_t partition_;
  int32_t partitions_;
};

}  // namespace profiled::cluster
