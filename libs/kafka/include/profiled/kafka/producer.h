// Producer: a librdkafka producer with delivery reports delivered to one
// callback, on the thread that calls Poll() or Flush().
//
//   auto producer = Producer::Create(props, [](uint64_t opaque, absl::Status s) {...});
//   RETURN_IF_ERROR((*producer)->Produce("updates", key, value, headers, /*opaque=*/seq));
//   (*producer)->Poll(100);
//
// Idempotence (enable.idempotence=true) is on unless the properties turn it
// off, so retries never duplicate or reorder records within a partition.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "profiled/kafka/properties.h"

namespace profiled::kafka {

// Called once per produced record with its opaque and the delivery outcome.
using DeliveryCallback = std::function<void(uint64_t opaque, const absl::Status& status)>;

class Producer {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Producer>> Create(
      const Properties& properties, DeliveryCallback on_delivery);
  virtual ~Producer() = default;

  // Enqueues one record keyed by `key`; a null value is a tombstone.
  // ResourceExhausted when the local queue is full (Poll() and retry).
  [[nodiscard]] absl::Status Produce(std::string_view topic, std::string_view key,
                                     std::optional<std::string_view> value,
                                     const std::vector<Header>& headers, uint64_t opaque) {
    return ProduceTo(topic, kAnyPartition, key, value, headers, opaque);
  }
  // The same, to `partition` (kAnyPartition: the partitioner picks by key).
  [[nodiscard]] virtual absl::Status ProduceTo(std::string_view topic, int32_t partition,
                                               std::string_view key,
                                               std::optional<std::string_view> value,
                                               const std::vector<Header>& headers,
                                               uint64_t opaque) = 0;
  static constexpr int32_t kAnyPartition = -1;
  // Serves delivery reports for up to timeout_ms.
  virtual void Poll(int timeout_ms) = 0;
  // Waits until every enqueued record is delivered or failed.
  [[nodiscard]] virtual absl::Status Flush(int timeout_ms) = 0;
  // Records enqueued and not yet reported.
  virtual int OutQueueLength() const = 0;
  // OK, or the fatal error that left this producer unusable (an idempotent
  // producer whose sequence broke): only a new producer can send again.
  virtual absl::Status FatalError() const = 0;
};

}  // namespace profiled::kafka
