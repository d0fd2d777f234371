// The human summary printed after a replay: what was consumed and the
// richest profiles with their top decayed category scores and signals.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "profiled/core/profile.h"
#include "profiled/signals/signals.h"
#include "profiled/store/profile_store.h"

namespace profiled::app {

struct SummaryInput {
  uint64_t consumed = 0;
  uint64_t applied = 0;
  uint64_t rejected = 0;
  uint64_t published = 0;
  size_t profiles_shown = 3;
  size_t scores_shown = 3;
};

// Scans the store and renders the summary. Scores are read at the latest
// event time in the store (the replay's stream time). With nothing consumed
// and nothing stored it says so in one line.
[[nodiscard]] absl::StatusOr<std::string> RenderSummary(store::ProfileStore& store,
                                                        const core::ScoringOptions& scoring,
                                                        const signals::Signals& signals,
                                                        const SummaryInput& input);

}  // namespace profiled::app
