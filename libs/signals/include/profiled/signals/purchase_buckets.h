// PurchaseBuckets: the customers of a store reduced to weighted purchase
// histories for fitting the BG/NBD model (bg_nbd.h), in memory bounded by
// `max_buckets` whatever the number of customers.
//
//   PurchaseBuckets buckets(/*max_buckets=*/20000);
//   for (const core::Profile& p : profiles) buckets.Add(p.purchase_days, now_ms);
//   FitResult fit = FitBgNbd(buckets.Histories(), start, {});
//
// A bucket holds the customers with the same repeat-purchase count x and
// the same t_x and T in days (the model's likelihood only depends on
// these), weighted by how many share it — exact while the buckets fit.
// When they would not, the width of days doubles (x stays exact up to 64,
// geometric above) and each bucket stands for its customers' mean history:
// the likelihood becomes an approximation whose resolution width_days()
// reports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "profiled/core/profile.h"
#include "profiled/signals/bg_nbd.h"

namespace profiled::signals {

class PurchaseBuckets {
 public:
  // Below this the repeat counts alone might not fit.
  static constexpr size_t kMinBuckets = 1024;
  // At least kMinBuckets.
  explicit PurchaseBuckets(size_t max_buckets);

  // Counts one customer (profiles without an order are not customers and
  // are ignored): x = distinct order days − 1, t_x = last − first day,
  // T = today − first day, today being `now_ms`'s day.
  void Add(const core::PurchaseDays& days, int64_t now_ms);

  // One weighted history per bucket (weeks, as FitBgNbd takes them), in no
  // particular order.
  std::vector<std::pair<PurchaseHistory, double>> Histories() const;

  uint64_t customers() const { return customers_; }
  size_t size() const { return buckets_.size(); }
  // 1 while every history is exact; doubles each time the buckets coarsen.
  int64_t width_days() const { return width_; }

 private:
  struct Key {
    int64_t x = 0;
    int64_t t_x = 0;
    int64_t T = 0;
    bool operator==(const Key&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.x, k.t_x, k.T);
    }
  };
  // Sums of the customers in one bucket (their means are the bucket's history).
  struct Sums {
    double weight = 0;
    double x = 0;
    double t_x = 0;
    double T = 0;
  };
  Key KeyOf(double x, double t_x, double T) const;
  void Put(const Key& key, const Sums& sums);
  // Doubles the width and re-buckets every bucket by its mean history.
  void Coarsen();

  size_t max_buckets_;
  int64_t width_ = 1;
  uint64_t customers_ = 0;
  absl::flat_hash_map<Key, Sums> buckets_;
};

}  // namespace profiled::signals
