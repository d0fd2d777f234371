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

void BatchWork::Finish(const BatchState& state, const core::PipelineClock& clock,
                       PipelineMetrics& metrics) {
  batch.deleted_profiles = state.deleted();
  batch.profiles_added = state.profiles_added();
  for (const auto& [key, id] : state.new_links()) batch.identity_links.emplace_back(key, id);
  absl::flat_hash_map<std::string, uint64_t> per_topic;
  for (auto& [partition, touched] : read.touched) {
    touched.position.stream_time_ms = clock.StreamTimeMs(partition);
    batch.positions.push_back(touched.position);
    per_topic[partition.topic] += touched.messages;
  }
  for (const auto& [topic, n] : per_topic) counts.consumed.emplace_back(&metrics.consumed(topic), n);
  counts.reasons = std::move(read.reasons);
  counts.clamped = read.clamped;
  counts.privacy_dropped = read.privacy_dropped;
  counts.privacy_hashed = read.privacy_hashed;
  counts.updates = batch.outbox.size();
}

}  // namespace profiled::pipeline::internal
