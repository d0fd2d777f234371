// WatermarkReader: asks the brokers for partitions' high watermarks from a
// client of its own, so lag can be measured while the consumer is paused
// (it then fetches nothing, and its cached watermarks go stale) or while the
// thread that polls it is blocked.
//
//   ASSIGN_OR_RETURN(auto reader, WatermarkReader::Create(consumer_properties));
//   auto highs = reader->HighWatermarks(assigned, /*timeout_ms=*/1000);
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "profiled/core/clock.h"
#include "profiled/kafka/properties.h"

namespace profiled::kafka {

class WatermarkReader {
 public:
  // `properties`: bootstrap and security settings (consumer-only ones are ignored).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<WatermarkReader>> Create(
      const Properties& properties);
  virtual ~WatermarkReader() = default;

  // The high watermark (next offset to be written) of each partition, in one
  // request per broker within `timeout_ms`; a partition that could not be
  // asked is absent from the result.
  virtual absl::flat_hash_map<core::PartitionKey, int64_t> HighWatermarks(
      const std::vector<core::PartitionKey>& partitions, int timeout_ms) = 0;
};

}  // namespace profiled::kafka
