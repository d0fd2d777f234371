// Resolver: decides which profile an event belongs to, which profiles merge,
// and which identities get linked — under the guardrails. Pure: it reads the
// identity graph and its records through IdentityView and returns a decision
// ApplyResolution carries out on the identity side (and the pipeline on the
// profiles, recording both in the merge audit).
//
//   Resolution r = resolver.Resolve(ids, /*explicit_alias=*/false, now_ms, view);
//   // r.create: make r.target; merge every r.absorbed into it; link r.link.
//
// Rules (docs/identity.md):
//  - no identity maps to a profile: a new profile named after the best identity;
//  - one profile: the event applies to it, new identities are linked;
//  - several: they merge into the survivor (IdentityRules::ChooseSurvivor),
//    unless a guardrail refuses: a merge that would give the profile more
//    identities of a kind than its limit and than any part held alone (two
//    user ids), or exceed the merge-rate cap, does not happen; the event then
//    applies to the best-matching profile and the refusal is reported;
//  - an event whose best identity is new and cannot join the matched profile
//    (its kind is full there) starts a profile of its own;
//  - explicit aliases merge and link regardless of per-kind limits and rate,
//    but never past max_identities: that cap bounds every profile's size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "profiled/core/profile.h"
#include "profiled/identity/identity_rules.h"

namespace profiled::identity {

// The identity graph and its records as a batch sees them.
class IdentityView {
 public:
  virtual ~IdentityView() = default;
  // The profile `identity` maps to, if any.
  virtual std::optional<std::string> ProfileOf(const core::Identity& identity) = 0;
  // The record of a profile that ProfileOf returned; never null for such ids.
  virtual const IdentityRecord* Find(const std::string& profile_id) = 0;
};

// An IdentityView a resolution can be applied to.
class IdentityGraph : public IdentityView {
 public:
  // Points `identity` at `profile_id`.
  virtual void Link(const core::Identity& identity, const std::string& profile_id) = 0;
  // The record of `profile_id`, created empty if absent.
  virtual IdentityRecord& Record(const std::string& profile_id) = 0;
  // Removes and returns a record (its profile was merged away).
  virtual IdentityRecord TakeRecord(const std::string& profile_id) = 0;
};

enum class RefusalRule {
  kKindLimit,  // more identities of a kind (or in all) than allowed
  kMergeRate,  // more merges within an hour than allowed
};
// Stable snake_case name: an audit record field and a metric label.
std::string_view RuleName(RefusalRule rule);

struct Refusal {
  RefusalRule rule;
  std::string other_profile;  // the profile not merged / not linked to
  std::string detail;
};

struct Resolution {
  std::string target;                 // profile the event applies to
  bool create = false;                // target does not exist yet
  std::vector<std::string> absorbed;  // merged into target, in order
  std::vector<core::Identity> link;   // identities to map to target
  std::vector<Refusal> refusals;
  bool explicit_alias = false;
};

inline constexpr int64_t kMergeRateWindowMs = 3'600'000;

// Notes a merge at `now_ms` in `merge_times_ms` and forgets merges older than
// the rate window: the one rule for the identity record and the profile alike.
void NoteMerge(int64_t now_ms, std::vector<int64_t>& merge_times_ms);

// Carries out `r` on the identity side: creates the target's record, moves
// every absorbed profile's identities and merge times to it (noting this
// merge at `now_ms`, older than the rate window forgotten) and links the new
// identities. The profile side is merged by the pipeline's apply stage.
void ApplyResolution(const Resolution& r, int64_t now_ms, IdentityGraph& graph);

class Resolver {
 public:
  explicit Resolver(const IdentityRules& rules) : rules_(rules) {}

  // `ids` as IdentityRules::IdentitiesOf returns them (ranked, not blocked).
  Resolution Resolve(const std::vector<core::Identity>& ids, bool explicit_alias, int64_t now_ms,
                     IdentityView& view) const;

  // For an alias event: the identity previous_id stands for — the user_id or
  // anonymous_id it is already known as, else a new anonymous_id. nullopt
  // when empty or blocked.
  std::optional<core::Identity> PreviousIdentity(const v1::InteractionEvent& event,
                                                 IdentityView& view) const;

  // Why `profiles` plus `extra` identities cannot form one profile (the
  // rule, with `detail`), or nullopt.
  // A limit counts only where the result would exceed both it and what the
  // largest part already holds (an aliased profile may keep two user ids).
  // An explicit alias is checked against max_identities alone.
  std::optional<RefusalRule> Violation(const std::vector<const IdentityRecord*>& profiles,
                                       const std::vector<core::Identity>& extra, int64_t now_ms,
                                       size_t merges, bool explicit_alias,
                                       std::string* detail) const;

 private:
  const IdentityRules& rules_;
};

}  // namespace profiled::identity
