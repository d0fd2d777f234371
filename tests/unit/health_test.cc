// Health on a manual clock: faults, readiness and its reasons, lag from the
// brokers' watermarks, and a stall only while input waits.
#include "profiled/pipeline/health.h"

#include <prometheus/text_serializer.h>

#include "support/test_support.h"

namespace profiled::pipeline {
namespace {

constexpr int64_t t0 = 1'700'000'000'000;

double Sample(prometheus::Registry& registry, const std::string& name,
              const std::string& labels = "") {
  return testing::MetricValue(prometheus::TextSerializer().Serialize(registry.Collect()), name,
                              labels);
}

TEST_CASE("a fault turns readiness off with its reason until it clears", "[health]") {
  prometheus::Registry registry;
  core::ManualClock clock(t0);
  Health health(registry, {.ready_max_lag = 10, .stall_timeout = absl::Seconds(15)}, clock);
  health.Evaluate();
  CHECK_FALSE(health.ready());
  CHECK(health.Describe().find("starting") != std::string::npos);

  health.ReportStarted(true);
  health.ReportAssignment({{{"events", 0}, 100, 100}});
  health.Evaluate();
  CHECK(health.ready());
  CHECK(health.Describe() == "ready");
  CHECK(Sample(registry, "profiled_ready") == 1);
  CHECK(Sample(registry, "profiled_fault", "reason=\"output_refused\"") == 0);

  health.Set(Fault::kOutputRefused, "TOPIC_AUTHORIZATION_FAILED");
  health.Set(Fault::kOutputRefused, "TOPIC_AUTHORIZATION_FAILED again");  // one fault, not two
  health.Evaluate();
  CHECK_FALSE(health.ready());
  CHECK(health.Describe() == "not ready: output_refused: TOPIC_AUTHORIZATION_FAILED again");
  CHECK(Sample(registry, "profiled_fault", "reason=\"output_refused\"") == 1);
  CHECK(Sample(registry, "profiled_ready") == 0);

  health.Clear(Fault::kOutputRefused);
  health.Evaluate();
  CHECK(health.ready());
  CHECK(Sample(registry, "profiled_fault", "reason=\"output_refused\"") == 0);
}

TEST_CASE("lag counts the brokers' watermark, never 0 while messages wait", "[health]") {
  prometheus::Registry registry;
  core::ManualClock clock(t0);
  Health health(registry, {.ready_max_lag = 10, .stall_timeout = absl::Seconds(15)}, clock);
  health.ReportStarted(true);
  // Just assigned: no watermark seen yet, so not ready (the lag is unknown).
  health.ReportAssignment({{{"events", 0}, 0, std::nullopt}, {{"events", 1}, 0, std::nullopt}});
  health.Evaluate();
  CHECK_FALSE(health.ready());
  CHECK(health.Describe().find("not known yet") != std::string::npos);

  // The consumer is paused: its cached watermark stays at 50 while the
  // broker already has 5,000 on partition 0.
  health.ReportAssignment({{{"events", 0}, 50, 50}, {{"events", 1}, 7, 7}});
  health.ReportHighWatermarks({{"events", 0}, {"events", 1}},
                              {{core::PartitionKey{"events", 0}, 5000},
                               {core::PartitionKey{"events", 1}, 7},
                               {core::PartitionKey{"other", 3}, 99}});  // not assigned: ignored
  health.Evaluate();
  CHECK(Sample(registry, "profiled_consumer_lag", "partition=\"0\"") == 4950);
  CHECK(Sample(registry, "profiled_consumer_lag", "partition=\"1\"") == 0);
  CHECK_FALSE(health.ready());
  CHECK(health.Describe().find("events/0 is 4950 messages behind") != std::string::npos);

  // A stale report cannot lower the watermark; committed positions do lower the lag.
  health.ReportAssignment({{{"events", 0}, 4995, 50}, {{"events", 1}, 7, 7}});
  health.Evaluate();
  CHECK(Sample(registry, "profiled_consumer_lag", "partition=\"0\"") == 5);
  CHECK(health.ready());

  // A revoked partition leaves the metric.
  health.ReportAssignment({{{"events", 1}, 7, 7}});
  health.Evaluate();
  CHECK(Sample(registry, "profiled_consumer_lag", "partition=\"0\"") == -1);
}

TEST_CASE("progress that stops while input waits is a fault after the stall timeout", "[health]") {
  prometheus::Registry registry;
  core::ManualClock clock(t0);
  Health health(registry, {.ready_max_lag = 1000, .stall_timeout = absl::Seconds(15)}, clock);
  health.ReportStarted(true);
  health.ReportAssignment({{{"events", 0}, 100, 100}});
  // Idle for a long time (the loop turning): nothing waits, no stall.
  clock.AdvanceMs(600'000);
  health.ReportLoop();
  health.Evaluate();
  CHECK(Sample(registry, "profiled_progress_stall_seconds") == 0);
  CHECK_FALSE(health.Has(Fault::kProgressStalled));

  // Input arrives and nothing commits: the stall counts from then.
  health.ReportHighWatermarks({{"events", 0}}, {{core::PartitionKey{"events", 0}, 180}});
  clock.AdvanceMs(10'000);
  health.ReportLoop();
  health.Evaluate();
  CHECK(Sample(registry, "profiled_progress_stall_seconds") == 10);
  CHECK_FALSE(health.Has(Fault::kProgressStalled));
  CHECK(health.ready());  // 80 behind is within ready_max_lag
  clock.AdvanceMs(6'000);
  health.ReportLoop();
  health.Evaluate();
  CHECK(health.Has(Fault::kProgressStalled));
  CHECK_FALSE(health.ready());
  CHECK(health.Describe().find(
            "progress_stalled: no batch committed for 16s while 80 messages wait") !=
        std::string::npos);

  // A commit is progress.
  health.ReportCommit();
  health.ReportLoop();
  health.ReportAssignment({{{"events", 0}, 150, 150}});
  clock.AdvanceMs(1'000);
  health.Evaluate();
  CHECK_FALSE(health.Has(Fault::kProgressStalled));
  CHECK(Sample(registry, "profiled_progress_stall_seconds") == 1);
  CHECK(health.Commits() == 1);
}

TEST_CASE("a poll that finds nothing is not a stall, whatever the watermark says", "[health]") {
  prometheus::Registry registry;
  core::ManualClock clock(t0);
  Health health(registry, {.ready_max_lag = 1000, .stall_timeout = absl::Seconds(15)}, clock);
  health.ReportStarted(true);
  // A transactional input: the commit marker is an offset no message fills.
  health.ReportAssignment({{{"events", 0}, 100, 101}});
  for (int i = 0; i < 60; ++i) {
    clock.AdvanceMs(1'000);
    health.ReportLoop();
    health.ReportIdle();
    health.Evaluate();
  }
  CHECK_FALSE(health.Has(Fault::kProgressStalled));
  CHECK(health.ready());
  CHECK(Sample(registry, "profiled_consumer_lag", "partition=\"0\"") == 1);
}

TEST_CASE("a loop that stops turning is a stall even when nothing waits", "[health]") {
  prometheus::Registry registry;
  core::ManualClock clock(t0);
  Health health(registry, {.ready_max_lag = 1000, .stall_timeout = absl::Seconds(15)}, clock);
  health.ReportStarted(true);
  health.ReportAssignment({{{"events", 0}, 100, 100}});
  health.ReportLoop();
  clock.AdvanceMs(16'000);
  health.Evaluate();
  CHECK(health.Has(Fault::kProgressStalled));
  CHECK(health.Describe().find("the batch loop has not turned for 16s") != std::string::npos);
  CHECK(Sample(registry, "profiled_progress_stall_seconds") == 16);
  health.ReportLoop();
  health.Evaluate();
  CHECK_FALSE(health.Has(Fault::kProgressStalled));
}

TEST_CASE("input brokers that answer no watermark query are a fault", "[health]") {
  prometheus::Registry registry;
  core::ManualClock clock(t0);
  Health health(registry, {.ready_max_lag = 1000, .stall_timeout = absl::Seconds(15)}, clock);
  health.ReportStarted(true);
  health.ReportAssignment({{{"events", 0}, 100, 100}});
  for (int i = 0; i < 8; ++i) {  // every 2 s, no answer
    clock.AdvanceMs(2'000);
    health.ReportLoop();
    health.ReportHighWatermarks({{"events", 0}}, {});
  }
  CHECK(health.Has(Fault::kInputUnreachable));
  health.Evaluate();
  CHECK_FALSE(health.ready());
  health.ReportHighWatermarks({{"events", 0}}, {{core::PartitionKey{"events", 0}, 100}});
  CHECK_FALSE(health.Has(Fault::kInputUnreachable));
}

TEST_CASE("a restore is not ready and says so, but is no stall while it runs or after",
          "[health]") {
  prometheus::Registry registry;
  core::ManualClock clock(t0);
  Health health(registry, {.ready_max_lag = 10, .stall_timeout = absl::Seconds(15)}, clock);
  health.ReportStarted(true);
  health.ReportLoop();
  health.ReportAssignment({{{"events", 0}, 100, 105}});  // within ready_max_lag: only the restore
  health.ReportRestoring("profiled.changelog/3, 9000 offsets left");
  clock.AdvanceMs(120'000);  // far past the stall timeout: the loop waits for the restore
  health.Evaluate();
  CHECK_FALSE(health.ready());
  CHECK(health.Describe().find("restoring profiled.changelog/3, 9000 offsets left") !=
        std::string::npos);
  CHECK_FALSE(health.Has(Fault::kProgressStalled));
  CHECK(Sample(registry, "profiled_progress_stall_seconds") == 0);

  health.ReportRestoring("");
  clock.AdvanceMs(1000);
  health.Evaluate();
  CHECK_FALSE(health.Has(Fault::kProgressStalled));  // the restore's time is not the stall
  CHECK(health.Describe().find("restoring") == std::string::npos);

  // Without progress after it, the stall counts from the restore's end.
  clock.AdvanceMs(20'000);
  health.Evaluate();
  CHECK(health.Has(Fault::kProgressStalled));
}

}  // namespace
}  // namespace profiled::pipeline
