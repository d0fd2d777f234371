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

#include "profiled/ingest/protobuf_decoder.h"
#include "profiled/v1/event.pb.h"

namespace profiled::ingest {

struct JsonLimits {
  // Bytes of one Kafka value. Default: 512 KiB.
  size_t max_message_bytes = 512 * 1024;
  // Messages in one batch body. Default: 1000.
  size_t max_batch_events = 1000;
  // Properties (or traits) of one message. Default: 256.
  size_t max_properties = 256;
  // Bytes of any one string value. Default: 8 KiB.
  size_t max_string_bytes = 8 * 1024;
  // Nesting depth of the document. Default: 16.
  size_t max_depth = 16;
};

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
