// GatherWindow: how long the next poll may keep gathering messages so that a
// batch spans `max_delay_ms` of arrivals (output.max_delay). Time the last
// batch spent being processed counts: what arrived meanwhile has waited
// already, so a busy pipeline gathers less and never adds more than
// max_delay_ms to any event's wait. Pure. Private to the pipeline.
//
//   RETURN_IF_ERROR(consumer->Poll(max, timeout, window.NextGatherMs(now), messages));
//   window.Polled(steady_clock::now());
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

namespace profiled::pipeline::internal {

class GatherWindow {
 public:
  using Clock = std::chrono::steady_clock;
  explicit GatherWindow(int max_delay_ms) : max_delay_(std::chrono::milliseconds(max_delay_ms)) {}

  // Gathering time for a poll starting at `now`: what is left of max_delay
  // since the last poll returned (all of it before the first poll).
  int NextGatherMs(Clock::time_point now) const {
    if (!last_poll_.has_value()) return static_cast<int>(max_delay_.count());
    // Elapsed time rounded up, as the consumer rounds its waits up.
    const auto left = max_delay_ - std::chrono::ceil<std::chrono::milliseconds>(now - *last_poll_);
    return static_cast<int>(std::max<int64_t>(0, left.count()));
  }
  // The poll returned at `now`: the next batch's arrivals start here.
  void Polled(Clock::time_point now) { last_poll_ = now; }

 private:
  std::chrono::milliseconds max_delay_;
  std::optional<Clock::time_point> last_poll_;
};

}  // namespace profiled::pipeline::internal
