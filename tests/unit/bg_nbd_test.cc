// The BG/NBD model (signals/bg_nbd.h) against what the paper states and
// what its formulas imply: the log-likelihood of the CDNOW sample at the
// published parameters, maximum likelihood recovering them, the
// expectation against an independent integration over the posterior, and
// the identities the closed forms must satisfy; and the buckets the store's
// customers are fitted from (signals/purchase_buckets.h).
#include "profiled/signals/bg_nbd.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "absl/time/civil_time.h"
#include "profiled/signals/purchase_buckets.h"
#include "support/purchase_simulation.h"
#include "support/test_support.h"

namespace profiled::signals {
namespace {

// The paper's setup on its CDNOW sample: repeat purchases counted per
// customer-day, a 39-week calibration from 1997-01-01; t_x and T in weeks
// from the first purchase to the last repeat one and to the calibration's
// end.
std::vector<std::pair<PurchaseHistory, double>> CdnowCalibration(int64_t* customers = nullptr) {
  std::istringstream in(testing::ReadSourceFile("tests/data/cdnow/CDNOW_sample.txt"));
  std::map<std::string, std::set<int64_t>> days;  // customer -> purchase days
  std::string master, sample;
  int64_t date = 0;
  double cds = 0, dollars = 0;
  while (in >> master >> sample >> date >> cds >> dollars) {
    const absl::CivilDay day(date / 10000, date / 100 % 100, date % 100);
    days[sample].insert(day - absl::CivilDay(1997, 1, 1));
  }
  const int64_t end = absl::CivilDay(1997, 10, 1) - absl::CivilDay(1997, 1, 1);  // 39 weeks + 1 day
  std::vector<std::pair<PurchaseHistory, double>> out;
  for (const auto& [customer, d] : days) {
    const int64_t first = *d.begin();
    int64_t last = first;
    double x = 0;
    for (int64_t day : d) {
      if (day == first || day >= end) continue;
      ++x;
      last = day;
    }
    out.push_back(
        {{x, static_cast<double>(last - first) / 7.0, static_cast<double>(end - 1 - first) / 7.0},
         1.0});
  }
  if (customers != nullptr) *customers = static_cast<int64_t>(days.size());
  return out;
}

TEST_CASE("the CDNOW sample's log-likelihood at the published parameters is the paper's -9582.4",
          "[signals][bg_nbd]") {
  int64_t customers = 0;
  const auto histories = CdnowCalibration(&customers);
  CHECK(customers == 2357);
  double repeat = 0, ll = 0;
  for (const auto& [h, w] : histories) {
    repeat += h.x;
    ll += BgNbdLogLikelihood(BgNbdParams{}, h);
  }
  CHECK(repeat == 2457);  // SOURCE.txt: repeat customer-days in calibration
  CHECK(ll == Approx(-9582.4).margin(0.5));
}

TEST_CASE("maximum likelihood on the CDNOW sample recovers the published parameters",
          "[signals][bg_nbd]") {
  const FitResult fit = FitBgNbd(CdnowCalibration(), {1.0, 1.0, 1.0, 1.0}, {});
  CHECK(fit.converged);
  CHECK(fit.params.r == Approx(0.243).epsilon(0.01));
  CHECK(fit.params.alpha == Approx(4.414).epsilon(0.01));
  CHECK(fit.params.a == Approx(0.793).epsilon(0.01));
  CHECK(fit.params.b == Approx(2.426).epsilon(0.01));
  CHECK(fit.log_likelihood == Approx(-9582.4).margin(0.5));
}

TEST_CASE("maximum likelihood recovers the parameters customers were simulated with",
          "[signals][bg_nbd]") {
  const BgNbdParams truth{0.6, 8.0, 1.3, 3.5};
  const double T = 52.0;
  std::vector<std::pair<PurchaseHistory, double>> histories;
  for (const std::vector<double>& times : testing::SimulateRepeatPurchases(truth, 20000, T, 7)) {
    histories.push_back(
        {{static_cast<double>(times.size()), times.empty() ? 0 : times.back(), T}, 1.0});
  }
  const FitResult fit = FitBgNbd(histories, {}, {});
  CHECK(fit.converged);
  CHECK(fit.params.r == Approx(truth.r).epsilon(0.1));
  CHECK(fit.params.alpha == Approx(truth.alpha).epsilon(0.15));
  CHECK(fit.params.a == Approx(truth.a).epsilon(0.25));
  CHECK(fit.params.b == Approx(truth.b).epsilon(0.25));
}

// E[Y(t) | history] by integrating the model's definition numerically
// instead of the closed form: given the dropout probability p, the rate λ
// integrates out against its gamma prior in closed form, and p is
// integrated against its beta prior on a fine grid (p = s^4, which tames
// the prior's pole at 0). Numerator: P(active, history | p)·E[Y(t) | p];
// denominator: P(history | p).
double ExpectedByIntegration(const BgNbdParams& q, const PurchaseHistory& h, double t) {
  const double k = q.r + h.x;
  const int n = 400000;
  double numer = 0, denom = 0;
  for (int i = 0; i < n; ++i) {
    const double s = (i + 0.5) / n;
    const double p = std::pow(s, 4);
    const double prior = std::pow(p, q.a - 1) * std::pow(1 - p, q.b - 1) * 4 * std::pow(s, 3);
    const double active = std::pow(1 - p, h.x) * std::pow(q.alpha + h.T, -k);
    const double gone =
        h.x > 0 ? p * std::pow(1 - p, h.x - 1) * std::pow(q.alpha + h.t_x, -k) : 0.0;
    // ∫ λ^x e^(−λT) (1 − e^(−λpt))/p g(λ) dλ, up to the constant both share.
    const double purchases = (std::pow(q.alpha + h.T, -k) - std::pow(q.alpha + h.T + p * t, -k)) /
                             p * std::pow(1 - p, h.x);
    numer += prior * purchases;
    denom += prior * (active + gone);
  }
  return numer / denom;
}

TEST_CASE("the expected purchases' closed form agrees with integrating over the posterior",
          "[signals][bg_nbd]") {
  const BgNbdParams q{};
  for (const PurchaseHistory& h : {PurchaseHistory{0, 0, 30}, PurchaseHistory{2, 30.4, 38.9},
                                   PurchaseHistory{5, 20, 38}, PurchaseHistory{1, 2, 39}}) {
    CAPTURE(h.x, h.t_x, h.T);
    for (double t : {4.0, 13.0, 39.0}) {
      CAPTURE(t);
      CHECK(ExpectedPurchases(q, h, t) == Approx(ExpectedByIntegration(q, h, t)).epsilon(1e-4));
    }
  }
}

TEST_CASE("the closed forms' identities: rates at t = 0, limits, monotony", "[signals][bg_nbd]") {
  const BgNbdParams q{0.5, 6.0, 1.2, 2.8};
  for (const PurchaseHistory& h : {PurchaseHistory{0, 0, 10}, PurchaseHistory{3, 8, 20},
                                   PurchaseHistory{10, 50, 52}, PurchaseHistory{1, 1, 80}}) {
    CAPTURE(h.x, h.t_x, h.T);
    const double alive = ProbabilityAlive(q, h);
    CHECK(alive > 0);
    CHECK(alive <= 1);
    if (h.x == 0) CHECK(alive == 1);
    // The purchase rate now: P(alive)·E[λ | alive] = P(alive)·(r+x)/(α+T).
    const double dt = 1e-5;
    CHECK(ExpectedPurchases(q, h, dt) / dt ==
          Approx(alive * (q.r + h.x) / (q.alpha + h.T)).epsilon(1e-3));
    CHECK(ProbabilityNoPurchase(q, h, 0) == 1);
    // In the long run a customer still active buys again: P(none) -> 1 − P(alive).
    CHECK(ProbabilityNoPurchase(q, h, 1e20) == Approx(1 - alive).margin(1e-6));
    double previous = 0;
    for (double t : {1.0, 4.0, 13.0, 52.0}) {
      const double e = ExpectedPurchases(q, h, t);
      CHECK(e > previous);
      previous = e;
    }
  }
  // Quieter for longer after the same purchases: less likely active.
  CHECK(ProbabilityAlive(q, {3, 8, 40}) < ProbabilityAlive(q, {3, 8, 20}));
  // More purchases in the same time, as recently: more likely active.
  CHECK(ProbabilityAlive(q, {6, 18, 20}) > ProbabilityAlive(q, {1, 18, 20}));
  CHECK(Hypergeometric2F1(1, 1, 2, 0.5) == Approx(-std::log(0.5) / 0.5).epsilon(1e-12));
}

double SumLogLikelihood(const BgNbdParams& q,
                        const std::vector<std::pair<PurchaseHistory, double>>& histories) {
  double sum = 0;
  for (const auto& [h, w] : histories) sum += w * BgNbdLogLikelihood(q, h);
  return sum;
}

constexpr int64_t kStartDay = 20000;  // 2024-10-04
constexpr int64_t kDayMs = 24 * 3600 * 1000LL;

TEST_CASE("purchase buckets hold every customer's history exactly while they fit",
          "[signals][bg_nbd]") {
  const BgNbdParams truth{0.6, 8.0, 1.3, 3.5};
  const std::vector<core::PurchaseDays> customers =
      testing::SimulatedOrderDays(truth, 3000, kStartDay, 100, (kStartDay + 400) * kDayMs, 11);
  const int64_t now_ms = (kStartDay + 400) * kDayMs + 5;
  PurchaseBuckets buckets(1 << 20);
  buckets.Add(core::PurchaseDays{}, now_ms);  // never ordered: not a customer
  std::vector<std::pair<PurchaseHistory, double>> each;
  for (const core::PurchaseDays& d : customers) {
    buckets.Add(d, now_ms);
    each.push_back({{static_cast<double>(d.count - 1), (d.last_day() - d.first_day) / 7.0,
                     (kStartDay + 400 - d.first_day) / 7.0},
                    1.0});
  }
  CHECK(buckets.customers() == 3000);
  CHECK(buckets.width_days() == 1);
  CHECK(buckets.size() < 3000);  // customers share histories
  for (const BgNbdParams& q : {truth, BgNbdParams{}, BgNbdParams{2.0, 1.0, 0.3, 9.0}}) {
    CHECK(SumLogLikelihood(q, buckets.Histories()) ==
          Approx(SumLogLikelihood(q, each)).epsilon(1e-12));
  }
}

TEST_CASE("purchase buckets stay within their bound and keep every customer and total",
          "[signals][bg_nbd]") {
  const BgNbdParams truth{0.6, 8.0, 1.3, 3.5};
  const auto max_buckets = GENERATE(size_t{1024}, size_t{5000});
  const int64_t today = kStartDay + 1500;
  const std::vector<core::PurchaseDays> customers =
      testing::SimulatedOrderDays(truth, 50000, kStartDay, 700, today * kDayMs, 5);
  PurchaseBuckets buckets(max_buckets);
  double x = 0, t_x = 0, T = 0;
  for (const core::PurchaseDays& d : customers) {
    buckets.Add(d, today * kDayMs);
    CHECK(buckets.size() <= max_buckets);
    x += d.count - 1;
    t_x += d.last_day() - d.first_day;
    T += today - d.first_day;
  }
  CAPTURE(max_buckets, buckets.width_days());
  CHECK(buckets.customers() == 50000);
  CHECK(buckets.width_days() > 1);
  double weight = 0, wx = 0, wt_x = 0, wT = 0;
  for (const auto& [h, w] : buckets.Histories()) {
    weight += w;
    wx += w * h.x;
    wt_x += w * h.t_x * 7;
    wT += w * h.T * 7;
    CHECK(h.t_x >= 0);
    CHECK(h.t_x <= h.T);
    if (h.x == 0) CHECK(h.t_x == 0);
  }
  // Coarsening moves customers between buckets, never loses or invents one.
  CHECK(weight == 50000);
  CHECK(wx == Approx(x).epsilon(1e-9));
  CHECK(wt_x == Approx(t_x).epsilon(1e-9));
  CHECK(wT == Approx(T).epsilon(1e-9));
}

TEST_CASE("a fit over coarsened buckets predicts what the exact fit predicts",
          "[signals][bg_nbd]") {
  const BgNbdParams truth{0.6, 8.0, 1.3, 3.5};
  const int64_t now_ms = (kStartDay + 600) * kDayMs;
  const std::vector<core::PurchaseDays> customers =
      testing::SimulatedOrderDays(truth, 20000, kStartDay, 365, now_ms, 3);
  PurchaseBuckets exact(1 << 20), coarse(2000);
  for (const core::PurchaseDays& d : customers) {
    exact.Add(d, now_ms);
    coarse.Add(d, now_ms);
  }
  REQUIRE(exact.width_days() == 1);
  REQUIRE(coarse.width_days() > 1);
  const FitResult a = FitBgNbd(exact.Histories(), {}, {});
  const FitResult b = FitBgNbd(coarse.Histories(), {}, {});
  REQUIRE(a.converged);
  REQUIRE(b.converged);
  CAPTURE(coarse.width_days(), a.params.r, a.params.alpha, a.params.a, a.params.b, b.params.r,
          b.params.alpha, b.params.a, b.params.b);
  // What the signals use: every customer's expected orders in the next
  // quarter and P(alive), summed over the population.
  double expected_a = 0, expected_b = 0, alive_a = 0, alive_b = 0;
  for (const auto& [h, w] : exact.Histories()) {
    expected_a += w * ExpectedPurchases(a.params, h, 13);
    expected_b += w * ExpectedPurchases(b.params, h, 13);
    alive_a += w * ProbabilityAlive(a.params, h);
    alive_b += w * ProbabilityAlive(b.params, h);
  }
  CHECK(expected_b == Approx(expected_a).epsilon(0.01));
  CHECK(alive_b == Approx(alive_a).epsilon(0.01));
}

}  // namespace
}  // namespace profiled::signals
