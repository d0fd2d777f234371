// DeadLetterSink: rejected input goes to the dead-letter topic with its
// original key and bytes and headers saying why and where it came from.
//
//   RETURN_IF_ERROR(sink->PublishAll(letters, [&] { return stopping; }));
//   // only now store the offsets of the batch
//
// PublishAll returns only once the broker has acknowledged every letter, so
// a dead letter is always published before its offset is stored: a crash in
// between re-reads the message and publishes it again (at least once).
//
// A letter never waits on something retrying cannot fix: one larger than
// the topic takes keeps what fits (the head of its value) with headers
// saying so, and if the broker refuses even that, it goes out with no value
// at all. A topic that is missing or forbidden, or a broker that does not
// acknowledge within the stall timeout, is reported to Health (faults
// dead_letters_refused / dead_letters_stalled: /readyz, a metric, an alert,
// one log line) while the sink keeps retrying: evidence is never dropped,
// and the batch commits as soon as the topic takes the letters.
//
// Headers (stable names):
//   profiled.reason            stable reason code, e.g. "missing_event_id"
//   profiled.detail            human-readable explanation
//   profiled.source.topic      topic the message was read from
//   profiled.source.partition  its partition (decimal)
//   profiled.source.offset     its offset (decimal)
//   profiled.time              when it was rejected, RFC 3339 UTC
//   profiled.redacted          "drop-list" when the value is the original JSON
//                              with the privacy filter's drop list applied
//                              (absent: the bytes are exactly as consumed)
//   profiled.truncated         "value" when only the head of the value fits,
//                              "all" when no value did; absent when whole
//   profiled.original_size     the value's size in bytes, when truncated
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "profiled/kafka/producer.h"
#include "profiled/pipeline/health.h"

namespace profiled::pipeline {

inline constexpr char kReasonHeader[] = "profiled.reason";
inline constexpr char kDetailHeader[] = "profiled.detail";
inline constexpr char kSourceTopicHeader[] = "profiled.source.topic";
inline constexpr char kSourcePartitionHeader[] = "profiled.source.partition";
inline constexpr char kSourceOffsetHeader[] = "profiled.source.offset";
inline constexpr char kTimeHeader[] = "profiled.time";
inline constexpr char kRedactedHeader[] = "profiled.redacted";
inline constexpr char kTruncatedHeader[] = "profiled.truncated";
inline constexpr char kOriginalSizeHeader[] = "profiled.original_size";

struct DeadLetter {
  std::string reason;  // stable code
  std::string detail;
  std::string source_topic;
  int32_t source_partition = 0;
  int64_t source_offset = 0;
  std::string key;
  std::string value;  // the original bytes (drop list applied when redacted)
  bool redacted = false;
};

struct DeadLetterOptions {
  // Topic of the letters. Default: profiled.deadletter.
  std::string topic = "profiled.deadletter";
  // Largest record the topic takes (key, value, headers); the value of a
  // larger letter is cut to fit. Default: 1,000,000.
  size_t max_message_bytes = 1'000'000;
  // Wait between rounds of re-sending letters that failed.
  absl::Duration retry_backoff = absl::Milliseconds(500);
};

class DeadLetterSink {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DeadLetterSink>> Create(
      const DeadLetterOptions& options, const kafka::Properties& producer_properties,
      Health& health);

  // Publishes every letter and waits until each is acknowledged; failed ones
  // are retried after the back-off until delivered. Returns Cancelled if
  // `should_stop` turns true first (the batch is then not committed).
  [[nodiscard]] absl::Status PublishAll(const std::vector<DeadLetter>& letters,
                                        const std::function<bool()>& should_stop);

  const std::string& topic() const { return options_.topic; }

 private:
  DeadLetterSink(DeadLetterOptions options, Health& health)
      : options_(std::move(options)), health_(health) {}

 public:
  // The producer's destructor flushes and may deliver reports into the
  // members after it: reset first.
  ~DeadLetterSink() { producer_.reset(); }

 private:
  // The letter's record as it goes out at `cut` (0 whole, 1 head of the
  // value, 2 no value).
  void Produce(const DeadLetter& letter, int cut, const std::string& now, uint64_t index);

  DeadLetterOptions options_;
  Health& health_;
  std::unique_ptr<kafka::Producer> producer_;
  // Per letter of the current round, on the calling thread (reports arrive
  // inside Poll): 0 pending, 1 delivered, -1 to (re)send.
  std::vector<int> outcome_;
  std::vector<int> cut_;            // how much of the value each letter sends
  std::vector<absl::Status> last_;  // each letter's last failure
};

}  // namespace profiled::pipeline
