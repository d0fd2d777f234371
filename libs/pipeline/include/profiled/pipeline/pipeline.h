// Pipeline: consume a batch, apply it to the profiles, commit state, outbox
// and positions in one WriteBatch, then let the publisher drain the outbox.
//
//   ASSIGN_OR_RETURN(auto p, Pipeline::Create(options, consumer_options, {*store, wall_clock,
//                                               publisher.get(), dead_letters.get(), metrics}));
//   while (!stop) RETURN_IF_ERROR(p->RunOnce().status());
//   p->Close();
//
// Per batch, in stages (docs/architecture.md): read — decode and validate
// every message through its topic's format (rejects go to the dead-letter
// topic, acknowledged before the batch commits), the privacy filter, the
// event-time policy, control requests; load the identity graph entries and
// profiles the batch touches (from the hot cache, else two MultiGets);
// resolve each event to its profile in arrival order — creating, linking and
// merging under the guardrails, from identity-side state only — and apply it
// to the profiles; erasures; output — one update per changed profile
// (coalescing within the batch), plus a merge notice and a tombstone per
// absorbed profile. A profile's version counts the events applied to it, so
// the versions published do not depend on where batches begin and end.
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

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "profiled/core/clock.h"
#include "profiled/core/profile.h"
#include "profiled/identity/identity_rules.h"
#include "profiled/ingest/event_limits.h"
#include "profiled/ingest/event_time_policy.h"
#include "profiled/ingest/json_limits.h"
#include "profiled/ingest/mapped_json.h"
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

struct InputTopicOptions {
  // A format of the registry (ingest/event_decoder.h): "protobuf",
  // "segment-json", "json" (needs `map`), "rees46-csv". Default: "protobuf".
  std::string format = "protobuf";
  // Channel of JSON events that do not name one. Default: "web".
  std::string default_channel = "web";
  // For formats that take one ("json"): where each envelope field is.
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
  // How long a batch may keep gathering messages (up to batch_max_events)
  // so that a profile's events within it publish one update: a batch spans
  // this much of arrivals, time spent on the last batch included, so no
  // event waits longer than this (and a millisecond of rounding) for it
  // (gather_window.h). 0: a batch is what is already fetched. Default:
  // 20 ms (docs/benchmarks.md).
  int max_delay_ms = 20;
  // Outbox entries at which consumption pauses; it resumes at half. Default: 100000.
  uint64_t outbox_max_entries = 100000;
  // A partition counts as caught up when its position is within this many
  // messages of the high watermark. Default: 0.
  int64_t caught_up_max_lag = 0;
  core::PipelineClock::Mode clock_mode = core::PipelineClock::Mode::kAuto;
  core::ScoringOptions scoring;
  signals::SignalOptions signals;
  identity::IdentityOptions identity;

  // Every problem, one per line, each named by its field's path.
  [[nodiscard]] absl::Status Validate() const;
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
      const PipelineOptions& options, const kafka::ConsumerOptions& consumer_options,
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

  // True while the outbox is full and consumption is paused. Any thread.
  bool paused() const;

  // True when partitions are assigned and every one is consumed up to its
  // high watermark (asks the broker; for --once and readiness).
  bool CaughtUp(int timeout_ms);

  // Leaves the consumer group.
  void Close();

  // The signal definitions updates are derived with; their purchase model
  // may be replaced from any thread (Signals::SetPurchaseModel).
  const signals::Signals& signals() const;

 private:
  struct Impl;
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace profiled::pipeline
