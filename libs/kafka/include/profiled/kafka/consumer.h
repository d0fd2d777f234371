// Consumer: a librdkafka group consumer whose start positions come from the
// caller (profiled's store), not from the group's committed offsets.
//
//   auto consumer = Consumer::Create(options, [&](const PartitionKey& p) {
//     return stored_next_offset(p);   // nullopt: start per initial_position
//   });
//   std::vector<ConsumedMessage> batch;
//   RETURN_IF_ERROR(consumer->Poll(1000, /*timeout_ms=*/100, batch));
//
// On every assignment each partition is sought to the position the lookup
// returns. Offsets are committed to the group (CommitAsync) only so that
// tools see progress; profiled's stored positions always win.
// Not thread-safe: one thread polls (rebalance callbacks run inside Poll).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "profiled/core/clock.h"
#include "profiled/kafka/properties.h"

namespace profiled::kafka {

struct ConsumerOptions {
  // librdkafka properties (bootstrap.servers, security ...).
  Properties properties;
  std::string group_id = "profiled";
  // Static membership (KIP-345): a member that restarts under the same id
  // within the session timeout gets its partitions back without a
  // rebalance. Empty: dynamic membership.
  std::string group_instance_id;
  std::vector<std::string> topics;
  // Where a partition with no stored position starts: true = earliest.
  bool start_from_earliest = true;
  // Topics whose positions are the group's committed offsets, not the
  // position lookup's (partitioned mode's input): a partition of one
  // resumes where the group committed, and starts as above only when the
  // group has committed nothing for it — at the latest, that end offset is
  // committed at once, so the partition's next owner starts there too.
  std::vector<std::string> committed_topics;
};

// One consumed record. Owns its bytes.
class ConsumedMessage {
 public:
  ConsumedMessage(std::string topic, int32_t partition, int64_t offset, std::string key,
                  std::string payload, bool tombstone, int64_t timestamp_ms,
                  std::vector<Header> headers)
      : topic_(std::move(topic)),
        partition_(partition),
        offset_(offset),
        key_(std::move(key)),
        payload_(std::move(payload)),
        tombstone_(tombstone),
        timestamp_ms_(timestamp_ms),
        headers_(std::move(headers)) {}
  const std::string& topic() const { return topic_; }
  int32_t partition() const { return partition_; }
  int64_t offset() const { return offset_; }
  std::string_view key() const { return key_; }
  std::string_view payload() const { return payload_; }
  // True when the record has a null value (a tombstone).
  bool tombstone() const { return tombstone_; }
  int64_t timestamp_ms() const { return timestamp_ms_; }
  const std::vector<Header>& headers() const { return headers_; }
  // The value of the first header named `name`, or nullopt.
  std::optional<std::string_view> header(std::string_view name) const {
    for (const Header& h : headers_) {
      if (h.name == name) return std::string_view(h.value);
    }
    return std::nullopt;
  }

 private:
  std::string topic_;
  int32_t partition_;
  int64_t offset_;
  std::string key_;
  std::string payload_;
  bool tombstone_;
  int64_t timestamp_ms_;
  std::vector<Header> headers_;
};

struct CommitPosition {
  core::PartitionKey partition;
  int64_t next_offset = 0;
};

// Returns the stored next offset of a partition, or nullopt.
using PositionLookup = std::function<std::optional<int64_t>(const core::PartitionKey&)>;

class Consumer {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Consumer>> Create(
      const ConsumerOptions& options, PositionLookup lookup);
  virtual ~Consumer() = default;

  // Appends up to `max_messages` records to `out`, waiting up to timeout_ms
  // for the first one, then up to `gather_ms` after it for the rest (0: only
  // what is already fetched). Returns early after a rebalance.
  [[nodiscard]] virtual absl::Status Poll(size_t max_messages, int timeout_ms, int gather_ms,
                                          std::vector<ConsumedMessage>& out) = 0;
  [[nodiscard]] absl::Status Poll(size_t max_messages, int timeout_ms,
                                  std::vector<ConsumedMessage>& out) {
    return Poll(max_messages, timeout_ms, /*gather_ms=*/0, out);
  }
  // Stops / restarts fetching on every assigned partition (back-pressure).
  virtual void PauseAll() = 0;
  virtual void ResumeAll() = 0;
  // Stops / restarts fetching on these assigned partitions only (partitions
  // assigned later are not paused by it).
  virtual void Pause(const std::vector<core::PartitionKey>& partitions) = 0;
  virtual void Resume(const std::vector<core::PartitionKey>& partitions) = 0;
  // Commits positions to the group, for tools; failures are only logged.
  virtual void CommitAsync(const std::vector<CommitPosition>& positions) = 0;
  // Currently assigned partitions.
  virtual std::vector<core::PartitionKey> Assignment() = 0;
  // High watermark (next offset to be written) as asked of the broker.
  [[nodiscard]] virtual absl::StatusOr<int64_t> QueryHighWatermark(
      const core::PartitionKey& partition, int timeout_ms) = 0;
  // High watermark last seen in a fetch response (no network), or nullopt.
  virtual std::optional<int64_t> CachedHighWatermark(const core::PartitionKey& partition) = 0;
  // Seeks every assigned partition back to the position the lookup gives
  // (as on assignment): messages fetched beyond it are read again.
  [[nodiscard]] virtual absl::Status Rewind() = 0;
  // Moves one assigned partition's fetch position to `next_offset`.
  [[nodiscard]] virtual absl::Status Seek(const core::PartitionKey& partition,
                                          int64_t next_offset) = 0;
  // Leaves the group cleanly.
  virtual void Close() = 0;
  // Times a stored position was no longer on the broker (retention deleted
  // it) and the partition restarted at the oldest message still there: the
  // messages in between are lost. Any thread.
  virtual uint64_t OffsetResets() const = 0;
};

}  // namespace profiled::kafka
