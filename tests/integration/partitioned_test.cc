// Partitioned mode through the broker: three instances in one consumer
// group over 12 repartition partitions end with the people a single-mode
// run builds from the same input — read back from the changelog, as a new
// owner would restore them.
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "profiled/cluster/changelog.h"
#include "profiled/cluster/protocol_codec.h"
#include "profiled/codec/state_codec.h"
#include "profiled/core/profile_id.h"
#include "profiled/internal/v1/routing.pb.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/obs/metrics.h"
#include "profiled/pipeline/partitioned_runtime.h"
#include "profiled/v1/profile_update.pb.h"
#include "support/kafka_harness.h"
#include "support/partitioned_instance.h"
#include "support/people.h"
#include "support/test_support.h"

namespace profiled::pipeline {
namespace {

constexpr int64_t T0 = 1'700'000'000'000;
constexpr int32_t kPartitions = 12;

// Whether `group` has committed every partition of `topic` up to its end,
// read from the group coordinator without joining the group.
bool CommittedToEnd(const std::string& bootstrap, const std::string& group,
                    const std::string& topic, int32_t partitions) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  conf->set("bootstrap.servers", bootstrap, err);
  conf->set("group.id", group, err);
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
  REQUIRE(c != nullptr);
  std::vector<RdKafka::TopicPartition*> parts;
  for (int32_t p = 0; p < partitions; ++p)
    parts.push_back(RdKafka::TopicPartition::create(topic, p));
  bool at_end = c->committed(parts, 5000) == RdKafka::ERR_NO_ERROR;
  for (RdKafka::TopicPartition* tp : parts) {
    int64_t low = 0, high = 0;
    at_end = at_end && c->query_watermark_offsets(topic, tp->partition(), &low, &high, 5000) ==
                           RdKafka::ERR_NO_ERROR;
    at_end = at_end && tp->offset() == high;
  }
  RdKafka::TopicPartition::destroy(parts);
  c->close();
  return at_end;
}

TEST_CASE(
    "three partitioned instances end with a single-mode run's people: versions, counters, "
    "identities and scores",
    "[integration][partitioned][equivalence]") {
  std::unique_ptr<kafka::MockCluster> cluster = testing::PartitionedCluster(4, kPartitions);
  const std::string bootstrap = cluster->bootstrap();

  // A person's identities arrive on different input partitions.
  std::mt19937_64 rng(11);
  const int people = 30;
  const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, people, 600, T0);
  std::vector<std::pair<std::string, std::string>> records;
  for (const v1::InteractionEvent& e : events) {
    records.emplace_back(absl::StrCat("k", rng() % 97), e.SerializeAsString());
  }
  const int64_t produced_from_ms = absl::ToUnixMillis(absl::Now());
  testing::ProduceRecords(bootstrap, "events", records);
  const int64_t produced_until_ms = absl::ToUnixMillis(absl::Now());

  testing::TempDir dir;
  // The reference: single mode on the same input.
  const std::map<std::string, core::Profile> single = testing::SingleModeReference(
      bootstrap, "events", testing::EquivalenceOptions(), events.size(), dir.Sub("single"));
  REQUIRE(single.size() == static_cast<size_t>(people));

  // Three instances joining one after another: partitions move, and each
  // new owner restores what it takes from the changelog.
  std::vector<std::unique_ptr<testing::PartitionedInstance>> instances;
  for (int i = 0; i < 3; ++i) {
    instances.push_back(std::make_unique<testing::PartitionedInstance>(
        bootstrap, dir.Sub(absl::StrCat("p", i)), kPartitions));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  }
  bool converged = false;
  const std::map<std::string, core::Profile> partitioned = testing::WaitForChangelogVersions(
      bootstrap, "profiled.changelog", single, std::chrono::seconds(120), &converged);
  // Caught up, the partitions run on wall time, years past these events:
  // the carts and sessions turn (timers) before the instances stop.
  CHECK(testing::WaitUntil(
      [&] {
        double fired = 0;
        for (const auto& i : instances)
          fired += std::max(0.0, i->Metric("profiled_timers_fired_total"));
        return fired > 0;
      },
      std::chrono::seconds(30)));
  for (auto& instance : instances) instance->Stop();
  CHECK(converged);
  testing::CheckSamePeople(partitioned, single, testing::EquivalenceOptions().scoring,
                           T0 + 600 * 60'000);

  // Updates carry their input's Kafka timestamp across the repartition hop
  // (the event->publish latency metric reads it).
  size_t stamped = 0, updates = 0, timed = 0;
  std::map<std::string, uint64_t> versions;  // the last version seen of each profile
  for (const kafka::ConsumedMessage& m : testing::ReadTopicToEnd(bootstrap, "updates")) {
    v1::ProfileUpdate update;
    if (m.tombstone() ||
        !update.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())) ||
        !update.merged_into().empty()) {
      continue;  // tombstones and merge notices have no input behind them
    }
    uint64_t& last = versions[update.profile_id()];
    if (update.version() == last) {
      // Same version again: a timer's (caught up, the partitions run on
      // wall time, far past these events: no input behind it), or a
      // batch published again after a move.
      if (!m.header("profiled.source_time_ms").has_value()) ++timed;
      continue;
    }
    last = update.version();
    ++updates;
    const std::optional<std::string_view> source = m.header("profiled.source_time_ms");
    if (!source.has_value()) continue;
    ++stamped;
    const int64_t ms = std::stoll(std::string(*source));
    CHECK(ms >= produced_from_ms - 1000);
    CHECK(ms <= produced_until_ms + 1000);
  }
  CHECK(updates > 0);
  CHECK(timed > 0);  // published, after the instances' last batches
  CAPTURE(stamped, updates, timed);
  // Updates made only by a shipment or a membership change from another
  // partition have no input of their batch behind them (about 40% here).
  CHECK(stamped * 2 >= updates);
}

TEST_CASE(
    "an input partition that moves resumes at the group's committed offset, a repartition "
    "partition given back resumes from the store kept unless another owner wrote it meanwhile: "
    "nothing routed or applied twice or skipped",
    "[integration][partitioned]") {
  std::unique_ptr<kafka::MockCluster> cluster = testing::PartitionedCluster(4, 4);
  const std::string bootstrap = cluster->bootstrap();
  std::mt19937_64 rng(7);
  const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, 20, 400, T0);
  auto produce = [&](size_t from, size_t to) {
    testing::ProduceSpread(bootstrap, "events", events, from, to, rng);
  };
  produce(0, 200);
  testing::TempDir dir;
  std::vector<std::unique_ptr<testing::PartitionedInstance>> instances;
  auto sum = [&](const std::string& metric) {
    double total = 0;
    for (const auto& i : instances) total += std::max(0.0, i->Metric(metric));
    return total;
  };
  instances.push_back(std::make_unique<testing::PartitionedInstance>(bootstrap, dir.Sub("a"), 4));
  REQUIRE(instances[0]->WaitApplied(200));
  REQUIRE(testing::WaitUntil([&] { return CommittedToEnd(bootstrap, "partitioned", "events", 4); },
                             std::chrono::seconds(30)));
  // A second instance: the group moves input partitions (and, eager, takes
  // and gives back the first one's too).
  instances.push_back(std::make_unique<testing::PartitionedInstance>(bootstrap, dir.Sub("b"), 4));
  REQUIRE(testing::WaitUntil(
      [&] {
        return instances[1]->Metric("profiled_partitions_owned") > 0 &&
               sum("profiled_partitions_owned") == 4;
      },
      std::chrono::seconds(60)));
  produce(200, 300);
  REQUIRE(testing::WaitUntil(
      [&] {
        return sum("profiled_events_applied_total") >= 300 && sum("profiled_outbox_depth") == 0;
      },
      std::chrono::seconds(60)));
  // The second instance leaves: the two partitions it had, still parked
  // on the first but written by the second since, must be restored (a
  // reuse would miss what the second applied: the comparison with single
  // mode below fails); the first's own, taken and given back by each
  // eager rebalance, are reused when their changelog ends with the
  // store's last marker (not when a timer's update was still unpublished
  // at the revoke: then restored).
  const double restores_before = instances[0]->Metric("profiled_partition_restores_total");
  instances[1]->Stop();
  REQUIRE(testing::WaitUntil([&] { return instances[0]->Metric("profiled_partitions_owned") == 4; },
                             std::chrono::seconds(60)));
  CHECK(instances[0]->Metric("profiled_partition_restores_total") >= restores_before + 2);
  CHECK(instances[0]->Metric("profiled_partition_reuses_total") >= 1);
  produce(300, 400);
  const std::map<std::string, core::Profile> single = testing::SingleModeReference(
      bootstrap, "events", testing::EquivalenceOptions(), events.size(), dir.Sub("single"));
  bool converged = false;
  const std::map<std::string, core::Profile> partitioned = testing::WaitForChangelogVersions(
      bootstrap, "profiled.changelog", single, std::chrono::seconds(60), &converged);
  CHECK(converged);
  testing::CheckSamePeople(partitioned, single, testing::EquivalenceOptions().scoring,
                           T0 + 400 * 60'000);
  for (auto& instance : instances) instance->Stop();
  // Each input event routed exactly once: before, a moved input partition
  // restarted at the topic's start (re-routed, skipped downstream as
  // re-sends), or with initial_position latest at its end (lost).
  size_t routed = 0;
  for (const kafka::ConsumedMessage& m :
       testing::ReadTopicToEnd(bootstrap, "profiled.repartition")) {
    ::profiled::internal::v1::RepartitionRecord r;
    REQUIRE(r.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())));
    if (r.protocol().kind() == ::profiled::internal::v1::ProtocolRecord::EVENT) ++routed;
  }
  CHECK(routed == events.size());
}

TEST_CASE(
    "routing far ahead of applying pauses the input until the owned partitions catch up, and "
    "every event is applied",
    "[integration][partitioned][backpressure]") {
  std::unique_ptr<kafka::MockCluster> cluster = testing::PartitionedCluster(2, 2);
  const std::string bootstrap = cluster->bootstrap();
  // A backlog; routing allowed only 50 records ahead of applying, and 100
  // records a poll, so the consumer holds fetched records the owner has not
  // run yet whatever the machine's speed.
  std::mt19937_64 rng(3);
  const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, 200, 4'000, T0);
  std::vector<std::pair<std::string, std::string>> records;
  records.reserve(events.size());
  for (const v1::InteractionEvent& e : events) {
    records.emplace_back(absl::StrCat("k", rng() % 97), e.SerializeAsString());
  }
  testing::ProduceRecords(bootstrap, "events", records);

  testing::TempDir dir;
  testing::PartitionedInstance instance(bootstrap, dir.Sub("p"), 2, [](PartitionedOptions& o) {
    o.max_run_ahead = 50;
    o.runtime.pipeline.batch_max_events = 100;
  });
  bool paused = false;
  const bool applied = testing::WaitUntil(
      [&] {
        paused = paused || instance.Metric("profiled_consumption_paused") == 1;
        return instance.Metric("profiled_events_applied_total") >= events.size();
      },
      std::chrono::seconds(120));
  CHECK(paused);
  CHECK(applied);
  CHECK(testing::WaitUntil([&] { return instance.Metric("profiled_consumption_paused") == 0; }));
  CHECK(instance.Metric("profiled_input_offset_resets_total") <= 0);
}

}  // namespace
}  // namespace profiled::pipeline
