#include "profiled/cluster/lease.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace profiled::cluster {

std::string LeaseKey(std::string_view group_id, std::string_view instance_id) {
  // NUL-separated: group and instance ids may hold any printable character.
  std::string key(group_id);
  key.push_back('\0');
  key.append(instance_id);
  return key;
}

int64_t LeaseOrder(const MemberLease& lease, int64_t offset) {
  return lease.lease_offset() >= 0 ? lease.lease_offset() : offset;
}

bool LiveAt(const MemberLease& lease, int64_t now_ms) {
  return !lease.released() && now_ms < lease.heartbeat_ms() + lease.ttl_ms();
}

bool Excludes(std::string_view mode, std::string_view other_mode) {
  return mode == kSingleMode || other_mode == kSingleMode;
}

void LeaseTable::Apply(int64_t offset, std::optional<std::string_view> value) {
  if (!value) return;
  MemberLease lease;
  if (!lease.ParseFromArray(value->data(), static_cast<int>(value->size())) ||
      lease.instance_id().empty()) {
    ++unreadable_;
    return;
  }
  if (lease.group_id() != group_id_) return;
  Entry& entry = latest_[lease.instance_id()];
  entry.order = LeaseOrder(lease, offset);
  entry.lease = std::move(lease);
}

const LeaseTable::Entry* LeaseTable::Earliest(std::string_view self, std::string_view mode,
                                              int64_t before, int64_t now_ms) const {
  const Entry* best = nullptr;
  for (const auto& [instance, entry] : latest_) {
    if (instance == self || entry.order >= before || !LiveAt(entry.lease, now_ms) ||
        !Excludes(mode, entry.lease.mode())) {
      continue;
    }
    if (best == nullptr || entry.order < best->order) best = &entry;
  }
  return best;
}

const MemberLease* LeaseTable::HolderBefore(std::string_view self, std::string_view mode,
                                            int64_t lease_order, int64_t now_ms) const {
  const Entry* e = Earliest(self, mode, lease_order, now_ms);
  return e == nullptr ? nullptr : &e->lease;
}

const MemberLease* LeaseTable::AnyHolder(std::string_view self, std::string_view mode,
                                         int64_t now_ms) const {
  const Entry* e = Earliest(self, mode, std::numeric_limits<int64_t>::max(), now_ms);
  return e == nullptr ? nullptr : &e->lease;
}

std::string DescribeHolder(const MemberLease& holder, int64_t now_ms) {
  return absl::StrCat(
      "instance '", holder.instance_id(), "'",
      holder.advertised_http().empty() ? "" : absl::StrCat(" (http ", holder.advertised_http(), ")"),
      " holds group '", holder.group_id(), "' in ", holder.mode(), " mode since ",
      absl::FormatTime(absl::RFC3339_sec, absl::FromUnixMillis(holder.started_ms()),
                       absl::UTCTimeZone()),
      ", last heard ", (now_ms - holder.heartbeat_ms()) / 1000, " s ago; its lease ends ",
      (holder.heartbeat_ms() + holder.ttl_ms() - now_ms) / 1000,
      " s from now unless it heartbeats again");
}

}  // namespace profiled::cluster
