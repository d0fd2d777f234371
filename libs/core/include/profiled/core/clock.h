// Time sources. Decay, as_of and (later) timers, TTL and merge caps read time
// from here, never from the system directly, so tests need no sleeping.
//
//   SystemClock wall;
//   PipelineClock clock(wall, PipelineClock::Mode::kAuto);
//   clock.Observe(partition, event_time_ms);   // stream time moves forward only
//   clock.SetCaughtUp(partition, true);
//   int64_t now = clock.NowMs(partition);      // wall time once caught up
#pragma once

#include <atomic>
#include <compare>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"

namespace profiled::core {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
};

// A clock tests set by hand.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms = 0) : now_ms_(now_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  void SetMs(int64_t now_ms) { now_ms_.store(now_ms); }
  void AdvanceMs(int64_t delta_ms) { now_ms_.fetch_add(delta_ms); }

 private:
  std::atomic<int64_t> now_ms_;
};

// Identifies an input partition.
struct PartitionKey {
  std::string topic;
  int32_t partition = 0;
  bool operator==(const PartitionKey&) const = default;
  auto operator<=>(const PartitionKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const PartitionKey& k) {
    return H::combine(std::move(h), k.topic, k.partition);
  }
};

// The pipeline's notion of "now", per input partition.
//
// Stream time is the largest event time applied on the partition. In kAuto
// mode a partition that is catching up (replay, backlog) reads stream time and
// a caught-up one reads wall time (never less than its stream time), so
// replaying 2019 data decays on 2019 time. kEventTime always reads stream time:
// for replays and backfills of historical data that should never be evaluated
// against today's wall clock. Not thread-safe: owned by the pipeline thread.
class PipelineClock {
 public:
  enum class Mode { kAuto, kEventTime };

  PipelineClock(const Clock& wall, Mode mode) : wall_(wall), mode_(mode) {}

  // Moves the partition's stream time forward to `event_time_ms` if later.
  void Observe(const PartitionKey& partition, int64_t event_time_ms);
  void SetCaughtUp(const PartitionKey& partition, bool caught_up);
  // Forgets every partition's stream time (before reloading stored ones).
  void Reset() { partitions_.clear(); }
  // Current time for evaluating profiles last touched on `partition`.
  int64_t NowMs(const PartitionKey& partition) const;
  int64_t StreamTimeMs(const PartitionKey& partition) const;
  Mode mode() const { return mode_; }

 private:
  struct PartitionTime {
    int64_t stream_time_ms = 0;
    bool caught_up = false;
  };
  const Clock& wall_;
  Mode mode_;
  absl::flat_hash_map<PartitionKey, PartitionTime> partitions_;
};

}  // namespace profiled::core
