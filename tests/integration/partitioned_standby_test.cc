// Standby replicas through the broker: with cluster.standby_replicas 1 each
// of two instances keeps warm copies of the other's partitions, folded from
// the changelog as a restore would; when one leaves, the other takes its
// partitions from those copies (reading only what was written since) and
// the run still ends equal to single mode's.
#include <random>

#include "absl/strings/str_cat.h"
#include "profiled/kafka/mock_cluster.h"
#include "support/kafka_harness.h"
#include "support/partitioned_instance.h"
#include "support/people.h"
#include "support/test_support.h"

namespace profiled::pipeline {
namespace {

constexpr int64_t T0 = 1'700'000'000'000;

TEST_CASE(
    "a member that leaves hands its partitions to the other member's warm copies: no restore, "
    "and the people equal a single-mode run's",
    "[integration][partitioned][standby]") {
  std::unique_ptr<kafka::MockCluster> cluster = testing::PartitionedCluster(4, 4);
  const std::string bootstrap = cluster->bootstrap();
  std::mt19937_64 rng(23);
  const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, 20, 400, T0);
  auto produce = [&](size_t from, size_t to) {
    testing::ProduceSpread(bootstrap, "events", events, from, to, rng);
  };
  auto standby = [](PartitionedOptions& o) { o.standby_replicas = 1; };
  testing::TempDir dir;
  produce(0, 150);
  auto a = std::make_unique<testing::PartitionedInstance>(bootstrap, dir.Sub("a"), 4, standby);
  REQUIRE(a->WaitApplied(150));
  // Alone, it owns everything and stands by for nothing.
  CHECK(a->Metric("profiled_standby_partitions") == 0);
  auto b = std::make_unique<testing::PartitionedInstance>(bootstrap, dir.Sub("b"), 4, standby);
  auto settled = [&] {
    return a->Metric("profiled_partitions_owned") + b->Metric("profiled_partitions_owned") == 4 &&
           b->Metric("profiled_partitions_owned") > 0 &&
           a->Metric("profiled_standby_partitions") == b->Metric("profiled_partitions_owned") &&
           b->Metric("profiled_standby_partitions") == a->Metric("profiled_partitions_owned");
  };
  REQUIRE(testing::WaitUntil(settled, std::chrono::seconds(60)));
  produce(150, 300);
  REQUIRE(testing::WaitUntil(
      [&] {
        return a->Metric("profiled_events_applied_total") +
                       b->Metric("profiled_events_applied_total") >=
                   300 &&
               a->Metric("profiled_outbox_depth") + b->Metric("profiled_outbox_depth") == 0;
      },
      std::chrono::seconds(60)));
  // The copies read everything the owners wrote.
  REQUIRE(testing::WaitUntil(
      [&] {
        return a->Metric("profiled_standby_lag_offsets") == 0 &&
               a->Metric("profiled_standby_records_total") > 0;
      },
      std::chrono::seconds(30)));
  const double b_owned = b->Metric("profiled_partitions_owned");
  const double restores_before = a->Metric("profiled_partition_restores_total");
  const double takeovers_before = a->Metric("profiled_partition_standby_takeovers_total");
  b->Stop();
  REQUIRE(testing::WaitUntil([&] { return a->Metric("profiled_partitions_owned") == 4; },
                             std::chrono::seconds(60)));
  // Every partition b had came from a warm copy (a's own come back from
  // their kept stores or, unpublished at the revoke, a restore).
  CHECK(a->Metric("profiled_partition_standby_takeovers_total") - takeovers_before == b_owned);
  CHECK(a->Metric("profiled_partition_restores_total") - restores_before <= 4 - b_owned);
  // Alone again: its copies were taken or dropped.
  CHECK(testing::WaitUntil([&] { return a->Metric("profiled_standby_partitions") == 0; },
                           std::chrono::seconds(30)));
  // These apply on top of the taken copies: a copy that had missed or
  // doubled a record would put a wrong version on the changelog.
  produce(300, 400);
  const std::map<std::string, core::Profile> single = testing::SingleModeReference(
      bootstrap, "events", testing::EquivalenceOptions(), events.size(), dir.Sub("single"));
  bool converged = false;
  const std::map<std::string, core::Profile> partitioned = testing::WaitForChangelogVersions(
      bootstrap, "profiled.changelog", single, std::chrono::seconds(60), &converged);
  CHECK(converged);
  testing::CheckSamePeople(partitioned, single, testing::EquivalenceOptions().scoring,
                           T0 + 400 * 60'000);
  a->Stop();
}

}  // namespace
}  // namespace profiled::pipeline
