// Identity resolution through the broker: a scripted journey across
// channels ends as one profile equal to the single-profile fold, absorbed
// profiles are announced and tombstoned; junk identifiers merge nobody.
#include <map>
#include <set>

#include "absl/strings/str_join.h"
#include "profiled/core/profile_id.h"
#include "profiled/identity/identity_rules.h"
#include "profiled/internal/v1/profile_state.pb.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/signals/signals.h"
#include "profiled/v1/profile_update.pb.h"
#include "support/kafka_harness.h"
#include "support/reference_fold.h"
#include "support/test_support.h"

namespace profiled {
namespace {

constexpr int64_t t0 = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;
constexpr int64_t kHalfLifeMs = 3'600'000;

pipeline::PipelineOptions Options() {
  pipeline::PipelineOptions options;
  options.output_topic = "updates";
  options.clock_mode = core::PipelineClock::Mode::kEventTime;
  for (core::Family f : core::kAllFamilies) {
    options.scoring.family(f) = core::FamilyOptions{double(kHalfLifeMs), 100000, 0.0};
  }
  return options;
}

v1::InteractionEvent Event(const std::string& id, const std::string& type, int64_t at,
                           const std::string& channel, const std::string& category) {
  v1::InteractionEvent e = testing::MakeEvent(id, type, at, "", category, "", "");
  e.clear_identities();
  e.set_channel(channel);
  return e;
}

TEST_CASE("a cross-channel journey becomes one profile equal to the single-profile fold",
          "[integration][identity]") {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("events", 1));  // one partition: the script's order holds
  REQUIRE_OK((*cluster)->CreateTopic("updates", 2));
  const std::string bootstrap = (*cluster)->bootstrap();

  std::vector<v1::InteractionEvent> journey;
  // 1. Anonymous browsing on the web.
  for (int i = 0; i < 3; ++i) {
    auto e = Event("web-" + std::to_string(i), "product_viewed", t0 + i * kMinute, "web",
                   "electronics.audio.headphone");
    e.mutable_identities()->set_anonymous_id("anon-1");
    journey.push_back(e);
  }
  // 2. A click in a marketing email (the ESP knows only the address).
  auto click = Event("esp-1", "email_clicked", t0 + 10 * kMinute, "email", "");
  click.mutable_identities()->set_email(" Jane@Example.com ");
  journey.push_back(click);
  // 3. Login on the web: identify ties user id, cookie and email together.
  auto identify = Event("login-1", "identify", t0 + 12 * kMinute, "web", "");
  identify.mutable_identities()->set_user_id("jane-42");
  identify.mutable_identities()->set_anonymous_id("anon-1");
  identify.mutable_identities()->set_email("jane@example.com");
  (*identify.mutable_traits())["plan"] = "gold";
  journey.push_back(identify);
  // 4. The app, with a device id.
  auto app = Event("app-1", "added_to_cart", t0 + 30 * kMinute, "app", "electronics.audio");
  app.mutable_identities()->set_user_id("jane-42");
  app.mutable_identities()->set_device_id("dev-9");
  journey.push_back(app);
  // 5. Later, the old cookie alone: it resolves to the merged profile.
  auto late = Event("web-9", "product_viewed", t0 + 40 * kMinute, "web", "electronics.audio");
  late.mutable_identities()->set_anonymous_id("anon-1");
  journey.push_back(late);
  testing::ProduceEvents(bootstrap, "events", journey);

  // A holdout experiment whose salt puts the anonymous profile (seen first)
  // and the email profile (the survivor) in different groups.
  const std::string anon_profile = core::ProfileIdFor(core::Identity{"anonymous_id", "anon-1"});
  const std::string email_profile = core::ProfileIdFor(
      core::Identity{"email_sha256", identity::EmailSha256("jane@example.com")});
  pipeline::PipelineOptions options = Options();
  options.signals.holdout_percent = 50;
  for (int i = 0; signals::InHoldout(anon_profile, 50, options.signals.holdout_salt) ==
                  signals::InHoldout(email_profile, 50, options.signals.holdout_salt);
       ++i) {
    options.signals.holdout_salt = "exp-" + std::to_string(i);
  }

  testing::TempDir dir;
  testing::PipelineRunner runner(dir.Sub("store"), options, {"events"}, bootstrap, bootstrap);
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().applied.Value() == journey.size() && runner.store().OutboxDepth() == 0;
  }));
  // The login's new user id founds the profile that names the person, and
  // the email and anonymous profiles merge into it (docs/identity.md).
  CHECK(runner.metrics().merges.Value() == 2);
  // The fresh profile takes the anonymous visitor's group (seen first); the
  // email profile's group switches.
  CHECK(runner.metrics().holdout_switches.Value() == 1);

  const std::string sha = identity::EmailSha256("jane@example.com");
  const std::string anon_id = core::ProfileIdFor(core::Identity{"anonymous_id", "anon-1"});
  const std::string email_id = core::ProfileIdFor(core::Identity{"email_sha256", sha});
  // Survivor: the profile the user id founds (user_id outranks the others).
  const std::string survivor = core::ProfileIdFor(core::Identity{"user_id", "jane-42"});

  // The store holds one profile for the person; the anonymous one is gone.
  std::map<std::string, std::string> stored;
  REQUIRE_OK(runner.store().ForEachProfile([&](std::string_view id, std::string_view bytes) {
    stored.emplace(std::string(id), std::string(bytes));
    return true;
  }));
  REQUIRE(stored.size() == 1);
  REQUIRE(stored.count(survivor) == 1);
  CHECK(runner.store().Stats().profiles == 1);  // the merged-away profile is not counted
  std::vector<std::optional<std::string>> mapped;
  REQUIRE_OK(runner.store().MultiGetIdentities(
      {"anonymous_id", std::string("anonymous_id\0anon-1", 19), std::string("user_id\0jane-42", 15),
       std::string("device_id\0dev-9", 15)},
      mapped));
  CHECK_FALSE(mapped[0].has_value());
  CHECK(mapped[1] == survivor);
  CHECK(mapped[2] == survivor);
  CHECK(mapped[3] == survivor);

  // The merge is in the audit of both profiles.
  auto audit = runner.store().ReadAudit(survivor);
  REQUIRE_OK(audit.status());
  REQUIRE(audit->size() == 1);
  internal::v1::MergeRecord record;
  REQUIRE(record.ParseFromString(audit->front()));
  CHECK(record.rule() == "merge");
  CHECK(record.event_id() == "login-1");
  CHECK(record.survivor() == survivor);
  REQUIRE(record.absorbed_size() == 2);
  CHECK(std::set<std::string>{record.absorbed(0), record.absorbed(1)} ==
        std::set<std::string>{anon_id, email_id});
  CHECK(runner.store().ReadAudit(anon_id)->size() == 1);
  CHECK(runner.store().ReadAudit(email_id)->size() == 1);
  const uint64_t published = runner.publisher_metrics().published.Value();
  runner.Stop();

  // The output: the survivor's last update equals the single-profile fold;
  // the absorbed id gets a notice naming the survivor, then a tombstone.
  std::vector<kafka::ConsumedMessage> out = testing::ReadTopic(bootstrap, "updates", published);
  REQUIRE(out.size() == published);
  std::map<std::string, v1::ProfileUpdate> last;
  std::vector<std::string> absorbed_trail;
  std::vector<std::string> email_trail;
  for (const kafka::ConsumedMessage& m : out) {
    if (std::string(m.key()) == email_id) {
      v1::ProfileUpdate u;
      if (m.tombstone()) {
        email_trail.push_back("tombstone");
      } else if (u.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size()))) {
        email_trail.push_back(u.merged_into().empty() ? "update" : "merged_into:" + u.merged_into());
      }
      continue;
    }
    if (std::string(m.key()) == anon_id) {
      if (m.tombstone()) {
        absorbed_trail.push_back("tombstone");
        // Tombstones carry the same headers as updates.
        CHECK(m.header("content-type") == "application/x-protobuf");
        CHECK(m.header("schema") == "profiled.v1.ProfileUpdate");
        continue;
      }
      v1::ProfileUpdate u;
      REQUIRE(u.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())));
      absorbed_trail.push_back(u.merged_into().empty() ? "update" : "merged_into:" + u.merged_into());
      continue;
    }
    REQUIRE_FALSE(m.tombstone());
    v1::ProfileUpdate u;
    REQUIRE(u.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())));
    if (last.count(u.profile_id()) == 0 || u.version() >= last[u.profile_id()].version()) {
      last[u.profile_id()] = u;
    }
  }
  // The anonymous profile gets updates only if a batch ended before the
  // login; either way its trail ends with the notice, then the tombstone.
  REQUIRE(absorbed_trail.size() >= 2);
  CHECK(absorbed_trail[absorbed_trail.size() - 2] == "merged_into:" + survivor);
  CHECK(absorbed_trail.back() == "tombstone");
  for (size_t i = 0; i + 2 < absorbed_trail.size(); ++i) CHECK(absorbed_trail[i] == "update");
  REQUIRE(email_trail.size() >= 2);  // the email profile's ends the same way
  CHECK(email_trail[email_trail.size() - 2] == "merged_into:" + survivor);
  CHECK(email_trail.back() == "tombstone");
  REQUIRE(last.count(survivor) == 1);
  const v1::ProfileUpdate& u = last.at(survivor);

  std::vector<v1::InteractionEvent> as_one = journey;
  for (auto& e : as_one) {
    e.clear_identities();
    e.mutable_identities()->set_user_id("one-person");
  }
  testing::ExpectedProfile want = testing::FoldByProfile(as_one, {}).begin()->second;
  want.identities = {"anonymous_id:anon-1", "email_sha256:" + sha, "user_id:jane-42",
                     "device_id:dev-9"};
  const std::vector<std::string> mismatches = testing::CompareUpdate(u, want, kHalfLifeMs);
  INFO(absl::StrJoin(mismatches, "\n"));
  CHECK(mismatches.empty());
  CHECK(u.traits().at("plan") == "gold");
  // The person stays in the group the anonymous visitor was in.
  CHECK(u.signals().holdout().in_control_group() ==
        signals::InHoldout(anon_profile, 50, options.signals.holdout_salt));

  // What a subscriber gets besides scores: signals with reasons and freshness.
  const v1::ContextSignals& sig = u.signals();
  REQUIRE(sig.top_intents().categories_size() >= 1);
  CHECK(sig.top_intents().categories(0).key() == "electronics");
  CHECK(sig.top_intents().meta().reasons(0).code() == "top_category");
  CHECK(sig.top_intents().meta().reasons(0).key() == "electronics");
  CHECK(sig.top_intents().meta().reasons(0).last_event_time_ms() == t0 + 40 * kMinute);
  CHECK(sig.top_intents().meta().as_of_ms() == u.as_of_ms());
  CHECK(sig.top_intents().meta().evidence_count() == 7);
  CHECK(sig.top_intents().meta().definition_version().size() == 16);
  CHECK(sig.top_intents().meta().purpose() == "personalization");
  CHECK(sig.preferences().preferred_channel() == "web");
  CHECK(sig.session().active());
  CHECK(sig.session().events() == 7);  // the whole journey within 30-minute gaps
  CHECK(sig.lifecycle().stage() == "new");
  CHECK(sig.cold_start().cold() == false);  // 7 events' weight
  CHECK(sig.engagement().meta().purpose() == "analytics");
  WARN("journey: " << journey.size() << " events over web, email and app -> profile " << survivor
                   << " version " << u.version() << ", identities "
                   << u.identities_size() << ", absorbed " << anon_id << " ("
                   << absl::StrJoin(absorbed_trail, " -> ") << ")");
}

TEST_CASE("1,000 users sharing junk anonymous and device ids stay 1,000 profiles",
          "[integration][identity]") {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("events", 4));
  REQUIRE_OK((*cluster)->CreateTopic("updates", 4));
  const std::string bootstrap = (*cluster)->bootstrap();
  std::vector<v1::InteractionEvent> events;
  for (int i = 0; i < 1000; ++i) {
    for (int k = 0; k < 2; ++k) {
      auto e = Event("e-" + std::to_string(i) + "-" + std::to_string(k), "product_viewed",
                     t0 + i * 1000 + k, "web", "home.kitchen");
      e.mutable_identities()->set_user_id("user-" + std::to_string(i));
      e.mutable_identities()->set_anonymous_id("undefined");
      e.mutable_identities()->set_device_id("0");
      events.push_back(e);
    }
  }
  // And events carrying nothing but junk: they cannot be attributed.
  auto junk = Event("junk", "product_viewed", t0, "web", "");
  junk.mutable_identities()->set_anonymous_id("undefined");
  junk.mutable_identities()->set_device_id("0");
  events.push_back(junk);
  testing::ProduceEvents(bootstrap, "events", events);

  testing::TempDir dir;
  testing::PipelineRunner runner(dir.Sub("store"), Options(), {"events"}, bootstrap, bootstrap);
  REQUIRE(testing::WaitUntil(
      [&] { return runner.metrics().ConsumedTotal() == events.size(); }));
  CHECK(runner.metrics().merges.Value() == 0);
  CHECK(runner.metrics().applied.Value() == 2000);
  CHECK(runner.metrics().dead_letters(ingest::RejectReason::kBlockedIdentities).Value() == 1);
  size_t profiles = 0;
  REQUIRE_OK(runner.store().ForEachProfile([&](std::string_view, std::string_view) {
    ++profiles;
    return true;
  }));
  CHECK(profiles == 1000);
  CHECK(runner.store().Stats().profiles == 1000);
  std::vector<std::optional<std::string>> mapped;
  REQUIRE_OK(runner.store().MultiGetIdentities(
      {std::string("anonymous_id\0undefined", 22), std::string("device_id\0" "0", 11)}, mapped));
  CHECK_FALSE(mapped[0].has_value());
  CHECK_FALSE(mapped[1].has_value());
}

}  // namespace
}  // namespace profiled
