#include "support/purchase_simulation.h"

#include <random>

namespace profiled::testing {

using signals::BgNbdParams;
using signals::kMsPerWeek;

std::vector<std::vector<double>> SimulateRepeatPurchases(const BgNbdParams& truth, int customers,
                                                         double T, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::gamma_distribution<double> rate(truth.r, 1.0 / truth.alpha);
  std::gamma_distribution<double> ga(truth.a, 1.0), gb(truth.b, 1.0);
  std::uniform_real_distribution<double> coin(0, 1);
  std::vector<std::vector<double>> out;
  for (int i = 0; i < customers; ++i) {
    const double lambda = rate(rng);
    const double u = ga(rng), v = gb(rng);
    const double p = u / (u + v);
    std::exponential_distribution<double> gap(lambda);
    std::vector<double>& times = out.emplace_back();
    for (double t = gap(rng); t <= T; t += gap(rng)) {
      times.push_back(t);
      if (coin(rng) < p) break;  // drops out right after this purchase
    }
  }
  return out;
}

std::vector<core::PurchaseDays> SimulatedOrderDays(const BgNbdParams& truth, int customers,
                                                   int64_t start, int64_t spread, int64_t end_ms,
                                                   uint64_t seed) {
  constexpr int64_t kDay = 24 * 3600 * 1000LL;
  std::mt19937_64 rng(seed ^ 0x5eed);
  std::uniform_int_distribution<int64_t> first(0, spread - 1);
  std::vector<core::PurchaseDays> out;
  const double longest = static_cast<double>(end_ms - start * kDay) / kMsPerWeek;
  for (const std::vector<double>& times :
       SimulateRepeatPurchases(truth, customers, longest, seed)) {
    core::PurchaseDays& days = out.emplace_back();
    const int64_t first_ms = (start + first(rng)) * kDay + kDay / 2;
    core::RecordPurchaseDay(first_ms, days);
    for (double t : times) {
      const int64_t at = first_ms + static_cast<int64_t>(t * kMsPerWeek);
      if (at < end_ms) core::RecordPurchaseDay(at, days);  // observed up to now
    }
  }
  return out;
}

}  // namespace profiled::testing
