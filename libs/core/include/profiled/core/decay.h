// Exact recency decay on event time.
//
// A DecayedScore is the pair (value, ref_time) of DESIGN.md: `value` is the
// decayed sum of all weights added, as it stood at `ref_time_ms`. With half-life
// h, weight w added at event time t contributes w * 2^(-(now - t) / h) when read
// at `now`. Late and out-of-order events are exact: a weight older than the
// reference is decayed forward to it instead of moving the reference back.
//
//   DecayedScore s = DecayedScore::Of(/*weight=*/8.0, /*at_ms=*/t0);
//   s.Add(4.0, t0 + kDayMs, kDayMs);
//   s.ValueAt(t0 + kDayMs, kDayMs);   // 8/2 + 4 = 8
//
// The value never grows without bound (no forward-decay sum): it is always
// expressed at the latest event time seen, so it stays in the range of the
// weights themselves. Merging two pairs is commutative and associative (up to
// floating-point rounding), which is what exact identity merges rely on.
#pragma once

#include <cmath>
#include <cstdint>

namespace profiled::core {

// 2^(-elapsed_ms / half_life_ms). elapsed_ms may be negative (a read before
// the reference time), in which case the factor is > 1.
inline double DecayFactor(int64_t elapsed_ms, double half_life_ms) {
  return std::exp2(-static_cast<double>(elapsed_ms) / half_life_ms);
}

struct DecayedScore {
  double value = 0.0;
  int64_t ref_time_ms = 0;

  // A score holding one weight added at `at_ms`.
  static DecayedScore Of(double weight, int64_t at_ms) { return {weight, at_ms}; }

  // Adds `weight` observed at event time `at_ms`.
  void Add(double weight, int64_t at_ms, double half_life_ms) {
    if (at_ms >= ref_time_ms) {
      value = value * DecayFactor(at_ms - ref_time_ms, half_life_ms) + weight;
      ref_time_ms = at_ms;
    } else {
      value += weight * DecayFactor(ref_time_ms - at_ms, half_life_ms);
    }
  }

  // The decayed value read at `now_ms`.
  double ValueAt(int64_t now_ms, double half_life_ms) const {
    return value * DecayFactor(now_ms - ref_time_ms, half_life_ms);
  }

  // Folds `other` (same half-life) into this score: the result is the score
  // that would hold the weights of both.
  void MergeFrom(const DecayedScore& other, double half_life_ms) {
    Add(other.value, other.ref_time_ms, half_life_ms);
  }
};

}  // namespace profiled::core
