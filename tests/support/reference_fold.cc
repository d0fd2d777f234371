#include "support/reference_fold.h"

#include <algorithm>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "profiled/core/profile_id.h"
#include "support/test_support.h"

namespace profiled::testing {
namespace {

// The keys an event credits per family.
std::map<std::string, std::vector<std::string>> KeysOf(const v1::InteractionEvent& e) {
  std::map<std::string, std::vector<std::string>> keys;
  const std::string& path = e.commerce().category();
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '.') keys["category"].push_back(path.substr(0, i));
  }
  if (!path.empty()) keys["category"].push_back(path);
  if (!e.commerce().product_id().empty()) keys["product"].push_back(e.commerce().product_id());
  if (!e.commerce().brand().empty()) {
    keys["brand"].push_back(absl::AsciiStrToLower(e.commerce().brand()));
  }
  keys["event_type"].push_back(e.type());
  if (!e.channel().empty()) keys["channel"].push_back(e.channel());
  if (!e.context().device().empty()) {
    keys["device"].push_back(absl::AsciiStrToLower(e.context().device()));
  }
  // Local time in UTC (the reference's events carry no time zone).
  const time_t seconds = static_cast<time_t>(e.event_time_ms() / 1000);
  struct tm utc;
  gmtime_r(&seconds, &utc);
  static const char* kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
  keys["hour"].push_back(absl::StrFormat("%02d", utc.tm_hour));
  keys["weekday"].push_back(kDays[utc.tm_wday]);
  return keys;
}

}  // namespace

std::map<std::string, ExpectedProfile> FoldByProfile(const std::vector<v1::InteractionEvent>& events,
                                                     const ReferenceWeights& weights) {
  return FoldByPerson(events, weights,
                      [](const v1::InteractionEvent& e) { return *core::ProfileIdFor(e); });
}

std::map<std::string, ExpectedProfile> FoldByPerson(
    const std::vector<v1::InteractionEvent>& events, const ReferenceWeights& weights,
    const std::function<std::string(const v1::InteractionEvent&)>& person_of) {
  std::map<std::string, ExpectedProfile> out;
  for (const v1::InteractionEvent& e : events) {
    ExpectedProfile& x = out[person_of(e)];
    const int64_t t = e.event_time_ms();
    x.first_seen_ms = x.events == 0 ? t : std::min(x.first_seen_ms, t);
    x.last_seen_ms = x.events == 0 ? t : std::max(x.last_seen_ms, t);
    ++x.events;
    if (e.type() == "product_viewed") ++x.product_views;
    if (e.type() == "added_to_cart") ++x.cart_adds;
    if (e.type() == "order_completed") {
      ++x.orders;
      const auto& c = e.commerce();
      x.revenue += c.revenue() > 0 ? c.revenue() : c.price() * std::max<int64_t>(c.quantity(), 1);
    }
    for (const auto& [kind, value] :
         {std::pair<std::string, std::string>{"user_id", e.identities().user_id()},
          {"anonymous_id", e.identities().anonymous_id()},
          {"device_id", e.identities().device_id()}}) {
      if (!value.empty()) x.identities.insert(kind + ":" + value);
    }
    auto it = weights.by_type.find(e.type());
    const double w = it == weights.by_type.end() ? weights.default_weight : it->second;
    for (const auto& [family, keys] : KeysOf(e)) {
      for (const std::string& k : keys) x.scores[family][k].emplace_back(w, t);
    }
  }
  return out;
}

std::vector<std::string> CompareUpdate(const v1::ProfileUpdate& u, const ExpectedProfile& want,
                                       int64_t half_life_ms, double rel) {
  std::vector<std::string> bad;
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) bad.push_back(what);
  };
  expect(u.version() == want.events, absl::StrCat("version ", u.version(), " != ", want.events));
  expect(u.counters().events() == static_cast<int64_t>(want.events), "counters.events");
  expect(u.counters().product_views() == want.product_views, "counters.product_views");
  expect(u.counters().cart_adds() == want.cart_adds, "counters.cart_adds");
  expect(u.counters().orders() == want.orders, "counters.orders");
  expect(RelativelyClose(u.counters().revenue(), want.revenue, rel), "counters.revenue");
  expect(u.first_seen_ms() == want.first_seen_ms, "first_seen_ms");
  expect(u.last_seen_ms() == want.last_seen_ms, "last_seen_ms");
  std::set<std::string> ids;
  for (const v1::Identity& id : u.identities()) ids.insert(id.kind() + ":" + id.value());
  expect(ids == want.identities, absl::StrCat("identities: ", absl::StrJoin(ids, ","), " != ",
                                              absl::StrJoin(want.identities, ",")));
  std::map<std::string, std::map<std::string, double>> got;
  for (const v1::ScoreFamily& f : u.score_families()) {
    for (const v1::Score& s : f.scores()) got[f.family()][s.key()] = s.value();
  }
  expect(got.size() == want.scores.size(),
         absl::StrCat(got.size(), " score families, expected ", want.scores.size()));
  for (const auto& [family, keys] : want.scores) {
    const auto& have = got[family];
    expect(have.size() == keys.size(), absl::StrCat(family, ": ", have.size(), " keys, expected ",
                                                    keys.size()));
    for (const auto& [key, obs] : keys) {
      const double truth = BruteForceDecay(obs, u.as_of_ms(), static_cast<double>(half_life_ms));
      auto it = have.find(key);
      const double value = it == have.end() ? -1 : it->second;
      expect(RelativelyClose(value, truth, rel),
             absl::StrCat(family, "/", key, ": ", value, " != brute force ", truth));
    }
  }
  return bad;
}

}  // namespace profiled::testing
