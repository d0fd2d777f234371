// Consent per purpose: latest decision by event time, category mapping,
// opt-in defaults, restrictive merges, and what an update may carry.
#include "profiled/core/consent.h"

#include "profiled/codec/update_codec.h"
#include "profiled/core/profile.h"
#include "support/test_support.h"

namespace profiled::core {
namespace {

constexpr int64_t t0 = 1'705'320'000'000;

v1::InteractionEvent Decision(int64_t at,
                              std::initializer_list<std::pair<const char*, bool>> prefs) {
  v1::InteractionEvent e =
      testing::MakeEvent("c" + std::to_string(at), "consent_updated", at, "u1");
  for (const auto& [category, granted] : prefs)
    (*e.mutable_context()->mutable_consent())[category] = granted;
  return e;
}

TEST_CASE("the latest consent decision by event time wins, whatever the arrival order",
          "[consent]") {
  ConsentOptions options;
  std::vector<ConsentDecision> in_order, reversed;
  const v1::InteractionEvent grant = Decision(t0, {{"Personalization", true}});
  const v1::InteractionEvent deny = Decision(t0 + 1000, {{"Personalization", false}});
  RecordConsent(grant, options, in_order);
  RecordConsent(deny, options, in_order);
  RecordConsent(deny, options, reversed);
  CHECK_FALSE(RecordConsent(grant, options, reversed));  // older: no change
  CHECK(in_order == reversed);
  CHECK_FALSE(Allows(in_order, kPersonalizationPurpose, options));
  CHECK(in_order[0].decided_ms == t0 + 1000);
  // At the same instant a denial wins, in either order.
  std::vector<ConsentDecision> tie;
  RecordConsent(Decision(t0, {{"Analytics", false}}), options, tie);
  RecordConsent(Decision(t0, {{"Analytics", true}}), options, tie);
  CHECK_FALSE(Allows(tie, kAnalyticsPurpose, options));
}

TEST_CASE("source categories map to purposes and unknown ones are ignored", "[consent]") {
  ConsentOptions options;
  std::vector<ConsentDecision> c;
  RecordConsent(Decision(t0, {{"Advertising", false}, {"Analytics", true}, {"Cookies", false}}),
                options, c);
  CHECK_FALSE(Allows(c, kMarketingPurpose, options));
  CHECK(Allows(c, kAnalyticsPurpose, options));
  CHECK(c.size() == 2);
  CHECK_FALSE(Allows(c, "cookies", options));  // not a configured purpose: never granted
}

TEST_CASE("an opt-in purpose is denied until the person grants it", "[consent]") {
  ConsentOptions options;
  options.defaults = {{kAnalyticsPurpose, true}, {kPersonalizationPurpose, false}};
  std::vector<ConsentDecision> c;
  CHECK_FALSE(Allows(c, kPersonalizationPurpose, options));
  RecordConsent(Decision(t0, {{"personalization", true}}), options, c);
  CHECK(Allows(c, kPersonalizationPurpose, options));
}

TEST_CASE("a merge keeps the more restrictive decision until the next one", "[consent]") {
  ConsentOptions options;
  std::vector<ConsentDecision> survivor, absorbed;
  RecordConsent(Decision(t0 + 5000, {{"marketing", true}}), options, survivor);
  RecordConsent(Decision(t0, {{"marketing", false}, {"analytics", true}}), options, absorbed);
  MergeConsent(absorbed, survivor);
  CHECK_FALSE(Allows(survivor, kMarketingPurpose, options));
  CHECK(Allows(survivor, kAnalyticsPurpose, options));
  // Only a decision newer than both lifts it.
  CHECK_FALSE(RecordConsent(Decision(t0 + 4000, {{"marketing", true}}), options, survivor));
  CHECK_FALSE(Allows(survivor, kMarketingPurpose, options));
  RecordConsent(Decision(t0 + 6000, {{"marketing", true}}), options, survivor);
  CHECK(Allows(survivor, kMarketingPurpose, options));
}

TEST_CASE("an update carries consent and nothing derived for a denied purpose", "[consent]") {
  ScoringOptions scoring;
  Profile p = Profile::New("p-1");
  ApplyEvent(testing::MakeEvent("e1", "added_to_cart", t0, "u1", "shoes", "P1"), scoring, p);
  const signals::Signals signals({});
  const v1::ProfileUpdate full = codec::BuildProfileUpdate(p, t0, scoring, signals);
  CHECK(full.score_families_size() > 0);
  CHECK(full.signals().has_top_intents());
  REQUIRE(full.consent_size() == 3);
  for (const auto& c : full.consent()) CHECK((c.granted() && c.decided_ms() == 0));

  RecordConsent(Decision(t0 + 1, {{"personalization", false}}), scoring.consent, p.consent);
  const v1::ProfileUpdate u = codec::BuildProfileUpdate(p, t0 + 1, scoring, signals);
  CHECK(u.score_families_size() == 0);
  CHECK_FALSE(u.signals().has_top_intents());
  CHECK_FALSE(u.signals().has_journey());
  CHECK_FALSE(u.signals().has_session());
  CHECK(u.signals().has_cart());       // marketing: still granted
  CHECK(u.signals().has_lifecycle());  // analytics: still granted
  for (const auto& c : u.consent()) {
    INFO(c.purpose());
    CHECK(c.granted() == (c.purpose() != "personalization"));
    if (c.purpose() == "personalization") CHECK(c.decided_ms() == t0 + 1);
  }
}

TEST_CASE("an output topic serving a refused purpose carries the consent state alone",
          "[consent]") {
  ScoringOptions scoring;
  scoring.consent.output_purpose = kMarketingPurpose;
  Profile p = Profile::New("p-1");
  ApplyEvent(testing::MakeEvent("e1", "added_to_cart", t0, "u1", "shoes", "P1"), scoring, p);
  LinkIdentity({"user_id", "u1"}, p);
  const signals::Signals signals({});
  CHECK(codec::BuildProfileUpdate(p, t0, scoring, signals).identities_size() == 1);
  RecordConsent(Decision(t0 + 1, {{"Advertising", false}}), scoring.consent, p.consent);
  const v1::ProfileUpdate u = codec::BuildProfileUpdate(p, t0 + 1, scoring, signals);
  CHECK(u.profile_id() == "p-1");
  CHECK(u.version() == 1);
  CHECK(u.identities_size() == 0);
  CHECK(u.score_families_size() == 0);
  CHECK(u.traits_size() == 0);
  CHECK_FALSE(u.has_signals());
  CHECK(u.consent_size() == 3);
}

}  // namespace
}  // namespace profiled::core
