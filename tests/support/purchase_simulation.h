// Customers simulated from the BG/NBD model's own definition
// (signals/bg_nbd.h), for tests of the model, its buckets and its fitter.
#pragma once

#include <cstdint>
#include <vector>

#include "profiled/core/profile.h"
#include "profiled/signals/bg_nbd.h"

namespace profiled::testing {

// Each customer buys at a rate λ ~ Gamma(r, α) and drops out after each
// purchase with p ~ Beta(a, b). Returns each customer's purchase times
// after the first (weeks, up to T).
std::vector<std::vector<double>> SimulateRepeatPurchases(const signals::BgNbdParams& truth,
                                                         int customers, double T, uint64_t seed);

// The order days of simulated customers, as profiles record them: the first
// order on a day within the first `spread` days after day `start` (days
// since the epoch), repeat orders at the simulated times before `end_ms`
// (several on one day count once).
std::vector<core::PurchaseDays> SimulatedOrderDays(const signals::BgNbdParams& truth, int customers,
                                                   int64_t start, int64_t spread, int64_t end_ms,
                                                   uint64_t seed);

}  // namespace profiled::testing
