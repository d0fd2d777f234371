#include "summary.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "profiled/base/status_macros.h"
#include "profiled/codec/state_codec.h"

namespace profiled::app {

absl::StatusOr<std::string> RenderSummary(store::ProfileStore& store,
                                          const core::ScoringOptions& scoring,
                                          const signals::Signals& signals,
                                          const SummaryInput& input) {
  uint64_t profiles = 0;
  int64_t latest_ms = 0;
  std::vector<core::Profile> richest;  // kept sorted, most events first
  absl::Status decode_status;
  RETURN_IF_ERROR(store.ForEachProfile([&](std::string_view, std::string_view bytes) {
    absl::StatusOr<core::Profile> p = codec::DecodeProfileState(bytes);
    if (!p.ok()) {
      decode_status = p.status();
      return false;
    }
    ++profiles;
    latest_ms = std::max(latest_ms, p->last_seen_ms);
    richest.push_back(*std::move(p));
    std::stable_sort(richest.begin(), richest.end(),
                     [](const core::Profile& a, const core::Profile& b) {
                       return a.version > b.version;
                     });
    if (richest.size() > input.profiles_shown) richest.pop_back();
    return true;
  }));
  RETURN_IF_ERROR(decode_status);
  if (profiles == 0 && input.consumed == 0) {
    // A first start on empty topics: no zeros, no scores dated 1970.
    return std::string("\n=== profiled summary ===\nnothing consumed and no profiles stored yet\n");
  }

  const absl::Time as_of = absl::FromUnixMillis(latest_ms);
  std::string out = absl::StrCat(
      "\n=== profiled summary ===\n", "events consumed:   ", input.consumed, "\n",
      "events applied:    ", input.applied, "\n", "events rejected:   ", input.rejected, "\n",
      "updates published: ", input.published, "\n", "profiles stored:   ", profiles, "\n",
      "scores as of:      ", absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", as_of, absl::UTCTimeZone()),
      " (stream time)\n");
  const core::FamilyOptions& cat = scoring.family(core::Family::kCategory);
  for (const core::Profile& p : richest) {
    absl::StrAppend(&out, "\nprofile ", p.id, "  version ", p.version);
    for (const core::Identity& id : p.identities) absl::StrAppend(&out, "  ", id.kind, "=", id.value);
    absl::StrAppend(&out, "\n  views ", p.counters.product_views, ", cart adds ",
                    p.counters.cart_adds, ", orders ", p.counters.orders, "\n");
    std::vector<core::ScoreFamily::Ranked> top =
        p.family(core::Family::kCategory).RankedAt(latest_ms, cat);
    if (top.empty()) absl::StrAppend(&out, "  (no category scores)\n");
    for (size_t i = 0; i < top.size() && i < input.scores_shown; ++i) {
      absl::StrAppend(&out, absl::StrFormat("  category %-40s %8.4f\n", top[i].key, top[i].value));
    }
    const v1::ContextSignals s = signals.Derive(p, latest_ms, scoring);
    absl::StrAppend(&out, "  signals: journey ", s.journey().stage(), ", lifecycle ",
                    s.lifecycle().stage(), s.cart().abandoned() ? ", cart abandoned" : "",
                    s.cold_start().cold() ? ", cold start" : "", ", session ",
                    s.session().active() ? "active" : "over", "\n");
  }
  return out;
}

}  // namespace profiled::app
