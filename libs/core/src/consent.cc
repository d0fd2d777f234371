#include "profiled/core/consent.h"

#include <algorithm>

#include "absl/strings/ascii.h"

namespace profiled::core {
namespace {

ConsentDecision* Find(std::vector<ConsentDecision>& consent, std::string_view purpose) {
  for (ConsentDecision& d : consent) {
    if (d.purpose == purpose) return &d;
  }
  return nullptr;
}

// Latest by event time wins; at equal times a denial wins, so the outcome
// does not depend on arrival order.
bool Decide(std::vector<ConsentDecision>& consent, const std::string& purpose, bool granted,
            int64_t at_ms) {
  ConsentDecision* d = Find(consent, purpose);
  if (d == nullptr) {
    consent.push_back({purpose, granted, at_ms});
    std::sort(consent.begin(), consent.end(),
              [](const ConsentDecision& a, const ConsentDecision& b) { return a.purpose < b.purpose; });
    return true;
  }
  if (at_ms > d->decided_ms || (at_ms == d->decided_ms && !granted && d->granted)) {
    const bool changed = d->granted != granted;
    d->granted = granted;
    d->decided_ms = at_ms;
    return changed;
  }
  return false;
}

}  // namespace

bool ConsentOptions::Knows(std::string_view purpose) const {
  return std::any_of(defaults.begin(), defaults.end(),
                     [&](const auto& d) { return d.first == purpose; });
}

bool ConsentOptions::DefaultFor(std::string_view purpose) const {
  for (const auto& [name, granted] : defaults) {
    if (name == purpose) return granted;
  }
  return false;  // an unknown purpose is never granted
}

bool RecordConsent(const v1::InteractionEvent& event, const ConsentOptions& options,
                   std::vector<ConsentDecision>& consent) {
  bool changed = false;
  for (const auto& [category, granted] : event.context().consent()) {
    std::string purpose = absl::AsciiStrToLower(category);
    if (auto it = options.categories.find(purpose); it != options.categories.end()) {
      purpose = it->second;
    }
    if (!options.Knows(purpose)) continue;
    changed |= Decide(consent, purpose, granted, event.event_time_ms());
  }
  return changed;
}

void MergeConsent(const std::vector<ConsentDecision>& other, std::vector<ConsentDecision>& consent) {
  for (const ConsentDecision& theirs : other) {
    ConsentDecision* mine = Find(consent, theirs.purpose);
    if (mine == nullptr) {
      consent.push_back(theirs);
      continue;
    }
    mine->granted = mine->granted && theirs.granted;
    mine->decided_ms = std::max(mine->decided_ms, theirs.decided_ms);
  }
  std::sort(consent.begin(), consent.end(),
            [](const ConsentDecision& a, const ConsentDecision& b) { return a.purpose < b.purpose; });
}

bool Allows(const std::vector<ConsentDecision>& consent, std::string_view purpose,
            const ConsentOptions& options) {
  for (const ConsentDecision& d : consent) {
    if (d.purpose == purpose) return d.granted;
  }
  return options.DefaultFor(purpose);
}

}  // namespace profiled::core
