// RemoveJsonMembers: rewrite one JSON document without some object members
// (used to apply the privacy filter's drop list to dead letters).
//
//   auto out = RemoveJsonMembers(bytes, [](std::string_view parent, std::string_view key) {
//     return parent == "context" && key == "ip";
//   });
//
// `drop` sees each member's key and the key under which its object sits
// ("" at the top level and inside arrays: the members of each message of a
// {"batch": [...]} body have parent ""). The output is minified JSON.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace profiled::ingest {

struct JsonEdit {
  std::string json;
  size_t removed = 0;
};

// nullopt when `json` is not one valid JSON document.
std::optional<JsonEdit> RemoveJsonMembers(
    std::string_view json,
    const std::function<bool(std::string_view parent, std::string_view key)>& drop);

}  // namespace profiled::ingest
