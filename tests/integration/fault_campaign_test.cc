// The fault campaign: every dependency failing and coming back, and input at
// and around every size limit, through real brokers (input and output on
// separate mock clusters) and a real RocksDB. For each fault: what profiled
// does, what it reports (/readyz reasons, profiled_fault{reason}, lag), and
// that once the fault clears nothing is lost or applied twice (event-id
// de-duplication is off, so a batch applied twice would show in versions).
// docs/operations.md has the table these tests back.
#include <sys/mount.h>

#include <filesystem>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "profiled/base/failpoint.h"
#include "profiled/codec/state_codec.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/store/profile_store.h"
#include "support/kafka_harness.h"
#include "support/test_support.h"

namespace profiled {
namespace {

using kafka::MockCluster;
constexpr int64_t t0 = 1'700'000'000'000;

struct Clusters {
  std::unique_ptr<MockCluster> input, output;
};

Clusters StartClusters() {
  Clusters c;
  auto input = MockCluster::Start(1);
  auto output = MockCluster::Start(1);
  REQUIRE_OK(input.status());
  REQUIRE_OK(output.status());
  c.input = std::move(*input);
  c.output = std::move(*output);
  REQUIRE_OK(c.input->CreateTopic("events", 2));
  REQUIRE_OK(c.input->CreateTopic("segment", 1));
  REQUIRE_OK(c.output->CreateTopic("updates", 2));
  REQUIRE_OK(c.output->CreateTopic(testing::PipelineRunner::kDeadLetterTopic, 1));
  return c;
}

// Runtime options for the campaign: a 2 s stall timeout, fast retries, no
// de-duplication, store at `store_path`.
pipeline::RuntimeOptions CampaignOptions(const Clusters& c, const std::string& store_path) {
  pipeline::RuntimeOptions rt;
  rt.store.path = store_path;
  rt.consumer.properties = {{"bootstrap.servers", c.input->bootstrap()}};
  rt.consumer.topics = {"events", "segment"};
  rt.producer_properties = {{"bootstrap.servers", c.output->bootstrap()},
                            {"topic.metadata.propagation.max.ms", "1000"}};
  rt.dead_letter_topic = testing::PipelineRunner::kDeadLetterTopic;
  rt.pipeline.output_topic = "updates";
  rt.pipeline.clock_mode = core::PipelineClock::Mode::kEventTime;
  rt.pipeline.scoring.recent_event_ids = 0;
  rt.pipeline.inputs["segment"].format = "segment-json";
  rt.health.stall_timeout = absl::Seconds(2);
  rt.publisher.refused_retry = absl::Seconds(1);
  rt.recovery_backoff = absl::Milliseconds(200);
  return rt;
}

// `per_user` events for each of `users` users named `prefix`N.
std::vector<v1::InteractionEvent> Events(const std::string& prefix, int users, int per_user,
                                         int64_t start_ms = t0) {
  std::vector<v1::InteractionEvent> events;
  for (int i = 0; i < per_user; ++i) {
    for (int u = 0; u < users; ++u) {
      auto e = testing::MakeEvent(absl::StrCat(prefix, u, "-", i), "product_viewed",
                                  start_ms + i * 1000, absl::StrCat(prefix, u), "cat.a", "p1", "b");
      (*e.mutable_traits())["note"] = std::string(1000, 'n');  // some bulk per event
      events.push_back(std::move(e));
    }
  }
  return events;
}

// Every user's stored version equals the events sent for them: nothing lost,
// nothing applied twice.
void ExpectExactlyOnce(store::ProfileStore& store, const std::string& prefix, int users,
                       uint64_t per_user) {
  std::vector<std::string> keys;
  for (int u = 0; u < users; ++u) keys.push_back(store::IdentityKey("user_id", absl::StrCat(prefix, u)));
  std::vector<std::optional<std::string>> ids;
  REQUIRE_OK(store.MultiGetIdentities(keys, ids));
  size_t wrong = 0;
  for (int u = 0; u < users; ++u) {
    REQUIRE(ids[u].has_value());
    auto bytes = store.Get(*ids[u]);
    REQUIRE_OK(bytes.status());
    REQUIRE(bytes->has_value());
    auto profile = codec::DecodeProfileState(**bytes);
    REQUIRE_OK(profile.status());
    if (profile->version != per_user) {
      UNSCOPED_INFO(prefix << u << ": version " << profile->version << ", sent " << per_user);
      ++wrong;
    }
  }
  CHECK(wrong == 0);
}

std::string MetricsText(testing::PipelineRunner& runner) {
  return runner.observability().RenderText();
}

double Fault(testing::PipelineRunner& runner, const std::string& reason) {
  return testing::MetricValue(MetricsText(runner), "profiled_fault",
                              "reason=\"" + reason + "\"");
}

double TotalLag(testing::PipelineRunner& runner) {
  std::istringstream lines(MetricsText(runner));
  std::string line;
  double sum = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("profiled_consumer_lag{", 0) == 0) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// A Segment track message of exactly `bytes` bytes for `user`.
std::string TrackOfSize(size_t bytes, const std::string& id, const std::string& user) {
  const std::string head = absl::StrCat(R"({"type":"track","event":"Viewed","messageId":")", id,
                                        R"(","userId":")", user,
                                        R"(","timestamp":"2024-03-01T10:00:00Z","properties":{)");
  std::string body;
  size_t n = 0;
  // Properties of at most 8,000 bytes each (under max_string_bytes).
  while (head.size() + body.size() + 2 < bytes) {
    const std::string prefix = absl::StrCat(n == 0 ? "" : ",", "\"p", n, "\":\"");
    ++n;
    const size_t room = bytes - head.size() - body.size() - 2 - prefix.size() - 1;
    body += prefix + std::string(std::min<size_t>(room, 8000), 'x') + "\"";
  }
  std::string json = head + body + "}}";
  REQUIRE(json.size() == bytes);
  return json;
}

TEST_CASE("input at, just over and far over each size limit: applied or dead-lettered, "
          "the partition keeps flowing",
          "[integration][faults]") {
  Clusters c = StartClusters();
  testing::TempDir dir;
  pipeline::RuntimeOptions rt = CampaignOptions(c, dir.Sub("store"));
  rt.pipeline.json_limits.max_message_bytes = 64 * 1024;
  rt.pipeline.max_output_message_bytes = 256 * 1024;  // dead letters larger than this are cut
  const size_t limit = rt.pipeline.json_limits.max_message_bytes;
  const std::string long_id(256, 'i'), longer_id(257, 'i');
  const std::vector<std::pair<std::string, std::string>> records = {
      {"a", TrackOfSize(limit - 1, "under", "u-under")},
      {"b", TrackOfSize(limit, "at", "u-at")},
      {"c", TrackOfSize(limit + 1, "over", "u-over")},
      {"d", TrackOfSize(10 * limit, "far-over", "u-far")},
      {"e", TrackOfSize(2000, "key-at", long_id)},
      {"f", TrackOfSize(2000, "key-over", longer_id)},
      {"g", TrackOfSize(2000, "after", "u-after")}};
  testing::ProduceRecords(c.input->bootstrap(), "segment", records);

  testing::PipelineRunner runner(rt);
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().ConsumedTotal() == records.size() && runner.store().OutboxDepth() == 0;
  }));
  CHECK(runner.metrics().applied.Value() == 4);  // under, at, key-at, after
  CHECK(runner.metrics().dead_letters(ingest::RejectReason::kPayloadTooLarge).Value() == 2);
  CHECK(runner.metrics().dead_letters(ingest::RejectReason::kStringTooLong).Value() == 1);

  // A letter the broker refuses as too large, even cut: it goes out without a value.
  c.output->FailNextProduces(2, MockCluster::ProduceError::kRecordTooLarge);
  testing::ProduceRecords(c.input->bootstrap(), "segment",
                          {{"h", TrackOfSize(limit + 100, "refused", "u-refused")},
                           {"i", TrackOfSize(2000, "after-refused", "u-after2")}});
  REQUIRE(testing::WaitUntil([&] { return runner.metrics().applied.Value() == 5; }));
  runner.Stop();

  std::map<std::string, kafka::ConsumedMessage> letters;
  for (kafka::ConsumedMessage& m : testing::ReadTopic(c.output->bootstrap(),
                                                      testing::PipelineRunner::kDeadLetterTopic, 4)) {
    letters.emplace(std::string(*m.header("profiled.source.offset")), std::move(m));
  }
  REQUIRE(letters.size() == 4);
  const kafka::ConsumedMessage& over = letters.at("2");
  CHECK(over.payload() == records[2].second);  // whole: it fits the dead-letter topic
  CHECK_FALSE(over.header("profiled.truncated").has_value());
  const kafka::ConsumedMessage& far = letters.at("3");
  CHECK(far.header("profiled.truncated") == "value");
  CHECK(far.header("profiled.original_size") == std::to_string(10 * limit));
  CHECK(far.payload().size() < 256 * 1024);
  CHECK(far.payload().size() > 200 * 1024);
  CHECK(records[3].second.rfind(std::string(far.payload()), 0) == 0);  // the head of the value
  CHECK(letters.at("5").header("profiled.reason") == "string_too_long");
  const kafka::ConsumedMessage& refused = letters.at("7");
  CHECK(refused.header("profiled.truncated") == "all");
  CHECK(refused.payload().empty());
  CHECK(refused.header("profiled.original_size") == std::to_string(limit + 100));
  CHECK(refused.header("profiled.reason") == "payload_too_large");
}

TEST_CASE("a missing dead-letter topic stalls the pipeline loudly and nothing is lost once it is back",
          "[integration][faults]") {
  Clusters c = StartClusters();
  testing::TempDir dir;
  c.output->SetTopicState(testing::PipelineRunner::kDeadLetterTopic, MockCluster::TopicState::kMissing);
  testing::PipelineRunner runner(CampaignOptions(c, dir.Sub("store")));
  const std::vector<v1::InteractionEvent> before = Events("dl-", 5, 4);
  testing::ProduceEvents(c.input->bootstrap(), "events", before);
  REQUIRE(testing::WaitUntil([&] { return runner.metrics().applied.Value() == before.size(); }));
  testing::ProduceRecords(c.input->bootstrap(), "events", {{"bad", "not a protobuf event"}});
  const std::vector<v1::InteractionEvent> after = Events("dl-", 5, 4, t0 + 3'600'000);
  testing::ProduceEvents(c.input->bootstrap(), "events", after);

  // Loud: a fault with its reason, not ready, lag that shows the waiting input.
  REQUIRE(testing::WaitUntil([&] { return Fault(runner, "dead_letters_refused") == 1; },
                             std::chrono::seconds(20)));
  const bool lagging = testing::WaitUntil([&] { return !runner.ready() && TotalLag(runner) > 0; },
                                          std::chrono::seconds(20));
  INFO(MetricsText(runner));
  REQUIRE(lagging);
  CHECK(runner.health().Describe().find("dead_letters_refused: deadletters refused a dead letter") !=
        std::string::npos);
  CHECK(runner.metrics().applied.Value() < before.size() + after.size());  // stalled, not skipped

  c.output->SetTopicState(testing::PipelineRunner::kDeadLetterTopic, MockCluster::TopicState::kNormal);
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().applied.Value() == before.size() + after.size() && runner.ready();
  }));
  CHECK(Fault(runner, "dead_letters_refused") == 0);
  CHECK(runner.metrics().DeadLettersTotal() == 1);
  ExpectExactlyOnce(runner.store(), "dl-", 5, 8);
  runner.Stop();
  CHECK(testing::ReadTopic(c.output->bootstrap(), testing::PipelineRunner::kDeadLetterTopic, 1).size() == 1);
}

TEST_CASE("an output topic that refuses updates stops publishing loudly and resumes when fixed",
          "[integration][faults]") {
  Clusters c = StartClusters();
  testing::TempDir dir;
  c.output->SetTopicState("updates", MockCluster::TopicState::kMissing);
  testing::PipelineRunner runner(CampaignOptions(c, dir.Sub("store")));
  const std::vector<v1::InteractionEvent> events = Events("out-", 8, 5);
  testing::ProduceEvents(c.input->bootstrap(), "events", events);

  REQUIRE(testing::WaitUntil([&] { return Fault(runner, "output_refused") == 1; },
                             std::chrono::seconds(20)));
  CHECK_FALSE(runner.ready());
  CHECK(runner.health().Describe().find("output_refused: the output refused update") !=
        std::string::npos);
  CHECK(runner.publisher_metrics().published.Value() == 0);
  CHECK(runner.store().OutboxDepth() > 0);  // waiting in order, not dropped

  c.output->SetTopicState("updates", MockCluster::TopicState::kNormal);
  REQUIRE(testing::WaitUntil([&] {
    return runner.store().OutboxDepth() == 0 && runner.ready();
  }, std::chrono::seconds(30)));
  CHECK(Fault(runner, "output_refused") == 0);
  ExpectExactlyOnce(runner.store(), "out-", 8, 5);
  const double published = runner.publisher_metrics().published.Value();
  CHECK(published == runner.metrics().updates_enqueued.Value());
  runner.Stop();
  // Every profile's last update on the topic is its final version.
  std::map<std::string, uint64_t> last;
  for (const kafka::ConsumedMessage& m : testing::ReadTopicToEnd(c.output->bootstrap(), "updates")) {
    v1::ProfileUpdate u;
    REQUIRE(u.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())));
    last[u.profile_id()] = std::max(last[u.profile_id()], u.version());
  }
  CHECK(last.size() == 8);
  for (const auto& [id, version] : last) CHECK(version == 5);
}

TEST_CASE("the output broker gone for 30 s: faults, not ready, true lag, then everything arrives",
          "[integration][faults]") {
  Clusters c = StartClusters();
  testing::TempDir dir;
  pipeline::RuntimeOptions rt = CampaignOptions(c, dir.Sub("store"));
  rt.pipeline.outbox_max_entries = 40;  // the outbox bound pauses consumption during the outage
  testing::PipelineRunner runner(rt);
  const std::vector<v1::InteractionEvent> warmup = Events("gone-", 30, 1);
  testing::ProduceEvents(c.input->bootstrap(), "events", warmup);
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().applied.Value() == warmup.size() && runner.store().OutboxDepth() == 0 &&
           runner.ready();
  }));

  REQUIRE_OK(c.output->SetBrokerUp(1, false));
  const auto outage_start = std::chrono::steady_clock::now();
  // Two batches of updates nobody acknowledges: the second fills the outbox past its bound.
  const std::vector<v1::InteractionEvent> first = Events("gone-", 30, 5, t0 + 60'000);
  const std::vector<v1::InteractionEvent> second = Events("gone-", 30, 5, t0 + 120'000);
  const std::vector<v1::InteractionEvent> late = Events("gone-", 30, 5, t0 + 180'000);
  testing::ProduceEvents(c.input->bootstrap(), "events", first);
  REQUIRE(testing::WaitUntil([&] { return runner.store().OutboxDepth() >= 30; }));
  testing::ProduceEvents(c.input->bootstrap(), "events", second);
  REQUIRE(testing::WaitUntil([&] { return Fault(runner, "output_stalled") == 1; },
                             std::chrono::seconds(20)));
  REQUIRE(testing::WaitUntil([&] { return runner.paused(); }, std::chrono::seconds(20)));
  // Paused on the outbox bound, the consumer fetches nothing: lag still shows
  // what arrives meanwhile, a dead letter included.
  testing::ProduceEvents(c.input->bootstrap(), "events", late);
  testing::ProduceRecords(c.input->bootstrap(), "events", {{"bad", "junk while the output is down"}});
  REQUIRE(testing::WaitUntil(
      [&] { return TotalLag(runner) >= static_cast<double>(late.size() + 1); },
      std::chrono::seconds(10)));
  CHECK_FALSE(runner.ready());
  const std::string why = runner.health().Describe();
  INFO(why);
  CHECK(why.find("output_stalled: ") != std::string::npos);
  std::this_thread::sleep_for(std::chrono::seconds(30) -
                              (std::chrono::steady_clock::now() - outage_start));
  CHECK(Fault(runner, "progress_stalled") == 1);  // the batch loop made no progress either
  REQUIRE_OK(c.output->SetBrokerUp(1, true));

  const size_t total = warmup.size() + first.size() + second.size() + late.size();
  // Everything lands, the dead letter included (it may come in a batch after
  // the last event's), and the lag gauge catches up with it.
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().applied.Value() == total && runner.store().OutboxDepth() == 0 &&
           runner.metrics().DeadLettersTotal() == 1 && runner.ready() && TotalLag(runner) == 0;
  }, std::chrono::seconds(90)));
  for (const char* reason : {"output_stalled", "dead_letters_stalled", "progress_stalled"}) {
    CHECK(Fault(runner, reason) == 0);
  }
  CHECK(TotalLag(runner) == 0);
  CHECK(runner.metrics().DeadLettersTotal() == 1);
  ExpectExactlyOnce(runner.store(), "gone-", 30, 16);
  CHECK(runner.publisher_metrics().published.Value() == runner.metrics().updates_enqueued.Value());
  runner.Stop();
}

TEST_CASE("RocksDB writes failing mid-run: consumption stops loudly and resumes exactly once",
          "[integration][faults]") {
  Clusters c = StartClusters();
  testing::TempDir dir;
  testing::PipelineRunner runner(CampaignOptions(c, dir.Sub("store")));
  const std::vector<v1::InteractionEvent> first = Events("wf-", 10, 3);
  testing::ProduceEvents(c.input->bootstrap(), "events", first);
  REQUIRE(testing::WaitUntil([&] { return runner.metrics().applied.Value() == first.size(); }));

  internal::ArmFailpointErrors("store_write", 4);  // four commits in a row fail
  const std::vector<v1::InteractionEvent> second = Events("wf-", 10, 3, t0 + 3'600'000);
  testing::ProduceEvents(c.input->bootstrap(), "events", second);
  REQUIRE(testing::WaitUntil([&] { return Fault(runner, "store_failed") == 1; }));
  REQUIRE(testing::WaitUntil([&] {
    return !runner.ready() && runner.health().Describe().find(
                                  "store_failed: committing batch: IO error") != std::string::npos;
  }));

  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().applied.Value() == first.size() + second.size() && runner.ready() &&
           runner.store().OutboxDepth() == 0;
  }));
  CHECK(Fault(runner, "store_failed") == 0);
  ExpectExactlyOnce(runner.store(), "wf-", 10, 6);
  runner.Stop();
  internal::ArmFailpointErrors("store_write", 0);
}

TEST_CASE("a full disk: the store fails loudly and recovers when space returns, exactly once",
          "[integration][faults]") {
  Clusters c = StartClusters();
  testing::TempDir dir;
  const std::string mount_point = dir.Sub("disk");
  std::filesystem::create_directories(mount_point);
  // A real full disk needs a small filesystem: a tmpfs where root may mount
  // one, else the store_write failpoint stands in for the write errors.
  const bool real_disk = mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=4m") == 0;
  if (!real_disk) WARN("cannot mount a tmpfs here: a failpoint stands in for the full disk");
  struct Unmount {
    bool mounted;
    std::string path;
    ~Unmount() {
      if (mounted) umount2(path.c_str(), MNT_DETACH);
    }
  } unmount{real_disk, mount_point};
  pipeline::RuntimeOptions rt = CampaignOptions(c, mount_point + "/store");
  rt.store.memtable_bytes = 64 << 20;  // fills the disk through the WAL, not flushes
  rt.pipeline.batch_max_events = 100;  // many batches, each rewriting its profiles
  const std::vector<v1::InteractionEvent> events = Events("full-", 200, 40);
  {
    testing::PipelineRunner runner(rt);
    if (!real_disk) internal::ArmFailpointErrors("store_write", 3);
    testing::ProduceEvents(c.input->bootstrap(), "events", events);
    const bool failed = testing::WaitUntil([&] { return Fault(runner, "store_failed") == 1; });
    INFO("applied " << runner.metrics().applied.Value() << " of " << events.size());
    REQUIRE(failed);
    REQUIRE(testing::WaitUntil([&] { return !runner.ready(); }));
    const std::string why = runner.health().Describe();
    INFO(why);
    if (real_disk) {
      CHECK(why.find("No space left on device") != std::string::npos);
      // Still failing while the disk stays full.
      std::this_thread::sleep_for(std::chrono::seconds(2));
      CHECK(Fault(runner, "store_failed") == 1);
      REQUIRE(mount("tmpfs", mount_point.c_str(), "tmpfs", MS_REMOUNT, "size=512m") == 0);
    }
    const bool recovered = testing::WaitUntil([&] {
      return runner.metrics().applied.Value() == events.size() && runner.ready() &&
             runner.store().OutboxDepth() == 0;
    }, std::chrono::seconds(90));
    UNSCOPED_INFO("after recovery: applied " << runner.metrics().applied.Value() << ", outbox "
                  << runner.store().OutboxDepth() << ", " << runner.health().Describe());
    REQUIRE(recovered);
    CHECK(Fault(runner, "store_failed") == 0);
    ExpectExactlyOnce(runner.store(), "full-", 200, 40);
    runner.Stop();
  }
}

}  // namespace
}  // namespace profiled

namespace profiled {
namespace {

TEST_CASE("the input broker gone longer than the lease: paused with lease_lapsed, then consuming "
          "again, exactly once",
          "[integration][faults][cluster]") {
  Clusters c = StartClusters();
  testing::TempDir dir;
  pipeline::RuntimeOptions rt = CampaignOptions(c, dir.Sub("store"));
  rt.lease.ttl = absl::Seconds(3);  // the lease lives on the input cluster
  testing::PipelineRunner runner(rt);
  const std::vector<v1::InteractionEvent> before = Events("lapse-", 20, 2);
  testing::ProduceEvents(c.input->bootstrap(), "events", before);
  REQUIRE(testing::WaitUntil([&] { return runner.metrics().applied.Value() == before.size(); }));

  REQUIRE_OK(c.input->SetBrokerUp(1, false));
  REQUIRE(testing::WaitUntil([&] { return Fault(runner, "lease_lapsed") == 1; },
                             std::chrono::seconds(15)));
  CHECK_THAT(runner.health().Describe(), Catch::Contains("lease_lapsed: lease not renewed"));
  CHECK_FALSE(runner.ready());
  REQUIRE_OK(c.input->SetBrokerUp(1, true));
  REQUIRE(testing::WaitUntil([&] { return Fault(runner, "lease_lapsed") == 0; },
                             std::chrono::seconds(30)));

  // Consumption resumed (it had been paused while the lease lapsed).
  const std::vector<v1::InteractionEvent> after = Events("lapse-", 20, 3, t0 + 60'000);
  testing::ProduceEvents(c.input->bootstrap(), "events", after);
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().applied.Value() == before.size() + after.size() &&
           runner.store().OutboxDepth() == 0;
  }, std::chrono::seconds(60)));
  ExpectExactlyOnce(runner.store(), "lapse-", 20, 5);
  runner.Stop();
}

}  // namespace
}  // namespace profiled
