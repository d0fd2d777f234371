#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "profiled/core/profile.h"
#include "profiled/core/profile_id.h"
#include "support/test_support.h"

namespace profiled::core {
namespace {

using testing::MakeEvent;
constexpr int64_t t0 = 1'569'888'000'000;

TEST_CASE("applying an event credits every level of the category path", "[profile]") {
  ScoringOptions options;
  Profile p = Profile::New("p-1");
  ApplyEvent(
      MakeEvent("e1", "product_viewed", t0, "u1", "electronics.audio.headphone", "P1", "Sony"),
      options, p);
  const ScoreFamily& cats = p.family(Family::kCategory);
  REQUIRE(cats.size() == 3);
  CHECK(cats.Find("electronics") != nullptr);
  CHECK(cats.Find("electronics.audio") != nullptr);
  CHECK(cats.Find("electronics.audio.headphone") != nullptr);
  CHECK(p.family(Family::kBrand).Find("sony") != nullptr);  // lower-cased
  CHECK(p.family(Family::kProduct).Find("P1")->value == 1.0);
  CHECK(p.family(Family::kEventType).Find("product_viewed") != nullptr);
  CHECK(p.family(Family::kChannel).Find("web") != nullptr);
}

TEST_CASE("event weights come from the type, with a default for the rest", "[profile]") {
  ScoringOptions options;
  options.event_weights = {{"order_completed", 5.0}};
  options.default_weight = 0.5;
  Profile p = Profile::New("p-1");
  ApplyEvent(MakeEvent("e1", "order_completed", t0, "u1", "", "P1"), options, p);
  ApplyEvent(MakeEvent("e2", "page_viewed", t0, "u1", "", "P1"), options, p);
  CHECK(p.family(Family::kProduct).Find("P1")->value == Approx(5.5));
}

TEST_CASE("version counts events, first and last seen follow event time", "[profile]") {
  ScoringOptions options;
  Profile p = Profile::New("p-1");
  ApplyEvent(MakeEvent("e1", "product_viewed", t0 + 5000, "u1"), options, p);
  ApplyEvent(MakeEvent("e2", "product_viewed", t0, "u1"), options, p);  // late
  ApplyEvent(MakeEvent("e3", "product_viewed", t0 + 9000, "u1"), options, p);
  CHECK(p.version == 3);
  CHECK(p.first_seen_ms == t0);
  CHECK(p.last_seen_ms == t0 + 9000);
}

TEST_CASE("counters count views, cart adds, orders and revenue", "[profile]") {
  ScoringOptions options;
  Profile p = Profile::New("p-1");
  auto order = MakeEvent("e3", "order_completed", t0, "u1", "", "P1");
  order.mutable_commerce()->set_price(10.0);
  order.mutable_commerce()->set_quantity(3);
  ApplyEvent(MakeEvent("e1", "product_viewed", t0, "u1"), options, p);
  ApplyEvent(MakeEvent("e2", "added_to_cart", t0, "u1"), options, p);
  ApplyEvent(order, options, p);
  auto with_revenue = order;
  with_revenue.mutable_commerce()->set_revenue(7.5);
  ApplyEvent(with_revenue, options, p);
  CHECK(p.counters.product_views == 1);
  CHECK(p.counters.cart_adds == 1);
  CHECK(p.counters.orders == 2);
  CHECK(p.counters.revenue == Approx(30.0 + 7.5));
}

TEST_CASE("traits keep the latest value by event time, whatever the arrival order", "[profile]") {
  ScoringOptions options;
  auto newer = MakeEvent("e1", "identify", t0 + 1000, "u1");
  (*newer.mutable_traits())["plan"] = "pro";
  auto older = MakeEvent("e2", "identify", t0, "u1");
  (*older.mutable_traits())["plan"] = "free";
  Profile a = Profile::New("p"), b = Profile::New("p");
  ApplyEvent(newer, options, a);
  ApplyEvent(older, options, a);
  ApplyEvent(older, options, b);
  ApplyEvent(newer, options, b);
  REQUIRE(a.traits.size() == 1);
  CHECK(a.traits[0].value == "pro");
  CHECK(b.traits[0].value == "pro");
}

TEST_CASE("the routing identity prefers user_id, then email, anonymous and device ids",
          "[profile]") {
  v1::InteractionEvent e;
  e.mutable_identities()->set_device_id("d1");
  e.mutable_identities()->set_anonymous_id("a1");
  CHECK(IdentitiesOf(e).front() == Identity{"anonymous_id", "a1"});
  e.mutable_identities()->set_user_id("u1");
  CHECK(IdentitiesOf(e).front() == Identity{"user_id", "u1"});
  CHECK(*ProfileIdFor(e) == ProfileIdFor(Identity{"user_id", "u1"}));
  CHECK(ProfileIdFor(Identity{"user_id", "u1"}) != ProfileIdFor(Identity{"anonymous_id", "u1"}));
  CHECK(ProfileIdFor(Identity{"ab", "c"}) != ProfileIdFor(Identity{"a", "bc"}));
  CHECK(ProfileIdFor(Identity{"user_id", "u1"}).size() == 34);
  CHECK_FALSE(ProfileIdFor(v1::InteractionEvent()).has_value());
}

}  // namespace
}  // namespace profiled::core

namespace profiled::core {
namespace {

TEST_CASE("a profile remembers the newest event ids by event time", "[profile][dedup]") {
  ScoringOptions options;
  options.recent_event_ids = 3;
  Profile p = Profile::New("p-1");
  // Arrival order differs from event-time order; the memory follows event time.
  const int64_t offsets[] = {40, 10, 30, 50, 20};
  for (int i = 0; i < 5; ++i) {
    ApplyEvent(MakeEvent("e" + std::to_string(i), "product_viewed", t0 + offsets[i], "u1"), options,
               p);
  }
  // Kept: e2 (t0+30), e0 (t0+40), e3 (t0+50), oldest first.
  REQUIRE(p.recent_events.size() == 3);
  CHECK(p.recent_events[0] == RecentEvent{EventIdHash("e2"), t0 + 30});
  CHECK(p.recent_events[1] == RecentEvent{EventIdHash("e0"), t0 + 40});
  CHECK(p.recent_events[2] == RecentEvent{EventIdHash("e3"), t0 + 50});
  CHECK(AlreadyApplied(MakeEvent("e3", "product_viewed", t0 + 50, "u1"), p));
  // Evicted (older than the newest three): a re-send would apply again.
  CHECK_FALSE(AlreadyApplied(MakeEvent("e1", "product_viewed", t0 + 10, "u1"), p));
  CHECK_FALSE(AlreadyApplied(MakeEvent("never", "product_viewed", t0 + 60, "u1"), p));
}

TEST_CASE("recent_event_ids 0 turns the de-duplication memory off", "[profile][dedup]") {
  ScoringOptions options;
  options.recent_event_ids = 0;
  Profile p = Profile::New("p-1");
  ApplyEvent(MakeEvent("e1", "product_viewed", t0, "u1"), options, p);
  CHECK(p.recent_events.empty());
  CHECK_FALSE(AlreadyApplied(MakeEvent("e1", "product_viewed", t0, "u1"), p));
}

TEST_CASE("event id hashes are FNV-1a, stable across builds", "[profile][dedup]") {
  // Stored in RocksDB: a change here would forget every remembered id.
  CHECK(EventIdHash("") == 14695981039346656037ULL);
  CHECK(EventIdHash("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(EventIdHash("foobar") == 0x85944171f73967e8ULL);
}

}  // namespace
}  // namespace profiled::core

namespace {

profiled::core::PurchaseDays OneProfileDays(const std::vector<int64_t>& order_times) {
  profiled::core::PurchaseDays days;
  for (int64_t t : order_times) profiled::core::RecordPurchaseDay(t, days);
  return days;
}

}  // namespace

TEST_CASE("orders are counted by distinct day, the first and the newest days kept",
          "[profile][purchase_days]") {
  constexpr int64_t kDay = 24LL * 3600 * 1000;
  const int64_t t0 = 1'700'000'000'000 - 1'700'000'000'000 % kDay;  // a midnight
  profiled::core::Profile p = profiled::core::Profile::New("p");
  const profiled::core::ScoringOptions options;
  int n = 0;
  for (int64_t t :
       {t0 + 5 * kDay + 10, t0 + 1, t0 + 5 * kDay + 999, t0 + kDay - 1, t0 + 2 * kDay}) {
    profiled::core::ApplyEvent(
        profiled::testing::MakeEvent("o" + std::to_string(n++), "order_completed", t, "u1"),
        options, p);
  }
  profiled::core::ApplyEvent(
      profiled::testing::MakeEvent("v", "product_viewed", t0 + 9 * kDay, "u1"), options, p);
  CHECK(p.purchase_days.count == 3);  // days 0, 2 and 5
  CHECK(p.purchase_days.first_day == t0 / kDay);
  CHECK(p.purchase_days.last_day() == t0 / kDay + 5);
  // Before the epoch: floor division, not truncation.
  CHECK(OneProfileDays({-1}).first_day == -1);
}

TEST_CASE(
    "merged profiles count the order days one profile fed every order counts, in any order and "
    "grouping (within the kept newest days), and never fewer beyond them",
    "[profile][purchase_days][property]") {
  constexpr int64_t kDay = 24LL * 3600 * 1000;
  std::mt19937_64 rng(19);
  for (int round = 0; round < 2000; ++round) {
    const bool within = round % 2 == 0;  // at most kRecentPurchaseDays distinct days in all
    const int64_t span = within ? static_cast<int64_t>(profiled::core::kRecentPurchaseDays) : 60;
    std::vector<int64_t> times(1 + rng() % 40);
    for (int64_t& t : times) {
      t = 1'700'000'000'000 + static_cast<int64_t>(rng() % static_cast<uint64_t>(span)) * kDay +
          static_cast<int64_t>(rng() % kDay);
    }
    const profiled::core::PurchaseDays whole = OneProfileDays(times);
    std::set<int64_t> distinct;
    for (int64_t t : times) distinct.insert(t / kDay);
    // Split into three parts, each applied in its own order, merged in any order.
    std::vector<std::vector<int64_t>> parts(3);
    for (int64_t t : times) parts[rng() % 3].push_back(t);
    std::vector<profiled::core::PurchaseDays> days;
    for (auto& part : parts) {
      std::shuffle(part.begin(), part.end(), rng);
      days.push_back(OneProfileDays(part));
    }
    std::vector<size_t> order = {0, 1, 2};
    std::shuffle(order.begin(), order.end(), rng);
    profiled::core::PurchaseDays merged = days[order[0]];
    if (rng() % 2 == 0) {
      profiled::core::MergePurchaseDays(days[order[1]], merged);
      profiled::core::MergePurchaseDays(days[order[2]], merged);
    } else {
      profiled::core::PurchaseDays pair = days[order[1]];
      profiled::core::MergePurchaseDays(days[order[2]], pair);
      profiled::core::MergePurchaseDays(pair, merged);
    }
    CAPTURE(round, times.size());
    CHECK(merged.first_day == *distinct.begin());
    CHECK(merged.last_day() == *distinct.rbegin());
    if (within) {
      CHECK(whole.count == static_cast<int64_t>(distinct.size()));
      CHECK(merged == whole);
    } else {
      CHECK(merged.count >= static_cast<int64_t>(distinct.size()));
    }
  }
}

namespace profiled::core {
namespace {

// The item memory as the rule states it: per key the latest time of each
// kind, then the newest `limit` by latest time (ties by key), by key.
struct ItemModel {
  std::map<std::string, ItemMemory> all;
  void Record(const std::string& key, int64_t ItemMemory::*field, int64_t t) {
    ItemMemory& m = all.try_emplace(key, ItemMemory{key}).first->second;
    m.*field = std::max(m.*field, t);
  }
  void Keep(size_t limit) {
    std::vector<ItemMemory> v;
    for (const auto& [key, m] : all) v.push_back(m);
    std::sort(v.begin(), v.end(), [](const ItemMemory& a, const ItemMemory& b) {
      return a.latest_ms() != b.latest_ms() ? a.latest_ms() > b.latest_ms() : a.key < b.key;
    });
    if (v.size() > limit) v.resize(limit);
    all.clear();
    for (const ItemMemory& m : v) all.emplace(m.key, m);
  }
  std::vector<ItemMemory> Sorted() const {
    std::vector<ItemMemory> v;
    for (const auto& [key, m] : all) v.push_back(m);
    return v;
  }
};

TEST_CASE(
    "the item memory keeps exactly the newest limit items sorted by key, whatever each event "
    "adds and whatever is merged in",
    "[profile][property]") {
  std::mt19937_64 rng(41);
  const char* types[] = {"product_viewed", "added_to_cart", "removed_from_cart", "order_completed"};
  int64_t ItemMemory::*fields[] = {&ItemMemory::viewed_ms, &ItemMemory::carted_ms,
                                   &ItemMemory::uncarted_ms, &ItemMemory::bought_ms};
  for (int round = 0; round < 300; ++round) {
    const size_t limit = 1 + rng() % 8;
    std::vector<ItemMemory> items;
    ItemModel model;
    for (int i = 0; i < 60; ++i) {
      const size_t type = rng() % 4;
      v1::InteractionEvent e;
      e.set_type(types[type]);
      e.set_event_time_ms(static_cast<int64_t>(rng() % 50));  // many ties
      // One commerce block and up to 5 lines: 0 to 12 new keys at once.
      std::vector<v1::Commerce*> blocks = {e.mutable_commerce()};
      for (size_t l = rng() % 6; l > 0; --l) blocks.push_back(e.add_line_items());
      for (v1::Commerce* c : blocks) {
        if (rng() % 4 != 0) c->set_product_id("P" + std::to_string(rng() % 20));
        if (rng() % 3 != 0) c->set_category("c" + std::to_string(rng() % 6));
        if (!c->product_id().empty()) {
          model.Record(std::string(kProductItemPrefix) + c->product_id(), fields[type],
                       e.event_time_ms());
        }
        if (!c->category().empty()) {
          model.Record(std::string(kCategoryItemPrefix) + c->category(), fields[type],
                       e.event_time_ms());
        }
      }
      RecordItems(e, limit, items);
      model.Keep(limit);
      REQUIRE(items == model.Sorted());
    }
    // Another profile's memory merged in.
    std::vector<ItemMemory> other;
    for (size_t k = rng() % 12; k > 0; --k) {
      const std::string key = "p:M" + std::to_string(rng() % 15);
      if (std::any_of(other.begin(), other.end(), [&](const auto& m) { return m.key == key; })) {
        continue;
      }
      other.push_back(
          {key, static_cast<int64_t>(rng() % 60), 0, 0, static_cast<int64_t>(rng() % 60)});
      model.Record(key, &ItemMemory::viewed_ms, other.back().viewed_ms);
      model.Record(key, &ItemMemory::bought_ms, other.back().bought_ms);
    }
    std::sort(other.begin(), other.end(),
              [](const ItemMemory& a, const ItemMemory& b) { return a.key < b.key; });
    MergeItems(other, limit, items);
    model.Keep(limit);
    REQUIRE(items == model.Sorted());
  }
}

}  // namespace
}  // namespace profiled::core
