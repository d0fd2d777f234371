// Zombie owners in partitioned mode, through the broker: an instance that
// lost its partitions but publishes late (a paused process resuming) must
// never leave its older state as what a restore — or compaction, which
// keeps the newest record per key whatever its epoch — finds.
//
// Owner A runs the first half of the events and leaves; owner B restores,
// claims both partitions and runs the second half; then A's changelog
// records are written again after B's claim, exactly as A's outbox would
// publish them late. B must write those keys again (the changelog's newest
// record per key ends equal to a single-mode run), a restore must skip A's
// late records and equal B's store, and a newer claim must make B stop
// writing the partition.
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "profiled/cluster/changelog.h"
#include "profiled/cluster/protocol_codec.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/kafka/partition_log.h"
#include "profiled/obs/metrics.h"
#include "profiled/pipeline/partitioned_runtime.h"
#include "support/kafka_harness.h"
#include "support/partitioned_instance.h"
#include "support/people.h"
#include "support/test_support.h"

namespace profiled::pipeline {
namespace {

constexpr int64_t T0 = 1'700'000'000'000;
constexpr int32_t kPartitions = 2;
const char* const kChangelog = "profiled.changelog";

using Owner = testing::PartitionedInstance;

struct LoggedRecord {
  std::string key;
  std::string value;
};

// Every record of changelog partition `partition`, in offset order.
std::vector<LoggedRecord> ReadChangelog(const std::string& bootstrap, int32_t partition) {
  auto log = kafka::PartitionLog::Open({{"bootstrap.servers", bootstrap}}, kChangelog, partition);
  REQUIRE_OK(log.status());
  auto range = (*log)->Range(5000);
  REQUIRE_OK(range.status());
  std::vector<LoggedRecord> records;
  REQUIRE_OK((*log)->Read(range->low, range->high, 10'000, [&](const kafka::LogRecord& r) {
    if (r.value.has_value()) records.push_back({std::string(r.key), std::string(*r.value)});
    return absl::OkStatus();
  }));
  return records;
}

TEST_CASE(
    "a zombie's late changelog records are skipped by a restore and written over by the owner, "
    "and a newer claim stops the owner writing",
    "[integration][partitioned][zombie]") {
  std::unique_ptr<kafka::MockCluster> cluster = testing::PartitionedCluster(2, kPartitions);
  const std::string bootstrap = cluster->bootstrap();

  std::mt19937_64 rng(29);
  const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, 12, 240, T0);
  auto produce = [&](size_t from, size_t to) {
    std::vector<std::pair<std::string, std::string>> records;
    for (size_t i = from; i < to; ++i) {
      records.emplace_back(absl::StrCat("k", rng() % 31), events[i].SerializeAsString());
    }
    testing::ProduceRecords(bootstrap, "events", records);
  };
  testing::TempDir dir;

  // A runs the first half and leaves; its changelog is what it would
  // publish again as a zombie.
  produce(0, 120);
  auto a = std::make_unique<Owner>(bootstrap, dir.Sub("a"), kPartitions);
  REQUIRE(a->WaitApplied(120));
  a->Stop();
  std::vector<std::vector<LoggedRecord>> written_by_a;
  for (int32_t k = 0; k < kPartitions; ++k) written_by_a.push_back(ReadChangelog(bootstrap, k));

  // B claims both partitions and runs the second half.
  produce(120, 240);
  const std::map<std::string, core::Profile> single = testing::SingleModeReference(
      bootstrap, "events", testing::EquivalenceOptions(), events.size(), dir.Sub("single"));
  Owner b(bootstrap, dir.Sub("b"), kPartitions);
  REQUIRE(b.WaitApplied(120));

  // A's outbox, published late: every record it wrote, after B's claim.
  size_t late = 0;
  for (int32_t k = 0; k < kPartitions; ++k) {
    auto log = kafka::PartitionLog::Open({{"bootstrap.servers", bootstrap}}, kChangelog, k);
    REQUIRE_OK(log.status());
    for (const LoggedRecord& r : written_by_a[k]) {
      cluster::ChangelogMarker marker;
      if (r.key == cluster::kMarkerKey && marker.ParseFromString(r.value) && marker.claim()) {
        continue;  // a zombie writes no claims
      }
      REQUIRE_OK((*log)->Append(r.key, r.value, 5000).status());
      ++late;
    }
  }
  REQUIRE(late > 20);

  // The newest record per key (what compaction keeps) ends as single mode's people.
  bool converged = false;
  const std::map<std::string, core::Profile> compacted = testing::WaitForChangelogVersions(
      bootstrap, kChangelog, single, std::chrono::seconds(60), &converged);
  CHECK(converged);
  testing::CheckSamePeople(compacted, single, testing::EquivalenceOptions().scoring,
                           T0 + 240 * 60'000);
  CHECK(testing::WaitUntil([&] { return b.Metric("profiled_outbox_depth") == 0; }));
  CHECK(b.Metric("profiled_changelog_reasserted_total") > 0);

  // A restore of each partition now skips A's late records and equals B's store.
  b.Pause();
  for (int32_t k = 0; k < kPartitions; ++k) {
    CAPTURE(k);
    store::ProfileStore* store = b.runtime().store(k);
    REQUIRE(store != nullptr);
    auto log = kafka::PartitionLog::Open({{"bootstrap.servers", bootstrap}}, kChangelog, k);
    REQUIRE_OK(log.status());
    std::map<std::string, std::string> restored;
    auto result = cluster::RestoreChangelog(
        **log, kChangelog,
        [&](std::string_view key, std::optional<std::string_view> value) {
          restored[std::string(key)] = std::string(value.value_or(""));
          return absl::OkStatus();
        },
        nullptr, 10'000, cluster::SlotEpoch);
    REQUIRE_OK(result.status());
    CHECK(result->progress.fenced > 0);
    REQUIRE(!restored.empty());
    for (const auto& [key, value] : restored) {
      auto held = store->Get(key);
      REQUIRE_OK(held.status());
      CHECK(held->value_or("<none>") == value);
    }
    REQUIRE(result->marker.has_value());
    auto positions = store->LoadPositions();
    REQUIRE_OK(positions.status());
    REQUIRE(positions->size() == 1);
    CHECK(result->marker->next_offset() == positions->front().next_offset);
  }
  b.Resume();

  // Another instance claims partition 0 while the group still gives it to
  // B: B stops writing it at once and takes it again with a newer claim.
  int64_t claimed_at = 0;
  {
    auto log = kafka::PartitionLog::Open({{"bootstrap.servers", bootstrap}}, kChangelog, 0);
    REQUIRE_OK(log.status());
    cluster::ChangelogMarker claim;
    claim.set_claim(true);
    auto at = (*log)->Append(cluster::kMarkerKey, claim.SerializeAsString(), 5000);
    REQUIRE_OK(at.status());
    claimed_at = *at;
  }
  CHECK(testing::WaitUntil([&] { return b.Metric("profiled_partitions_superseded_total") == 1; },
                           std::chrono::seconds(30)));
  CHECK(testing::WaitUntil(
      [&] {
        return b.Metric("profiled_partition_restores_total") == kPartitions + 1 &&
               b.Metric("profiled_partitions_owned") == kPartitions;
      },
      std::chrono::seconds(30)));
  b.Pause();
  auto log = kafka::PartitionLog::Open({{"bootstrap.servers", bootstrap}}, kChangelog, 0);
  REQUIRE_OK(log.status());
  auto result = cluster::RestoreChangelog(
      **log, kChangelog,
      [](std::string_view, std::optional<std::string_view>) { return absl::OkStatus(); }, nullptr,
      10'000, cluster::SlotEpoch);
  REQUIRE_OK(result.status());
  // B's new claim is the newest: the other instance's would be fenced.
  REQUIRE(result->marker.has_value());
  CHECK(result->marker->epoch() == result->epoch);
  CHECK(result->epoch > claimed_at);
  b.Resume();
}

}  // namespace
}  // namespace profiled::pipeline
