// Erasure through the broker: a person with a cross-channel history and a
// merge is erased by email; afterwards no column family — and no file of
// the RocksDB directory after a full compaction — holds any of their
// identifiers, identity hashes or profile ids; tombstones and a receipt are
// published within a second; a late event cannot bring them back.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/time/clock.h"
#include "profiled/core/profile_id.h"
#include "profiled/identity/identity_rules.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/v1/control.pb.h"
#include "support/kafka_harness.h"
#include "support/rocksdb_scan.h"
#include "support/test_support.h"

namespace profiled {
namespace {

constexpr int64_t t0 = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;

v1::InteractionEvent Event(const std::string& id, const std::string& type, int64_t at,
                           const std::string& channel) {
  v1::InteractionEvent e = testing::MakeEvent(id, type, at, "", "electronics.audio", "P1", "Sony");
  e.clear_identities();
  e.set_channel(channel);
  return e;
}

std::vector<v1::InteractionEvent> Journeys() {
  std::vector<v1::InteractionEvent> events;
  for (int i = 0; i < 3; ++i) {
    auto e = Event("jane-web-" + std::to_string(i), "product_viewed", t0 + i * kMinute, "web");
    e.mutable_identities()->set_anonymous_id("anon-jane-1");
    events.push_back(e);
  }
  auto click = Event("jane-esp", "email_clicked", t0 + 5 * kMinute, "email");
  click.mutable_identities()->set_email("jane.doe@example.com");
  events.push_back(click);
  auto identify = Event("jane-login", "identify", t0 + 10 * kMinute, "web");
  identify.mutable_identities()->set_user_id("jane-42");
  identify.mutable_identities()->set_anonymous_id("anon-jane-1");
  identify.mutable_identities()->set_email("Jane.Doe@Example.com");
  (*identify.mutable_traits())["plan"] = "gold";
  events.push_back(identify);
  auto app = Event("jane-app", "added_to_cart", t0 + 20 * kMinute, "app");
  app.mutable_identities()->set_user_id("jane-42");
  app.mutable_identities()->set_device_id("dev-jane-9");
  events.push_back(app);
  for (int i = 0; i < 3; ++i) {  // someone else, who must stay
    auto e = Event("bob-" + std::to_string(i), "product_viewed", t0 + i * kMinute, "web");
    e.mutable_identities()->set_user_id("bob-7");
    events.push_back(e);
  }
  return events;
}

TEST_CASE("erasure leaves no trace of the person, publishes tombstones and a receipt, "
          "and refuses their late events",
          "[integration][erasure]") {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  for (const char* topic : {"events", "control", "updates", "receipts"}) {
    REQUIRE_OK((*cluster)->CreateTopic(topic, 1));
  }
  const std::string bootstrap = (*cluster)->bootstrap();
  const std::vector<v1::InteractionEvent> events = Journeys();
  testing::ProduceEvents(bootstrap, "events", events);

  pipeline::PipelineOptions options;
  options.output_topic = "updates";
  options.clock_mode = core::PipelineClock::Mode::kEventTime;
  options.control_topic = "control";
  options.receipts_topic = "receipts";
  const std::vector<std::string> topics = {"events", "control"};
  testing::TempDir dir;
  const std::string store_path = dir.Sub("store");

  const std::string email_hash = identity::EmailSha256("jane.doe@example.com");
  const std::string jane = core::ProfileIdFor(core::Identity{"email_sha256", email_hash});
  const std::string jane_anon = core::ProfileIdFor(core::Identity{"anonymous_id", "anon-jane-1"});
  const std::string bob = core::ProfileIdFor(core::Identity{"user_id", "bob-7"});
  v1::ErasureReceipt receipt;
  {
    testing::PipelineRunner runner(store_path, options, topics, bootstrap, bootstrap);
    REQUIRE(testing::WaitUntil([&] {
      return runner.metrics().applied.Value() == events.size() && runner.store().OutboxDepth() == 0;
    }));
    REQUIRE(runner.metrics().merges.Value() == 1);  // the anonymous profile merged into jane's
    REQUIRE(runner.store().ReadAudit(jane)->size() == 1);

    v1::ControlRequest request;
    request.mutable_erase()->set_request_id("req-1");
    request.mutable_erase()->set_kind("email");
    request.mutable_erase()->set_value(" JANE.DOE@example.com ");  // normalized like events
    request.mutable_erase()->set_requested_ms(absl::ToUnixMillis(absl::Now()));
    testing::ProduceRecords(bootstrap, "control", {{"req-1", request.SerializeAsString()}});
    REQUIRE(testing::WaitUntil([&] {
      return runner.metrics().erasures.Value() == 1 && runner.store().OutboxDepth() == 0;
    }));
    runner.Stop();
    REQUIRE_OK(runner.store().CompactAll());
  }
  {  // Reopen once so RocksDB rewrites its MANIFEST and drops obsolete logs.
    auto reopened = store::ProfileStore::Open({store_path});
    REQUIRE_OK(reopened.status());
    REQUIRE_OK((*reopened)->CompactAll());
  }

  std::vector<kafka::ConsumedMessage> receipts = testing::ReadTopic(bootstrap, "receipts", 1);
  REQUIRE(receipts.size() == 1);
  REQUIRE(receipt.ParseFromArray(receipts[0].payload().data(),
                                 static_cast<int>(receipts[0].payload().size())));
  CHECK(receipt.request_id() == "req-1");
  CHECK(std::set<std::string>(receipt.erased_profile_ids().begin(), receipt.erased_profile_ids().end()) ==
        std::set<std::string>{jane, jane_anon});
  CHECK(receipt.identities_erased() == 4);  // anonymous id, email hash, user id, device id
  const int64_t latency_ms = receipt.completed_ms() - receipt.requested_ms();
  CHECK(latency_ms >= 0);
  CHECK(latency_ms < 1000);

  std::map<std::string, bool> last_is_tombstone;
  for (const kafka::ConsumedMessage& m : testing::ReadTopicToEnd(bootstrap, "updates")) {
    last_is_tombstone[std::string(m.key())] = m.tombstone();
  }
  CHECK(last_is_tombstone.at(jane));
  CHECK(last_is_tombstone.at(jane_anon));
  CHECK_FALSE(last_is_tombstone.at(bob));

  // Nothing of the person is left: not in any column family, not in any file.
  const std::vector<std::string> needles = {"anon-jane-1", "jane-42", "dev-jane-9",
                                            "Jane.Doe@Example.com", "jane.doe@example.com",
                                            email_hash, jane, jane_anon};
  size_t found = 0, entries = 0, bob_entries = 0;
  REQUIRE_OK(testing::ScanRocksDb(store_path, [&](std::string_view cf, std::string_view key,
                                                  std::string_view value) {
    ++entries;
    if (key.find("bob-7") != std::string_view::npos || key.find(bob) != std::string_view::npos) {
      ++bob_entries;
    }
    for (const std::string& needle : needles) {
      if (key.find(needle) != std::string_view::npos || value.find(needle) != std::string_view::npos) {
        UNSCOPED_INFO("column family " << cf << " still holds " << needle);
        ++found;
      }
    }
  }));
  CHECK(found == 0);
  CHECK(bob_entries >= 2);  // bob's profile and graph link are untouched
  size_t files = 0, file_hits = 0;
  for (const auto& f : std::filesystem::recursive_directory_iterator(store_path)) {
    if (!f.is_regular_file()) continue;
    ++files;
    std::ifstream in(f.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string content = bytes.str();
    for (const std::string& needle : needles) {
      if (content.find(needle) != std::string::npos) {
        UNSCOPED_INFO("file " << f.path().filename() << " still holds " << needle);
        ++file_hits;
      }
    }
  }
  CHECK(files > 3);
  CHECK(file_hits == 0);
  WARN("erasure: receipt after " << latency_ms << " ms; " << entries << " entries in "
                                 << files << " files scanned, " << found + file_hits
                                 << " occurrences of the person's identifiers");

  // A late event for the erased user id, inside the suppression window.
  testing::ProduceEvents(bootstrap, "events", {[] {
                           auto late = Event("jane-late", "product_viewed", t0 + 30 * kMinute, "web");
                           late.mutable_identities()->set_user_id("jane-42");
                           return late;
                         }()});
  {
    testing::PipelineRunner runner(store_path, options, topics, bootstrap, bootstrap);
    REQUIRE(testing::WaitUntil(
        [&] { return runner.metrics().erasure_suppressed.Value() == 1; }));
    CHECK(runner.metrics().applied.Value() == 0);
    std::set<std::string> stored;
    REQUIRE_OK(runner.store().ForEachProfile([&](std::string_view id, std::string_view) {
      stored.emplace(id);
      return true;
    }));
    CHECK(stored == std::set<std::string>{bob});
    CHECK(runner.store().Stats().profiles == 1);
    runner.Stop();
  }
}

TEST_CASE("a consent update on the control topic applies to the person's profile",
          "[integration][consent]") {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  for (const char* topic : {"events", "control", "updates"}) REQUIRE_OK((*cluster)->CreateTopic(topic, 1));
  const std::string bootstrap = (*cluster)->bootstrap();
  auto view = Event("v-1", "product_viewed", t0, "web");
  view.mutable_identities()->set_user_id("carol-3");
  testing::ProduceEvents(bootstrap, "events", {view});

  pipeline::PipelineOptions options;
  options.output_topic = "updates";
  options.clock_mode = core::PipelineClock::Mode::kEventTime;
  options.control_topic = "control";
  testing::TempDir dir;
  testing::PipelineRunner runner(dir.Sub("store"), options, {"events", "control"}, bootstrap,
                                 bootstrap);
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().applied.Value() == 1 && runner.store().OutboxDepth() == 0;
  }));
  v1::ControlRequest request;
  v1::ConsentUpdate& consent = *request.mutable_consent();
  consent.set_request_id("cmp-1");
  consent.set_kind("user_id");
  consent.set_value("carol-3");
  (*consent.mutable_purposes())["personalization"] = false;
  consent.set_decided_ms(t0 + kMinute);
  testing::ProduceRecords(bootstrap, "control", {{"cmp-1", request.SerializeAsString()},
                                                 {"bad", "not a control request"}});
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().ConsumedTotal() == 3 && runner.store().OutboxDepth() == 0;
  }));
  CHECK(runner.metrics().DeadLettersTotal() == 1);  // the bad one, with a reason
  CHECK(runner.metrics().applied.Value() == 1);     // a decision is not an event
  runner.Stop();
  std::vector<v1::ProfileUpdate> updates;
  for (const auto& m : testing::ReadTopicToEnd(bootstrap, "updates")) {
    v1::ProfileUpdate u;
    REQUIRE(u.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())));
    updates.push_back(u);
  }
  REQUIRE(updates.size() == 2);
  CHECK(updates[0].score_families_size() > 0);
  const v1::ProfileUpdate& after = updates[1];
  CHECK(after.version() == 1);
  CHECK(after.score_families_size() == 0);
  CHECK_FALSE(after.signals().has_top_intents());
  bool personalization = true;
  for (const auto& c : after.consent()) {
    if (c.purpose() == "personalization") {
      personalization = c.granted();
      CHECK(c.decided_ms() == t0 + kMinute);
    }
  }
  CHECK_FALSE(personalization);
}

}  // namespace
}  // namespace profiled
