#include "profiled/core/score_family.h"

#include <algorithm>
#include <cmath>

namespace profiled::core {

namespace {

// a == b, cheapest test first: keys of one family often have one length and
// share their leading bytes (product ids, category paths), so their last
// byte rules most out without a memcmp call.
bool SameKey(const std::string& a, std::string_view b) {
  return a.size() == b.size() && (b.empty() || (a.back() == b.back() && a == b));
}

}  // namespace

ScoreFamily::Entry* ScoreFamily::FindMutable(std::string_view key) {
  for (Entry& e : entries_) {
    if (SameKey(e.key, key)) return &e;
  }
  return nullptr;
}

const DecayedScore* ScoreFamily::Find(std::string_view key) const {
  for (const Entry& e : entries_) {
    if (SameKey(e.key, key)) return &e.score;
  }
  return nullptr;
}

void ScoreFamily::Add(std::string_view key, double weight, int64_t at_ms,
                      const FamilyOptions& options) {
  if (Entry* e = FindMutable(key)) {
    e->score.Add(weight, at_ms, options.half_life_ms);
    return;
  }
  entries_.push_back({std::string(key), DecayedScore::Of(weight, at_ms)});
  ApplyBounds(options);
}

void ScoreFamily::MergeFrom(const ScoreFamily& other, const FamilyOptions& options) {
  for (const Entry& theirs : other.entries_) {
    if (Entry* mine = FindMutable(theirs.key)) {
      mine->score.MergeFrom(theirs.score, options.half_life_ms);
    } else {
      entries_.push_back(theirs);
    }
  }
  ApplyBounds(options);
}

namespace {

// s.ValueAt(now_ms) >= epsilon. A power-of-two bound settles the usual case
// (a score well above epsilon, a few half-lives old) without exp2; the
// margin keeps the answer identical to the exact comparison.
bool AtLeast(const DecayedScore& s, int64_t now_ms, double half_life_ms, double epsilon) {
  const double halvings = static_cast<double>(now_ms - s.ref_time_ms) / half_life_ms;
  if (halvings <= 64.0 &&
      s.value >= std::ldexp(epsilon, static_cast<int>(std::ceil(halvings))) * (1.0 + 1e-9)) {
    return true;
  }
  return s.ValueAt(now_ms, half_life_ms) >= epsilon;
}

}  // namespace

void ScoreFamily::ApplyBounds(const FamilyOptions& options) {
  if (entries_.empty() || (options.epsilon <= 0.0 && entries_.size() <= options.top_k)) return;
  // Compare every entry at one common time: the latest reference time.
  int64_t latest = entries_.front().score.ref_time_ms;
  for (const Entry& e : entries_) latest = std::max(latest, e.score.ref_time_ms);
  if (options.epsilon > 0.0) {
    std::erase_if(entries_, [&](const Entry& e) {
      return !AtLeast(e.score, latest, options.half_life_ms, options.epsilon);
    });
  }
  if (entries_.size() <= options.top_k) return;
  // Each value once, not once per comparison.
  std::vector<double> values(entries_.size());
  for (size_t i = 0; i < entries_.size(); ++i) {
    values[i] = entries_[i].score.ValueAt(latest, options.half_life_ms);
  }
  auto higher = [&](size_t a, size_t b) {
    return values[a] != values[b] ? values[a] > values[b] : entries_[a].key < entries_[b].key;
  };
  if (entries_.size() == options.top_k + 1) {
    // One new key over the cap (the steady state): evict the lowest.
    size_t lowest = 0;
    for (size_t i = 1; i < entries_.size(); ++i) {
      if (higher(lowest, i)) lowest = i;
    }
    entries_.erase(entries_.begin() + static_cast<long>(lowest));
    return;
  }
  std::vector<size_t> order(entries_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::nth_element(order.begin(), order.begin() + static_cast<long>(options.top_k), order.end(),
                   higher);
  order.resize(options.top_k);
  std::sort(order.begin(), order.end());  // keep the survivors' order
  std::vector<Entry> kept;
  kept.reserve(order.size());
  for (size_t i : order) kept.push_back(std::move(entries_[i]));
  entries_ = std::move(kept);
}

std::vector<ScoreFamily::Ranked> ScoreFamily::RankedAt(int64_t now_ms,
                                                       const FamilyOptions& options) const {
  std::vector<Ranked> ranked;
  RankInto(now_ms, options, ranked);
  return ranked;
}

void ScoreFamily::RankInto(int64_t now_ms, const FamilyOptions& options,
                           std::vector<Ranked>& ranked) const {
  ranked.clear();
  ranked.reserve(entries_.size());
  for (const Entry& e : entries_) {
    double v = e.score.ValueAt(now_ms, options.half_life_ms);
    if (v >= options.epsilon && v > 0.0) ranked.push_back({e.key, v, e.score.ref_time_ms});
  }
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    return a.value != b.value ? a.value > b.value : a.key < b.key;
  });
}

}  // namespace profiled::core
