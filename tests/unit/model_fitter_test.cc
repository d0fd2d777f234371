// The purchase model's fitter (pipeline/model_fitter.h) over a real RocksDB
// store: it fits exactly the customers whose person allows analytics, at
// the store's stream time; it adopts, stores and numbers a fit that passes
// its checks and keeps the version in use otherwise; a restart loads the
// stored version; and its metrics say what happened.
#include "profiled/pipeline/model_fitter.h"

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "profiled/codec/state_codec.h"
#include "profiled/obs/metrics.h"
#include "profiled/signals/purchase_buckets.h"
#include "support/purchase_simulation.h"
#include "support/test_support.h"

namespace profiled::pipeline {
namespace {

constexpr int64_t kDayMs = 24 * 3600 * 1000LL;
constexpr int64_t kStartDay = 20000;
constexpr int64_t kNowMs = (kStartDay + 500) * kDayMs + 1234;

std::unique_ptr<store::ProfileStore> OpenAt(const std::string& path) {
  store::StoreOptions options;
  options.path = path;
  auto store = store::ProfileStore::Open(options);
  REQUIRE_OK(store.status());
  return std::move(*store);
}

core::Profile CustomerWith(std::string id, const core::PurchaseDays& days) {
  core::Profile p = core::Profile::New(std::move(id));
  p.purchase_days = days;
  p.version = static_cast<uint64_t>(days.count);
  return p;
}

// A store as the pipeline leaves it: `allowed` customers, `denied` ones
// whose person denied analytics (with a history unlike the others, so
// fitting them would show), a few profiles without an order, and the
// stream time the input reached.
void Populate(store::ProfileStore& store, const std::vector<core::PurchaseDays>& allowed,
              const std::vector<core::PurchaseDays>& denied) {
  store::CommitBatch batch;
  for (size_t i = 0; i < allowed.size(); ++i) {
    batch.profiles.push_back(
        {"a-" + std::to_string(i),
         codec::EncodeProfileState(CustomerWith("a-" + std::to_string(i), allowed[i]))});
  }
  for (size_t i = 0; i < denied.size(); ++i) {
    core::Profile p = CustomerWith("d-" + std::to_string(i), denied[i]);
    p.consent.push_back({core::kAnalyticsPurpose, false, kNowMs - kDayMs});
    batch.profiles.push_back({p.id, codec::EncodeProfileState(p)});
  }
  for (int i = 0; i < 50; ++i) {
    core::Profile browser = core::Profile::New("b-" + std::to_string(i));
    browser.version = 3;
    batch.profiles.push_back({browser.id, codec::EncodeProfileState(browser)});
  }
  batch.positions = {{"events", 0, 100, kNowMs - 5 * kDayMs}, {"events", 1, 80, kNowMs}};
  REQUIRE_OK(store.Commit(batch));
}

// Heavy buyers: an order every day of the last two weeks.
std::vector<core::PurchaseDays> HeavyBuyers(int n) {
  std::vector<core::PurchaseDays> out(static_cast<size_t>(n));
  for (core::PurchaseDays& d : out) {
    for (int day = 0; day < 14; ++day) core::RecordPurchaseDay(kNowMs - day * kDayMs, d);
  }
  return out;
}

ModelFitOptions Manual() {
  ModelFitOptions o;
  o.every = absl::ZeroDuration();  // FitNow only
  o.min_customers = 100;
  o.profiles_per_second = 1'000'000;
  return o;
}

double Metric(obs::Metrics& m, const std::string& name, const std::string& labels = "") {
  return testing::MetricValue(m.RenderText(), name, labels);
}

TEST_CASE("the fitter fits exactly the customers whose person allows analytics, and adopts it",
          "[model_fitter]") {
  const signals::BgNbdParams truth{0.6, 8.0, 1.3, 3.5};
  const std::vector<core::PurchaseDays> allowed =
      testing::SimulatedOrderDays(truth, 4000, kStartDay, 300, kNowMs, 21);
  testing::TempDir dir;
  auto store = OpenAt(dir.path());
  Populate(*store, allowed, HeavyBuyers(500));
  signals::Signals signals{signals::SignalOptions{}};
  obs::Metrics metrics;
  auto fitter = ModelFitter::Start(Manual(), *store, signals, {}, metrics.registry());
  REQUIRE_OK(fitter.status());
  CHECK(signals.purchase_model()->version == "default");
  CHECK(Metric(metrics, "profiled_purchase_model_version") == 0);

  const ModelFitReport report = (*fitter)->FitNow();
  CHECK(report.result == "adopted");
  CHECK(report.customers == 4000);
  CHECK(report.skipped_consent == 500);
  CHECK(report.unreadable == 0);
  CHECK(report.stream_time_ms == kNowMs);  // the newest partition's clock
  CHECK(report.version == "fit-1");
  // The same fit, computed here from the allowed customers alone, from the
  // parameters in use then (the defaults): the denied ones left no trace.
  signals::PurchaseBuckets expected(ModelFitOptions{}.max_buckets);
  for (const core::PurchaseDays& d : allowed) expected.Add(d, kNowMs);
  const signals::FitResult alone = signals::FitBgNbd(expected.Histories(), {}, {});
  // (Summed in another order: equal to rounding.)
  CHECK(report.fit.params.r == Approx(alone.params.r).epsilon(1e-9));
  CHECK(report.fit.params.alpha == Approx(alone.params.alpha).epsilon(1e-9));
  CHECK(report.fit.params.a == Approx(alone.params.a).epsilon(1e-9));
  CHECK(report.fit.params.b == Approx(alone.params.b).epsilon(1e-9));
  CHECK(report.fit.log_likelihood == Approx(alone.log_likelihood).epsilon(1e-12));
  const std::shared_ptr<const signals::PurchaseModel> in_use = signals.purchase_model();
  CHECK(in_use->version == "fit-1");
  CHECK(in_use->params == report.fit.params);
  // And it lands near the truth the customers were simulated from.
  CHECK(in_use->params.r == Approx(truth.r).epsilon(0.25));
  CHECK(in_use->params.alpha == Approx(truth.alpha).epsilon(0.35));

  CHECK(Metric(metrics, "profiled_purchase_model_fits_total", "result=\"adopted\"") == 1);
  CHECK(Metric(metrics, "profiled_purchase_model_fits_total", "result=\"failed\"") == 0);
  CHECK(Metric(metrics, "profiled_purchase_model_version") == 1);
  CHECK(Metric(metrics, "profiled_purchase_model_customers") == 4000);
  CHECK(Metric(metrics, "profiled_purchase_model_fitted_timestamp_seconds") > 1.7e9);

  // The next fit starts from the version in use and, on the same data,
  // finds it again: no new version.
  const ModelFitReport second = (*fitter)->FitNow();
  CHECK(second.result == "unchanged");
  CHECK(second.version == "fit-1");
  CHECK(second.fit.log_likelihood == Approx(alone.log_likelihood).epsilon(1e-6));
  CHECK(signals.purchase_model()->params == report.fit.params);
  CHECK(Metric(metrics, "profiled_purchase_model_fits_total", "result=\"unchanged\"") == 1);

  // New customers who buy differently: the next version.
  store::CommitBatch more;
  const std::vector<core::PurchaseDays> heavy = HeavyBuyers(2000);
  for (size_t i = 0; i < heavy.size(); ++i) {
    more.profiles.push_back(
        {"h-" + std::to_string(i), codec::EncodeProfileState(CustomerWith("h", heavy[i]))});
  }
  REQUIRE_OK(store->Commit(more));
  const ModelFitReport third = (*fitter)->FitNow();
  CHECK(third.result == "adopted");
  CHECK(third.customers == 6000);
  CHECK(third.version == "fit-2");
  CHECK(signals.purchase_model()->version == "fit-2");
  CHECK(signals.purchase_model()->params == third.fit.params);
}

TEST_CASE("a restart loads the stored version and a fit that fails its checks changes nothing",
          "[model_fitter]") {
  const signals::BgNbdParams truth{0.4, 5.0, 0.8, 2.5};
  testing::TempDir dir;
  signals::BgNbdParams fitted;
  {
    auto store = OpenAt(dir.path());
    Populate(*store, testing::SimulatedOrderDays(truth, 1500, kStartDay, 200, kNowMs, 4), {});
    signals::Signals signals{signals::SignalOptions{}};
    obs::Metrics metrics;
    auto fitter = ModelFitter::Start(Manual(), *store, signals, {}, metrics.registry());
    REQUIRE_OK(fitter.status());
    REQUIRE((*fitter)->FitNow().result == "adopted");
    fitted = signals.purchase_model()->params;
  }
  auto store = OpenAt(dir.path());
  signals::Signals signals{signals::SignalOptions{}};
  obs::Metrics metrics;
  ModelFitOptions strict = Manual();
  strict.every = absl::Hours(24);  // fitting on: the stored fit is used
  strict.min_customers = 1501;     // one more than there are
  auto fitter = ModelFitter::Start(strict, *store, signals, {}, metrics.registry());
  REQUIRE_OK(fitter.status());
  CHECK(signals.purchase_model()->version == "fit-1");
  CHECK(signals.purchase_model()->params == fitted);
  CHECK(Metric(metrics, "profiled_purchase_model_version") == 1);

  const ModelFitReport refused = (*fitter)->FitNow();
  CHECK(refused.result == "too_few_customers");
  CHECK(refused.customers == 1500);
  CHECK(refused.version == "fit-1");
  CHECK(signals.purchase_model()->params == fitted);
  CHECK(Metric(metrics, "profiled_purchase_model_fits_total", "result=\"too_few_customers\"") == 1);
  CHECK(Metric(metrics, "profiled_purchase_model_fits_total", "result=\"adopted\"") == 0);

  // Unreadable bytes are left out and counted, not fatal.
  store::CommitBatch garbage;
  garbage.profiles.push_back({"zz-corrupt", "\xff\xff not a profile"});
  REQUIRE_OK(store->Commit(garbage));
  CHECK((*fitter)->FitNow().unreadable == 1);
}

TEST_CASE("fitting off uses the configured parameters over a stored fit and numbers never repeat",
          "[model_fitter]") {
  testing::TempDir dir;
  auto store = OpenAt(dir.path());
  Populate(*store,
           testing::SimulatedOrderDays({0.4, 5.0, 0.8, 2.5}, 1500, kStartDay, 200, kNowMs, 4), {});
  {
    signals::Signals signals{signals::SignalOptions{}};
    obs::Metrics metrics;
    ModelFitOptions on = Manual();
    on.every = absl::Hours(24);  // loads what is stored; the schedule waits a minute
    auto fitter = ModelFitter::Start(on, *store, signals, {}, metrics.registry());
    REQUIRE_OK(fitter.status());
    REQUIRE((*fitter)->FitNow().result == "adopted");
  }
  signals::SignalOptions configured;
  configured.purchase_model = {0.3, 3.0, 0.5, 1.5};
  signals::Signals signals(configured);
  obs::Metrics metrics;
  auto off = ModelFitter::Start(Manual(), *store, signals, {}, metrics.registry());
  REQUIRE_OK(off.status());
  CHECK(signals.purchase_model()->version == "default");
  CHECK(signals.purchase_model()->params == configured.purchase_model);
  // A fit asked for by hand is the next number, not fit-1 again.
  CHECK((*off)->FitNow().version == "fit-2");

  // A stored record that does not parse: the configured parameters, and the
  // next fit numbered afresh.
  REQUIRE_OK(store->WriteSetting("purchase_model", "\x08\xff garbage"));
  signals::Signals fresh(configured);
  obs::Metrics fresh_metrics;
  ModelFitOptions on = Manual();
  on.every = absl::Hours(24);
  auto after = ModelFitter::Start(on, *store, fresh, {}, fresh_metrics.registry());
  REQUIRE_OK(after.status());
  CHECK(fresh.purchase_model()->params == configured.purchase_model);
}

TEST_CASE("opt-in consent: only customers who granted analytics are fitted", "[model_fitter]") {
  const std::vector<core::PurchaseDays> customers =
      testing::SimulatedOrderDays({}, 800, kStartDay, 200, kNowMs, 8);
  testing::TempDir dir;
  auto store = OpenAt(dir.path());
  store::CommitBatch batch;
  for (size_t i = 0; i < customers.size(); ++i) {
    core::Profile p = CustomerWith("c-" + std::to_string(i), customers[i]);
    if (i % 4 == 0) p.consent.push_back({core::kAnalyticsPurpose, true, kNowMs - kDayMs});
    batch.profiles.push_back({p.id, codec::EncodeProfileState(p)});
  }
  batch.positions = {{"events", 0, 1, kNowMs}};
  REQUIRE_OK(store->Commit(batch));
  core::ConsentOptions opt_in;
  opt_in.defaults = {{core::kAnalyticsPurpose, false}};
  signals::Signals signals{signals::SignalOptions{}};
  obs::Metrics metrics;
  auto fitter = ModelFitter::Start(Manual(), *store, signals, opt_in, metrics.registry());
  REQUIRE_OK(fitter.status());
  const ModelFitReport report = (*fitter)->FitNow();
  CHECK(report.customers == 200);
  CHECK(report.skipped_consent == 600);
}

TEST_CASE("a stop ends a fit in the middle of its scan, uncounted", "[model_fitter]") {
  testing::TempDir dir;
  auto store = OpenAt(dir.path());
  Populate(*store, testing::SimulatedOrderDays({}, 6000, kStartDay, 200, kNowMs, 2), {});
  signals::Signals signals{signals::SignalOptions{}};
  obs::Metrics metrics;
  ModelFitOptions slow = Manual();
  slow.profiles_per_second = 1000;  // the scan would take 6 s
  auto fitter = ModelFitter::Start(slow, *store, signals, {}, metrics.registry());
  REQUIRE_OK(fitter.status());
  ModelFitReport report;
  const absl::Time started = absl::Now();
  std::thread fit([&] { report = (*fitter)->FitNow(); });
  absl::SleepFor(absl::Milliseconds(300));
  (*fitter)->Stop();
  fit.join();
  CHECK(report.result == "stopped");
  CHECK(absl::Now() - started < absl::Seconds(3));
  CHECK(signals.purchase_model()->version == "default");
  for (const char* result : {"adopted", "failed"}) {
    CHECK(Metric(metrics, "profiled_purchase_model_fits_total",
                 absl::StrCat("result=\"", result, "\"")) == 0);
  }
}

TEST_CASE("with nothing applied yet there is no clock to fit at", "[model_fitter]") {
  testing::TempDir dir;
  auto store = OpenAt(dir.path());
  signals::Signals signals{signals::SignalOptions{}};
  obs::Metrics metrics;
  auto fitter = ModelFitter::Start(Manual(), *store, signals, {}, metrics.registry());
  REQUIRE_OK(fitter.status());
  CHECK((*fitter)->FitNow().result == "no_events");
  CHECK(signals.purchase_model()->version == "default");
  CHECK(Metric(metrics, "profiled_purchase_model_fits_total", "result=\"no_events\"") == 1);
}

TEST_CASE("the schedule fits on its own and a stop ends it", "[model_fitter]") {
  testing::TempDir dir;
  auto store = OpenAt(dir.path());
  Populate(*store, testing::SimulatedOrderDays({}, 600, kStartDay, 200, kNowMs, 9), {});
  signals::Signals signals{signals::SignalOptions{}};
  obs::Metrics metrics;
  ModelFitOptions scheduled = Manual();
  scheduled.every = absl::Seconds(1);  // first fit 1 s after the start
  auto fitter = ModelFitter::Start(scheduled, *store, signals, {}, metrics.registry());
  REQUIRE_OK(fitter.status());
  CHECK(signals.purchase_model()->version == "default");
  REQUIRE(testing::WaitUntil(
      [&] {
        return Metric(metrics, "profiled_purchase_model_fits_total", "result=\"unchanged\"") >= 1;
      },
      std::chrono::seconds(20)));
  (*fitter)->Stop();
  CHECK(signals.purchase_model()->version == "fit-1");
  const double fits = Metric(metrics, "profiled_purchase_model_fits_total", "result=\"unchanged\"");
  absl::SleepFor(absl::Milliseconds(1500));
  CHECK(Metric(metrics, "profiled_purchase_model_fits_total", "result=\"unchanged\"") == fits);
}

TEST_CASE("the fitter's options are checked, every problem named", "[model_fitter]") {
  ModelFitOptions o;
  o.every = absl::Milliseconds(500);
  o.min_customers = 0;
  o.max_buckets = 10;
  o.profiles_per_second = 999;
  const absl::Status s = o.Validate();
  CHECK(absl::IsInvalidArgument(s));
  for (const char* field : {"every:", "min_customers:", "max_buckets:", "profiles_per_second:"}) {
    CAPTURE(field);
    CHECK(absl::StrContains(s.message(), field));
  }
  o = ModelFitOptions{};
  CHECK(o.Validate().ok());
  o.every = absl::ZeroDuration();
  CHECK(o.Validate().ok());
}

}  // namespace
}  // namespace profiled::pipeline
