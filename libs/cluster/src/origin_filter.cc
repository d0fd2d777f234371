#include "profiled/cluster/origin_filter.h"

#include "absl/strings/str_cat.h"

namespace profiled::cluster {

std::string OriginFilter::UpstreamKey(const internal::v1::Origin& origin) {
  return absl::StrCat(origin.topic(), ":", origin.partition());
}

bool OriginFilter::Seen(const internal::v1::Origin& origin) const {
  auto it = highest_.find(UpstreamKey(origin));
  return it != highest_.end() && origin.offset() <= it->second;
}

bool OriginFilter::Admit(const internal::v1::Origin& origin) {
  auto [it, fresh] = highest_.try_emplace(UpstreamKey(origin), origin.offset());
  if (fresh) return true;
  if (origin.offset() <= it->second) return false;
  it->second = origin.offset();
  return true;
}

void OriginFilter::Restore(const internal::v1::ChangelogMarker& marker) {
  highest_.clear();
  for (const auto& [key, offset] : marker.origin_watermarks()) highest_[key] = offset;
}

void OriginFilter::SaveTo(internal::v1::ChangelogMarker& marker) const {
  auto& out = *marker.mutable_origin_watermarks();
  out.clear();
  for (const auto& [key, offset] : highest_) out[key] = offset;
}

}  // namespace profiled::cluster
