// Context signals: what downstream engines want to know about a person,
// derived from the decayed profile at one instant, each with its reasons,
// freshness and consent purpose (docs/signals.md has the catalogue).
//
//   Signals signals(SignalOptions{});           // definitions, versioned
//   v1::ContextSignals s = signals.Derive(profile, now_ms, scoring);
//   int64_t next = signals.NextTransitionMs(profile, now_ms, scoring);
//
// Pure: no I/O, no clock of its own. The same profile at the same instant
// gives the same signals. Each signal is one row of signals.cc's table:
// derive, next transition, fingerprint and the options its definition
// version covers, all required (libs/signals/README.md).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "profiled/core/profile.h"
#include "profiled/core/rankings.h"
#include "profiled/signals/bg_nbd.h"
#include "profiled/v1/profile_update.pb.h"

namespace profiled::signals {

inline constexpr char kPersonalization[] = "personalization";
inline constexpr char kMarketing[] = "marketing";
inline constexpr char kAnalytics[] = "analytics";

struct SignalOptions {
  // Keys per family in top intents. Default: 5.
  size_t top_intents = 5;
  // Journey: an order within this is "purchased", within post_purchase_ms
  // "post_purchase". Defaults: 1 day, 14 days.
  int64_t purchased_ms = 24 * 3600 * 1000LL;
  int64_t post_purchase_ms = 14 * 24 * 3600 * 1000LL;
  // Decayed product_viewed score at which browsing becomes "considering". Default: 3.
  double considering_views = 3.0;
  // A checkout or cart event counts for the journey while younger than this. Default: 2 days.
  int64_t journey_window_ms = 2 * 24 * 3600 * 1000LL;
  // Bought products / categories are suppressed for this long. Defaults: 30 days, 7 days.
  int64_t suppress_product_ms = 30 * 24 * 3600 * 1000LL;
  int64_t suppress_category_ms = 7 * 24 * 3600 * 1000LL;
  // A cart with no order this long after its newest item is abandoned. Default: 1 hour.
  int64_t abandon_after_ms = 3600 * 1000LL;
  // Lifecycle: "new" for this long after first seen; "at_risk" after this
  // long without events; "lapsed" after this long. Defaults: 7, 21, 60 days.
  int64_t new_ms = 7 * 24 * 3600 * 1000LL;
  int64_t at_risk_ms = 21 * 24 * 3600 * 1000LL;
  int64_t lapsed_ms = 60 * 24 * 3600 * 1000LL;
  // "reactivated" for this long after returning from lapsed. Default: 14 days.
  int64_t reactivated_ms = 14 * 24 * 3600 * 1000LL;
  // Recency at which the recency part of churn risk reaches one half (for
  // profiles without an order). Default: 30 days.
  int64_t churn_half_life_ms = 30 * 24 * 3600 * 1000LL;
  // The purchase model: expected orders and churn risk look this far
  // ahead (a time-driven update goes out when churn risk crosses a tenth).
  // Default: 90 days.
  int64_t purchase_horizon_ms = 90 * 24 * 3600 * 1000LL;
  // Its parameters until a fit from the store replaces them. Default: the
  // BG/NBD paper's CDNOW fit (bg_nbd.h).
  BgNbdParams purchase_model;
  // Below this decayed (slow) engagement a profile is a cold start. Default: 3.
  double cold_start_weight = 3.0;
  // Control-group share in percent (0 = no holdout) and its salt. Defaults: 0, "holdout-v1".
  double holdout_percent = 0.0;
  std::string holdout_salt = "holdout-v1";
};

// The purchase model's parameters in use and their version: "default"
// (SignalOptions::purchase_model) or "fit-<n>" (fitted from the store).
struct PurchaseModel {
  BgNbdParams params;
  std::string version = "default";
};

class Signals {
 public:
  explicit Signals(SignalOptions options);

  v1::ContextSignals Derive(const core::Profile& profile, int64_t now_ms,
                            const core::ScoringOptions& scoring) const;
  // Derive into `out` (empty; e.g. a message on the caller's arena).
  void DeriveInto(const core::Profile& profile, int64_t now_ms, const core::ScoringOptions& scoring,
                  v1::ContextSignals& out) const;
  // The same with the families ranked once for the update and the signals.
  void DeriveInto(core::Rankings& ranked, v1::ContextSignals& out) const;

  // The earliest instant after `now_ms` at which a signal of `profile` changes
  // without a new event (a cart turns abandoned, a suppression or session
  // ends, a lifecycle stage moves on), or 0 when none is pending.
  int64_t NextTransitionMs(const core::Profile& profile, int64_t now_ms,
                           const core::ScoringOptions& scoring) const;
  int64_t NextTransitionMs(core::Rankings& ranked) const;

  // Stable hex digest of the definitions (every option).
  const std::string& definition_version() const { return version_; }
  const SignalOptions& options() const { return options_; }

  // Replaces the purchase model's parameters (thread-safe). Profiles pick
  // them up at their next event or timer, not all at once.
  void SetPurchaseModel(PurchaseModel model) const;
  std::shared_ptr<const PurchaseModel> purchase_model() const;

 private:
  struct ModelSlot {
    mutable absl::Mutex mu;
    std::shared_ptr<const PurchaseModel> model ABSL_GUARDED_BY(mu);
  };
  SignalOptions options_;
  std::string version_;
  std::shared_ptr<ModelSlot> model_ = std::make_shared<ModelSlot>();
};

// The purchase model's view of a profile at `now_ms` (weeks; bg_nbd.h):
// its order days as x, t_x and T; none before its first order.
std::optional<PurchaseHistory> PurchaseHistoryOf(const core::Profile& profile, int64_t now_ms);

// The signals, in the order they are derived (signals.cc's table).
std::vector<std::string_view> SignalNames();

// A digest of the discrete content of `signals` (stages, flags, item and
// key lists, preferences): what a subscriber acts on. Scores, weights, risk
// and reasons' wording move continuously and are left out, so equal
// fingerprints mean no signal changed state.
uint64_t Fingerprint(const v1::ContextSignals& signals);

// True when `profile_id` falls in the control group: the salted hash of the
// id, in [0, 100), is below `percent`.
bool InHoldout(std::string_view profile_id, double percent, std::string_view salt);

}  // namespace profiled::signals
