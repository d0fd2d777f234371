#include "profiled/cluster/origin_filter.h"

#include "absl/strings/str_cat.h"

namespace profiled::cluster {

std::string OriginFilter::UpstreamKey(const internal::v1::Origin& origin) {
  return absl::StrCat(origin.topic(), ":", origin.partition());
}

bool OriginFilter::Seen(const internal::v1::Origin& origin) const {
  auto it = highest_.find(UpstreamKey(origin));
  return it != highest_.end() && PositionOf(origin) <= it->second;
}

bool OriginFilter::Admit(const internal::v1::Origin& origin) {
  const Position position = PositionOf(origin);
  auto [it, fresh] = highest_.try_emplace(UpstreamKey(origin), position);
  if (fresh) return true;
  if (position <= it->second) return false;
  it->second = position;
  return true;
}

void OriginFilter::Restore(const internal::v1::ChangelogMarker& marker) {
  highest_.clear();
  for (const auto& [key, mark] : marker.origin_watermarks()) {
    highest_[key] = {mark.offset(), mark.index()};
  }
}

void OriginFilter::SaveTo(internal::v1::ChangelogMarker& marker) const {
  auto& out = *marker.mutable_origin_watermarks();
  out.clear();
  for (const auto& [key, position] : highest_) {
    out[key].set_offset(position.first);
    out[key].set_index(position.second);
  }
}

}  // namespace profiled::cluster
