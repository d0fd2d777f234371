#include "profiled/cluster/lease.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace profiled::cluster {
namespace {

// NUL-separated: ids and hosts may hold any printable character.
std::string MemberKey(std::string_view instance_id, std::string_view host) {
  std::string key(instance_id);
  key.push_back('\0');
  key.append(host);
  return key;
}

// Heartbeat times outside [2001, 2286] are not a clock anyone runs.
constexpr int64_t kMinPlausibleMs = 1'000'000'000'000;
constexpr int64_t kMaxPlausibleMs = 10'000'000'000'000;

}  // namespace

std::string LeaseKey(std::string_view group_id, const Member& member) {
  std::string key(group_id);
  key.push_back('\0');
  key.append(MemberKey(member.instance_id, member.host));
  return key;
}

int64_t LeaseOrder(const MemberLease& lease, int64_t offset) {
  return lease.lease_offset() >= 0 ? lease.lease_offset() : offset;
}

bool LiveAt(const MemberLease& lease, int64_t now_ms) {
  return !lease.released() && now_ms < lease.heartbeat_ms() + lease.ttl_ms() &&
         lease.heartbeat_ms() - now_ms <= lease.ttl_ms();
}

bool Excludes(std::string_view mode, std::string_view other_mode) {
  return mode == kSingleMode || other_mode == kSingleMode;
}

void LeaseTable::Apply(int64_t offset, std::optional<std::string_view> value) {
  if (!value) return;
  MemberLease lease;
  if (!lease.ParseFromArray(value->data(), static_cast<int>(value->size())) ||
      lease.instance_id().empty() || lease.heartbeat_ms() < kMinPlausibleMs ||
      lease.heartbeat_ms() > kMaxPlausibleMs) {
    ++unreadable_;
    return;
  }
  if (lease.group_id() != group_id_) return;
  lease.set_ttl_ms(std::clamp(lease.ttl_ms(), kMinLeaseTtlMs, kMaxLeaseTtlMs));
  const std::string key = MemberKey(lease.instance_id(), lease.host());
  const bool begins = lease.lease_offset() < 0;
  std::string yielded_to;
  if (begins) {
    // Judged at the begin record's own time, before it joins the table.
    if (const auto* holder = Holder(key, lease.mode(), offset, lease.heartbeat_ms())) {
      yielded_to = holder->first;
    }
  }
  Entry& entry = latest_[key];
  entry.order = LeaseOrder(lease, offset);
  entry.last_offset = offset;
  if (begins) {
    entry.yielded = !yielded_to.empty();
    entry.yielded_to = std::move(yielded_to);
  }
  entry.lease = std::move(lease);
}

const std::pair<const std::string, LeaseTable::Entry>* LeaseTable::Holder(
    const std::string& self, std::string_view mode, int64_t before, int64_t at_ms) const {
  const std::pair<const std::string, Entry>* best = nullptr;
  for (const auto& kv : latest_) {
    const Entry& e = kv.second;
    if (kv.first == self || e.yielded || e.order >= before || !LiveAt(e.lease, at_ms) ||
        !Excludes(mode, e.lease.mode())) {
      continue;
    }
    if (best == nullptr || e.order < best->second.order) best = &kv;
  }
  return best;
}

const LeaseTable::Entry* LeaseTable::Find(const Member& member) const {
  auto it = latest_.find(MemberKey(member.instance_id, member.host));
  return it == latest_.end() ? nullptr : &it->second;
}

const MemberLease* LeaseTable::YieldedTo(const Member& member) const {
  const Entry* e = Find(member);
  if (e == nullptr || !e->yielded) return nullptr;
  auto it = latest_.find(e->yielded_to);
  return it == latest_.end() ? nullptr : &it->second.lease;
}

const MemberLease* LeaseTable::RenewedAfter(const Member& member) const {
  const Entry* mine = Find(member);
  if (mine == nullptr) return nullptr;
  const Entry* best = nullptr;
  for (const auto& [key, e] : latest_) {
    if (&e == mine || e.yielded || e.lease.released() || e.order >= mine->order ||
        e.last_offset <= mine->order || !Excludes(mine->lease.mode(), e.lease.mode())) {
      continue;
    }
    if (best == nullptr || e.order < best->order) best = &e;
  }
  return best == nullptr ? nullptr : &best->lease;
}

std::vector<LeaseTable::View> LeaseTable::Members() const {
  std::vector<View> out;
  out.reserve(latest_.size());
  for (const auto& [key, e] : latest_) out.push_back({&e.lease, e.order, e.yielded});
  std::sort(out.begin(), out.end(), [](const View& a, const View& b) { return a.order < b.order; });
  return out;
}

std::string DescribeHolder(const MemberLease& holder, int64_t now_ms) {
  return absl::StrCat(
      "instance '", holder.instance_id(), "'",
      holder.host().empty() ? "" : absl::StrCat(" on host '", holder.host(), "'"),
      holder.advertised_http().empty() ? "" : absl::StrCat(" (http ", holder.advertised_http(), ")"),
      " holds group '", holder.group_id(), "' in ", holder.mode(), " mode since ",
      absl::FormatTime(absl::RFC3339_sec, absl::FromUnixMillis(holder.started_ms()),
                       absl::UTCTimeZone()),
      ", last heard ", (now_ms - holder.heartbeat_ms()) / 1000, " s ago; its lease ends ",
      (holder.heartbeat_ms() + holder.ttl_ms() - now_ms) / 1000,
      " s from now unless it heartbeats again");
}

}  // namespace profiled::cluster
