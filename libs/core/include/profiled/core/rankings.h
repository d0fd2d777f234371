// Rankings: the score families of one profile ranked at one instant, each
// family ranked once, on first use — the update lists every family, the
// signals read the top of several, and the next-transition search reads
// them again; all three share one Rankings (docs/benchmarks.md, "Pure
// stages").
//
//   core::Rankings ranked(profile, as_of_ms, scoring);
//   for (const auto& r : ranked.Of(Family::kCategory)) ...;
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "profiled/core/profile.h"

namespace profiled::core {

class Rankings {
 public:
  // Keeps references: `profile` and `scoring` outlive it and do not change.
  Rankings(const Profile& profile, int64_t now_ms, const ScoringOptions& scoring)
      : profile_(profile), now_ms_(now_ms), scoring_(scoring) {}
  Rankings(Profile&&, int64_t, const ScoringOptions&) = delete;  // would dangle
  Rankings(const Profile&, int64_t, ScoringOptions&&) = delete;
  Rankings(const Rankings&) = delete;
  Rankings& operator=(const Rankings&) = delete;
  ~Rankings();

  // ScoreFamily::RankedAt(now_ms) of the family.
  const std::vector<ScoreFamily::Ranked>& Of(Family family) {
    std::unique_ptr<std::vector<ScoreFamily::Ranked>>& ranked =
        ranked_[static_cast<size_t>(family)];
    if (ranked == nullptr) {
      ranked = TakeVector();
      profile_.family(family).RankInto(now_ms_, scoring_.family(family), *ranked);
    }
    return *ranked;
  }

  const Profile& profile() const { return profile_; }
  int64_t now_ms() const { return now_ms_; }
  const ScoringOptions& scoring() const { return scoring_; }

 private:
  // Vectors come from, and go back to, a small pool of this thread's: a
  // ranking per family per update would otherwise cost a malloc and a free
  // each (docs/benchmarks.md, "Pure stages").
  static std::unique_ptr<std::vector<ScoreFamily::Ranked>> TakeVector();

  const Profile& profile_;
  int64_t now_ms_;
  const ScoringOptions& scoring_;
  std::array<std::unique_ptr<std::vector<ScoreFamily::Ranked>>, kFamilyCount> ranked_;
};

}  // namespace profiled::core
