// The merge audit: what each resolution did or refused, as stored records
// (profiled.internal.v1.MergeRecord) under every profile involved, so a
// person's history of merges can be shown and erased with them.
//
//   for (auto& [profile_id, bytes] : MergeAuditRecords(event, ids, resolution, now_ms)) ...
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "profiled/identity/resolver.h"
#include "profiled/v1/event.pb.h"

namespace profiled::identity {

enum class MergeKind {
  kMerge,       // identities shared by one event joined the profiles
  kAliasMerge,  // an explicit alias joined them
};
// Stable names, as stored in MergeRecord.rule beside the refusal rules.
std::string_view MergeKindName(MergeKind kind);
// True when a stored rule names a merge (not a refusal).
bool IsMergeRule(std::string_view rule);

// One record for the merges of `r` (under the survivor and each absorbed
// profile) and one per refusal (under both profiles); none when nothing was
// merged or refused. Pairs of (profile id, serialized MergeRecord).
std::vector<std::pair<std::string, std::string>> MergeAuditRecords(
    const v1::InteractionEvent& event, const std::vector<core::Identity>& ids, const Resolution& r,
    int64_t now_ms);

// One record, as partitioned mode keeps them (docs/scaling.md, merge audit):
// `absorbed` merged into `survivor`, or, with `refused`, a refusal by that
// rule with `detail` in profile `survivor`'s record (`absorbed` empty: the
// other party is not named, so its erasure leaves nothing of it here). No
// event id: the decision is made where the profiles live, after the
// event's hops.
std::string MergeAuditRecord(int64_t time_ms, std::string_view survivor, std::string_view absorbed,
                             std::optional<RefusalRule> refused, std::string_view detail);

}  // namespace profiled::identity
