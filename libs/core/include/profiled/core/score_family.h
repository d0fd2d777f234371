// ScoreFamily: the decayed scores of one family of keys (categories,
// products, brands ...) of one profile, bounded in size.
//
// Bounds, both deterministic functions of the event sequence (so a replay
// reproduces the same state whatever the batching):
//  - epsilon pruning: whenever a new key is inserted, every entry whose value
//    at the family's latest reference time is below `epsilon` is dropped;
//  - top-K cap: if more than `top_k` entries remain, the smallest (by value at
//    the latest reference time, ties by key) are evicted.
//
// Error bound (documented in docs/decay.md, property-tested): pruning only
// ever removes positive mass below epsilon, so for a key never evicted by the
// top-K cap, 0 <= exact - stored <= epsilon * (number of weights added to the
// key), at any later read time. With epsilon = 0 and top_k >= number of keys
// the family is exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "profiled/core/decay.h"

namespace profiled::core {

struct FamilyOptions {
  // Half-life of every score in the family, in milliseconds. Must be > 0.
  double half_life_ms = 7.0 * 24 * 3600 * 1000;
  // Maximum number of keys kept. Must be >= 1.
  size_t top_k = 50;
  // Entries whose value falls below this are dropped. 0 disables pruning.
  double epsilon = 1e-4;
};

class ScoreFamily {
 public:
  struct Entry {
    std::string key;
    DecayedScore score;
  };
  struct Ranked {
    std::string_view key;
    double value;
    int64_t ref_time_ms;
  };

  // Adds `weight` to `key` at event time `at_ms`.
  void Add(std::string_view key, double weight, int64_t at_ms, const FamilyOptions& options);

  // Folds every entry of `other` into this family, then applies the bounds.
  void MergeFrom(const ScoreFamily& other, const FamilyOptions& options);

  // Entries read at `now_ms`, value descending (ties by key ascending), those
  // below `epsilon` at `now_ms` left out. Views point into this family.
  std::vector<Ranked> RankedAt(int64_t now_ms, const FamilyOptions& options) const;
  // The same into `out` (cleared first; its capacity is reused).
  void RankInto(int64_t now_ms, const FamilyOptions& options, std::vector<Ranked>& out) const;

  // The score of `key`, or nullptr when the family does not hold it.
  const DecayedScore* Find(std::string_view key) const;

  const std::vector<Entry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

  void Reserve(size_t entries) { entries_.reserve(entries); }
  // Restores a stored entry verbatim (decoding); no bounds are applied.
  void RestoreEntry(std::string key, DecayedScore score) {
    entries_.push_back({std::move(key), score});
  }

 private:
  Entry* FindMutable(std::string_view key);
  void ApplyBounds(const FamilyOptions& options);

  // Small (top_k) and scanned linearly: cheaper than a hash map at this size
  // and cheap to serialize.
  std::vector<Entry> entries_;
};

}  // namespace profiled::core
