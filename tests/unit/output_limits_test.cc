// Output sizes: the largest update the caps allow is a true upper bound,
// configurations whose updates could outgrow the topic fail at start, and an
// update of an older, unbounded profile is cut to fit.
#include "profiled/pipeline/output_limits.h"

#include "profiled/codec/update_codec.h"
#include "profiled/ingest/event_limits.h"
#include "support/test_support.h"

namespace profiled::pipeline {
namespace {

constexpr int64_t t0 = 1'700'000'000'000;

std::string Key(size_t bytes, int n) {
  std::string key = std::to_string(n) + "-";
  key.resize(bytes, 'k');
  return key;
}

// A profile at every cap of `o`, every key and value at its longest.
core::Profile Saturated(const PipelineOptions& o) {
  const size_t key = o.event_limits.max_key_bytes;
  core::Profile p = core::Profile::New("p-0123456789abcdef0123456789abcdef");
  p.version = 1000;
  p.first_seen_ms = t0;
  p.last_seen_ms = t0 + 1000;
  for (size_t i = 0; i < o.identity.max_identities; ++i) {
    p.identities.push_back({Key(key, static_cast<int>(i)), Key(key, static_cast<int>(i))});
  }
  for (core::Family f : core::kAllFamilies) {
    const core::FamilyOptions& fo = o.scoring.family(f);
    for (size_t i = 0; i < fo.top_k; ++i) {
      p.family(f).Add(Key(key, static_cast<int>(i)), 10.0 + static_cast<double>(i), t0, fo);
    }
  }
  for (size_t i = 0; i < o.scoring.recent_items; ++i) {
    const bool product = i % 2 == 0;
    p.items.push_back({std::string(product ? "p:" : "c:") + Key(key, static_cast<int>(i)), t0,
                       product ? t0 + 10 : 0, 0, i % 4 == 0 ? t0 + 20 : 0});
  }
  std::sort(p.items.begin(), p.items.end(),
            [](const auto& a, const auto& b) { return a.key < b.key; });
  for (size_t i = 0; i < o.scoring.max_traits; ++i) {
    p.traits.push_back(
        {Key(key, static_cast<int>(i)), std::string(o.event_limits.max_trait_bytes, 'v'), t0});
  }
  p.engagement_fast.Add(100, t0, o.scoring.engagement_fast_half_life_ms);
  p.engagement_slow.Add(100, t0, o.scoring.engagement_slow_half_life_ms);
  p.session = {t0, t0 + 1000, 40};
  return p;
}

TEST_CASE("no update the caps allow is larger than the computed bound", "[output_limits]") {
  for (size_t key_bytes : {64, 256, 512}) {
    for (size_t top_k : {10, 50, 200}) {
      CAPTURE(key_bytes, top_k);
      PipelineOptions o;
      o.event_limits.max_key_bytes = key_bytes;
      for (core::Family f : core::kAllFamilies) o.scoring.family(f).top_k = top_k;
      const signals::Signals signals(o.signals);
      const v1::ProfileUpdate u =
          codec::BuildProfileUpdate(Saturated(o), t0 + 1000, o.scoring, signals);
      const size_t actual = u.ByteSizeLong();
      const size_t bound = LargestUpdateBytes(o);
      CHECK(actual <= bound);
      CHECK(actual * 2 >= bound);  // a bound, not a guess an order of magnitude off
      // Every saturated part made it into the update.
      CHECK(u.identities_size() == static_cast<int>(o.identity.max_identities));
      CHECK(u.traits_size() == static_cast<int>(o.scoring.max_traits));
      CHECK(u.signals().top_intents().categories_size() > 0);
    }
  }
}

TEST_CASE("defaults fit a stock topic and a configuration that cannot is refused with the knobs",
          "[output_limits]") {
  PipelineOptions o;
  CHECK(CheckOutputLimits(o).ok());
  CHECK(LargestUpdateBytes(o) < 700'000);  // room below 1,000,000 for growth
  o.scoring.max_traits = 2000;
  const absl::Status s = CheckOutputLimits(o);
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("scoring.max_traits (2000)") != std::string::npos);
  CHECK(s.message().find("over output.max_message_bytes (1000000)") != std::string::npos);
  o.max_output_message_bytes = 4'000'000;
  CHECK(CheckOutputLimits(o).ok());
}

TEST_CASE("an update of an older, unbounded profile is cut to fit and says so", "[output_limits]") {
  PipelineOptions o;
  o.scoring.max_traits = 5000;  // as stored before the caps existed
  o.event_limits.max_trait_bytes = 2000;
  const signals::Signals signals(o.signals);
  const core::Profile p = Saturated(o);
  v1::ProfileUpdate u = codec::BuildProfileUpdate(p, t0 + 1000, o.scoring, signals);
  REQUIRE(u.ByteSizeLong() > 1'000'000);
  const size_t limit = 1'000'000 - kRecordOverheadBytes;
  CHECK(codec::FitUpdate(limit, u));
  CHECK(u.ByteSizeLong() <= limit);
  CHECK(u.truncated());
  CHECK(u.version() == p.version);  // identity of the update intact
  CHECK(u.identities_size() > 0);
  v1::ProfileUpdate small =
      codec::BuildProfileUpdate(core::Profile::New("p-1"), t0, o.scoring, signals);
  CHECK_FALSE(codec::FitUpdate(limit, small));
  CHECK_FALSE(small.truncated());
}

TEST_CASE("receipts list as many profile ids as fit", "[output_limits]") {
  CHECK(MaxReceiptProfileIds(1'000'000) == 10'000);
  CHECK(MaxReceiptProfileIds(100'000) * 40 <= 100'000);
  CHECK(MaxReceiptProfileIds(1000) == 1);
}

TEST_CASE("event limits at, just over and far over each bound", "[output_limits][ingest]") {
  const ingest::EventLimits limits;  // 256-byte keys, 1024-byte trait values, 100 line items
  auto check = [&](auto mutate) {
    v1::InteractionEvent e;
    e.set_event_id("e1");
    e.set_type("product_viewed");
    e.set_event_time_ms(t0);
    e.mutable_identities()->set_user_id("u1");
    mutate(e);
    return ingest::CheckEventLimits(e, limits);
  };
  for (size_t extra : {0, 1, 2560}) {
    CAPTURE(extra);
    const size_t key = 256 + extra;
    auto user = check([&](auto& e) { e.mutable_identities()->set_user_id(std::string(key, 'u')); });
    auto product =
        check([&](auto& e) { e.mutable_commerce()->set_product_id(std::string(key, 'p')); });
    auto kind = check(
        [&](auto& e) { (*e.mutable_identities()->mutable_other())[std::string(key, 'k')] = "v"; });
    auto trait =
        check([&](auto& e) { (*e.mutable_traits())["bio"] = std::string(1024 + extra, 't'); });
    auto lines = check([&](auto& e) {
      for (size_t i = 0; i < 100 + extra; ++i) e.add_line_items()->set_product_id("p");
    });
    if (extra == 0) {
      CHECK_FALSE(user.has_value());
      CHECK_FALSE(product.has_value());
      CHECK_FALSE(kind.has_value());
      CHECK_FALSE(trait.has_value());
      CHECK_FALSE(lines.has_value());
    } else {
      REQUIRE(user.has_value());
      CHECK(user->reason == ingest::RejectReason::kStringTooLong);
      CHECK(user->detail == "identities.user_id is " + std::to_string(key) + " bytes (limit 256)");
      REQUIRE(product.has_value());
      CHECK(product->detail.rfind("commerce.product_id is", 0) == 0);
      REQUIRE(kind.has_value());
      REQUIRE(trait.has_value());
      CHECK(trait->detail.rfind("traits.bio is", 0) == 0);
      REQUIRE(lines.has_value());
      CHECK(lines->reason == ingest::RejectReason::kTooManyProperties);
    }
  }
}

}  // namespace
}  // namespace profiled::pipeline
