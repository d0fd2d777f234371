#include "batch_work.h"

namespace profiled::pipeline::internal {

void BatchCounts::RecordIn(PipelineMetrics& metrics) const {
  for (const auto& [counter, n] : consumed) counter->Increment(static_cast<double>(n));
  for (ingest::RejectReason r : reasons) metrics.dead_letters(r).Increment();
  for (identity::RefusalRule rule : refusals) metrics.refused(rule).Increment();
  for (int64_t ms : erasure_latencies_ms) {
    metrics.erasure_latency.Observe(static_cast<double>(ms) / 1000.0);
  }
  metrics.merges.Increment(static_cast<double>(merges));
  metrics.holdout_switches.Increment(static_cast<double>(holdout_switches));
  metrics.updates_truncated.Increment(static_cast<double>(truncated));
  metrics.applied.Increment(static_cast<double>(applied));
  metrics.consent_suppressed.Increment(static_cast<double>(consent_suppressed));
  metrics.erasure_suppressed.Increment(static_cast<double>(erasure_suppressed));
  metrics.erasures.Increment(static_cast<double>(erasures));
  metrics.duplicates.Increment(static_cast<double>(duplicates));
  metrics.clamped.Increment(static_cast<double>(clamped));
  metrics.privacy_dropped.Increment(static_cast<double>(privacy_dropped));
  metrics.privacy_hashed.Increment(static_cast<double>(privacy_hashed));
  metrics.updates_enqueued.Increment(static_cast<double>(updates));
  metrics.batches.Increment();
}

}  // namespace profiled::pipeline::internal
