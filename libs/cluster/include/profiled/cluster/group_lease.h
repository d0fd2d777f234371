// GroupLease: this instance's lease on its consumer group, kept on the
// members topic (lease.h has the rule). In single mode it is the fence: a
// second instance with the same group refuses to start instead of joining
// the group and silently taking half the partitions (and half of each
// person's events).
//
//   ASSIGN_OR_RETURN(auto lease, GroupLease::Acquire(options, properties, wall_clock));
//   ...
//   if (lease->state() != GroupLease::State::kHeld) pause;  // kLost: stop
//   lease->Release();   // on a clean stop: the next instance may start at once
//
// A thread re-sends the lease every ttl/3. When no heartbeat was
// acknowledged for two thirds of the ttl (broker unreachable, the process
// stopped or starved) it is `kLapsed`: others will soon count it dead, and
// the owner must not commit work until it has taken a new lease — or finds
// that another instance took the group meanwhile (`kLost`, for good).
//
// Clocks: liveness compares a writer's heartbeat time with the reader's
// clock, so instances' clocks must agree to well within the ttl (NTP).
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "profiled/cluster/lease.h"
#include "profiled/cluster/standby_plan.h"
#include "profiled/core/clock.h"
#include "profiled/kafka/partition_log.h"
#include "profiled/kafka/properties.h"

namespace profiled::cluster {

struct GroupLeaseOptions {
  // The members topic; records go to its partition 0. Compacted on a real
  // cluster (cleanup.policy=compact); any partition count.
  std::string topic = "profiled.members";
  std::string group_id;
  // Stable across restarts of the same instance (its own earlier lease
  // never blocks it): e.g. the pod name. Required.
  std::string instance_id;
  std::string mode = std::string(kSingleMode);
  // host:port where this instance answers /v1; informative.
  std::string advertised_http;
  // A lease not re-sent for this long is dead (3 s to 10 min); its owner
  // pauses at two thirds of it. Default: 10 s.
  absl::Duration ttl = absl::Seconds(10);

  [[nodiscard]] absl::Status Validate() const;
};

class GroupLease {
 public:
  enum class State { kHeld, kLapsed, kLost };

  // Appends a new lease and reads the members topic up to it.
  // FailedPrecondition naming the holder when another live instance holds
  // the group first; Unavailable when the topic cannot be written or read.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GroupLease>> Acquire(
      const GroupLeaseOptions& options, const kafka::Properties& properties,
      const core::Clock& wall_clock);
  // The same over a log opened by the caller (on options.topic, partition 0).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GroupLease>> Acquire(
      const GroupLeaseOptions& options, std::unique_ptr<kafka::PartitionLog> log,
      const core::Clock& wall_clock);
  ~GroupLease();

  State state() const;
  // Why the lease is lapsed or lost (empty while held).
  std::string reason() const;
  // Offset of the record that began the current lease.
  int64_t lease_order() const;

  // Stops heartbeating and marks the lease released. Idempotent.
  void Release();

  // Partitioned mode: the partitions this instance owns, sent with every
  // heartbeat from the next on.
  void SetOwned(std::vector<int32_t> partitions);
  // The advertised address of the live partitioned member that said last
  // that it owns `partition`, as of this instance's last heartbeat (up to
  // ttl/3 old); nullopt when none.
  std::optional<std::string> AddressOf(int32_t partition) const;
  // How many of partitions 0..partitions-1 no live member says it owns, as
  // of the same heartbeat: what the unowned-partitions alert watches.
  int32_t UnownedOf(int32_t partitions) const;
  // The live partitioned members and what each owns, as of the same
  // heartbeat (this instance marked `self`): what standbys are planned on.
  std::vector<PeerOwnership> Peers() const;
  // This instance's name in Peers().
  std::string member_name() const;

 private:
  using Steady = std::chrono::steady_clock::time_point;
  GroupLease(const GroupLeaseOptions& options, const core::Clock& wall_clock,
             std::unique_ptr<kafka::PartitionLog> log);
  // Appends a lease record that begins a new lease and reads up to it:
  // the holder to yield to, if any.
  absl::StatusOr<const MemberLease*> Begin(Steady sent, int timeout_ms);
  absl::Status Heartbeat(Steady sent);
  absl::Status ReadTo(int64_t until, int timeout_ms);
  MemberLease Record(bool beginning, bool released) const;
  void Run();
  void StopHeartbeats();
  // Who owns which partition, from the table just read.
  void RefreshOwners();

  const GroupLeaseOptions options_;
  const Member self_;
  const core::Clock& wall_clock_;
  const int timeout_ms_;
  // Used by Acquire and then the heartbeat thread only.
  std::unique_ptr<kafka::PartitionLog> log_;
  LeaseTable table_;
  int64_t next_offset_ = 0;
  int64_t started_ms_ = 0;

  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kHeld;
  std::string lost_reason_ ABSL_GUARDED_BY(mu_);
  // The last heartbeat's failure, until one succeeds.
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  int64_t order_ ABSL_GUARDED_BY(mu_) = -1;
  // When the last acknowledged lease record was sent.
  Steady confirmed_ ABSL_GUARDED_BY(mu_);
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<int32_t> owned_ ABSL_GUARDED_BY(mu_);
  // Partition -> (heartbeat ms, advertised address) of its newest claimant.
  absl::flat_hash_map<int32_t, std::pair<int64_t, std::string>> owners_ ABSL_GUARDED_BY(mu_);
  std::vector<PeerOwnership> peers_ ABSL_GUARDED_BY(mu_);

  absl::Notification stop_;
  std::thread thread_;
};

// "<hostname>:<absolute store path>": stable for one instance, different
// for two on one host (they cannot share a store).
std::string DefaultInstanceId(const std::string& store_path);

}  // namespace profiled::cluster
