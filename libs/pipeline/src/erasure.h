// Erasure inside a batch: remove a person from every column family, publish
// tombstones and a receipt, and remember keyed hashes of their identities so
// late events cannot re-create them. Private to the pipeline.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "batch_state.h"
#include "profiled/identity/identity_rules.h"
#include "profiled/store/profile_store.h"
#include "profiled/v1/control.pb.h"

namespace profiled::pipeline::internal {

// HMAC-SHA256 (hex) of a normalized identity under the deployment secret:
// what the suppression list holds instead of the identity.
std::string SuppressionHash(std::string_view secret, const core::Identity& identity);

struct ErasureTopics {
  std::string output;    // tombstones
  std::string receipts;  // receipts (empty: none)
  size_t max_message_bytes = 1'000'000;  // a receipt's ids are cut to fit
};

// Erases the person `request` names from `state` (and what the store holds
// beyond it: merge audit) into `batch`, and adds the keys whose old values
// must then be purged from disk to `purge`. Returns the receipt.
absl::StatusOr<v1::ErasureReceipt> Erase(const v1::EraseRequest& request,
                                         const identity::IdentityRules& rules,
                                         std::string_view secret, int64_t suppress_until_ms,
                                         int64_t now_ms, const ErasureTopics& topics,
                                         BatchState& state, store::ProfileStore& store,
                                         store::CommitBatch& batch, store::PurgeKeys& purge);

}  // namespace profiled::pipeline::internal
