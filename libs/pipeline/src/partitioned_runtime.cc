#include "profiled/pipeline/partitioned_runtime.h"

#include <filesystem>
#include <map>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gather_window.h"
#include "health_monitor.h"
#include "partition_task.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/cluster/changelog.h"
#include "profiled/cluster/protocol_codec.h"
#include "profiled/cluster/standby_plan.h"
#include "profiled/kafka/log_tail.h"
#include "profiled/kafka/partition_log.h"
#include "profiled/pipeline/metrics.h"
#include "profiled/pipeline/publisher.h"
#include "read_stage.h"
#include "route_stage.h"
#include "standby_copy.h"
#include "worker_pool.h"

namespace profiled::pipeline {

absl::Status PartitionedOptions::Validate() const {
  std::vector<std::string> problems;
  if (absl::Status s = runtime.Validate(); !s.ok()) problems.emplace_back(s.message());
  if (partitions < 1) problems.push_back("cluster.partitions: must be at least 1");
  if (max_run_ahead < 1) problems.push_back("max_run_ahead: must be at least 1");
  if (standby_replicas < 0 || standby_replicas > 3) {
    problems.push_back("cluster.standby_replicas: must be between 0 and 3");
  } else if (standby_replicas > 0 && runtime.lease.topic.empty()) {
    // Standbys are planned on who owns what, which only the members topic says.
    problems.push_back("cluster.standby_replicas: needs cluster.members_topic");
  }
  if (repartition_topic.empty()) problems.push_back("cluster.repartition_topic: is required");
  if (changelog_topic.empty()) problems.push_back("cluster.changelog_topic: is required");
  if (!runtime.pipeline.control_topic.empty() && runtime.pipeline.erasure_suppression_ms <= 0) {
    // Suppression is what keeps a merge in flight from bringing an erased
    // person back here, not only late events (docs/scaling.md).
    problems.push_back("privacy.erasure.suppression_window: must be positive in partitioned mode");
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
}

namespace {

// One owned repartition partition: its store, publisher and task.
struct OwnedPartition {
  std::string path;
  std::shared_ptr<store::ProfileStore> store;  // shared with lookups in flight
  std::unique_ptr<Publisher> publisher;
  std::unique_ptr<internal::PartitionTask> task;
  int64_t tail_next = 0;  // next changelog offset the tail hands over
  // Erasure: the purge waits until the outbox before this is published
  // (its records name the person); a failed one is tried again later.
  uint64_t purge_after_seq = 0;
  absl::Time purge_due_since = absl::InfinitePast();
  absl::Time next_purge_attempt = absl::InfinitePast();
};

// A partition a rebalance took from this instance, its store kept open for
// a while: given back before a newer owner wrote its changelog, it is
// reused instead of restored (an eager rebalance takes and gives back
// every partition of every member).
struct ParkedPartition {
  std::string path;
  std::shared_ptr<store::ProfileStore> store;
  int64_t tail_next = 0;  // the changelog read back up to here: nothing foreign before
  int64_t epoch = 0;      // this instance's claim when it owned the partition
  absl::Time since;
};

// What a partition resumes from: the changelog's newest marker, the offset
// the tail follows from, and keys a zombie wrote after the last claim.
struct ResumePoint {
  std::optional<cluster::ChangelogMarker> marker;
  int64_t high = 0;
  std::vector<std::string> fenced;
};

// A parked store is kept this long, then closed and deleted.
constexpr absl::Duration kParkedFor = absl::Seconds(60);
// Reuse reads the changelog written since the tail last read it; beyond
// this many records a restore is as good.
constexpr int64_t kMaxReuseTail = 100'000;

// The epoch a changelog record was written with; nullopt for a tombstone
// or an unreadable marker (neither can be a newer owner's).
std::optional<int64_t> RecordEpoch(const kafka::LogRecord& r) {
  if (!r.value.has_value()) return std::nullopt;
  if (r.key != cluster::kMarkerKey) return cluster::SlotEpoch(*r.value);
  cluster::ChangelogMarker marker;
  if (!marker.ParseFromArray(r.value->data(), static_cast<int>(r.value->size()))) {
    return std::nullopt;
  }
  return cluster::MarkerEpoch(marker, r.offset);
}

}  // namespace

struct PartitionedRuntime::Impl {
  Impl(const PartitionedOptions& o, prometheus::Registry& registry, const core::Clock& clock)
      : options(o),
        wall_clock(clock),
        rules(*identity::IdentityRules::Create(o.runtime.pipeline.identity)),
        privacy(*privacy::PrivacyFilter::Create(o.runtime.pipeline.privacy)),
        signals(o.runtime.pipeline.signals),
        workers(o.runtime.pipeline.worker_threads),
        output(options.runtime.pipeline, signals, workers),
        publisher_metrics(registry),
        metrics(registry,
                internal::ReadStage::Subscription(o.runtime.pipeline, o.runtime.consumer.topics)),
        partition_metrics(metrics.partitions),
        health(registry, o.runtime.health, clock) {}

  [[nodiscard]] absl::StatusOr<int64_t> Own(int32_t partition);
  // Rebuilds the partition's store from the whole changelog.
  [[nodiscard]] absl::StatusOr<ResumePoint> Restore(int32_t partition, OwnedPartition& p,
                                                    kafka::PartitionLog& log);
  // The parked store, when the changelog ends with the marker it last
  // committed and no newer owner wrote since its tail read it (an older
  // owner's keys come back as `fenced`); nullopt when it must be restored.
  [[nodiscard]] absl::StatusOr<std::optional<ResumePoint>> Reusable(const ParkedPartition& kept,
                                                                    kafka::PartitionLog& log);
  // Stops the partition (publishing what is left first when `drain`) and
  // takes it out of the owned ones.
  std::optional<OwnedPartition> Release(int32_t partition, bool drain, absl::Duration timeout);
  // Released for good: its store deleted unless drained (a clean stop
  // leaves it; the next owner restores all the same).
  void Drop(int32_t partition, bool drain, absl::Duration timeout);
  // Released by a rebalance: its store kept open for kParkedFor.
  void Park(int32_t partition);
  // Closes and deletes the stores parked for kParkedFor (`all`: every one).
  void ExpireParked(bool all = false);
  // Warm copies (standby_replicas), planned every second on the members
  // topic's view: copies no longer wanted are dropped, wanted ones started.
  void PlanStandbys();
  [[nodiscard]] absl::Status StartStandby(int32_t partition);
  // Takes the copy out of the kept ones (no longer followed); null if none.
  std::unique_ptr<internal::StandbyCopy> DetachStandby(int32_t partition);
  // Detaches the copy and deletes it.
  void DropStandby(int32_t partition);
  // Hands the records the standby tail fetched to their copies.
  void FollowStandbys();
  // The warm copy of `partition`, caught up to the changelog's end, as the
  // partition's store; nullopt when there is none or it cannot be used.
  std::optional<ResumePoint> TakeStandby(int32_t partition, OwnedPartition& p,
                                         kafka::PartitionLog& log);
  void DropRevoked();
  // Reads back the owned changelog partitions: keys a zombie wrote after
  // this owner's claim are re-asserted; a newer claim drops the partition.
  void FollowChangelogs();
  void Record(const internal::TaskCounts& counts);
  // Fires the owned partitions' due timers, each on its partition's clock.
  [[nodiscard]] absl::Status FireTimers();
  // A partition whose store could not commit (`why`: Unavailable — I/O, no
  // space) is dropped and taken again, restored from its changelog as a
  // move to this instance would (what the store held but had not published
  // is made again from the marker on), retried with back-off while that
  // fails too; store_failed says so meanwhile. Anything else is returned:
  // it would fail the same way again.
  [[nodiscard]] absl::Status StoreFailed(int32_t partition, const absl::Status& why);
  [[nodiscard]] absl::Status RetryRecoveries();
  // Purges the owned partitions that erased, once their outbox is
  // published, and sends the acknowledgements the erasures wait for.
  void PurgeErased();
  // After a batch or a restore: a purge falls due once what is now in the
  // outbox is published.
  static void NotePurgeDue(OwnedPartition& p);
  // The owned partitions to lookups and, with the next heartbeat, to the
  // members topic.
  void PublishOwnership();
  // Routing waits while an owned partition has more than max_run_ahead
  // records not yet run, or the outboxes hold outbox_max_entries (the mock
  // keeps ~5 MiB a partition: records not yet run were lost without it).
  void ApplyBackPressure();
  // Assignment, positions and cached watermarks to Health (readiness, lag).
  void ReportStatus();
  [[nodiscard]] absl::Status Route(const std::vector<kafka::ConsumedMessage>& inputs);

  const PartitionedOptions options;
  const core::Clock& wall_clock;
  identity::IdentityRules rules;
  privacy::PrivacyFilter privacy;
  signals::Signals signals;
  internal::WorkerPool workers;
  internal::OutputStage output;
  PublisherMetrics publisher_metrics;
  PipelineMetrics metrics;
  PartitionMetrics& partition_metrics;
  Health health;
  internal::GatherWindow gather{options.runtime.pipeline.max_delay_ms};
  std::unique_ptr<internal::ReadStage> read;
  std::unique_ptr<DeadLetterSink> dead_letters;
  std::unique_ptr<kafka::Producer> router;
  uint64_t route_failures = 0;  // delivery reports of the routed batch in flight
  std::string route_error;
  std::unique_ptr<kafka::Consumer> consumer;
  std::unique_ptr<kafka::LogTail> tail;  // the owned changelog partitions
  std::map<int32_t, OwnedPartition> owned;
  std::map<int32_t, ParkedPartition> parked;
  std::unique_ptr<kafka::LogTail> standby_tail;  // null without standby_replicas
  std::map<int32_t, std::unique_ptr<internal::StandbyCopy>> standbys;
  std::map<int32_t, absl::Time> standby_refused;  // not tried again before then
  // Copies the plan no longer wants, since when: kept for kParkedFor, as a
  // rebalance empties every member's ownership for a moment.
  std::map<int32_t, absl::Time> standby_unwanted;
  int64_t standby_serial = 0;                     // each copy's directory is new
  absl::Time next_standby_plan = absl::InfinitePast();
  struct Recovery {
    absl::Time next;
    absl::Duration backoff;
  };
  std::map<int32_t, Recovery> recovering;  // assigned, not owned: their stores failed
  // Next offset of each input partition routed so far (for readiness).
  std::map<core::PartitionKey, int64_t> routed_positions;
  absl::Time next_status = absl::InfinitePast();
  absl::Time next_progress_log = absl::InfinitePast();
  absl::Time next_pressure = absl::InfinitePast();
  bool routing_paused = false;
  absl::Status failed;  // a restore that failed inside a rebalance
  std::unique_ptr<internal::HealthMonitor> monitor;
  std::unique_ptr<cluster::GroupLease> lease;  // null without a members topic
  mutable absl::Mutex readable_mu;
  std::map<int32_t, std::shared_ptr<store::ProfileStore>> readable ABSL_GUARDED_BY(readable_mu);
  bool shut_down = false;
};

void PartitionedRuntime::Impl::PublishOwnership() {
  std::vector<int32_t> partitions;
  {
    absl::MutexLock lock(&readable_mu);
    readable.clear();
    for (const auto& [partition, p] : owned) {
      readable[partition] = p.store;
      partitions.push_back(partition);
    }
  }
  if (lease != nullptr) lease->SetOwned(std::move(partitions));
}

absl::StatusOr<int64_t> PartitionedRuntime::Impl::Own(int32_t partition) {
  Park(partition);  // reassigned while owned: its store may serve again
  std::optional<ParkedPartition> kept;
  if (auto it = parked.find(partition); it != parked.end()) {
    kept = std::move(it->second);
    parked.erase(it);
  }
  OwnedPartition p;
  p.path = absl::StrCat(options.runtime.store.path, "/partition-", partition);
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::PartitionLog> log,
                   kafka::PartitionLog::Open(options.runtime.consumer.properties,
                                             options.changelog_topic, partition));
  const std::string what = absl::StrCat(options.changelog_topic, "/", partition);
  std::optional<ResumePoint> resume;
  if (kept.has_value()) {
    absl::StatusOr<std::optional<ResumePoint>> reusable = Reusable(*kept, *log);
    if (!reusable.ok()) {
      LogWarn("checking the kept store of ", what, ": ", reusable.status().ToString(),
              "; restoring it instead");
    } else if (reusable->has_value()) {
      resume = std::move(**reusable);
      p.store = std::move(kept->store);
      partition_metrics.reused.Increment();
      LogInfo("reused the store of ", what, " kept since ",
              absl::FormatDuration(absl::Now() - kept->since), " ago, resuming at ",
              resume->marker.has_value() ? resume->marker->next_offset() : 0);
      DropStandby(partition);  // owned now: a copy is of no use
    }
    kept.reset();  // closes the store unless reused
  }
  if (!resume.has_value()) resume = TakeStandby(partition, p, *log);
  if (!resume.has_value()) {
    ASSIGN_OR_RETURN(resume, Restore(partition, p, *log));
  }
  // The claim: this owner's epoch is its offset; a restore skips whatever
  // an older owner writes after it, and the tail re-asserts over it.
  cluster::ChangelogMarker claim = resume->marker.value_or(cluster::ChangelogMarker());
  claim.set_epoch(0);
  claim.set_claim(true);
  ASSIGN_OR_RETURN(const int64_t epoch,
                   log->Append(cluster::kMarkerKey, claim.SerializeAsString(), 30'000));
  PublisherOptions publisher = options.runtime.publisher;
  publisher.max_message_bytes = options.runtime.pipeline.max_output_message_bytes;
  ASSIGN_OR_RETURN(p.publisher, Publisher::Create(publisher, options.runtime.producer_properties,
                                                  *p.store, publisher_metrics, health));
  p.publisher->Start();
  p.task = std::make_unique<internal::PartitionTask>(
      options.runtime.pipeline, rules, output,
      internal::TaskTopics{options.repartition_topic, options.changelog_topic, options.partitions,
                           options.internal_retention_ms},
      partition, *p.store);
  p.task->Resume(resume->marker, epoch);
  // Keys a zombie wrote after the last claim: this owner's value again, so
  // compaction never keeps the zombie's record alone.
  std::vector<std::string>& fenced = resume->fenced;
  std::sort(fenced.begin(), fenced.end());
  fenced.erase(std::unique(fenced.begin(), fenced.end()), fenced.end());
  RETURN_IF_ERROR(p.task->Reassert(fenced));
  partition_metrics.reasserted.Increment(static_cast<double>(fenced.size()));
  p.publisher->Notify();
  RETURN_IF_ERROR(tail->Start(partition, resume->high));
  p.tail_next = resume->high;
  NotePurgeDue(p);
  const int64_t next = p.task->next_offset();
  owned[partition] = std::move(p);
  partition_metrics.owned.Set(static_cast<double>(owned.size()));
  PublishOwnership();
  return next;
}

absl::StatusOr<ResumePoint> PartitionedRuntime::Impl::Restore(int32_t partition, OwnedPartition& p,
                                                              kafka::PartitionLog& log) {
  std::error_code ignored;
  std::filesystem::remove_all(p.path, ignored);
  store::StoreOptions store_options = options.runtime.store;
  store_options.path = p.path;
  ASSIGN_OR_RETURN(p.store, store::ProfileStore::Open(store_options));
  const std::string what = absl::StrCat(options.changelog_topic, "/", partition);
  internal::SlotRestorer restorer(*p.store, {options.repartition_topic, partition});
  PartitionMetrics& m = partition_metrics;
  const absl::Time began = absl::Now();
  m.restoring.Set(1);
  health.ReportRestoring(what);
  absl::Cleanup restored_or_failed = [&] {
    m.restoring.Set(0);
    m.restore_remaining.Set(0);
    health.ReportRestoring("");
  };
  int64_t counted = 0;
  absl::StatusOr<cluster::RestoreResult> restored = cluster::RestoreChangelog(
      log, what,
      [&restorer](std::string_view key, std::optional<std::string_view> value) {
        return restorer.Add(key, value);
      },
      [&](const cluster::RestoreProgress& progress) {
        m.restore_remaining.Set(static_cast<double>(progress.high - progress.next));
        health.ReportRestoring(
            absl::StrCat(what, ", ", progress.high - progress.next, " offsets left"));
        m.restored_records.Increment(static_cast<double>(progress.records - counted));
        counted = progress.records;
      },
      600'000, cluster::SlotEpoch);
  RETURN_IF_ERROR(restored.status());
  RETURN_IF_ERROR(restorer.Finish());
  m.restores.Increment();
  m.fenced.Increment(static_cast<double>(restored->progress.fenced));
  m.restore_duration.Observe(absl::ToDoubleSeconds(absl::Now() - began));
  LogInfo("restored ", what, ": ", restored->progress.records, " records (",
          restored->progress.fenced, " of older owners skipped) in ",
          absl::FormatDuration(absl::Now() - began), ", resuming at ",
          restored->marker.has_value() ? restored->marker->next_offset() : 0);
  return ResumePoint{std::move(restored->marker), restored->progress.high,
                     std::move(restored->fenced_keys)};
}

absl::StatusOr<std::optional<ResumePoint>> PartitionedRuntime::Impl::Reusable(
    const ParkedPartition& kept, kafka::PartitionLog& log) {
  // Unpublished records: the changelog lacks what the store holds.
  if (kept.store->OutboxDepth() != 0) return std::nullopt;
  ASSIGN_OR_RETURN(std::optional<std::string> local, kept.store->LoadChangelogMarker());
  if (!local.has_value()) return std::nullopt;
  ASSIGN_OR_RETURN(const kafka::LogRange range, log.Range(30'000));
  if (range.high <= range.low) return std::nullopt;
  // From where the tail stopped reading (it had seen no newer owner up to
  // there), at least the last record.
  const int64_t from = std::min(std::max(kept.tail_next, range.low), range.high - 1);
  if (range.high - from > kMaxReuseTail) return std::nullopt;
  bool foreign = false;
  bool last_is_local = false;
  int64_t last_offset = -1;
  // An older owner's records (a zombie's, not yet read back by the tail)
  // are written over again, as the tail would have (FollowChangelogs).
  std::vector<std::string> fenced;
  RETURN_IF_ERROR(log.Read(from, range.high, 30'000, [&](const kafka::LogRecord& r) {
    const std::optional<int64_t> epoch = RecordEpoch(r);
    foreign = foreign || (epoch.has_value() && *epoch > kept.epoch);
    if (epoch.has_value() && *epoch < kept.epoch) fenced.emplace_back(r.key);
    last_is_local = r.key == cluster::kMarkerKey && r.value == std::string_view(*local);
    last_offset = r.offset;
    return absl::OkStatus();
  }));
  if (foreign || !last_is_local || last_offset != range.high - 1) return std::nullopt;
  ResumePoint resume{cluster::ChangelogMarker(), range.high, std::move(fenced)};
  if (!resume.marker->ParseFromString(*local)) return std::nullopt;
  // As a restore reads it: the epoch it was written with, not a claim.
  resume.marker->set_epoch(cluster::MarkerEpoch(*resume.marker, last_offset));
  resume.marker->set_claim(false);
  return std::optional<ResumePoint>(std::move(resume));
}

std::optional<OwnedPartition> PartitionedRuntime::Impl::Release(int32_t partition, bool drain,
                                                                absl::Duration timeout) {
  auto it = owned.find(partition);
  if (it == owned.end()) return std::nullopt;
  // Nothing more of it is published once it may be someone else's.
  if (drain) {
    it->second.publisher->DrainAndStop(timeout);
  } else {
    it->second.publisher->Stop();
  }
  OwnedPartition released = std::move(it->second);
  owned.erase(it);
  PublishOwnership();
  tail->Stop(partition);
  partition_metrics.owned.Set(static_cast<double>(owned.size()));
  return released;
}

void PartitionedRuntime::Impl::Drop(int32_t partition, bool drain, absl::Duration timeout) {
  parked.erase(partition);
  std::optional<OwnedPartition> released = Release(partition, drain, timeout);
  if (!released.has_value() || drain) return;
  const std::string path = released->path;
  released.reset();  // the store closed before its files go
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
}

void PartitionedRuntime::Impl::Park(int32_t partition) {
  auto it = owned.find(partition);
  if (it != owned.end() && it->second.task->purge_due()) {
    // An erasure's old values are still on its disk: deleted now, never kept.
    Drop(partition, /*drain=*/false, absl::ZeroDuration());
    return;
  }
  std::optional<OwnedPartition> released = Release(partition, false, absl::ZeroDuration());
  if (!released.has_value()) return;
  parked[partition] = ParkedPartition{released->path, std::move(released->store),
                                      released->tail_next, released->task->epoch(), absl::Now()};
}

void PartitionedRuntime::Impl::ExpireParked(bool all) {
  const absl::Time now = absl::Now();
  for (auto it = parked.begin(); it != parked.end();) {
    if (!all && now - it->second.since < kParkedFor) {
      ++it;
      continue;
    }
    const std::string path = it->second.path;
    it = parked.erase(it);  // closes the store (unless a lookup still holds it)
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
}

void PartitionedRuntime::Impl::PlanStandbys() {
  if (standby_tail == nullptr) return;
  const absl::Time now = absl::Now();
  if (now < next_standby_plan) return;
  next_standby_plan = now + absl::Seconds(1);
  std::vector<int32_t> wanted =
      cluster::StandbyPartitions(lease->Peers(), lease->member_name(), options.standby_replicas);
  std::erase_if(wanted, [&](int32_t k) { return owned.count(k) > 0 || k >= options.partitions; });
  std::vector<int32_t> unwanted;
  for (const auto& [partition, copy] : standbys) {
    if (std::binary_search(wanted.begin(), wanted.end(), partition)) {
      standby_unwanted.erase(partition);
    } else if (now - standby_unwanted.try_emplace(partition, now).first->second >= kParkedFor) {
      unwanted.push_back(partition);
    }
  }
  for (int32_t partition : unwanted) {
    LogInfo("no longer keeps a warm copy of ", options.changelog_topic, "/", partition);
    DropStandby(partition);
  }
  for (int32_t partition : wanted) {
    if (standbys.count(partition) > 0) continue;
    if (auto it = standby_refused.find(partition); it != standby_refused.end() && now < it->second) {
      continue;
    }
    if (absl::Status s = StartStandby(partition); !s.ok()) {
      LogWarn("no warm copy of ", options.changelog_topic, "/", partition, ": ", s.message(),
              "; trying again in a minute");
      DropStandby(partition);
      standby_refused[partition] = now + absl::Minutes(1);
    }
  }
  partition_metrics.standbys.Set(static_cast<double>(standbys.size()));
}

absl::Status PartitionedRuntime::Impl::StartStandby(int32_t partition) {
  // A copy of a truncated changelog would be as partial as a restore from it.
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::PartitionLog> log,
                   kafka::PartitionLog::Open(options.runtime.consumer.properties,
                                             options.changelog_topic, partition));
  ASSIGN_OR_RETURN(const kafka::LogRange range, log->Range(30'000));
  const std::string what = absl::StrCat(options.changelog_topic, "/", partition);
  RETURN_IF_ERROR(cluster::CheckNotTruncated(range, what));
  store::StoreOptions store_options = options.runtime.store;
  store_options.path =
      absl::StrCat(options.runtime.store.path, "/standby-", partition, "-", ++standby_serial);
  store_options.sync_writes = false;  // a restart rebuilds copies from scratch
  ASSIGN_OR_RETURN(
      std::unique_ptr<internal::StandbyCopy> copy,
      internal::StandbyCopy::Open(store_options, {options.repartition_topic, partition}));
  standbys[partition] = std::move(copy);
  RETURN_IF_ERROR(standby_tail->Start(partition, 0));
  LogInfo("keeping a warm copy of ", what, " (", range.high, " offsets to read)");
  return absl::OkStatus();
}

std::unique_ptr<internal::StandbyCopy> PartitionedRuntime::Impl::DetachStandby(int32_t partition) {
  auto it = standbys.find(partition);
  if (it == standbys.end()) return nullptr;
  std::unique_ptr<internal::StandbyCopy> copy = std::move(it->second);
  standbys.erase(it);
  standby_tail->Stop(partition);
  standby_unwanted.erase(partition);
  partition_metrics.standbys.Set(static_cast<double>(standbys.size()));
  return copy;
}

void PartitionedRuntime::Impl::DropStandby(int32_t partition) {
  std::unique_ptr<internal::StandbyCopy> copy = DetachStandby(partition);
  if (copy == nullptr) return;
  const std::string path = copy->path();
  copy.reset();  // closes the store before its files go
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
}

void PartitionedRuntime::Impl::FollowStandbys() {
  if (standby_tail == nullptr || standbys.empty()) return;
  std::set<int32_t> failed_copies;
  int64_t records = 0;
  absl::Status followed =
      standby_tail->Poll(0, 50'000, [&](int32_t partition, const kafka::LogRecord& r) {
        auto it = standbys.find(partition);
        if (it == standbys.end() || failed_copies.count(partition) > 0) return;
        if (absl::Status s = it->second->Add(r); !s.ok()) {
          LogWarn("warm copy of ", options.changelog_topic, "/", partition, ": ", s.message());
          failed_copies.insert(partition);
        }
        ++records;
      });
  partition_metrics.standby_records.Increment(static_cast<double>(records));
  int64_t lag = 0;
  for (const auto& [partition, copy] : standbys) {
    if (failed_copies.count(partition) > 0) continue;
    if (absl::Status s = copy->Flush(); !s.ok()) {
      LogWarn("warm copy of ", options.changelog_topic, "/", partition, ": ", s.message());
      failed_copies.insert(partition);
      continue;
    }
    const std::optional<int64_t> high = standby_tail->CachedHighWatermark(partition);
    if (high.has_value()) lag += std::max<int64_t>(0, *high - copy->next());
  }
  partition_metrics.standby_lag.Set(static_cast<double>(lag));
  // A copy that failed is dropped and planned again (from offset 0).
  for (int32_t partition : failed_copies) DropStandby(partition);
  if (followed.ok()) return;
  LogWarn("following the warm copies: ", followed.ToString());
  for (const auto& [partition, copy] : standbys) {
    // Records no longer held cannot be read again: planned anew, each
    // checked against truncation. Anything else: from where each was.
    if (absl::IsOutOfRange(followed)) {
      failed_copies.insert(partition);
    } else if (absl::Status s = standby_tail->Start(partition, copy->next()); !s.ok()) {
      failed_copies.insert(partition);
    }
  }
  for (int32_t partition : failed_copies) DropStandby(partition);
}

std::optional<ResumePoint> PartitionedRuntime::Impl::TakeStandby(int32_t partition,
                                                                  OwnedPartition& p,
                                                                  kafka::PartitionLog& log) {
  std::unique_ptr<internal::StandbyCopy> copy = DetachStandby(partition);
  if (copy == nullptr) return std::nullopt;
  const std::string what = absl::StrCat(options.changelog_topic, "/", partition);
  const absl::Time began = absl::Now();
  const int64_t from = copy->next();
  absl::StatusOr<cluster::RestoreResult> caught_up = copy->CatchUp(log, 600'000);
  if (!caught_up.ok()) {
    LogWarn("the warm copy of ", what, " cannot be used: ", caught_up.status().ToString(),
            "; restoring the partition instead");
    const std::string path = copy->path();
    copy.reset();
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
    return std::nullopt;
  }
  partition_metrics.standby_takeovers.Increment();
  partition_metrics.fenced.Increment(static_cast<double>(caught_up->progress.fenced));
  LogInfo("took ", what, " from its warm copy: read the ", caught_up->progress.high - from,
          " offsets written since (", caught_up->progress.records, " records in all) in ",
          absl::FormatDuration(absl::Now() - began), ", resuming at ",
          caught_up->marker.has_value() ? caught_up->marker->next_offset() : 0);
  p.path = copy->path();
  p.store = copy->store();
  return ResumePoint{std::move(caught_up->marker), caught_up->progress.high,
                     std::move(caught_up->fenced_keys)};
}

void PartitionedRuntime::Impl::DropRevoked() {
  std::vector<int32_t> assigned;
  for (const core::PartitionKey& key : consumer->Assignment()) {
    if (key.topic == options.repartition_topic) assigned.push_back(key.partition);
  }
  std::vector<int32_t> revoked;
  for (const auto& [partition, p] : owned) {
    if (std::find(assigned.begin(), assigned.end(), partition) == assigned.end()) {
      revoked.push_back(partition);
    }
  }
  for (int32_t partition : revoked) {
    LogInfo("no longer owns ", options.repartition_topic, "/", partition);
    Park(partition);
  }
}

void PartitionedRuntime::Impl::FollowChangelogs() {
  std::map<int32_t, std::vector<std::string>> foreign;  // keys to re-assert
  std::vector<int32_t> superseded;
  absl::Status followed = tail->Poll(0, 50'000, [&](int32_t partition, const kafka::LogRecord& r) {
    auto it = owned.find(partition);
    if (it == owned.end()) return;
    it->second.tail_next = r.offset + 1;
    const std::optional<int64_t> written = RecordEpoch(r);
    if (!written.has_value()) return;
    const int64_t epoch = *written;
    const int64_t mine = it->second.task->epoch();
    if (epoch > mine) {
      superseded.push_back(partition);
    } else if (epoch < mine) {
      foreign[partition].emplace_back(r.key);
    }
  });
  if (!followed.ok()) {
    // Fencing depends on reading every record back: follow again from
    // where each partition was, never skip.
    LogWarn("reading back ", options.changelog_topic, ": ", followed.ToString(),
            "; following again");
    for (const auto& [partition, p] : owned) {
      if (absl::Status s = tail->Start(partition, p.tail_next); !s.ok()) {
        if (failed.ok()) failed = s;
        return;
      }
    }
  }
  std::sort(superseded.begin(), superseded.end());
  superseded.erase(std::unique(superseded.begin(), superseded.end()), superseded.end());
  for (int32_t partition : superseded) {
    if (owned.count(partition) == 0) continue;
    // Someone claimed it after us: we lost it without noticing, or our own
    // claim came late (a restore that outlived the poll interval). Stop
    // writing at once; if the group still gives it to us, take it again
    // with a newer claim (the group's choice always wins in the end).
    Drop(partition, /*drain=*/false, absl::ZeroDuration());
    partition_metrics.superseded.Increment();
    const core::PartitionKey key{options.repartition_topic, partition};
    const std::vector<core::PartitionKey> assigned = consumer->Assignment();
    if (std::find(assigned.begin(), assigned.end(), key) == assigned.end()) {
      LogError(options.changelog_topic, "/", partition,
               " was claimed by a newer owner: this instance had lost the partition and stops "
               "writing it");
      continue;
    }
    LogError(options.changelog_topic, "/", partition,
             " was claimed by another instance while the group still assigns it here: "
             "taking it again");
    absl::StatusOr<int64_t> next = Own(partition);
    absl::Status s = next.ok() ? consumer->Seek(key, *next) : next.status();
    if (!s.ok()) {
      if (failed.ok()) failed = s;
      return;
    }
  }
  for (auto& [partition, keys] : foreign) {
    auto it = owned.find(partition);
    if (it == owned.end()) continue;
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    LogWarn(options.changelog_topic, "/", partition, ": ", keys.size(),
            " keys written by an older owner after this owner's claim; writing them again");
    if (absl::Status s = it->second.task->Reassert(keys); !s.ok()) {
      if (absl::Status handled = StoreFailed(partition, s); !handled.ok() && failed.ok()) {
        failed = handled;
      }
      continue;
    }
    partition_metrics.fenced.Increment(static_cast<double>(keys.size()));
    partition_metrics.reasserted.Increment(static_cast<double>(keys.size()));
    it->second.publisher->Notify();
  }
}

void PartitionedRuntime::Impl::ApplyBackPressure() {
  const absl::Time now = absl::Now();
  if (now < next_pressure) return;  // Assignment() copies librdkafka's list
  next_pressure = now + absl::Milliseconds(50);
  int64_t behind = 0;  // the most records an owned partition has not run
  uint64_t outbox = 0;
  for (const auto& [partition, p] : owned) {
    const std::optional<int64_t> high =
        consumer->CachedHighWatermark({options.repartition_topic, partition});
    if (high.has_value()) behind = std::max(behind, *high - p.task->next_offset());
    outbox += p.store->OutboxDepth();
  }
  const uint64_t bound = options.runtime.pipeline.outbox_max_entries;
  const int64_t ahead = options.max_run_ahead;
  const bool pause =
      routing_paused ? behind > ahead / 2 || outbox > bound / 2 : behind > ahead || outbox >= bound;
  std::vector<core::PartitionKey> inputs;
  for (core::PartitionKey& key : consumer->Assignment()) {
    if (key.topic != options.repartition_topic) inputs.push_back(std::move(key));
  }
  if (pause) {
    consumer->Pause(inputs);  // every turn: inputs assigned since are paused too
  } else if (routing_paused) {
    consumer->Resume(inputs);
  }
  if (pause != routing_paused) {
    LogInfo(pause ? "routing paused: " : "routing resumed: ", behind,
            " records not yet run on the most behind owned partition, outbox ", outbox);
  }
  routing_paused = pause;
  metrics.paused.Set(pause ? 1 : 0);
}

void PartitionedRuntime::Impl::NotePurgeDue(OwnedPartition& p) {
  if (!p.task->purge_due() || p.purge_due_since != absl::InfinitePast()) return;
  p.purge_after_seq = p.store->NextOutboxSeq();
  p.purge_due_since = absl::Now();
}

void PartitionedRuntime::Impl::PurgeErased() {
  const absl::Time now = absl::Now();
  size_t waiting = 0;
  for (auto& [partition, p] : owned) {
    if (!p.task->purge_due()) continue;
    ++waiting;
    if (now < p.next_purge_attempt) continue;
    absl::StatusOr<uint64_t> oldest = p.store->OldestOutboxSeq();
    if (!oldest.ok() || *oldest < p.purge_after_seq) continue;  // still being published
    absl::Status s = p.store->Purge(p.task->PurgeDue());
    if (s.ok()) s = p.task->SendAfterPurge();
    if (!s.ok()) {
      if (absl::Status recovered = p.store->Recover(); !recovered.ok()) {
        LogWarn("store of partition ", partition,
                " not recovered after a failed purge: ", recovered.message());
      }
      health.Set(Fault::kPurgeFailed, absl::StrCat("purging erased data from partition ", partition,
                                                   ": ", s.message(), "; retrying in 10s"));
      p.next_purge_attempt = now + absl::Seconds(10);
      continue;
    }
    health.Clear(Fault::kPurgeFailed);
    metrics.purge_latency.Observe(absl::ToDoubleSeconds(absl::Now() - p.purge_due_since));
    p.purge_due_since = absl::InfinitePast();
    --waiting;
    p.publisher->Notify();
    LogInfo("purged erased data from partition ", partition);
  }
  metrics.purges_pending.Set(static_cast<double>(waiting));
}

void PartitionedRuntime::Impl::Record(const internal::TaskCounts& counts) {
  metrics.applied.Increment(static_cast<double>(counts.applied));
  metrics.duplicates.Increment(static_cast<double>(counts.duplicates));
  metrics.consent_suppressed.Increment(static_cast<double>(counts.consent_suppressed));
  metrics.merges.Increment(static_cast<double>(counts.merges));
  for (identity::RefusalRule rule : counts.refusals) metrics.refused(rule).Increment();
  metrics.updates_enqueued.Increment(static_cast<double>(counts.updates));
  metrics.updates_truncated.Increment(static_cast<double>(counts.truncated));
  metrics.batches.Increment();
  partition_metrics.resent.Increment(static_cast<double>(counts.resent));
  metrics.erasures.Increment(static_cast<double>(counts.erasures));
  metrics.erasure_suppressed.Increment(static_cast<double>(counts.erasure_suppressed));
  metrics.expired.Increment(static_cast<double>(counts.expired));
  for (double seconds : counts.erasure_latencies_s) metrics.erasure_latency.Observe(seconds);
}

absl::Status PartitionedRuntime::Impl::FireTimers() {
  const PipelineOptions& pipeline = options.runtime.pipeline;
  std::vector<std::pair<int32_t, absl::Status>> failed_stores;  // handled after the loop
  for (auto& [partition, p] : owned) {
    // Single mode's clock, per repartition partition: its stream time while
    // it catches up (or always, in event-time mode), wall time once caught up.
    int64_t now = p.task->stream_time_ms();
    if (pipeline.clock_mode == core::PipelineClock::Mode::kAuto) {
      const std::optional<int64_t> high =
          consumer->CachedHighWatermark({options.repartition_topic, partition});
      if (high.has_value() && p.task->next_offset() + pipeline.caught_up_max_lag >= *high) {
        now = std::max(now, wall_clock.NowMs());
      }
    }
    if (!p.task->MaybeTimersDue(now)) continue;
    absl::StatusOr<internal::TaskCounts> fired = p.task->RunTimers(now);
    if (!fired.ok()) {
      failed_stores.emplace_back(partition, fired.status());
      continue;
    }
    const internal::TaskCounts& counts = *fired;
    if (counts.timers_fired == 0) continue;
    metrics.timers_fired.Increment(static_cast<double>(counts.timers_fired));
    metrics.updates_truncated.Increment(static_cast<double>(counts.truncated));
    metrics.updates_enqueued.Increment(static_cast<double>(counts.updates));
    p.publisher->Notify();
  }
  for (const auto& [partition, why] : failed_stores) RETURN_IF_ERROR(StoreFailed(partition, why));
  return absl::OkStatus();
}

absl::Status PartitionedRuntime::Impl::StoreFailed(int32_t partition, const absl::Status& why) {
  if (!absl::IsUnavailable(why)) return why;
  LogError("the store of partition ", partition, " failed: ", why.ToString(),
           "; restoring the partition from its changelog");
  health.Set(Fault::kStoreFailed, absl::StrCat("partition ", partition, ": ", why.message(),
                                               "; restoring it from the changelog"));
  Drop(partition, /*drain=*/false, absl::ZeroDuration());
  recovering[partition] = {absl::Now(), options.runtime.recovery_backoff};
  return RetryRecoveries();
}

absl::Status PartitionedRuntime::Impl::RetryRecoveries() {
  if (recovering.empty()) return absl::OkStatus();
  const absl::Time now = absl::Now();
  const std::vector<core::PartitionKey> assigned = consumer->Assignment();
  for (auto it = recovering.begin(); it != recovering.end();) {
    const core::PartitionKey key{options.repartition_topic, it->first};
    if (std::find(assigned.begin(), assigned.end(), key) == assigned.end() ||
        owned.count(it->first) > 0) {
      // The group moved it (its new owner restores it), or a rebalance
      // gave it back here and took it again meanwhile.
      it = recovering.erase(it);
      continue;
    }
    if (now < it->second.next) {
      ++it;
      continue;
    }
    absl::StatusOr<int64_t> next = Own(it->first);
    if (next.ok()) {
      // Read again from the restored marker: records fetched meanwhile
      // were skipped (not owned).
      RETURN_IF_ERROR(consumer->Seek(key, *next));
      LogInfo("partition ", it->first, " restored after its store failed");
      it = recovering.erase(it);
      continue;
    }
    if (!absl::IsUnavailable(next.status())) return next.status();
    Drop(it->first, /*drain=*/false, absl::ZeroDuration());
    it->second.backoff = std::min(it->second.backoff * 2, absl::Seconds(30));
    it->second.next = now + it->second.backoff;
    health.Set(Fault::kStoreFailed,
               absl::StrCat("partition ", it->first,
                            ": restoring after a failed store: ", next.status().message(),
                            "; retrying in ", absl::FormatDuration(it->second.backoff)));
    ++it;
  }
  if (recovering.empty()) health.Clear(Fault::kStoreFailed);
  return absl::OkStatus();
}

absl::Status PartitionedRuntime::Impl::Route(const std::vector<kafka::ConsumedMessage>& inputs) {
  internal::ReadBatch batch = read->Read(inputs, wall_clock.NowMs());
  RETURN_IF_ERROR(dead_letters->PublishAll(batch.letters, [] { return false; }));
  for (ingest::RejectReason reason : batch.reasons) metrics.dead_letters(reason).Increment();
  const std::vector<internal::RoutedRecord> routed = internal::RouteStage::Route(
      batch, rules, /*epoch=*/0,
      wall_clock.NowMs() + options.runtime.pipeline.erasure_suppression_ms);
  route_failures = 0;
  for (size_t i = 0; i < routed.size(); ++i) {
    const internal::RoutedRecord& r = routed[i];
    const int32_t partition = cluster::IdentityProtocol::PartitionOf(r.key, options.partitions);
    for (;;) {
      absl::Status s =
          router->ProduceTo(options.repartition_topic, partition, r.key, r.value, {}, i);
      if (s.ok()) break;
      if (!absl::IsResourceExhausted(s)) return s;
      router->Poll(10);
    }
  }
  RETURN_IF_ERROR(router->Flush(60'000));
  if (route_failures > 0) {
    return absl::UnavailableError(
        absl::StrCat(route_failures, " routed records were not delivered: ", route_error));
  }
  // Every routed record is on its partition: the input may move on.
  std::vector<kafka::CommitPosition> commits;
  for (const auto& [partition, touched] : batch.touched) {
    commits.push_back({partition, touched.position.next_offset});
    routed_positions[partition] = touched.position.next_offset;
    metrics.consumed(partition.topic).Increment(static_cast<double>(touched.messages));
  }
  consumer->CommitAsync(commits);
  return absl::OkStatus();
}

void PartitionedRuntime::Impl::ReportStatus() {
  const absl::Time now = absl::Now();
  if (now < next_status) return;  // Assignment() copies librdkafka's list
  next_status = now + absl::Milliseconds(200);
  std::vector<Health::PartitionState> partitions;
  for (const core::PartitionKey& key : consumer->Assignment()) {
    int64_t position = 0;
    if (key.topic == options.repartition_topic) {
      auto it = owned.find(key.partition);
      if (it != owned.end()) position = it->second.task->next_offset();
    } else if (auto it = routed_positions.find(key); it != routed_positions.end()) {
      position = it->second;
    }
    partitions.push_back({key, position, consumer->CachedHighWatermark(key)});
  }
  health.ReportAssignment(partitions);
  if (now >= next_progress_log && !owned.empty()) {
    // Where each owned partition is, every 30 s: a move's progress is visible.
    next_progress_log = now + absl::Seconds(30);
    std::string summary;
    for (const auto& [partition, p] : owned) {
      absl::StrAppend(&summary, summary.empty() ? "" : ", ", partition, "@", p.task->next_offset(),
                      " (outbox ", p.store->OutboxDepth(), ")");
    }
    LogInfo("owned partitions of ", options.repartition_topic, ": ", summary);
  }
}

PartitionedRuntime::PartitionedRuntime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PartitionedRuntime::~PartitionedRuntime() { Shutdown(absl::Seconds(10)); }

absl::StatusOr<std::unique_ptr<PartitionedRuntime>> PartitionedRuntime::Start(
    const PartitionedOptions& given, prometheus::Registry& registry,
    const core::Clock& wall_clock) {
  RETURN_IF_ERROR(given.Validate());
  auto impl = std::make_unique<Impl>(given, registry, wall_clock);
  Impl& p = *impl;
  // The stages keep references to the options: the runtime's own copy.
  const PartitionedOptions& options = p.options;
  std::error_code error;
  std::filesystem::create_directories(options.runtime.store.path, error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat(
        "store.path: cannot create ", options.runtime.store.path, ": ", error.message()));
  }
  if (!options.runtime.lease.topic.empty()) {
    // Before joining the group: a single-mode instance holding it stops us.
    cluster::GroupLeaseOptions lease = options.runtime.Lease();
    lease.mode = std::string(cluster::kPartitionedMode);
    ASSIGN_OR_RETURN(p.lease, cluster::GroupLease::Acquire(
                                  lease, options.runtime.consumer.properties, wall_clock));
  }
  ASSIGN_OR_RETURN(
      p.read, internal::ReadStage::Create(options.runtime.pipeline, p.rules, p.privacy, p.workers));
  ASSIGN_OR_RETURN(p.dead_letters,
                   DeadLetterSink::Create(
                       {.topic = options.runtime.dead_letter_topic,
                        .max_message_bytes = options.runtime.pipeline.max_output_message_bytes},
                       options.runtime.producer_properties, p.health));
  kafka::Properties router_properties = options.runtime.producer_properties;
  router_properties.push_back({"enable.idempotence", "true"});
  ASSIGN_OR_RETURN(
      p.router, kafka::Producer::Create(router_properties, [&p](uint64_t, const absl::Status& s) {
        if (s.ok()) return;
        ++p.route_failures;
        p.route_error = s.ToString();
      }));
  ASSIGN_OR_RETURN(
      p.tail, kafka::LogTail::Open(options.runtime.consumer.properties, options.changelog_topic));
  if (options.standby_replicas > 0) {
    ASSIGN_OR_RETURN(p.standby_tail, kafka::LogTail::Open(options.runtime.consumer.properties,
                                                          options.changelog_topic));
  }
  // Warm copies a killed process left: a restart starts them afresh.
  std::vector<std::filesystem::path> leftovers;
  for (const auto& entry : std::filesystem::directory_iterator(options.runtime.store.path, error)) {
    if (entry.path().filename().string().rfind("standby-", 0) == 0) leftovers.push_back(entry);
  }
  for (const std::filesystem::path& path : leftovers) std::filesystem::remove_all(path, error);
  kafka::ConsumerOptions consumer = options.runtime.consumer;
  consumer.topics = internal::ReadStage::Subscription(options.runtime.pipeline, consumer.topics);
  // Routing commits input offsets to the group (nothing local holds them).
  consumer.committed_topics = consumer.topics;
  consumer.topics.push_back(options.repartition_topic);
  ASSIGN_OR_RETURN(
      p.consumer,
      kafka::Consumer::Create(
          consumer, [&p](const core::PartitionKey& key) -> std::optional<int64_t> {
            // Input partitions resume at the group's committed offsets
            // (ConsumerOptions::committed_topics): never asked here.
            if (key.topic != p.options.repartition_topic) return std::nullopt;
            absl::StatusOr<int64_t> next = p.Own(key.partition);
            if (next.ok()) {
              p.recovering.erase(key.partition);
              return *next;
            }
            LogError("taking ", key.topic, "/", key.partition, ": ", next.status().ToString());
            if (absl::IsUnavailable(next.status())) {
              // Its store failed: taken again later (RetryRecoveries).
              p.Drop(key.partition, /*drain=*/false, absl::ZeroDuration());
              p.recovering[key.partition] = {absl::Now(), p.options.runtime.recovery_backoff};
              p.health.Set(Fault::kStoreFailed, absl::StrCat("partition ", key.partition, ": ",
                                                             next.status().message()));
              return std::nullopt;
            }
            if (p.failed.ok()) p.failed = next.status();
            return std::nullopt;
          }));
  p.health.ReportStarted(true);
  ASSIGN_OR_RETURN(
      p.monitor, internal::HealthMonitor::Start(p.health, options.runtime.consumer.properties, {}));
  return std::unique_ptr<PartitionedRuntime>(new PartitionedRuntime(std::move(impl)));
}

absl::StatusOr<size_t> PartitionedRuntime::RunOnce() {
  Impl& p = *impl_;
  RETURN_IF_ERROR(p.failed);
  if (p.lease != nullptr && p.lease->state() == cluster::GroupLease::State::kLost) {
    return absl::FailedPreconditionError(p.lease->reason());
  }
  p.health.ReportLoop();
  std::vector<kafka::ConsumedMessage> messages;
  RETURN_IF_ERROR(p.consumer->Poll(p.options.runtime.pipeline.batch_max_events,
                                   p.options.runtime.pipeline.poll_timeout_ms,
                                   p.gather.NextGatherMs(std::chrono::steady_clock::now()),
                                   messages));
  p.gather.Polled(std::chrono::steady_clock::now());
  RETURN_IF_ERROR(p.failed);
  p.DropRevoked();
  std::vector<kafka::ConsumedMessage> inputs;
  std::map<int32_t, std::vector<kafka::ConsumedMessage>> by_partition;
  for (kafka::ConsumedMessage& m : messages) {
    if (m.topic() == p.options.repartition_topic) {
      by_partition[m.partition()].push_back(std::move(m));
    } else {
      inputs.push_back(std::move(m));
    }
  }
  if (!inputs.empty()) RETURN_IF_ERROR(p.Route(inputs));
  // A store whose write failed outside a commit (deleting published
  // entries) stops its partition too, idle or waiting for a purge.
  std::vector<int32_t> write_failed;
  for (const auto& [partition, owned] : p.owned) {
    if (owned.store->WriteFailed()) write_failed.push_back(partition);
  }
  for (int32_t partition : write_failed) {
    RETURN_IF_ERROR(p.StoreFailed(
        partition, absl::UnavailableError("the store's last write failed (see the log)")));
  }
  RETURN_IF_ERROR(p.RetryRecoveries());
  p.ExpireParked();
  if (p.lease != nullptr) {
    p.partition_metrics.unowned.Set(p.lease->UnownedOf(p.options.partitions));
  }
  p.PurgeErased();
  for (const auto& [partition, records] : by_partition) {
    auto it = p.owned.find(partition);
    if (it == p.owned.end()) continue;  // revoked meanwhile: its new owner reads them
    if (it->second.task->purge_due()) {
      // Nothing runs between an erasure and its purge (the acknowledgements
      // go out in order): these records are read again.
      RETURN_IF_ERROR(p.consumer->Seek({p.options.repartition_topic, partition},
                                       it->second.task->next_offset()));
      continue;
    }
    absl::StatusOr<internal::TaskCounts> ran = it->second.task->RunBatch(records);
    if (!ran.ok()) {
      RETURN_IF_ERROR(p.StoreFailed(partition, ran.status()));
      continue;
    }
    const internal::TaskCounts& counts = *ran;
    p.Record(counts);
    p.NotePurgeDue(it->second);
    if (counts.gap) {
      const int64_t next = it->second.task->next_offset();
      LogWarn(p.options.repartition_topic, "/", partition, ": records fetched past ", next,
              " before the partition was taken again; reading again from ", next);
      RETURN_IF_ERROR(p.consumer->Seek({p.options.repartition_topic, partition}, next));
    }
    it->second.publisher->Notify();
    p.health.ReportCommit();
  }
  RETURN_IF_ERROR(p.FireTimers());
  p.FollowChangelogs();
  RETURN_IF_ERROR(p.failed);
  p.PlanStandbys();
  p.FollowStandbys();
  p.ApplyBackPressure();
  if (messages.empty()) p.health.ReportIdle();
  p.ReportStatus();
  return messages.size();
}

bool PartitionedRuntime::Shutdown(absl::Duration timeout) {
  Impl& p = *impl_;
  if (p.shut_down) return true;
  p.shut_down = true;
  if (p.monitor) p.monitor->Stop();
  // Publish while the partitions are still ours, then leave the group: a
  // new owner must not restore a changelog this instance is still writing.
  bool drained = true;
  const absl::Time deadline = absl::Now() + timeout;
  for (auto& [partition, owned] : p.owned) {
    drained =
        owned.publisher->DrainAndStop(std::max(deadline - absl::Now(), absl::ZeroDuration())) &&
        drained;
  }
  p.owned.clear();
  p.PublishOwnership();
  p.ExpireParked(/*all=*/true);  // a restart restores: nothing left behind on disk
  while (!p.standbys.empty()) p.DropStandby(p.standbys.begin()->first);
  p.consumer->Close();
  if (p.lease != nullptr) p.lease->Release();
  return drained;
}

Health& PartitionedRuntime::health() { return impl_->health; }

store::ProfileStore* PartitionedRuntime::store(int32_t partition) {
  auto it = impl_->owned.find(partition);
  return it == impl_->owned.end() ? nullptr : it->second.store.get();
}

absl::StatusOr<std::optional<std::string>> PartitionedRuntime::ReadSlot(
    int32_t partition, const std::string& key) const {
  // Read under the lock: a dropped partition's store is closed (by the
  // runtime, under the same lock) before its directory is removed and
  // reused, never by a lookup still holding it.
  absl::MutexLock lock(&impl_->readable_mu);
  auto it = impl_->readable.find(partition);
  if (it == impl_->readable.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("partition ", partition, " is not owned here"));
  }
  return it->second->Get(key);
}

std::optional<std::string> PartitionedRuntime::OwnerAddress(int32_t partition) const {
  if (impl_->lease == nullptr) return std::nullopt;
  return impl_->lease->AddressOf(partition);
}

int32_t PartitionedRuntime::partitions() const { return impl_->options.partitions; }

uint64_t PartitionedRuntime::OutboxDepth() {
  uint64_t depth = 0;
  for (const auto& [partition, owned] : impl_->owned) depth += owned.store->OutboxDepth();
  return depth;
}

}  // namespace profiled::pipeline
