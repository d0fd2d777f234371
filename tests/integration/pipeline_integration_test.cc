// End to end through a real Kafka-protocol broker (librdkafka's mock
// cluster): real Protobuf events in, the pipeline with a real RocksDB, and
// the output read back by an independent consumer. Every decayed score is
// checked against a brute-force fold of the raw events computed here.
#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "profiled/codec/state_codec.h"
#include "profiled/codec/update_codec.h"
#include "profiled/core/profile_id.h"
#include "profiled/ingest/rees46.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/obs/http_client.h"
#include "profiled/obs/http_server.h"
#include "profiled/v1/profile_update.pb.h"
#include "support/kafka_harness.h"
#include "support/reference_fold.h"
#include "support/test_support.h"

namespace profiled {
namespace {

// A one-broker mock cluster with "events" and "updates" of `partitions` each
// (and the runner's dead-letter topic when asked).
std::unique_ptr<kafka::MockCluster> StartCluster(int partitions, bool dead_letters) {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("events", partitions));
  REQUIRE_OK((*cluster)->CreateTopic("updates", partitions));
  if (dead_letters) {
    REQUIRE_OK((*cluster)->CreateTopic(testing::PipelineRunner::kDeadLetterTopic, 1));
  }
  return *std::move(cluster);
}

constexpr int64_t kHalfLifeMs = 3'600'000;

std::vector<v1::InteractionEvent> SampleEvents(size_t limit, uint64_t shuffle_seed) {
  std::ifstream in(PROFILED_SOURCE_DIR "/deploy/demo/data/rees46-2019oct-head/events.csv");
  std::stringstream text;
  text << in.rdbuf();
  const std::string csv = text.str();
  ingest::Rees46Reader reader(csv);
  std::vector<v1::InteractionEvent> events;
  v1::InteractionEvent e;
  while (events.size() < limit && reader.Next(e)) events.push_back(e);
  // Arrival order differs from event-time order: decay must stay exact.
  std::mt19937_64 rng(shuffle_seed);
  std::shuffle(events.begin(), events.end(), rng);
  return events;
}

pipeline::PipelineOptions ExactOptions() {
  pipeline::PipelineOptions options;
  options.output_topic = "updates";
  options.clock_mode = core::PipelineClock::Mode::kEventTime;
  for (core::Family f : core::kAllFamilies) {
    options.scoring.family(f) = core::FamilyOptions{double(kHalfLifeMs), 100000, 0.0};
  }
  const testing::ReferenceWeights weights;
  options.scoring.event_weights = {weights.by_type.begin(), weights.by_type.end()};
  options.scoring.default_weight = weights.default_weight;
  return options;
}

TEST_CASE("every published score equals a brute-force fold of the raw events",
          "[integration]") {
  const auto cluster = StartCluster(4, /*dead_letters=*/false);
  const std::string bootstrap = cluster->bootstrap();

  const std::vector<v1::InteractionEvent> events = SampleEvents(2000, 42);
  const std::map<std::string, testing::ExpectedProfile> expected =
      testing::FoldByProfile(events, {});
  testing::ProduceEvents(bootstrap, "events", events);

  testing::TempDir dir;
  testing::PipelineRunner runner(dir.Sub("store"), ExactOptions(), {"events"}, bootstrap,
                                 bootstrap);
  REQUIRE(testing::WaitUntil(
      [&] { return runner.metrics().applied.Value() == events.size() && runner.store().OutboxDepth() == 0; }));
  CHECK(runner.metrics().DeadLettersTotal() == 0);
  const uint64_t published = runner.publisher_metrics().published.Value();
  runner.Stop();

  std::vector<kafka::ConsumedMessage> out = testing::ReadTopic(bootstrap, "updates", published);
  REQUIRE(out.size() == published);

  // Last update per profile; (version, as_of) strictly increases per key (a
  // time-driven update repeats the version with a later as_of).
  std::map<std::string, v1::ProfileUpdate> last;
  for (const kafka::ConsumedMessage& m : out) {
    CHECK(m.header("content-type") == std::optional<std::string_view>("application/x-protobuf"));
    CHECK(m.header("schema") == std::optional<std::string_view>("profiled.v1.ProfileUpdate"));
    v1::ProfileUpdate u;
    REQUIRE(u.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())));
    REQUIRE(std::string(m.key()) == u.profile_id());
    auto it = last.find(u.profile_id());
    if (it != last.end()) {
      REQUIRE((u.version() > it->second.version() ||
               (u.version() == it->second.version() && u.as_of_ms() > it->second.as_of_ms())));
    }
    last[u.profile_id()] = u;
  }
  REQUIRE(last.size() == expected.size());

  size_t scores_checked = 0;
  for (const auto& [id, want] : expected) {
    INFO("profile " << id);
    REQUIRE(last.count(id) == 1);
    const v1::ProfileUpdate& u = last.at(id);
    for (const v1::ScoreFamily& f : u.score_families()) CHECK(f.half_life_ms() == kHalfLifeMs);
    const std::vector<std::string> mismatches = testing::CompareUpdate(u, want, kHalfLifeMs);
    INFO(absl::StrJoin(mismatches, "\n"));
    REQUIRE(mismatches.empty());
    for (const auto& [family, keys] : want.scores) scores_checked += keys.size();
  }
  WARN("checked " << scores_checked << " scores of " << expected.size() << " profiles from "
                  << events.size() << " events");
}

TEST_CASE("versions and stored state do not depend on batch boundaries or the hot cache",
          "[integration]") {
  const auto cluster = StartCluster(3, /*dead_letters=*/false);
  const std::string bootstrap = cluster->bootstrap();
  const std::vector<v1::InteractionEvent> events = SampleEvents(800, 7);
  testing::ProduceEvents(bootstrap, "events", events);

  auto run = [&](size_t batch_max_events, const std::string& path,
                 size_t cache_bytes = pipeline::PipelineOptions().profile_cache_bytes) {
    pipeline::PipelineOptions options = ExactOptions();
    options.batch_max_events = batch_max_events;
    options.profile_cache_bytes = cache_bytes;
    testing::PipelineRunner runner(path, options, {"events"}, bootstrap, bootstrap);
    REQUIRE(testing::WaitUntil([&] { return runner.metrics().applied.Value() == events.size(); }));
    runner.Stop();
    std::map<std::string, std::string> states;
    REQUIRE_OK(runner.store().ForEachProfile([&](std::string_view id, std::string_view bytes) {
      states.emplace(std::string(id), std::string(bytes));
      return true;
    }));
    return std::make_pair(states, runner.metrics().batches.Value());
  };
  testing::TempDir dir;
  auto [small, small_batches] = run(3, dir.Sub("small"));
  auto [large, large_batches] = run(5000, dir.Sub("large"));
  // No cache budget: every batch reads profiles back from the store, except
  // those of the batch still being written (pinned).
  auto [uncached, uncached_batches] = run(3, dir.Sub("uncached"), /*cache_bytes=*/0);
  CHECK(small_batches > large_batches);
  CHECK(uncached_batches > large_batches);
  REQUIRE(small.size() == large.size());
  REQUIRE(uncached.size() == large.size());
  for (const auto& [id, bytes] : large) {
    INFO("profile " << id);
    REQUIRE(small.count(id) == 1);
    CHECK(small.at(id) == bytes);  // byte-identical state, versions included
    REQUIRE(uncached.count(id) == 1);
    CHECK(uncached.at(id) == bytes);
  }
}

TEST_CASE("bad input goes to the dead-letter topic with its reason and keeps flowing",
          "[integration][deadletter]") {
  const auto cluster = StartCluster(1, /*dead_letters=*/true);
  const std::string bootstrap = cluster->bootstrap();

  const std::vector<v1::InteractionEvent> good = SampleEvents(30, 1);
  v1::InteractionEvent no_identity = good[0];
  no_identity.clear_identities();
  v1::InteractionEvent no_id = good[1];
  no_id.clear_event_id();
  v1::InteractionEvent no_time = good[2];
  no_time.set_event_time_ms(0);
  const std::string valid_bytes = good[3].SerializeAsString();
  std::mt19937_64 rng(99);
  std::string random_bytes(64, '\0');
  for (char& c : random_bytes) c = static_cast<char>(rng());
  random_bytes[0] = '\xff';  // an invalid tag: never parses as a message

  // Valid events with bad ones in between, in one partition: offsets known.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"k-empty", ""},
      {"k-truncated", valid_bytes.substr(0, valid_bytes.size() - 4)},
      {"k-random", random_bytes},
      {"k-no-identity", no_identity.SerializeAsString()},
      {"k-no-id", no_id.SerializeAsString()},
      {"k-no-time", no_time.SerializeAsString()}};
  const std::vector<std::string> expected_reasons = {
      "empty_message", "undecodable_protobuf", "undecodable_protobuf",
      "no_identity",   "missing_event_id",     "invalid_event_time"};
  std::vector<std::pair<std::string, std::string>> records;
  std::map<int64_t, size_t> bad_at_offset;
  for (size_t i = 0; i < good.size(); ++i) {
    records.emplace_back(good[i].identities().user_id(), good[i].SerializeAsString());
    if (i % 5 == 2 && i / 5 < bad.size()) {
      bad_at_offset[static_cast<int64_t>(records.size())] = i / 5;
      records.push_back(bad[i / 5]);
    }
  }
  REQUIRE(bad_at_offset.size() == bad.size());
  testing::ProduceRecords(bootstrap, "events", records);

  testing::TempDir dir;
  testing::PipelineRunner runner(dir.Sub("store"), ExactOptions(), {"events"}, bootstrap,
                                 bootstrap);
  REQUIRE(testing::WaitUntil([&] { return runner.metrics().ConsumedTotal() == records.size(); }));
  CHECK(runner.metrics().applied.Value() == good.size());
  CHECK(runner.metrics().DeadLettersTotal() == bad.size());
  CHECK(runner.metrics().dead_letters(ingest::RejectReason::kUndecodable).Value() == 2);
  CHECK(runner.metrics().dead_letters(ingest::RejectReason::kEmptyMessage).Value() == 1);
  runner.Stop();

  // The same figures through a real HTTP scrape of /metrics, in a format
  // promtool accepts.
  auto http = obs::HttpServer::Start({"127.0.0.1:0", 1});
  REQUIRE_OK(http.status());
  (*http)->Handle("/metrics", [&](const obs::HttpRequest&) { return runner.observability().Render(); });
  const std::string host = absl::StrCat("127.0.0.1:", (*http)->port());
  auto scraped = obs::HttpGet(host, "/metrics");
  REQUIRE_OK(scraped.status());
  CHECK(scraped->status == 200);
  CHECK(scraped->content_type.rfind("text/plain; version=0.0.4", 0) == 0);
  const std::string text = scraped->body;
  CHECK(text.find("\nprofiled_events_applied_total " + std::to_string(good.size()) + "\n") !=
        std::string::npos);
  CHECK(text.find("profiled_events_consumed_total{topic=\"events\"} " +
                  std::to_string(records.size()) + "\n") != std::string::npos);
  CHECK(text.find("profiled_dead_letters_total{reason=\"undecodable_protobuf\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("profiled_dead_letters_total{reason=\"no_identity\"} 1\n") != std::string::npos);
  CHECK(testing::ScrapeCounter(host, "profiled_updates_published_total") ==
        runner.metrics().updates_enqueued.Value());
  CHECK(testing::ScrapeCounter(host, "profiled_outbox_depth") == 0);
  testing::TempDir scrape_dir;
  {
    std::ofstream(scrape_dir.Sub("metrics.txt")) << text;
  }
  const std::string promtool =
      absl::StrCat("promtool check metrics < ", scrape_dir.Sub("metrics.txt"), " 2>&1");
  FILE* pipe = popen(promtool.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string promtool_out;
  char buf[512];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) promtool_out += buf;
  const int promtool_rc = pclose(pipe);
  INFO("promtool: " << promtool_out);
  CHECK(promtool_rc == 0);

  std::vector<kafka::ConsumedMessage> letters =
      testing::ReadTopic(bootstrap, testing::PipelineRunner::kDeadLetterTopic, bad.size());
  REQUIRE(letters.size() == bad.size());
  for (const kafka::ConsumedMessage& l : letters) {
    const int64_t offset = std::stoll(std::string(*l.header("profiled.source.offset")));
    INFO("dead letter for offset " << offset);
    REQUIRE(bad_at_offset.count(offset) == 1);
    const size_t which = bad_at_offset.at(offset);
    CHECK(l.header("profiled.reason") == std::optional<std::string_view>(expected_reasons[which]));
    CHECK(l.header("profiled.source.topic") == std::optional<std::string_view>("events"));
    CHECK(l.header("profiled.source.partition") == std::optional<std::string_view>("0"));
    CHECK_FALSE(l.header("profiled.detail")->empty());
    CHECK(l.header("profiled.time")->size() == std::string("2026-11-22T13:59:46.123Z").size());
    CHECK(std::string(l.key()) == bad[which].first);
    CHECK(std::string(l.payload()) == bad[which].second);  // original bytes
  }
}

TEST_CASE("readiness turns on only once every partition is caught up", "[integration][readyz]") {
  const auto cluster = StartCluster(2, /*dead_letters=*/false);
  const std::string bootstrap = cluster->bootstrap();
  const std::vector<v1::InteractionEvent> events = SampleEvents(2000, 3);
  testing::ProduceEvents(bootstrap, "events", events);
  pipeline::PipelineOptions options = ExactOptions();
  options.batch_max_events = 20;  // a slow catch-up
  testing::TempDir dir;
  testing::PipelineRunner runner(dir.Sub("store"), options, {"events"}, bootstrap, bootstrap,
                                 nullptr, {.ready_max_lag = 0});
  CHECK_FALSE(runner.ready());  // nothing assigned yet
  size_t seen_not_ready_while_behind = 0;
  REQUIRE(testing::WaitUntil([&] {
    const double applied = runner.metrics().applied.Value();
    const bool ready = runner.ready();
    if (ready) CHECK(applied == events.size());  // never ready while behind
    if (!ready && applied > 0 && applied < events.size()) ++seen_not_ready_while_behind;
    return ready;
  }));
  CHECK(seen_not_ready_while_behind > 0);
  runner.Stop();
  CHECK_FALSE(runner.ready());  // left the group
}

TEST_CASE("event->publish latency runs from the input's Kafka timestamp to the acknowledgement",
          "[integration][metrics]") {
  const auto cluster = StartCluster(1, /*dead_letters=*/true);
  const std::string bootstrap = cluster->bootstrap();
  const std::vector<v1::InteractionEvent> events = SampleEvents(200, 5);
  std::vector<std::pair<std::string, std::string>> records;
  for (const v1::InteractionEvent& e : events) {
    records.emplace_back(e.identities().user_id(), e.SerializeAsString());
  }
  const int64_t produced_from_ms = absl::ToUnixMillis(absl::Now());
  testing::ProduceRecords(bootstrap, "events", records);
  const int64_t produced_to_ms = absl::ToUnixMillis(absl::Now());
  // Every record waits at least this long before profiled even starts.
  const auto head_start = std::chrono::milliseconds(1500);
  std::this_thread::sleep_for(head_start);

  testing::TempDir dir;
  testing::PipelineRunner runner(dir.Sub("store"), ExactOptions(), {"events"}, bootstrap,
                                 bootstrap);
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().ConsumedTotal() == records.size() &&
           runner.publisher_metrics().published.Value() ==
               runner.metrics().updates_enqueued.Value();
  }));
  // The pipeline records the store's figures every 500 ms.
  REQUIRE(testing::WaitUntil([&] { return runner.metrics().profiles_stored.Value() > 0; }));

  auto http = obs::HttpServer::Start({"127.0.0.1:0", 1});
  REQUIRE_OK(http.status());
  (*http)->Handle("/metrics", [&](const obs::HttpRequest&) { return runner.observability().Render(); });
  const std::string host = absl::StrCat("127.0.0.1:", (*http)->port());
  const double count = testing::ScrapeCounter(host, "profiled_event_publish_latency_seconds_count");
  const double sum = testing::ScrapeCounter(host, "profiled_event_publish_latency_seconds_sum");
  // Every update of this run came from events (no timer is due yet).
  CHECK(count == runner.metrics().updates_enqueued.Value());
  REQUIRE(count > 0);
  CHECK(testing::ScrapeCounter(host, "profiled_event_publish_latency_seconds_bucket{le=\"1\"}") == 0);
  CHECK(sum / count >= 1.5);
  CHECK(sum / count < 60);
  // The store's own figures reach /metrics too.
  CHECK(testing::ScrapeCounter(host, "profiled_profiles_stored") > 0);
  CHECK(testing::ScrapeCounter(host, "profiled_rocksdb_memtable_bytes") > 0);
  CHECK(testing::ScrapeCounter(host, "profiled_rocksdb_writes_stopped") == 0);
  CHECK(testing::ScrapeCounter(host, "profiled_batch_size_events_count") >= 1);
  CHECK(testing::ScrapeCounter(host, "profiled_batch_size_events_sum") == records.size());
  runner.Stop();

  // Each update names its oldest input's Kafka timestamp for subscribers.
  const std::vector<kafka::ConsumedMessage> updates =
      testing::ReadTopic(bootstrap, "updates", static_cast<size_t>(count));
  REQUIRE(updates.size() == static_cast<size_t>(count));
  for (const kafka::ConsumedMessage& u : updates) {
    const std::optional<std::string_view> source = u.header("profiled.source_time_ms");
    REQUIRE(source.has_value());
    const int64_t ms = std::stoll(std::string(*source));
    CHECK(ms >= produced_from_ms - 1);
    CHECK(ms <= produced_to_ms + 1);
  }
}

TEST_CASE("a stored position that retention deleted restarts at the oldest message and is counted",
          "[integration][retention]") {
  const auto cluster = StartCluster(1, /*dead_letters=*/true);
  const std::string bootstrap = cluster->bootstrap();
  // Events padded to ~4 KiB so a few thousand exceed what the mock broker
  // keeps per partition (a few MiB): its oldest messages are deleted.
  const std::string padding(4000, 'x');
  auto padded = [&](size_t n, uint64_t seed) {
    std::vector<std::pair<std::string, std::string>> records;
    for (v1::InteractionEvent e : SampleEvents(n, seed)) {
      (*e.mutable_properties())["padding"] = padding;
      records.emplace_back(e.identities().user_id(), e.SerializeAsString());
    }
    return records;
  };
  testing::TempDir dir;
  const auto first = padded(50, 1);
  testing::ProduceRecords(bootstrap, "events", first);
  {
    testing::PipelineRunner runner(dir.Sub("store"), ExactOptions(), {"events"}, bootstrap, bootstrap);
    REQUIRE(testing::WaitUntil([&] { return runner.metrics().ConsumedTotal() == first.size(); }));
    runner.Stop();
  }
  // While profiled is away, far more arrives than the broker retains.
  const auto second = padded(3000, 2);
  testing::ProduceRecords(bootstrap, "events", second);
  testing::PipelineRunner runner(dir.Sub("store"), ExactOptions(), {"events"}, bootstrap, bootstrap);
  REQUIRE(testing::WaitUntil([&] { return runner.metrics().input_offset_resets.Value() >= 1; }));
  // It resumes at the oldest retained message (not the end): what is left is consumed.
  const size_t retained = testing::ReadTopicToEnd(bootstrap, "events").size();
  REQUIRE(retained > 0);
  REQUIRE(testing::WaitUntil(
      [&] { return runner.metrics().ConsumedTotal() == static_cast<double>(retained); }));
  const double consumed = runner.metrics().ConsumedTotal();
  INFO("consumed after the reset: " << consumed);
  CHECK(consumed > 0);
  CHECK(consumed < static_cast<double>(second.size()));  // the deleted ones are gone
  CHECK(runner.metrics().input_offset_resets.Value() == 1);
  runner.Stop();
}

TEST_CASE("a person's events arriving within output.max_delay publish one update, not one each",
          "[integration]") {
  const auto cluster = StartCluster(1, /*dead_letters=*/false);
  const std::string bootstrap = cluster->bootstrap();
  constexpr int kEvents = 5;
  // One event every 300 ms, each its own produce: without gathering each
  // is a batch of its own.
  auto trickle = [&](const std::string& user, int64_t first_ms) {
    for (int i = 0; i < kEvents; ++i) {
      testing::ProduceEvents(bootstrap, "events",
                             {testing::MakeEvent(absl::StrCat(user, "-", i), "product_viewed",
                                                 first_ms + i * 1000, user, "shoes")});
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  };
  auto updates_for = [&](int max_delay_ms, const std::string& user) {
    pipeline::PipelineOptions options = ExactOptions();
    options.max_delay_ms = max_delay_ms;
    // A full batch ends the gathering: the long window below never slows
    // the test, and producing on a loaded machine cannot outlast it.
    options.batch_max_events = kEvents;
    testing::TempDir dir;
    testing::PipelineRunner runner(dir.Sub("store"), options, {"events"}, bootstrap, bootstrap);
    // Assigned and idle before the first event, so the gathering starts with it.
    REQUIRE(testing::WaitUntil([&] { return runner.ready(); }));
    trickle(user, 1'700'000'000'000);
    REQUIRE(testing::WaitUntil([&] {
      return runner.metrics().applied.Value() == kEvents && runner.store().OutboxDepth() == 0;
    }));
    const double enqueued = runner.metrics().updates_enqueued.Value();
    runner.Stop();
    return enqueued;
  };
  SECTION("gathering for 10 s: the five events are one batch and one update") {
    CHECK(updates_for(10'000, "gathered") == 1);
  }
  SECTION("without gathering: an update per event") {
    CHECK(updates_for(0, "each") == kEvents);
  }
}

}  // namespace
}  // namespace profiled
