// The lease rule of the members topic (cluster/lease.h), without a broker:
// a log of records replayed into a table, as every instance replays it.
#include "profiled/cluster/lease.h"

#include <catch2/catch.hpp>

namespace profiled::cluster {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;
constexpr int64_t kTtl = 10'000;

struct Rec {
  std::string instance;
  int64_t lease_offset = -1;  // -1: a begin record
  int64_t at = kNow;          // heartbeat time
  std::string_view mode = kSingleMode;
  bool released = false;
  std::string host = "h";
  std::string group = "g";
};

std::optional<std::string> Encode(const Rec& r) {
  MemberLease l;
  l.set_instance_id(r.instance);
  l.set_host(r.host);
  l.set_group_id(r.group);
  l.set_mode(std::string(r.mode));
  l.set_lease_offset(r.lease_offset);
  l.set_started_ms(r.at);
  l.set_heartbeat_ms(r.at);
  l.set_ttl_ms(kTtl);
  l.set_advertised_http(r.instance + ":9464");
  l.set_released(r.released);
  return l.SerializeAsString();
}

Member M(const std::string& instance, const std::string& host = "h") { return {instance, host}; }

TEST_CASE("the lease that began first in the log holds the group, whatever the clocks say",
          "[cluster][lease]") {
  LeaseTable table("g");
  table.Apply(5, Encode({.instance = "a"}));
  // b's clock runs behind: its begin record claims an earlier time.
  table.Apply(6, Encode({.instance = "b", .at = kNow - 5'000}));
  // b yields: a's lease is live at b's time (not yet begun there, but live
  // by its ttl) -- and at any time a reader might judge.
  const MemberLease* holder = table.YieldedTo(M("b"));
  REQUIRE(holder != nullptr);
  CHECK(holder->instance_id() == "a");
  CHECK(table.YieldedTo(M("a")) == nullptr);
}

TEST_CASE("a begin record is judged at its own time, so a slow reader decides as a fast one",
          "[cluster][lease]") {
  LeaseTable table("g");
  table.Apply(1, Encode({.instance = "a", .at = kNow}));
  // b began 9.9 s after a's last word: a was still live then.
  table.Apply(2, Encode({.instance = "b", .at = kNow + kTtl - 100}));
  CHECK(table.YieldedTo(M("b")) != nullptr);
  // c began at a's ttl exactly: a was dead, c holds.
  table.Apply(3, Encode({.instance = "c", .at = kNow + kTtl}));
  CHECK(table.YieldedTo(M("c")) == nullptr);
}

TEST_CASE("a released, refused or foreign lease holds nothing", "[cluster][lease]") {
  LeaseTable table("g");
  table.Apply(1, Encode({.instance = "a"}));
  table.Apply(2, Encode({.instance = "refused", .at = kNow + 1}));  // yields to a
  REQUIRE(table.YieldedTo(M("refused")) != nullptr);

  SECTION("a refused starter whose release never landed does not hold the group") {
    // a lapses and begins again; the refused record is older but yielded.
    // a begins again while the refused record is still "live": it yielded.
    table.Apply(9, Encode({.instance = "a", .at = kNow + 9'000}));
    CHECK(table.YieldedTo(M("a")) == nullptr);
  }
  SECTION("released") {
    table.Apply(3, Encode({.instance = "a", .lease_offset = 1, .at = kNow + 1, .released = true}));
    table.Apply(4, Encode({.instance = "d", .at = kNow + 2}));
    CHECK(table.YieldedTo(M("d")) == nullptr);
  }
  SECTION("an instance never yields to its own earlier life on the same host") {
    table.Apply(4, Encode({.instance = "a", .at = kNow + 2}));
    CHECK(table.YieldedTo(M("a")) == nullptr);
  }
  SECTION("the same instance id on another host is another instance") {
    table.Apply(4, Encode({.instance = "a", .at = kNow + 2, .host = "other"}));
    CHECK(table.YieldedTo(M("a", "other")) != nullptr);
  }
  SECTION("other groups, tombstones and unreadable or implausible records are not leases") {
    LeaseTable other("h");
    other.Apply(1, Encode({.instance = "a", .at = kNow, .group = "h"}));
    other.Apply(2, std::nullopt);
    other.Apply(3, std::string("\xff\xff not a lease"));
    other.Apply(4, Encode({.instance = "z", .at = 5, .group = "h"}));  // 1970
    other.Apply(5, Encode({.instance = "b", .at = kNow + 1, .group = "h"}));
    CHECK(other.YieldedTo(M("b"))->instance_id() == "a");
    CHECK(other.unreadable() == 2);
  }
}

TEST_CASE("a lease dated beyond its ttl in the future is not believed", "[cluster][lease]") {
  LeaseTable table("g");
  table.Apply(1, Encode({.instance = "a", .at = kNow + 365LL * 24 * 3600 * 1000}));
  table.Apply(2, Encode({.instance = "b", .at = kNow}));
  CHECK(table.YieldedTo(M("b")) == nullptr);
  MemberLease ahead;
  ahead.set_heartbeat_ms(kNow + kTtl);
  ahead.set_ttl_ms(kTtl);
  CHECK(LiveAt(ahead, kNow));
  ahead.set_heartbeat_ms(kNow + kTtl + 1);
  CHECK_FALSE(LiveAt(ahead, kNow));
}

TEST_CASE("single mode shares a group with no one, partitioned instances share it with each other",
          "[cluster][lease]") {
  LeaseTable table("g");
  table.Apply(1, Encode({.instance = "p1", .mode = kPartitionedMode}));
  table.Apply(2, Encode({.instance = "p2", .at = kNow + 1, .mode = kPartitionedMode}));
  table.Apply(3, Encode({.instance = "s", .at = kNow + 2}));
  CHECK(table.YieldedTo(M("p2")) == nullptr);
  CHECK(table.YieldedTo(M("s")) != nullptr);
  LeaseTable single("g");
  single.Apply(1, Encode({.instance = "s"}));
  single.Apply(2, Encode({.instance = "p1", .at = kNow + 1, .mode = kPartitionedMode}));
  CHECK(single.YieldedTo(M("p1")) != nullptr);
}

TEST_CASE("an earlier lease renewed after a later one began means the later gives way",
          "[cluster][lease]") {
  LeaseTable table("g");
  table.Apply(1, Encode({.instance = "a"}));
  // b's clock is 15 s ahead: a looks dead at b's time, b holds...
  table.Apply(2, Encode({.instance = "b", .at = kNow + 15'000}));
  REQUIRE(table.YieldedTo(M("b")) == nullptr);
  CHECK(table.RenewedAfter(M("b")) == nullptr);
  // ... until a renews: it was alive all along.
  table.Apply(3, Encode({.instance = "a", .lease_offset = 1, .at = kNow + 3'000}));
  const MemberLease* earlier = table.RenewedAfter(M("b"));
  REQUIRE(earlier != nullptr);
  CHECK(earlier->instance_id() == "a");
  CHECK(table.RenewedAfter(M("a")) == nullptr);
  const std::string said = DescribeHolder(*earlier, kNow + 5'000);
  CHECK_THAT(said, Catch::Contains(
                       "instance 'a' on host 'h' (http a:9464) holds group 'g' in single mode"));
  CHECK_THAT(said, Catch::Contains("last heard 2 s ago"));
  CHECK_THAT(said, Catch::Contains("ends 8 s from now"));
}

TEST_CASE("lease keys separate groups, instances and hosts", "[cluster][lease]") {
  CHECK(LeaseKey("ab", M("c")) != LeaseKey("a", M("bc")));
  CHECK(LeaseKey("g", M("i", "h1")) != LeaseKey("g", M("i", "h2")));
}

}  // namespace
}  // namespace profiled::cluster
