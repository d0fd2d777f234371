// IdentityProtocol: what one partition of the internal repartition topic
// does with each record in partitioned mode — resolve an event's anchor,
// found profiles, link identities and merge profiles under the guardrails,
// forward to survivors, ship absorbed state (docs/scaling.md, "Identity
// across partitions"). Pure: state and a record in, state and the records
// to send out; the task around it reads and writes the store, produces, and
// de-duplicates re-sent records by origin (origin_filter.h) before they get
// here.
//
// Every record is keyed by a profile id (core::ProfileIdFor of an
// identity), and partition PartitionOf(key) owns the slot of each of its
// keys: the graph entry of the identity x with ProfileIdFor(x) = key, and
// the record and state of profile `key` — so a profile lives with its
// founding identity's entry, and a merge's record and state travel
// together.
//
//   IdentityProtocol protocol(rules);
//   std::vector<ProtocolMessage> out;
//   protocol.Handle(record, offset, time, state, side, out);   // each admitted record
//   // commit state (and side's profiles) with the batch; then send `out`
//
// A record reads and changes only the slot of its key, and what it sends
// is made from that slot alone, so a batch run again after a crash sends
// the same records (with the same origins, which receivers skip). A slot
// restored from a changelog ahead of the batch being run again (`applied`
// at or past the record's offset) already holds the record's effect and
// its sends went out (a batch's records are sent before its changelog):
// the record is skipped there.
//
// Guardrails are decided exactly: a link where the profile's record is
// (`claim`), a merge by the absorbed profile holding the survivor's record
// (`invite`) while the survivor waits, deferring claims and offers until
// the shipment or the refusal arrives. A survivor only ever waits for a
// worse profile, so waits end.
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
#include "profiled/identity/resolver.h"

namespace profiled::cluster {

// A profile id and its founding identity's kind rank: all the survivor
// rule (decision 55) needs, so any partition can compare two profiles.
// After a retention expiry the same id can be founded again, so a
// reference also names its incarnation: the offset (+1) of the record
// that created the profile's slot record. A record naming another
// incarnation than the slot's is for a gone profile (docs/scaling.md,
// "Incarnations").
struct ProfileRef {
  std::string id;
  size_t rank = 0;
  int64_t incarnation = 0;
  bool operator==(const ProfileRef&) const = default;
};
// The survivor order: the better (smaller) founding rank, then the smaller
// id, then the newer incarnation. Total, and the same wherever it is
// evaluated.
bool SurvivesOver(const ProfileRef& a, const ProfileRef& b);
// Whether `refs` names `ref` (id and incarnation; an absorbed profile's
// rank is not kept).
bool Names(const std::vector<ProfileRef>& refs, const ProfileRef& ref);

enum class MessageKind {
  kEvent,    // from route: an accepted event, keyed by its anchor
  kApply,    // an event resolved to `profile`
  kLink,     // ids[0] belongs with `profile` (replacing the label `other`, when set)
  kClaim,    // may ids[0] join `profile`? (its guardrails)
  kBind,     // ids[0] joined `profile`
  kRelease,  // ids[0] stays with `other`, not `profile`: drop the member (unless via `other`)
  kOffer,    // `other` and `profile` are one person; keyed by the survivor
  kInvite,   // the survivor `profile` (its members and merges carried) waits for `other`
  kShip,     // `other`, absorbed: its state, members and merges
  kDecline,  // `other` did not merge into `profile` (refused, or merged elsewhere)
  // Erasure (docs/scaling.md, "Erasure and consent across partitions"):
  kErase,        // from route: erase the person ids[0] resolves to (payload: the request)
  kErasePerson,  // erase `profile`, the person (payload: the request)
  kForget,       // the slot of ids[0] (or of `other`, when no id) drops the person `profile`
                 // and the profiles it absorbed (absorbed), then acknowledges after a purge
  kForgotten,    // to `profile`, the erasure's coordinator: one forget done and purged
  // Retention (docs/scaling.md, "Retention TTL"): from a timer, to the
  // profile's slot, with what the timer saw in `payload` (the side checks
  // nothing changed since). kForget and kForgotten carrying `expiry` are
  // that expiry's: a label dropped, answered at once, no suppression.
  kExpire,
  // To the slot of ids[0], whose label `other` may name a gone profile
  // (docs/scaling.md, "Incarnations"): that label goes; then, when
  // `profile` is set, ids[0] claims `profile` (a link that ensures
  // membership, sent after any release this slot sent before). With
  // `refused`: the live profile `other` refused its claim; a label of it
  // (or of one it absorbed: `absorbed`) goes, not remembered as gone.
  kStale,
  // To the slot of ids[0]: `profile` dropped it from its members (a
  // release, which may be older than the link that labelled it there):
  // still labelled `profile`, it claims it again.
  kDropped,
};

struct ProtocolMessage {
  MessageKind kind = MessageKind::kEvent;
  // kEvent, kApply: the event's identities, ranked, the anchor first (an
  // apply's anchor lets a forward correct its label; all of them let an
  // apply held by an expiry found the person afresh). kLink to kRelease: the one
  // identity. kInvite: the survivor's members. kShip: the absorbed
  // profile's members.
  std::vector<core::Identity> ids;
  ProfileRef profile;  // the target, or the survivor of a merge
  // The absorbed profile of a merge; kLink: the label replaced; kEvent,
  // kApply: a gone profile that sent the event back (its label is stale).
  ProfileRef other;
  // kEvent, kApply: the event. kShip: the absorbed state. kDecline: why.
  std::string payload;
  int64_t time_ms = 0;  // the causing event's time: merge-rate windows, audit
  bool explicit_alias = false;
  std::vector<int64_t> merge_times_ms;  // kInvite: the survivor's; kShip: the absorbed one's
  // kShip: what the absorbed profile had absorbed; kForget: the person's.
  std::vector<ProfileRef> absorbed;
  std::optional<identity::RefusalRule> refused;  // kDecline: the rule, when refused
  int64_t suppress_until_ms = 0;                 // kErase to kForget: suppressed until (wall ms)
  // An alias's previous id (docs/identity.md: looked up as a user id, then
  // as an anonymous id). kEvent: both, in that order. kLink: the identity
  // to link instead when ids[0] is unknown.
  std::vector<core::Identity> alias;
  int64_t expiry = 0;  // kForget, kForgotten: the expiry's id (0: an erasure's)
  // kOffer, kInvite: the identities whose link found the two profiles one
  // person (an expiring profile links them to the other one again).
  std::vector<core::Identity> linked;

  // The profile id the record is keyed by; it goes to PartitionOf(Key()).
  std::string Key() const;
  bool operator==(const ProtocolMessage&) const = default;
};

// Where an identity's profile is: the label it resolves to.
struct IdentityEntry {
  ProfileRef label;
  bool operator==(const IdentityEntry&) const = default;
};

// A profile's identity side: its members (the identities labelled with it,
// and those it claimed), recent merges, and once merged into another, where
// it went (a forward pointer, set once: later records follow it).
struct ProfileEntry {
  ProfileRef self;
  std::vector<core::Identity> members;
  std::vector<int64_t> merge_times_ms;
  std::optional<ProfileRef> absorbed_into;
  // Every profile merged into this one, directly or through others: a
  // shipment is merged once, and a release for a member that came with
  // one of them keeps it.
  std::vector<ProfileRef> absorbed;
  // While a merge into this profile is decided: the profile awaited, and
  // the claims, offers and invitations held back until it is.
  std::optional<ProfileRef> awaiting;
  std::vector<ProtocolMessage> deferred;
  // The profile's merge audit (serialized MergeRecords, oldest first), kept
  // by the apply side — the protocol only carries it — and how many older
  // records it let go (docs/scaling.md, merge audit).
  std::vector<std::string> audit;
  int64_t audit_dropped = 0;
  bool operator==(const ProfileEntry&) const = default;
};

// Everything under one key h: the graph entry of the identity x with
// ProfileIdFor(x) = h, and profile h's record (its state is the
// ProfileSide's, under the same key). A record changes one slot only —
// effects on other slots are records sent to them — and a slot is one
// changelog record, so a slot restored from a changelog is either before a
// record's effect or holds all of it.
// An erasure this slot coordinates (the erased profile's slot): the
// request, the forgets not yet acknowledged, and what the receipt states.
struct Erasure {
  std::string request;  // profiled.v1.EraseRequest bytes
  int64_t pending = 0;
  int64_t identities = 0;
  std::vector<std::string> profile_ids;  // the person and the ids merged into it
  // A profile the erased one was waiting to absorb: its shipment (or
  // decline) is still to come and counts as one pending.
  std::string awaiting;
  bool operator==(const Erasure&) const = default;
};

// A retention expiry this slot coordinates (the expired profile's slot):
// the forgets not yet answered, whom they forget, and the events for the
// profile held meanwhile, sent again as new events once every label of
// the person is gone.
struct Expiry {
  int64_t id = 0;  // the kExpire record's offset
  int64_t pending = 0;
  ProfileRef self;
  std::vector<core::Identity> members;
  std::vector<ProfileRef> absorbed;
  std::vector<ProtocolMessage> held;  // events and applies, and links to send again
  bool operator==(const Expiry&) const = default;
};

struct Slot {
  std::optional<IdentityEntry> identity;
  std::optional<ProfileEntry> profile;
  int64_t applied = -1;  // offset of the last record that changed the slot
  // An erased person's slot refuses their identity and profile until then
  // (wall ms, compared with each record's timestamp).
  int64_t suppressed_until_ms = 0;
  std::optional<Erasure> erasure;
  std::optional<Expiry> expiry;
  // The gone profiles (expired, by incarnation) an expiry or a stale
  // record told this identity of: a bind for one of them still in flight
  // (sent before the expiry, on another partition pair than its forget)
  // must not label it. Dropped once the identity is labelled afresh
  // (founded, or bound to a live profile), or when no record sent before
  // can still arrive (wall ms; 0: kept).
  std::vector<ProfileRef> forgotten;
  int64_t forgotten_until_ms = 0;
  bool operator==(const Slot&) const = default;
};

// The slots of one partition that a batch touches, and which changed (what
// the batch writes and puts on the changelog).
struct PartitionState {
  absl::flat_hash_map<std::string, Slot> slots;
  absl::flat_hash_set<std::string> changed;
  // Erasure: slots whose old values must leave this partition's disk, and
  // the records to send only once they have (acknowledgements), each with
  // the offset of the forget it answers.
  std::vector<std::string> purge_keys;
  std::vector<std::pair<int64_t, ProtocolMessage>> after_purge;
};

// The profile states the protocol moves, and its audit; the apply side
// implements it. Each call concerns a profile whose slot is written with it.
class ProfileSide {
 public:
  virtual ~ProfileSide() = default;
  // Applies an event (kEvent/kApply payload) to the profile, created if new.
  virtual void Apply(const ProfileRef& profile, const std::string& event) = 0;
  // Removes the absorbed profile's state and returns it, to be shipped.
  virtual std::string Take(const ProfileRef& absorbed, const ProfileRef& survivor,
                           int64_t time_ms) = 0;
  // Merges a shipped state into the survivor: its merged update, then the
  // absorbed profile's merge notice and tombstone, in the output's order.
  virtual void Merge(const ProfileRef& survivor, const ProfileRef& absorbed,
                     const std::string& state, int64_t time_ms) = 0;
  // A link or merge refused by a guardrail, for the profile's audit.
  virtual void Refused(const ProfileRef& profile, const ProfileRef& other,
                       identity::RefusalRule rule, const std::string& detail, int64_t time_ms) = 0;
  // Erasure: the profile's state is deleted (when held) and its tombstone
  // published; an erased person's record was refused; an erasure is done
  // (every slot that held the person purged): its receipt.
  virtual void Erase(const std::string& profile_id) = 0;
  virtual void Suppressed() = 0;
  virtual void Erased(const Erasure& erasure) = 0;
  // Retention: the profile expires if `seen` (what its timer saw, the
  // kExpire payload) still holds — then its state is deleted and its
  // tombstone published — and the call returns true; false when it
  // changed since (an event arrived: its timer is set again).
  virtual bool Expire(const ProfileRef& profile, const std::string& seen) = 0;
};

class IdentityProtocol {
 public:
  // `record_horizon_ms`: how long the internal topics keep a record (their
  // retention), after which no record sent before can still arrive; 0:
  // for ever.
  explicit IdentityProtocol(const identity::IdentityRules& rules, int64_t record_horizon_ms = 0)
      : rules_(rules), resolver_(rules), record_horizon_ms_(record_horizon_ms) {}

  // Handles the record at `offset` of this partition (its key's slot,
  // created when absent), stored at `record_time_ms` (its Kafka timestamp:
  // suppressions expire by it, the same when the record is run again); the
  // records to send are appended to `out`, in order.
  void Handle(const ProtocolMessage& message, int64_t offset, int64_t record_time_ms,
              PartitionState& state, ProfileSide& side, std::vector<ProtocolMessage>& out);

  // The profile an identity founds: its id and rank.
  ProfileRef FoundedBy(const core::Identity& id) const;

  // The partition owning `key`: FNV-1a of its bytes, stable across
  // processes and versions (producers pick partitions explicitly with it).
  static int32_t PartitionOf(std::string_view key, int32_t partitions);

 private:
  // One record's handling: its slot, and what it sends.
  struct Step {
    const ProtocolMessage& m;
    const std::string& key;
    Slot& slot;
    ProfileSide& side;
    std::vector<ProtocolMessage>& out;
    PartitionState& state;
    int64_t offset;
    int64_t time_ms;  // the record's timestamp
    bool changed = false;
  };
  void Dispatch(Step& step);
  void OnEvent(Step& step);
  void OnApply(const ProfileRef& profile, Step& step);
  void OnLink(Step& step);
  void OnClaim(Step& step);
  void OnBind(Step& step);
  void OnRelease(Step& step);
  void OnOffer(Step& step);
  void OnInvite(Step& step);
  void OnShip(Step& step);
  void OnDecline(Step& step);
  void OnErase(Step& step);
  void OnErasePerson(Step& step);
  void OnForget(Step& step);
  void OnForgotten(Step& step);
  void OnExpire(Step& step);
  void OnStale(Step& step);
  void OnDropped(Step& step);
  // A record at a slot whose profile is expiring: held, dropped or
  // answered (docs/scaling.md, "Retention TTL"); false: handled as usual.
  bool WhileExpiring(Step& step);
  // A record naming a profile incarnation this slot does not hold (expired;
  // or erased, its suppression over; perhaps founded again since): nothing
  // is created for a gone profile, and what pointed at it is corrected.
  // False: the slot holds it (or the record names none): handled as usual.
  bool ForGone(Step& step);
  // One of the expiry's forgets answered: at zero, the held events again.
  static void ExpiryPartDone(Step& step);
  // One pending part of the slot's erasure done: at zero, the receipts.
  static void ErasurePartDone(Step& step);
  // A forget's acknowledgement, owed once `key` is purged from the partition.
  static void Acknowledge(const ProtocolMessage& forget, int64_t offset, const std::string& key,
                          PartitionState& state);
  // A record for an erased person's slot, still suppressed: refused, and
  // what a refusal owes others (a decline, a release, forgets).
  void OnSuppressed(Step& step);

  // The slot's profile record, created when absent.
  static ProfileEntry& ProfileOf(const ProfileRef& ref, Step& step);
  // Sends `offer` for two profiles of one person, to the better one.
  static void Offer(const ProfileRef& a, const ProfileRef& b, std::vector<core::Identity> linked,
                    const ProtocolMessage& cause, std::vector<ProtocolMessage>& out);
  // Ends a wait: sends the held-back records to this slot again.
  static void StopAwaiting(ProfileEntry& record, Step& step);

  // The identity's label goes, and the gone profiles it named are
  // remembered while it has none (Slot::forgotten).
  void Forgot(Step& step, const ProfileRef& person, const std::vector<ProfileRef>& absorbed) const;

  const identity::IdentityRules& rules_;
  identity::Resolver resolver_;
  int64_t record_horizon_ms_;
};

}  // namespace profiled::cluster
