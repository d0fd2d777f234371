#include "profiled/identity/identity_rules.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "profiled/base/sha256.h"
#include "profiled/core/profile_id.h"

namespace profiled::identity {
namespace {

std::string Canonical(std::string_view value) {
  return absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(absl::string_view(value.data(), value.size())));
}

}  // namespace

std::string EmailSha256(std::string_view email) {
  return Sha256Hex(Canonical(email));
}

absl::Status IdentityOptions::Validate() const {
  // Every problem, one per line: "field: message".
  std::vector<std::string> problems;
  for (size_t i = 0; i < blocked_patterns.size(); ++i) {
    try {
      std::regex compiled(blocked_patterns[i], std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      problems.push_back(absl::StrCat("blocked_patterns[", i, "]: '", blocked_patterns[i],
                                      "' is not a regular expression: ", e.what()));
    }
  }
  for (const auto& [kind, limit] : max_per_kind) {
    if (limit < 1) problems.push_back(absl::StrCat("max_per_kind.", kind, ": must be at least 1"));
  }
  if (max_identities < 1) problems.push_back("max_identities: must be at least 1");
  if (max_merges_per_hour < 1) problems.push_back("max_merges_per_hour: must be at least 1");
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
}

absl::StatusOr<IdentityRules> IdentityRules::Create(const IdentityOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  IdentityRules r;
  r.options_ = options;
  for (const std::string& v : options.blocked_values) r.blocked_.insert(Canonical(v));
  for (const std::string& p : options.blocked_patterns) {
    r.patterns_.emplace_back(p, std::regex::ECMAScript | std::regex::optimize);
  }
  for (size_t i = 0; i < options.kind_priority.size(); ++i) {
    r.rank_.try_emplace(options.kind_priority[i], i);
  }
  return r;
}

bool IdentityRules::IsBlocked(std::string_view value) const {
  if (blocked_.contains(Canonical(value))) return true;
  const std::string v(value);
  for (const std::regex& re : patterns_) {
    if (std::regex_search(v, re)) return true;
  }
  return false;
}

size_t IdentityRules::KindRank(std::string_view kind) const {
  auto it = rank_.find(absl::string_view(kind.data(), kind.size()));
  return it == rank_.end() ? options_.kind_priority.size() : it->second;
}

size_t IdentityRules::MaxPerKind(std::string_view kind) const {
  auto it = options_.max_per_kind.find(absl::string_view(kind.data(), kind.size()));
  return it == options_.max_per_kind.end() ? options_.max_identities : it->second;
}

core::Identity IdentityRules::Normalize(const core::Identity& raw) const {
  if (raw.kind == "email" || raw.kind == "email_sha256") {
    return raw.kind == "email" ? core::Identity{"email_sha256", EmailSha256(raw.value)}
                               : core::Identity{raw.kind, Canonical(raw.value)};
  }
  return {raw.kind, std::string(absl::StripAsciiWhitespace(raw.value))};
}

std::vector<core::Identity> IdentityRules::IdentitiesOf(const v1::InteractionEvent& event,
                                                        std::vector<core::Identity>* blocked) const {
  std::vector<core::Identity> out;
  auto add = [&](const core::Identity& id) {
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  };
  for (const core::Identity& raw : core::IdentitiesOf(event)) {
    if (IsBlocked(raw.value)) {
      if (blocked != nullptr) blocked->push_back(raw.kind == "email" ? Normalize(raw) : raw);
      continue;
    }
    add(Normalize(raw));
    if (raw.kind == "email" && options_.store_raw_email) add({"email", Canonical(raw.value)});
  }
  std::stable_sort(out.begin(), out.end(), [this](const core::Identity& a, const core::Identity& b) {
    return KindRank(a.kind) < KindRank(b.kind);
  });
  return out;
}

size_t IdentityRules::FoundingRank(const IdentityRecord& profile) const {
  for (const core::Identity& id : profile.identities) {
    if (core::ProfileIdFor(id) == profile.profile_id) return KindRank(id.kind);
  }
  return options_.kind_priority.size() + 1;
}

IdentityRecord IdentityRecord::Of(const core::Profile& profile) {
  return {profile.id, profile.identities, profile.merge_times_ms};
}

const IdentityRecord* IdentityRules::ChooseSurvivor(
    const std::vector<const IdentityRecord*>& profiles) const {
  const IdentityRecord* best = nullptr;
  size_t best_rank = 0;
  for (const IdentityRecord* p : profiles) {
    const size_t rank = FoundingRank(*p);
    if (best == nullptr || rank < best_rank ||
        (rank == best_rank && p->profile_id < best->profile_id)) {
      best = p;
      best_rank = rank;
    }
  }
  return best;
}

}  // namespace profiled::identity
