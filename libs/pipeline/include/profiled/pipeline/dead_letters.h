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
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "profiled/kafka/producer.h"

namespace profiled::pipeline {

inline constexpr char kReasonHeader[] = "profiled.reason";
inline constexpr char kDetailHeader[] = "profiled.detail";
inline constexpr char kSourceTopicHeader[] = "profiled.source.topic";
inline constexpr char kSourcePartitionHeader[] = "profiled.source.partition";
inline constexpr char kSourceOffsetHeader[] = "profiled.source.offset";
inline constexpr char kTimeHeader[] = "profiled.time";
inline constexpr char kRedactedHeader[] = "profiled.redacted";

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

class DeadLetterSink {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DeadLetterSink>> Create(
      std::string topic, const kafka::Properties& producer_properties);

  // Publishes every letter and waits until each is acknowledged; failed ones
  // are retried after `retry_backoff` until delivered. Returns Cancelled if
  // `should_stop` turns true first (the batch is then not committed).
  [[nodiscard]] absl::Status PublishAll(const std::vector<DeadLetter>& letters,
                                        const std::function<bool()>& should_stop);

  const std::string& topic() const { return topic_; }

 private:
  DeadLetterSink(std::string topic) : topic_(std::move(topic)) {}

  std::string topic_;
  std::unique_ptr<kafka::Producer> producer_;
  std::vector<int> outcome_;  // per letter in flight: 0 pending, 1 ok, -1 failed
  absl::Duration retry_backoff_ = absl::Milliseconds(500);
};

}  // namespace profiled::pipeline
