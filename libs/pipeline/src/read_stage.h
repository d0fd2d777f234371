// ReadStage: the messages of one poll into what the batch must do — events
// accepted with their identities, erasure requests, dead letters with their
// reasons, and each partition's position after the batch. Decoding, size
// limits, the privacy filter, event-time checks and identity extraction are
// per message and run on every core; the rest keeps arrival order. Reads no
// state: the same messages always read the same. Private to the pipeline.
//
//   ASSIGN_OR_RETURN(ReadStage read, ReadStage::Create(options, rules, privacy, workers));
//   ReadBatch batch = read.Read(messages, wall_clock.NowMs());
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "profiled/core/profile.h"
#include "profiled/identity/identity_rules.h"
#include "profiled/ingest/event_decoder.h"
#include "profiled/ingest/protobuf_decoder.h"
#include "profiled/kafka/consumer.h"
#include "profiled/pipeline/dead_letters.h"
#include "profiled/pipeline/pipeline.h"
#include "profiled/privacy/privacy_filter.h"
#include "profiled/store/profile_store.h"
#include "profiled/v1/control.pb.h"
#include "worker_pool.h"

namespace profiled::pipeline::internal {

// One event to resolve and apply, in arrival order.
struct AcceptedEvent {
  const kafka::ConsumedMessage* message;
  v1::InteractionEvent event;
  std::vector<core::Identity> ids;  // ranked, none blocked
  bool consent_only = false;        // a consent update from the control topic
};

// An erasure request and the control message it came in (its origin).
struct ErasureRequest {
  v1::EraseRequest request;
  const kafka::ConsumedMessage* message;
};

struct ReadBatch {
  std::vector<AcceptedEvent> accepted;
  std::vector<core::Identity> mentioned;  // every identity the batch may touch
  std::vector<ErasureRequest> erasures;
  std::vector<DeadLetter> letters;
  // Per input partition: the position after this batch and its message count.
  struct Touched {
    store::PartitionPosition position;
    uint64_t messages = 0;
  };
  absl::flat_hash_map<core::PartitionKey, Touched> touched;
  std::vector<ingest::RejectReason> reasons;  // one per dead letter
  uint64_t clamped = 0, privacy_dropped = 0, privacy_hashed = 0;
};

class ReadStage {
 public:
  // Fails when a topic's format is unknown or its decoder cannot be made.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ReadStage>> Create(
      const PipelineOptions& options, const identity::IdentityRules& rules,
      const privacy::PrivacyFilter& privacy, WorkerPool& workers);

  ReadBatch Read(const std::vector<kafka::ConsumedMessage>& messages, int64_t wall_now_ms);

  // The topics to subscribe to: `inputs`, and the control topic, whose
  // requests are consumed like the inputs.
  static std::vector<std::string> Subscription(const PipelineOptions& options,
                                               std::vector<std::string> inputs);

 private:
  // One lane's decoders: one per listed topic, and Protobuf for the rest.
  struct Lane {
    absl::flat_hash_map<std::string, std::unique_ptr<ingest::EventDecoder>> by_topic;
    std::unique_ptr<ingest::EventDecoder> protobuf;
    privacy::PrivacyFilter::Counts privacy;
  };
  struct Decoded {
    std::vector<v1::InteractionEvent> events;
    std::vector<std::vector<core::Identity>> ids;  // per event
    std::optional<ingest::Rejection> rejection;
    bool in_future = false;  // an event beyond the future tolerance
    uint64_t clamped = 0;
  };
  ReadStage(const PipelineOptions& options, const identity::IdentityRules& rules,
            const privacy::PrivacyFilter& privacy, WorkerPool& workers)
      : options_(options), rules_(rules), privacy_(privacy), workers_(workers) {}
  Decoded Decode(const kafka::ConsumedMessage& m, Lane& lane, int64_t wall_now_ms) const;
  // A control request: an erasure, a consent update, or a dead letter.
  void ReadControl(const kafka::ConsumedMessage& m, ReadBatch& batch) const;
  void Reject(const kafka::ConsumedMessage& m, ingest::RejectReason reason, std::string detail,
              ReadBatch& batch) const;

  const PipelineOptions& options_;
  const identity::IdentityRules& rules_;
  const privacy::PrivacyFilter& privacy_;
  WorkerPool& workers_;
  std::vector<Lane> lanes_;  // one per thread of the pool
  // Topics whose dead letters the privacy filter redacts (JSON formats).
  absl::flat_hash_map<std::string, bool> redactable_;
};

}  // namespace profiled::pipeline::internal
