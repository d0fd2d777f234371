// Small helpers over simdjson's DOM shared by the JSON decoders.
#pragma once

#include <simdjson.h>

#include <string_view>

#include "absl/strings/string_view.h"

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

}  // namespace profiled::ingest::internal
