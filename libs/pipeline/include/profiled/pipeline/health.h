// Health: whether profiled is making progress, and if not, why — in one
// place every thread reports to and every probe reads.
//
//   Health health(registry, {.ready_max_lag = 1000, .stall_timeout = absl::Seconds(15)}, clock);
//   health.Set(Fault::kOutputRefused, "TOPIC_AUTHORIZATION_FAILED on profiled.updates");
//   ...
//   health.Clear(Fault::kOutputRefused);          // once it delivers again
//   health.Evaluate();                            // the monitor, twice a second
//   if (!health.ready()) return 503 + health.Describe();
//
// A fault is a failure that stops progress and that retrying alone has not
// fixed. Each appears and clears in the log exactly once (an error, then an
// info line with how long it lasted), holds `profiled_fault{reason}` at 1
// and turns readiness off. Besides faults, readiness needs partitions
// assigned, the pipeline started, and every partition within ready_max_lag
// of its high watermark; lag counts the broker's watermark as asked by the
// monitor (a paused consumer fetches nothing, so its own would go stale),
// so it never reads 0 while messages wait. Progress that stops while input
// waits is itself a fault after stall_timeout (`progress_stalled`): a stall
// of a kind nobody foresaw is still seen.
//
// Thread-safe.
#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "profiled/core/clock.h"

namespace profiled::pipeline {

enum class Fault : uint8_t {
  kDeadLettersStalled,  // dead letters unacknowledged for stall_timeout (broker down or slow)
  kDeadLettersRefused,  // the dead-letter topic refused a letter (missing, forbidden ...)
  kOutputStalled,       // updates unacknowledged for stall_timeout
  kOutputRefused,       // the output refused an update with a non-retriable error
  kStoreFailed,         // a RocksDB write failed (disk full, I/O error): recovering
  kProgressStalled,     // no batch committed for stall_timeout while input waits
  kPurgeFailed,         // an erasure's purge from disk failed: retrying
  kInputUnreachable,    // the input brokers answered no watermark query for stall_timeout
  kLeaseLapsed,         // the group lease went unconfirmed for its ttl: consumption paused
};
inline constexpr Fault kAllFaults[] = {
    Fault::kDeadLettersStalled, Fault::kDeadLettersRefused, Fault::kOutputStalled,
    Fault::kOutputRefused,      Fault::kStoreFailed,        Fault::kProgressStalled,
    Fault::kPurgeFailed,        Fault::kInputUnreachable,   Fault::kLeaseLapsed};
inline constexpr size_t kFaultCount = std::size(kAllFaults);

// Stable snake_case name: the `reason` label and the /readyz wording.
std::string_view FaultName(Fault fault);

struct HealthOptions {
  // A partition within this many messages of its high watermark is caught
  // up (readiness). Default: 1000.
  int64_t ready_max_lag = 1000;
  // How long a record may wait for its acknowledgement, or progress stop
  // while input waits, before it is a fault. Default: 15 s.
  absl::Duration stall_timeout = absl::Seconds(15);

  // Every problem, one per line, each named by its field's path.
  [[nodiscard]] absl::Status Validate() const;
};

class Health {
 public:
  Health(prometheus::Registry& registry, HealthOptions options, const core::Clock& wall_clock);
  Health(const Health&) = delete;
  Health& operator=(const Health&) = delete;

  const HealthOptions& options() const { return options_; }

  // Faults, from whichever thread sees them. Setting a fault that holds
  // updates its detail silently; clearing one that does not hold is a no-op.
  void Set(Fault fault, std::string detail);
  void Clear(Fault fault);
  bool Has(Fault fault) const;

  // From the pipeline thread.
  struct PartitionState {
    core::PartitionKey partition;
    int64_t position = 0;           // next offset committed to the store
    std::optional<int64_t> cached;  // high watermark from the consumer's last fetch
  };
  // The assigned partitions, their committed positions and cached watermarks.
  void ReportAssignment(const std::vector<PartitionState>& partitions);
  // A batch was committed: progress.
  void ReportCommit();
  // Batches committed so far.
  uint64_t Commits() const;
  // The batch loop turned (any outcome): a loop that stops turning for
  // stall_timeout is progress_stalled even when no input waits.
  void ReportLoop();
  // A poll found nothing to consume (not paused): whatever the watermark
  // says (transaction markers are offsets too), nothing waits.
  void ReportIdle();
  // The pipeline is (not) running: false while it starts or recovers.
  void ReportStarted(bool started);
  // A partition's state is being restored (`what`, e.g. "profiled.changelog/3,
  // 1200 offsets left"; empty when done): not ready, saying so, and not a
  // stall — the loop waits for the restore, which is progress of its own.
  void ReportRestoring(std::string what);

  // From the monitor: high watermarks asked of the brokers for `asked`; a
  // partition missing from `highs` could not be asked. No answer for any of
  // them for stall_timeout is input_unreachable.
  void ReportHighWatermarks(const std::vector<core::PartitionKey>& asked,
                            const absl::flat_hash_map<core::PartitionKey, int64_t>& highs);
  std::vector<core::PartitionKey> Assigned() const;

  // Recomputes lag, the progress stall and readiness, and sets their gauges.
  void Evaluate();

  bool ready() const;
  // "ready", or "not ready: " and every reason, for /readyz.
  std::string Describe() const;

 private:
  struct Active {
    std::string detail;
    absl::Time since;
  };
  struct Partition {
    int64_t position = 0;
    int64_t high = 0;    // the highest watermark seen, from either source
    bool known = false;  // a watermark was seen: until then the lag is unknown
    prometheus::Gauge* lag = nullptr;
  };
  absl::Time Now() const { return absl::FromUnixMillis(wall_clock_.NowMs()); }
  void SetLocked(Fault fault, std::string detail) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ClearLocked(Fault fault) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool ReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const HealthOptions options_;
  const core::Clock& wall_clock_;
  prometheus::Family<prometheus::Gauge>& lag_family_;
  std::array<prometheus::Gauge*, kFaultCount> fault_gauges_{};
  prometheus::Gauge& ready_gauge_;
  prometheus::Gauge& stall_gauge_;

  mutable absl::Mutex mu_;
  std::array<std::optional<Active>, kFaultCount> faults_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<core::PartitionKey, Partition> partitions_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::string restoring_ ABSL_GUARDED_BY(mu_);  // empty: no restore running
  // Progress: the last commit, and the last moment nothing waited.
  absl::Time last_commit_ ABSL_GUARDED_BY(mu_);
  absl::Time last_idle_ ABSL_GUARDED_BY(mu_);
  absl::Time last_loop_ ABSL_GUARDED_BY(mu_);
  uint64_t commits_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_answer_ ABSL_GUARDED_BY(mu_);  // the input brokers last answered
  // Why not ready besides faults, as of the last Evaluate; faults count live.
  std::vector<std::string> conditions_ ABSL_GUARDED_BY(mu_) = {"starting"};
};

}  // namespace profiled::pipeline
