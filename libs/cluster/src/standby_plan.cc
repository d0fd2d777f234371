#include "profiled/cluster/standby_plan.h"

#include <algorithm>

namespace profiled::cluster {

std::vector<int32_t> StandbyPartitions(std::vector<PeerOwnership> peers,
                                       const std::string& self_member, int replicas) {
  if (std::none_of(peers.begin(), peers.end(), [](const PeerOwnership& p) { return p.self; })) {
    peers.push_back({self_member, {}, true});
  }
  std::sort(peers.begin(), peers.end(), [](const PeerOwnership& a, const PeerOwnership& b) {
    return a.member < b.member;
  });
  const auto self = std::find_if(peers.begin(), peers.end(),
                                 [](const PeerOwnership& p) { return p.self; });
  const size_t at = static_cast<size_t>(self - peers.begin());
  const size_t n = peers.size();
  std::vector<int32_t> partitions;
  for (size_t step = 1; step < n && step <= static_cast<size_t>(std::max(replicas, 0)); ++step) {
    const PeerOwnership& next = peers[(at + step) % n];
    partitions.insert(partitions.end(), next.owned.begin(), next.owned.end());
  }
  // While a partition moves two members may both say they own it.
  const std::vector<int32_t>& mine = peers[at].owned;
  std::erase_if(partitions, [&](int32_t p) {
    return std::find(mine.begin(), mine.end(), p) != mine.end();
  });
  std::sort(partitions.begin(), partitions.end());
  partitions.erase(std::unique(partitions.begin(), partitions.end()), partitions.end());
  return partitions;
}

}  // namespace profiled::cluster
