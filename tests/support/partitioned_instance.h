// One partitioned-mode instance for tests through the broker: a
// PartitionedRuntime in the group "partitioned", consuming topic "events",
// writing "updates" and "deadletters", polled on a thread of its own
// (between Pause() and Resume() the test may read its stores).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "profiled/cluster/identity_protocol.h"
#include "profiled/core/clock.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/obs/metrics.h"
#include "profiled/pipeline/partitioned_runtime.h"

namespace profiled::testing {

// A mock cluster with the topics a PartitionedInstance uses: "events" and
// "updates" with `input_partitions`, the internal topics with `partitions`.
std::unique_ptr<kafka::MockCluster> PartitionedCluster(int32_t input_partitions,
                                                       int32_t partitions);

// The newest record of each slot key on "profiled.changelog" (what a
// restore rebuilds), and each slot's state bytes into `states` when given.
std::map<std::string, cluster::Slot> NewestSlots(
    const std::string& bootstrap, std::map<std::string, std::string>* states = nullptr);

class PartitionedInstance {
 public:
  // `partitions` of the internal topics; equivalence options (people.h),
  // then `adjust` applied to them.
  PartitionedInstance(const std::string& bootstrap, const std::string& store_path,
                      int32_t partitions,
                      const std::function<void(pipeline::PartitionedOptions&)>& adjust = nullptr);
  ~PartitionedInstance() { Stop(); }

  // The first sample of a metric of this instance whose line contains
  // `labels` (e.g. `reason="store_failed"`), or -1.
  double Metric(const std::string& name, const std::string& labels = "") const;
  // Until `applied` events were applied here and everything is published.
  bool WaitApplied(double applied);
  void Pause();
  void Resume();
  // Publishes what it holds and leaves the group. Idempotent.
  void Stop();
  pipeline::PartitionedRuntime& runtime() { return *runtime_; }

 private:
  core::SystemClock wall_;
  obs::Metrics metrics_;
  std::unique_ptr<pipeline::PartitionedRuntime> runtime_;
  std::atomic<bool> stop_{false};
  std::thread loop_;
};

}  // namespace profiled::testing
