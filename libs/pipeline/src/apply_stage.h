// ApplyStage: one resolved event onto the profiles — absorbed profiles
// merged into the survivor, new identities linked, the consent decision
// recorded, and the event applied unless it was already applied or the
// person denied analytics; and erasures. Changes only the profile side of BatchState;
// the identity side is the resolve stage's. Private to the pipeline.
//
//   if (apply.SkipsUnchanged(event, r, state)) continue;   // a re-sent event
//   resolve.Commit(event, r, now, state, work);
//   apply.Apply(event, r, now, partition, state, work);
#pragma once

#include <cstdint>

#include "batch_state.h"
#include "batch_work.h"
#include "profiled/core/profile.h"
#include "profiled/identity/identity_rules.h"
#include "profiled/identity/resolver.h"
#include "profiled/pipeline/pipeline.h"
#include "profiled/signals/signals.h"
#include "read_stage.h"

namespace profiled::pipeline::internal {

class ApplyStage {
 public:
  ApplyStage(const PipelineOptions& options, const identity::IdentityRules& rules,
             store::ProfileStore& store)
      : options_(options), scoring_(options.scoring), signals_(options.signals), rules_(rules),
        store_(store) {}

  // True for a re-sent event that changes nothing (no profile created,
  // merged or linked, the event already applied): it is not even touched.
  bool SkipsUnchanged(const AcceptedEvent& a, const identity::Resolution& r,
                      const BatchState& state) const;

  // Applies `a`, resolved to `r` at `now_ms`, from `partition`.
  void Apply(const AcceptedEvent& a, const identity::Resolution& r, int64_t now_ms,
             const core::PartitionKey& partition, BatchState& state, BatchWork& work) const;

  // After the batch's events, so those go with the person: erases everyone
  // the batch's erasure requests name (reading their audit from the store,
  // which must hold every earlier batch), with tombstones, receipts and
  // suppressions keyed by `secret`.
  [[nodiscard]] absl::Status Erase(std::string_view secret, int64_t wall_now_ms, BatchState& state,
                                   BatchWork& work) const;

 private:
  // Merges one absorbed profile into `survivor`; queues its merge notice.
  void Absorb(const std::string& absorbed_id, int64_t now_ms, const core::PartitionKey& partition,
              core::Profile& survivor, BatchState& state, BatchWork& work) const;

  const PipelineOptions& options_;
  const core::ScoringOptions& scoring_;
  const signals::SignalOptions& signals_;
  const identity::IdentityRules& rules_;
  store::ProfileStore& store_;
};

}  // namespace profiled::pipeline::internal
