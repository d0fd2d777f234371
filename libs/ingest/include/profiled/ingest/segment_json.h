// SegmentDecoder: Segment-spec JSON (identify, track, page, screen, alias,
// group) into InteractionEvents, natively.
//
//   SegmentDecoder decoder({.default_channel = "web"});
//   std::vector<v1::InteractionEvent> events;
//   if (auto rejection = decoder.Decode(kafka_value, events)) { /* dead-letter */ }
//
// One Kafka value is one Segment message or a batch body {"batch": [...]}
// (whose sentAt applies to its messages). It is accepted only as one
// complete, valid JSON document within the limits; any problem rejects the
// whole value with a stable reason code (the dead letter keeps its bytes).
//
// Time: receivedAt - (sentAt - originalTimestamp) when all three are known
// (Segment's clock-skew correction), else timestamp, else originalTimestamp.
// Track events named by the e-commerce spec map to the envelope's types and
// commerce fields (docs/wiring.md has the table).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "profiled/ingest/json_limits.h"
#include "profiled/ingest/protobuf_decoder.h"
#include "profiled/v1/event.pb.h"

namespace profiled::ingest {

struct SegmentOptions {
  // Channel of events that do not say (context.channel). Default: "web".
  std::string default_channel = "web";
  JsonLimits limits;
};

class SegmentDecoder {
 public:
  explicit SegmentDecoder(SegmentOptions options);
  ~SegmentDecoder();
  SegmentDecoder(SegmentDecoder&&) noexcept;

  // Appends every event of `payload` to `out`, or nothing and a rejection.
  std::optional<Rejection> Decode(std::string_view payload, std::vector<v1::InteractionEvent>& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "Product Viewed" -> "product_viewed" (e-commerce spec names map to the
// envelope's types; others are snake_cased).
std::string SegmentEventType(std::string_view segment_event_name);

}  // namespace profiled::ingest
