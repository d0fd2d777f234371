// BatchStages: a read batch through the stages that change state — each
// event resolved (identity side) and applied (profile side) in arrival
// order, then erasures, then the outputs of every changed profile — into
// the batch's WriteBatch. Private to the pipeline.
//
//   BatchState state(store, cache);
//   RETURN_IF_ERROR(state.Preload(work.read.mentioned));
//   ASSIGN_OR_RETURN(auto charges, stages.Run(state, work, secret, check, wall_now_ms));
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "apply_stage.h"
#include "batch_state.h"
#include "batch_work.h"
#include "output_stage.h"
#include "profiled/core/clock.h"
#include "resolve_stage.h"

namespace profiled::pipeline::internal {

class BatchStages {
 public:
  BatchStages(const PipelineOptions& options, const identity::IdentityRules& rules,
              store::ProfileStore& store, const signals::Signals& signals, WorkerPool& workers,
              core::PipelineClock& clock)
      : clock_(clock),
        resolve_(rules, store),
        apply_(options, rules, store),
        output_(options, signals, workers) {}

  // Erasure needs the store to hold every earlier batch (it reads audit
  // records): the caller makes sure of that when work.read.erasures is not
  // empty. `secret` keys suppression hashes; when `check_suppressions`,
  // events naming an erased identity are refused. Returns each changed
  // profile's cache charge by id.
  [[nodiscard]] absl::StatusOr<absl::flat_hash_map<std::string, size_t>> Run(
      BatchState& state, BatchWork& work, std::string_view secret, bool check_suppressions,
      int64_t wall_now_ms);

  const OutputStage& output() const { return output_; }

 private:
  [[nodiscard]] absl::Status ResolveAndApply(BatchState& state, BatchWork& work,
                                             std::string_view secret, bool check_suppressions,
                                             int64_t wall_now_ms);

  core::PipelineClock& clock_;
  ResolveStage resolve_;
  ApplyStage apply_;
  OutputStage output_;
};

}  // namespace profiled::pipeline::internal
