#include "profiled/codec/update_codec.h"

#include <google/protobuf/util/message_differencer.h>

#include <random>

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

// A shopper's random history: every family, identities, traits, orders.
core::Profile RandomShopper(std::mt19937_64& rng, const core::ScoringOptions& options) {
  core::Profile p = core::Profile::New("p-" + std::to_string(rng() % 1000));
  for (size_t i = rng() % 3; i > 0; --i) {
    core::LinkIdentity({i == 1 ? "user_id" : "email_sha256", "id" + std::to_string(rng())}, p);
  }
  const char* types[] = {"product_viewed", "added_to_cart", "order_completed", "page_viewed",
                         "checkout_started"};
  for (int i = static_cast<int>(rng() % 120); i > 0; --i) {
    auto e = testing::MakeEvent("e" + std::to_string(i), types[rng() % 5],
                                t0 + static_cast<int64_t>(rng() % (90 * 24 * kHourMs)), "u1",
                                "electronics.category" + std::to_string(rng() % 40),
                                "P" + std::to_string(rng() % 80), "B" + std::to_string(rng() % 9));
    e.mutable_commerce()->set_price(static_cast<double>(rng() % 1000) / 7.0);
    if (rng() % 10 == 0) (*e.mutable_traits())["plan"] = std::to_string(rng() % 3);
    core::ApplyEvent(e, options, p);
  }
  if (rng() % 3 == 0) p.consent.push_back({core::kPersonalizationPurpose, false, t0});
  if (rng() % 3 == 0) p.consent.push_back({core::kMarketingPurpose, false, t0});
  return p;
}

TEST_CASE(
    "an update encoded straight from the profile is the built update's bytes, whatever consent "
    "leaves out",
    "[codec][property]") {
  std::mt19937_64 rng(21);
  const signals::Signals signals({});
  int with_families = 0;
  int without_families = 0;
  for (int i = 0; i < 600; ++i) {
    core::ScoringOptions options;
    if (rng() % 3 == 0) options.consent.output_purpose = core::kMarketingPurpose;
    if (rng() % 4 == 0) options.family(core::Family::kProduct).top_k = 1 + rng() % 5;
    const core::Profile p = RandomShopper(rng, options);
    const int64_t as_of = std::max(p.last_seen_ms, t0) + static_cast<int64_t>(rng() % kHourMs);

    const v1::ProfileUpdate built = BuildProfileUpdate(p, as_of, options, signals);
    core::Rankings ranked(p, as_of, options);
    v1::ProfileUpdate tail;
    std::string bytes;
    EncodeProfileUpdate(ranked, signals, tail, bytes);
    CAPTURE(i, p.traits.size(), built.score_families_size());
    v1::ProfileUpdate parsed;
    REQUIRE(parsed.ParseFromString(bytes));
    REQUIRE(google::protobuf::util::MessageDifferencer::Equals(parsed, built));
    CHECK(tail.signals().SerializeAsString() == built.signals().SerializeAsString());
    // Byte for byte, where the map of traits cannot reorder them.
    if (p.traits.size() <= 1) CHECK(bytes == built.SerializeAsString());
    (built.score_families_size() > 0 ? with_families : without_families) += 1;
  }
  CHECK(with_families > 100);
  CHECK(without_families > 50);  // consent left them out
}

}  // namespace
}  // namespace profiled::codec
