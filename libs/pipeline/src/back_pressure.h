// BackPressure: when a full outbox pauses consumption and when a drained
// one resumes it. Pure, so the rule is tested without a broker. Private to
// the pipeline.
//
//   switch (pressure.Next(store.OutboxDepth())) { case kPause: ...; case kResume: ...; }
#pragma once

#include <cstdint>

namespace profiled::pipeline::internal {

class BackPressure {
 public:
  enum Change { kNone, kPause, kResume };
  explicit BackPressure(uint64_t bound) : bound_(bound) {}

  // Pauses once the outbox holds `bound` entries; resumes only once half of
  // it has drained, so a slow output does not flip consumption on and off
  // with every delivery report.
  Change Next(uint64_t depth) {
    if (!paused_ && depth >= bound_) {
      paused_ = true;
      return kPause;
    }
    if (paused_ && depth <= bound_ / 2) {
      paused_ = false;
      return kResume;
    }
    return kNone;
  }
  bool paused() const { return paused_; }

 private:
  uint64_t bound_;
  bool paused_ = false;
};

}  // namespace profiled::pipeline::internal
