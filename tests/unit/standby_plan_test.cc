// Which partitions an instance keeps warm copies of (cluster/standby_plan.h):
// the next members' in member order, never its own.
#include "profiled/cluster/standby_plan.h"

#include <catch2/catch.hpp>

namespace profiled::cluster {
namespace {

using Partitions = std::vector<int32_t>;

std::vector<PeerOwnership> Group(const std::string& self) {
  std::vector<PeerOwnership> peers = {{"c@h", {8, 9, 10, 11}}, {"a@h", {0, 1, 2, 3}},
                                      {"b@h", {4, 5, 6, 7}}};
  for (PeerOwnership& p : peers) p.self = p.member == self;
  return peers;
}

TEST_CASE("each member stands by for the partitions of the members after it, wrapping around",
          "[cluster][standby]") {
  CHECK(StandbyPartitions(Group("a@h"), "a@h", 1) == Partitions{4, 5, 6, 7});
  CHECK(StandbyPartitions(Group("b@h"), "b@h", 1) == Partitions{8, 9, 10, 11});
  CHECK(StandbyPartitions(Group("c@h"), "c@h", 1) == Partitions{0, 1, 2, 3});
  CHECK(StandbyPartitions(Group("c@h"), "c@h", 2) == Partitions{0, 1, 2, 3, 4, 5, 6, 7});
  // More replicas than other members: every other member's, once.
  CHECK(StandbyPartitions(Group("a@h"), "a@h", 3) == Partitions{4, 5, 6, 7, 8, 9, 10, 11});
  CHECK(StandbyPartitions(Group("a@h"), "a@h", 0).empty());
}

TEST_CASE("with two members each stands by for all of the other's partitions",
          "[cluster][standby]") {
  std::vector<PeerOwnership> peers = {{"x@h", {0, 2, 4}, true}, {"y@h", {1, 3, 5}}};
  CHECK(StandbyPartitions(peers, "x@h", 1) == Partitions{1, 3, 5});
  peers[0].self = false;
  peers[1].self = true;
  CHECK(StandbyPartitions(peers, "y@h", 1) == Partitions{0, 2, 4});
}

TEST_CASE("a member not yet heard from is placed by its name, and one alone stands by for nothing",
          "[cluster][standby]") {
  std::vector<PeerOwnership> peers = Group("");
  CHECK(StandbyPartitions(peers, "bb@h", 1) == Partitions{8, 9, 10, 11});
  CHECK(StandbyPartitions(peers, "0@h", 1) == Partitions{0, 1, 2, 3});
  CHECK(StandbyPartitions({}, "a@h", 1).empty());
  CHECK(StandbyPartitions({{"a@h", {0, 1}, true}}, "a@h", 3).empty());
}

TEST_CASE("a partition two members claim while it moves is never a standby of its owner",
          "[cluster][standby]") {
  std::vector<PeerOwnership> peers = {{"a@h", {0, 1, 4}, true}, {"b@h", {4, 5}}};
  CHECK(StandbyPartitions(peers, "a@h", 1) == Partitions{5});
}

}  // namespace
}  // namespace profiled::cluster
