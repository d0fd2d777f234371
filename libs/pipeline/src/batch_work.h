// BatchWork: everything one batch accumulates on its way from messages to a
// WriteBatch, passed from stage to stage; and the counters it adds once
// committed. Private to the pipeline.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "batch_state.h"
#include "profiled/core/clock.h"
#include "profiled/identity/resolver.h"
#include "profiled/pipeline/metrics.h"
#include "profiled/store/profile_store.h"
#include "read_stage.h"

namespace profiled::pipeline::internal {

// What a batch adds to the counters, recorded once the batch is committed so
// the counters always describe stored state.
struct BatchCounts {
  std::vector<std::pair<prometheus::Counter*, uint64_t>> consumed;  // per input topic
  std::vector<ingest::RejectReason> reasons;
  std::vector<identity::RefusalRule> refusals;
  std::vector<int64_t> erasure_latencies_ms;
  uint64_t merges = 0, applied = 0, consent_suppressed = 0, erasure_suppressed = 0,
           erasures = 0, duplicates = 0, clamped = 0, privacy_dropped = 0, privacy_hashed = 0,
           updates = 0, holdout_switches = 0, truncated = 0;

  void RecordIn(PipelineMetrics& metrics) const;
};

struct BatchWork {
  // An absorbed profile's merge notice, published after the survivor's update.
  struct Notice {
    std::string absorbed;
    uint64_t version;
    std::string survivor;
    core::PartitionKey partition;
  };
  ReadBatch read;
  std::vector<Notice> notices;
  // What the batch's erasures leave on disk to purge once it commits.
  store::PurgeKeys purge;
  // Per changed profile, the oldest input timestamp behind its update.
  absl::flat_hash_map<std::string, int64_t> source_time_ms;
  store::CommitBatch batch;
  BatchCounts counts;

  // Positions (with their stream time), links, deletions and the read
  // stage's counts into the WriteBatch and counters, once every stage ran.
  void Finish(const BatchState& state, const core::PipelineClock& clock, PipelineMetrics& metrics);

  void NoteSource(const std::string& id, int64_t ms) {
    if (ms <= 0) return;
    auto [it, inserted] = source_time_ms.try_emplace(id, ms);
    if (!inserted) it->second = std::min(it->second, ms);
  }
};

}  // namespace profiled::pipeline::internal
