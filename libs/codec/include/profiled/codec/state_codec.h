// Profile <-> bytes in RocksDB (profiled.internal.v1.StoredProfile).
//
//   std::string bytes = EncodeProfileState(profile);
//   absl::StatusOr<core::Profile> back = DecodeProfileState(bytes);
//
// Round trips are exact: decay pairs, traits with their times, identities and
// counters come back bit for bit.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "profiled/core/profile.h"

namespace profiled::codec {

std::string EncodeProfileState(const core::Profile& profile);

// Fails with DataLoss when the bytes are not a stored profile.
[[nodiscard]] absl::StatusOr<core::Profile> DecodeProfileState(std::string_view bytes);

}  // namespace profiled::codec
