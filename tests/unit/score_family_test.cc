#include "profiled/core/score_family.h"

#include "support/test_support.h"

namespace profiled::core {
namespace {

constexpr double kHour = 3600e3;
constexpr int64_t t0 = 1'569'888'000'000;  // 2019-10-01T00:00:00Z

TEST_CASE("a score halves after one half-life", "[decay]") {
  DecayedScore s = DecayedScore::Of(8.0, t0);
  CHECK(s.ValueAt(t0 + static_cast<int64_t>(kHour), kHour) == Approx(4.0));
  CHECK(s.ValueAt(t0 + static_cast<int64_t>(10 * kHour), kHour) == Approx(8.0 / 1024));
}

TEST_CASE("a late event is decayed forward to the reference time", "[decay]") {
  DecayedScore s = DecayedScore::Of(1.0, t0 + static_cast<int64_t>(2 * kHour));
  s.Add(4.0, t0, kHour);  // two half-lives older than the reference
  CHECK(s.ref_time_ms == t0 + static_cast<int64_t>(2 * kHour));
  CHECK(s.value == Approx(1.0 + 1.0));
}

TEST_CASE("the top-K cap keeps the largest keys at the latest time", "[decay]") {
  FamilyOptions options{kHour, /*top_k=*/2, /*epsilon=*/0};
  ScoreFamily f;
  f.Add("old-but-big", 3.0, t0, options);                            // 0.75 at t0+2h
  f.Add("mid", 1.0, t0 + static_cast<int64_t>(2 * kHour), options);  // 1.0
  f.Add("new", 2.0, t0 + static_cast<int64_t>(2 * kHour), options);  // 2.0: evicts old
  REQUIRE(f.size() == 2);
  CHECK(f.Find("old-but-big") == nullptr);
  CHECK(f.Find("mid") != nullptr);
  CHECK(f.Find("new") != nullptr);
}

TEST_CASE("ties at the top-K boundary are broken by key", "[decay]") {
  FamilyOptions options{kHour, /*top_k=*/1, /*epsilon=*/0};
  ScoreFamily f;
  f.Add("b", 1.0, t0, options);
  f.Add("a", 1.0, t0, options);
  REQUIRE(f.size() == 1);
  CHECK(f.Find("a") != nullptr);
}

TEST_CASE("entries below epsilon are pruned when a new key arrives", "[decay]") {
  FamilyOptions options{kHour, /*top_k=*/10, /*epsilon=*/0.01};
  ScoreFamily f;
  f.Add("faded", 1.0, t0, options);
  f.Add("fresh", 1.0, t0 + static_cast<int64_t>(10 * kHour), options);  // faded: ~0.001
  CHECK(f.Find("faded") == nullptr);
  CHECK(f.Find("fresh") != nullptr);
}

TEST_CASE("merging empty families with pruning on stays empty", "[decay]") {
  // Regression: bounds were applied to an empty family (front() of nothing)
  // when two profiles without scores in a family merged, e.g. after alias.
  FamilyOptions options{kHour, /*top_k=*/10, /*epsilon=*/0.01};
  ScoreFamily mine, theirs;
  mine.MergeFrom(theirs, options);
  CHECK(mine.size() == 0);
  theirs.Add("a", 1.0, t0, options);
  mine.MergeFrom(theirs, options);
  CHECK(mine.size() == 1);
}

TEST_CASE("ranked reads sort by value, then key, and leave out faded keys", "[decay]") {
  FamilyOptions options{kHour, /*top_k=*/10, /*epsilon=*/0.1};
  ScoreFamily f;
  f.Add("x", 1.0, t0, options);
  f.Add("y", 2.0, t0, options);
  f.Add("z", 2.0, t0, options);
  auto ranked = f.RankedAt(t0, options);
  REQUIRE(ranked.size() == 3);
  CHECK(ranked[0].key == "y");
  CHECK(ranked[1].key == "z");
  CHECK(ranked[2].key == "x");
  // Four half-lives later x reads 1/16 < 0.1 and is left out of the view only.
  auto later = f.RankedAt(t0 + static_cast<int64_t>(4 * kHour), options);
  CHECK(later.size() == 2);
  CHECK(f.size() == 3);
}

}  // namespace
}  // namespace profiled::core
