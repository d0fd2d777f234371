#include "profiled/ingest/protobuf_decoder.h"
#include "profiled/ingest/event_decoder.h"

#include <array>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"

namespace profiled::ingest {

std::string_view ReasonCode(RejectReason reason) {
  switch (reason) {
    case RejectReason::kEmptyMessage: return "empty_message";
    case RejectReason::kUndecodable: return "undecodable_protobuf";
    case RejectReason::kMissingEventId: return "missing_event_id";
    case RejectReason::kMissingType: return "missing_type";
    case RejectReason::kInvalidEventTime: return "invalid_event_time";
    case RejectReason::kNoIdentity: return "no_identity";
    case RejectReason::kBlockedIdentities: return "only_blocked_identities";
    case RejectReason::kPayloadTooLarge: return "payload_too_large";
    case RejectReason::kInvalidJson: return "invalid_json";
    case RejectReason::kInvalidUtf8: return "invalid_utf8";
    case RejectReason::kWrongFieldType: return "wrong_field_type";
    case RejectReason::kTooDeep: return "nesting_too_deep";
    case RejectReason::kTooManyProperties: return "too_many_properties";
    case RejectReason::kStringTooLong: return "string_too_long";
    case RejectReason::kUnsupportedType: return "unsupported_segment_type";
    case RejectReason::kBatchTooLarge: return "batch_too_large";
    case RejectReason::kEventInFuture: return "event_in_future";
  }
  return "unknown";
}

std::optional<Rejection> ValidateEvent(const v1::InteractionEvent& event) {
  if (event.event_id().empty()) {
    return Rejection{RejectReason::kMissingEventId, "event_id is required"};
  }
  if (event.type().empty()) return Rejection{RejectReason::kMissingType, "type is required"};
  if (event.event_time_ms() <= 0) {
    return Rejection{RejectReason::kInvalidEventTime,
                     absl::StrCat("event_time_ms must be positive, got ", event.event_time_ms())};
  }
  const v1::Identities& ids = event.identities();
  bool any_identity = !ids.user_id().empty() || !ids.anonymous_id().empty() ||
                      !ids.email().empty() || !ids.device_id().empty();
  for (const auto& [kind, value] : ids.other()) {
    any_identity = any_identity || (!kind.empty() && !value.empty());
  }
  if (!any_identity) {
    return Rejection{RejectReason::kNoIdentity, "at least one identity is required"};
  }
  return std::nullopt;
}

std::optional<Rejection> DecodeProtobufEvent(std::string_view payload,
                                             v1::InteractionEvent& event) {
  if (payload.empty()) return Rejection{RejectReason::kEmptyMessage, "message value is empty"};
  if (!event.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return Rejection{RejectReason::kUndecodable,
                     absl::StrCat("not a profiled.v1.InteractionEvent (", payload.size(),
                                  " bytes)")};
  }
  return ValidateEvent(event);
}


namespace {

// Binary profiled.v1.InteractionEvent values, one event each.
class ProtobufDecoder final : public EventDecoder {
 public:
  explicit ProtobufDecoder(size_t max_bytes) : max_bytes_(max_bytes) {}
  std::optional<Rejection> Decode(std::string_view payload,
                                  std::vector<v1::InteractionEvent>& out) override {
    if (auto too_large = internal::CheckSize(payload, max_bytes_)) return too_large;
    v1::InteractionEvent event;
    if (auto rejection = DecodeProtobufEvent(payload, event)) return rejection;
    out.push_back(std::move(event));
    return std::nullopt;
  }

 private:
  size_t max_bytes_;
};

// A file of Protobuf-JSON events, one per line, as binary values.
FileRecords ProtobufJsonLines(std::string_view text) {
  FileRecords out;
  size_t line_no = 0;
  v1::InteractionEvent event;
  for (std::string_view rest = text; !rest.empty();) {
    const size_t eol = rest.find('\n');
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    event.Clear();
    const auto status = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(line.data(), line.size()), &event);
    if (!status.ok()) {
      out.errors.push_back(absl::StrCat("line ", line_no, ": ", status.ToString()));
      continue;
    }
    out.values.push_back(event.SerializeAsString());
  }
  return out;
}

}  // namespace

EventFormat ProtobufEventFormat() {
  return {.name = "protobuf",
          .summary = "binary profiled.v1.InteractionEvent, one per value (files: Protobuf JSON lines)",
          .split_file = ProtobufJsonLines,
          .create = [](const DecoderOptions& o) -> absl::StatusOr<std::unique_ptr<EventDecoder>> {
            return std::make_unique<ProtobufDecoder>(o.limits.max_message_bytes);
          }};
}

}  // namespace profiled::ingest
