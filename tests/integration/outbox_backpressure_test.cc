// The output cluster goes down: events keep being applied until the outbox
// reaches its bound, then consumption pauses; nothing is dropped, and once the
// broker returns every update is published exactly as it was stored.
#include <map>
#include <set>

#include "profiled/internal/v1/profile_state.pb.h"
#include "profiled/kafka/mock_cluster.h"
#include "support/kafka_harness.h"
#include "support/test_support.h"

namespace profiled {
namespace {

constexpr int64_t t0 = 1'569'888'000'000;

TEST_CASE("a full outbox pauses consumption and every stored update is published later",
          "[integration][outbox]") {
  // Input and output on separate clusters so the output alone can fail.
  auto input = kafka::MockCluster::Start(1);
  auto output = kafka::MockCluster::Start(1);
  REQUIRE_OK(input.status());
  REQUIRE_OK(output.status());
  REQUIRE_OK((*input)->CreateTopic("events", 2));
  REQUIRE_OK((*output)->CreateTopic("updates", 2));
  REQUIRE_OK((*output)->SetBrokerUp(1, false));

  // One event per person: every event makes one update.
  constexpr size_t kEvents = 300;
  constexpr uint64_t kBound = 40;
  std::vector<v1::InteractionEvent> events;
  for (size_t i = 0; i < kEvents; ++i) {
    events.push_back(testing::MakeEvent("e" + std::to_string(i), "product_viewed",
                                        t0 + static_cast<int64_t>(i), "u" + std::to_string(i),
                                        "a.b", "P1"));
  }
  testing::ProduceEvents((*input)->bootstrap(), "events", events);

  pipeline::PipelineOptions options;
  options.output_topic = "updates";
  options.outbox_max_entries = kBound;
  options.batch_max_events = 10;
  // Event time throughout: on wall time these old profiles would also get
  // time-driven updates (lapsed ...), and this test counts one per event.
  options.clock_mode = core::PipelineClock::Mode::kEventTime;
  testing::TempDir dir;
  testing::PipelineRunner runner(dir.Sub("store"), options, {"events"}, (*input)->bootstrap(),
                                 (*output)->bootstrap());

  // The batch in flight when the bound was reached still commits after the
  // pause: one update per event, so it has landed once applied = outbox depth.
  REQUIRE(testing::WaitUntil([&] {
    return runner.paused() && runner.metrics().applied.Value() == runner.store().OutboxDepth();
  }));
  const uint64_t applied_at_pause = runner.metrics().applied.Value();
  CHECK(runner.store().OutboxDepth() >= kBound);
  CHECK(applied_at_pause >= kBound);
  CHECK(applied_at_pause < kEvents);
  CHECK(runner.publisher_metrics().published.Value() == 0);

  // The pause/resume rule itself is tested on its own (stages_test.cc).

  // Snapshot what is stored for publishing.
  std::vector<store::OutboxEntry> stored;
  REQUIRE_OK(runner.store().ReadOutbox(0, 100000, stored));
  REQUIRE(stored.size() == runner.store().OutboxDepth());
  std::map<std::string, std::string> stored_by_key;
  for (const store::OutboxEntry& e : stored) {
    internal::v1::OutboxRecord r;
    REQUIRE(r.ParseFromString(e.record));
    stored_by_key[r.key()] = r.value();
  }

  REQUIRE_OK((*output)->SetBrokerUp(1, true));
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().applied.Value() == kEvents && runner.store().OutboxDepth() == 0;
  }));
  // Back-pressure is re-evaluated before each poll: consumption resumes.
  CHECK(testing::WaitUntil([&] { return !runner.paused(); }));
  runner.Stop();

  std::vector<kafka::ConsumedMessage> out =
      testing::ReadTopic((*output)->bootstrap(), "updates", kEvents);
  std::map<std::string, std::string> published;
  for (const kafka::ConsumedMessage& m : out) published[std::string(m.key())] = m.payload();
  CHECK(out.size() == kEvents);  // idempotent producer: no duplicates, none lost
  CHECK(published.size() == kEvents);
  for (const auto& [key, value] : stored_by_key) {
    INFO("profile " << key);
    REQUIRE(published.count(key) == 1);
    CHECK(published.at(key) == value);  // byte for byte as stored
  }
}

}  // namespace
}  // namespace profiled
