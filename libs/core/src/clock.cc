#include "profiled/core/clock.h"

#include <algorithm>
#include <chrono>

namespace profiled::core {

int64_t SystemClock::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void PipelineClock::Observe(const PartitionKey& partition, int64_t event_time_ms) {
  PartitionTime& p = partitions_[partition];
  p.stream_time_ms = std::max(p.stream_time_ms, event_time_ms);
}

void PipelineClock::SetCaughtUp(const PartitionKey& partition, bool caught_up) {
  partitions_[partition].caught_up = caught_up;
}

int64_t PipelineClock::StreamTimeMs(const PartitionKey& partition) const {
  auto it = partitions_.find(partition);
  return it == partitions_.end() ? 0 : it->second.stream_time_ms;
}

int64_t PipelineClock::NowMs(const PartitionKey& partition) const {
  auto it = partitions_.find(partition);
  const int64_t stream = it == partitions_.end() ? 0 : it->second.stream_time_ms;
  const bool caught_up = it != partitions_.end() && it->second.caught_up;
  if (mode_ == Mode::kEventTime || !caught_up) return stream;
  return std::max(stream, wall_.NowMs());
}

}  // namespace profiled::core
