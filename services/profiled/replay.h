// Replays a REES46 CSV file onto an input topic, keyed by the routing
// identity so each person's events stay in order within one partition.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "profiled/kafka/properties.h"

namespace profiled::app {

struct ReplayProgress {
  std::atomic<uint64_t> total{0};     // rows parsed from the file
  std::atomic<uint64_t> produced{0};  // records acknowledged by the broker
  std::atomic<bool> done{false};
};

// Produces every row of `csv_path` to `topic`; returns the number of events
// delivered. Rows that do not parse are logged and skipped.
[[nodiscard]] absl::StatusOr<uint64_t> ReplayRees46File(const std::string& csv_path,
                                                        const std::string& topic,
                                                        const kafka::Properties& properties,
                                                        ReplayProgress& progress);

}  // namespace profiled::app
