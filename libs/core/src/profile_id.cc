#include "profiled/core/profile_id.h"

#include <xxhash.h>

#include <cstdio>

namespace profiled::core {

std::string ProfileIdFor(const Identity& identity) {
  // kind and value separated by a NUL so ("ab","c") and ("a","bc") differ.
  std::string material;
  material.reserve(identity.kind.size() + identity.value.size() + 1);
  material.append(identity.kind).push_back('\0');
  material.append(identity.value);
  XXH128_hash_t h = XXH3_128bits(material.data(), material.size());
  char out[2 + 32 + 1];
  std::snprintf(out, sizeof(out), "p-%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return std::string(out, 34);
}

std::optional<std::string> ProfileIdFor(const v1::InteractionEvent& event) {
  std::vector<Identity> ids = IdentitiesOf(event);
  if (ids.empty()) return std::nullopt;
  return ProfileIdFor(ids.front());
}

}  // namespace profiled::core
