// Limits every decoded event is checked against, whatever its format: they
// bound what one event can add to a profile, and so (with the per-profile
// caps) the size of every stored state and published update.
//
//   if (auto rejection = CheckEventLimits(event, limits)) { ...dead letter... }
#pragma once

#include <cstddef>
#include <optional>

#include "absl/status/status.h"
#include "profiled/ingest/protobuf_decoder.h"
#include "profiled/v1/event.pb.h"

namespace profiled::ingest {

struct EventLimits {
  // Bytes of any key-like string: an identity value or kind, the event
  // type, channel, previous_id, product id, category path, brand, device,
  // or a trait key. Default: 256.
  size_t max_key_bytes = 256;
  // Bytes of one trait value. Default: 1024.
  size_t max_trait_bytes = 1024;
  // Line items (products of an order) on one event. Default: 100.
  size_t max_line_items = 100;

  [[nodiscard]] absl::Status Validate() const;
};

// Why `event` exceeds a limit (string_too_long, too_many_properties), naming
// the field; nullopt when it is within all of them.
std::optional<Rejection> CheckEventLimits(const v1::InteractionEvent& event,
                                          const EventLimits& limits);

}  // namespace profiled::ingest
