#include "profiled/identity/resolver.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "profiled/core/profile_id.h"

namespace profiled::identity {
namespace {

bool Holds(const std::vector<const IdentityRecord*>& profiles, const core::Identity& id) {
  for (const IdentityRecord* p : profiles) {
    if (std::find(p->identities.begin(), p->identities.end(), id) != p->identities.end()) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string_view RuleName(RefusalRule rule) {
  switch (rule) {
    case RefusalRule::kKindLimit:
      return "kind_limit";
    case RefusalRule::kMergeRate:
      return "merge_rate";
  }
  return "unknown";
}

void NoteMerge(int64_t now_ms, std::vector<int64_t>& merge_times_ms) {
  merge_times_ms.push_back(now_ms);
  std::erase_if(merge_times_ms, [now_ms](int64_t t) { return t <= now_ms - kMergeRateWindowMs; });
}

void ApplyResolution(const Resolution& r, int64_t now_ms, IdentityGraph& graph) {
  IdentityRecord& target = graph.Record(r.target);
  for (const std::string& absorbed_id : r.absorbed) {
    IdentityRecord absorbed = graph.TakeRecord(absorbed_id);
    for (const core::Identity& id : absorbed.identities) {
      if (std::find(target.identities.begin(), target.identities.end(), id) ==
          target.identities.end()) {
        target.identities.push_back(id);
      }
      graph.Link(id, r.target);
    }
    target.merge_times_ms.insert(target.merge_times_ms.end(), absorbed.merge_times_ms.begin(),
                                 absorbed.merge_times_ms.end());
    std::sort(target.merge_times_ms.begin(), target.merge_times_ms.end());
    NoteMerge(now_ms, target.merge_times_ms);
  }
  for (const core::Identity& id : r.link) {
    if (std::find(target.identities.begin(), target.identities.end(), id) ==
        target.identities.end()) {
      target.identities.push_back(id);
    }
    graph.Link(id, r.target);
  }
}

std::optional<RefusalRule> Resolver::Violation(const std::vector<const IdentityRecord*>& profiles,
                                               const std::vector<core::Identity>& extra,
                                               int64_t now_ms, size_t merges, bool explicit_alias,
                                               std::string* detail) const {
  // Distinct identities per kind across everything that would be one profile,
  // and the most any one of the profiles holds alone.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> by_kind;
  absl::flat_hash_map<std::string, size_t> most_in_one;
  size_t total = 0, most_total = 0;
  auto count = [&](const core::Identity& id) {
    if (by_kind[id.kind].insert(id.value).second) ++total;
  };
  for (const IdentityRecord* p : profiles) {
    absl::flat_hash_map<std::string, size_t> own;
    for (const core::Identity& id : p->identities) {
      count(id);
      ++own[id.kind];
    }
    for (const auto& [kind, n] : own) most_in_one[kind] = std::max(most_in_one[kind], n);
    most_total = std::max(most_total, p->identities.size());
  }
  for (const core::Identity& id : extra) count(id);
  // Only growth breaks a limit: a profile already over one (two user ids
  // joined by an explicit alias) may still gain identities of other kinds
  // and absorb profiles that add nothing of the full kind.
  for (const auto& [kind, values] : by_kind) {
    if (explicit_alias) break;  // an alias may join identities of one kind
    const size_t limit = rules_.MaxPerKind(kind);
    if (values.size() > limit && values.size() > most_in_one[kind]) {
      *detail = absl::StrCat(values.size(), " identities of kind ", kind, " (limit ", limit, ")");
      return RefusalRule::kKindLimit;
    }
  }
  const size_t max_identities = rules_.options().max_identities;
  if (total > max_identities && total > most_total) {
    *detail = absl::StrCat(total, " identities (limit ", max_identities, ")");
    return RefusalRule::kKindLimit;
  }
  if (merges > 0 && !explicit_alias) {
    size_t recent = merges;
    for (const IdentityRecord* p : profiles) {
      for (int64_t t : p->merge_times_ms) recent += t > now_ms - kMergeRateWindowMs ? 1 : 0;
    }
    if (recent > rules_.options().max_merges_per_hour) {
      *detail = absl::StrCat(recent, " merges within an hour (limit ",
                             rules_.options().max_merges_per_hour, ")");
      return RefusalRule::kMergeRate;
    }
  }
  return std::nullopt;
}

Resolution Resolver::Resolve(const std::vector<core::Identity>& ids, bool explicit_alias,
                             int64_t now_ms, IdentityView& view) const {
  Resolution r;
  r.explicit_alias = explicit_alias;
  // Profiles matched, best identity first; identities that match none.
  std::vector<std::string> candidates;
  std::vector<core::Identity> unmatched;
  for (const core::Identity& id : ids) {
    std::optional<std::string> pid = view.ProfileOf(id);
    if (!pid) {
      unmatched.push_back(id);
    } else if (std::find(candidates.begin(), candidates.end(), *pid) == candidates.end()) {
      candidates.push_back(*pid);
    }
  }

  std::vector<const IdentityRecord*> group;
  if (!candidates.empty()) group.push_back(view.Find(candidates[0]));
  for (size_t i = 1; i < candidates.size(); ++i) {
    const IdentityRecord* c = view.Find(candidates[i]);
    std::vector<const IdentityRecord*> trial = group;
    trial.push_back(c);
    std::string detail;
    const std::optional<RefusalRule> rule =
        Violation(trial, {}, now_ms, trial.size() - 1, explicit_alias, &detail);
    if (!rule) {
      group = std::move(trial);
    } else {
      r.refusals.push_back(
          {*rule, c->profile_id, absl::StrCat("merge with ", c->profile_id, " refused: ", detail)});
    }
  }

  // The best identity is new but its kind is full in the matched profile:
  // it is someone else, with a profile of their own.
  if (!group.empty() && !explicit_alias && !ids.empty() && !unmatched.empty() &&
      unmatched.front() == ids.front()) {
    std::string detail;
    if (Violation(group, {ids.front()}, now_ms, 0, false, &detail)) {
      r.refusals.push_back(
          {RefusalRule::kKindLimit, group.front()->profile_id,
           absl::StrCat(ids.front().kind, " '", ids.front().value, "' not linked to ",
                        group.front()->profile_id, ": ", detail)});
      group.clear();
    }
  }

  // A new best identity founds a profile of its own, as partitioned mode's
  // anchor slot does before it meets the others (docs/identity.md): when
  // that profile outranks the matched survivor, it names the person and
  // the matched profiles merge into it — one id for the person in both modes
  // (an alias's new user id too: partitioned mode founds it the same way).
  bool founded_survives = false;
  if (!group.empty() && !ids.empty() && !unmatched.empty() && unmatched.front() == ids.front()) {
    const IdentityRecord founded{core::ProfileIdFor(ids.front()), {ids.front()}, {}};
    std::vector<const IdentityRecord*> with = group;
    with.push_back(&founded);
    std::string detail;
    founded_survives = rules_.ChooseSurvivor(with) == &founded &&
                       !Violation(with, {}, now_ms, group.size(), explicit_alias, &detail);
  }
  if (group.empty() || founded_survives) {
    r.create = true;
    r.target = core::ProfileIdFor(ids.front());
    for (const IdentityRecord* p : group) r.absorbed.push_back(p->profile_id);
  } else {
    const IdentityRecord* survivor = rules_.ChooseSurvivor(group);
    r.target = survivor->profile_id;
    for (const IdentityRecord* p : group) {
      if (p != survivor) r.absorbed.push_back(p->profile_id);
    }
  }

  // Link what is new, one at a time, within the limits of the merged profile.
  std::vector<core::Identity> extra;
  for (const core::Identity& id : unmatched) {
    if (Holds(group, id)) continue;
    std::vector<core::Identity> trial = extra;
    trial.push_back(id);
    std::string detail;
    if (!Violation(group, trial, now_ms, 0, explicit_alias, &detail)) {
      extra = std::move(trial);
    } else {
      r.refusals.push_back({RefusalRule::kKindLimit, r.target,
                            absl::StrCat(id.kind, " '", id.value, "' not linked: ", detail)});
    }
  }
  r.link = std::move(extra);
  return r;
}

std::optional<core::Identity> Resolver::PreviousIdentity(const v1::InteractionEvent& event,
                                                         IdentityView& view) const {
  const std::string& previous = event.previous_id();
  if (previous.empty() || rules_.IsBlocked(previous)) return std::nullopt;
  for (const char* kind : {"user_id", "anonymous_id"}) {
    core::Identity id = rules_.Normalize({kind, previous});
    if (view.ProfileOf(id)) return id;
  }
  return rules_.Normalize({"anonymous_id", previous});
}

}  // namespace profiled::identity
