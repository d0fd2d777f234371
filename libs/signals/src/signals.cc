#include "profiled/signals/signals.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace profiled::signals {
namespace {

using core::Family;

constexpr int64_t kMinuteMs = 60 * 1000;
constexpr int64_t kHourMs = 60 * kMinuteMs;
constexpr int64_t kDayMs = 24 * kHourMs;

// "45s", "12m", "3h", "2d" ago.
std::string Ago(int64_t ms) {
  if (ms < kMinuteMs) return absl::StrCat(std::max<int64_t>(ms, 0) / 1000, "s ago");
  if (ms < kHourMs) return absl::StrCat(ms / kMinuteMs, "m ago");
  if (ms < kDayMs) return absl::StrCat(ms / kHourMs, "h ago");
  return absl::StrCat(ms / kDayMs, "d ago");
}

v1::SignalReason* AddReason(v1::SignalMeta& meta, std::string code, std::string key, double weight,
                            int64_t last_ms, int64_t now_ms, std::string_view what) {
  v1::SignalReason* r = meta.add_reasons();
  r->set_text(last_ms > 0 ? absl::StrFormat("%s %s: %.3g, last %s", std::string(what), key,
                                            weight, Ago(now_ms - last_ms))
                          : absl::StrFormat("%s %s: %.3g", std::string(what), key, weight));
  r->set_code(std::move(code));
  r->set_key(std::move(key));
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

void TopOf(const core::Profile& p, Family family, int64_t now, const core::ScoringOptions& scoring,
           size_t k, google::protobuf::RepeatedPtrField<v1::WeightedKey>& out, v1::SignalMeta& meta,
           const char* code, std::string_view what) {
  std::vector<core::ScoreFamily::Ranked> ranked = p.family(family).RankedAt(now, scoring.family(family));
  double total = 0;
  for (const auto& r : ranked) total += r.value;
  for (size_t i = 0; i < ranked.size() && i < k; ++i) {
    v1::WeightedKey* w = out.Add();
    w->set_key(std::string(ranked[i].key));
    w->set_score(ranked[i].value);
    w->set_weight(total > 0 ? ranked[i].value / total : 0);
    if (i == 0) AddReason(meta, code, w->key(), w->score(), ranked[i].ref_time_ms, now, what);
  }
}

// Up to `n` keys of a family at `now`, most active first.
std::vector<std::string> TopKeys(const core::Profile& p, Family family, int64_t now,
                                 const core::ScoringOptions& scoring, size_t n) {
  std::vector<std::string> keys;
  for (const auto& r : p.family(family).RankedAt(now, scoring.family(family))) {
    if (keys.size() == n) break;
    keys.emplace_back(r.key);
  }
  return keys;
}

}  // namespace

Signals::Signals(SignalOptions options) : options_(std::move(options)) {
  const SignalOptions& o = options_;
  const std::string canonical = absl::StrCat(
      "v1|", o.top_intents, "|", o.purchased_ms, "|", o.post_purchase_ms, "|",
      o.considering_views, "|", o.journey_window_ms, "|", o.suppress_product_ms, "|",
      o.suppress_category_ms, "|", o.abandon_after_ms, "|", o.new_ms, "|", o.at_risk_ms, "|",
      o.lapsed_ms, "|", o.reactivated_ms, "|", o.churn_half_life_ms, "|", o.cold_start_weight, "|",
      o.holdout_percent, "|", o.holdout_salt);
  version_ = absl::StrFormat("%016x", XXH3_64bits(canonical.data(), canonical.size()));
}

uint64_t Fingerprint(const v1::ContextSignals& s) {
  std::string d;
  auto add = [&d](std::string_view part) {
    d.append(part);
    d.push_back('\x1f');
  };
  for (const auto* keys : {&s.top_intents().categories(), &s.top_intents().brands(),
                           &s.top_intents().products()}) {
    for (const v1::WeightedKey& k : *keys) add(k.key());
    add("|");
  }
  add(s.journey().stage());
  for (const v1::SuppressedItem& i : s.suppression().items()) add(i.kind() + ":" + i.key());
  add(s.cart().abandoned() ? "abandoned" : "open");
  for (const v1::CartItem& i : s.cart().items()) add(i.product_id());
  add(s.lifecycle().stage());
  add(s.cold_start().cold() ? "cold" : "warm");
  add(s.preferences().preferred_channel());
  add(s.preferences().preferred_device());
  for (int h : s.preferences().active_hours()) add(std::to_string(h));
  for (const std::string& day : s.preferences().active_days()) add(day);
  add(s.session().active() ? "in_session" : "no_session");
  add(s.holdout().in_control_group() ? "control" : "treated");
  return XXH3_64bits(d.data(), d.size());
}

bool InHoldout(std::string_view profile_id, double percent, std::string_view salt) {
  if (percent <= 0) return false;
  const std::string input = absl::StrCat(std::string(salt), ":", std::string(profile_id));
  const uint64_t bucket = XXH3_64bits(input.data(), input.size()) % 10000;  // 0.01% steps
  return static_cast<double>(bucket) < percent * 100.0;
}

v1::ContextSignals Signals::Derive(const core::Profile& p, int64_t now,
                                   const core::ScoringOptions& scoring) const {
  const SignalOptions& o = options_;
  const int64_t events = static_cast<int64_t>(p.version);
  v1::ContextSignals s;

  // Top intents.
  {
    v1::TopIntents& t = *s.mutable_top_intents();
    v1::SignalMeta& meta = *t.mutable_meta();
    FillMeta(meta, kPersonalization, now, events, version_);
    TopOf(p, Family::kCategory, now, scoring, o.top_intents, *t.mutable_categories(), meta,
          "top_category", "category");
    TopOf(p, Family::kBrand, now, scoring, o.top_intents, *t.mutable_brands(), meta, "top_brand",
          "brand");
    TopOf(p, Family::kProduct, now, scoring, o.top_intents, *t.mutable_products(), meta,
          "top_product", "product");
  }

  // Journey stage: the most advanced recent step wins, unless an order came after it.
  const CartState cart = CartOf(p);
  const int64_t last_order = LastOrderMs(p);
  {
    v1::JourneyStage& j = *s.mutable_journey();
    v1::SignalMeta& meta = *j.mutable_meta();
    FillMeta(meta, kPersonalization, now, events, version_);
    const TypeActivity checkout = ActivityOf(p, "checkout_started", now, scoring);
    const TypeActivity views = ActivityOf(p, "product_viewed", now, scoring);
    auto recent = [&](int64_t t) { return t > 0 && now - t <= o.journey_window_ms; };
    if (recent(checkout.last_ms) && checkout.last_ms > last_order) {
      j.set_stage("checkout");
      AddReason(meta, "recent_checkout", "checkout_started", checkout.score, checkout.last_ms, now,
                "event");
    } else if (!cart.items.empty() && recent(cart.newest_added_ms)) {
      j.set_stage("cart");
      AddReason(meta, "cart_items_waiting", "added_to_cart", static_cast<double>(cart.items.size()),
                cart.newest_added_ms, now, "items in cart");
    } else if (last_order > 0 && now - last_order <= o.purchased_ms) {
      j.set_stage("purchased");
      AddReason(meta, "recent_order", "order_completed", 1, last_order, now, "order");
    } else if (last_order > 0 && now - last_order <= o.post_purchase_ms) {
      j.set_stage("post_purchase");
      AddReason(meta, "recent_order", "order_completed", 1, last_order, now, "order");
    } else if (views.score >= o.considering_views) {
      j.set_stage("considering");
      AddReason(meta, "repeated_views", "product_viewed", views.score, views.last_ms, now, "event");
    } else {
      j.set_stage("browsing");
      AddReason(meta, "no_strong_intent", "product_viewed", views.score, views.last_ms, now, "event");
    }
  }

  // Purchase suppression.
  {
    v1::PurchaseSuppression& ps = *s.mutable_suppression();
    v1::SignalMeta& meta = *ps.mutable_meta();
    FillMeta(meta, kPersonalization, now, p.counters.orders, version_);
    std::vector<const core::ItemMemory*> bought;
    for (const core::ItemMemory& item : p.items) {
      if (item.bought_ms == 0) continue;
      const bool product = item.key.starts_with(core::kProductItemPrefix);
      const int64_t until = item.bought_ms + (product ? o.suppress_product_ms : o.suppress_category_ms);
      if (now >= until) continue;
      v1::SuppressedItem* out = ps.add_items();
      out->set_key(item.key.substr(2));
      out->set_kind(product ? "product" : "category");
      out->set_bought_ms(item.bought_ms);
      out->set_until_ms(until);
      bought.push_back(&item);
    }
    std::sort(ps.mutable_items()->begin(), ps.mutable_items()->end(),
              [](const v1::SuppressedItem& a, const v1::SuppressedItem& b) {
                return a.bought_ms() != b.bought_ms() ? a.bought_ms() > b.bought_ms()
                                                      : a.key() < b.key();
              });
    if (ps.items_size() > 0) {
      AddReason(meta, "bought_recently", ps.items(0).key(), 1, ps.items(0).bought_ms(), now,
                ps.items(0).kind());
    }
  }

  // Cart abandonment.
  {
    v1::CartAbandonment& c = *s.mutable_cart();
    v1::SignalMeta& meta = *c.mutable_meta();
    FillMeta(meta, kMarketing, now, p.counters.cart_adds, version_);
    for (const core::ItemMemory* item : cart.items) {
      v1::CartItem* out = c.add_items();
      out->set_product_id(item->key.substr(2));
      out->set_added_ms(item->carted_ms);
    }
    if (!cart.items.empty()) {
      c.set_abandoned_at_ms(cart.newest_added_ms + o.abandon_after_ms);
      c.set_abandoned(now >= c.abandoned_at_ms());
      AddReason(meta, c.abandoned() ? "no_order_since_cart" : "cart_open", "added_to_cart",
                static_cast<double>(cart.items.size()), cart.newest_added_ms, now, "items in cart");
    }
  }

  // Engagement, lifecycle and churn risk.
  const double fast = p.engagement_fast.ValueAt(now, scoring.engagement_fast_half_life_ms);
  const double slow = p.engagement_slow.ValueAt(now, scoring.engagement_slow_half_life_ms);
  const double trend = slow > 0 ? (fast / scoring.engagement_fast_half_life_ms) /
                                      (slow / scoring.engagement_slow_half_life_ms)
                                : 0;
  {
    v1::Engagement& e = *s.mutable_engagement();
    FillMeta(*e.mutable_meta(), kAnalytics, now, events, version_);
    e.set_score(fast);
    e.set_trend(trend);
    AddReason(*e.mutable_meta(), "decayed_activity", "all_events", fast, p.last_seen_ms, now,
              "engagement");
  }
  {
    v1::Lifecycle& l = *s.mutable_lifecycle();
    v1::SignalMeta& meta = *l.mutable_meta();
    FillMeta(meta, kAnalytics, now, events, version_);
    const int64_t quiet = now - p.last_seen_ms;
    if (quiet >= o.lapsed_ms) {
      l.set_stage("lapsed");
    } else if (quiet >= o.at_risk_ms) {
      l.set_stage("at_risk");
    } else if (p.returned_ms > 0 && now - p.returned_ms < o.reactivated_ms) {
      l.set_stage("reactivated");
    } else if (now - p.first_seen_ms < o.new_ms) {
      l.set_stage("new");
    } else {
      l.set_stage("active");
    }
    // Recency dominates; a fading trend and few events add to the risk.
    const double recency = 1.0 - std::exp2(-static_cast<double>(std::max<int64_t>(quiet, 0)) /
                                           static_cast<double>(o.churn_half_life_ms));
    const double fading = std::clamp(1.0 - trend, 0.0, 1.0);
    const double sparse = 1.0 / (1.0 + std::log1p(static_cast<double>(events)));
    l.set_churn_risk(std::clamp(0.6 * recency + 0.25 * fading + 0.15 * sparse, 0.0, 1.0));
    AddReason(meta, "recency", "last_seen", static_cast<double>(quiet) / kDayMs, p.last_seen_ms, now,
              "days since");
    AddReason(meta, "engagement_trend", "trend", trend, 0, now, "fast/slow engagement");
  }

  // Cold start.
  {
    v1::ColdStart& c = *s.mutable_cold_start();
    FillMeta(*c.mutable_meta(), kPersonalization, now, events, version_);
    c.set_evidence_weight(slow);
    c.set_threshold(o.cold_start_weight);
    c.set_cold(slow < o.cold_start_weight);
    AddReason(*c.mutable_meta(), c.cold() ? "little_evidence" : "enough_evidence", "all_events",
              slow, p.last_seen_ms, now, "evidence");
  }

  // Preferences.
  {
    v1::Preferences& pr = *s.mutable_preferences();
    v1::SignalMeta& meta = *pr.mutable_meta();
    FillMeta(meta, kMarketing, now, events, version_);
    const std::vector<std::string> channel = TopKeys(p, Family::kChannel, now, scoring, 1);
    const std::vector<std::string> device = TopKeys(p, Family::kDevice, now, scoring, 1);
    if (!channel.empty()) pr.set_preferred_channel(channel[0]);
    if (!device.empty()) pr.set_preferred_device(device[0]);
    for (const std::string& h : TopKeys(p, Family::kHour, now, scoring, 3)) {
      pr.add_active_hours(std::stoi(h));
    }
    for (const std::string& d : TopKeys(p, Family::kWeekday, now, scoring, 3)) pr.add_active_days(d);
    if (!channel.empty()) {
      const core::DecayedScore* c = p.family(Family::kChannel).Find(channel[0]);
      AddReason(meta, "top_channel", channel[0],
                c->ValueAt(now, scoring.family(Family::kChannel).half_life_ms), c->ref_time_ms, now,
                "channel");
    }
  }

  // Session.
  {
    v1::SessionContext& sc = *s.mutable_session();
    FillMeta(*sc.mutable_meta(), kPersonalization, now, p.session.events, version_);
    sc.set_start_ms(p.session.start_ms);
    sc.set_last_event_ms(p.session.last_ms);
    sc.set_events(p.session.events);
    sc.set_active(p.session.events > 0 && now - p.session.last_ms <= scoring.session_gap_ms);
  }

  // Holdout.
  {
    v1::Holdout& h = *s.mutable_holdout();
    h.set_percent(o.holdout_percent);
    h.set_salt_id(o.holdout_salt);
    h.set_in_control_group(InHoldout(core::HoldoutKey(p), o.holdout_percent, o.holdout_salt));
  }
  return s;
}

int64_t Signals::NextTransitionMs(const core::Profile& p, int64_t now,
                                  const core::ScoringOptions& scoring) const {
  const SignalOptions& o = options_;
  int64_t next = 0;
  auto consider = [&](int64_t t) {
    if (t > now && (next == 0 || t < next)) next = t;
  };
  const CartState cart = CartOf(p);
  if (!cart.items.empty()) {
    consider(cart.newest_added_ms + o.abandon_after_ms);
    consider(cart.newest_added_ms + o.journey_window_ms);
  }
  for (const core::ItemMemory& item : p.items) {
    if (item.bought_ms == 0) continue;
    const bool product = item.key.starts_with(core::kProductItemPrefix);
    consider(item.bought_ms + (product ? o.suppress_product_ms : o.suppress_category_ms));
  }
  const int64_t last_order = LastOrderMs(p);
  if (last_order > 0) {
    consider(last_order + o.purchased_ms);
    consider(last_order + o.post_purchase_ms);
  }
  const TypeActivity checkout = ActivityOf(p, "checkout_started", now, scoring);
  if (checkout.last_ms > 0) consider(checkout.last_ms + o.journey_window_ms);
  if (p.session.events > 0) consider(p.session.last_ms + scoring.session_gap_ms + 1);
  consider(p.first_seen_ms + o.new_ms);
  consider(p.last_seen_ms + o.at_risk_ms);
  consider(p.last_seen_ms + o.lapsed_ms);
  if (p.returned_ms > 0) consider(p.returned_ms + o.reactivated_ms);
  return next;
}

}  // namespace profiled::signals
