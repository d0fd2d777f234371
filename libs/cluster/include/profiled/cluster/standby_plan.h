// Standby plan: which repartition partitions an instance keeps warm copies
// of (cluster.standby_replicas; docs/scaling.md, "Standbys"). Pure.
//
// librdkafka has no custom assignor and no subscription userdata, so the
// group cannot be told to hand a dead member's partitions to its standby.
// Instead every member reads the members topic (who is live, who owns what)
// and stands by for the partitions owned by the `replicas` members after it
// in member order, wrapping around. With two members each holds the
// other's partitions, so a failover always lands on a warm copy; with more,
// a hit depends on the assignor's choice (replicas = members - 1 always
// hits, at that many times the disk).
//
//   std::vector<int32_t> warm = StandbyPartitions(lease->Peers(), 1);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace profiled::cluster {

// A live partitioned member as the members topic last said.
struct PeerOwnership {
  std::string member;  // instance id and host: the order standbys follow
  std::vector<int32_t> owned;
  bool self = false;   // this instance
};

// The partitions this instance (the peer marked `self`; none marked: not
// yet heard from, placed by `self_member`) stands by for, sorted, none it
// owns itself.
std::vector<int32_t> StandbyPartitions(std::vector<PeerOwnership> peers,
                                       const std::string& self_member, int replicas);

}  // namespace profiled::cluster
