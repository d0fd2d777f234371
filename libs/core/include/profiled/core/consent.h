// Consent per purpose: what a person allowed, decided when, and what that
// permits profiled to do with their data.
//
//   ConsentOptions options;                      // analytics, personalization, marketing
//   RecordConsent(event, options, profile.consent);
//   if (!Allows(profile.consent, kAnalyticsPurpose, options)) { /* do not store the event */ }
//
// Decisions come from an event's context.consent (Segment's
// context.consent.categoryPreferences), whose categories map to purposes.
// Within one profile the latest decision by event time wins; a merge keeps,
// per purpose, the more restrictive of the two until the person's next
// decision. A purpose nobody decided on follows its configured default
// (granted: an opt-out regime; denied: opt-in).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "profiled/v1/event.pb.h"

namespace profiled::core {

inline constexpr char kAnalyticsPurpose[] = "analytics";
inline constexpr char kPersonalizationPurpose[] = "personalization";
inline constexpr char kMarketingPurpose[] = "marketing";

struct ConsentOptions {
  // Purposes and whether each is granted until the person decides.
  // Default: all three granted (opt-out).
  std::vector<std::pair<std::string, bool>> defaults = {
      {kAnalyticsPurpose, true}, {kPersonalizationPurpose, true}, {kMarketingPurpose, true}};
  // Consent categories as sources name them (lower-cased) -> purpose. A
  // category equal to a purpose name needs no entry; others are ignored.
  absl::flat_hash_map<std::string, std::string> categories = {
      {"advertising", kMarketingPurpose}, {"marketing", kMarketingPurpose},
      {"functional", kPersonalizationPurpose}, {"performance", kAnalyticsPurpose}};

  // The purpose the output topic serves ("" = none declared). A profile
  // that does not allow it is published as its consent state alone.
  std::string output_purpose;

  bool Knows(std::string_view purpose) const;
  bool DefaultFor(std::string_view purpose) const;
};

struct ConsentDecision {
  std::string purpose;
  bool granted = false;
  int64_t decided_ms = 0;  // event time of the decision
  bool operator==(const ConsentDecision&) const = default;
};

// Applies the decisions `event` carries (latest by event time wins).
// Returns true when any decision changed.
bool RecordConsent(const v1::InteractionEvent& event, const ConsentOptions& options,
                   std::vector<ConsentDecision>& consent);

// Folds `other` into `consent`: per purpose the more restrictive, decided at
// the later of the two times (so only a newer decision lifts it).
void MergeConsent(const std::vector<ConsentDecision>& other, std::vector<ConsentDecision>& consent);

// Whether `purpose` is granted: the decision on record, else the default.
bool Allows(const std::vector<ConsentDecision>& consent, std::string_view purpose,
            const ConsentOptions& options);

}  // namespace profiled::core
