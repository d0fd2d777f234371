// Signal quality on real public data, against naive baselines on the same
// events (docs/signals.md has the table and how to read it).
//
//   signal_quality REES46_EVENTS_CSV [COMPLETEJOURNEY_DIR]
//
// Churn and expected purchases moved to purchase_quality.cc (the purchase
// model, with bootstrap intervals).
//
// 1. Top category intent (REES46): events replayed in time order; before each
//    view, cart or purchase with a category, each predictor names 3
//    categories for that person and scores a hit if the event's category is
//    among them. Predictors: decayed scores (the category family of
//    libs/core at half-life H), raw undecayed counts, the last category seen,
//    and the last 3 distinct categories seen. H is tuned on the first 60% of
//    the targets by time; the table reports the last 40%.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "dataset_file.h"
#include "profiled/core/profile.h"
#include "profiled/ingest/rees46.h"
#include "profiled/signals/signals.h"

namespace {

namespace v1 = profiled::v1;
namespace core = profiled::core;

constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

// ---- 1. Top category intent -------------------------------------------------

struct Target {
  size_t index;  // position in the time-ordered events
  std::string category;
};

// Hits at 1 and 3 per predictor: decayed, counts, last, last-3-distinct.
struct HitRates {
  size_t targets = 0;
  size_t hit1[4] = {0, 0, 0, 0};
  size_t hit3[4] = {0, 0, 0, 0};
};

// Replays `events` (time-ordered) and scores every target in [from, to) of a
// person with at least `min_choices` distinct earlier categories.
HitRates ScoreIntents(const std::vector<v1::InteractionEvent>& events, double half_life_ms,
                      size_t from, size_t to, size_t min_choices) {
  core::ScoringOptions scoring;
  scoring.family(core::Family::kCategory) = {half_life_ms, 100000, 0.0};
  scoring.recent_event_ids = 0;
  struct Person {
    core::Profile profile = core::Profile::New("p");
    std::map<std::string, int> counts;  // leaf category -> events
    std::vector<std::string> recent;    // leaf categories, latest last
  };
  std::map<std::string, Person> people;
  HitRates r;
  for (size_t i = 0; i < events.size(); ++i) {
    const v1::InteractionEvent& e = events[i];
    Person& p = people[e.identities().user_id()];
    const std::string& category = e.commerce().category();
    if (!category.empty() && i >= from && i < to && !p.counts.empty() &&
        p.counts.size() >= min_choices) {
      ++r.targets;
      std::vector<std::string> guesses[4];
      // Decayed: the person's leaf categories ranked by decayed score now.
      std::vector<std::pair<double, std::string>> ranked;
      for (const auto& [leaf, n] : p.counts) {
        const core::DecayedScore* s = p.profile.family(core::Family::kCategory).Find(leaf);
        ranked.emplace_back(-s->ValueAt(e.event_time_ms(), half_life_ms), leaf);
      }
      std::sort(ranked.begin(), ranked.end());
      for (const auto& [v, leaf] : ranked) guesses[0].push_back(leaf);
      std::vector<std::pair<int, std::string>> by_count;
      for (const auto& [leaf, n] : p.counts) by_count.emplace_back(-n, leaf);
      std::sort(by_count.begin(), by_count.end());
      for (const auto& [n, leaf] : by_count) guesses[1].push_back(leaf);
      guesses[2].push_back(p.recent.back());
      for (auto it = p.recent.rbegin(); it != p.recent.rend(); ++it) {
        if (std::find(guesses[3].begin(), guesses[3].end(), *it) == guesses[3].end()) {
          guesses[3].push_back(*it);
        }
      }
      for (int k = 0; k < 4; ++k) {
        const auto& g = guesses[k];
        r.hit1[k] += g[0] == category;
        r.hit3[k] +=
            std::find(g.begin(), g.begin() + static_cast<long>(std::min<size_t>(3, g.size())),
                      category) != g.begin() + static_cast<long>(std::min<size_t>(3, g.size()));
      }
    }
    core::ApplyEvent(e, scoring, p.profile);
    if (!category.empty()) {
      ++p.counts[category];
      p.recent.push_back(category);
    }
  }
  return r;
}

void IntentQuality(const std::string& path) {
  const std::string csv = profiled::bench::ReadDatasetFile(path);
  profiled::ingest::Rees46Reader reader(csv);
  std::vector<v1::InteractionEvent> events;
  for (v1::InteractionEvent e; reader.Next(e);) events.push_back(e);
  std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
    return a.event_time_ms() < b.event_time_ms();
  });
  const size_t split = events.size() * 6 / 10;
  const std::vector<std::pair<const char*, double>> grid = {
      {"30s", kMinute / 2},  {"1m", kMinute},       {"2m", 2 * kMinute}, {"5m", 5 * kMinute},
      {"15m", 15 * kMinute}, {"30m", 30 * kMinute}, {"1h", kHour},       {"6h", 6 * kHour},
      {"1d", kDay},          {"7d", 7 * kDay}};
  std::printf(
      "## Top category intent, REES46 sample (%zu events, %.1f hours)\n\n", events.size(),
      static_cast<double>(events.back().event_time_ms() - events.front().event_time_ms()) / kHour);
  std::printf(
      "Tuning on the first 60%% of events by time (decayed predictor, people with 2+ "
      "earlier categories):\n\n| half-life | targets | hit@1 | hit@3 |\n|---|---|---|---|\n");
  double best_h = 0, best = -1;
  const char* best_name = "";
  for (const auto& [name, h] : grid) {
    const HitRates t = ScoreIntents(events, h, 0, split, 2);
    const double rate = t.targets ? static_cast<double>(t.hit1[0]) / t.targets : 0;
    std::printf("| %s | %zu | %.3f | %.3f |\n", name, t.targets, rate,
                t.targets ? static_cast<double>(t.hit3[0]) / t.targets : 0);
    if (rate > best) best = rate, best_h = h, best_name = name;
  }
  std::printf("\nChecked on the last 40%% with the half-life tuned for hit@1 (%s):\n\n", best_name);
  std::printf(
      "| predictor | all targets hit@1 | hit@3 | 2+ categories hit@1 | hit@3 | 4+ categories hit@1 "
      "| hit@3 |\n"
      "|---|---|---|---|---|---|---|\n");
  const HitRates all = ScoreIntents(events, best_h, split, events.size(), 1);
  const HitRates two = ScoreIntents(events, best_h, split, events.size(), 2);
  const HitRates four = ScoreIntents(events, best_h, split, events.size(), 4);
  const char* names[4] = {"decayed category scores", "raw undecayed counts", "last category seen",
                          "last 3 distinct categories"};
  auto rate = [](size_t hits, size_t n) { return n ? static_cast<double>(hits) / n : 0.0; };
  for (int k = 0; k < 4; ++k) {
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", names[k],
                rate(all.hit1[k], all.targets), rate(all.hit3[k], all.targets),
                rate(two.hit1[k], two.targets), rate(two.hit3[k], two.targets),
                rate(four.hit1[k], four.targets), rate(four.hit3[k], four.targets));
  }
  std::printf("| (targets) | %zu | | %zu | | %zu | |\n\n", all.targets, two.targets, four.targets);
}

// ---- 2. Next-basket category, Complete Journey -----------------------------------

struct Basket {
  int64_t at_ms;
  std::string household;
  std::vector<std::string> categories;  // one per line: "DEPARTMENT.CATEGORY"
};

// Baskets in time order, each line's product mapped to its category path.
std::vector<Basket> ReadBaskets(const std::string& dir) {
  std::map<std::string, std::string> category_of;
  {
    std::istringstream lines(profiled::bench::ReadDatasetFile(dir + "/products.csv"));
    std::string line;
    std::getline(lines, line);  // header
    while (std::getline(lines, line)) {
      const std::vector<std::string> f = profiled::bench::CsvFields(line);
      if (f.size() < 5 || f[2].empty() || f[4].empty() || f[4] == "NA") continue;
      category_of[f[0]] = f[2] + "." + f[4];
    }
  }
  std::map<std::string, Basket> by_id;
  std::istringstream lines(profiled::bench::ReadDatasetFile(dir + "/transactions_sample.csv"));
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    const std::vector<std::string> f = profiled::bench::CsvFields(line);
    if (f.size() < 11) continue;
    auto category = category_of.find(f[3]);
    absl::Time t;
    std::string err;
    if (category == category_of.end() ||
        !absl::ParseTime("%Y-%m-%d %H:%M:%S", f[10], absl::UTCTimeZone(), &t, &err)) {
      continue;
    }
    Basket& b = by_id[f[2]];
    b.at_ms = absl::ToUnixMillis(t);
    b.household = f[0];
    b.categories.push_back(category->second);
  }
  std::vector<Basket> baskets;
  for (auto& [id, b] : by_id) baskets.push_back(std::move(b));
  std::stable_sort(baskets.begin(), baskets.end(),
                   [](const Basket& a, const Basket& b) { return a.at_ms < b.at_ms; });
  return baskets;
}

// Before each basket in [from, to) of a household with history, each
// predictor ranks the household's categories; a hit at k when one of the
// first k is in the basket. Predictors: decayed category scores (the
// service's category family at `half_life_ms`), raw counts of lines, most
// frequent by baskets, the last basket's categories.
HitRates ScoreBaskets(const std::vector<Basket>& baskets, double half_life_ms, size_t from,
                      size_t to) {
  core::ScoringOptions scoring;
  scoring.family(core::Family::kCategory) = {half_life_ms, 100000, 0.0};
  scoring.recent_event_ids = 0;
  struct Household {
    core::Profile profile = core::Profile::New("p");
    std::map<std::string, int> lines, baskets;
    std::vector<std::string> last;  // the previous basket's categories, most lines first
  };
  std::map<std::string, Household> households;
  HitRates r;
  int n = 0;
  for (size_t i = 0; i < baskets.size(); ++i) {
    const Basket& b = baskets[i];
    Household& h = households[b.household];
    if (i >= from && i < to && !h.lines.empty()) {
      ++r.targets;
      const std::set<std::string> bought(b.categories.begin(), b.categories.end());
      std::vector<std::string> guesses[4];
      auto ranked_by = [](std::vector<std::pair<double, std::string>> v) {
        std::sort(v.begin(), v.end());
        std::vector<std::string> out;
        for (auto& [score, key] : v) out.push_back(std::move(key));
        return out;
      };
      std::vector<std::pair<double, std::string>> decayed, lines, frequent;
      for (const auto& [leaf, count] : h.lines) {
        const core::DecayedScore* s = h.profile.family(core::Family::kCategory).Find(leaf);
        decayed.emplace_back(s == nullptr ? 0.0 : -s->ValueAt(b.at_ms, half_life_ms), leaf);
        lines.emplace_back(-count, leaf);
        frequent.emplace_back(-h.baskets[leaf], leaf);
      }
      guesses[0] = ranked_by(decayed);
      guesses[1] = ranked_by(lines);
      guesses[2] = ranked_by(frequent);
      guesses[3] = h.last;
      for (int k = 0; k < 4; ++k) {
        const auto& g = guesses[k];
        r.hit1[k] += !g.empty() && bought.contains(g[0]);
        bool any = false;
        for (size_t j = 0; j < std::min<size_t>(3, g.size()); ++j) any |= bought.contains(g[j]);
        r.hit3[k] += any;
      }
    }
    std::map<std::string, int> in_basket;
    for (const std::string& category : b.categories) {
      v1::InteractionEvent e;
      e.set_event_id("l" + std::to_string(n++));
      e.set_type("order_completed");
      e.set_event_time_ms(b.at_ms);
      e.mutable_commerce()->set_category(category);
      core::ApplyEvent(e, scoring, h.profile);
      ++h.lines[category];
      ++in_basket[category];
    }
    std::vector<std::pair<double, std::string>> last;
    for (const auto& [category, count] : in_basket) {
      ++h.baskets[category];
      last.emplace_back(-count, category);
    }
    std::sort(last.begin(), last.end());
    h.last.clear();
    for (auto& [count, category] : last) h.last.push_back(category);
  }
  return r;
}

void BasketQuality(const std::string& dir) {
  const std::vector<Basket> baskets = ReadBaskets(dir);
  const size_t split = baskets.size() * 6 / 10;
  std::printf("## Next-basket category, Complete Journey sample (%zu baskets)\n\n", baskets.size());
  std::printf(
      "Tuning on the first 60%% of baskets by time (decayed predictor):\n\n| half-life | targets "
      "| hit@1 | hit@3 |\n|---|---|---|---|\n");
  double best = 0, best_hl = 0;
  for (double days : {1.0, 3.0, 7.0, 14.0, 30.0, 60.0, 120.0, 365.0}) {
    const HitRates r = ScoreBaskets(baskets, days * kDay, 0, split);
    const double h1 = static_cast<double>(r.hit1[0]) / static_cast<double>(r.targets);
    const double h3 = static_cast<double>(r.hit3[0]) / static_cast<double>(r.targets);
    std::printf("| %gd | %zu | %.3f | %.3f |\n", days, r.targets, h1, h3);
    if (h3 > best) best = h3, best_hl = days;
  }
  const HitRates r = ScoreBaskets(baskets, best_hl * kDay, split, baskets.size());
  std::printf(
      "\nChecked on the last 40%% with the half-life tuned for hit@3 (%gd):\n\n| predictor | "
      "targets | hit@1 | hit@3 |\n|---|---|---|---|\n",
      best_hl);
  const char* names[4] = {"decayed category scores", "raw counts (lines)",
                          "most frequent (baskets)", "last basket's categories"};
  for (int k = 0; k < 4; ++k) {
    std::printf("| %s | %zu | %.3f | %.3f |\n", names[k], r.targets,
                static_cast<double>(r.hit1[k]) / static_cast<double>(r.targets),
                static_cast<double>(r.hit3[k]) / static_cast<double>(r.targets));
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: signal_quality REES46_EVENTS_CSV [COMPLETEJOURNEY_DIR]\n");
    return 2;
  }
  IntentQuality(argv[1]);
  if (argc == 3) BasketQuality(argv[2]);
  return 0;
}
