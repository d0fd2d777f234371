// Output sizes: every record profiled produces must fit the output topic's
// message size (output.max_message_bytes), or the producer refuses it and
// publishing stops. Updates are bounded by construction — every cap (top-K
// per family, identities, traits, items, key and trait sizes) limits what a
// profile can hold — and this module turns those caps into a byte bound that
// configuration is checked against at start.
//
//   if (LargestUpdateBytes(options) > options.max_output_message_bytes) ...
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "profiled/kafka/properties.h"
#include "profiled/pipeline/pipeline.h"

namespace profiled::pipeline {

// Bytes a record's key, headers and Kafka framing may take beside its value.
inline constexpr size_t kRecordOverheadBytes = 1024;

// An upper bound of the encoded size of any ProfileUpdate the options allow
// (tested against profiles with every cap reached at the longest keys).
size_t LargestUpdateBytes(const PipelineOptions& options);

// OK when the largest update fits output.max_message_bytes; otherwise why,
// naming the settings that set the bound.
[[nodiscard]] absl::Status CheckOutputLimits(const PipelineOptions& options);

// Profile ids an erasure receipt lists at most within `max_message_bytes`.
size_t MaxReceiptProfileIds(size_t max_message_bytes);

// librdkafka defaults of the producers that write to the output topics
// (updates, receipts, dead letters), before the user's properties (which
// win): retry transient failures without end (stalls are reported instead),
// accept a record up to max_message_bytes, and never batch more than the
// topic takes (Kafka applies max.message.bytes to the whole record batch).
kafka::Properties OutputProducerDefaults(size_t max_message_bytes);

}  // namespace profiled::pipeline
