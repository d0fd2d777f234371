// The lease rule of the members topic (cluster/lease.h), without a broker.
#include "profiled/cluster/lease.h"

#include <catch2/catch.hpp>

namespace profiled::cluster {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;
constexpr int64_t kTtl = 10'000;

std::optional<std::string> Lease(const std::string& instance, int64_t lease_offset,
                                 int64_t heartbeat_ms, std::string_view mode = kSingleMode,
                                 bool released = false, const std::string& group = "g") {
  MemberLease l;
  l.set_instance_id(instance);
  l.set_group_id(group);
  l.set_mode(std::string(mode));
  l.set_lease_offset(lease_offset);
  l.set_started_ms(heartbeat_ms);
  l.set_heartbeat_ms(heartbeat_ms);
  l.set_ttl_ms(kTtl);
  l.set_advertised_http(instance + ":9464");
  l.set_released(released);
  return l.SerializeAsString();
}

TEST_CASE("the lease that began first in the log holds the group, whatever the clocks say",
          "[cluster][lease]") {
  LeaseTable table("g");
  // b's clock runs ahead: it claims an earlier start, but a's record landed first.
  table.Apply(5, Lease("a", -1, kNow));
  table.Apply(6, Lease("b", -1, kNow - 5'000));
  const MemberLease* for_b = table.HolderBefore("b", kSingleMode, 6, kNow);
  REQUIRE(for_b != nullptr);
  CHECK(for_b->instance_id() == "a");
  CHECK(table.HolderBefore("a", kSingleMode, 5, kNow) == nullptr);
}

TEST_CASE("heartbeats keep a lease's place, and a lapsed, released or foreign lease holds nothing",
          "[cluster][lease]") {
  LeaseTable table("g");
  table.Apply(1, Lease("a", -1, kNow - 30'000));
  table.Apply(9, Lease("a", 1, kNow - 1'000));  // a heartbeat re-sent at offset 9
  // A lease that began at offset 4 yields to a's, which began at 1.
  const MemberLease* holder = table.HolderBefore("c", kSingleMode, 4, kNow);
  REQUIRE(holder != nullptr);
  CHECK(holder->instance_id() == "a");

  SECTION("just inside and just past the ttl") {
    CHECK(table.HolderBefore("c", kSingleMode, 4, kNow - 1'000 + kTtl - 1) != nullptr);
    CHECK(table.HolderBefore("c", kSingleMode, 4, kNow - 1'000 + kTtl) == nullptr);
  }
  SECTION("released") {
    table.Apply(10, Lease("a", 1, kNow, kSingleMode, /*released=*/true));
    CHECK(table.HolderBefore("c", kSingleMode, 4, kNow) == nullptr);
  }
  SECTION("an instance never yields to its own earlier life") {
    CHECK(table.HolderBefore("a", kSingleMode, 12, kNow) == nullptr);
  }
  SECTION("other groups, tombstones and unreadable records are not leases") {
    LeaseTable other("h");
    other.Apply(1, Lease("a", -1, kNow));
    other.Apply(2, std::nullopt);
    other.Apply(3, std::string("\xff\xff not a lease"));
    CHECK(other.AnyHolder("c", kSingleMode, kNow) == nullptr);
    CHECK(other.unreadable() == 1);
  }
}

TEST_CASE("single mode shares a group with no one, partitioned instances share it with each other",
          "[cluster][lease]") {
  LeaseTable table("g");
  table.Apply(1, Lease("p1", -1, kNow, kPartitionedMode));
  CHECK(table.HolderBefore("p2", kPartitionedMode, 2, kNow) == nullptr);
  CHECK(table.HolderBefore("s", kSingleMode, 2, kNow) != nullptr);
  LeaseTable single("g");
  single.Apply(1, Lease("s", -1, kNow, kSingleMode));
  CHECK(single.HolderBefore("p1", kPartitionedMode, 2, kNow) != nullptr);
}

TEST_CASE("AnyHolder finds a lease that began after ours: the group was taken while ours lapsed",
          "[cluster][lease]") {
  LeaseTable table("g");
  table.Apply(1, Lease("a", -1, kNow - 60'000));  // a's own, lapsed
  table.Apply(7, Lease("b", -1, kNow - 2'000));   // b took the group meanwhile
  CHECK(table.HolderBefore("a", kSingleMode, 1, kNow) == nullptr);
  const MemberLease* taken = table.AnyHolder("a", kSingleMode, kNow);
  REQUIRE(taken != nullptr);
  CHECK(taken->instance_id() == "b");
  const std::string said = DescribeHolder(*taken, kNow);
  CHECK_THAT(said, Catch::Contains("instance 'b' (http b:9464) holds group 'g' in single mode"));
  CHECK_THAT(said, Catch::Contains("last heard 2 s ago"));
  CHECK_THAT(said, Catch::Contains("ends 8 s from now"));
}

TEST_CASE("lease keys separate groups and instances", "[cluster][lease]") {
  CHECK(LeaseKey("ab", "c") != LeaseKey("a", "bc"));
  CHECK(LeaseKey("g", "i").size() == 3);
}

}  // namespace
}  // namespace profiled::cluster
