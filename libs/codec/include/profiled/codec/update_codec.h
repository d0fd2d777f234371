// Profile -> ProfileUpdate, the output contract (proto/profiled/v1).
//
//   v1::ProfileUpdate u = BuildProfileUpdate(profile, as_of_ms, scoring, signals);
//   std::string bytes = u.SerializeAsString();
//
// Scores and signals are evaluated at `as_of_ms`, which callers keep >=
// last_seen_ms.
#pragma once

#include <cstdint>
#include <string_view>

#include "profiled/core/profile.h"
#include "profiled/signals/signals.h"
#include "profiled/v1/profile_update.pb.h"

namespace profiled::codec {

inline constexpr std::string_view kContentTypeHeader = "content-type";
inline constexpr std::string_view kSchemaHeader = "schema";
// On updates caused by input events: the Kafka timestamp (ms, decimal) of the
// oldest input message behind the update.
inline constexpr std::string_view kSourceTimeHeader = "profiled.source_time_ms";
inline constexpr std::string_view kProtobufContentType = "application/x-protobuf";
inline constexpr std::string_view kProfileUpdateSchema = "profiled.v1.ProfileUpdate";

v1::ProfileUpdate BuildProfileUpdate(const core::Profile& profile, int64_t as_of_ms,
                                     const core::ScoringOptions& options,
                                     const signals::Signals& signals);

}  // namespace profiled::codec
