// ModelFitter: fits the purchase model's population parameters (BG/NBD's
// r, α, a, b; signals/bg_nbd.h) from the stored profiles on a schedule and
// hands each adopted fit to the signals, versioned "fit-<n>".
//
//   ASSIGN_OR_RETURN(auto fitter, ModelFitter::Start(options, store, signals, consent, registry));
//   ...                      // fits every options.every on its own thread
//   fitter->Stop();
//
// A fit scans the profiles in pieces (rate-limited, holding no lock between
// pieces), skips every profile whose person does not allow analytics,
// reduces the customers to PurchaseBuckets (bounded memory), and maximizes
// the likelihood from the parameters in use. It is adopted only when it
// converged, over at least min_customers, to finite parameters within
// [1e-4, 1e4] that differ from the fit in use by more than 0.1% in some
// parameter; then it is stored (the setting "purchase_model", read back
// at the next start) and set on the signals. Profiles pick it up at their
// next event or timer, so a new version publishes nothing by itself.
//
// Time: the histories are taken at the instant the signals would read
// (`now_at` of the store's stream time, the newest event time applied: the
// runtime gives wall time once caught up in the auto clock mode, stream
// time otherwise), so a replay of old events fits what a live run would
// have.
//
// Thread-safe; Stop() waits for a fit in progress to reach its next piece.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "profiled/core/consent.h"
#include "profiled/signals/bg_nbd.h"
#include "profiled/signals/signals.h"
#include "profiled/store/profile_store.h"

namespace profiled::pipeline {

// Profiles per piece of a fit's scan: the store's lock is held for one piece.
inline constexpr size_t kModelFitPiece = 1000;

struct ModelFitOptions {
  // Time between fits; zero: never fit, and the configured parameters are
  // used even when a fit is stored. The first fit runs this long after the
  // stored one was adopted or last confirmed, and at least min(every,
  // 1 minute) after the start; a failed fit is retried after min(every,
  // 10 minutes). Default: 1 day.
  absl::Duration every = absl::Hours(24);
  // A fit over fewer customers is not adopted. Default: 500.
  uint64_t min_customers = 500;
  // The memory bound of a fit: distinct histories kept (PurchaseBuckets,
  // ~100 bytes each). Default: 20,000.
  size_t max_buckets = 20000;
  // Profiles read per second at most while scanning: bounds the fit's CPU
  // (reading and decoding a 4 KB profile costs ~23 µs on the 2-core VM,
  // so ~a quarter of a core; docs/benchmarks.md). At least kModelFitPiece.
  // Default: 10,000.
  size_t profiles_per_second = 10000;

  // Every problem, one per line, each named by its field.
  [[nodiscard]] absl::Status Validate() const;
};

// What one fit found, and what became of it.
struct ModelFitReport {
  // "adopted", "unchanged" (every parameter within 0.1% of the fit in use:
  // no new version), "too_few_customers", "not_converged", "out_of_range",
  // "no_events" (nothing applied yet: no stream time) or "failed";
  // "stopped" when Stop() interrupted it (not counted).
  std::string result;
  int64_t stream_time_ms = 0;    // the store's newest event time
  int64_t now_ms = 0;            // the instant the histories were taken at
  uint64_t customers = 0;        // fitted (analytics allowed, at least one order)
  uint64_t skipped_consent = 0;  // profiles left out: analytics denied
  uint64_t unreadable = 0;       // stored bytes that did not decode (left out)
  int64_t width_days = 0;        // PurchaseBuckets resolution
  signals::FitResult fit;
  std::string version;  // the version in use after this fit
  absl::Duration took;
};

// The metrics of the fits:
//   profiled_purchase_model_fits_total{result}   fits by ModelFitReport::result
//   profiled_purchase_model_fit_seconds          duration of the latest fit
//   profiled_purchase_model_customers            customers in the latest fit
//   profiled_purchase_model_version              n of "fit-<n>" in use, 0: the defaults
//   profiled_purchase_model_fitted_timestamp_seconds  wall time of the fit in use, 0: none
struct ModelFitMetrics {
  explicit ModelFitMetrics(prometheus::Registry& registry);
  prometheus::Counter& FitsWith(const std::string& result);

  prometheus::Family<prometheus::Counter>& fits;
  prometheus::Gauge& fit_seconds;
  prometheus::Gauge& customers;
  prometheus::Gauge& version;
  prometheus::Gauge& fitted_timestamp;
};

class ModelFitter {
 public:
  // The instant a fit takes histories at, given the store's stream time.
  using NowAt = std::function<int64_t(int64_t stream_time_ms)>;

  // Loads the stored fit (if any) into `signals` and starts the schedule
  // when options.every is positive. All references outlive the fitter.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ModelFitter>> Start(
      const ModelFitOptions& options, store::ProfileStore& store, const signals::Signals& signals,
      const core::ConsentOptions& consent, prometheus::Registry& registry,
      NowAt now_at = [](int64_t stream_time_ms) { return stream_time_ms; });
  ~ModelFitter();

  // One fit now, on the caller's thread (what the schedule runs).
  ModelFitReport FitNow();
  // Ends the schedule; idempotent.
  void Stop();

 private:
  ModelFitter(const ModelFitOptions& options, store::ProfileStore& store,
              const signals::Signals& signals, const core::ConsentOptions& consent,
              prometheus::Registry& registry, NowAt now_at);
  // Sets the stored version on the signals; when it was last adopted or
  // confirmed (InfinitePast: none in use).
  absl::StatusOr<absl::Time> LoadStored();
  // Scans and fits; sets result when the fit is not to be adopted.
  absl::Status Fit(ModelFitReport& report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fit_mu_);
  absl::Status Adopt(ModelFitReport& report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fit_mu_);
  // Sleeps until `until` or Stop(); false once stopped.
  bool WaitUntil(absl::Time until);
  void Run(absl::Time first);

  const ModelFitOptions options_;
  store::ProfileStore& store_;
  const signals::Signals& signals_;
  const core::ConsentOptions consent_;
  ModelFitMetrics metrics_;
  const NowAt now_at_;
  absl::Mutex fit_mu_;                            // one fit at a time
  uint64_t number_ ABSL_GUARDED_BY(fit_mu_) = 0;  // of the version in use; 0: the defaults
  // The highest number ever stored: the next version's is one more.
  uint64_t last_number_ ABSL_GUARDED_BY(fit_mu_) = 0;
  // The stored record of the version in use (PurchaseModelFit bytes).
  std::string stored_ ABSL_GUARDED_BY(fit_mu_);
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace profiled::pipeline
