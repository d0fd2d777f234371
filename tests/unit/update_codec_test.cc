#include "profiled/codec/update_codec.h"

#include "support/test_support.h"

namespace profiled::codec {
namespace {

constexpr int64_t t0 = 1'569'888'000'000;
constexpr int64_t kHourMs = 3'600'000;

TEST_CASE("an update carries scores evaluated at as_of, grouped and sorted", "[codec]") {
  core::ScoringOptions options;
  for (core::Family f : core::kAllFamilies) options.family(f) = {double(kHourMs), 50, 0};
  core::Profile p = core::Profile::New("p-1");
  core::LinkIdentity({"user_id", "u1"}, p);
  core::ApplyEvent(testing::MakeEvent("e1", "product_viewed", t0, "u1", "a.b", "P1"), options, p);
  core::ApplyEvent(testing::MakeEvent("e2", "product_viewed", t0 + kHourMs, "u1", "a", "P2"),
                   options, p);

  v1::ProfileUpdate u = BuildProfileUpdate(p, t0 + 2 * kHourMs, options, signals::Signals({}));
  CHECK(u.profile_id() == "p-1");
  CHECK(u.version() == 2);
  CHECK(u.as_of_ms() == t0 + 2 * kHourMs);
  CHECK(u.counters().events() == 2);
  CHECK(u.counters().product_views() == 2);
  REQUIRE(u.identities_size() == 1);
  CHECK(u.identities(0).kind() == "user_id");

  const v1::ScoreFamily* cats = nullptr;
  for (const auto& f : u.score_families()) {
    if (f.family() == "category") cats = &f;
  }
  REQUIRE(cats != nullptr);
  CHECK(cats->half_life_ms() == kHourMs);
  REQUIRE(cats->scores_size() == 2);
  // "a": 1 at t0 (2 half-lives: 0.25) + 1 at t0+1h (0.5) = 0.75; "a.b": 0.25.
  CHECK(cats->scores(0).key() == "a");
  CHECK(cats->scores(0).value() == Approx(0.75));
  CHECK(cats->scores(0).last_event_time_ms() == t0 + kHourMs);
  CHECK(cats->scores(1).key() == "a.b");
  CHECK(cats->scores(1).value() == Approx(0.25));
}

}  // namespace
}  // namespace profiled::codec
