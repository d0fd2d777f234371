// IdentityRules: how raw identifiers become identities, which are refused,
// and how profiles are ranked when several must merge. Pure, no I/O.
//
//   ASSIGN_OR_RETURN(IdentityRules rules, IdentityRules::Create(options));
//   std::vector<core::Identity> ids = rules.IdentitiesOf(event, &blocked);
//
// Emails are trimmed and lower-cased, then kept only as "email_sha256" (hex
// SHA-256) unless store_raw_email is set. Blocked values ("", "null",
// "undefined", "0", ... and any configured pattern) never become identities.
#pragma once

#include <cstdint>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "profiled/core/profile.h"
#include "profiled/v1/event.pb.h"

namespace profiled::identity {

struct IdentityOptions {
  // Keep raw email addresses as "email" identities as well. Default: false.
  bool store_raw_email = false;
  // Values that never become identities, compared after trimming and
  // ignoring case.
  std::vector<std::string> blocked_values = {
      "", "null", "undefined", "anonymous", "unknown", "none", "nil", "n/a", "0", "-1",
      "00000000-0000-0000-0000-000000000000"};
  // ECMAScript regular expressions; a value matching any is blocked.
  std::vector<std::string> blocked_patterns;
  // Most identities of one kind per profile; links and merges implied by
  // co-occurrence that would exceed it are refused. Explicit aliases are
  // exempt. Default: user_id 1 (two different user ids never merge).
  absl::flat_hash_map<std::string, size_t> max_per_kind = {{"user_id", 1}};
  // Most identities of all kinds per profile.
  size_t max_identities = 100;
  // Most merges into one profile within an hour of pipeline time.
  size_t max_merges_per_hour = 10;
  // Survivor choice: the profile whose founding identity (the one its id
  // was made from) has the highest-ranked kind wins, then the smallest id.
  // Kinds not listed rank last.
  std::vector<std::string> kind_priority = {"user_id", "email_sha256", "email", "device_id",
                                            "anonymous_id"};

  [[nodiscard]] absl::Status Validate() const;
};

// What the guardrails and the survivor rule know of a profile. Kept beside
// the identity graph, never read from the profile's state, so identity
// decisions can be made where the graph lives (docs/architecture.md).
struct IdentityRecord {
  std::string profile_id;
  std::vector<core::Identity> identities;
  // Times of recent merges into the profile, oldest first (merge-rate cap).
  std::vector<int64_t> merge_times_ms;

  // The record of a profile as stored today (single mode keeps it inside
  // the profile's state).
  static IdentityRecord Of(const core::Profile& profile);
};

class IdentityRules {
 public:
  [[nodiscard]] static absl::StatusOr<IdentityRules> Create(const IdentityOptions& options);

  // The event's identities, normalized and ranked by kind priority; blocked
  // ones go to `blocked` (may be null) instead. For alias events previous_id
  // is not included (see AliasTargets).
  std::vector<core::Identity> IdentitiesOf(const v1::InteractionEvent& event,
                                           std::vector<core::Identity>* blocked) const;
  // Normalizes one identity as IdentitiesOf would (email -> email_sha256).
  core::Identity Normalize(const core::Identity& raw) const;
  bool IsBlocked(std::string_view value) const;
  // Position in kind_priority (0 = highest); unlisted kinds rank after all.
  size_t KindRank(std::string_view kind) const;
  // Limit for a kind (max_identities when unlisted).
  size_t MaxPerKind(std::string_view kind) const;
  const IdentityOptions& options() const { return options_; }

  // The profile that survives a merge of `profiles` (not empty): the best
  // founding rank, then the smallest id. A total order on profile ids that
  // never changes as a profile grows, so any decider, holding any version
  // of the records, picks the same survivor (docs/scaling.md).
  const IdentityRecord* ChooseSurvivor(const std::vector<const IdentityRecord*>& profiles) const;
  // Kind rank of the founding identity: the identity whose ProfileIdFor is
  // the profile's id. Ranks after every kind when none is (a profile
  // named some other way).
  size_t FoundingRank(const IdentityRecord& profile) const;

 private:
  IdentityOptions options_;
  absl::flat_hash_set<std::string> blocked_;
  std::vector<std::regex> patterns_;
  absl::flat_hash_map<std::string, size_t> rank_;
};

// Hex SHA-256 of the trimmed, lower-cased address.
std::string EmailSha256(std::string_view email);

}  // namespace profiled::identity
