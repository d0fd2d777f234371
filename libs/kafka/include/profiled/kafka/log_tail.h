// LogTail: follows several partitions of one topic from given offsets,
// without a consumer group — an owner reading back what is appended to
// the logs it owns (partitioned mode's changelog tail, docs/scaling.md).
//
//   ASSIGN_OR_RETURN(auto tail, LogTail::Open(props, "profiled.changelog"));
//   RETURN_IF_ERROR(tail->Start(3, restored_high));
//   RETURN_IF_ERROR(tail->Poll(0, 10'000, [](int32_t partition, const LogRecord& r) { ... }));
//   tail->Stop(3);
//
// Commits nothing. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "profiled/kafka/partition_log.h"
#include "profiled/kafka/properties.h"

namespace profiled::kafka {

class LogTail {
 public:
  // `properties`: bootstrap and security (consumer-side ones apply).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LogTail>> Open(const Properties& properties,
                                                                     std::string topic);
  virtual ~LogTail() = default;

  // Follows `partition` from offset `from` (again from there if it was
  // followed already).
  [[nodiscard]] virtual absl::Status Start(int32_t partition, int64_t from) = 0;
  // Stops following `partition`; its records not yet handed over are dropped.
  virtual void Stop(int32_t partition) = 0;
  // The partition's high watermark as its last fetch said (no broker
  // call); nullopt before one.
  [[nodiscard]] virtual std::optional<int64_t> CachedHighWatermark(int32_t partition) = 0;
  // Hands over up to `max_records` records fetched so far, in offset order
  // per partition, waiting at most `timeout_ms` for the first. An offset no
  // longer held (OutOfRange) or a broker error is returned after the
  // records before it.
  [[nodiscard]] virtual absl::Status Poll(
      int timeout_ms, size_t max_records,
      const std::function<void(int32_t partition, const LogRecord&)>& each) = 0;
};

}  // namespace profiled::kafka
