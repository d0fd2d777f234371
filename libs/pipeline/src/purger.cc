#include "profiled/pipeline/purger.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "outbox_records.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/pipeline/publisher.h"
#include "profiled/v1/control.pb.h"

namespace profiled::pipeline {

Purger::Purger(store::ProfileStore& store, Publisher* publisher, Health& health,
               PipelineMetrics& metrics, PurgerOptions options)
    : store_(store),
      publisher_(publisher),
      health_(health),
      metrics_(metrics),
      options_(std::move(options)) {}

Purger::~Purger() { Stop(); }

absl::Status Purger::Start() {
  ASSIGN_OR_RETURN(std::vector<std::string> pending, store_.PendingPurges());
  if (!pending.empty()) {
    LogWarn(pending.size(), " erasure purge(s) were interrupted: purging the whole store");
    store::PurgeKeys everything;
    everything.everything = true;
    Schedule(std::move(pending), std::move(everything), store_.NextOutboxSeq());
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void Purger::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    woken_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Purger::Schedule(std::vector<std::string> request_ids, store::PurgeKeys keys,
                      uint64_t after_seq) {
  absl::MutexLock lock(&mu_);
  due_.push_back({std::move(request_ids), std::move(keys), after_seq, absl::Now()});
  metrics_.purges_pending.Set(static_cast<double>(due_.size()));
  woken_ = true;
}

void Purger::Run() {
  absl::Time retry_at = absl::InfinitePast();
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      // Woken by Stop() and Schedule() at once, and every 200 ms (a purge
      // waits for its records to be published and for others to join it).
      mu_.AwaitWithTimeout(absl::Condition(&woken_), absl::Milliseconds(200));
      woken_ = false;
      if (stop_) return;
      if (due_.empty() || absl::Now() < retry_at) continue;
    }
    const bool ok = PurgeDue();
    retry_at = ok ? absl::InfinitePast() : absl::Now() + options_.retry;
  }
}

bool Purger::PurgeDue() {
  absl::StatusOr<uint64_t> oldest = store_.OldestOutboxSeq();
  if (!oldest.ok()) return false;
  const absl::Time now = absl::Now();
  std::vector<Due> ready;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = due_.begin(); it != due_.end();) {
      // Its tombstones and receipt are published, and a burst had its chance to join.
      if (it->after_seq <= *oldest && now - it->scheduled >= options_.coalesce) {
        ready.push_back(std::move(*it));
        it = due_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (ready.empty()) return true;
  store::PurgeKeys keys;
  for (const Due& d : ready) keys.Add(d.keys);
  const absl::Time started = absl::Now();
  absl::Status s = store_.Purge(keys);
  store::CommitBatch done;
  if (s.ok()) {
    const int64_t purged_ms = absl::ToUnixMillis(absl::Now());
    for (const Due& d : ready) {
      for (const std::string& request : d.request_ids) {
        done.purges_done.push_back(request);
        if (options_.receipts_topic.empty()) continue;
        v1::ErasureReceipt receipt;  // names the request and the time, nobody
        receipt.set_request_id(request);
        receipt.set_purged_ms(purged_ms);
        done.outbox.push_back(internal::MessageRecordFor(options_.receipts_topic, request, receipt,
                                                         "profiled.v1.ErasureReceipt"));
      }
    }
    s = store_.Commit(done);
  }
  if (!s.ok()) {
    // A failed reopen leaves the store closed; reopen it now rather than
    // wait for the pipeline's next write to notice.
    if (absl::Status recovered = store_.Recover(); !recovered.ok()) {
      LogWarn("store not recovered after a failed purge: ", recovered.message());
    }
    health_.Set(Fault::kPurgeFailed,
                absl::StrCat("purging erased data from disk: ", s.message(), "; retrying in ",
                             absl::FormatDuration(options_.retry)));
    absl::MutexLock lock(&mu_);
    for (Due& d : ready) due_.push_back(std::move(d));
    return false;
  }
  health_.Clear(Fault::kPurgeFailed);
  if (publisher_ != nullptr && !done.outbox.empty()) publisher_->Notify();
  for (const Due& d : ready) {
    metrics_.purge_latency.Observe(absl::ToDoubleSeconds(absl::Now() - d.scheduled));
  }
  {
    absl::MutexLock lock(&mu_);
    metrics_.purges_pending.Set(static_cast<double>(due_.size()));
  }
  LogInfo("purged ", done.purges_done.size(), " erasure(s) from disk in ",
          absl::FormatDuration(absl::Trunc(absl::Now() - started, absl::Milliseconds(1))));
  return true;
}

}  // namespace profiled::pipeline
