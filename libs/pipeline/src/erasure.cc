#include "erasure.h"

#include <openssl/hmac.h>

#include "absl/container/flat_hash_set.h"
#include "profiled/base/status_macros.h"
#include "profiled/identity/merge_audit.h"
#include "profiled/internal/v1/profile_state.pb.h"
#include "outbox_records.h"
#include "profiled/pipeline/output_limits.h"

namespace profiled::pipeline::internal {

std::string SuppressionHash(std::string_view secret, const core::Identity& identity) {
  std::string message = identity.kind;
  message.push_back('\0');
  message += identity.value;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

absl::StatusOr<v1::ErasureReceipt> Erase(const v1::EraseRequest& request,
                                         const identity::IdentityRules& rules,
                                         std::string_view secret, int64_t suppress_until_ms,
                                         int64_t now_ms, const ErasureTopics& topics,
                                         BatchState& state, store::ProfileStore& store,
                                         store::CommitBatch& batch, store::PurgeKeys& purge) {
  v1::ErasureReceipt receipt;
  receipt.set_request_id(request.request_id());
  receipt.set_requested_ms(request.requested_ms());
  const core::Identity asked = rules.Normalize({request.kind(), request.value()});
  // The identity asked for is suppressed even when no profile holds it.
  batch.suppressions.emplace_back(SuppressionHash(secret, asked), suppress_until_ms);

  if (std::optional<std::string> id = state.ProfileOf(asked)) {
    const core::Profile person = state.TakeProfile(*id);
    for (const core::Identity& identity : person.identities) {
      state.Unlink(identity);
      purge.identity_keys.push_back(store::IdentityKey(identity.kind, identity.value));
      batch.suppressions.emplace_back(SuppressionHash(secret, identity), suppress_until_ms);
    }
    receipt.set_identities_erased(static_cast<int>(person.identities.size()));
    if (person.timer_due_ms != 0) {
      batch.timers_deleted.emplace_back(person.timer_due_ms, person.id);
      purge.timers.emplace_back(person.timer_due_ms, person.id);
    }

    // The merge audit: every record of the person and of the profiles merged
    // into them; copies of those records kept under other profiles (refused
    // links) go too, since they name the person's identities.
    absl::flat_hash_set<std::string> erased = {person.id};
    std::vector<std::string> todo = {person.id};
    absl::flat_hash_set<std::string> records;
    absl::flat_hash_set<std::string> others;
    while (!todo.empty()) {
      const std::string current = todo.back();
      todo.pop_back();
      ASSIGN_OR_RETURN(auto entries, store.ReadAuditEntries(current));
      for (const auto& [key, bytes] : entries) {
        batch.audit_deleted.push_back(key);
        records.insert(bytes);
        ::profiled::internal::v1::MergeRecord record;
        if (!record.ParseFromString(bytes)) continue;
        const bool merged = identity::IsMergeRule(record.rule());
        for (const std::string& other : record.absorbed()) {
          if (merged && erased.insert(other).second) todo.push_back(other);
          if (!merged && !erased.contains(other)) others.insert(other);
        }
        if (!erased.contains(record.survivor())) others.insert(record.survivor());
      }
    }
    for (const std::string& other : others) {
      if (erased.contains(other)) continue;
      ASSIGN_OR_RETURN(auto entries, store.ReadAuditEntries(other));
      for (const auto& [key, bytes] : entries) {
        if (records.contains(bytes)) {
          batch.audit_deleted.push_back(key);
          purge.audit_keys.push_back(key);
        }
      }
    }
    const size_t listed = MaxReceiptProfileIds(topics.max_message_bytes);
    for (const std::string& gone : erased) {
      purge.profile_ids.push_back(gone);  // with its audit records
      if (static_cast<size_t>(receipt.erased_profile_ids_size()) < listed) {
        receipt.add_erased_profile_ids(gone);
      }
      batch.outbox.push_back(TombstoneRecordFor(topics.output, gone));
    }
    receipt.set_profiles_erased(static_cast<int>(erased.size()));
  }
  receipt.set_completed_ms(now_ms);
  if (!topics.receipts.empty()) {
    batch.outbox.push_back(MessageRecordFor(topics.receipts, request.request_id(), receipt,
                                            "profiled.v1.ErasureReceipt"));
  }
  return receipt;
}

}  // namespace profiled::pipeline::internal
