#include "profiled/signals/bg_nbd.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace profiled::signals {
namespace {

// log(((α+T)/(α+t_x))^(r+x)): how much longer the customer has been quiet
// than their purchases suggest, on the model's scale.
double LogQuietRatio(const BgNbdParams& p, const PurchaseHistory& h) {
  return (p.r + h.x) * (std::log(p.alpha + h.T) - std::log(p.alpha + h.t_x));
}

// 1 + a/(b+x−1)·((α+T)/(α+t_x))^(r+x): P(alive)'s denominator, shared by
// the expectation.
double AliveDenominator(const BgNbdParams& p, const PurchaseHistory& h) {
  if (h.x <= 0) return 1.0;
  return 1.0 + p.a / (p.b + h.x - 1.0) * std::exp(LogQuietRatio(p, h));
}

}  // namespace

double BgNbdLogLikelihood(const BgNbdParams& p, const PurchaseHistory& h) {
  const double x = h.x;
  const double rate = std::lgamma(p.r + x) - std::lgamma(p.r) + p.r * std::log(p.alpha);
  const double dropout =
      std::lgamma(p.a + p.b) + std::lgamma(p.b + x) - std::lgamma(p.b) - std::lgamma(p.a + p.b + x);
  const double still = -(p.r + x) * std::log(p.alpha + h.T);
  if (x <= 0) return rate + dropout + still;
  // Or dropped out right after the last purchase; the two terms added in
  // log space.
  const double gone =
      std::log(p.a) - std::log(p.b + x - 1.0) - (p.r + x) * std::log(p.alpha + h.t_x);
  const double top = std::max(still, gone);
  return rate + dropout + top + std::log(std::exp(still - top) + std::exp(gone - top));
}

double ProbabilityAlive(const BgNbdParams& p, const PurchaseHistory& h) {
  return 1.0 / AliveDenominator(p, h);
}

double Hypergeometric2F1(double a, double b, double c, double z) {
  double term = 1.0;
  double sum = 1.0;
  for (int n = 0; n < 100000; ++n) {
    term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
    sum += term;
    if (std::abs(term) <= 1e-15 * std::abs(sum)) break;
  }
  return sum;
}

double ExpectedPurchases(const BgNbdParams& p, const PurchaseHistory& h, double t) {
  if (t <= 0) return 0.0;
  // a = 1 is a removable singularity of the closed form.
  const double a = std::abs(p.a - 1.0) < 1e-9 ? 1.0 + 1e-9 : p.a;
  const double x = h.x;
  const double z = t / (p.alpha + h.T + t);
  const double still =
      std::exp((p.r + x) * (std::log(p.alpha + h.T) - std::log(p.alpha + h.T + t)));
  const double series = Hypergeometric2F1(p.r + x, p.b + x, a + p.b + x - 1.0, z);
  const double active = (a + p.b + x - 1.0) / (a - 1.0) * (1.0 - still * series);
  return active / AliveDenominator({p.r, p.alpha, a, p.b}, h);
}

double ProbabilityNoPurchase(const BgNbdParams& p, const PurchaseHistory& h, double t) {
  if (t <= 0) return 1.0;
  // Given active, the rate's posterior is Gamma(r+x, α+T): no purchase in
  // t with probability ((α+T)/(α+T+t))^(r+x); a customer who dropped out
  // buys nothing.
  const double quiet =
      std::exp((p.r + h.x) * (std::log(p.alpha + h.T) - std::log(p.alpha + h.T + t)));
  return 1.0 - ProbabilityAlive(p, h) * (1.0 - quiet);
}

FitResult FitBgNbd(const std::vector<std::pair<PurchaseHistory, double>>& histories,
                   const BgNbdParams& start, const FitOptions& options) {
  using Point = std::array<double, 4>;  // log r, log α, log a, log b
  auto params_of = [](const Point& v) {
    return BgNbdParams{std::exp(v[0]), std::exp(v[1]), std::exp(v[2]), std::exp(v[3])};
  };
  auto cost = [&](const Point& v) {
    const BgNbdParams p = params_of(v);
    double sum = 0;
    for (const auto& [h, weight] : histories) sum += weight * BgNbdLogLikelihood(p, h);
    return std::isfinite(sum) ? -sum : std::numeric_limits<double>::infinity();
  };

  FitResult result;
  Point best = {std::log(start.r), std::log(start.alpha), std::log(start.a), std::log(start.b)};
  double best_cost = cost(best);
  // Nelder-Mead, restarted from its answer until a restart finds nothing
  // better (a collapsed simplex can stop short of the optimum).
  for (int restart = 0; restart < 5 && result.iterations < options.max_iterations; ++restart) {
    std::array<Point, 5> simplex;
    std::array<double, 5> f;
    simplex[0] = best;
    for (size_t i = 0; i < 4; ++i) {
      simplex[i + 1] = best;
      simplex[i + 1][i] += 0.5;
    }
    for (size_t i = 0; i < 5; ++i) f[i] = cost(simplex[i]);
    bool converged = false;
    while (result.iterations < options.max_iterations) {
      ++result.iterations;
      std::array<size_t, 5> order = {0, 1, 2, 3, 4};
      std::sort(order.begin(), order.end(), [&](size_t i, size_t j) { return f[i] < f[j]; });
      const size_t lo = order[0], hi = order[4], second = order[3];
      if (std::abs(f[hi] - f[lo]) <= options.tolerance * (std::abs(f[lo]) + 1.0)) {
        converged = true;
        break;
      }
      Point centroid{};
      for (size_t i : order) {
        if (i == hi) continue;
        for (size_t d = 0; d < 4; ++d) centroid[d] += simplex[i][d] / 4.0;
      }
      auto toward = [&](double k) {
        Point q;
        for (size_t d = 0; d < 4; ++d) q[d] = centroid[d] + k * (simplex[hi][d] - centroid[d]);
        return q;
      };
      const Point reflected = toward(-1.0);
      const double fr = cost(reflected);
      if (fr < f[lo]) {
        const Point expanded = toward(-2.0);
        const double fe = cost(expanded);
        if (fe < fr) {
          simplex[hi] = expanded;
          f[hi] = fe;
        } else {
          simplex[hi] = reflected;
          f[hi] = fr;
        }
      } else if (fr < f[second]) {
        simplex[hi] = reflected;
        f[hi] = fr;
      } else {
        const Point contracted = fr < f[hi] ? toward(-0.5) : toward(0.5);
        const double fc = cost(contracted);
        if (fc < std::min(fr, f[hi])) {
          simplex[hi] = contracted;
          f[hi] = fc;
        } else {
          for (size_t i : order) {  // shrink toward the best
            if (i == lo) continue;
            for (size_t d = 0; d < 4; ++d) {
              simplex[i][d] = simplex[lo][d] + 0.5 * (simplex[i][d] - simplex[lo][d]);
            }
            f[i] = cost(simplex[i]);
          }
        }
      }
    }
    const size_t lo = static_cast<size_t>(std::min_element(f.begin(), f.end()) - f.begin());
    const bool improved = f[lo] < best_cost - options.tolerance * (std::abs(best_cost) + 1.0);
    if (f[lo] < best_cost) {
      best = simplex[lo];
      best_cost = f[lo];
    }
    result.converged = converged;
    if (!improved && restart > 0) break;
  }
  result.params = params_of(best);
  result.log_likelihood = -best_cost;
  return result;
}

}  // namespace profiled::signals
