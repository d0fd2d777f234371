#include "profiled/codec/state_codec.h"

#include <random>

#include "support/test_support.h"

namespace profiled::codec {
namespace {

using core::Family;
constexpr int64_t t0 = 1'569'888'000'000;

core::Profile RichProfile(uint64_t seed) {
  std::mt19937_64 rng(seed);
  core::ScoringOptions options;
  core::Profile p = core::Profile::New("p-rich");
  const char* types[] = {"product_viewed", "added_to_cart", "order_completed", "page_viewed"};
  for (int i = 0; i < 200; ++i) {
    auto e = testing::MakeEvent(
        "e" + std::to_string(i), types[rng() % 4], t0 + static_cast<int64_t>(rng() % 86'400'000),
        "u1", "cat" + std::to_string(rng() % 7) + ".sub" + std::to_string(rng() % 3),
        "P" + std::to_string(rng() % 30), "B" + std::to_string(rng() % 5));
    e.mutable_commerce()->set_price(static_cast<double>(rng() % 1000) / 7.0);
    (*e.mutable_traits())["t" + std::to_string(rng() % 3)] = std::to_string(rng());
    core::ApplyEvent(e, options, p);
  }
  return p;
}

TEST_CASE("a stored profile decodes to exactly the profile encoded", "[codec]") {
  const core::Profile p = RichProfile(7);
  absl::StatusOr<core::Profile> back = DecodeProfileState(EncodeProfileState(p));
  REQUIRE_OK(back.status());
  CHECK(back->id == p.id);
  CHECK(back->version == p.version);
  CHECK(back->first_seen_ms == p.first_seen_ms);
  CHECK(back->last_seen_ms == p.last_seen_ms);
  CHECK(back->identities == p.identities);
  CHECK(back->counters.revenue == p.counters.revenue);
  CHECK(back->counters.orders == p.counters.orders);
  for (Family f : core::kAllFamilies) {
    const auto& want = p.family(f).entries();
    const auto& got = back->family(f).entries();
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      CHECK(got[i].key == want[i].key);
      CHECK(got[i].score.value == want[i].score.value);  // bit-exact
      CHECK(got[i].score.ref_time_ms == want[i].score.ref_time_ms);
    }
  }
  REQUIRE(back->traits.size() == p.traits.size());
  for (size_t i = 0; i < p.traits.size(); ++i) {
    CHECK(back->traits[i].value == p.traits[i].value);
    CHECK(back->traits[i].event_time_ms == p.traits[i].event_time_ms);
  }
  REQUIRE(p.recent_events.size() == core::ScoringOptions{}.recent_event_ids);
  CHECK(back->recent_events == p.recent_events);
  REQUIRE_FALSE(p.items.empty());
  CHECK(back->items == p.items);
  CHECK(back->session == p.session);
  CHECK(back->engagement_fast.value == p.engagement_fast.value);
  CHECK(back->engagement_slow.ref_time_ms == p.engagement_slow.ref_time_ms);
  CHECK(back->returned_ms == p.returned_ms);
  REQUIRE(p.purchase_days.count > 0);
  CHECK(back->purchase_days == p.purchase_days);
  // Re-encoding is stable.
  CHECK(EncodeProfileState(*back) == EncodeProfileState(p));
}

TEST_CASE("bytes that are not a stored profile fail with DataLoss", "[codec]") {
  absl::StatusOr<core::Profile> bad = DecodeProfileState("\xff\xff\xff garbage");
  REQUIRE_FALSE(bad.ok());
  CHECK(absl::IsDataLoss(bad.status()));
}

}  // namespace
}  // namespace profiled::codec
