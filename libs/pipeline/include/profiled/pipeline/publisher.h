// Publisher: drains the store's outbox to Kafka.
//
// A background thread reads outbox entries in sequence order, produces each
// with an idempotent producer and deletes an entry only after its delivery
// report says it was written. A crash at any moment therefore loses no
// update: entries not yet reported are published again after restart (at
// least once; subscribers drop repeats by version).
//
//   ASSIGN_OR_RETURN(auto publisher, Publisher::Create(options, props, *store, metrics));
//   publisher->Start();
//   ...                                 // pipeline commits, then Notify()
//   publisher->DrainAndStop(absl::Seconds(30));
//
// When the output cluster is down librdkafka keeps retrying (message.timeout.ms
// defaults to 0 = forever here) and the outbox grows; the pipeline pauses
// consumption at its bound. Records unacknowledged for the stall timeout
// raise the output_stalled fault. A record the output refuses for good
// (too large, topic missing or forbidden) stops publishing, in order, with
// the output_refused fault; the publisher produces it again every
// `refused_retry` and resumes when the output takes it (the operator fixed
// the topic or its ACLs). A barrier record (partitioned mode) is not
// produced: nothing after it is until everything before it is acknowledged.
// Thread-safe: Notify/Stop from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "profiled/kafka/producer.h"
#include "profiled/pipeline/health.h"
#include "profiled/pipeline/metrics.h"
#include "profiled/store/profile_store.h"

namespace profiled::pipeline {

struct PublisherOptions {
  // Records handed to librdkafka and not yet reported. Default: 10000.
  size_t max_in_flight = 10000;
  // After a failed delivery, wait this long before producing it again.
  absl::Duration retry_backoff = absl::Milliseconds(500);
  // After the output refused a record for good, wait this long before
  // trying it again. Default: 10 s.
  absl::Duration refused_retry = absl::Seconds(10);
  // Largest record the output topics take (the producer accepts up to it).
  size_t max_message_bytes = 1'000'000;

  // Every problem, one per line, each named by its field's path.
  [[nodiscard]] absl::Status Validate() const;
};

class Publisher {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Publisher>> Create(
      const PublisherOptions& options, const kafka::Properties& producer_properties,
      store::ProfileStore& store, PublisherMetrics& metrics, Health& health);
  ~Publisher();

  void Start();
  // Wakes the thread: new entries were committed.
  void Notify();
  // Publishes until the outbox is empty or `timeout` passes, then stops.
  // Returns true when the outbox was drained.
  bool DrainAndStop(absl::Duration timeout);
  // Stops at once; unpublished entries stay in the outbox.
  void Stop();

 private:
  Publisher(const PublisherOptions& options, store::ProfileStore& store,
            PublisherMetrics& metrics, Health& health);
  void Run();
  void FillFromOutbox();
  void SettleReports();
  // A record failed (`s`): produce it again after the back-off, or after
  // refused_retry with the output_refused fault when retrying cannot help.
  void Failed(uint64_t seq, const absl::Status& s);
  // output_stalled while the oldest record in flight waits past the timeout.
  void CheckStall();
  [[nodiscard]] absl::Status CreateProducer();
  // After a fatal producer error: a new producer, from the oldest record
  // not acknowledged.
  void ReplaceFatalProducer();
  // Moves the shared depth gauges by this publisher's change.
  void ReportDepths(double outbox, double queued);

  PublisherOptions options_;
  store::ProfileStore& store_;
  PublisherMetrics& metrics_;
  Health& health_;
  kafka::Properties producer_properties_;
  std::unique_ptr<kafka::Producer> producer_;

  // Publisher-thread state.
  uint64_t cursor_ = 0;           // next seq to read from the outbox
  struct InFlight {
    int64_t source_time_ms = 0;  // oldest input message behind it (0: none), for latency
    absl::Time produced;         // for the stall
  };
  std::map<uint64_t, InFlight> in_flight_;  // produced, no report yet
  std::vector<uint64_t> acked_;   // reported written, to delete
  std::vector<uint64_t> failed_;  // reported failed, to produce again
  absl::Time retry_at_ = absl::InfinitePast();
  bool refused_ = false;          // the last failure was one retrying cannot fix
  bool read_failing_ = false;     // reading the outbox failed (logged once)
  bool at_barrier_ = false;       // filling stopped at a barrier record
  std::vector<uint64_t> undeleted_;  // published, but deleting them failed: retried
  absl::Time delete_retry_at_ = absl::InfinitePast();
  double reported_outbox_ = 0, reported_queued_ = 0;  // last added to the gauges

  absl::Mutex mu_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;  // Notify() since the last wait
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace profiled::pipeline
