#include "profiled/pipeline/model_fitter.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/codec/state_codec.h"
#include "profiled/internal/v1/profile_state.pb.h"
#include "profiled/signals/purchase_buckets.h"

namespace profiled::pipeline {
namespace {

constexpr char kSetting[] = "purchase_model";

std::string VersionOf(uint64_t number) {
  return number == 0 ? "default" : absl::StrCat("fit-", number);
}

bool InRange(const signals::BgNbdParams& p) {
  for (double v : {p.r, p.alpha, p.a, p.b}) {
    if (!std::isfinite(v) || v < 1e-4 || v > 1e4) return false;
  }
  return true;
}

// Every parameter within 0.1% of the other's.
bool Close(const signals::BgNbdParams& x, const signals::BgNbdParams& y) {
  const auto near = [](double u, double v) { return std::abs(u - v) <= 1e-3 * std::abs(v); };
  return near(x.r, y.r) && near(x.alpha, y.alpha) && near(x.a, y.a) && near(x.b, y.b);
}

}  // namespace

ModelFitMetrics::ModelFitMetrics(prometheus::Registry& r)
    : fits(prometheus::BuildCounter()
               .Name("profiled_purchase_model_fits_total")
               .Help("Fits of the purchase model from the store, by result (adopted, unchanged, "
                     "too_few_customers, not_converged, out_of_range, no_events, failed).")
               .Register(r)),
      fit_seconds(prometheus::BuildGauge()
                      .Name("profiled_purchase_model_fit_seconds")
                      .Help("Duration of the latest purchase-model fit (scan and maximization).")
                      .Register(r)
                      .Add({})),
      customers(prometheus::BuildGauge()
                    .Name("profiled_purchase_model_customers")
                    .Help("Customers (profiles with an order, analytics allowed) in the latest "
                          "purchase-model fit.")
                    .Register(r)
                    .Add({})),
      version(prometheus::BuildGauge()
                  .Name("profiled_purchase_model_version")
                  .Help("n of the purchase model version fit-<n> in use; 0: the configured "
                        "defaults.")
                  .Register(r)
                  .Add({})),
      fitted_timestamp(prometheus::BuildGauge()
                           .Name("profiled_purchase_model_fitted_timestamp_seconds")
                           .Help("Wall time the purchase model in use was fitted; 0: the "
                                 "configured defaults.")
                           .Register(r)
                           .Add({})) {
  for (const char* result : {"adopted", "unchanged", "too_few_customers", "not_converged",
                             "out_of_range", "no_events", "failed"}) {
    FitsWith(result);  // every result exported from the start, at 0
  }
}

prometheus::Counter& ModelFitMetrics::FitsWith(const std::string& result) {
  return fits.Add({{"result", result}});
}

ModelFitter::ModelFitter(const ModelFitOptions& options, store::ProfileStore& store,
                         const signals::Signals& signals, const core::ConsentOptions& consent,
                         prometheus::Registry& registry, NowAt now_at)
    : options_(options),
      store_(store),
      signals_(signals),
      consent_(consent),
      metrics_(registry),
      now_at_(std::move(now_at)) {}

absl::StatusOr<std::unique_ptr<ModelFitter>> ModelFitter::Start(
    const ModelFitOptions& options, store::ProfileStore& store, const signals::Signals& signals,
    const core::ConsentOptions& consent, prometheus::Registry& registry, NowAt now_at) {
  RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<ModelFitter> fitter(
      new ModelFitter(options, store, signals, consent, registry, std::move(now_at)));
  ASSIGN_OR_RETURN(const absl::Time checked, fitter->LoadStored());
  if (options.every > absl::ZeroDuration()) {
    const absl::Time first =
        std::max(checked + options.every, absl::Now() + std::min(options.every, absl::Minutes(1)));
    ModelFitter* raw = fitter.get();
    fitter->thread_ = std::thread([raw, first] { raw->Run(first); });
  }
  return fitter;
}

ModelFitter::~ModelFitter() { Stop(); }

void ModelFitter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<absl::Time> ModelFitter::LoadStored() {
  absl::MutexLock fitting(&fit_mu_);
  ASSIGN_OR_RETURN(std::optional<std::string> bytes, store_.ReadSetting(kSetting));
  const absl::Time none = absl::InfinitePast();
  if (!bytes.has_value()) return none;
  internal::v1::PurchaseModelFit stored;
  if (!stored.ParseFromString(*bytes)) {
    // Refusing to start over it would help nobody: the next fit replaces it.
    LogWarn("the stored purchase model does not parse; using the configured parameters");
    return none;
  }
  // Numbers are never reused, whatever became of the stored version.
  last_number_ = stored.number();
  const signals::BgNbdParams params{stored.r(), stored.alpha(), stored.a(), stored.b()};
  if (!InRange(params) || stored.number() == 0) {
    LogWarn("the stored purchase model is out of range; using the configured parameters");
    return none;
  }
  if (options_.every == absl::ZeroDuration()) {
    // Fitting is off: the configured parameters are the ones meant.
    LogInfo("purchase model fitting off: using the configured parameters, not the stored ",
            VersionOf(stored.number()));
    return none;
  }
  number_ = stored.number();
  stored_ = *std::move(bytes);
  signals_.SetPurchaseModel({params, VersionOf(number_)});
  metrics_.version.Set(static_cast<double>(number_));
  metrics_.fitted_timestamp.Set(static_cast<double>(stored.fitted_ms()) / 1000.0);
  LogInfo("purchase model ", VersionOf(number_), " loaded from the store (", stored.customers(),
          " customers)");
  return absl::FromUnixMillis(std::max(stored.checked_ms(), stored.fitted_ms()));
}

void ModelFitter::Run(absl::Time first) {
  absl::Time next = first;
  while (WaitUntil(next)) {
    const ModelFitReport report = FitNow();
    if (report.result == "stopped") return;
    // A failure (the store unavailable) is tried again sooner.
    next = absl::Now() + (report.result == "failed" ? std::min(options_.every, absl::Minutes(10))
                                                    : options_.every);
    if (report.result == "adopted" || report.result == "unchanged") {
      LogInfo("purchase model ", report.version, " ", report.result, ": ", report.customers,
              " customers, log-likelihood ", report.fit.log_likelihood, ", r ", report.fit.params.r,
              " alpha ", report.fit.params.alpha, " a ", report.fit.params.a, " b ",
              report.fit.params.b, " (", absl::FormatDuration(report.took), ")");
    } else if (report.result == "no_events" || report.result == "too_few_customers") {
      LogInfo("purchase model not fitted yet (", report.result, ", ", report.customers,
              " customers); keeping ", report.version);
    } else {
      LogWarn("purchase model fit not adopted (", report.result, ", ", report.customers,
              " customers); keeping ", report.version);
    }
  }
}

bool ModelFitter::WaitUntil(absl::Time until) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithDeadline(absl::Condition(&stop_), until);
  return !stop_;
}

ModelFitReport ModelFitter::FitNow() {
  absl::MutexLock fitting(&fit_mu_);
  const absl::Time started = absl::Now();
  ModelFitReport report;
  absl::Status s = Fit(report);
  if (s.ok() && (report.result.empty() || report.result == "unchanged")) s = Adopt(report);
  report.version = VersionOf(number_);
  report.took = absl::Now() - started;
  if (absl::IsCancelled(s)) {
    report.result = "stopped";  // not a fit: nothing counted
    return report;
  }
  if (!s.ok()) {
    report.result = "failed";
    LogWarn("purchase model fit failed: ", s.message());
  }
  metrics_.FitsWith(report.result).Increment();
  metrics_.fit_seconds.Set(absl::ToDoubleSeconds(report.took));
  metrics_.customers.Set(static_cast<double>(report.customers));
  return report;
}

absl::Status ModelFitter::Fit(ModelFitReport& report) {
  ASSIGN_OR_RETURN(std::vector<store::PartitionPosition> positions, store_.LoadPositions());
  int64_t& stream_ms = report.stream_time_ms;
  for (const store::PartitionPosition& p : positions) {
    stream_ms = std::max(stream_ms, p.stream_time_ms);
  }
  if (stream_ms == 0) {
    report.result = "no_events";
    return absl::OkStatus();
  }
  report.now_ms = now_at_(stream_ms);
  const int64_t now_ms = report.now_ms;
  signals::PurchaseBuckets buckets(options_.max_buckets);
  std::vector<std::pair<std::string, std::string>> piece;
  std::string after;
  const absl::Duration piece_time = absl::Seconds(
      static_cast<double>(kModelFitPiece) / static_cast<double>(options_.profiles_per_second));
  for (;;) {
    const absl::Time piece_started = absl::Now();
    RETURN_IF_ERROR(store_.ReadProfiles(after, kModelFitPiece, piece));
    if (piece.empty()) break;
    after = piece.back().first;
    for (const auto& [id, bytes] : piece) {
      absl::StatusOr<core::Profile> profile = codec::DecodeProfileState(bytes);
      if (!profile.ok()) {
        ++report.unreadable;
        continue;
      }
      if (profile->purchase_days.count == 0) continue;
      if (!core::Allows(profile->consent, core::kAnalyticsPurpose, consent_)) {
        ++report.skipped_consent;
        continue;
      }
      buckets.Add(profile->purchase_days, now_ms);
    }
    // The rate limit; a stop ends the scan at the next piece.
    if (!WaitUntil(piece_started + piece_time)) return absl::CancelledError("stopping");
  }
  report.customers = buckets.customers();
  report.width_days = buckets.width_days();
  if (report.customers < options_.min_customers) {
    report.result = "too_few_customers";
    return absl::OkStatus();
  }
  const signals::BgNbdParams start = signals_.purchase_model()->params;
  report.fit = signals::FitBgNbd(buckets.Histories(), start, {});
  if (!report.fit.converged) {
    report.result = "not_converged";
  } else if (!InRange(report.fit.params)) {
    report.result = "out_of_range";
  } else if (number_ > 0 && Close(report.fit.params, start)) {
    report.result = "unchanged";  // a new version would only be noise
  }
  return absl::OkStatus();
}

absl::Status ModelFitter::Adopt(ModelFitReport& report) {
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  if (report.result == "unchanged") {
    // Confirmed: the next fit is due `every` from now, also after a restart.
    internal::v1::PurchaseModelFit in_use;
    if (!in_use.ParseFromString(stored_))
      return absl::InternalError("the fit in use does not parse");
    in_use.set_checked_ms(now_ms);
    stored_ = in_use.SerializeAsString();
    return store_.WriteSetting(kSetting, stored_);
  }
  internal::v1::PurchaseModelFit stored;
  stored.set_number(last_number_ + 1);
  stored.set_r(report.fit.params.r);
  stored.set_alpha(report.fit.params.alpha);
  stored.set_a(report.fit.params.a);
  stored.set_b(report.fit.params.b);
  stored.set_customers(report.customers);
  stored.set_log_likelihood(report.fit.log_likelihood);
  stored.set_width_days(report.width_days);
  stored.set_stream_time_ms(report.stream_time_ms);
  stored.set_fitted_ms(now_ms);
  stored.set_checked_ms(now_ms);
  // Stored first: a version the signals published is one a restart loads.
  std::string bytes = stored.SerializeAsString();
  RETURN_IF_ERROR(store_.WriteSetting(kSetting, bytes));
  number_ = last_number_ = stored.number();
  stored_ = std::move(bytes);
  signals_.SetPurchaseModel({report.fit.params, VersionOf(number_)});
  report.result = "adopted";
  metrics_.version.Set(static_cast<double>(number_));
  metrics_.fitted_timestamp.Set(static_cast<double>(now_ms) / 1000.0);
  return absl::OkStatus();
}

}  // namespace profiled::pipeline
