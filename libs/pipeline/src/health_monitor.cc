#include "health_monitor.h"

#include <algorithm>

#include "profiled/base/status_macros.h"

namespace profiled::pipeline::internal {

absl::StatusOr<std::unique_ptr<HealthMonitor>> HealthMonitor::Start(
    Health& health, const kafka::Properties& properties, std::function<void()> before_evaluate) {
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::WatermarkReader> watermarks,
                   kafka::WatermarkReader::Create(properties));
  std::unique_ptr<HealthMonitor> m(
      new HealthMonitor(health, std::move(watermarks), std::move(before_evaluate)));
  m->thread_ = std::thread([raw = m.get()] { raw->Run(); });
  return m;
}

void HealthMonitor::Stop() {
  if (!thread_.joinable()) return;
  stop_.Notify();
  thread_.join();
}

void HealthMonitor::Run() {
  absl::Time next_query = absl::InfinitePast();
  std::vector<core::PartitionKey> asked;
  do {
    std::vector<core::PartitionKey> assigned = health_.Assigned();
    std::sort(assigned.begin(), assigned.end());
    // Every 2 s, and at once when the assignment changes.
    if (absl::Now() >= next_query || assigned != asked) {
      health_.ReportHighWatermarks(assigned, watermarks_->HighWatermarks(assigned, 3000));
      next_query = absl::Now() + absl::Seconds(2);
      asked = std::move(assigned);
    }
    if (before_evaluate_) before_evaluate_();
    health_.Evaluate();
  } while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(500)));
}

}  // namespace profiled::pipeline::internal
