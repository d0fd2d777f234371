// PartitionTask: the owner of one partition of the repartition topic in
// partitioned mode (docs/scaling.md). Each batch of the partition's records,
// in offset order: re-sends skipped by origin, every record handled by the
// identity protocol on its slot (profiles applied, merged, shipped with
// core's exact operations), then one WriteBatch to this partition's own
// store holding the changed slots, the position and an outbox that reads,
// in order: the records sent to other partitions (stamped with their
// origin), the changed profiles' updates and merge notices, a barrier, the
// changed slots' changelog records and the batch's marker. Private to the
// pipeline.
//
//   PartitionTask task(options, rules, signals, output, {"profiled.repartition", "...", 12}, 3,
//                      *store);
//   task.Resume(marker, epoch);          // after the restore and the claim
//   RETURN_IF_ERROR(task.RunBatch(records));
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "output_stage.h"
#include "profiled/cluster/changelog.h"
#include "profiled/cluster/identity_protocol.h"
#include "profiled/cluster/origin_filter.h"
#include "profiled/kafka/consumer.h"
#include "profiled/pipeline/pipeline.h"
#include "profiled/store/profile_store.h"

namespace profiled::pipeline::internal {

// Merge audit records a profile's slot keeps, newest (docs/scaling.md).
inline constexpr size_t kAuditKept = 32;

struct TaskTopics {
  std::string repartition;   // the partitions' topic
  std::string changelog;     // its compacted changelog, co-partitioned
  int32_t partitions = 0;    // of both
  int64_t retention_ms = 0;  // how long they may keep a record (erasure receipts)
};

// What one batch did, for counters.
struct TaskCounts {
  uint64_t records = 0;  // handled
  uint64_t resent = 0;   // skipped: at or below their origin's watermark
  uint64_t damaged = 0;  // skipped: did not parse (logged)
  uint64_t applied = 0, duplicates = 0, consent_suppressed = 0, merges = 0;
  std::vector<identity::RefusalRule> refusals;  // one per refused link or merge
  uint64_t erasures = 0;                        // receipts: people erased everywhere
  uint64_t erasure_suppressed = 0;              // records of erased people refused
  std::vector<double> erasure_latencies_s;      // request to receipt, per erasure
  uint64_t sent = 0;                            // records sent to partitions
  uint64_t updates = 0;                         // profile updates and merge notices enqueued
  uint64_t truncated = 0;                       // updates cut to the output's size
  uint64_t timers_fired = 0;                    // profiles re-evaluated by their timer
  uint64_t expired = 0;                         // profiles deleted by the retention TTL
  // Records after a gap (fetched before the partition was taken again at
  // an earlier position) were left alone: the consumer must read again
  // from next_offset().
  bool gap = false;
};

class PartitionTask {
 public:
  PartitionTask(const PipelineOptions& options, const identity::IdentityRules& rules,
                const OutputStage& output, TaskTopics topics, int32_t partition,
                store::ProfileStore& store)
      : options_(options),
        output_(output),
        topics_(std::move(topics)),
        partition_(partition),
        store_(store),
        protocol_(rules, topics_.retention_ms) {}

  // Where consumption resumes and what was applied from each upstream
  // partition: the restored changelog's newest marker (none: from 0);
  // `epoch`: the offset of this owner's claim, stamped on all it writes.
  void Resume(const std::optional<cluster::ChangelogMarker>& marker, int64_t epoch);
  int64_t next_offset() const { return next_offset_; }
  int64_t epoch() const { return epoch_; }
  // The marker of the state committed so far (a claim's content).
  cluster::ChangelogMarker CurrentMarker() const;

  // The records (this partition's, in offset order) into one committed
  // WriteBatch: those before next_offset() are skipped, and the batch ends
  // at the first gap (TaskCounts::gap), so no record is ever passed over.
  [[nodiscard]] absl::StatusOr<TaskCounts> RunBatch(
      const std::vector<kafka::ConsumedMessage>& records);

  // Writes the committed value of each key (slot or marker) to the
  // changelog again, stamped with this owner's epoch, after everything
  // already in the outbox: a zombie's late record for it is then never the
  // newest. Keys this partition does not hold are left alone: a zombie's
  // record of one is skipped by a restore (after this owner's claim) or is
  // ahead of the restored marker (before it), which a restore handles as a
  // half-published batch.
  [[nodiscard]] absl::Status Reassert(const std::vector<std::string>& keys);

  // Erasure (docs/scaling.md): after a batch that erased, nothing more runs
  // until the partition's store is purged of PurgeDue() (once the outbox
  // holding the batch's records is published: they name the person) and
  // SendAfterPurge() has committed the acknowledgements the erasure waits
  // for. Kept in the marker, so a crash in between purges again.
  bool purge_due() const { return !purge_keys_.empty() || !after_purge_.empty(); }
  store::PurgeKeys PurgeDue() const;
  [[nodiscard]] absl::Status SendAfterPurge();

  // Timers (docs/scaling.md, timers): every live profile's next timer is
  // indexed in the partition's store, on the partition's clock — its stream
  // time (the latest event time applied here) until caught up. RunTimers
  // re-evaluates the profiles due by `now_ms` as one commit: an update
  // where their signals changed (same version, later as_of), the next
  // timer, the slot to the changelog. A profile idle for the retention TTL
  // gets a kExpire record to its own slot instead (docs/scaling.md,
  // "Retention TTL": the expiry runs in offset order, the same when run
  // again) and its timer a minute later, in case the expiry does not
  // happen then (a merge into it in flight). Nothing runs while a purge is
  // due.
  int64_t stream_time_ms() const { return stream_time_ms_; }
  bool MaybeTimersDue(int64_t now_ms) const { return !purge_due() && now_ms >= next_due_ms_; }
  [[nodiscard]] absl::StatusOr<TaskCounts> RunTimers(int64_t now_ms);

 private:
  // A protocol record to the partition of its key, stamped with `origin`.
  void AppendSend(const ::profiled::internal::v1::Origin& origin,
                  const cluster::ProtocolMessage& message, store::CommitBatch& batch) const;
  // The batch's outbox tail: a barrier, the slots' changelog records (each
  // with its profile's state and timer) and the marker; the slots into the
  // store. `profiles(key)`: the slot's profile, or null.
  template <typename FindProfile>
  void AppendChangelog(const std::vector<std::string>& keys, const cluster::PartitionState& state,
                       FindProfile profiles, store::CommitBatch& batch) const;
  // The marker as the changelog's next record, and as the store's copy of
  // the last one (a partition given back here reuses its store when the
  // changelog ends with it).
  void AppendMarker(store::CommitBatch& batch) const;
  // The stored slots of `keys` (any order, repeats allowed), each decoded
  // once and handed to `visit` with its profile's state bytes (empty: none).
  [[nodiscard]] absl::Status ReadSlots(
      std::vector<std::string> keys,
      absl::FunctionRef<absl::Status(const std::string&, cluster::Slot, const std::string&)> visit);
  // After a commit that set `set` timers: when the next may be due.
  void NoteTimers(const store::CommitBatch& batch);

  // The origin topic of acknowledgements: the repartition topic's + this.
  static constexpr char kAcknowledgements[] = "+purged";
  // ...and of timers' records, whose origin is (epoch, timer_sends_): a
  // new owner's are never taken for an older one's re-sends.
  static constexpr char kTimers[] = "+timers";
  // An idle profile's timer, set again in case its expiry does not happen.
  static constexpr int64_t kExpiryRetryMs = 60'000;

  const PipelineOptions& options_;
  const OutputStage& output_;
  TaskTopics topics_;
  int32_t partition_;
  store::ProfileStore& store_;
  cluster::IdentityProtocol protocol_;
  cluster::OriginFilter filter_;
  int64_t next_offset_ = 0;
  int64_t epoch_ = 0;
  std::vector<std::string> purge_keys_;
  std::vector<::profiled::internal::v1::RepartitionRecord> after_purge_;
  std::vector<std::pair<int64_t, std::string>> purge_timers_;  // (due ms, profile id)
  bool purge_everything_ = false;  // restored: older values were copied in
  int64_t stream_time_ms_ = 0;
  int64_t next_due_ms_ = 0;  // no timer is due before this (0: unknown, look)
  int32_t timer_sends_ = 0;  // records timers sent within this epoch
};

// A restore's sink: changelog records into a partition's store, 1,000 to
// a WriteBatch (a commit per record made restores WAL-bound).
class SlotRestorer {
 public:
  // Timers of restored profiles run on `partition` of `topic`'s clock.
  SlotRestorer(store::ProfileStore& store, core::PartitionKey partition)
      : store_(store), partition_(std::move(partition)) {}
  [[nodiscard]] absl::Status Add(std::string_view key, std::optional<std::string_view> value);
  // Commits what Add gathered so far (timers wait for Finish).
  [[nodiscard]] absl::Status Flush();
  // Commits what is left and the restored profiles' timers; call once
  // after the last Add.
  [[nodiscard]] absl::Status Finish();

 private:

  store::ProfileStore& store_;
  const core::PartitionKey partition_;
  store::CommitBatch batch_;
  size_t pending_ = 0;
  absl::flat_hash_map<std::string, int64_t> timers_;  // each key's final due time
};

}  // namespace profiled::pipeline::internal
