#include "support/partitioned_instance.h"

#include <cstdio>
#include <cstdlib>

#include "profiled/cluster/changelog.h"
#include "profiled/cluster/protocol_codec.h"
#include "support/kafka_harness.h"
#include "support/people.h"
#include "support/test_support.h"

namespace profiled::testing {

std::unique_ptr<kafka::MockCluster> PartitionedCluster(int32_t input_partitions,
                                                       int32_t partitions) {
  auto started = kafka::MockCluster::Start(1);
  REQUIRE_OK(started.status());
  std::unique_ptr<kafka::MockCluster> cluster = std::move(*started);
  REQUIRE_OK(cluster->CreateTopic("events", input_partitions));
  REQUIRE_OK(cluster->CreateTopic("profiled.repartition", partitions));
  REQUIRE_OK(cluster->CreateTopic("profiled.changelog", partitions));
  REQUIRE_OK(cluster->CreateTopic("updates", input_partitions));
  REQUIRE_OK(cluster->CreateTopic("deadletters", 1));
  REQUIRE_OK(cluster->CreateTopic("profiled.members", 1));
  return cluster;
}

std::map<std::string, cluster::Slot> NewestSlots(const std::string& bootstrap,
                                                 std::map<std::string, std::string>* states) {
  std::map<std::string, std::string> newest;
  for (const kafka::ConsumedMessage& m : ReadTopicToEnd(bootstrap, "profiled.changelog")) {
    if (m.key() != cluster::kMarkerKey) newest[std::string(m.key())] = std::string(m.payload());
  }
  std::map<std::string, cluster::Slot> slots;
  for (const auto& [key, bytes] : newest) {
    std::string state;
    absl::StatusOr<cluster::Slot> slot = cluster::ParseSlot(bytes, &state);
    REQUIRE(slot.ok());
    slots[key] = *slot;
    if (states != nullptr) (*states)[key] = state;
  }
  return slots;
}

PartitionedInstance::PartitionedInstance(
    const std::string& bootstrap, const std::string& store_path, int32_t partitions,
    const std::function<void(pipeline::PartitionedOptions&)>& adjust) {
  pipeline::PartitionedOptions o;
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
  o.runtime.pipeline = EquivalenceOptions();
  o.partitions = partitions;
  if (adjust) adjust(o);
  auto started = pipeline::PartitionedRuntime::Start(o, metrics_.registry(), wall_);
  REQUIRE_OK(started.status());
  runtime_ = std::move(*started);
  Resume();
}

double PartitionedInstance::Metric(const std::string& name, const std::string& labels) const {
  return labels.empty() ? MetricIn(metrics_.RenderText(), name)
                        : MetricValue(metrics_.RenderText(), name, labels);
}

bool PartitionedInstance::WaitApplied(double applied) {
  return WaitUntil(
      [&] {
        return Metric("profiled_events_applied_total") >= applied &&
               Metric("profiled_outbox_depth") == 0;
      },
      std::chrono::seconds(90));
}

void PartitionedInstance::Pause() {
  stop_ = true;
  if (loop_.joinable()) loop_.join();
}

void PartitionedInstance::Resume() {
  stop_ = false;
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

void PartitionedInstance::Stop() {
  if (runtime_ == nullptr) return;
  Pause();
  runtime_->Shutdown(absl::Seconds(10));
  runtime_.reset();
}

}  // namespace profiled::testing
