// Partitioned mode through the broker: three instances in one consumer
// group over 12 repartition partitions end with the people a single-mode
// run builds from the same input — read back from the changelog, as a new
// owner would restore them.
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "profiled/cluster/changelog.h"
#include "profiled/cluster/protocol_codec.h"
#include "profiled/codec/state_codec.h"
#include "profiled/core/profile_id.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/obs/metrics.h"
#include "profiled/pipeline/partitioned_runtime.h"
#include "support/kafka_harness.h"
#include "support/people.h"
#include "support/test_support.h"

namespace profiled::pipeline {
namespace {

constexpr int64_t T0 = 1'700'000'000'000;
constexpr int32_t kPartitions = 12;

// One partitioned instance running on its own thread.
class Instance {
 public:
  Instance(const std::string& bootstrap, const std::string& store_path) {
    PartitionedOptions o;
    o.runtime.store.path = store_path;
    // A member that does not rejoin a rebalance is dropped after the session
    // timeout, and until then no one owns anything: keep it short here.
    o.runtime.consumer.properties = {{"bootstrap.servers", bootstrap},
                                     {"session.timeout.ms", "6000"},
                                     {"heartbeat.interval.ms", "500"}};
    o.runtime.consumer.group_id = "partitioned";
    o.runtime.consumer.topics = {"events"};
    o.runtime.producer_properties = {{"bootstrap.servers", bootstrap}};
    o.runtime.dead_letter_topic = "deadletters";
    o.runtime.pipeline = testing::EquivalenceOptions();
    o.partitions = kPartitions;
    auto started = PartitionedRuntime::Start(o, metrics_.registry(), wall_);
    REQUIRE_OK(started.status());
    runtime_ = std::move(*started);
    loop_ = std::thread([this] {
      while (!stop_) {
        absl::StatusOr<size_t> n = runtime_->RunOnce();
        if (!n.ok()) {
          std::fprintf(stderr, "partitioned instance failed: %s\n", n.status().ToString().c_str());
          std::abort();  // Catch2 is not thread-safe: fail loudly
        }
      }
    });
  }
  ~Instance() { Stop(); }
  void Stop() {
    if (stop_.exchange(true)) return;
    loop_.join();
    runtime_->Shutdown(absl::Seconds(10));
  }

 private:
  core::SystemClock wall_;
  obs::Metrics metrics_;
  std::unique_ptr<PartitionedRuntime> runtime_;
  std::atomic<bool> stop_{false};
  std::thread loop_;
};

TEST_CASE(
    "three partitioned instances end with a single-mode run's people: versions, counters, "
    "identities and scores",
    "[integration][partitioned][equivalence]") {
  auto started = kafka::MockCluster::Start(1);
  REQUIRE_OK(started.status());
  std::unique_ptr<kafka::MockCluster> cluster = std::move(*started);
  REQUIRE_OK(cluster->CreateTopic("events", 4));
  REQUIRE_OK(cluster->CreateTopic("profiled.repartition", kPartitions));
  REQUIRE_OK(cluster->CreateTopic("profiled.changelog", kPartitions));
  REQUIRE_OK(cluster->CreateTopic("updates", 4));
  REQUIRE_OK(cluster->CreateTopic("deadletters", 1));
  const std::string bootstrap = cluster->bootstrap();

  // A person's identities arrive on different input partitions.
  std::mt19937_64 rng(11);
  const int people = 30;
  const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, people, 600, T0);
  std::vector<std::pair<std::string, std::string>> records;
  for (const v1::InteractionEvent& e : events) {
    records.emplace_back(absl::StrCat("k", rng() % 97), e.SerializeAsString());
  }
  testing::ProduceRecords(bootstrap, "events", records);

  testing::TempDir dir;
  // The reference: single mode on the same input.
  const std::map<std::string, core::Profile> single = testing::SingleModeReference(
      bootstrap, "events", testing::EquivalenceOptions(), events.size(), dir.Sub("single"));
  REQUIRE(single.size() == static_cast<size_t>(people));

  // Three instances joining one after another: partitions move, and each
  // new owner restores what it takes from the changelog.
  std::vector<std::unique_ptr<Instance>> instances;
  for (int i = 0; i < 3; ++i) {
    instances.push_back(std::make_unique<Instance>(bootstrap, dir.Sub(absl::StrCat("p", i))));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  }
  bool converged = false;
  const std::map<std::string, core::Profile> partitioned = testing::WaitForChangelogVersions(
      bootstrap, "profiled.changelog", single, std::chrono::seconds(120), &converged);
  for (auto& instance : instances) instance->Stop();
  CHECK(converged);
  testing::CheckSamePeople(partitioned, single, testing::EquivalenceOptions().scoring,
                           T0 + 600 * 60'000);
}

}  // namespace
}  // namespace profiled::pipeline
