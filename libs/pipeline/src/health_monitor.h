// HealthMonitor: the thread that keeps Health true while the batch loop is
// busy or blocked — it asks the brokers for the assigned partitions'
// high watermarks (every 2 s, and at once when the assignment changes,
// from a client of its own) and evaluates Health twice a second. Private
// to the pipeline; both runtimes run one.
//
//   ASSIGN_OR_RETURN(auto monitor, HealthMonitor::Start(health, consumer_properties,
//                                                       [&] { /* extra faults */ }));
//   monitor->Stop();   // or on destruction
#pragma once

#include <functional>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "profiled/kafka/watermarks.h"
#include "profiled/pipeline/health.h"

namespace profiled::pipeline::internal {

class HealthMonitor {
 public:
  // `before_evaluate` (may be empty) runs on the monitor thread before
  // each evaluation, e.g. to set or clear a fault of its own.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HealthMonitor>> Start(
      Health& health, const kafka::Properties& properties, std::function<void()> before_evaluate);
  ~HealthMonitor() { Stop(); }
  void Stop();

 private:
  HealthMonitor(Health& health, std::unique_ptr<kafka::WatermarkReader> watermarks,
                std::function<void()> before_evaluate)
      : health_(health),
        watermarks_(std::move(watermarks)),
        before_evaluate_(std::move(before_evaluate)) {}
  void Run();

  Health& health_;
  std::unique_ptr<kafka::WatermarkReader> watermarks_;
  std::function<void()> before_evaluate_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace profiled::pipeline::internal
