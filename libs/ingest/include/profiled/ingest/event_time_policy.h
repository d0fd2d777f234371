// EventTimePolicy: what to do with event times the wall clock says are wrong.
//
//   EventTimePolicy policy;                   // clamp beyond 10 minutes ahead
//   switch (CheckEventTime(policy, wall_now_ms, event)) { ... }
//
// Old events are always accepted: replays and backfills are normal, and decay
// is exact for any event time. An event from the future is different: it
// would move its partition's stream time (and so every profile's "now")
// ahead, so beyond a tolerance for clock skew it is clamped to the wall
// clock (kept, counted) or rejected to the dead-letter topic.
#pragma once

#include <cstdint>

#include "profiled/v1/event.pb.h"

namespace profiled::ingest {

struct EventTimePolicy {
  enum class Future { kClamp, kReject };
  // How far ahead of the wall clock an event time may be. Default: 10 minutes.
  int64_t future_tolerance_ms = 10 * 60 * 1000;
  Future future = Future::kClamp;
};

enum class EventTimeVerdict { kAccepted, kClamped, kRejected };

// Applies `policy` to `event` (clamping rewrites event_time_ms to wall_now_ms).
EventTimeVerdict CheckEventTime(const EventTimePolicy& policy, int64_t wall_now_ms,
                                v1::InteractionEvent& event);

}  // namespace profiled::ingest
