// Small helpers over simdjson's DOM shared by the JSON decoders.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/strings/string_view.h"
#include "profiled/ingest/json_limits.h"
#include "profiled/ingest/protobuf_decoder.h"

namespace profiled::ingest::internal {

// Copies out of simdjson's result wrappers: ranging over a temporary
// result's value_unsafe() would bind a reference into a dead temporary.
// Callers have checked the element's type.
inline simdjson::dom::array AsArray(simdjson::dom::element e) {
  simdjson::dom::array a;
  [[maybe_unused]] simdjson::error_code err = e.get_array().get(a);
  return a;
}
inline simdjson::dom::object AsObject(simdjson::dom::element e) {
  simdjson::dom::object o;
  [[maybe_unused]] simdjson::error_code err = e.get_object().get(o);
  return o;
}

// Debian's Abseil has its own string_view type.
inline absl::string_view A(std::string_view s) { return {s.data(), s.size()}; }

// Parses one Kafka value as exactly one JSON document within the limits
// (size, depth; simdjson's DOM validates structure, numbers and UTF-8 and
// rejects trailing content). The element lives as long as `parser`.
std::optional<Rejection> ParseDocument(simdjson::dom::parser& parser, std::string_view payload,
                                       const JsonLimits& limits, simdjson::dom::element& root);

// Epoch ms of an RFC 3339 string.
std::optional<int64_t> ParseRfc3339Ms(std::string_view text);

}  // namespace profiled::ingest::internal
