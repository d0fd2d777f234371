// ESP webhooks through the broker, wired only by configuration: the example
// field maps (deploy/examples/esp-webhooks.yaml) turn the real SendGrid and
// Mailgun fixtures into email-channel events on the recipient's profile,
// found by the hash of the address.
#include <set>

#include "profiled/codec/state_codec.h"
#include "profiled/config/app_config.h"
#include "profiled/identity/identity_rules.h"
#include "profiled/kafka/mock_cluster.h"
#include "support/kafka_harness.h"
#include "support/test_support.h"

namespace profiled {
namespace {

core::Profile StoredProfileOf(store::ProfileStore& store, const std::string& email) {
  std::vector<std::optional<std::string>> ids;
  REQUIRE_OK(store.MultiGetIdentities(
      {store::IdentityKey("email_sha256", identity::EmailSha256(email))}, ids));
  INFO("profile of " << email);
  REQUIRE(ids[0].has_value());
  absl::StatusOr<std::optional<std::string>> state = store.Get(*ids[0]);
  REQUIRE_OK(state.status());
  REQUIRE(state->has_value());
  absl::StatusOr<core::Profile> p = codec::DecodeProfileState(**state);
  REQUIRE_OK(p.status());
  return *p;
}

TEST_CASE("SendGrid and Mailgun webhooks become email events on the recipient's profile",
          "[integration][mapped]") {
  auto config = config::LoadConfigFile(PROFILED_SOURCE_DIR "/deploy/examples/esp-webhooks.yaml");
  REQUIRE_OK(config.status());
  pipeline::PipelineOptions options = config->runtime.pipeline;
  options.output_topic = "updates";
  // The fixtures span 2018 to 2024: at a 7-day half-life the 2018 event types
  // fade below the default epsilon by 2024. Keep every key to check them all.
  options.scoring.family(core::Family::kEventType).epsilon = 0;

  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  for (const std::string& topic : config->runtime.consumer.topics) REQUIRE_OK((*cluster)->CreateTopic(topic, 2));
  REQUIRE_OK((*cluster)->CreateTopic("updates", 2));
  REQUIRE_OK((*cluster)->CreateTopic(testing::PipelineRunner::kDeadLetterTopic, 1));
  const std::string bootstrap = (*cluster)->bootstrap();

  const std::string dir = "tests/data/email-webhooks/";
  testing::ProduceRecords(bootstrap, "esp.sendgrid",
                          {{"", testing::ReadSourceFile(dir + "sendgrid-webhook.json")}});
  std::vector<std::pair<std::string, std::string>> mailgun;
  for (const char* name : {"accepted", "delivered_messages", "opens", "clicks", "permanent_failure",
                           "permanent_failure_no_description", "suppression_failure",
                           "temporary_failure", "spam_complaints", "unsubscribes"}) {
    mailgun.emplace_back("", testing::ReadSourceFile(dir + "mailgun-" + name + ".json"));
  }
  testing::ProduceRecords(bootstrap, "esp.mailgun", mailgun);

  testing::TempDir tmp;
  testing::PipelineRunner runner(tmp.Sub("store"), options, config->runtime.consumer.topics, bootstrap,
                                 bootstrap);
  REQUIRE(testing::WaitUntil([&] { return runner.metrics().ConsumedTotal() == 11; }));
  CHECK(runner.metrics().DeadLettersTotal() == 0);
  // The three "failed" fixtures share one Mailgun event id and name: one event.
  CHECK(runner.metrics().applied.Value() == 9);
  CHECK(runner.metrics().duplicates.Value() == 2);
  CHECK(runner.metrics().privacy_dropped.Value() >= 1);  // the click's context.ip

  const core::Profile alice = StoredProfileOf(runner.store(), "alice@example.com");
  CHECK(alice.version == 8);
  CHECK(alice.identities == std::vector<core::Identity>{
                                {"email_sha256", identity::EmailSha256("alice@example.com")}});
  std::set<std::string> types;
  for (const auto& entry : alice.family(core::Family::kEventType).entries()) types.insert(entry.key);
  CHECK(types == std::set<std::string>{"email_accepted", "email_delivered", "email_opened",
                                       "email_clicked", "email_bounced", "email_spam_reported",
                                       "unsubscribed"});
  const auto& channels = alice.family(core::Family::kChannel).entries();
  REQUIRE(channels.size() == 1);
  CHECK(channels[0].key == "email");
  CHECK(alice.first_seen_ms == 1'521'233'123'501);  // the spam complaint, earliest by event time
  CHECK(alice.last_seen_ms == 1'707'402'341'912);   // the accepted event

  const core::Profile hello = StoredProfileOf(runner.store(), "hello@world.com");
  CHECK(hello.version == 1);
  CHECK(hello.family(core::Family::kEventType).Find("email_dropped") != nullptr);
  CHECK(hello.family(core::Family::kChannel).Find("email") != nullptr);
  runner.Stop();
}

}  // namespace
}  // namespace profiled
