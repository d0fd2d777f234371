// Limits every JSON input is checked against (Segment and mapped JSON);
// a value beyond one is rejected with its own reason code.
#pragma once

#include <cstddef>

namespace profiled::ingest {

struct JsonLimits {
  // Bytes of one Kafka value. Default: 512 KiB.
  size_t max_message_bytes = 512 * 1024;
  // Messages in one batch body. Default: 1000.
  size_t max_batch_events = 1000;
  // Properties (or traits) of one message. Default: 256.
  size_t max_properties = 256;
  // Bytes of any one string value. Default: 8 KiB.
  size_t max_string_bytes = 8 * 1024;
  // Nesting depth of the document. Default: 16.
  size_t max_depth = 16;
};

}  // namespace profiled::ingest
