// Partitioned mode with a failing disk: a partition whose store cannot
// commit is restored from its changelog, store_failed says so meanwhile,
// and every person ends as a single-mode run builds them — each event
// applied once, nothing lost — with their final state last on the output.
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "profiled/base/failpoint.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/v1/profile_update.pb.h"
#include "support/kafka_harness.h"
#include "support/partitioned_instance.h"
#include "support/people.h"
#include "support/test_support.h"

namespace profiled::pipeline {
namespace {

constexpr int64_t T0 = 1'700'000'000'000;
constexpr int32_t kPartitions = 4;

std::vector<std::pair<std::string, std::string>> Records(
    const std::vector<v1::InteractionEvent>& events, size_t from, size_t to) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = from; i < to; ++i) {
    out.emplace_back(absl::StrCat("k", i % 13), events[i].SerializeAsString());
  }
  return out;
}

TEST_CASE(
    "partitioned: RocksDB writes failing mid-run restore the partition from its changelog, and "
    "every person ends as single mode's, each event applied once",
    "[integration][partitioned][faults]") {
  std::unique_ptr<kafka::MockCluster> cluster = testing::PartitionedCluster(2, kPartitions);
  REQUIRE_OK(cluster->CreateTopic("reference", 2));
  const std::string bootstrap = cluster->bootstrap();
  std::mt19937_64 rng(23);
  const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, 8, 160, T0);
  // The reference first, on a topic of its own: the failpoint is the
  // process's, and must hit only the partitioned instance.
  testing::ProduceRecords(bootstrap, "reference", Records(events, 0, events.size()));
  testing::TempDir dir;
  const std::map<std::string, core::Profile> reference = testing::SingleModeReference(
      bootstrap, "reference", testing::EquivalenceOptions(), events.size(), dir.Sub("single"));

  testing::PartitionedInstance instance(bootstrap, dir.Sub("partitioned"), kPartitions);
  const size_t half = events.size() / 2;
  testing::ProduceRecords(bootstrap, "events", Records(events, 0, half));
  REQUIRE(instance.WaitApplied(static_cast<double>(half)));
  const double restores = instance.Metric("profiled_partition_restores_total");
  CHECK(restores == kPartitions);

  // Three commits in a row fail: a batch's, then the restore's own.
  profiled::internal::ArmFailpointErrors("store_write", 3);
  testing::ProduceRecords(bootstrap, "events", Records(events, half, events.size()));
  bool converged = false;
  const std::map<std::string, core::Profile> got = testing::WaitForChangelogVersions(
      bootstrap, "profiled.changelog", reference, std::chrono::seconds(120), &converged);
  profiled::internal::ArmFailpointErrors("store_write", 0);
  CHECK(converged);
  testing::CheckSamePeople(got, reference, testing::EquivalenceOptions().scoring,
                           T0 + 200 * 60'000);
  CHECK(instance.Metric("profiled_partition_restores_total") > restores);  // it was restored
  CHECK(testing::WaitUntil(
      [&] {
        return instance.Metric("profiled_fault", "reason=\"store_failed\"") == 0 &&
               instance.Metric("profiled_outbox_depth") == 0;
      },
      std::chrono::seconds(30)));
  instance.Stop();

  // Each person's last update on the output carries their final version.
  std::map<std::string, uint64_t> last;
  for (const kafka::ConsumedMessage& m : testing::ReadTopicToEnd(bootstrap, "updates")) {
    v1::ProfileUpdate u;
    if (m.tombstone() ||
        !u.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())) ||
        !u.merged_into().empty()) {
      continue;
    }
    last[u.profile_id()] = u.version();
  }
  for (const auto& [user, profile] : reference) {
    CAPTURE(user);
    REQUIRE(last.contains(profile.id));
    CHECK(last.at(profile.id) == profile.version);
  }
}

}  // namespace
}  // namespace profiled::pipeline
