// Time-driven signals through the broker: a cart left alone turns abandoned
// and is published once, with no new event, across restarts; timers run on
// the pipeline's clock (here a manual wall clock the test advances); and a
// purchase model fitted from the store reaches the updates after it.
#include "absl/strings/str_cat.h"
#include "profiled/core/profile_id.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/signals/signals.h"
#include "profiled/v1/profile_update.pb.h"
#include "support/kafka_harness.h"
#include "support/purchase_simulation.h"
#include "support/test_support.h"

namespace profiled {
namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t T = 1'790'000'000'000;  // 2026-09-21T13:33:20Z

std::vector<v1::ProfileUpdate> Updates(const std::string& bootstrap) {
  std::vector<v1::ProfileUpdate> out;
  for (const kafka::ConsumedMessage& m : testing::ReadTopicToEnd(bootstrap, "updates")) {
    v1::ProfileUpdate u;
    REQUIRE(u.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())));
    out.push_back(u);
  }
  return out;
}

TEST_CASE("a cart left alone is published as abandoned once, with no new event, across restarts",
          "[integration][signals]") {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("events", 1));
  REQUIRE_OK((*cluster)->CreateTopic("updates", 1));
  const std::string bootstrap = (*cluster)->bootstrap();
  const int64_t added = T - 1000;
  testing::ProduceEvents(
      bootstrap, "events",
      {testing::MakeEvent("cart-1", "added_to_cart", added, "u1", "shoes", "P1")});

  pipeline::PipelineOptions options;
  options.output_topic = "updates";  // clock: auto, so wall time once caught up
  core::ManualClock wall(T);
  testing::TempDir dir;
  {
    testing::PipelineRunner runner(dir.Sub("store"), options, {"events"}, bootstrap, bootstrap,
                                   &wall);
    REQUIRE(testing::WaitUntil([&] {
      return runner.metrics().applied.Value() == 1 && runner.store().OutboxDepth() == 0 &&
             runner.publisher_metrics().published.Value() == 1;
    }));
    // That nothing fires before its time, nor twice, the timer stage's own
    // tests show step by step (tests/unit/stages_test.cc).
    runner.Stop();
  }
  std::vector<v1::ProfileUpdate> updates = Updates(bootstrap);
  REQUIRE(updates.size() == 1);
  CHECK_FALSE(updates[0].signals().cart().abandoned());
  CHECK(updates[0].signals().cart().abandoned_at_ms() == added + 60 * kMinute);
  CHECK(updates[0].signals().journey().stage() == "cart");

  // Down while the cart turns; back two hours later with no new input.
  wall.SetMs(T + 120 * kMinute);
  {
    testing::PipelineRunner runner(dir.Sub("store"), options, {"events"}, bootstrap, bootstrap,
                                   &wall);
    REQUIRE(testing::WaitUntil([&] {
      return runner.metrics().timers_fired.Value() >= 1 && runner.store().OutboxDepth() == 0;
    }));
    CHECK(runner.metrics().applied.Value() == 0);
    runner.Stop();
  }
  updates = Updates(bootstrap);
  REQUIRE(updates.size() == 2);  // the event's update and exactly one time-driven one
  const v1::ProfileUpdate& turned = updates[1];
  CHECK(turned.version() == updates[0].version());  // no event was applied
  CHECK(turned.as_of_ms() == T + 120 * kMinute);
  CHECK(turned.signals().cart().abandoned());
  CHECK(turned.signals().cart().meta().reasons(0).code() == "no_order_since_cart");
  CHECK_FALSE(turned.signals().session().active());
  CHECK(turned.signals().cart().meta().as_of_ms() == T + 120 * kMinute);
}

TEST_CASE("the purchase model fitted from the store reaches the next updates and names its version",
          "[integration][signals]") {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("events", 2));
  REQUIRE_OK((*cluster)->CreateTopic("updates", 1));
  const std::string bootstrap = (*cluster)->bootstrap();
  // 300 customers buying as the model says, first orders over the year
  // before the last one.
  constexpr int64_t kDay = 24 * 60 * kMinute;
  std::vector<v1::InteractionEvent> orders;
  const std::vector<std::vector<double>> repeats =
      testing::SimulateRepeatPurchases({0.6, 8.0, 1.3, 3.5}, 300, 104, 17);
  for (int c = 0; c < 300; ++c) {
    const int64_t first = T - (400 + c) * kDay;
    std::vector<int64_t> times = {first};
    for (double t : repeats[static_cast<size_t>(c)]) {
      times.push_back(first + static_cast<int64_t>(t * signals::kMsPerWeek));
    }
    for (size_t k = 0; k < times.size() && times[k] < T - kDay; ++k) {
      orders.push_back(testing::MakeEvent(absl::StrCat("o-", c, "-", k), "order_completed",
                                          times[k], absl::StrCat("u", c), "shoes", "P1"));
    }
  }
  testing::ProduceEvents(bootstrap, "events", orders);

  pipeline::PipelineOptions options;
  options.output_topic = "updates";
  testing::TempDir dir;
  pipeline::RuntimeOptions rt =
      testing::RunnerOptions(dir.Sub("store"), options, {"events"}, bootstrap, bootstrap);
  rt.model_fit.every = absl::ZeroDuration();  // fitted by hand below (the schedule: unit tests)
  rt.model_fit.min_customers = 200;
  core::ManualClock wall(T);
  testing::PipelineRunner runner(rt, &wall);
  auto version = [&] {
    return testing::MetricValue(runner.observability().RenderText(),
                                "profiled_purchase_model_version");
  };
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().applied.Value() == static_cast<double>(orders.size()) &&
           runner.store().OutboxDepth() == 0;
  }));
  CHECK(version() == 0);
  const pipeline::ModelFitReport report = runner.runtime().model_fitter().FitNow();
  REQUIRE(report.result == "adopted");
  CHECK(report.customers == 300);
  CHECK(version() == 1);
  const size_t before = Updates(bootstrap).size();
  // Every update so far was derived before any fit.
  for (const v1::ProfileUpdate& u : Updates(bootstrap)) {
    CHECK(u.signals().lifecycle().model_version() == "default");
  }
  testing::ProduceEvents(bootstrap, "events",
                         {testing::MakeEvent("o-next", "order_completed", T, "u7", "shoes", "P1")});
  REQUIRE(testing::WaitUntil([&] { return Updates(bootstrap).size() > before; }));
  const v1::ProfileUpdate next = Updates(bootstrap).back();
  const auto& lifecycle = next.signals().lifecycle();
  CHECK(lifecycle.model_version() == absl::StrCat("fit-", version()));
  // The fit's numbers, not the defaults', for u7's orders and the new one.
  const std::shared_ptr<const signals::PurchaseModel> fitted =
      runner.runtime().pipeline().signals().purchase_model();
  CHECK(fitted->params != signals::BgNbdParams{});
  core::Profile u7 = core::Profile::New("u7");
  for (const v1::InteractionEvent& e : orders) {
    if (e.identities().user_id() == "u7")
      core::RecordPurchaseDay(e.event_time_ms(), u7.purchase_days);
  }
  core::RecordPurchaseDay(T, u7.purchase_days);
  const std::optional<signals::PurchaseHistory> h = signals::PurchaseHistoryOf(u7, next.as_of_ms());
  REQUIRE(h.has_value());
  CHECK(h->x >= 1);
  CHECK(lifecycle.p_active() == Approx(signals::ProbabilityAlive(fitted->params, *h)));
  const double horizon = static_cast<double>(lifecycle.horizon_ms()) / signals::kMsPerWeek;
  CHECK(lifecycle.expected_purchases() ==
        Approx(signals::ExpectedPurchases(fitted->params, *h, horizon)));
  CHECK(lifecycle.expected_purchases() !=
        Approx(signals::ExpectedPurchases(signals::BgNbdParams{}, *h, horizon)));
  CHECK(testing::MetricValue(runner.observability().RenderText(),
                             "profiled_purchase_model_customers") == 300);
  runner.Stop();
}

TEST_CASE("a profile not seen for the retention TTL expires with a tombstone",
          "[integration][retention]") {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("events", 1));
  REQUIRE_OK((*cluster)->CreateTopic("updates", 1));
  const std::string bootstrap = (*cluster)->bootstrap();
  testing::ProduceEvents(
      bootstrap, "events",
      {testing::MakeEvent("old-1", "product_viewed", T - 1000, "u-old", "shoes", "P1"),
       testing::MakeEvent("new-1", "product_viewed", T + 50 * kMinute, "u-new", "shoes", "P1")});
  pipeline::PipelineOptions options;
  options.output_topic = "updates";
  options.retention_ttl_ms = 60 * kMinute;
  core::ManualClock wall(T + 55 * kMinute);
  testing::TempDir dir;
  testing::PipelineRunner runner(dir.Sub("store"), options, {"events"}, bootstrap, bootstrap,
                                 &wall);
  REQUIRE(testing::WaitUntil(
      [&] { return runner.metrics().applied.Value() == 2 && runner.store().OutboxDepth() == 0; }));
  CHECK(runner.metrics().expired.Value() == 0);
  wall.SetMs(T + 61 * kMinute);  // u-old last seen 61 min ago; u-new 11 min ago
  REQUIRE(testing::WaitUntil(
      [&] { return runner.metrics().expired.Value() == 1 && runner.store().OutboxDepth() == 0; }));
  std::vector<std::optional<std::string>> mapped;
  REQUIRE_OK(runner.store().MultiGetIdentities(
      {store::IdentityKey("user_id", "u-old"), store::IdentityKey("user_id", "u-new")}, mapped));
  CHECK_FALSE(mapped[0].has_value());
  CHECK(mapped[1].has_value());
  runner.Stop();
  const std::string old_id = core::ProfileIdFor(core::Identity{"user_id", "u-old"});
  const auto out = testing::ReadTopicToEnd(bootstrap, "updates");
  REQUIRE_FALSE(out.empty());
  size_t tombstones = 0;
  for (const auto& m : out) tombstones += m.tombstone() && std::string(m.key()) == old_id;
  CHECK(tombstones == 1);
  CHECK(std::string(out.back().key()) == old_id);
  CHECK(out.back().tombstone());
}

}  // namespace
}  // namespace profiled
