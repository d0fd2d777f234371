#include "profiled/pipeline/output_limits.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace profiled::pipeline {
namespace {

// What one repeated entry costs beyond its strings: tags, lengths, a double
// and an int64 (a Score; other entries are smaller).
constexpr size_t kEntryBytes = 32;
// Everything that does not grow with a cap: ids, times, counters, consent,
// signal metas with their fixed reasons and texts.
constexpr size_t kFixedBytes = 16 * 1024;
// Reasons quoting a key, per listed key, at most (top intents, suppression).
constexpr size_t kReasonBytes = 160;

}  // namespace

size_t LargestUpdateBytes(const PipelineOptions& o) {
  const size_t key = o.event_limits.max_key_bytes;
  size_t bytes = kFixedBytes;
  // Identities: kind and value, both key-sized.
  bytes += o.identity.max_identities * (2 * key + kEntryBytes);
  // Score families, then the top intents that repeat the best keys with a reason.
  for (core::Family f : core::kAllFamilies) {
    bytes += o.scoring.family(f).top_k * (key + kEntryBytes);
  }
  bytes += 3 * o.signals.top_intents * (2 * key + kEntryBytes + kReasonBytes);
  // Items ("p:" or "c:" + key) listed by purchase suppression and the cart.
  bytes += 2 * o.scoring.recent_items * (key + 2 + kEntryBytes + kReasonBytes);
  // Traits.
  bytes += o.scoring.max_traits * (key + o.event_limits.max_trait_bytes + kEntryBytes);
  return bytes;
}

absl::Status CheckOutputLimits(const PipelineOptions& o) {
  const size_t largest = LargestUpdateBytes(o) + kRecordOverheadBytes;
  if (largest <= o.max_output_message_bytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the largest update these limits allow is ", largest,
      " bytes, over output.max_message_bytes (", o.max_output_message_bytes,
      "): raise it (and the topic's max.message.bytes), or lower identity.max_identities (",
      o.identity.max_identities, "), scoring.max_traits (", o.scoring.max_traits,
      "), input.event_limits.max_key_bytes (", o.event_limits.max_key_bytes,
      ") or max_trait_bytes (", o.event_limits.max_trait_bytes,
      "), or the families' top_k"));
}

kafka::Properties OutputProducerDefaults(size_t max_message_bytes) {
  return {{"message.timeout.ms", "0"},
          {"message.max.bytes", std::to_string(max_message_bytes + 65536)},
          {"batch.size", std::to_string(max_message_bytes)}};
}

size_t MaxReceiptProfileIds(size_t max_message_bytes) {
  constexpr size_t kIdBytes = 40;  // "p-" + 32 hex digits, framed
  const size_t room = max_message_bytes > 4096 ? max_message_bytes - 4096 : 0;
  return std::min<size_t>(10'000, std::max<size_t>(1, room / kIdBytes));
}

}  // namespace profiled::pipeline
