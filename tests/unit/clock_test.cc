#include "profiled/core/clock.h"

#include "support/test_support.h"

namespace profiled::core {
namespace {

constexpr int64_t k2019 = 1'569'888'000'000;
constexpr int64_t k2026 = 1'795'000'000'000;

TEST_CASE("stream time only moves forward, per partition", "[clock]") {
  ManualClock wall(k2026);
  PipelineClock clock(wall, PipelineClock::Mode::kAuto);
  PartitionKey p0{"events", 0}, p1{"events", 1};
  clock.Observe(p0, k2019 + 100);
  clock.Observe(p0, k2019);  // a late event does not move time back
  clock.Observe(p1, k2019 + 7);
  CHECK(clock.StreamTimeMs(p0) == k2019 + 100);
  CHECK(clock.StreamTimeMs(p1) == k2019 + 7);
}

TEST_CASE("a catching-up partition reads stream time, a caught-up one wall time", "[clock]") {
  ManualClock wall(k2026);
  PipelineClock clock(wall, PipelineClock::Mode::kAuto);
  PartitionKey p{"events", 0};
  clock.Observe(p, k2019);
  CHECK(clock.NowMs(p) == k2019);  // replaying 2019 is not seven years of silence
  clock.SetCaughtUp(p, true);
  CHECK(clock.NowMs(p) == k2026);
  wall.AdvanceMs(5);
  CHECK(clock.NowMs(p) == k2026 + 5);
  // A producer whose clock runs ahead: never read earlier than stream time.
  clock.Observe(p, k2026 + 60'000);
  CHECK(clock.NowMs(p) == k2026 + 60'000);
}

TEST_CASE("event-time mode always reads stream time", "[clock]") {
  ManualClock wall(k2026);
  PipelineClock clock(wall, PipelineClock::Mode::kEventTime);
  PartitionKey p{"events", 0};
  clock.Observe(p, k2019);
  clock.SetCaughtUp(p, true);
  CHECK(clock.NowMs(p) == k2019);
}

}  // namespace
}  // namespace profiled::core
