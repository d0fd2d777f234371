// EventDecoder: one Kafka value of an input format into InteractionEvents;
// EventFormat: a format's name, what it needs and how to make its decoder.
// The pipeline, the configuration reader and profilectl all find formats
// here, by the name a topic's `format:` gives:
//
//   const EventFormat* format = FindEventFormat("segment-json");
//   ASSIGN_OR_RETURN(std::unique_ptr<EventDecoder> decoder, format->create({.default_channel = "app"}));
//   if (auto rejection = decoder->Decode(kafka_value, events)) { /* dead-letter */ }
//
// A new format is one decoder file (its class and its EventFormat) plus one
// line in event_formats.cc's table. Decoders keep parser buffers: one per
// thread, never shared.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "profiled/ingest/json_limits.h"
#include "profiled/ingest/mapped_json.h"
#include "profiled/ingest/protobuf_decoder.h"
#include "profiled/v1/event.pb.h"

namespace profiled::ingest {

struct DecoderOptions {
  // Channel of events that do not name one. Default: "web".
  std::string default_channel = "web";
  // max_message_bytes bounds every format's values; the rest bound JSON.
  JsonLimits limits;
  // Where each envelope field is, for formats that take a map.
  FieldMap map;
};

class EventDecoder {
 public:
  virtual ~EventDecoder() = default;
  // Appends every event of `payload` to `out`, or nothing and a rejection:
  // a value is accepted whole or not at all.
  virtual std::optional<Rejection> Decode(std::string_view payload,
                                          std::vector<v1::InteractionEvent>& out) = 0;
};

// The Kafka values a file of some format holds (profilectl produce), and
// what in it could not be one ("line N: why").
struct FileRecords {
  std::vector<std::string> values;
  std::vector<std::string> errors;
};

struct EventFormat {
  std::string_view name;     // as `input.topics[].format` names it
  std::string_view summary;  // one line for help texts
  // Needs a field map (input.topics[].map); other formats refuse one.
  bool takes_map = false;
  // Values are JSON the privacy filter can redact: a dead letter keeps the
  // bytes minus what the filter drops. Otherwise it keeps them as they came.
  bool redactable_json = false;
  // What a file of this format holds as Kafka values, in order.
  FileRecords (*split_file)(std::string_view text) = nullptr;
  // One decoder; fails with every problem of `options` (e.g. the map's).
  absl::StatusOr<std::unique_ptr<EventDecoder>> (*create)(const DecoderOptions& options) = nullptr;
};

// Every registered format, in registration order; "protobuf" first.
const std::deque<EventFormat>& EventFormats();
// Adds a format beside the built-in ones (a plugin, a test's fake format);
// fails when its name is taken or a part is missing. Call before anything
// looks formats up: the registry is not locked.
[[nodiscard]] absl::Status RegisterEventFormat(const EventFormat& format);
// The format named `name`, or null.
const EventFormat* FindEventFormat(std::string_view name);
// "protobuf, segment-json, ..." for error messages and help.
std::string EventFormatNames();

// Each decoder file's registration (event_formats.cc lists them).
EventFormat ProtobufEventFormat();
EventFormat SegmentJsonEventFormat();
EventFormat MappedJsonEventFormat();
EventFormat Rees46CsvEventFormat();

namespace internal {
// File splitting shared by formats: every non-blank line; or the whole
// text when it is one JSON document, else every non-blank line.
FileRecords SplitLines(std::string_view text);
FileRecords SplitJsonDocuments(std::string_view text);

// payload_too_large when `payload` is longer than `max_bytes`.
std::optional<Rejection> CheckSize(std::string_view payload, size_t max_bytes);

// An EventDecoder over a decoder class with the same Decode (Segment, mapped JSON).
template <typename Decoder>
class DecoderAdapter final : public EventDecoder {
 public:
  explicit DecoderAdapter(Decoder decoder) : decoder_(std::move(decoder)) {}
  std::optional<Rejection> Decode(std::string_view payload,
                                  std::vector<v1::InteractionEvent>& out) override {
    return decoder_.Decode(payload, out);
  }

 private:
  Decoder decoder_;
};
}  // namespace internal

}  // namespace profiled::ingest
