// Property tests of the decay math. Expected values come from a brute-force
// sum computed here with std::pow, never through the module under test.
// Each case prints its seed on failure; rerun one with PROFILED_SEED=<seed>.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>

#include "profiled/core/decay.h"
#include "profiled/core/score_family.h"
#include "support/test_support.h"

namespace profiled::core {
namespace {

using testing::BruteForceDecay;
using testing::RelativelyClose;

struct Observation {
  std::string key;
  double weight;
  int64_t at_ms;
};

struct Case {
  uint64_t seed;
  double half_life_ms;
  std::vector<Observation> events;
  int64_t read_at_ms;
};

constexpr int kCases = 1000;
constexpr double kHalfLivesSpanned = 12;  // every case spans >= 10 half-lives

// Events over 12 half-lives with keys from a small alphabet, so keys repeat
// and arrive out of order.
Case MakeCase(uint64_t seed) {
  std::mt19937_64 rng(seed);
  Case c;
  c.seed = seed;
  c.half_life_ms = std::uniform_real_distribution<double>(1000.0, 30.0 * 86400e3)(rng);
  const int64_t t0 =
      std::uniform_int_distribution<int64_t>(1'000'000'000'000, 1'700'000'000'000)(rng);
  const int64_t span = static_cast<int64_t>(kHalfLivesSpanned * c.half_life_ms);
  const int n = std::uniform_int_distribution<int>(2, 120)(rng);
  const int keys = std::uniform_int_distribution<int>(1, 8)(rng);
  for (int i = 0; i < n; ++i) {
    Observation o;
    o.key = "k" + std::to_string(std::uniform_int_distribution<int>(0, keys - 1)(rng));
    o.weight = std::uniform_real_distribution<double>(0.1, 10.0)(rng);
    o.at_ms = t0 + std::uniform_int_distribution<int64_t>(0, span)(rng);
    c.events.push_back(o);
  }
  // Make sure the case really spans the full range.
  c.events[0].at_ms = t0;
  c.events[1].at_ms = t0 + span;
  std::shuffle(c.events.begin(), c.events.end(), rng);
  c.read_at_ms = t0 + span + std::uniform_int_distribution<int64_t>(0, span / 4)(rng);
  return c;
}

std::map<std::string, double> Exact(const Case& c) {
  std::map<std::string, std::vector<std::pair<double, int64_t>>> by_key;
  for (const Observation& o : c.events) by_key[o.key].emplace_back(o.weight, o.at_ms);
  std::map<std::string, double> out;
  for (const auto& [key, obs] : by_key)
    out[key] = BruteForceDecay(obs, c.read_at_ms, c.half_life_ms);
  return out;
}

FamilyOptions Unpruned(double half_life_ms) {
  return FamilyOptions{half_life_ms, /*top_k=*/1000, /*epsilon=*/0.0};
}

ScoreFamily Fold(const std::vector<Observation>& events, const FamilyOptions& options) {
  ScoreFamily f;
  for (const Observation& o : events) f.Add(o.key, o.weight, o.at_ms, options);
  return f;
}

std::map<std::string, double> Read(const ScoreFamily& f, int64_t at_ms, double half_life_ms) {
  std::map<std::string, double> out;
  for (const auto& e : f.entries()) out[e.key] = e.score.ValueAt(at_ms, half_life_ms);
  return out;
}

void RequireSameScores(const std::map<std::string, double>& actual,
                       const std::map<std::string, double>& expected) {
  REQUIRE(actual.size() == expected.size());
  for (const auto& [key, value] : expected) {
    INFO("key " << key << " expected " << value << " got " << actual.at(key));
    REQUIRE(RelativelyClose(actual.at(key), value, 1e-9));
  }
}

uint64_t SeedBase() {
  const char* env = std::getenv("PROFILED_SEED");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 20261122;
}

int CaseCount() { return std::getenv("PROFILED_SEED") != nullptr ? 1 : kCases; }

TEST_CASE("any permutation of the same events gives the brute-force scores", "[decay][property]") {
  for (int i = 0; i < CaseCount(); ++i) {
    const uint64_t seed = SeedBase() + static_cast<uint64_t>(i);
    CAPTURE(seed);
    Case c = MakeCase(seed);
    const FamilyOptions options = Unpruned(c.half_life_ms);
    const std::map<std::string, double> exact = Exact(c);

    RequireSameScores(Read(Fold(c.events, options), c.read_at_ms, c.half_life_ms), exact);

    std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
    std::vector<Observation> permuted = c.events;
    std::shuffle(permuted.begin(), permuted.end(), rng);
    RequireSameScores(Read(Fold(permuted, options), c.read_at_ms, c.half_life_ms), exact);

    std::sort(permuted.begin(), permuted.end(),
              [](const Observation& a, const Observation& b) { return a.at_ms > b.at_ms; });
    RequireSameScores(Read(Fold(permuted, options), c.read_at_ms, c.half_life_ms), exact);
  }
}

TEST_CASE("merging score pairs is commutative and associative", "[decay][property]") {
  for (int i = 0; i < CaseCount(); ++i) {
    const uint64_t seed = SeedBase() + 100000 + static_cast<uint64_t>(i);
    CAPTURE(seed);
    Case c = MakeCase(seed);
    const FamilyOptions options = Unpruned(c.half_life_ms);
    std::mt19937_64 rng(seed);
    std::vector<Observation> parts[3];
    for (const Observation& o : c.events) {
      parts[std::uniform_int_distribution<int>(0, 2)(rng)].push_back(o);
    }
    const ScoreFamily a = Fold(parts[0], options);
    const ScoreFamily b = Fold(parts[1], options);
    const ScoreFamily cc = Fold(parts[2], options);
    const std::map<std::string, double> exact = Exact(c);

    ScoreFamily ab_c = a;  // (A + B) + C
    ab_c.MergeFrom(b, options);
    ab_c.MergeFrom(cc, options);
    ScoreFamily bc = b;  // A + (B + C)
    bc.MergeFrom(cc, options);
    ScoreFamily a_bc = a;
    a_bc.MergeFrom(bc, options);
    ScoreFamily ca_b = cc;  // (C + A) + B
    ca_b.MergeFrom(a, options);
    ca_b.MergeFrom(b, options);

    RequireSameScores(Read(ab_c, c.read_at_ms, c.half_life_ms), exact);
    RequireSameScores(Read(a_bc, c.read_at_ms, c.half_life_ms), exact);
    RequireSameScores(Read(ca_b, c.read_at_ms, c.half_life_ms), exact);

    // Pairs alone: a.Merge(b) == b.Merge(a).
    DecayedScore x = DecayedScore::Of(c.events[0].weight, c.events[0].at_ms);
    DecayedScore y = DecayedScore::Of(c.events[1].weight, c.events[1].at_ms);
    DecayedScore xy = x, yx = y;
    xy.MergeFrom(y, c.half_life_ms);
    yx.MergeFrom(x, c.half_life_ms);
    REQUIRE(RelativelyClose(xy.ValueAt(c.read_at_ms, c.half_life_ms),
                            yx.ValueAt(c.read_at_ms, c.half_life_ms)));
  }
}

TEST_CASE("with epsilon pruning the error stays within the documented bound", "[decay][property]") {
  for (int i = 0; i < CaseCount(); ++i) {
    const uint64_t seed = SeedBase() + 200000 + static_cast<uint64_t>(i);
    CAPTURE(seed);
    Case c = MakeCase(seed);
    // Many distinct keys so inserts (which trigger pruning) are frequent.
    std::mt19937_64 rng(seed);
    for (Observation& o : c.events) {
      o.key = "k" + std::to_string(std::uniform_int_distribution<int>(0, 40)(rng));
    }
    const double epsilon = 0.05;
    const FamilyOptions pruned{c.half_life_ms, /*top_k=*/1000, epsilon};
    std::map<std::string, int> adds;
    for (const Observation& o : c.events) ++adds[o.key];

    const std::map<std::string, double> exact = Exact(c);
    const std::map<std::string, double> kept =
        Read(Fold(c.events, pruned), c.read_at_ms, c.half_life_ms);
    for (const auto& [key, truth] : exact) {
      const double stored = kept.count(key) > 0 ? kept.at(key) : 0.0;
      INFO("key " << key << " exact " << truth << " stored " << stored << " adds " << adds[key]);
      // Pruning only removes positive mass below epsilon, once per add at most.
      REQUIRE(stored <= truth * (1 + 1e-9) + 1e-300);
      REQUIRE(truth - stored <= epsilon * adds[key] * (1 + 1e-9));
    }
  }
}

}  // namespace
}  // namespace profiled::core
