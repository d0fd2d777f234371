#include "profiled/pipeline/runtime.h"

#include <algorithm>

#include "health_monitor.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "read_stage.h"

namespace profiled::pipeline {

Runtime::Runtime(prometheus::Registry& registry, const RuntimeOptions& options,
                 const core::Clock& wall_clock)
    : options_(options),
      // Every subscribed topic counts from 0, the control topic included.
      pipeline_metrics_(
          registry, internal::ReadStage::Subscription(options.pipeline, options.consumer.topics)),
      publisher_metrics_(registry),
      health_(std::make_unique<Health>(registry, options.health, wall_clock)),
      backoff_(options.recovery_backoff) {}

absl::StatusOr<std::unique_ptr<Runtime>> Runtime::Start(const RuntimeOptions& options,
                                                        prometheus::Registry& registry,
                                                        const core::Clock& wall_clock,
                                                        std::function<bool()> should_stop) {
  RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<Runtime> rt(new Runtime(registry, options, wall_clock));
  // Before anything joins the group: a second instance stops here.
  ASSIGN_OR_RETURN(rt->lease_, cluster::GroupLease::Acquire(
                                   options.Lease(), options.consumer.properties, wall_clock));
  ASSIGN_OR_RETURN(rt->store_, store::ProfileStore::Open(options.store));
  PublisherOptions publisher = options.publisher;
  publisher.max_message_bytes = options.pipeline.max_output_message_bytes;
  ASSIGN_OR_RETURN(rt->publisher_,
                   Publisher::Create(publisher, options.producer_properties, *rt->store_,
                                     rt->publisher_metrics_, *rt->health_));
  rt->publisher_->Start();
  ASSIGN_OR_RETURN(
      rt->dead_letters_,
      DeadLetterSink::Create({.topic = options.dead_letter_topic,
                              .max_message_bytes = options.pipeline.max_output_message_bytes},
                             options.producer_properties, *rt->health_));
  rt->purger_ = std::make_unique<Purger>(
      *rt->store_, rt->publisher_.get(), *rt->health_, rt->pipeline_metrics_,
      PurgerOptions{.receipts_topic = options.pipeline.receipts_topic});
  RETURN_IF_ERROR(rt->purger_->Start());
  ASSIGN_OR_RETURN(rt->pipeline_,
                   Pipeline::Create(options.pipeline, options.consumer,
                                    {*rt->store_, wall_clock, rt->publisher_.get(),
                                     *rt->dead_letters_, rt->pipeline_metrics_, *rt->health_,
                                     rt->purger_.get(), std::move(should_stop)}));
  // The fit reads the clock the signals read: stream time while catching
  // up (or always, in event-time mode), wall time once caught up.
  const bool wall_when_caught_up = options.pipeline.clock_mode == core::PipelineClock::Mode::kAuto;
  Health* health = rt->health_.get();
  ModelFitter::NowAt now_at = [wall_when_caught_up, health, &wall_clock](int64_t stream_ms) {
    return wall_when_caught_up && health->ready() ? std::max(stream_ms, wall_clock.NowMs())
                                                  : stream_ms;
  };
  ASSIGN_OR_RETURN(rt->fitter_,
                   ModelFitter::Start(options.model_fit, *rt->store_, rt->pipeline_->signals(),
                                      options.pipeline.scoring.consent, registry, now_at));
  rt->health_->ReportStarted(true);
  Runtime* raw = rt.get();
  ASSIGN_OR_RETURN(rt->monitor_,
                   internal::HealthMonitor::Start(*rt->health_, options.consumer.properties, [raw] {
                     if (raw->lease_->state() == cluster::GroupLease::State::kHeld) {
                       raw->health_->Clear(Fault::kLeaseLapsed);
                     } else {
                       raw->health_->Set(Fault::kLeaseLapsed, raw->lease_->reason());
                     }
                   }));
  return rt;
}

Runtime::~Runtime() { Shutdown(absl::Seconds(10)); }

absl::StatusOr<size_t> Runtime::RunOnce() {
  health_->ReportLoop();
  if (const cluster::GroupLease::State lease = lease_->state();
      lease != cluster::GroupLease::State::kHeld) {
    if (lease == cluster::GroupLease::State::kLost) {
      return absl::FailedPreconditionError(lease_->reason());
    }
    // Another instance may be taking the group: commit nothing until the
    // lease is confirmed again (the monitor reports the fault).
    pipeline_->KeepAlive(100);
    lease_paused_ = true;
    return 0;
  }
  if (lease_paused_ && !failed_) {
    // KeepAlive paused every partition: read again from the last committed
    // batch, as after a store recovery.
    LogInfo("cluster lease confirmed again: consuming from the last committed batch");
    RETURN_IF_ERROR(pipeline_->Restart());
  }
  lease_paused_ = false;
  if (failed_) return Recover();
  absl::StatusOr<size_t> n = pipeline_->RunOnce();
  if (n.ok() || absl::IsCancelled(n.status())) {
    // A batch committed since the last recovery: the next failure starts
    // the back-off afresh.
    if (health_->Commits() > commits_at_recovery_) backoff_ = options_.recovery_backoff;
    return n;
  }
  // Only a store that cannot write (I/O, no space, closed) is waited out;
  // anything else (a corrupt stored profile, a bug) would fail the same way
  // again: it ends the run, loudly.
  if (!absl::IsUnavailable(n.status())) return n;
  // The store could not commit: stop consuming until it can (the batch and
  // anything after it are read again then), and say so.
  health_->Set(Fault::kStoreFailed,
               absl::StrCat(n.status().message(), "; consumption stopped, recovering"));
  health_->ReportStarted(false);
  failed_ = true;
  next_recovery_ = absl::Now() + backoff_;
  return 0;
}

absl::StatusOr<size_t> Runtime::Recover() {
  const absl::Time now = absl::Now();
  if (now < next_recovery_) {
    // Wait without spinning, polling the group meanwhile; the caller's loop
    // stays responsive to a stop.
    pipeline_->KeepAlive(static_cast<int>(
        absl::ToInt64Milliseconds(std::min(next_recovery_ - now, absl::Milliseconds(100)))));
    return 0;
  }
  absl::Status s = store_->Recover();
  if (s.ok()) s = pipeline_->Restart();
  // Every attempt, failed or not, doubles the wait before the next: a write
  // that fails again right after a recovery waits longer.
  backoff_ = std::min(backoff_ * 2, absl::Seconds(30));
  if (!s.ok()) {
    health_->Set(Fault::kStoreFailed, absl::StrCat("recovering: ", s.message()));
    next_recovery_ = absl::Now() + backoff_;
    return 0;
  }
  LogInfo("store recovered: consuming again from the last committed batch");
  failed_ = false;
  commits_at_recovery_ = health_->Commits();
  health_->Clear(Fault::kStoreFailed);
  health_->ReportStarted(true);
  return 0;
}

bool Runtime::Shutdown(absl::Duration timeout) {
  if (shut_down_) return store_->OutboxDepth() == 0;
  shut_down_ = true;
  if (monitor_) monitor_->Stop();
  if (fitter_) fitter_->Stop();
  if (pipeline_) pipeline_->Close();
  if (purger_) purger_->Stop();
  if (health_) {
    health_->ReportStarted(false);
    health_->ReportAssignment({});
    health_->Evaluate();
  }
  const bool drained = publisher_ == nullptr || publisher_->DrainAndStop(timeout);
  // Last: the next instance may take the group once this one has left it.
  if (lease_) lease_->Release();
  return drained;
}

}  // namespace profiled::pipeline
