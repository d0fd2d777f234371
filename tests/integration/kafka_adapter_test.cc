// The Kafka adapters against librdkafka's mock broker: high watermarks read
// from a client of their own, and delivery failures classified by what the
// caller can do about them (errors.h), rewinds, and where a partition with
// no committed offset starts at the latest offset.
#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include <librdkafka/rdkafkacpp.h>

#include "profiled/kafka/errors.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/kafka/producer.h"
#include "profiled/kafka/watermarks.h"
#include "support/kafka_harness.h"
#include "support/test_support.h"

namespace profiled::kafka {
namespace {

TEST_CASE("the watermark reader sees what was produced, in one round trip",
          "[integration][kafka]") {
  auto cluster = MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("events", 3));
  const std::string bootstrap = (*cluster)->bootstrap();
  std::vector<std::pair<std::string, std::string>> records;
  for (int i = 0; i < 30; ++i) records.emplace_back("k" + std::to_string(i), "v");
  testing::ProduceRecords(bootstrap, "events", records);

  auto reader = WatermarkReader::Create({{"bootstrap.servers", bootstrap}});
  REQUIRE_OK(reader.status());
  std::vector<core::PartitionKey> partitions = {
      {"events", 0}, {"events", 1}, {"events", 2}, {"events", 7}};  // the last does not exist
  const auto highs = (*reader)->HighWatermarks(partitions, 5000);
  CHECK(highs.size() == 3);
  int64_t total = 0;
  for (const auto& [p, high] : highs) total += high;
  CHECK(total == 30);
  CHECK_FALSE(highs.contains(core::PartitionKey{"events", 7}));
}

// Produces one record and returns its delivery status.
absl::Status DeliverOne(const Properties& properties, const std::string& topic,
                        const std::string& value) {
  std::atomic<bool> reported{false};
  absl::Status outcome;
  auto producer = Producer::Create(properties, [&](uint64_t, const absl::Status& s) {
    outcome = s;
    reported = true;
  });
  if (!producer.ok()) return producer.status();
  absl::Status produced = (*producer)->Produce(topic, "key", value, {}, 1);
  if (!produced.ok()) return produced;
  for (int i = 0; i < 200 && !reported; ++i) (*producer)->Poll(50);
  return reported ? outcome : absl::DeadlineExceededError("no delivery report in 10 s");
}

TEST_CASE("delivery failures say whether a retry can fix them", "[integration][kafka]") {
  auto cluster = MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("ok", 1));
  const Properties props = {{"bootstrap.servers", (*cluster)->bootstrap()},
                            {"topic.metadata.propagation.max.ms", "500"}};
  CHECK(DeliverOne(props, "ok", "fine").ok());

  // Larger than the producer accepts: refused at once, not retriable.
  const absl::Status big = DeliverOne(props, "ok", std::string(1'200'000, 'x'));
  CHECK(absl::IsOutOfRange(big));
  CHECK_FALSE(IsRetriable(big));

  // Refused by the broker: permanent, whatever else is queued.
  (*cluster)->FailNextProduces(1, MockCluster::ProduceError::kUnauthorized);
  const absl::Status denied = DeliverOne(props, "ok", "x");
  INFO(denied.ToString());
  CHECK(absl::IsPermissionDenied(denied));
  CHECK_FALSE(IsRetriable(denied));

  (*cluster)->FailNextProduces(1, MockCluster::ProduceError::kRecordTooLarge);
  const absl::Status refused_size = DeliverOne(props, "ok", "x");
  CHECK(absl::IsOutOfRange(refused_size));
  // A leader moving is transient: librdkafka retries it and delivers.
  (*cluster)->FailNextProduces(2, MockCluster::ProduceError::kNotLeader);
  CHECK(DeliverOne(props, "ok", "x").ok());

  (*cluster)->SetTopicState("absent", MockCluster::TopicState::kMissing);
  const absl::Status missing = DeliverOne(props, "absent", "x");
  INFO(missing.ToString());
  CHECK(absl::IsNotFound(missing));
  CHECK_FALSE(IsRetriable(missing));
}

}  // namespace
}  // namespace profiled::kafka

namespace profiled::kafka {
namespace {

TEST_CASE("rewinding reads again from the stored positions, or the start without one",
          "[integration][kafka]") {
  auto cluster = MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("events", 2));
  std::vector<std::pair<std::string, std::string>> records;
  for (int i = 0; i < 200; ++i) records.emplace_back("k" + std::to_string(i), std::to_string(i));
  testing::ProduceRecords((*cluster)->bootstrap(), "events", records);
  std::optional<int64_t> stored_p0;  // partition 1 never has a stored position
  ConsumerOptions options;
  options.properties = {{"bootstrap.servers", (*cluster)->bootstrap()}};
  options.group_id = "rewind-test";
  options.topics = {"events"};
  auto consumer = Consumer::Create(options, [&](const core::PartitionKey& p) {
    return p.partition == 0 ? stored_p0 : std::optional<int64_t>();
  });
  REQUIRE_OK(consumer.status());
  std::vector<ConsumedMessage> first;
  REQUIRE(testing::WaitUntil([&] {
    REQUIRE_OK((*consumer)->Poll(1000, 100, first));
    return first.size() == 200;
  }));
  stored_p0 = 10;
  REQUIRE_OK((*consumer)->Rewind());
  std::vector<ConsumedMessage> again;
  REQUIRE(testing::WaitUntil(
      [&] {
        REQUIRE_OK((*consumer)->Poll(1000, 100, again));
        return again.size() >= 190;
      },
      std::chrono::seconds(20)));
  std::map<int32_t, int64_t> lowest;
  for (const ConsumedMessage& m : again) {
    auto [it, inserted] = lowest.emplace(m.partition(), m.offset());
    if (!inserted) it->second = std::min(it->second, m.offset());
  }
  CHECK(lowest[0] == 10);
  CHECK(lowest[1] == 0);

  // With the broker gone, asking for a watermark fails within its timeout.
  absl::StatusOr<int64_t> high = (*consumer)->QueryHighWatermark({"events", 0}, 2000);
  REQUIRE_OK(high.status());
  CHECK(*high + (*(*consumer)->QueryHighWatermark({"events", 1}, 2000)) == 200);
  REQUIRE_OK((*cluster)->SetBrokerUp(1, false));
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE((*consumer)->QueryHighWatermark({"events", 0}, 1000).ok());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  REQUIRE_OK((*cluster)->SetBrokerUp(1, true));
  (*consumer)->Close();
}

TEST_CASE("a committed-offset partition starting at the latest offset pins it for its next owner",
          "[integration][kafka]") {
  auto cluster = MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("events", 1));
  const std::string bootstrap = (*cluster)->bootstrap();
  testing::ProduceRecords(bootstrap, "events", {{"old", "before the group"}});
  ConsumerOptions options;
  options.properties = {{"bootstrap.servers", bootstrap}};
  options.group_id = "latest-pin-test";
  options.properties.push_back({"session.timeout.ms", "6000"});
  options.properties.push_back({"heartbeat.interval.ms", "500"});
  options.topics = {"events"};
  options.committed_topics = {"events"};
  options.start_from_earliest = false;
  auto never = [](const core::PartitionKey&) { return std::optional<int64_t>(); };
  {
    // The first owner is assigned and leaves before consuming or committing anything.
    auto first = Consumer::Create(options, never);
    REQUIRE_OK(first.status());
    std::vector<ConsumedMessage> none;
    REQUIRE(testing::WaitUntil([&] {
      REQUIRE_OK((*first)->Poll(100, 100, none));
      return !(*first)->Assignment().empty();
    }));
    CHECK(none.empty());  // latest: the message from before the group is not read
    (*first)->Close();
  }
  // What arrives between the two owners is the next owner's to read.
  testing::ProduceRecords(bootstrap, "events", {{"a", "1"}, {"b", "2"}, {"c", "3"}});
  auto second = Consumer::Create(options, never);
  REQUIRE_OK(second.status());
  std::vector<ConsumedMessage> read;
  REQUIRE(testing::WaitUntil(
      [&] {
        REQUIRE_OK((*second)->Poll(100, 100, read));
        return read.size() >= 3;
      },
      std::chrono::seconds(30)));
  REQUIRE(read.size() == 3);
  CHECK(read[0].offset() == 1);
  CHECK(read[2].payload() == "3");
  (*second)->Close();
}

TEST_CASE("group members share the partitions and close promptly mid-rebalance, eager or cooperative",
          "[integration][kafka]") {
  for (const std::string strategy : {"range,roundrobin", "cooperative-sticky"}) {
    CAPTURE(strategy);
    if (strategy == "cooperative-sticky" && RdKafka::version() < 0x020300ff) {
      // Refused at start with this librdkafka: it would abort on close.
      ConsumerOptions refused;
      refused.properties = {{"bootstrap.servers", "localhost:9"},
                            {"partition.assignment.strategy", strategy}};
      refused.group_id = "refused";
      refused.topics = {"events"};
      const auto consumer = Consumer::Create(
          refused, [](const core::PartitionKey&) { return std::optional<int64_t>(); });
      REQUIRE_FALSE(consumer.ok());
      CHECK(absl::IsInvalidArgument(consumer.status()));
      CHECK_THAT(std::string(consumer.status().message()), Catch::Contains("#4312"));
      continue;
    }
    auto cluster = MockCluster::Start(1);
    REQUIRE_OK(cluster.status());
    REQUIRE_OK((*cluster)->CreateTopic("events", 4));
    const std::string bootstrap = (*cluster)->bootstrap();
    std::vector<std::pair<std::string, std::string>> records;
    for (int i = 0; i < 100; ++i) records.emplace_back("k" + std::to_string(i), std::to_string(i));
    testing::ProduceRecords(bootstrap, "events", records);
    ConsumerOptions options;
    options.properties = {{"bootstrap.servers", bootstrap},
                          {"session.timeout.ms", "6000"},
                          {"heartbeat.interval.ms", "500"},
                          {"partition.assignment.strategy", strategy}};
    options.group_id = "close-test";
    options.topics = {"events"};
    auto none = [](const core::PartitionKey&) { return std::optional<int64_t>(); };
    std::map<std::pair<int32_t, int64_t>, int> read;  // (partition, offset) -> times
    auto poll = [&](Consumer& c) {
      std::vector<ConsumedMessage> out;
      REQUIRE_OK(c.Poll(100, 50, out));
      for (const ConsumedMessage& m : out) ++read[{m.partition(), m.offset()}];
    };
    auto a = Consumer::Create(options, none);
    REQUIRE_OK(a.status());
    REQUIRE(testing::WaitUntil([&] {
      poll(**a);
      return (*a)->Assignment().size() == 4;
    }));
    auto b = Consumer::Create(options, none);
    REQUIRE_OK(b.status());
    REQUIRE(testing::WaitUntil(
        [&] {
          poll(**a);
          poll(**b);
          const size_t owned_a = (*a)->Assignment().size(), owned_b = (*b)->Assignment().size();
          return owned_a > 0 && owned_b > 0 && owned_a + owned_b == 4;
        },
        std::chrono::seconds(30)));
    REQUIRE(testing::WaitUntil(
        [&] {
          poll(**a);
          poll(**b);
          return read.size() == 100;
        },
        std::chrono::seconds(30)));
    // A third member joins and the others close without serving the
    // rebalance it started: each close returns on its own.
    auto c = Consumer::Create(options, none);
    REQUIRE_OK(c.status());
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    for (Consumer* member : {a->get(), b->get(), c->get()}) {
      const auto start = std::chrono::steady_clock::now();
      member->Close();
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
    }
    CHECK(read.size() == 100);
  }
}

}  // namespace
}  // namespace profiled::kafka

namespace profiled::kafka {
namespace {

TEST_CASE("a gathering poll waits after its first message for more and no longer",
          "[integration][kafka]") {
  auto cluster = MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("events", 1));
  const std::string bootstrap = (*cluster)->bootstrap();
  ConsumerOptions options;
  options.properties = {{"bootstrap.servers", bootstrap}, {"fetch.wait.max.ms", "5"}};
  options.group_id = "gather-test";
  options.topics = {"events"};
  auto consumer = Consumer::Create(
      options, [](const core::PartitionKey&) { return std::optional<int64_t>(); });
  REQUIRE_OK(consumer.status());
  // Assigned and fetching: a first record is read, so later ones arrive
  // within a fetch wait of being produced.
  testing::ProduceRecords(bootstrap, "events", {{"k", "warm-up"}});
  std::vector<ConsumedMessage> out;
  REQUIRE(testing::WaitUntil([&] {
    REQUIRE_OK((*consumer)->Poll(10, 50, out));
    return !out.empty();
  }));
  out.clear();
  using Clock = std::chrono::steady_clock;
  // A poll on its own thread (the test thread produces and asserts); records
  // "0" and "1" are produced `first_ms` and `first_ms + gap_ms` after it starts.
  struct Polled {
    absl::Status status;
    std::vector<ConsumedMessage> messages;
    Clock::duration took{};
  };
  auto poll_while_producing = [&](size_t max, int gather_ms, int first_ms, int gap_ms) {
    Polled polled;
    const Clock::time_point start = Clock::now();
    std::jthread poller([&] {  // joined on the way out, whatever fails
      polled.status = (*consumer)->Poll(max, 10'000, gather_ms, polled.messages);
      polled.took = Clock::now() - start;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(first_ms));
    testing::ProduceRecords(bootstrap, "events", {{"k", "0"}});
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
    testing::ProduceRecords(bootstrap, "events", {{"k", "1"}});
    poller.join();
    return polled;
  };

  SECTION("without gathering, a poll returns what is fetched at once") {
    const Polled p = poll_while_producing(10, /*gather_ms=*/0, 0, 1500);
    REQUIRE_OK(p.status);
    CHECK(p.messages.size() == 1);
    CHECK(p.took < std::chrono::milliseconds(1400));
  }
  SECTION("a message arriving within the gather time joins the batch") {
    const Polled p = poll_while_producing(10, /*gather_ms=*/3000, 0, 1500);
    REQUIRE_OK(p.status);
    REQUIRE(p.messages.size() == 2);
    CHECK(p.messages[0].payload() == "0");
    CHECK(p.messages[1].payload() == "1");
  }
  SECTION("the gather time is counted from the first message, not from the poll") {
    // Counted from the poll, 1.5 s would be over before record 0 came (2 s
    // in); from record 0 it leaves ample room for record 1 on a busy machine.
    const Polled p = poll_while_producing(10, /*gather_ms=*/1500, 2000, 200);
    REQUIRE_OK(p.status);
    REQUIRE(p.messages.size() == 2);
    CHECK(p.messages[1].payload() == "1");
  }
  SECTION("a message arriving after the gather time waits for the next poll") {
    const Polled p = poll_while_producing(10, /*gather_ms=*/100, 0, 1500);
    REQUIRE_OK(p.status);
    CHECK(p.messages.size() == 1);
    CHECK(p.took >= std::chrono::milliseconds(100));
    CHECK(p.took < std::chrono::milliseconds(1400));
  }
  SECTION("a full batch returns without waiting out the gather time") {
    const Polled p = poll_while_producing(1, /*gather_ms=*/3000, 0, 1500);
    REQUIRE_OK(p.status);
    CHECK(p.messages.size() == 1);
    CHECK(p.took < std::chrono::milliseconds(1400));
  }
}

}  // namespace
}  // namespace profiled::kafka
