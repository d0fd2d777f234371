// Context signals, one behaviour at a time, with their boundaries at exact
// threshold instants; holdout assignment over 100k ids.
#include "profiled/signals/signals.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "profiled/signals/reason_text.h"
#include "support/test_support.h"

namespace profiled::signals {
namespace {

using testing::MakeEvent;
constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
// 2024-01-15T12:00:00Z, a Monday.
constexpr int64_t t0 = 1'705'320'000'000;

struct Fixture {
  core::ScoringOptions scoring;
  SignalOptions options;
  core::Profile profile = core::Profile::New("p-test");
  int n = 0;

  void Apply(const std::string& type, int64_t at, const std::string& product = "P1",
             const std::string& category = "shoes.running") {
    core::ApplyEvent(
        MakeEvent("e" + std::to_string(n++), type, at, "u1", category, product, "Acme"), scoring,
        profile);
  }
  v1::ContextSignals At(int64_t now) const {
    return Signals(options).Derive(profile, now, scoring);
  }
};

TEST_CASE("top intents rank categories, brands and products with normalized weights", "[signals]") {
  Fixture f;
  f.Apply("product_viewed", t0, "P1", "shoes.running");
  f.Apply("product_viewed", t0 + kMinute, "P2", "shoes.trail");
  f.Apply("added_to_cart", t0 + 2 * kMinute, "P2", "shoes.trail");
  const v1::TopIntents t = f.At(t0 + 2 * kMinute).top_intents();
  REQUIRE(t.categories_size() == 3);  // shoes, shoes.trail, shoes.running
  CHECK(t.categories(0).key() == "shoes");
  CHECK(t.categories(1).key() == "shoes.trail");  // 1 view + 3 for the cart
  double sum = 0;
  for (const auto& c : t.categories()) sum += c.weight();
  CHECK(sum == Approx(1.0));
  CHECK(t.products(0).key() == "P2");
  CHECK(t.brands(0).key() == "acme");
  CHECK(t.meta().purpose() == "personalization");
  CHECK(t.meta().evidence_count() == 3);
  REQUIRE(t.meta().reasons_size() >= 1);
  CHECK(t.meta().reasons(0).code() == "top_category");
  CHECK(t.meta().reasons(0).text() == "category shoes: 5, last 0s ago");
}

TEST_CASE("journey stage moves from browsing to considering, cart, checkout, purchased",
          "[signals]") {
  Fixture f;
  f.Apply("product_viewed", t0);
  CHECK(f.At(t0).journey().stage() == "browsing");
  f.Apply("product_viewed", t0);
  f.Apply("product_viewed", t0);  // decayed views reach exactly 3 at t0
  CHECK(f.At(t0).journey().stage() == "considering");
  f.Apply("added_to_cart", t0 + kMinute);
  CHECK(f.At(t0 + kMinute).journey().stage() == "cart");
  f.Apply("checkout_started", t0 + 2 * kMinute);
  CHECK(f.At(t0 + 2 * kMinute).journey().stage() == "checkout");
  const int64_t order = t0 + 3 * kMinute;
  f.Apply("order_completed", order);
  CHECK(f.At(order).journey().stage() == "purchased");
  CHECK(f.At(order + f.options.purchased_ms).journey().stage() == "purchased");
  CHECK(f.At(order + f.options.purchased_ms + 1).journey().stage() == "post_purchase");
  CHECK(f.At(order + f.options.post_purchase_ms).journey().stage() == "post_purchase");
  CHECK(f.At(order + f.options.post_purchase_ms + 1).journey().stage() == "browsing");
  CHECK(f.At(order).journey().meta().reasons(0).code() == "recent_order");
}

TEST_CASE("a bought product is suppressed until its window ends, its category for less",
          "[signals]") {
  Fixture f;
  const int64_t order = t0 + kHour;
  f.Apply("order_completed", order, "SEAT-1", "home.bathroom");
  const v1::PurchaseSuppression at_order = f.At(order).suppression();
  REQUIRE(at_order.items_size() == 2);
  std::map<std::string, int64_t> until;
  for (const auto& item : at_order.items()) until[item.kind() + ":" + item.key()] = item.until_ms();
  CHECK(until.at("product:SEAT-1") == order + 30 * kDay);
  CHECK(until.at("category:home.bathroom") == order + 7 * kDay);
  CHECK(f.At(order + 7 * kDay - 1).suppression().items_size() == 2);
  CHECK(f.At(order + 7 * kDay).suppression().items_size() == 1);
  CHECK(f.At(order + 30 * kDay - 1).suppression().items_size() == 1);
  CHECK(f.At(order + 30 * kDay).suppression().items_size() == 0);
}

TEST_CASE("a cart turns abandoned exactly abandon_after after its newest item", "[signals]") {
  Fixture f;
  f.Apply("added_to_cart", t0, "P1");
  f.Apply("added_to_cart", t0 + 10 * kMinute, "P2");
  const int64_t due = t0 + 10 * kMinute + kHour;
  const Signals signals(f.options);
  // The transitions ahead, in order: the session ends first, then the cart turns.
  std::vector<int64_t> ahead;
  for (int64_t t = t0 + 10 * kMinute; ahead.size() < 2;) {
    t = signals.NextTransitionMs(f.profile, t, f.scoring);
    REQUIRE(t > 0);
    ahead.push_back(t);
  }
  CHECK(ahead == std::vector<int64_t>{t0 + 40 * kMinute + 1, due});
  const v1::CartAbandonment open = f.At(due - 1).cart();
  CHECK_FALSE(open.abandoned());
  CHECK(open.items_size() == 2);
  CHECK(open.abandoned_at_ms() == due);
  const v1::CartAbandonment abandoned = f.At(due).cart();
  CHECK(abandoned.abandoned());
  CHECK(abandoned.meta().reasons(0).code() == "no_order_since_cart");
  CHECK(abandoned.meta().purpose() == "marketing");

  SECTION("removing an item takes it out of the cart") {
    f.Apply("removed_from_cart", t0 + 20 * kMinute, "P2");
    const v1::CartAbandonment c = f.At(due).cart();
    REQUIRE(c.items_size() == 1);
    CHECK(c.items(0).product_id() == "P1");
    CHECK(c.abandoned_at_ms() == t0 + kHour);
  }
  SECTION("an order after the cart clears it") {
    f.Apply("order_completed", t0 + 30 * kMinute, "P1");
    CHECK(f.At(due).cart().items_size() == 0);
    CHECK_FALSE(f.At(due).cart().abandoned());
  }
}

TEST_CASE("lifecycle: new, active, at risk, lapsed and reactivated at their thresholds",
          "[signals]") {
  Fixture f;
  f.Apply("product_viewed", t0);
  CHECK(f.At(t0).lifecycle().stage() == "new");
  f.Apply("product_viewed", t0 + 8 * kDay);
  CHECK(f.At(t0 + 8 * kDay).lifecycle().stage() == "active");
  CHECK(f.At(t0 + 8 * kDay + 21 * kDay - 1).lifecycle().stage() == "active");
  CHECK(f.At(t0 + 8 * kDay + 21 * kDay).lifecycle().stage() == "at_risk");
  CHECK(f.At(t0 + 8 * kDay + 60 * kDay).lifecycle().stage() == "lapsed");
  const int64_t back = t0 + 8 * kDay + 61 * kDay;
  f.Apply("product_viewed", back);
  CHECK(f.At(back).lifecycle().stage() == "reactivated");
  CHECK(f.At(back + 14 * kDay - 1).lifecycle().stage() == "reactivated");
  CHECK(f.At(back + 14 * kDay).lifecycle().stage() == "active");
  // Churn risk grows with silence.
  double previous = -1;
  for (int days = 0; days <= 120; days += 10) {
    const double risk = f.At(back + days * kDay).lifecycle().churn_risk();
    CHECK(risk > previous);
    CHECK(risk <= 1.0);
    previous = risk;
  }
}

TEST_CASE("cold start below the evidence threshold, engagement trend steady at 1", "[signals]") {
  Fixture f;
  f.Apply("product_viewed", t0);
  f.Apply("product_viewed", t0);
  CHECK(f.At(t0).cold_start().cold());
  CHECK(f.At(t0).cold_start().evidence_weight() == Approx(2.0));
  f.Apply("product_viewed", t0);
  CHECK_FALSE(f.At(t0).cold_start().cold());  // exactly 3 = the threshold

  Fixture steady;
  for (int i = 0; i < 1200; ++i) steady.Apply("page_viewed", t0 + i * 6 * kHour);  // 300 days
  const double trend = steady.At(t0 + 1199 * 6 * kHour).engagement().trend();
  CHECK(trend == Approx(1.0).epsilon(0.03));
  // Silence makes it fade: the fast sum falls ten times faster.
  CHECK(steady.At(t0 + 1199 * 6 * kHour + 10 * kDay).engagement().trend() < 0.2);
}

TEST_CASE("preferences: channel, device and active hours in the event's time zone", "[signals]") {
  Fixture f;
  for (int i = 0; i < 3; ++i) {
    v1::InteractionEvent e =
        MakeEvent("tz" + std::to_string(i), "page_viewed", t0 + i * kMinute, "u1");
    e.set_channel("app");
    e.mutable_context()->set_device("iPhone");
    e.mutable_context()->set_timezone("America/New_York");  // 12:00Z in January = 07:00 local
    core::ApplyEvent(e, f.scoring, f.profile);
  }
  f.Apply("page_viewed", t0 + kHour);  // web, no zone: 13:00 UTC
  const v1::Preferences p = f.At(t0 + kHour).preferences();
  CHECK(p.preferred_channel() == "app");
  CHECK(p.preferred_device() == "iphone");
  REQUIRE(p.active_hours_size() == 2);
  CHECK(p.active_hours(0) == 7);
  CHECK(p.active_hours(1) == 13);
  REQUIRE(p.active_days_size() == 1);
  CHECK(p.active_days(0) == "mon");
}

TEST_CASE("the session is active while its latest event is within the gap", "[signals]") {
  Fixture f;
  f.Apply("page_viewed", t0);
  f.Apply("page_viewed", t0 + 10 * kMinute);
  const v1::SessionContext s = f.At(t0 + 40 * kMinute).session();
  CHECK(s.active());
  CHECK(s.start_ms() == t0);
  CHECK(s.events() == 2);
  CHECK_FALSE(f.At(t0 + 40 * kMinute + 1).session().active());
  f.Apply("page_viewed", t0 + 2 * kHour);  // a new session
  CHECK(f.At(t0 + 2 * kHour).session().start_ms() == t0 + 2 * kHour);
  CHECK(f.At(t0 + 2 * kHour).session().events() == 1);
}

TEST_CASE("holdout: deterministic, salted, and within a point of the configured share",
          "[signals]") {
  int in = 0, moved = 0;
  for (int i = 0; i < 100'000; ++i) {
    const std::string id = "p-" + std::to_string(i);
    const bool a = InHoldout(id, 10.0, "exp-1");
    CHECK(a == InHoldout(id, 10.0, "exp-1"));
    in += a;
    moved += a != InHoldout(id, 10.0, "exp-2");
  }
  CHECK(std::abs(in / 1000.0 - 10.0) <= 1.0);  // percent of 100k
  CHECK(moved > 10'000);                       // a new salt reshuffles
  CHECK_FALSE(InHoldout("p-1", 0.0, "exp-1"));
  CHECK(InHoldout("p-1", 100.0, "exp-1"));
  // The update stamps it; merges keep the survivor's id, so its assignment.
  Fixture f;
  f.options.holdout_percent = 100;
  f.Apply("page_viewed", t0);
  CHECK(f.At(t0).holdout().in_control_group());
  CHECK(f.At(t0).holdout().salt_id() == "holdout-v1");
}

TEST_CASE("holdout: a merge keeps the group of the profile seen first, in any merge order",
          "[signals][holdout]") {
  // An anonymous visitor in the control group logs in to a known profile in
  // treatment: the person stays in control.
  std::string control, treated;
  for (int i = 0; control.empty() || treated.empty(); ++i) {
    const std::string id = "p-" + std::to_string(i);
    (InHoldout(id, 50, "holdout-v1") ? control : treated) = id;
  }
  Fixture known, anonymous;
  known.options.holdout_percent = anonymous.options.holdout_percent = 50;
  known.profile.id = treated;
  anonymous.profile.id = control;
  anonymous.Apply("page_viewed", t0);  // seen first
  known.Apply("page_viewed", t0 + kMinute);
  CHECK_FALSE(known.At(t0 + kMinute).holdout().in_control_group());
  core::Profile survivor = known.profile;  // the known profile survives the merge
  core::MergeProfiles(anonymous.profile, known.scoring, survivor);
  known.profile = survivor;
  CHECK(known.At(t0 + kMinute).holdout().in_control_group());
  CHECK(core::HoldoutKey(survivor) == control);

  // Three profiles merged in every order and grouping agree on the key; a
  // profile with no events yet never decides.
  core::ScoringOptions scoring;
  core::Profile parts[3] = {core::Profile::New("p-a"), core::Profile::New("p-b"),
                            core::Profile::New("p-c")};
  for (int i : {0, 1}) {
    v1::InteractionEvent e = testing::MakeEvent("e" + std::to_string(i), "page_viewed",
                                                t0 + (i == 0 ? 5 : 2) * kMinute, "u");
    core::ApplyEvent(e, scoring, parts[i]);
  }
  for (auto order :
       {std::array{0, 1, 2}, std::array{2, 1, 0}, std::array{1, 2, 0}, std::array{2, 0, 1}}) {
    core::Profile merged = parts[order[0]];
    core::MergeProfiles(parts[order[1]], scoring, merged);
    core::MergeProfiles(parts[order[2]], scoring, merged);
    CHECK(core::HoldoutKey(merged) == "p-b");  // first seen: t0 + 2 minutes
  }
}

TEST_CASE("the definition version names the signal options", "[signals]") {
  SignalOptions a, b;
  CHECK(Signals(a).definition_version() == Signals(b).definition_version());
  b.abandon_after_ms += 1;
  CHECK(Signals(a).definition_version() != Signals(b).definition_version());
  CHECK(Signals(a).definition_version().size() == 16);
  Fixture f;
  f.Apply("page_viewed", t0);
  CHECK(f.At(t0).journey().meta().definition_version() == Signals(a).definition_version());
  CHECK(f.At(t0).journey().meta().as_of_ms() == t0);
}

TEST_CASE("definition versions are stable: the same options give the version published for them",
          "[signals]") {
  // Since lifecycle@2 (the purchase model, issue 18); before it the same
  // options gave 995237027becada4 and 571017bcbf109986. A change here
  // changes what subscribers hold: bump a revision instead of editing.
  SignalOptions defaults;
  CHECK(Signals(defaults).definition_version() == "28931839ce838a6b");
  SignalOptions holdout;
  holdout.holdout_percent = 5;
  holdout.holdout_salt = "x";
  CHECK(Signals(holdout).definition_version() == "ebc93dcd635c8d9d");
}

TEST_CASE("every option changes the definition version", "[signals]") {
  const SignalOptions base;
  const std::string v = Signals(base).definition_version();
  std::vector<std::function<void(SignalOptions&)>> changes = {
      [](SignalOptions& o) { o.top_intents += 1; },
      [](SignalOptions& o) { o.purchased_ms += 1; },
      [](SignalOptions& o) { o.post_purchase_ms += 1; },
      [](SignalOptions& o) { o.considering_views += 0.5; },
      [](SignalOptions& o) { o.journey_window_ms += 1; },
      [](SignalOptions& o) { o.suppress_product_ms += 1; },
      [](SignalOptions& o) { o.suppress_category_ms += 1; },
      [](SignalOptions& o) { o.abandon_after_ms += 1; },
      [](SignalOptions& o) { o.new_ms += 1; },
      [](SignalOptions& o) { o.at_risk_ms += 1; },
      [](SignalOptions& o) { o.lapsed_ms += 1; },
      [](SignalOptions& o) { o.reactivated_ms += 1; },
      [](SignalOptions& o) { o.churn_half_life_ms += 1; },
      [](SignalOptions& o) { o.purchase_horizon_ms += 1; },
      [](SignalOptions& o) { o.purchase_model.r += 0.01; },
      [](SignalOptions& o) { o.purchase_model.alpha += 0.01; },
      [](SignalOptions& o) { o.purchase_model.a += 0.01; },
      [](SignalOptions& o) { o.purchase_model.b += 0.01; },
      [](SignalOptions& o) { o.cold_start_weight += 0.5; },
      [](SignalOptions& o) { o.holdout_percent += 1; },
      [](SignalOptions& o) { o.holdout_salt += "!"; }};
  for (size_t i = 0; i < changes.size(); ++i) {
    CAPTURE(i);
    SignalOptions changed = base;
    changes[i](changed);
    CHECK(Signals(changed).definition_version() != v);
  }
  CHECK(SignalNames().size() == 10);
}

}  // namespace
}  // namespace profiled::signals

namespace profiled::signals {
namespace {

// Orders on the given days after t0 (and a view between), by user u1.
Fixture Customer(const std::vector<int>& order_days) {
  Fixture f;
  for (int d : order_days) {
    f.Apply("product_viewed", t0 + d * kDay - kHour);
    f.Apply("order_completed", t0 + d * kDay);
  }
  return f;
}

TEST_CASE(
    "a customer's churn risk is the purchase model's probability of no order within the "
    "horizon, beside P(active) and the orders to expect",
    "[signals][purchase_model]") {
  const Fixture f = Customer({0, 10, 30, 30});
  const int64_t now = t0 + 60 * kDay;
  const v1::Lifecycle l = f.At(now).lifecycle();
  // Three distinct order days: x = 2 repeat, the last 30 days after the
  // first, observed for 60 days (weeks in the model).
  const double first_day = std::floor(static_cast<double>(t0) / kDay);
  const PurchaseHistory h{2, 30.0 / 7, (static_cast<double>(now) / kDay - first_day) / 7};
  const BgNbdParams params;
  const double horizon = 90.0 / 7;
  CHECK(l.p_active() == Approx(ProbabilityAlive(params, h)).epsilon(1e-12));
  CHECK(l.expected_purchases() == Approx(ExpectedPurchases(params, h, horizon)).epsilon(1e-12));
  CHECK(l.churn_risk() == Approx(ProbabilityNoPurchase(params, h, horizon)).epsilon(1e-12));
  CHECK(l.horizon_ms() == 90 * kDay);
  CHECK(l.model_version() == "default");
  bool reason = false;
  for (const auto& r : l.meta().reasons())
    reason |= r.code() == "purchase_model" && r.weight() == 3;
  CHECK(reason);
  // Quieter for longer: less likely active, riskier.
  const v1::Lifecycle later = f.At(now + 60 * kDay).lifecycle();
  CHECK(later.p_active() < l.p_active());
  CHECK(later.churn_risk() > l.churn_risk());
  CHECK(later.expected_purchases() < l.expected_purchases());

  // A model set at run time is used, and named, from the next derivation.
  const Signals signals(f.options);
  signals.SetPurchaseModel({{0.5, 6.0, 1.2, 2.8}, "fit-7"});
  const v1::Lifecycle fitted = signals.Derive(f.profile, now, f.scoring).lifecycle();
  CHECK(fitted.model_version() == "fit-7");
  CHECK(fitted.p_active() == Approx(ProbabilityAlive({0.5, 6.0, 1.2, 2.8}, h)).epsilon(1e-12));

  // Without an order there is no model: recency and engagement as before.
  Fixture browser;
  browser.Apply("product_viewed", t0);
  const v1::Lifecycle b = browser.At(now).lifecycle();
  CHECK(b.model_version().empty());
  CHECK(b.p_active() == 0);
  CHECK(b.churn_risk() > 0);
}

TEST_CASE(
    "churn risk moving into another tenth with no event is a transition: found within a day, "
    "and nothing changes state between transitions",
    "[signals][purchase_model]") {
  for (const std::vector<int>& days : {std::vector<int>{0}, std::vector<int>{0, 3, 9, 20},
                                       std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}) {
    CAPTURE(days.size());
    const Fixture f = Customer(days);
    const Signals signals(f.options);
    int64_t at = t0 + 21 * kDay;
    int band_changes = 0;
    for (int step = 0; step < 40; ++step) {
      const int64_t next = signals.NextTransitionMs(f.profile, at, f.scoring);
      if (next == 0) break;
      REQUIRE(next > at);
      const v1::ContextSignals here = signals.Derive(f.profile, at, f.scoring);
      // Nothing subscribers act on changes before the next transition (the
      // churn band may, within its last day; a profile turning cold is a
      // transition too, and so is a listed intent decaying out of the list).
      for (int64_t u = at + 6 * kHour; u <= next - kDay; u += 6 * kHour) {
        CHECK(Fingerprint(signals.Derive(f.profile, u, f.scoring)) == Fingerprint(here));
      }
      const v1::ContextSignals there = signals.Derive(f.profile, next, f.scoring);
      if (static_cast<int>(there.lifecycle().churn_risk() * 10) !=
          static_cast<int>(here.lifecycle().churn_risk() * 10)) {
        ++band_changes;
        CHECK(Fingerprint(there) != Fingerprint(here));
      }
      at = next;
    }
    CHECK(band_changes >= 2);
  }
}

TEST_CASE(
    "merged profiles give the purchase model's signals one profile with every order gives, in "
    "any merge order",
    "[signals][purchase_model][property]") {
  std::mt19937_64 rng(23);
  const core::ScoringOptions scoring;
  const Signals signals(SignalOptions{});
  for (int round = 0; round < 200; ++round) {
    std::vector<v1::InteractionEvent> events;
    const int n = 1 + static_cast<int>(rng() % 14);
    for (int i = 0; i < n; ++i) {
      events.push_back(MakeEvent("o" + std::to_string(i), "order_completed",
                                 t0 + static_cast<int64_t>(rng() % 120) * kDay, "u1", "shoes",
                                 "P1"));
    }
    core::Profile whole = core::Profile::New("p");
    for (const auto& e : events) core::ApplyEvent(e, scoring, whole);
    std::vector<core::Profile> parts(3, core::Profile::New("p"));
    for (const auto& e : events) core::ApplyEvent(e, scoring, parts[rng() % 3]);
    std::shuffle(parts.begin(), parts.end(), rng);
    core::Profile merged = parts[0];
    core::MergeProfiles(parts[1], scoring, merged);
    core::MergeProfiles(parts[2], scoring, merged);
    const int64_t now = t0 + 150 * kDay;
    const v1::Lifecycle a = signals.Derive(merged, now, scoring).lifecycle();
    const v1::Lifecycle b = signals.Derive(whole, now, scoring).lifecycle();
    CAPTURE(round, n);
    CHECK(a.p_active() == b.p_active());
    CHECK(a.expected_purchases() == b.expected_purchases());
    CHECK(a.churn_risk() == b.churn_risk());
    CHECK(signals.NextTransitionMs(merged, now, scoring) ==
          signals.NextTransitionMs(whole, now, scoring));
  }
}

}  // namespace
}  // namespace profiled::signals

namespace profiled::signals {
namespace {

// The text as it was written with printf, for the formatter to equal.
std::string PrintfReasonText(std::string_view what, std::string_view key, double weight,
                             int64_t last_ms, int64_t now_ms) {
  if (last_ms <= 0) return absl::StrFormat("%s %s: %.3g", what, key, weight);
  const int64_t ms = now_ms - last_ms;
  std::string ago;
  if (ms < 60'000) {
    ago = absl::StrCat(std::max<int64_t>(ms, 0) / 1000, "s ago");
  } else if (ms < 3'600'000) {
    ago = absl::StrCat(ms / 60'000, "m ago");
  } else if (ms < 86'400'000) {
    ago = absl::StrCat(ms / 3'600'000, "h ago");
  } else {
    ago = absl::StrCat(ms / 86'400'000, "d ago");
  }
  return absl::StrFormat("%s %s: %.3g, last %s", what, key, weight, ago);
}

TEST_CASE("a reason's text is printf's %.3g and the age in whole units, for any weight and age",
          "[signals][property]") {
  std::mt19937_64 rng(77);
  const double edges[] = {0.0,
                          -0.0,
                          1.0,
                          0.0005,
                          0.00099949,
                          999.5,
                          999.4999,
                          1e-5,
                          123456789.0,
                          -2.5,
                          5e-324,
                          std::numeric_limits<double>::max(),
                          std::numeric_limits<double>::infinity(),
                          -std::numeric_limits<double>::infinity(),
                          std::numeric_limits<double>::quiet_NaN()};
  const int64_t ages[] = {-5,
                          0,
                          999,
                          1000,
                          59'999,
                          60'000,
                          3'599'999,
                          3'600'000,
                          86'399'999,
                          86'400'000,
                          int64_t{400} * 86'400'000};
  for (int i = 0; i < 200'000; ++i) {
    double weight = 0;
    if (i < 2000) {
      weight = edges[static_cast<size_t>(i) % std::size(edges)];
    } else {
      // Every magnitude, and values on the rounding edges of 3 digits.
      weight = std::ldexp(static_cast<double>(rng() >> 11) / 9007199254740992.0,
                          static_cast<int>(rng() % 120) - 60);
      if (rng() % 4 == 0) weight = std::round(weight * 1000.0) / 1000.0 + 0.0005;
      if (rng() % 5 == 0) {  // near a tie of the third digit, at any magnitude
        weight = (static_cast<double>(100 + rng() % 900) + 0.5) *
                 std::pow(10.0, static_cast<int>(rng() % 26) - 8);
      }
      if (rng() % 3 == 0) weight = -weight;
    }
    const int64_t now = 1'700'000'000'000;
    const int64_t last = rng() % 5 == 0 ? 0
                         : i < 2000     ? now - ages[static_cast<size_t>(i) % std::size(ages)]
                                        : now - static_cast<int64_t>(rng() % 100'000'000'000);
    CAPTURE(weight, last);
    std::string text = "kept|";
    AppendReasonText("category", "electronics.audio", weight, last, now, text);
    REQUIRE(text == "kept|" + PrintfReasonText("category", "electronics.audio", weight, last, now));
  }
}

}  // namespace
}  // namespace profiled::signals
