// PartitionLog: one topic partition used as a log of our own — append a
// record and learn its offset, read a range of offsets back in order. For
// the members topic (leases) and, later, changelogs; not for the input.
//
//   ASSIGN_OR_RETURN(auto log, PartitionLog::Open(props, "profiled.members", 0));
//   ASSIGN_OR_RETURN(int64_t at, log->Append("key", value, /*timeout_ms=*/5000));
//   ASSIGN_OR_RETURN(LogRange range, log->Range(5000));
//   RETURN_IF_ERROR(log->Read(range.low, range.high, 5000, [](const LogRecord& r) {
//     ...; return absl::OkStatus();
//   }));
//
// Joins no consumer group and commits nothing. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "profiled/kafka/properties.h"

namespace profiled::kafka {

// One record as Read hands it over: the views are valid during the call.
struct LogRecord {
  int64_t offset = 0;
  std::string_view key;
  // Null for a tombstone.
  std::optional<std::string_view> value;
};

// [low, high): the offsets the partition holds now (high = next to write).
struct LogRange {
  int64_t low = 0;
  int64_t high = 0;
};

class PartitionLog {
 public:
  // `properties`: bootstrap and security; consumer- or producer-only ones
  // are ignored by the other client.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PartitionLog>> Open(
      const Properties& properties, std::string topic, int32_t partition);
  virtual ~PartitionLog() = default;

  // Appends one record (null value: tombstone) and waits for the broker's
  // acknowledgement; returns the record's offset.
  [[nodiscard]] virtual absl::StatusOr<int64_t> Append(std::string_view key,
                                                       std::optional<std::string_view> value,
                                                       int timeout_ms) = 0;
  // The partition's low and high watermarks, asked of the broker.
  [[nodiscard]] virtual absl::StatusOr<LogRange> Range(int timeout_ms) = 0;
  // Calls `each` for every record at offsets [from, until), in order, and
  // stops at the first error it returns. DeadlineExceeded when they have
  // not all arrived within timeout_ms; OutOfRange when `from` is no longer
  // held (retention removed it).
  [[nodiscard]] virtual absl::Status Read(
      int64_t from, int64_t until, int timeout_ms,
      const std::function<absl::Status(const LogRecord&)>& each) = 0;
};

}  // namespace profiled::kafka
