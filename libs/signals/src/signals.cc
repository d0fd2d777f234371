#include "profiled/signals/signals.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "profiled/core/event_types.h"
#include "profiled/signals/reason_text.h"

namespace profiled::signals {
namespace {

using core::Family;

constexpr int64_t kMinuteMs = 60 * 1000;
constexpr int64_t kHourMs = 60 * kMinuteMs;
constexpr int64_t kDayMs = 24 * kHourMs;

v1::SignalReason* AddReason(v1::SignalMeta& meta, std::string_view code, std::string_view key,
                            double weight, int64_t last_ms, int64_t now_ms, std::string_view what) {
  v1::SignalReason* r = meta.add_reasons();
  AppendReasonText(what, key, weight, last_ms, now_ms, *r->mutable_text());
  r->set_code(code.data(), code.size());
  r->set_key(key.data(), key.size());
  r->set_weight(weight);
  r->set_last_event_time_ms(last_ms);
  return r;
}

// The decayed score of an event type at `now`, and when it last happened.
struct TypeActivity {
  double score = 0;
  int64_t last_ms = 0;
};
TypeActivity ActivityOf(const core::Profile& p, std::string_view type, int64_t now,
                        const core::ScoringOptions& scoring) {
  const core::DecayedScore* s = p.family(Family::kEventType).Find(type);
  if (s == nullptr) return {};
  return {s->ValueAt(now, scoring.family(Family::kEventType).half_life_ms), s->ref_time_ms};
}

int64_t LastOrderMs(const core::Profile& p) {
  int64_t last = 0;
  for (const core::ItemMemory& item : p.items) last = std::max(last, item.bought_ms);
  return last;
}

struct CartState {
  std::vector<const core::ItemMemory*> items;  // products in the cart
  int64_t newest_added_ms = 0;
};
CartState CartOf(const core::Profile& p) {
  CartState cart;
  const int64_t last_order = LastOrderMs(p);
  for (const core::ItemMemory& item : p.items) {
    if (!item.key.starts_with(core::kProductItemPrefix)) continue;
    if (item.carted_ms > std::max({item.uncarted_ms, item.bought_ms, last_order})) {
      cart.items.push_back(&item);
      cart.newest_added_ms = std::max(cart.newest_added_ms, item.carted_ms);
    }
  }
  return cart;
}

void FillMeta(v1::SignalMeta& meta, const char* purpose, int64_t now, int64_t evidence,
              const std::string& version) {
  meta.set_purpose(purpose);
  meta.set_as_of_ms(now);
  meta.set_evidence_count(evidence);
  meta.set_definition_version(version);
}

void TopOf(core::Rankings& rankings, Family family, size_t k,
           google::protobuf::RepeatedPtrField<v1::WeightedKey>& out, v1::SignalMeta& meta,
           const char* code, std::string_view what) {
  const std::vector<core::ScoreFamily::Ranked>& ranked = rankings.Of(family);
  const int64_t now = rankings.now_ms();
  double total = 0;
  for (const auto& r : ranked) total += r.value;
  for (size_t i = 0; i < ranked.size() && i < k; ++i) {
    v1::WeightedKey* w = out.Add();
    w->set_key(ranked[i].key.data(), ranked[i].key.size());
    w->set_score(ranked[i].value);
    w->set_weight(total > 0 ? ranked[i].value / total : 0);
    if (i == 0) AddReason(meta, code, w->key(), w->score(), ranked[i].ref_time_ms, now, what);
  }
}

// Up to `n` keys of a family at `now`, most active first.
std::vector<std::string> TopKeys(core::Rankings& rankings, Family family, size_t n) {
  std::vector<std::string> keys;
  for (const auto& r : rankings.Of(family)) {
    if (keys.size() == n) break;
    keys.emplace_back(r.key);
  }
  return keys;
}

// What every signal reads, computed once per profile and instant.
struct Inputs {
  const core::Profile& p;
  int64_t now;
  const core::ScoringOptions& scoring;
  core::Rankings& ranked;  // the families at `now`, shared with the update
  const SignalOptions& o;
  const std::string& version;
  int64_t events;
  CartState cart;
  int64_t last_order;
  double fast, slow, trend;  // decayed engagement and its trend
  std::shared_ptr<const PurchaseModel> model;
};

}  // namespace

std::optional<PurchaseHistory> PurchaseHistoryOf(const core::Profile& p, int64_t now) {
  const core::PurchaseDays& d = p.purchase_days;
  if (d.count == 0) return std::nullopt;
  const double since_first = static_cast<double>(now) / kDayMs - d.first_day;
  const double last = d.last_day() - d.first_day;
  return PurchaseHistory{static_cast<double>(d.count - 1), last / 7.0,
                         std::max(since_first, last) / 7.0};
}

namespace {

// Churn risk is published again with no event when it crosses a tenth.
int ChurnBand(double risk) { return std::clamp(static_cast<int>(risk * 10.0), 0, 9); }

Inputs InputsOf(core::Rankings& ranked, const SignalOptions& o, const std::string& version,
                std::shared_ptr<const PurchaseModel> model) {
  const core::Profile& p = ranked.profile();
  const int64_t now = ranked.now_ms();
  const core::ScoringOptions& scoring = ranked.scoring();
  const double fast = p.engagement_fast.ValueAt(now, scoring.engagement_fast_half_life_ms);
  const double slow = p.engagement_slow.ValueAt(now, scoring.engagement_slow_half_life_ms);
  const double trend = slow > 0 ? (fast / scoring.engagement_fast_half_life_ms) /
                                      (slow / scoring.engagement_slow_half_life_ms)
                                : 0;
  return {p,
          now,
          scoring,
          ranked,
          o,
          version,
          static_cast<int64_t>(p.version),
          CartOf(p),
          LastOrderMs(p),
          fast,
          slow,
          trend,
          std::move(model)};
}

// Collects the instants a signal's state may change without an event.
class Transitions {
 public:
  explicit Transitions(int64_t now) : now_(now) {}
  void At(int64_t t) {
    if (t > now_ && (next_ == 0 || t < next_)) next_ = t;
  }
  int64_t next() const { return next_; }

 private:
  int64_t now_;
  int64_t next_ = 0;
};

// Just after a score worth `value` at `at_ms`, decaying with `half_life_ms`,
// falls below `threshold`: value·2^(−(t−at)/half-life) < threshold.
int64_t FallsBelowMs(double value, int64_t at_ms, double half_life_ms, double threshold) {
  return at_ms + static_cast<int64_t>(std::ceil(half_life_ms * std::log2(value / threshold))) + 1;
}

// Collects the discrete content subscribers act on.
class Digest {
 public:
  void Add(std::string_view part) {
    d_.append(part);
    d_.push_back('\x1f');
  }
  uint64_t Value() const { return XXH3_64bits(d_.data(), d_.size()); }

 private:
  std::string d_;
};

// Shared by definitions whose state moves only with events, or that are
// continuous scores: saying so is part of the definition.
void NoTransitions(const Inputs&, Transitions&) {}
void NotFingerprinted(const v1::ContextSignals&, Digest&) {}
void NoOptions(const SignalOptions&, std::string&) {}

void Put(std::string& canonical, const auto& value) { absl::StrAppend(&canonical, "|", value); }

// ---- Top intents ------------------------------------------------------------

void DeriveTopIntents(const Inputs& in, v1::ContextSignals& s) {
  v1::TopIntents& t = *s.mutable_top_intents();
  v1::SignalMeta& meta = *t.mutable_meta();
  FillMeta(meta, kPersonalization, in.now, in.events, in.version);
  TopOf(in.ranked, Family::kCategory, in.o.top_intents, *t.mutable_categories(), meta,
        "top_category", "category");
  TopOf(in.ranked, Family::kBrand, in.o.top_intents, *t.mutable_brands(), meta, "top_brand",
        "brand");
  TopOf(in.ranked, Family::kProduct, in.o.top_intents, *t.mutable_products(), meta, "top_product",
        "product");
}
// A family's first `listed` keys change with time alone when the lowest of
// them decays below the family's epsilon and leaves the ranking (a family
// decays at one rate, so the order itself never changes).
void KeysDecayOut(const Inputs& in, Family f, size_t listed, Transitions& t) {
  const core::FamilyOptions& options = in.scoring.family(f);
  const std::vector<core::ScoreFamily::Ranked>& ranked = in.ranked.Of(f);
  if (ranked.empty() || listed == 0 || options.epsilon <= 0) return;
  const core::ScoreFamily::Ranked& last = ranked[std::min(ranked.size(), listed) - 1];
  t.At(FallsBelowMs(last.value, in.now, options.half_life_ms, options.epsilon));
}
void TopIntentsTransitions(const Inputs& in, Transitions& t) {
  for (Family f : {Family::kCategory, Family::kBrand, Family::kProduct}) {
    KeysDecayOut(in, f, in.o.top_intents, t);
  }
}
void FingerprintTopIntents(const v1::ContextSignals& s, Digest& d) {
  for (const auto* keys :
       {&s.top_intents().categories(), &s.top_intents().brands(), &s.top_intents().products()}) {
    for (const v1::WeightedKey& k : *keys) d.Add(k.key());
    d.Add("|");
  }
}
void TopIntentsOptions(const SignalOptions& o, std::string& c) { Put(c, o.top_intents); }

// ---- Journey stage ----------------------------------------------------------

// The most advanced recent step wins, unless an order came after it.
void DeriveJourney(const Inputs& in, v1::ContextSignals& s) {
  const SignalOptions& o = in.o;
  const int64_t now = in.now;
  v1::JourneyStage& j = *s.mutable_journey();
  v1::SignalMeta& meta = *j.mutable_meta();
  FillMeta(meta, kPersonalization, now, in.events, in.version);
  const TypeActivity checkout =
      ActivityOf(in.p, core::EventTypeName(core::EventType::kCheckoutStarted), now, in.scoring);
  const TypeActivity views =
      ActivityOf(in.p, core::EventTypeName(core::EventType::kProductViewed), now, in.scoring);
  auto recent = [&](int64_t t) { return t > 0 && now - t <= o.journey_window_ms; };
  if (recent(checkout.last_ms) && checkout.last_ms > in.last_order) {
    j.set_stage("checkout");
    AddReason(meta, "recent_checkout", "checkout_started", checkout.score, checkout.last_ms, now,
              "event");
  } else if (!in.cart.items.empty() && recent(in.cart.newest_added_ms)) {
    j.set_stage("cart");
    AddReason(meta, "cart_items_waiting", "added_to_cart",
              static_cast<double>(in.cart.items.size()), in.cart.newest_added_ms, now,
              "items in cart");
  } else if (in.last_order > 0 && now - in.last_order <= o.purchased_ms) {
    j.set_stage("purchased");
    AddReason(meta, "recent_order", "order_completed", 1, in.last_order, now, "order");
  } else if (in.last_order > 0 && now - in.last_order <= o.post_purchase_ms) {
    j.set_stage("post_purchase");
    AddReason(meta, "recent_order", "order_completed", 1, in.last_order, now, "order");
  } else if (views.score >= o.considering_views) {
    j.set_stage("considering");
    AddReason(meta, "repeated_views", "product_viewed", views.score, views.last_ms, now, "event");
  } else {
    j.set_stage("browsing");
    AddReason(meta, "no_strong_intent", "product_viewed", views.score, views.last_ms, now, "event");
  }
}
// The windows include their end: each stage ends 1 ms after it.
void JourneyTransitions(const Inputs& in, Transitions& t) {
  if (!in.cart.items.empty()) t.At(in.cart.newest_added_ms + in.o.journey_window_ms + 1);
  if (in.last_order > 0) {
    t.At(in.last_order + in.o.purchased_ms + 1);
    t.At(in.last_order + in.o.post_purchase_ms + 1);
  }
  const TypeActivity checkout =
      ActivityOf(in.p, core::EventTypeName(core::EventType::kCheckoutStarted), in.now, in.scoring);
  if (checkout.last_ms > 0) t.At(checkout.last_ms + in.o.journey_window_ms + 1);
  // "considering" ends when the decayed views fall below the threshold.
  const TypeActivity views =
      ActivityOf(in.p, core::EventTypeName(core::EventType::kProductViewed), in.now, in.scoring);
  if (views.score >= in.o.considering_views && in.o.considering_views > 0) {
    t.At(FallsBelowMs(views.score, in.now, in.scoring.family(Family::kEventType).half_life_ms,
                      in.o.considering_views));
  }
}
void FingerprintJourney(const v1::ContextSignals& s, Digest& d) { d.Add(s.journey().stage()); }
void JourneyOptions(const SignalOptions& o, std::string& c) {
  Put(c, o.purchased_ms);
  Put(c, o.post_purchase_ms);
  Put(c, o.considering_views);
  Put(c, o.journey_window_ms);
}

// ---- Purchase suppression ---------------------------------------------------

int64_t SuppressedUntil(const core::ItemMemory& item, const SignalOptions& o) {
  const bool product = item.key.starts_with(core::kProductItemPrefix);
  return item.bought_ms + (product ? o.suppress_product_ms : o.suppress_category_ms);
}
void DeriveSuppression(const Inputs& in, v1::ContextSignals& s) {
  v1::PurchaseSuppression& ps = *s.mutable_suppression();
  v1::SignalMeta& meta = *ps.mutable_meta();
  FillMeta(meta, kPersonalization, in.now, in.p.counters.orders, in.version);
  for (const core::ItemMemory& item : in.p.items) {
    if (item.bought_ms == 0) continue;
    const int64_t until = SuppressedUntil(item, in.o);
    if (in.now >= until) continue;
    v1::SuppressedItem* out = ps.add_items();
    out->set_key(item.key.substr(2));
    out->set_kind(item.key.starts_with(core::kProductItemPrefix) ? "product" : "category");
    out->set_bought_ms(item.bought_ms);
    out->set_until_ms(until);
  }
  std::sort(ps.mutable_items()->begin(), ps.mutable_items()->end(),
            [](const v1::SuppressedItem& a, const v1::SuppressedItem& b) {
              return a.bought_ms() != b.bought_ms() ? a.bought_ms() > b.bought_ms()
                                                    : a.key() < b.key();
            });
  if (ps.items_size() > 0) {
    AddReason(meta, "bought_recently", ps.items(0).key(), 1, ps.items(0).bought_ms(), in.now,
              ps.items(0).kind());
  }
}
void SuppressionTransitions(const Inputs& in, Transitions& t) {
  for (const core::ItemMemory& item : in.p.items) {
    if (item.bought_ms != 0) t.At(SuppressedUntil(item, in.o));
  }
}
void FingerprintSuppression(const v1::ContextSignals& s, Digest& d) {
  for (const v1::SuppressedItem& i : s.suppression().items()) d.Add(i.kind() + ":" + i.key());
}
void SuppressionOptions(const SignalOptions& o, std::string& c) {
  Put(c, o.suppress_product_ms);
  Put(c, o.suppress_category_ms);
}

// ---- Cart abandonment -------------------------------------------------------

void DeriveCart(const Inputs& in, v1::ContextSignals& s) {
  v1::CartAbandonment& c = *s.mutable_cart();
  v1::SignalMeta& meta = *c.mutable_meta();
  FillMeta(meta, kMarketing, in.now, in.p.counters.cart_adds, in.version);
  for (const core::ItemMemory* item : in.cart.items) {
    v1::CartItem* out = c.add_items();
    out->set_product_id(item->key.substr(2));
    out->set_added_ms(item->carted_ms);
  }
  if (!in.cart.items.empty()) {
    c.set_abandoned_at_ms(in.cart.newest_added_ms + in.o.abandon_after_ms);
    c.set_abandoned(in.now >= c.abandoned_at_ms());
    AddReason(meta, c.abandoned() ? "no_order_since_cart" : "cart_open", "added_to_cart",
              static_cast<double>(in.cart.items.size()), in.cart.newest_added_ms, in.now,
              "items in cart");
  }
}
void CartTransitions(const Inputs& in, Transitions& t) {
  if (!in.cart.items.empty()) t.At(in.cart.newest_added_ms + in.o.abandon_after_ms);
}
void FingerprintCart(const v1::ContextSignals& s, Digest& d) {
  d.Add(s.cart().abandoned() ? "abandoned" : "open");
  for (const v1::CartItem& i : s.cart().items()) d.Add(i.product_id());
}
void CartOptions(const SignalOptions& o, std::string& c) { Put(c, o.abandon_after_ms); }

// ---- Engagement (a continuous score: no states to publish on time) ---------

void DeriveEngagement(const Inputs& in, v1::ContextSignals& s) {
  v1::Engagement& e = *s.mutable_engagement();
  FillMeta(*e.mutable_meta(), kAnalytics, in.now, in.events, in.version);
  e.set_score(in.fast);
  e.set_trend(in.trend);
  AddReason(*e.mutable_meta(), "decayed_activity", "all_events", in.fast, in.p.last_seen_ms, in.now,
            "engagement");
}

// ---- Lifecycle and churn risk -----------------------------------------------

void DeriveLifecycle(const Inputs& in, v1::ContextSignals& s) {
  const SignalOptions& o = in.o;
  v1::Lifecycle& l = *s.mutable_lifecycle();
  v1::SignalMeta& meta = *l.mutable_meta();
  FillMeta(meta, kAnalytics, in.now, in.events, in.version);
  const int64_t quiet = in.now - in.p.last_seen_ms;
  if (quiet >= o.lapsed_ms) {
    l.set_stage("lapsed");
  } else if (quiet >= o.at_risk_ms) {
    l.set_stage("at_risk");
  } else if (in.p.returned_ms > 0 && in.now - in.p.returned_ms < o.reactivated_ms) {
    l.set_stage("reactivated");
  } else if (in.now - in.p.first_seen_ms < o.new_ms) {
    l.set_stage("new");
  } else {
    l.set_stage("active");
  }
  AddReason(meta, "recency", "last_seen", static_cast<double>(quiet) / kDayMs, in.p.last_seen_ms,
            in.now, "days since");
  if (const std::optional<PurchaseHistory> h = PurchaseHistoryOf(in.p, in.now)) {
    // A customer: the purchase model (docs/signals.md, "Purchase model").
    const BgNbdParams& params = in.model->params;
    const double horizon = static_cast<double>(o.purchase_horizon_ms) / kMsPerWeek;
    l.set_p_active(ProbabilityAlive(params, *h));
    l.set_expected_purchases(ExpectedPurchases(params, *h, horizon));
    l.set_churn_risk(ProbabilityNoPurchase(params, *h, horizon));
    l.set_horizon_ms(o.purchase_horizon_ms);
    l.set_model_version(in.model->version);
    const core::PurchaseDays& days = in.p.purchase_days;
    AddReason(meta, "purchase_model", "purchase_days", static_cast<double>(days.count),
              int64_t{days.last_day()} * kDayMs, in.now, "days with an order");
    return;
  }
  // No order yet: recency dominates; a fading trend and few events add to
  // the risk.
  const double recency = 1.0 - std::exp2(-static_cast<double>(std::max<int64_t>(quiet, 0)) /
                                         static_cast<double>(o.churn_half_life_ms));
  const double fading = std::clamp(1.0 - in.trend, 0.0, 1.0);
  const double sparse = 1.0 / (1.0 + std::log1p(static_cast<double>(in.events)));
  l.set_churn_risk(std::clamp(0.6 * recency + 0.25 * fading + 0.15 * sparse, 0.0, 1.0));
  AddReason(meta, "engagement_trend", "trend", in.trend, 0, in.now, "fast/slow engagement");
}

// When a customer's churn risk next enters another tenth with no event: it
// only grows with quiet time, so a day-doubling search then halving finds
// the first day it has (within a day; none past ~11 years).
int64_t NextChurnBandMs(const Inputs& in) {
  const BgNbdParams& params = in.model->params;
  const double horizon = static_cast<double>(in.o.purchase_horizon_ms) / kMsPerWeek;
  auto band_at = [&](int64_t at) {
    return ChurnBand(ProbabilityNoPurchase(params, *PurchaseHistoryOf(in.p, at), horizon));
  };
  const int band = band_at(in.now);
  if (band == 9) return 0;
  int64_t lo = 0, hi = kDayMs;
  while (band_at(in.now + hi) == band) {
    lo = hi;
    hi *= 2;
    if (hi > 4096 * kDayMs) return 0;
  }
  while (hi - lo > kDayMs) {
    const int64_t mid = lo + (hi - lo) / 2;
    (band_at(in.now + mid) == band ? lo : hi) = mid;
  }
  return in.now + hi;
}
void LifecycleTransitions(const Inputs& in, Transitions& t) {
  t.At(in.p.first_seen_ms + in.o.new_ms);
  t.At(in.p.last_seen_ms + in.o.at_risk_ms);
  t.At(in.p.last_seen_ms + in.o.lapsed_ms);
  if (in.p.returned_ms > 0) t.At(in.p.returned_ms + in.o.reactivated_ms);
  if (in.p.purchase_days.count > 0) t.At(NextChurnBandMs(in));
}
void FingerprintLifecycle(const v1::ContextSignals& s, Digest& d) {
  d.Add(s.lifecycle().stage());
  if (!s.lifecycle().model_version().empty()) {
    d.Add(absl::StrCat("churn", ChurnBand(s.lifecycle().churn_risk())));
  }
}
void LifecycleOptions(const SignalOptions& o, std::string& c) {
  Put(c, o.new_ms);
  Put(c, o.at_risk_ms);
  Put(c, o.lapsed_ms);
  Put(c, o.reactivated_ms);
  Put(c, o.churn_half_life_ms);
  Put(c, o.purchase_horizon_ms);
  Put(c, o.purchase_model.r);
  Put(c, o.purchase_model.alpha);
  Put(c, o.purchase_model.a);
  Put(c, o.purchase_model.b);
}

// ---- Cold start -------------------------------------------------------------

void DeriveColdStart(const Inputs& in, v1::ContextSignals& s) {
  v1::ColdStart& c = *s.mutable_cold_start();
  FillMeta(*c.mutable_meta(), kPersonalization, in.now, in.events, in.version);
  c.set_evidence_weight(in.slow);
  c.set_threshold(in.o.cold_start_weight);
  c.set_cold(in.slow < in.o.cold_start_weight);
  AddReason(*c.mutable_meta(), c.cold() ? "little_evidence" : "enough_evidence", "all_events",
            in.slow, in.p.last_seen_ms, in.now, "evidence");
}
// A warm profile turns cold with time alone once its slow engagement
// decays below the threshold.
void ColdStartTransitions(const Inputs& in, Transitions& t) {
  const core::DecayedScore& slow = in.p.engagement_slow;
  if (in.slow < in.o.cold_start_weight || in.o.cold_start_weight <= 0 || slow.value <= 0) return;
  t.At(FallsBelowMs(slow.value, slow.ref_time_ms, in.scoring.engagement_slow_half_life_ms,
                    in.o.cold_start_weight));
}
void FingerprintColdStart(const v1::ContextSignals& s, Digest& d) {
  d.Add(s.cold_start().cold() ? "cold" : "warm");
}
void ColdStartOptions(const SignalOptions& o, std::string& c) { Put(c, o.cold_start_weight); }

// ---- Preferences ------------------------------------------------------------

void DerivePreferences(const Inputs& in, v1::ContextSignals& s) {
  v1::Preferences& pr = *s.mutable_preferences();
  v1::SignalMeta& meta = *pr.mutable_meta();
  FillMeta(meta, kMarketing, in.now, in.events, in.version);
  const std::vector<std::string> channel = TopKeys(in.ranked, Family::kChannel, 1);
  const std::vector<std::string> device = TopKeys(in.ranked, Family::kDevice, 1);
  if (!channel.empty()) pr.set_preferred_channel(channel[0]);
  if (!device.empty()) pr.set_preferred_device(device[0]);
  for (const std::string& h : TopKeys(in.ranked, Family::kHour, 3)) {
    pr.add_active_hours(std::stoi(h));
  }
  for (const std::string& d : TopKeys(in.ranked, Family::kWeekday, 3)) {
    pr.add_active_days(d);
  }
  if (!channel.empty()) {
    const core::DecayedScore* c = in.p.family(Family::kChannel).Find(channel[0]);
    AddReason(meta, "top_channel", channel[0],
              c->ValueAt(in.now, in.scoring.family(Family::kChannel).half_life_ms), c->ref_time_ms,
              in.now, "channel");
  }
}
void PreferencesTransitions(const Inputs& in, Transitions& t) {
  KeysDecayOut(in, Family::kChannel, 1, t);
  KeysDecayOut(in, Family::kDevice, 1, t);
  KeysDecayOut(in, Family::kHour, 3, t);
  KeysDecayOut(in, Family::kWeekday, 3, t);
}
void FingerprintPreferences(const v1::ContextSignals& s, Digest& d) {
  d.Add(s.preferences().preferred_channel());
  d.Add(s.preferences().preferred_device());
  for (int h : s.preferences().active_hours()) d.Add(std::to_string(h));
  for (const std::string& day : s.preferences().active_days()) d.Add(day);
}

// ---- Session ----------------------------------------------------------------

void DeriveSession(const Inputs& in, v1::ContextSignals& s) {
  const core::Session& session = in.p.session;
  v1::SessionContext& sc = *s.mutable_session();
  FillMeta(*sc.mutable_meta(), kPersonalization, in.now, session.events, in.version);
  sc.set_start_ms(session.start_ms);
  sc.set_last_event_ms(session.last_ms);
  sc.set_events(session.events);
  sc.set_active(session.events > 0 && in.now - session.last_ms <= in.scoring.session_gap_ms);
}
void SessionTransitions(const Inputs& in, Transitions& t) {
  if (in.p.session.events > 0) t.At(in.p.session.last_ms + in.scoring.session_gap_ms + 1);
}
void FingerprintSession(const v1::ContextSignals& s, Digest& d) {
  d.Add(s.session().active() ? "in_session" : "no_session");
}

// ---- Holdout ----------------------------------------------------------------

void DeriveHoldout(const Inputs& in, v1::ContextSignals& s) {
  v1::Holdout& h = *s.mutable_holdout();
  h.set_percent(in.o.holdout_percent);
  h.set_salt_id(in.o.holdout_salt);
  h.set_in_control_group(
      InHoldout(core::HoldoutKey(in.p), in.o.holdout_percent, in.o.holdout_salt));
}
void FingerprintHoldout(const v1::ContextSignals& s, Digest& d) {
  d.Add(s.holdout().in_control_group() ? "control" : "treated");
}
void HoldoutOptions(const SignalOptions& o, std::string& c) {
  Put(c, o.holdout_percent);
  Put(c, o.holdout_salt);
}

// One row per signal: every part is required (a signal without transitions
// or fingerprint says so with NoTransitions / NotFingerprinted), so a new
// signal cannot leave time-driven updates or the version behind. Bump
// `revision` when a signal's logic changes; its options enter the
// definition version on their own.
struct SignalDefinition {
  std::string_view name;
  int revision;
  void (*derive)(const Inputs&, v1::ContextSignals&);
  void (*transitions)(const Inputs&, Transitions&);
  void (*fingerprint)(const v1::ContextSignals&, Digest&);
  void (*options)(const SignalOptions&, std::string&);
};

constexpr SignalDefinition kSignals[] = {
    {"top_intents", 1, DeriveTopIntents, TopIntentsTransitions, FingerprintTopIntents,
     TopIntentsOptions},
    {"journey", 1, DeriveJourney, JourneyTransitions, FingerprintJourney, JourneyOptions},
    {"suppression", 1, DeriveSuppression, SuppressionTransitions, FingerprintSuppression,
     SuppressionOptions},
    {"cart", 1, DeriveCart, CartTransitions, FingerprintCart, CartOptions},
    {"engagement", 1, DeriveEngagement, NoTransitions, NotFingerprinted, NoOptions},
    {"lifecycle", 2, DeriveLifecycle, LifecycleTransitions, FingerprintLifecycle, LifecycleOptions},
    {"cold_start", 1, DeriveColdStart, ColdStartTransitions, FingerprintColdStart,
     ColdStartOptions},
    {"preferences", 1, DerivePreferences, PreferencesTransitions, FingerprintPreferences,
     NoOptions},
    {"session", 1, DeriveSession, SessionTransitions, FingerprintSession, NoOptions},
    {"holdout", 1, DeriveHoldout, NoTransitions, FingerprintHoldout, HoldoutOptions},
};

constexpr bool Complete(const SignalDefinition& d) {
  return !d.name.empty() && d.revision >= 1 && d.derive != nullptr && d.transitions != nullptr &&
         d.fingerprint != nullptr && d.options != nullptr;
}
static_assert(std::all_of(std::begin(kSignals), std::end(kSignals), Complete),
              "every signal defines derive, transitions, fingerprint and options");

}  // namespace

Signals::Signals(SignalOptions options) : options_(std::move(options)) {
  // The canonical form of every definition: its options and, once bumped,
  // its revision ("v1" and the options alone reproduce the versions
  // published before the table existed).
  std::string canonical = "v1";
  for (const SignalDefinition& d : kSignals) {
    d.options(options_, canonical);
    if (d.revision > 1) absl::StrAppend(&canonical, "|", std::string(d.name), "@", d.revision);
  }
  version_ = absl::StrFormat("%016x", XXH3_64bits(canonical.data(), canonical.size()));
  SetPurchaseModel({options_.purchase_model, "default"});
}

void Signals::SetPurchaseModel(PurchaseModel model) const {
  auto next = std::make_shared<const PurchaseModel>(std::move(model));
  absl::MutexLock lock(&model_->mu);
  model_->model = std::move(next);
}

std::shared_ptr<const PurchaseModel> Signals::purchase_model() const {
  absl::MutexLock lock(&model_->mu);
  return model_->model;
}

uint64_t Fingerprint(const v1::ContextSignals& s) {
  Digest d;
  for (const SignalDefinition& def : kSignals) def.fingerprint(s, d);
  return d.Value();
}

bool InHoldout(std::string_view profile_id, double percent, std::string_view salt) {
  if (percent <= 0) return false;
  const std::string input = absl::StrCat(std::string(salt), ":", std::string(profile_id));
  const uint64_t bucket = XXH3_64bits(input.data(), input.size()) % 10000;  // 0.01% steps
  return static_cast<double>(bucket) < percent * 100.0;
}

v1::ContextSignals Signals::Derive(const core::Profile& p, int64_t now,
                                   const core::ScoringOptions& scoring) const {
  v1::ContextSignals s;
  DeriveInto(p, now, scoring, s);
  return s;
}

void Signals::DeriveInto(const core::Profile& p, int64_t now, const core::ScoringOptions& scoring,
                         v1::ContextSignals& out) const {
  core::Rankings ranked(p, now, scoring);
  DeriveInto(ranked, out);
}

void Signals::DeriveInto(core::Rankings& ranked, v1::ContextSignals& out) const {
  const Inputs in = InputsOf(ranked, options_, version_, purchase_model());
  for (const SignalDefinition& d : kSignals) d.derive(in, out);
}

int64_t Signals::NextTransitionMs(const core::Profile& p, int64_t now,
                                  const core::ScoringOptions& scoring) const {
  core::Rankings ranked(p, now, scoring);
  return NextTransitionMs(ranked);
}

int64_t Signals::NextTransitionMs(core::Rankings& ranked) const {
  const Inputs in = InputsOf(ranked, options_, version_, purchase_model());
  const int64_t now = ranked.now_ms();
  Transitions t(now);
  for (const SignalDefinition& d : kSignals) d.transitions(in, t);
  return t.next();
}

std::vector<std::string_view> SignalNames() {
  std::vector<std::string_view> names;
  for (const SignalDefinition& d : kSignals) names.push_back(d.name);
  return names;
}

}  // namespace profiled::signals
