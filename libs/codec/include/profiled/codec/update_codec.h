// Profile -> ProfileUpdate, the output contract (proto/profiled/v1).
//
//   v1::ProfileUpdate u = BuildProfileUpdate(profile, as_of_ms, scoring, signals);
//   std::string bytes = u.SerializeAsString();
//
// Scores and signals are evaluated at `as_of_ms`, which callers keep >=
// last_seen_ms.
#pragma once

#include <cstdint>
#include <string>
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
// The same into `update` (empty): built on an arena, its hundreds of small
// messages and strings cost no malloc each (docs/benchmarks.md).
void BuildProfileUpdateInto(const core::Profile& profile, int64_t as_of_ms,
                            const core::ScoringOptions& options, const signals::Signals& signals,
                            v1::ProfileUpdate& update);
// The same at `ranked`'s instant, sharing its rankings with the signals
// and with the caller (the next-transition search reads them too).
void BuildProfileUpdateInto(core::Rankings& ranked, const signals::Signals& signals,
                            v1::ProfileUpdate& update);

// The bytes of that update (BuildProfileUpdateInto, then SerializeToString:
// the same bytes), its identities and score families — most of it —
// written straight from the profile instead of built as hundreds of
// messages first. `tail` (empty, e.g. on an arena) receives the rest of the
// update as a message: its signals are the update's (for the fingerprint).
void EncodeProfileUpdate(core::Rankings& ranked, const signals::Signals& signals,
                         v1::ProfileUpdate& tail, std::string& bytes);

// Makes `update` encode to at most `max_bytes`: the lower half of every
// score family's list (repeatedly), then traits, then signals, then all but
// the first identities are left out, and `truncated` is set. False when it
// already fit (nothing changed). The caps keep updates within the limit;
// this is for profiles stored before them.
bool FitUpdate(size_t max_bytes, v1::ProfileUpdate& update);

}  // namespace profiled::codec
