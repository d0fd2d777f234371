// ResolveStage: which profile each event of a batch goes to — suppression
// of erased identities, then identity resolution under the guardrails — and
// carrying the decision out on the identity side (graph links, identity
// records, merge audit). Reads identity-side state only (BatchState's graph
// and IdentityRecords, the suppression list): never a profile. Private to
// the pipeline.
//
//   ASSIGN_OR_RETURN(std::vector<bool> suppressed, resolve.Suppressed(read.accepted, wall_now));
//   identity::Resolution r = resolve.Decide(event, now_ms, state);
//   resolve.Commit(event, r, now_ms, state, work);   // unless the apply stage skips it
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "batch_state.h"
#include "batch_work.h"
#include "profiled/identity/identity_rules.h"
#include "profiled/identity/resolver.h"
#include "profiled/store/profile_store.h"
#include "read_stage.h"

namespace profiled::pipeline::internal {

class ResolveStage {
 public:
  ResolveStage(const identity::IdentityRules& rules, store::ProfileStore& store)
      : resolver_(rules), store_(store) {}

  // Per accepted event: true when it names an identity erased within its
  // suppression window (looked up by keyed hash under `secret`).
  [[nodiscard]] absl::StatusOr<std::vector<bool>> Suppressed(
      const std::vector<AcceptedEvent>& accepted, std::string_view secret, int64_t wall_now_ms);

  // The decision for one event; an alias event gains the identity its
  // previous_id stands for. Changes nothing.
  identity::Resolution Decide(AcceptedEvent& a, int64_t now_ms, BatchState& state) const;

  // Carries `r` out on the identity side and records its merges and
  // refusals in the audit and the batch's counts.
  void Commit(const AcceptedEvent& a, const identity::Resolution& r, int64_t now_ms,
              BatchState& state, BatchWork& work) const;

 private:
  identity::Resolver resolver_;
  store::ProfileStore& store_;
};

}  // namespace profiled::pipeline::internal
