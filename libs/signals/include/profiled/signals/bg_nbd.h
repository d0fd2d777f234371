// The BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005,
// "Counting Your Customers the Easy Way", Marketing Science 24(2)):
// while active a customer buys at a Poisson rate λ ~ Gamma(r, α), and after
// each purchase drops out for good with probability p ~ Beta(a, b). From a
// customer's history — x repeat purchases, the last at t_x, observed for T
// since the first — it gives the probability they are still active, the
// purchases to expect in the next t, and the probability of none.
//
//   const BgNbdParams params;                          // the paper's CDNOW fit
//   const PurchaseHistory h{.x = 2, .t_x = 30.4, .T = 38.9};
//   double alive = ProbabilityAlive(params, h);
//   double next_quarter = ExpectedPurchases(params, h, 13);
//   FitResult fit = FitBgNbd(histories, params, {});  // maximum likelihood
//
// Time is in weeks, the paper's unit (its parameters are per week). Pure:
// closed forms, a series for the Gauss hypergeometric function, and a
// Nelder-Mead search for the fit.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace profiled::signals {

inline constexpr double kMsPerWeek = 7.0 * 24 * 3600 * 1000;

// r, α: the purchase rates' gamma; a, b: the dropout probabilities' beta.
// Defaults: the paper's maximum-likelihood fit on its CDNOW sample.
struct BgNbdParams {
  double r = 0.243;
  double alpha = 4.414;
  double a = 0.793;
  double b = 2.426;
  bool operator==(const BgNbdParams&) const = default;
};

// The model's sufficient statistics: x repeat purchases (purchase days
// after the first), the last of them t_x after the first purchase, and T
// from the first purchase to now (0 <= t_x <= T), in weeks.
struct PurchaseHistory {
  double x = 0;
  double t_x = 0;
  double T = 0;
  bool operator==(const PurchaseHistory&) const = default;
};

// log L(r, α, a, b | x, t_x, T), the paper's equation (6).
double BgNbdLogLikelihood(const BgNbdParams& params, const PurchaseHistory& h);

// P(still active at T | history) — 1 with no repeat purchase (the model
// lets a customer drop out only right after a purchase).
double ProbabilityAlive(const BgNbdParams& params, const PurchaseHistory& h);

// E[purchases in (T, T + t] | history], the paper's equation (10).
double ExpectedPurchases(const BgNbdParams& params, const PurchaseHistory& h, double t);

// P(no purchase in (T, T + t] | history): 1 − P(alive)·(1 − ((α+T)/(α+T+t))^(r+x)).
double ProbabilityNoPurchase(const BgNbdParams& params, const PurchaseHistory& h, double t);

// 2F1(a, b; c; z) for 0 <= z < 1, by its power series.
double Hypergeometric2F1(double a, double b, double c, double z);

struct FitOptions {
  int max_iterations = 4000;
  // Stops when the simplex's log-likelihoods differ by less than this.
  double tolerance = 1e-10;
};
struct FitResult {
  BgNbdParams params;
  double log_likelihood = 0;  // the sum over the histories, weighted
  int iterations = 0;
  bool converged = false;
};

// Maximum likelihood over weighted histories (weight: how many customers
// share it), by Nelder-Mead on the parameters' logarithms from `start`.
FitResult FitBgNbd(const std::vector<std::pair<PurchaseHistory, double>>& histories,
                   const BgNbdParams& start, const FitOptions& options);

}  // namespace profiled::signals
