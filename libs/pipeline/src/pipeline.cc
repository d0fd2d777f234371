// The batch loop: poll, run the stages, hand the batch to the committer;
// failure, back-pressure, timers and status. The stages do the work
// (read_stage.h, resolve_stage.h, apply_stage.h, output_stage.h,
// timer_stage.h); none of them calls back into the pipeline.
#include "profiled/pipeline/pipeline.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "back_pressure.h"
#include "batch_stages.h"
#include "batch_state.h"
#include "batch_work.h"
#include "committer.h"
#include "gather_window.h"
#include "hot_cache.h"
#include "profiled/base/failpoint.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/pipeline/output_limits.h"
#include "profiled/pipeline/publisher.h"
#include "profiled/pipeline/purger.h"
#include "read_stage.h"
#include "timer_stage.h"
#include "worker_pool.h"

namespace profiled::pipeline {

using internal::BatchWork;

struct Pipeline::Impl {
  Impl(const PipelineOptions& o, PipelineParts p, identity::IdentityRules r,
       privacy::PrivacyFilter f)
      : options(o),
        parts(std::move(p)),
        rules(std::move(r)),
        privacy(std::move(f)),
        signals(o.signals),
        workers(o.worker_threads),
        clock(parts.wall_clock, o.clock_mode),
        cache(o.profile_cache_bytes),
        stages(options, rules, parts.store, signals, workers, clock),
        timers(options, stages.output(), parts.store, cache) {}

  [[nodiscard]] absl::Status ProcessBatch(const std::vector<kafka::ConsumedMessage>& messages);
  [[nodiscard]] absl::Status Submit(uint64_t seq, BatchWork& work);
  // Waits for the batch on the committer thread, then advances positions,
  // the group's offsets and the cache's committed mark. A failure sticks:
  // every later call (and RunOnce) returns it.
  [[nodiscard]] absl::Status FinishInFlight();
  // Clears the cache and makes `s` the sticky failure (the first one stays).
  absl::Status Fail(absl::Status s);
  [[nodiscard]] absl::Status FireTimers();
  [[nodiscard]] absl::Status LoadPositions();
  void UpdateBackPressure();
  void UpdateStatus(bool force = false);

  PipelineOptions options;
  PipelineParts parts;
  identity::IdentityRules rules;
  privacy::PrivacyFilter privacy;
  signals::Signals signals;
  internal::WorkerPool workers;
  core::PipelineClock clock;
  internal::HotCache cache;
  std::unique_ptr<internal::ReadStage> read;
  internal::BatchStages stages;
  internal::TimerStage timers;
  std::string secret;  // keys suppression hashes
  bool suppressions_exist = false;
  std::unique_ptr<kafka::Consumer> consumer;
  // Next offset per partition as committed to the store; seeds assignments.
  absl::flat_hash_map<core::PartitionKey, int64_t> positions;
  internal::BackPressure pressure{options.outbox_max_entries};
  internal::GatherWindow gather{options.max_delay_ms};
  std::atomic<bool> paused{false};  // pressure.paused(), for other threads
  std::chrono::steady_clock::time_point next_status_update{};
  // Batches are numbered as they are handed to the committer; one in flight.
  struct InFlight {
    uint64_t seq = 0;
    std::vector<kafka::CommitPosition> commits;
  };
  std::optional<InFlight> in_flight;
  uint64_t last_seq = 0;
  absl::Status failed;
  // Last: destroyed first, so a batch in flight finishes while the rest is alive.
  internal::Committer committer;
};

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pipeline::~Pipeline() = default;

const signals::Signals& Pipeline::signals() const { return impl_->signals; }

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(
    const PipelineOptions& options, const kafka::ConsumerOptions& consumer_options,
    PipelineParts parts) {
  RETURN_IF_ERROR(options.Validate());
  if (absl::Status fits = CheckOutputLimits(options); !fits.ok()) {
    // The configuration reader refuses this; a caller that means it (a
    // top_k far above any real key count) gets updates cut to fit instead.
    LogWarn("output.max_message_bytes: ", fits.message(), "; larger updates are cut to fit");
  }
  ASSIGN_OR_RETURN(identity::IdentityRules rules, identity::IdentityRules::Create(options.identity));
  ASSIGN_OR_RETURN(privacy::PrivacyFilter privacy, privacy::PrivacyFilter::Create(options.privacy));
  auto impl = std::make_unique<Impl>(options, parts, std::move(rules), std::move(privacy));
  Impl& p = *impl;
  ASSIGN_OR_RETURN(p.read, internal::ReadStage::Create(p.options, p.rules, p.privacy, p.workers));
  if (!options.control_topic.empty()) {
    p.secret = options.erasure_secret;
    if (p.secret.empty()) {
      ASSIGN_OR_RETURN(p.secret, parts.store.DeploymentSecret());
    }
    ASSIGN_OR_RETURN(p.suppressions_exist, parts.store.HasSuppressions());
  }
  RETURN_IF_ERROR(p.LoadPositions());
  kafka::ConsumerOptions subscribed = consumer_options;
  subscribed.topics = internal::ReadStage::Subscription(options, consumer_options.topics);
  ASSIGN_OR_RETURN(p.consumer,
                   kafka::Consumer::Create(
                       subscribed, [&p](const core::PartitionKey& key) -> std::optional<int64_t> {
                         // Seek from what the store has, including the batch still being written.
                         (void)p.FinishInFlight();
                         auto it = p.positions.find(key);
                         if (it == p.positions.end()) return std::nullopt;
                         return it->second;
                       }));
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
}

absl::Status Pipeline::Impl::LoadPositions() {
  ASSIGN_OR_RETURN(std::vector<store::PartitionPosition> stored, parts.store.LoadPositions());
  positions.clear();
  clock.Reset();  // stream time as stored: not advanced by a batch that never committed
  for (const store::PartitionPosition& pos : stored) {
    core::PartitionKey key{pos.topic, pos.partition};
    positions[key] = pos.next_offset;
    clock.Observe(key, pos.stream_time_ms);
  }
  return absl::OkStatus();
}

absl::Status Pipeline::Restart() {
  Impl& p = *impl_;
  (void)p.committer.Wait();  // nothing may be in flight
  p.in_flight.reset();
  p.cache.Clear();
  p.timers.Reset();
  p.failed = absl::OkStatus();
  RETURN_IF_ERROR(p.LoadPositions());
  if (!p.options.control_topic.empty()) {
    ASSIGN_OR_RETURN(p.suppressions_exist, p.parts.store.HasSuppressions());
  }
  // Whatever was consumed after the last committed batch is read again.
  RETURN_IF_ERROR(p.consumer->Rewind());
  if (!p.paused) p.consumer->ResumeAll();  // KeepAlive paused it
  return absl::OkStatus();
}

void Pipeline::KeepAlive(int timeout_ms) {
  // Paused, polling serves the group (heartbeats, rebalances) without
  // taking input; anything already fetched is read again after Restart().
  impl_->consumer->PauseAll();
  std::vector<kafka::ConsumedMessage> ignored;
  (void)impl_->consumer->Poll(1, timeout_ms, ignored);
}

bool Pipeline::paused() const { return impl_->paused; }

void Pipeline::Impl::UpdateBackPressure() {
  const uint64_t depth = parts.store.OutboxDepth();
  switch (pressure.Next(depth)) {
    case internal::BackPressure::kPause:
      LogWarn("outbox holds ", depth, " updates (bound ", options.outbox_max_entries,
              "): pausing consumption until the output catches up");
      consumer->PauseAll();
      break;
    case internal::BackPressure::kResume:
      LogInfo("outbox drained to ", depth, ": resuming consumption");
      consumer->ResumeAll();
      break;
    case internal::BackPressure::kNone:
      return;
  }
  paused = pressure.paused();
  parts.metrics.paused.Set(paused ? 1 : 0);
}

absl::Status Pipeline::Impl::Fail(absl::Status s) {
  // The cache may hold what never reached the store: forget it. The pipeline
  // stops; a restart resumes from the last committed batch.
  cache.Clear();
  if (failed.ok()) failed = s;
  return s;
}

absl::Status Pipeline::Impl::FinishInFlight() {
  if (!in_flight.has_value()) return failed;
  absl::Status s = committer.Wait();
  InFlight done = std::move(*in_flight);
  in_flight.reset();
  if (!s.ok()) return Fail(s);
  for (const kafka::CommitPosition& c : done.commits) positions[c.partition] = c.next_offset;
  consumer->CommitAsync(done.commits);
  cache.Committed(done.seq);
  parts.health.ReportCommit();
  return absl::OkStatus();
}

absl::StatusOr<size_t> Pipeline::RunOnce() {
  Impl& p = *impl_;
  RETURN_IF_ERROR(p.failed);
  p.UpdateBackPressure();
  std::vector<kafka::ConsumedMessage> messages;
  // Paused, a poll takes one message: there is nothing to gather for.
  RETURN_IF_ERROR(p.consumer->Poll(p.paused ? 1 : p.options.batch_max_events,
                                   p.options.poll_timeout_ms,
                                   p.gather.NextGatherMs(std::chrono::steady_clock::now()),
                                   messages));
  p.gather.Polled(std::chrono::steady_clock::now());
  if (!messages.empty()) {
    // A batch can block (dead letters refused): health must know the
    // assignment before it, or lag stays unknown for the whole stall.
    if (p.parts.health.Assigned().empty()) p.UpdateStatus(/*force=*/true);
    const auto started = std::chrono::steady_clock::now();
    if (absl::Status s = p.ProcessBatch(messages); !s.ok()) {
      (void)p.FinishInFlight();  // the batch before it still lands
      return p.Fail(s);          // profiles taken from the cache may be half-applied
    }
    p.parts.metrics.batch_size.Observe(static_cast<double>(messages.size()));
    p.parts.metrics.batch_duration.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  } else {
    // Idle: let the last batch land, so what was consumed is stored.
    RETURN_IF_ERROR(p.FinishInFlight());
    if (!p.paused) p.parts.health.ReportIdle();
    // An idle partition at its high watermark is caught up (e.g. after a
    // restart with nothing new): its clock, and so its timers, run on wall time.
    for (const auto& [partition, next_offset] : p.positions) {
      std::optional<int64_t> high = p.consumer->CachedHighWatermark(partition);
      if (high.has_value() && next_offset + p.options.caught_up_max_lag >= *high) {
        p.clock.SetCaughtUp(partition, true);
      }
    }
  }
  // While paused the outbox is full: time-driven updates wait too.
  if (!p.paused) RETURN_IF_ERROR(p.FireTimers());
  p.UpdateStatus();
  return messages.size();
}

absl::Status Pipeline::Impl::FireTimers() {
  // No partition's clock reads later than this: nothing after it is due.
  int64_t horizon = 0;
  for (const auto& [partition, offset] : positions) {
    horizon = std::max(horizon, clock.NowMs(partition));
  }
  // Most polls have nothing due: skip them without waiting for the batch in
  // flight or reading the store.
  if (!timers.MaybeDue(horizon)) return absl::OkStatus();
  RETURN_IF_ERROR(FinishInFlight());  // the timers column is current
  ASSIGN_OR_RETURN(internal::TimerWork work, timers.Collect(horizon, clock));
  if (absl::Status s = parts.store.Commit(work.batch); !s.ok()) return Fail(s);
  RETURN_IF_ERROR(timers.Committed(work));
  if (work.batch.empty()) return absl::OkStatus();
  if (parts.publisher != nullptr && !work.batch.outbox.empty()) parts.publisher->Notify();
  work.RecordIn(parts.metrics);
  return absl::OkStatus();
}

absl::Status Pipeline::Impl::ProcessBatch(const std::vector<kafka::ConsumedMessage>& messages) {
  BatchWork work;
  work.read = read->Read(messages, parts.wall_clock.NowMs());
  for (const auto& [partition, touched] : work.read.touched) {
    std::optional<int64_t> high = consumer->CachedHighWatermark(partition);
    const int64_t next = touched.position.next_offset;
    clock.SetCaughtUp(partition, high.has_value() && next + options.caught_up_max_lag >= *high);
  }
  // Erasure reads audit records from the store: the batch in flight lands first.
  if (!work.read.erasures.empty()) RETURN_IF_ERROR(FinishInFlight());
  // The graph entries and profiles involved: from the cache, else the store.
  internal::BatchState state(parts.store, cache);
  RETURN_IF_ERROR(state.Preload(work.read.mentioned));
  ASSIGN_OR_RETURN(const auto charges,
                   stages.Run(state, work, secret, suppressions_exist, parts.wall_clock.NowMs()));
  for (const store::Timer& t : work.batch.timers_set) timers.NoteSet(t.due_ms);
  work.Finish(state, clock, parts.metrics);
  // The profiles go back to the cache, pinned until this batch is stored.
  const uint64_t seq = ++last_seq;
  state.ReturnTo(seq, charges);
  return Submit(seq, work);
}

absl::Status Pipeline::Impl::Submit(uint64_t seq, BatchWork& work) {
  std::vector<kafka::CommitPosition> commits;
  for (const store::PartitionPosition& pos : work.batch.positions) {
    commits.push_back({{pos.topic, pos.partition}, pos.next_offset});
  }
  // Written on the committer thread while the next batch is prepared; the
  // previous batch is written first. Dead letters are acknowledged before
  // their offsets are stored; one atomic write; then the publisher is told.
  RETURN_IF_ERROR(FinishInFlight());
  committer.Submit([this, batch = std::move(work.batch), letters = std::move(work.read.letters),
                    counts = std::move(work.counts)]() -> absl::Status {
    RETURN_IF_ERROR(parts.dead_letters.PublishAll(letters, parts.should_stop));
    PROFILED_FAILPOINT("before_commit");
    RETURN_IF_ERROR(parts.store.Commit(batch));
    PROFILED_FAILPOINT("after_commit");
    if (parts.publisher != nullptr) parts.publisher->Notify();
    counts.RecordIn(parts.metrics);
    return absl::OkStatus();
  });
  in_flight = InFlight{seq, std::move(commits)};
  if (!work.read.erasures.empty()) {
    // Later batches check suppressions in the store: this one must be there.
    suppressions_exist = true;
    RETURN_IF_ERROR(FinishInFlight());
    if (parts.purger != nullptr) {
      std::vector<std::string> requests;
      for (const internal::ErasureRequest& e : work.read.erasures) {
        requests.push_back(e.request.request_id());
      }
      // Every record of this batch (tombstones, receipts) comes before this.
      parts.purger->Schedule(std::move(requests), std::move(work.purge),
                             parts.store.NextOutboxSeq());
    }
  }
  return absl::OkStatus();
}

bool Pipeline::CaughtUp(int timeout_ms) {
  Impl& p = *impl_;
  std::vector<core::PartitionKey> assigned = p.consumer->Assignment();
  if (assigned.empty()) return false;
  for (const core::PartitionKey& key : assigned) {
    absl::StatusOr<int64_t> high = p.consumer->QueryHighWatermark(key, timeout_ms);
    if (!high.ok()) return false;
    auto it = p.positions.find(key);
    const int64_t position = it == p.positions.end() ? 0 : it->second;
    if (position + p.options.caught_up_max_lag < *high) return false;
  }
  return true;
}

void Pipeline::Impl::UpdateStatus(bool force) {
  // Assignment() copies librdkafka's list and RocksDB's properties take its
  // locks: at most every 200 ms, unless forced.
  const auto now = std::chrono::steady_clock::now();
  if (now < next_status_update && !force) return;
  next_status_update = now + std::chrono::milliseconds(200);
  parts.metrics.RecordStoreStats(parts.store.Stats());
  parts.metrics.RecordOffsetResets(consumer->OffsetResets());
  parts.metrics.RecordProfileCache(cache.hits(), cache.misses(), cache.bytes());
  std::vector<Health::PartitionState> partitions;
  for (const core::PartitionKey& key : consumer->Assignment()) {
    auto it = positions.find(key);
    partitions.push_back({key, it == positions.end() ? 0 : it->second,
                          consumer->CachedHighWatermark(key)});
  }
  parts.health.ReportAssignment(partitions);
}

void Pipeline::Close() {
  if (absl::Status s = impl_->FinishInFlight(); !s.ok() && !absl::IsCancelled(s)) {
    LogError("last batch not stored: ", s.ToString());
  }
  impl_->consumer->Close();
}

}  // namespace profiled::pipeline
