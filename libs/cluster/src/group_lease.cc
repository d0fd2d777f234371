#include "profiled/cluster/group_lease.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"

namespace profiled::cluster {
namespace {

std::string MemberName(const std::string& instance_id, const std::string& host) {
  return absl::StrCat(instance_id, "@", host);
}

std::chrono::steady_clock::duration ToSteady(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

std::string HostName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return "localhost";
  return host;
}

// A new client's first fetch can take a second or more: starting may take
// longer than a heartbeat may (the order of leases is the log's).
constexpr int kStartTimeoutMs = 15'000;

}  // namespace

absl::Status GroupLeaseOptions::Validate() const {
  std::vector<std::string> problems;
  if (topic.empty()) problems.push_back("topic: is required");
  if (group_id.empty()) problems.push_back("group_id: is required");
  if (instance_id.empty()) problems.push_back("instance_id: is required");
  if (mode != kSingleMode && mode != kPartitionedMode) {
    problems.push_back(absl::StrCat("mode: '", mode, "' is not single or partitioned"));
  }
  if (ttl < absl::Milliseconds(kMinLeaseTtlMs) || ttl > absl::Milliseconds(kMaxLeaseTtlMs)) {
    problems.push_back("ttl: must be between 3s and 10m");
  }
  if (problems.empty()) return absl::OkStatus();
  std::string all;
  for (const std::string& p : problems) absl::StrAppend(&all, all.empty() ? "" : "\n", p);
  return absl::InvalidArgumentError(all);
}

std::string DefaultInstanceId(const std::string& store_path) {
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(store_path, ec);
  return absl::StrCat(HostName(), ":", ec ? store_path : path.lexically_normal().string());
}

GroupLease::GroupLease(const GroupLeaseOptions& options, const core::Clock& wall_clock,
                       std::unique_ptr<kafka::PartitionLog> log)
    : options_(options),
      self_{options.instance_id, HostName()},
      wall_clock_(wall_clock),
      // Each append or read may take a third of the ttl: a heartbeat that
      // needs longer is as good as lost.
      timeout_ms_(static_cast<int>(absl::ToInt64Milliseconds(options.ttl) / 3)),
      log_(std::move(log)),
      table_(options.group_id) {}

absl::StatusOr<std::unique_ptr<GroupLease>> GroupLease::Acquire(const GroupLeaseOptions& options,
                                                                const kafka::Properties& properties,
                                                                const core::Clock& wall_clock) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::PartitionLog> log,
                   kafka::PartitionLog::Open(properties, options.topic, 0));
  return Acquire(options, std::move(log), wall_clock);
}

absl::StatusOr<std::unique_ptr<GroupLease>> GroupLease::Acquire(
    const GroupLeaseOptions& options, std::unique_ptr<kafka::PartitionLog> log,
    const core::Clock& wall_clock) {
  RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<GroupLease> lease(new GroupLease(options, wall_clock, std::move(log)));
  auto not_written = [&](const absl::Status& s) {
    return absl::UnavailableError(absl::StrCat(
        "cluster lease on topic '", options.topic, "': ", s.message(),
        " (the topic must exist or be auto-created: 1 partition, cleanup.policy=compact)"));
  };
  // Read what is there first: the reader is warm before our lease begins,
  // so reading up to it takes milliseconds, not a first fetch's second.
  absl::StatusOr<kafka::LogRange> range = lease->log_->Range(kStartTimeoutMs);
  if (!range.ok()) return not_written(range.status());
  lease->next_offset_ = range->low;
  if (absl::Status s = lease->ReadTo(range->high, kStartTimeoutMs); !s.ok()) return not_written(s);
  lease->started_ms_ = wall_clock.NowMs();
  // A begin that took most of a ttl is not trusted: others may already
  // count it dead. Tried a few times, then given up.
  absl::StatusOr<const MemberLease*> holder = absl::UnavailableError("not begun");
  for (int attempt = 0; attempt < 3; ++attempt) {
    holder = lease->Begin(std::chrono::steady_clock::now(), kStartTimeoutMs);
    if (!holder.ok() || *holder != nullptr || lease->state() == State::kHeld) break;
  }
  if (!holder.ok() || (*holder == nullptr && lease->state() != State::kHeld)) {
    lease->Release();  // an append that timed out may still have landed
    return not_written(holder.ok() ? absl::DeadlineExceededError("beginning took most of a ttl")
                                   : holder.status());
  }
  if (*holder != nullptr) {
    const std::string who = DescribeHolder(**holder, wall_clock.NowMs());
    lease->Release();
    return absl::FailedPreconditionError(absl::StrCat(
        "not starting: ", who,
        ". In single mode one instance holds a group: stop that one "
        "first (a clean stop frees the lease at once), or give this one its own input.group_id"));
  }
  lease->thread_ = std::thread([raw = lease.get()] { raw->Run(); });
  return lease;
}

GroupLease::~GroupLease() { StopHeartbeats(); }

void GroupLease::StopHeartbeats() {
  // Release and the destructor both stop it, on the owner's thread.
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

MemberLease GroupLease::Record(bool beginning, bool released) const {
  MemberLease r;
  r.set_instance_id(self_.instance_id);
  r.set_host(self_.host);
  r.set_group_id(options_.group_id);
  r.set_mode(options_.mode);
  r.set_lease_offset(beginning ? -1 : lease_order());
  r.set_started_ms(started_ms_);
  r.set_heartbeat_ms(wall_clock_.NowMs());
  r.set_ttl_ms(absl::ToInt64Milliseconds(options_.ttl));
  r.set_advertised_http(options_.advertised_http);
  r.set_released(released);
  absl::MutexLock lock(&mu_);
  for (int32_t partition : owned_) r.add_owned_partitions(partition);
  return r;
}

absl::Status GroupLease::ReadTo(int64_t until, int timeout_ms) {
  auto apply = [&](const kafka::LogRecord& r) {
    table_.Apply(r.offset, r.value);
    return absl::OkStatus();
  };
  absl::Status s = log_->Read(next_offset_, until, timeout_ms, apply);
  if (absl::IsOutOfRange(s)) {
    // Retention removed what we had not read yet: read what is there, once.
    ASSIGN_OR_RETURN(kafka::LogRange range, log_->Range(timeout_ms));
    next_offset_ = range.low;
    s = log_->Read(next_offset_, until, timeout_ms, apply);
  }
  RETURN_IF_ERROR(s);
  next_offset_ = std::max(next_offset_, until);
  return absl::OkStatus();
}

absl::StatusOr<const MemberLease*> GroupLease::Begin(Steady sent, int timeout_ms) {
  ASSIGN_OR_RETURN(int64_t offset,
                   log_->Append(LeaseKey(options_.group_id, self_),
                                Record(/*beginning=*/true, false).SerializeAsString(), timeout_ms));
  RETURN_IF_ERROR(ReadTo(offset + 1, timeout_ms));
  RefreshOwners();
  // The table judged our begin record at its own time, as every reader does.
  const MemberLease* holder = table_.YieldedTo(self_);
  absl::MutexLock lock(&mu_);
  order_ = offset;
  last_error_.clear();
  if (holder == nullptr) {
    state_ = State::kHeld;
    confirmed_ = sent;
  }
  return holder;
}

absl::Status GroupLease::Heartbeat(Steady sent) {
  ASSIGN_OR_RETURN(int64_t offset,
                   log_->Append(LeaseKey(options_.group_id, self_),
                                Record(false, false).SerializeAsString(), timeout_ms_));
  RETURN_IF_ERROR(ReadTo(offset + 1, timeout_ms_));
  RefreshOwners();
  // An earlier lease renewed after ours began: its owner was alive while we
  // thought it dead (clocks apart by more than the ttl). Ours gives way.
  if (const MemberLease* earlier = table_.RenewedAfter(self_)) {
    const std::string who = DescribeHolder(*earlier, wall_clock_.NowMs());
    LogError("cluster lease lost: an earlier lease was renewed after ours began: ", who);
    absl::MutexLock lock(&mu_);
    state_ = State::kLost;
    lost_reason_ = absl::StrCat(
        "lease lost: an earlier lease was renewed after ours began "
        "(are the instances' clocks in sync?): ",
        who);
    return absl::OkStatus();
  }
  absl::MutexLock lock(&mu_);
  confirmed_ = sent;
  last_error_.clear();
  return absl::OkStatus();
}

void GroupLease::Run() {
  const absl::Duration interval = options_.ttl / 3;
  while (!stop_.WaitForNotificationWithTimeout(interval)) {
    const Steady sent = std::chrono::steady_clock::now();
    const State now = state();
    if (now == State::kLost) return;
    if (now == State::kHeld) {
      if (absl::Status s = Heartbeat(sent); !s.ok()) {
        LogWarn("cluster lease heartbeat failed: ", s.message());
        absl::MutexLock lock(&mu_);
        last_error_ = std::string(s.message());
      }
      continue;
    }
    // Lapsed: others may have seen the lease die and taken the group. A
    // new lease, ordered after whatever began meanwhile, says.
    absl::StatusOr<const MemberLease*> holder = Begin(sent, timeout_ms_);
    if (!holder.ok()) {
      absl::MutexLock lock(&mu_);
      last_error_ = std::string(holder.status().message());
      continue;
    }
    if (*holder != nullptr) {
      const std::string who = DescribeHolder(**holder, wall_clock_.NowMs());
      LogError("cluster lease lost while it had lapsed: ", who);
      absl::MutexLock lock(&mu_);
      state_ = State::kLost;
      lost_reason_ = absl::StrCat("lease lost while it had lapsed: ", who);
      return;
    }
    LogInfo("cluster lease taken again after it had lapsed");
  }
}

GroupLease::State GroupLease::state() const {
  absl::MutexLock lock(&mu_);
  // Held only until two thirds of the ttl: readers count the lease dead at
  // a whole ttl, and a batch begun just before must commit before that.
  if (state_ == State::kHeld &&
      std::chrono::steady_clock::now() - confirmed_ >= ToSteady(options_.ttl * 2 / 3)) {
    return State::kLapsed;
  }
  return state_;
}

std::string GroupLease::reason() const {
  const State s = state();
  absl::MutexLock lock(&mu_);
  switch (s) {
    case State::kHeld:
      return "";
    case State::kLost:
      return lost_reason_;
    case State::kLapsed:
      break;
  }
  return absl::StrCat("lease not renewed for ", absl::FormatDuration(options_.ttl * 2 / 3),
                      last_error_.empty() ? "" : absl::StrCat(" (", last_error_, ")"),
                      ": consumption paused until the lease is confirmed");
}

void GroupLease::SetOwned(std::vector<int32_t> partitions) {
  absl::MutexLock lock(&mu_);
  owned_ = std::move(partitions);
}

void GroupLease::RefreshOwners() {
  const int64_t now_ms = wall_clock_.NowMs();
  absl::flat_hash_map<int32_t, std::pair<int64_t, std::string>> owners;
  std::vector<PeerOwnership> peers;
  for (const LeaseTable::View& member : table_.Members()) {
    const MemberLease& lease = *member.lease;
    if (member.yielded || lease.mode() != kPartitionedMode || !LiveAt(lease, now_ms)) continue;
    peers.push_back({MemberName(lease.instance_id(), lease.host()),
                     {lease.owned_partitions().begin(), lease.owned_partitions().end()},
                     lease.instance_id() == self_.instance_id && lease.host() == self_.host});
    for (int32_t partition : lease.owned_partitions()) {
      auto [it, added] =
          owners.try_emplace(partition, lease.heartbeat_ms(), lease.advertised_http());
      // Two claimants while a partition moves: the one heard from last.
      if (!added && lease.heartbeat_ms() > it->second.first) {
        it->second = {lease.heartbeat_ms(), lease.advertised_http()};
      }
    }
  }
  absl::MutexLock lock(&mu_);
  owners_ = std::move(owners);
  peers_ = std::move(peers);
}

std::vector<PeerOwnership> GroupLease::Peers() const {
  absl::MutexLock lock(&mu_);
  return peers_;
}

std::string GroupLease::member_name() const { return MemberName(self_.instance_id, self_.host); }

std::optional<std::string> GroupLease::AddressOf(int32_t partition) const {
  absl::MutexLock lock(&mu_);
  auto it = owners_.find(partition);
  if (it == owners_.end()) return std::nullopt;
  return it->second.second;
}

int32_t GroupLease::UnownedOf(int32_t partitions) const {
  absl::MutexLock lock(&mu_);
  int32_t unowned = 0;
  for (int32_t partition = 0; partition < partitions; ++partition) {
    unowned += owners_.contains(partition) ? 0 : 1;
  }
  return unowned;
}

int64_t GroupLease::lease_order() const {
  absl::MutexLock lock(&mu_);
  return order_;
}

void GroupLease::Release() {
  StopHeartbeats();
  {
    absl::MutexLock lock(&mu_);
    if (released_) return;
    released_ = true;
  }
  absl::StatusOr<int64_t> at =
      log_->Append(LeaseKey(options_.group_id, self_),
                   Record(false, /*released=*/true).SerializeAsString(), timeout_ms_);
  if (!at.ok())
    LogWarn("cluster lease not released (it expires by itself): ", at.status().message());
}

}  // namespace profiled::cluster
