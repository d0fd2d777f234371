#include "profiled/identity/merge_audit.h"

#include "absl/strings/str_cat.h"
#include "profiled/internal/v1/profile_state.pb.h"

namespace profiled::identity {

std::string_view MergeKindName(MergeKind kind) {
  switch (kind) {
    case MergeKind::kMerge:
      return "merge";
    case MergeKind::kAliasMerge:
      return "alias_merge";
  }
  return "unknown";
}

bool IsMergeRule(std::string_view rule) {
  return rule == MergeKindName(MergeKind::kMerge) || rule == MergeKindName(MergeKind::kAliasMerge);
}

std::vector<std::pair<std::string, std::string>> MergeAuditRecords(
    const v1::InteractionEvent& event, const std::vector<core::Identity>& ids, const Resolution& r,
    int64_t now_ms) {
  std::vector<std::pair<std::string, std::string>> out;
  if (r.absorbed.empty() && r.refusals.empty()) return out;
  internal::v1::MergeRecord record;
  record.set_time_ms(now_ms);
  record.set_event_id(event.event_id());
  for (const core::Identity& id : ids) record.add_identities(absl::StrCat(id.kind, ":", id.value));
  record.set_survivor(r.target);
  if (!r.absorbed.empty()) {
    internal::v1::MergeRecord merge = record;
    for (const std::string& a : r.absorbed) merge.add_absorbed(a);
    merge.set_rule(
        std::string(MergeKindName(r.explicit_alias ? MergeKind::kAliasMerge : MergeKind::kMerge)));
    const std::string bytes = merge.SerializeAsString();
    out.emplace_back(r.target, bytes);
    for (const std::string& a : r.absorbed) out.emplace_back(a, bytes);
  }
  for (const Refusal& refusal : r.refusals) {
    internal::v1::MergeRecord refused = record;
    refused.set_rule(std::string(RuleName(refusal.rule)));
    refused.set_refused(true);
    refused.set_detail(refusal.detail);
    refused.add_absorbed(refusal.other_profile);
    const std::string bytes = refused.SerializeAsString();
    out.emplace_back(r.target, bytes);
    if (refusal.other_profile != r.target) out.emplace_back(refusal.other_profile, bytes);
  }
  return out;
}

std::string MergeAuditRecord(int64_t time_ms, std::string_view survivor, std::string_view absorbed,
                             std::optional<RefusalRule> refused, std::string_view detail) {
  internal::v1::MergeRecord record;
  record.set_time_ms(time_ms);
  record.set_survivor(std::string(survivor));
  if (!absorbed.empty()) record.add_absorbed(std::string(absorbed));
  if (refused.has_value()) {
    record.set_rule(std::string(RuleName(*refused)));
    record.set_refused(true);
    record.set_detail(std::string(detail));
  } else {
    record.set_rule(std::string(MergeKindName(MergeKind::kMerge)));
  }
  return record.SerializeAsString();
}

}  // namespace profiled::identity
