// Pipeline: consume a batch, apply it to the profiles, commit state, outbox
// and positions in one WriteBatch, then let the publisher drain the outbox.
//
//   ASSIGN_OR_RETURN(auto p, Pipeline::Create(options, consumer_options, {*store, wall_clock,
//                                               publisher.get(), dead_letters.get(), metrics}));
//   while (!stop) RETURN_IF_ERROR(p->RunOnce().status());
//   p->Close();
//
// Per batch: decode and validate every message (rejects go to the dead-letter
// topic, acknowledged before the batch commits), apply the privacy filter, load the identity graph
// entries and profiles the batch touches (from the hot cache, else two
// MultiGets), resolve each event
// to its profile in arrival order — creating, linking and merging under the
// guardrails — apply it, and write one update per changed profile
// (coalescing within the batch), plus a merge notice and a tombstone per
// absorbed profile. A profile's
// version counts the events applied to it, so the versions published do not
// depend on where batches begin and end.
//
// Time: each changed profile's timer points at the next instant one of its
// signals changes without an event (timers column family, same WriteBatch).
// After every poll, due timers are re-evaluated on their partition's clock
// and an update is published when the signals changed (same version, later
// as_of).
//
// The batch's WriteBatch is written on a committer thread while the next
// batch is prepared (one in flight); positions, group offsets and counters
// advance once it is written. RunOnce returning does not mean its batch is
// stored yet; an idle poll, Close() and anything reading the store directly
// wait for it.
//
// Back-pressure: once the outbox holds outbox_max_entries, every assigned
// partition is paused (polling continues so the group membership stays
// alive) until the publisher has drained it to half the bound. Nothing is
// dropped.
// Not thread-safe: one thread calls RunOnce.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "profiled/core/clock.h"
#include "profiled/core/profile.h"
#include "profiled/identity/identity_rules.h"
#include "profiled/identity/resolver.h"
#include "profiled/ingest/event_limits.h"
#include "profiled/ingest/event_time_policy.h"
#include "profiled/ingest/mapped_json.h"
#include "profiled/ingest/segment_json.h"
#include "profiled/kafka/consumer.h"
#include "profiled/pipeline/dead_letters.h"
#include "profiled/pipeline/health.h"
#include "profiled/pipeline/metrics.h"
#include "profiled/privacy/privacy_filter.h"
#include "profiled/signals/signals.h"
#include "profiled/store/profile_store.h"

namespace profiled::pipeline {

class Publisher;
class Purger;
namespace internal {
class WorkerPool;
class HotCache;
class Committer;
class BatchState;
}

enum class InputFormat {
  kProtobuf,     // profiled.v1.InteractionEvent, binary
  kSegmentJson,  // Segment-spec JSON, single messages or batch bodies
  kMappedJson,   // any JSON, through a field map
};

struct InputTopicOptions {
  InputFormat format = InputFormat::kProtobuf;
  // Channel of JSON events that do not name one. Default: "web".
  std::string default_channel = "web";
  // For kMappedJson: where each envelope field is in the source JSON.
  ingest::FieldMap map;
};

struct PipelineOptions {
  // Per input topic; topics not listed carry Protobuf.
  absl::flat_hash_map<std::string, InputTopicOptions> inputs;
  // Limits every JSON input is checked against; max_message_bytes bounds
  // Protobuf values too.
  ingest::JsonLimits json_limits;
  // Limits every decoded event is checked against (key and trait sizes).
  ingest::EventLimits event_limits;
  // Future event times beyond a tolerance are clamped (default) or rejected.
  ingest::EventTimePolicy event_time;
  // Fields dropped or hashed before anything is stored or published.
  privacy::PrivacyOptions privacy;
  // Topic of control requests (erasure), also consumed; empty: none.
  std::string control_topic;
  // Where erasure receipts are published; empty: none.
  std::string receipts_topic;
  // How long late events carrying an erased identity are refused. Default: 30 days.
  int64_t erasure_suppression_ms = 30LL * 24 * 3600 * 1000;
  // Secret keying the suppression hashes; empty: one is generated on first
  // start and kept in the store.
  std::string erasure_secret;
  // Profiles not seen for this long (on their partition's clock) expire:
  // deleted with their links and audit, a tombstone published. 0: never.
  int64_t retention_ttl_ms = 0;
  // Topic every ProfileUpdate is written to. Required.
  std::string output_topic;
  // Largest record (key, value, headers) the output and receipts topics
  // take: updates are bounded below it (output_limits.h), receipts cut to
  // it. Match the topics' max.message.bytes. Default: 1,000,000 (librdkafka's
  // and, with room to spare, Kafka's default).
  size_t max_output_message_bytes = 1'000'000;
  // Messages per batch at most: a poll takes what is already fetched, up to
  // this, so batches grow only under backlog, where larger ones coalesce
  // more events per profile update (docs/benchmarks.md). Default: 10000.
  size_t batch_max_events = 10000;
  // Helper threads building updates and states beside the pipeline thread
  // (per-profile work; ordering and crash safety are unchanged). Default: 1,
  // so a 2-core machine uses both cores; 0 keeps it all on one thread.
  size_t worker_threads = 1;
  // Memory for decoded profiles and identity-graph entries of recent batches,
  // so hot profiles skip the store read and the decode (an estimate from
  // encoded sizes). Default: 256 MiB.
  size_t profile_cache_bytes = 256ull << 20;
  // How long one poll waits for the first message. Default: 100 ms.
  int poll_timeout_ms = 100;
  // Outbox entries at which consumption pauses; it resumes at half. Default: 100000.
  uint64_t outbox_max_entries = 100000;
  // A partition counts as caught up when its position is within this many
  // messages of the high watermark. Default: 0.
  int64_t caught_up_max_lag = 0;
  core::PipelineClock::Mode clock_mode = core::PipelineClock::Mode::kAuto;
  core::ScoringOptions scoring;
  signals::SignalOptions signals;
  identity::IdentityOptions identity;
};

// What the pipeline works with; all outlive it.
struct PipelineParts {
  store::ProfileStore& store;
  const core::Clock& wall_clock;
  Publisher* publisher;             // notified after each commit; may be null
  DeadLetterSink& dead_letters;
  PipelineMetrics& metrics;
  Health& health;                   // assignment, positions and commits are reported
  Purger* purger;                   // erasures' purges from disk are scheduled; may be null
  // Polled while a batch waits on dead-letter delivery: true gives up the
  // batch (RunOnce returns Cancelled, nothing is committed).
  std::function<bool()> should_stop = [] { return false; };
};

class Pipeline {
 public:
  // Loads stored positions, then creates and subscribes the consumer.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Pipeline>> Create(
      const PipelineOptions& options, kafka::ConsumerOptions consumer_options,
      PipelineParts parts);
  ~Pipeline();

  // Polls one batch and hands it to the committer (after the previous one is
  // written). Returns the number of messages handled.
  // Cancelled when should_stop interrupted a batch (nothing committed);
  // any other error means the store could not commit: once the store
  // recovers, Restart() resumes from the last committed batch.
  [[nodiscard]] absl::StatusOr<size_t> RunOnce();

  // After a failure: forgets everything not in the store (cache, batch in
  // flight), reloads the stored positions and rewinds every assigned
  // partition to them — what a process restart would do, without leaving
  // the consumer group.
  [[nodiscard]] absl::Status Restart();
  // While stopped on a failure: keeps the consumer in its group (paused,
  // polled for up to `timeout_ms`) so a long outage does not exceed
  // max.poll.interval.ms.
  void KeepAlive(int timeout_ms);

  // True while the outbox is full and consumption is paused.
  bool paused() const { return paused_; }

  // True when partitions are assigned and every one is consumed up to its
  // high watermark (asks the broker; for --once and readiness).
  bool CaughtUp(int timeout_ms);

  // Leaves the consumer group.
  void Close();

 private:
  using JsonDecoder = std::function<std::optional<ingest::Rejection>(
      std::string_view, std::vector<v1::InteractionEvent>&)>;
  using JsonDecoders = absl::flat_hash_map<std::string, JsonDecoder>;
  Pipeline(const PipelineOptions& options, PipelineParts parts, identity::IdentityRules rules,
           privacy::PrivacyFilter privacy);
  // One batch, in steps: read (decode, validate, find identities), apply
  // (resolve and apply in arrival order), erasures, build (states, updates,
  // notices, positions), submit (to the committer). BatchWork carries it.
  struct BatchWork;
  [[nodiscard]] absl::Status ProcessBatch(const std::vector<kafka::ConsumedMessage>& messages);
  void ReadMessages(const std::vector<kafka::ConsumedMessage>& messages, BatchWork& work);
  [[nodiscard]] absl::Status ApplyEvents(internal::BatchState& state, BatchWork& work);
  [[nodiscard]] absl::Status ApplyErasures(internal::BatchState& state, BatchWork& work);
  // Returns each changed profile's memory estimate for the cache.
  absl::flat_hash_map<std::string, size_t> BuildOutputs(internal::BatchState& state,
                                                        BatchWork& work);
  [[nodiscard]] absl::Status Submit(uint64_t seq, BatchWork& work);
  // One input message's events, privacy-filtered and time-checked, with each
  // event's identities; or why it is rejected. Any lane's thread.
  struct DecodedMessage {
    std::vector<v1::InteractionEvent> events;
    std::vector<std::vector<core::Identity>> ids;  // per event
    std::optional<ingest::Rejection> rejection;
    bool in_future = false;  // an event beyond the future tolerance
    uint64_t clamped = 0;
  };
  DecodedMessage DecodeMessage(const kafka::ConsumedMessage& m, JsonDecoders& decoders,
                               int64_t wall_now_ms, privacy::PrivacyFilter::Counts& counts) const;
  // Waits for the batch on the committer thread, then advances positions_,
  // the group's offsets and the cache's committed mark. A failure sticks:
  // every later call (and RunOnce) returns it.
  [[nodiscard]] absl::Status FinishInFlight();
  // Clears the cache and makes `s` the pipeline's sticky failure (the first
  // one stays); returns `s`.
  absl::Status Fail(absl::Status s);
  // Merge audit records of a resolution (merges and refusals) into `batch`.
  void AppendAudit(const v1::InteractionEvent& event, const std::vector<core::Identity>& ids,
                   const identity::Resolution& r, int64_t now_ms, store::CommitBatch& batch) const;
  void UpdateBackPressure();
  // Assignment and positions to Health, store metrics: at most every 200 ms.
  void UpdateStatus();
  // Loads the stored positions (and each partition's stream time).
  [[nodiscard]] absl::Status LoadPositions();
  // Points the profile's timer at its next signal transition after `now_ms`.
  void Reschedule(core::Profile& profile, int64_t now_ms, const core::PartitionKey& partition,
                  store::CommitBatch& batch) const;
  // The profile's update at `as_of_ms`, cut to the output's message size if
  // it would not fit (`truncated` says so). Any lane's thread.
  v1::ProfileUpdate BuildUpdate(const core::Profile& profile, int64_t as_of_ms,
                                bool& truncated) const;
  // When the profile's timer should next fire after `now_ms` (0: never). Pure.
  int64_t NextDueMs(const core::Profile& profile, int64_t now_ms) const;
  // Moves the stored timer from `old_due_ms` to profile.timer_due_ms.
  static void RecordTimerChange(int64_t old_due_ms, const core::Profile& profile,
                                const core::PartitionKey& partition, store::CommitBatch& batch);
  // Re-evaluates profiles whose timer is due on their partition's clock and
  // publishes those whose signals changed, in one commit.
  [[nodiscard]] absl::Status FireTimers();
  // Deletes an expired profile (state, links, audit, timer) and queues its tombstone.
  [[nodiscard]] absl::Status Expire(const core::Profile& profile, store::CommitBatch& batch);

  PipelineOptions options_;
  PipelineParts parts_;
  identity::IdentityRules rules_;
  identity::Resolver resolver_;
  privacy::PrivacyFilter privacy_;
  signals::Signals signals_;
  std::unique_ptr<internal::WorkerPool> workers_;
  std::string secret_;            // keys suppression hashes
  bool suppressions_exist_ = false;
  // One decoder per JSON topic (Segment or mapped); other topics carry
  // Protobuf. One set per lane of the worker pool (decoders are not shared).
  std::vector<JsonDecoders> json_decoders_;
  core::PipelineClock clock_;
  std::unique_ptr<kafka::Consumer> consumer_;
  // Next offset per partition as committed to the store; seeds assignments.
  absl::flat_hash_map<core::PartitionKey, int64_t> positions_;
  std::atomic<bool> paused_{false};
  std::chrono::steady_clock::time_point next_status_update_{};
  std::unique_ptr<internal::HotCache> cache_;
  // Batches are numbered as they are handed to the committer; one in flight.
  struct InFlight {
    uint64_t seq = 0;
    std::vector<kafka::CommitPosition> commits;
  };
  std::optional<InFlight> in_flight_;
  uint64_t last_seq_ = 0;
  absl::Status failed_;
  // No stored timer is due before this (0: unknown, look).
  int64_t next_timer_due_ms_ = 0;
  // Last: destroyed first, so a batch in flight finishes while the rest is alive.
  std::unique_ptr<internal::Committer> committer_;
};

}  // namespace profiled::pipeline
