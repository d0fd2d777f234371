// Profile ids: a profile is named after the identity that created it.
//
// ProfileIdFor(event) hashes the event's routing identity (the first of
// IdentitiesOf(event)) with XXH3-128 into "p-" + 32 hex digits: stable across
// processes and versions, and it does not expose the identity itself.
#pragma once

#include <optional>
#include <string>

#include "profiled/core/profile.h"

namespace profiled::core {

std::string ProfileIdFor(const Identity& identity);

// The profile id of the event's routing identity, or nullopt when the event
// carries no identity.
std::optional<std::string> ProfileIdFor(const v1::InteractionEvent& event);

}  // namespace profiled::core
