// Decoding and validating Protobuf InteractionEvent messages from Kafka.
//
//   v1::InteractionEvent event;
//   if (auto rejection = DecodeProtobufEvent(payload, event)) {
//     // dead-letter with rejection->code() and rejection->detail
//   }
//
// An empty value parses as a valid empty Protobuf message, so required
// fields are checked explicitly. Each failure has a stable reason code: it
// becomes a dead-letter header and a metric label, so codes never change.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "profiled/v1/event.pb.h"

namespace profiled::ingest {

enum class RejectReason {
  kEmptyMessage,      // zero-length value
  kUndecodable,       // not a Protobuf InteractionEvent (truncated, random bytes)
  kMissingEventId,    // event_id empty
  kMissingType,       // type empty
  kInvalidEventTime,  // event_time_ms missing or not positive
  kNoIdentity,        // no identity at all
  kBlockedIdentities, // only blocked values ("undefined", "0", ...) as identities
  // JSON input (Segment spec, mapped JSON):
  kPayloadTooLarge,    // value longer than the configured limit
  kInvalidJson,        // not one complete, valid JSON document
  kInvalidUtf8,        // bytes that are not UTF-8
  kWrongFieldType,     // a field of the wrong JSON type
  kTooDeep,            // nesting deeper than the limit
  kTooManyProperties,  // more properties/traits than the limit
  kStringTooLong,      // a string longer than the limit
  kUnsupportedType,    // a Segment "type" profiled does not know
  kBatchTooLarge,      // more events in one batch body than the limit
  kEventInFuture,      // event time beyond the future tolerance (policy: reject)
};

inline constexpr RejectReason kAllRejectReasons[] = {
    RejectReason::kEmptyMessage,     RejectReason::kUndecodable,       RejectReason::kMissingEventId,
    RejectReason::kMissingType,      RejectReason::kInvalidEventTime, RejectReason::kNoIdentity,
    RejectReason::kBlockedIdentities, RejectReason::kPayloadTooLarge,  RejectReason::kInvalidJson,
    RejectReason::kInvalidUtf8,       RejectReason::kWrongFieldType,   RejectReason::kTooDeep,
    RejectReason::kTooManyProperties, RejectReason::kStringTooLong,    RejectReason::kUnsupportedType,
    RejectReason::kBatchTooLarge,
    RejectReason::kEventInFuture};

// Stable snake_case code, e.g. "missing_event_id".
std::string_view ReasonCode(RejectReason reason);

struct Rejection {
  RejectReason reason;
  std::string detail;
  std::string_view code() const { return ReasonCode(reason); }
};

// Checks the fields every event needs. nullopt when valid.
std::optional<Rejection> ValidateEvent(const v1::InteractionEvent& event);

// Parses `payload` into `event` and validates it. nullopt when accepted.
std::optional<Rejection> DecodeProtobufEvent(std::string_view payload,
                                             v1::InteractionEvent& event);

}  // namespace profiled::ingest
