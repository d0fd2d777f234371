#include "profiled/core/score_family.h"

#include <algorithm>

namespace profiled::core {

ScoreFamily::Entry* ScoreFamily::FindMutable(std::string_view key) {
  for (Entry& e : entries_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

const DecayedScore* ScoreFamily::Find(std::string_view key) const {
  for (const Entry& e : entries_) {
    if (e.key == key) return &e.score;
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

void ScoreFamily::ApplyBounds(const FamilyOptions& options) {
  if (entries_.empty() || (options.epsilon <= 0.0 && entries_.size() <= options.top_k)) return;
  // Compare every entry at one common time: the latest reference time.
  int64_t latest = entries_.front().score.ref_time_ms;
  for (const Entry& e : entries_) latest = std::max(latest, e.score.ref_time_ms);
  if (options.epsilon > 0.0) {
    std::erase_if(entries_, [&](const Entry& e) {
      return e.score.ValueAt(latest, options.half_life_ms) < options.epsilon;
    });
  }
  if (entries_.size() > options.top_k) {
    auto higher = [&](const Entry& a, const Entry& b) {
      double va = a.score.ValueAt(latest, options.half_life_ms);
      double vb = b.score.ValueAt(latest, options.half_life_ms);
      return va != vb ? va > vb : a.key < b.key;
    };
    std::nth_element(entries_.begin(), entries_.begin() + static_cast<long>(options.top_k),
                     entries_.end(), higher);
    entries_.resize(options.top_k);
  }
}

std::vector<ScoreFamily::Ranked> ScoreFamily::RankedAt(int64_t now_ms,
                                                       const FamilyOptions& options) const {
  std::vector<Ranked> ranked;
  ranked.reserve(entries_.size());
  for (const Entry& e : entries_) {
    double v = e.score.ValueAt(now_ms, options.half_life_ms);
    if (v >= options.epsilon && v > 0.0) ranked.push_back({e.key, v, e.score.ref_time_ms});
  }
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    return a.value != b.value ? a.value > b.value : a.key < b.key;
  });
  return ranked;
}

}  // namespace profiled::core
