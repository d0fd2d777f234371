// Erasure through the broker: a person with a cross-channel history and a
// merge is erased by email; tombstones and a receipt are published within a
// second, then the service purges the disk by itself (no test-only
// compaction) and says so in a second receipt: afterwards no column family
// and no file of the RocksDB directory — write-ahead log, SST files,
// MANIFEST, logs — holds any of their identifiers, identity hashes or
// profile ids, or any 12-byte suffix of one (RocksDB prefix-compresses
// keys), while the service runs and again after a clean stop; a late event
// cannot bring them back.
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
  // The login's user id founds the profile that names her; the email and
  // anonymous profiles merged into it (docs/identity.md).
  const std::string jane = core::ProfileIdFor(core::Identity{"user_id", "jane-42"});
  const std::string jane_email = core::ProfileIdFor(core::Identity{"email_sha256", email_hash});
  const std::string jane_anon = core::ProfileIdFor(core::Identity{"anonymous_id", "anon-jane-1"});
  const std::string bob = core::ProfileIdFor(core::Identity{"user_id", "bob-7"});
  // Nothing of the person may be left: every identifier, hash and id, and
  // every suffix of 12 bytes or more of one (RocksDB stores keys with their
  // shared prefix elided). The store runs uncompressed so bytes are what
  // they seem.
  const std::vector<std::string> needles = {"anon-jane-1", "jane-42", "dev-jane-9",
                                            "Jane.Doe@Example.com", "jane.doe@example.com",
                                            email_hash, jane, jane_email, jane_anon};
  std::vector<std::string> fragments;
  for (const std::string& needle : needles) {
    for (size_t from = 0; from + 12 <= needle.size(); ++from) fragments.push_back(needle.substr(from));
  }
  auto scan_files = [&](const std::string& when) {
    size_t files = 0, hits = 0;
    for (const auto& f : std::filesystem::recursive_directory_iterator(store_path)) {
      if (!f.is_regular_file()) continue;
      ++files;
      std::ifstream in(f.path(), std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      const std::string content = bytes.str();
      for (const std::string& fragment : fragments) {
        if (content.find(fragment) != std::string::npos) {
          UNSCOPED_INFO(when << ": file " << f.path().filename() << " still holds " << fragment);
          ++hits;
        }
      }
    }
    CHECK(files > 3);
    CHECK(hits == 0);
    return files;
  };

  pipeline::RuntimeOptions rt;
  rt.store.path = store_path;
  rt.store.compression = false;
  rt.consumer.properties = {{"bootstrap.servers", bootstrap}};
  rt.consumer.topics = topics;
  rt.producer_properties = {{"bootstrap.servers", bootstrap}};
  rt.dead_letter_topic = testing::PipelineRunner::kDeadLetterTopic;
  rt.pipeline = options;
  v1::ErasureReceipt receipt, purged;
  size_t files_while_running = 0;
  {
    testing::PipelineRunner runner(rt);
    REQUIRE(testing::WaitUntil([&] {
      return runner.metrics().applied.Value() == events.size() && runner.store().OutboxDepth() == 0;
    }));
    REQUIRE(runner.metrics().merges.Value() == 2);  // the email and anonymous profiles into jane's
    REQUIRE(runner.store().ReadAudit(jane)->size() == 1);

    v1::ControlRequest request;
    request.mutable_erase()->set_request_id("req-1");
    request.mutable_erase()->set_kind("email");
    request.mutable_erase()->set_value(" JANE.DOE@example.com ");  // normalized like events
    request.mutable_erase()->set_requested_ms(absl::ToUnixMillis(absl::Now()));
    testing::ProduceRecords(bootstrap, "control", {{"req-1", request.SerializeAsString()}});
    // The first receipt (committed), then the second once the disk is purged.
    std::vector<kafka::ConsumedMessage> receipts = testing::ReadTopic(bootstrap, "receipts", 2);
    REQUIRE(receipts.size() == 2);
    REQUIRE(receipt.ParseFromArray(receipts[0].payload().data(),
                                   static_cast<int>(receipts[0].payload().size())));
    REQUIRE(purged.ParseFromArray(receipts[1].payload().data(),
                                  static_cast<int>(receipts[1].payload().size())));
    REQUIRE(testing::WaitUntil([&] { return runner.store().OutboxDepth() == 0; }));
    CHECK(runner.metrics().purges_pending.Value() == 0);
    // While the service runs, after its own purge: no file names the person.
    files_while_running = scan_files("while running");
    runner.Stop();
  }
  // A clean stop flushes; still nothing.
  scan_files("after a clean stop");

  CHECK(receipt.request_id() == "req-1");
  CHECK(std::set<std::string>(receipt.erased_profile_ids().begin(), receipt.erased_profile_ids().end()) ==
        std::set<std::string>{jane, jane_email, jane_anon});
  CHECK(receipt.profiles_erased() == 3);
  CHECK(receipt.identities_erased() == 4);  // anonymous id, email hash, user id, device id
  CHECK(receipt.purged_ms() == 0);
  const int64_t latency_ms = receipt.completed_ms() - receipt.requested_ms();
  CHECK(latency_ms >= 0);
  // Prompt, not a benchmark: typically ~0.3 s here, past 1 s on a loaded CI
  // machine (the figure is printed below; speed is measured in benchmarks/).
  CHECK(latency_ms < 5000);
  // The second receipt names only the request; the purge finished within the bound.
  CHECK(purged.request_id() == "req-1");
  CHECK(purged.erased_profile_ids_size() == 0);
  CHECK(purged.identities_erased() == 0);
  const int64_t purge_ms = purged.purged_ms() - receipt.completed_ms();
  CHECK(purge_ms >= 0);
  CHECK(purge_ms < 60'000);

  std::map<std::string, bool> last_is_tombstone;
  for (const kafka::ConsumedMessage& m : testing::ReadTopicToEnd(bootstrap, "updates")) {
    last_is_tombstone[std::string(m.key())] = m.tombstone();
  }
  CHECK(last_is_tombstone.at(jane));
  CHECK(last_is_tombstone.at(jane_anon));
  CHECK(last_is_tombstone.at(jane_email));
  CHECK_FALSE(last_is_tombstone.at(bob));

  // Not in any column family either, while bob's data is intact.
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
  WARN("erasure: receipt after " << latency_ms << " ms, purged from disk " << purge_ms
                                 << " ms later; " << entries << " entries and "
                                 << files_while_running << " files scanned, 0 occurrences of "
                                 << fragments.size() << " fragments of the person's identifiers");

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

TEST_CASE("a purge a crash interrupted is redone at the next start", "[integration][erasure]") {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  for (const char* topic : {"events", "control", "updates", "receipts"}) {
    REQUIRE_OK((*cluster)->CreateTopic(topic, 1));
  }
  const std::string bootstrap = (*cluster)->bootstrap();
  testing::TempDir dir;
  {  // As an erasure batch leaves it when the process dies before its purge.
    auto store = store::ProfileStore::Open({dir.Sub("store")});
    REQUIRE_OK(store.status());
    store::CommitBatch erased;
    erased.deleted_profiles = {"p-gone"};
    erased.purges_pending = {"req-lost"};
    REQUIRE_OK((*store)->Commit(erased));
  }
  pipeline::PipelineOptions options;
  options.output_topic = "updates";
  options.control_topic = "control";
  options.receipts_topic = "receipts";
  testing::PipelineRunner runner(dir.Sub("store"), options, {"events", "control"}, bootstrap,
                                 bootstrap);
  std::vector<kafka::ConsumedMessage> receipts = testing::ReadTopic(bootstrap, "receipts", 1);
  REQUIRE(receipts.size() == 1);
  v1::ErasureReceipt purged;
  REQUIRE(purged.ParseFromArray(receipts[0].payload().data(),
                                static_cast<int>(receipts[0].payload().size())));
  CHECK(purged.request_id() == "req-lost");
  CHECK(purged.purged_ms() > 0);
  REQUIRE(testing::WaitUntil([&] { return runner.store().PendingPurges()->empty(); }));
  runner.Stop();
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
