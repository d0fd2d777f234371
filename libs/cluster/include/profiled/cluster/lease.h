// Leases on the members topic: who may consume a group's input. Pure, no
// I/O (GroupLease does the reading and writing).
//
// Every instance appends a MemberLease when it starts (a "begin" record)
// and re-sends it every ttl/3; a lease is live while its last heartbeat is
// younger than its ttl and it was not released. The order of leases is the
// offset of their begin records: the log orders them the same way for
// every reader, so of two instances starting at once the one whose begin
// record landed first wins. Every reader replays the same rule on the
// same log:
//   - a begin record yields (its writer refuses to run) when another live,
//     excluding lease that did not yield began before it — live at the
//     begin record's own time, so a slow reader judges as a fast one would;
//   - a writer that sees an earlier lease renewed after its own began was
//     wrong about that lease being dead (clock skew): it yields too.
//
//   LeaseTable table("group-a");
//   for (const kafka::LogRecord& r : records) table.Apply(r.offset, r.value);
//   if (table.Yielded(me)) ... refuse
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "profiled/internal/v1/cluster.pb.h"

namespace profiled::cluster {

using internal::v1::MemberLease;

inline constexpr std::string_view kSingleMode = "single";
inline constexpr std::string_view kPartitionedMode = "partitioned";

// Bounds every reader applies to what a record claims.
inline constexpr int64_t kMinLeaseTtlMs = 3'000;
inline constexpr int64_t kMaxLeaseTtlMs = 600'000;

// Who wrote a lease: one instance id on one host. The same id on another
// host is another instance (a configuration mistake, never "itself").
struct Member {
  std::string instance_id;
  std::string host;
  bool operator==(const Member&) const = default;
};

// The members topic key of a member's lease in a group: compaction keeps
// each member's newest word.
std::string LeaseKey(std::string_view group_id, const Member& member);

// Offset of the record that began the lease `lease` was read from at `offset`.
int64_t LeaseOrder(const MemberLease& lease, int64_t offset);

// Live at `now_ms`: not released, heard within its ttl, and not dated
// further ahead than its ttl (a clock that far ahead is not believed).
bool LiveAt(const MemberLease& lease, int64_t now_ms);

// Whether an instance in `mode` must yield to a live lease in `other_mode`:
// single mode shares the group with no one; partitioned instances share it
// with each other only.
bool Excludes(std::string_view mode, std::string_view other_mode);

// The newest lease of each member of one group, folded from the members
// log in offset order.
class LeaseTable {
 public:
  explicit LeaseTable(std::string group_id) : group_id_(std::move(group_id)) {}

  // One record of the members topic. Tombstones and other groups' records
  // are skipped; an unreadable or implausible value is skipped and counted.
  void Apply(int64_t offset, std::optional<std::string_view> value);

  // The lease a member's current begin record yielded to, or null when it
  // did not yield (or the member is unknown).
  const MemberLease* YieldedTo(const Member& member) const;
  // An earlier, non-yielded lease that excludes `member`'s and was renewed
  // after `member`'s began: two instances believed they held the group.
  // Null when there is none.
  const MemberLease* RenewedAfter(const Member& member) const;

  // Every member's newest lease, with the offset that began it and whether
  // that begin yielded (its writer refused to run), earliest lease first.
  struct View {
    const MemberLease* lease;
    int64_t order;
    bool yielded;
  };
  std::vector<View> Members() const;

  size_t unreadable() const { return unreadable_; }

 private:
  struct Entry {
    MemberLease lease;
    int64_t order = 0;        // offset of its begin record
    int64_t last_offset = 0;  // offset of its newest record
    // The begin record came while an earlier lease held the group.
    bool yielded = false;
    std::string yielded_to;   // that lease's member key
  };
  const Entry* Find(const Member& member) const;
  // The earliest live, non-yielded lease of another member that began
  // before `before` and excludes `mode`.
  const std::pair<const std::string, Entry>* Holder(const std::string& self, std::string_view mode,
                                                    int64_t before, int64_t at_ms) const;

  std::string group_id_;
  absl::flat_hash_map<std::string, Entry> latest_;  // by member key
  size_t unreadable_ = 0;
};

// "instance X on host H (http A) holds group G since T, last heard N s ago".
std::string DescribeHolder(const MemberLease& holder, int64_t now_ms);

}  // namespace profiled::cluster
