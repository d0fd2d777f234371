// Sending records with delivery accounting, shared by produce and redrive.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "profiled/kafka/properties.h"

namespace profilectl {

struct Outgoing {
  std::string topic;
  std::string key;
  std::string value;
  std::vector<profiled::kafka::Header> headers;
};

struct SendResult {
  uint64_t delivered = 0;
  uint64_t failed = 0;
  std::string error;  // a problem that stopped sending early
};

// Produces every record (retrying while the local queue is full) and waits
// for every delivery report.
SendResult SendAll(const std::string& bootstrap, const std::vector<Outgoing>& records);

}  // namespace profilectl
