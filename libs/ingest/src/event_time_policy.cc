#include "profiled/ingest/event_time_policy.h"

namespace profiled::ingest {

EventTimeVerdict CheckEventTime(const EventTimePolicy& policy, int64_t wall_now_ms,
                                v1::InteractionEvent& event) {
  if (event.event_time_ms() <= wall_now_ms + policy.future_tolerance_ms) {
    return EventTimeVerdict::kAccepted;
  }
  if (policy.future == EventTimePolicy::Future::kReject) return EventTimeVerdict::kRejected;
  event.set_event_time_ms(wall_now_ms);
  return EventTimeVerdict::kClamped;
}

}  // namespace profiled::ingest
