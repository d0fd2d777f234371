#include "profiled/pipeline/publisher.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "profiled/base/failpoint.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/codec/update_codec.h"
#include "profiled/internal/v1/profile_state.pb.h"
#include "profiled/kafka/errors.h"
#include "profiled/pipeline/output_limits.h"

namespace profiled::pipeline {

Publisher::Publisher(const PublisherOptions& options, store::ProfileStore& store,
                     PublisherMetrics& metrics, Health& health)
    : options_(options), store_(store), metrics_(metrics), health_(health) {}

absl::StatusOr<std::unique_ptr<Publisher>> Publisher::Create(
    const PublisherOptions& options, const kafka::Properties& producer_properties,
    store::ProfileStore& store, PublisherMetrics& metrics, Health& health) {
  std::unique_ptr<Publisher> p(new Publisher(options, store, metrics, health));
  p->producer_properties_ = OutputProducerDefaults(options.max_message_bytes);
  p->producer_properties_.insert(p->producer_properties_.end(), producer_properties.begin(),
                                 producer_properties.end());
  RETURN_IF_ERROR(p->CreateProducer());
  return p;
}

absl::Status Publisher::CreateProducer() {
  producer_.reset();  // the old one's last reports land first
  ASSIGN_OR_RETURN(producer_, kafka::Producer::Create(producer_properties_,
                                                      [this](uint64_t seq, const absl::Status& s) {
                                                        // Runs on the publisher thread, inside
                                                        // producer_->Poll().
                                                        if (s.ok()) {
                                                          acked_.push_back(seq);
                                                        } else {
                                                          Failed(seq, s);
                                                        }
                                                      }));
  return absl::OkStatus();
}

void Publisher::ReplaceFatalProducer() {
  const absl::Status fatal = producer_->FatalError();
  if (fatal.ok()) return;
  // An idempotent producer whose sequence broke never sends again: start a
  // new one from the oldest record not acknowledged (the outbox still has
  // it), as a restart would.
  LogError("output producer: ", fatal.message(), "; replacing it");
  uint64_t from = cursor_;
  if (!in_flight_.empty()) from = std::min(from, in_flight_.begin()->first);
  for (uint64_t seq : failed_) from = std::min(from, seq);
  if (absl::Status s = CreateProducer(); !s.ok()) {
    health_.Set(Fault::kOutputRefused,
                absl::StrCat("cannot replace the output producer: ", s.message()));
    return;
  }
  in_flight_.clear();
  failed_.clear();
  cursor_ = from;
}

void Publisher::Failed(uint64_t seq, const absl::Status& s) {
  failed_.push_back(seq);
  metrics_.publish_errors.Increment();
  if (kafka::IsRetriable(s)) {
    LogDebug("update ", seq, " not delivered, will retry: ", s.message());
    return;
  }
  // Retrying at once cannot help: stop here, in order, and say so.
  refused_ = true;
  health_.Set(Fault::kOutputRefused,
              absl::StrCat("the output refused update ", seq, ": ", s.message(),
                           "; publishing stopped, retried every ",
                           absl::FormatDuration(options_.refused_retry)));
}

void Publisher::CheckStall() {
  if (in_flight_.empty()) {
    health_.Clear(Fault::kOutputStalled);
    return;
  }
  // Records are produced in sequence order (a retry starts again from the
  // lowest): the first in flight has waited longest, or was just re-sent.
  const absl::Duration waited = absl::Now() - in_flight_.begin()->second.produced;
  if (waited < health_.options().stall_timeout) {
    health_.Clear(Fault::kOutputStalled);
    return;
  }
  health_.Set(Fault::kOutputStalled,
              absl::StrCat(in_flight_.size(), " updates unacknowledged, the oldest for ",
                           absl::FormatDuration(absl::Trunc(waited, absl::Seconds(1))), " (outbox ",
                           store_.OutboxDepth(), ")"));
}

Publisher::~Publisher() {
  Stop();
  // Its destructor flushes and may deliver reports into members declared
  // after it: gone first.
  producer_.reset();
}

void Publisher::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Publisher::Notify() {
  absl::MutexLock lock(&mu_);
  notified_ = true;
}

bool Publisher::DrainAndStop(absl::Duration timeout) {
  Notify();
  const absl::Time deadline = absl::Now() + timeout;
  while (store_.OutboxDepth() > 0 && absl::Now() < deadline && thread_.joinable()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const bool drained = store_.OutboxDepth() == 0;
  Stop();
  return drained;
}

void Publisher::Stop() {
  stop_ = true;
  Notify();
  if (thread_.joinable()) thread_.join();
  ReportDepths(0, 0);  // a stopped publisher's outbox is no one's to publish
}

void Publisher::ReportDepths(double outbox, double queued) {
  // Deltas: the gauges add up every publisher sharing them (partitioned
  // mode has one per owned partition).
  metrics_.outbox_depth.Increment(outbox - reported_outbox_);
  metrics_.producer_queue_depth.Increment(queued - reported_queued_);
  reported_outbox_ = outbox;
  reported_queued_ = queued;
}

void Publisher::Run() {
  while (!stop_) {
    FillFromOutbox();
    producer_->Poll(in_flight_.empty() ? 0 : 5);
    SettleReports();
    ReplaceFatalProducer();
    CheckStall();
    ReportDepths(static_cast<double>(store_.OutboxDepth()),
                 static_cast<double>(producer_->OutQueueLength()));
    // Wakes every 50 ms: undeleted entries are retried too. Past a barrier
    // whose records were just acknowledged, it goes on at once.
    if (in_flight_.empty() && !at_barrier_) {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&notified_), absl::Milliseconds(50));
      notified_ = false;
    }
  }
  // Serve reports already on their way so acknowledged entries get deleted.
  producer_->Poll(0);
  SettleReports();
}

void Publisher::FillFromOutbox() {
  at_barrier_ = false;
  if (!failed_.empty() && absl::Now() >= retry_at_) {
    // Produce failed entries again, and anything after them not in flight.
    cursor_ = std::min(cursor_, *std::min_element(failed_.begin(), failed_.end()));
    failed_.clear();
    refused_ = false;
  }
  if (!failed_.empty()) return;  // backing off
  const size_t room = options_.max_in_flight - std::min(options_.max_in_flight, in_flight_.size());
  if (room == 0) return;
  std::vector<store::OutboxEntry> entries;
  if (absl::Status s = store_.ReadOutbox(cursor_, room, entries); !s.ok()) {
    if (!read_failing_) LogError("reading outbox: ", s.ToString());  // once per change
    read_failing_ = true;
    return;
  }
  if (read_failing_) LogInfo("reading the outbox works again");
  read_failing_ = false;
  ::profiled::internal::v1::OutboxRecord record;
  std::vector<kafka::Header> headers;
  for (const store::OutboxEntry& e : entries) {
    if (in_flight_.count(e.seq) > 0) {
      cursor_ = e.seq + 1;
      continue;
    }
    if (!record.ParseFromString(e.record)) {
      // Cannot happen: we wrote it. Keep it for inspection rather than loop on it.
      LogError("outbox entry ", e.seq, " does not parse; skipping it");
      cursor_ = e.seq + 1;
      continue;
    }
    if (record.barrier()) {
      // Everything before it must be acknowledged before anything after it
      // is produced; then it has served and is deleted like a delivered one.
      if (!in_flight_.empty() || !failed_.empty()) {
        at_barrier_ = true;
        break;
      }
      acked_.push_back(e.seq);
      cursor_ = e.seq + 1;
      continue;
    }
    headers.clear();
    int64_t source_time_ms = 0;  // none: a time-driven update, notice or tombstone
    for (int i = 0; i < record.header_names_size() && i < record.header_values_size(); ++i) {
      headers.push_back({record.header_names(i), record.header_values(i)});
      if (record.header_names(i) == codec::kSourceTimeHeader) {
        (void)absl::SimpleAtoi(record.header_values(i), &source_time_ms);
      }
    }
    std::optional<std::string_view> value;
    if (record.has_value()) value = record.value();
    absl::Status s = producer_->ProduceTo(
        record.topic(),
        record.has_partition() ? record.partition() : kafka::Producer::kAnyPartition, record.key(),
        value, headers, e.seq);
    if (!s.ok()) {
      // Queue full: poll and go on next round. Anything else failed locally
      // (e.g. too large): handled like a failed delivery, never a hot loop.
      if (!absl::IsResourceExhausted(s)) Failed(e.seq, s);
      break;
    }
    in_flight_.emplace(e.seq, InFlight{source_time_ms, absl::Now()});
    cursor_ = e.seq + 1;
  }
}

void Publisher::SettleReports() {
  // Published entries whose delete failed (the store could not write) are
  // deleted once it can again: the outbox never keeps what is out.
  if (!undeleted_.empty() && absl::Now() >= delete_retry_at_) {
    if (store_.DeleteOutbox(undeleted_).ok()) {
      LogInfo("deleting published outbox entries works again");
      undeleted_.clear();
    } else {
      delete_retry_at_ = absl::Now() + options_.retry_backoff;
    }
  }
  if (!acked_.empty()) {
    PROFILED_FAILPOINT("after_publish");
    if (absl::Status s = store_.DeleteOutbox(acked_); !s.ok()) {
      // Retried above; a crash meanwhile publishes them again after the
      // restart, which subscribers tolerate (versions). Logged once per change.
      if (undeleted_.empty()) LogError("deleting published outbox entries: ", s.ToString());
      undeleted_.insert(undeleted_.end(), acked_.begin(), acked_.end());
      delete_retry_at_ = absl::Now() + options_.retry_backoff;
    }
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    for (uint64_t seq : acked_) {
      auto it = in_flight_.find(seq);
      if (it == in_flight_.end()) continue;
      // Clock skew between the input producer and us must not go negative.
      if (it->second.source_time_ms > 0) {
        metrics_.event_publish_latency.Observe(
            static_cast<double>(std::max<int64_t>(now_ms - it->second.source_time_ms, 0)) / 1000.0);
      }
      in_flight_.erase(it);
    }
    metrics_.published.Increment(static_cast<double>(acked_.size()));
    acked_.clear();
    // The output takes records again: whatever refused them is fixed.
    if (failed_.empty()) health_.Clear(Fault::kOutputRefused);
  }
  if (!failed_.empty()) {
    for (uint64_t seq : failed_) in_flight_.erase(seq);
    if (retry_at_ < absl::Now()) {
      retry_at_ = absl::Now() + (refused_ ? options_.refused_retry : options_.retry_backoff);
    }
  }
}

}  // namespace profiled::pipeline
