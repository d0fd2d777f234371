#include "simdjson_util.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace profiled::ingest::internal {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

size_t Depth(element e, size_t limit, size_t depth = 1) {
  if (depth > limit) return depth;
  size_t deepest = depth;
  if (e.type() == element_type::ARRAY) {
    for (element child : AsArray(e)) {
      deepest = std::max(deepest, Depth(child, limit, depth + 1));
    }
  } else if (e.type() == element_type::OBJECT) {
    for (auto field : AsObject(e)) {
      deepest = std::max(deepest, Depth(field.value, limit, depth + 1));
    }
  }
  return deepest;
}

}  // namespace

std::optional<Rejection> ParseDocument(simdjson::dom::parser& parser, std::string_view payload,
                                       const JsonLimits& limits, element& root) {
  if (payload.empty()) return Rejection{RejectReason::kEmptyMessage, "message value is empty"};
  if (payload.size() > limits.max_message_bytes) {
    return Rejection{RejectReason::kPayloadTooLarge,
                     absl::StrCat(payload.size(), " bytes (limit ", limits.max_message_bytes, ")")};
  }
  // The DOM parser validates the whole document (structure, numbers, UTF-8)
  // and rejects trailing content: On Demand would skip what it does not read.
  simdjson::padded_string padded(payload);
  if (auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS) {
    const RejectReason reason =
        err == simdjson::UTF8_ERROR ? RejectReason::kInvalidUtf8
        : err == simdjson::DEPTH_ERROR ? RejectReason::kTooDeep
                                       : RejectReason::kInvalidJson;
    return Rejection{reason, simdjson::error_message(err)};
  }
  if (Depth(root, limits.max_depth) > limits.max_depth) {
    return Rejection{RejectReason::kTooDeep, absl::StrCat("nesting deeper than ", limits.max_depth)};
  }
  return std::nullopt;
}

std::optional<int64_t> ParseRfc3339Ms(std::string_view text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, A(text), &t, &err)) return std::nullopt;
  return absl::ToUnixMillis(t);
}

}  // namespace profiled::ingest::internal
