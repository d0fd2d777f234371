// Invariants the fuzz targets assert: a violation aborts, which libFuzzer
// reports as a crash with the input that caused it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "profiled/ingest/protobuf_decoder.h"

namespace profiled::fuzz {

#define PROFILED_FUZZ_CHECK(cond)                                              \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, \
                   __LINE__);                                                  \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

// A decoder either rejects with a reason or emits only valid events.
inline void CheckOutcome(const std::optional<ingest::Rejection>& rejection,
                         const std::vector<v1::InteractionEvent>& events) {
  if (rejection) {
    PROFILED_FUZZ_CHECK(events.empty());
    PROFILED_FUZZ_CHECK(!rejection->code().empty() && rejection->code() != "unknown");
    return;
  }
  for (const v1::InteractionEvent& e : events) {
    PROFILED_FUZZ_CHECK(!ingest::ValidateEvent(e).has_value());
  }
}

}  // namespace profiled::fuzz
