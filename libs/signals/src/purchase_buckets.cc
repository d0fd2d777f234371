#include "profiled/signals/purchase_buckets.h"

#include <algorithm>
#include <cmath>

#include "profiled/core/activity.h"

namespace profiled::signals {
namespace {

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The likelihood is most sensitive to x, and most customers have a few
// repeat purchases: x is kept exact up to kExactRepeats, then binned
// geometrically (eight bins per doubling), whatever the width of days.
constexpr int64_t kExactRepeats = 64;
int64_t RepeatBin(int64_t x) {
  if (x <= kExactRepeats) return x;
  return kExactRepeats +
         static_cast<int64_t>(std::floor(8 * std::log2(static_cast<double>(x) / kExactRepeats))) +
         1;
}

}  // namespace

PurchaseBuckets::PurchaseBuckets(size_t max_buckets)
    : max_buckets_(std::max<size_t>(max_buckets, kMinBuckets)) {}

PurchaseBuckets::Key PurchaseBuckets::KeyOf(double x, double t_x, double T) const {
  const auto whole = [](double v) { return static_cast<int64_t>(std::floor(v)); };
  return {RepeatBin(whole(x)), FloorDiv(whole(t_x), width_), FloorDiv(whole(T), width_)};
}

void PurchaseBuckets::Put(const Key& key, const Sums& sums) {
  Sums& into = buckets_[key];
  into.weight += sums.weight;
  into.x += sums.x;
  into.t_x += sums.t_x;
  into.T += sums.T;
}

void PurchaseBuckets::Add(const core::PurchaseDays& days, int64_t now_ms) {
  if (days.count <= 0) return;
  const double x = static_cast<double>(days.count - 1);
  const double t_x = static_cast<double>(days.last_day() - days.first_day);
  const double T = std::max(static_cast<double>(core::UnixDayOf(now_ms) - days.first_day), t_x);
  Put(KeyOf(x, t_x, T), {1, x, t_x, T});
  ++customers_;
  while (buckets_.size() > max_buckets_) Coarsen();
}

void PurchaseBuckets::Coarsen() {
  width_ *= 2;
  absl::flat_hash_map<Key, Sums> old;
  old.swap(buckets_);
  for (const auto& [key, s] : old) Put(KeyOf(s.x / s.weight, s.t_x / s.weight, s.T / s.weight), s);
}

std::vector<std::pair<PurchaseHistory, double>> PurchaseBuckets::Histories() const {
  std::vector<std::pair<PurchaseHistory, double>> out;
  out.reserve(buckets_.size());
  for (const auto& [key, s] : buckets_) {
    out.push_back({{s.x / s.weight, s.t_x / s.weight / 7.0, s.T / s.weight / 7.0}, s.weight});
  }
  return out;
}

}  // namespace profiled::signals
