// MappedJsonDecoder: any JSON shape (ESP webhooks, CRM exports ...) into
// InteractionEvents through a declarative field map — no code per source.
//
//   FieldMap map;
//   map.event_id = {"/sg_event_id"};  map.type = "/event";  map.time = "/timestamp";
//   map.type_values = {{"open", "email_opened"}, {"click", "email_clicked"}};
//   map.fields = {{"identities.email", "/email"}, {"properties.url", "/url"}};
//   ASSIGN_OR_RETURN(auto decoder, MappedJsonDecoder::Create({.default_channel = "email", .map = map}));
//   if (auto rejection = decoder.Decode(kafka_value, events)) { /* dead-letter */ }
//
// Pointers are RFC 6901 JSON pointers into one record. A value whose top
// level is an array is a batch: each element is a record (SendGrid posts
// arrays; an empty array holds no event); anything else is one record. Records are accepted whole or the
// value is rejected, as for Segment, within the same JsonLimits.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "profiled/ingest/json_limits.h"
#include "profiled/ingest/protobuf_decoder.h"
#include "profiled/v1/event.pb.h"

namespace profiled::ingest {

enum class TimeFormat {
  kAuto,     // numbers: seconds below 1e11, else milliseconds; strings: RFC 3339 or a number
  kUnixSeconds,
  kUnixMillis,
  kRfc3339,
};

struct FieldMap {
  // Pointers to the event id (several are joined with ":", for sources
  // whose id is unique only with e.g. the event name), the event type and
  // the event time. Required.
  std::vector<std::string> event_id;
  std::string type;
  std::string time;
  TimeFormat time_format = TimeFormat::kAuto;
  // Source type value -> envelope type ("open" -> "email_opened"). Values
  // not listed are snake_cased ("Link Clicked" -> "link_clicked").
  absl::flat_hash_map<std::string, std::string> type_values;
  // Envelope field -> pointer: identities.{user_id,anonymous_id,email,
  // device_id,<other kind>}, channel, context.<field>, commerce.<field>,
  // traits.<key>, properties.<key>. A pointer to a missing value or null
  // leaves the field unset.
  std::vector<std::pair<std::string, std::string>> fields;
};

struct MappedJsonOptions {
  // Channel of events the map does not give one. Default: "web".
  std::string default_channel = "web";
  JsonLimits limits;
  FieldMap map;
};

class MappedJsonDecoder {
 public:
  // Fails with every problem of the map listed (bad pointer, unknown field).
  [[nodiscard]] static absl::StatusOr<MappedJsonDecoder> Create(MappedJsonOptions options);
  ~MappedJsonDecoder();
  MappedJsonDecoder(MappedJsonDecoder&&) noexcept;
  MappedJsonDecoder& operator=(MappedJsonDecoder&&) noexcept;

  // Appends every event of `payload` to `out`, or nothing and a rejection.
  std::optional<Rejection> Decode(std::string_view payload, std::vector<v1::InteractionEvent>& out);

 private:
  struct Impl;
  explicit MappedJsonDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace profiled::ingest
