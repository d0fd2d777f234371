// Leases on the members topic: who may consume a group's input. Pure, no
// I/O (SingleModeFence does the reading and writing).
//
// Every instance appends a MemberLease when it starts and re-sends it every
// ttl/3; a lease is live while its last heartbeat is younger than its ttl
// and it was not released. The order of leases is the offset of the record
// that began each one: the log orders them the same way for every reader,
// whatever the instances' clocks say, so of two instances starting at once
// the one whose first record landed first wins.
//
//   LeaseTable table("group-a");
//   for (const kafka::LogRecord& r : records) table.Apply(r.offset, r.value);
//   if (const MemberLease* holder = table.HolderBefore("me", "single", my_offset, now)) ...
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "profiled/internal/v1/cluster.pb.h"

namespace profiled::cluster {

using internal::v1::MemberLease;

inline constexpr std::string_view kSingleMode = "single";
inline constexpr std::string_view kPartitionedMode = "partitioned";

// The members topic key of an instance's lease: one per instance and group,
// so compaction keeps each instance's newest word.
std::string LeaseKey(std::string_view group_id, std::string_view instance_id);

// Offset of the record that began the lease `lease` was read from at `offset`.
int64_t LeaseOrder(const MemberLease& lease, int64_t offset);

bool LiveAt(const MemberLease& lease, int64_t now_ms);

// Whether an instance in `mode` must yield to a live lease in `other_mode`:
// single mode shares the group with no one; partitioned instances share it
// with each other only.
bool Excludes(std::string_view mode, std::string_view other_mode);

// The newest lease of each instance of one group, folded from the members
// log in offset order.
class LeaseTable {
 public:
  explicit LeaseTable(std::string group_id) : group_id_(std::move(group_id)) {}

  // One record of the members topic. Tombstones and other groups' records
  // are skipped; an unreadable value is skipped and counted.
  void Apply(int64_t offset, std::optional<std::string_view> value);

  // The earliest live lease of another instance that began before
  // `lease_order` and excludes `mode`: the holder an instance whose lease
  // began at `lease_order` must yield to. Null when there is none.
  const MemberLease* HolderBefore(std::string_view self, std::string_view mode,
                                  int64_t lease_order, int64_t now_ms) const;
  // The earliest live lease of another instance that excludes `mode`,
  // whenever it began.
  const MemberLease* AnyHolder(std::string_view self, std::string_view mode, int64_t now_ms) const;

  size_t unreadable() const { return unreadable_; }

 private:
  struct Entry {
    MemberLease lease;
    int64_t order = 0;
  };
  const Entry* Earliest(std::string_view self, std::string_view mode, int64_t before,
                        int64_t now_ms) const;

  std::string group_id_;
  absl::flat_hash_map<std::string, Entry> latest_;  // by instance id
  size_t unreadable_ = 0;
};

// "instance X (http H) holds the lease of group G since T, last heard N s ago".
std::string DescribeHolder(const MemberLease& holder, int64_t now_ms);

}  // namespace profiled::cluster
