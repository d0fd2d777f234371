// The protocol's records and slots on the wire and on disk: a
// cluster::ProtocolMessage as an internal/v1 ProtocolRecord (the body of a
// repartition record), a cluster::Slot and its profile's state bytes as a
// SlotValue (the local store's value and the changelog record of its key).
//
//   std::string bytes = ToRecord(message).SerializeAsString();
//   ASSIGN_OR_RETURN(ProtocolMessage m, FromRecord(record));   // checked
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "profiled/cluster/identity_protocol.h"
#include "profiled/internal/v1/routing.pb.h"

namespace profiled::cluster {

internal::v1::ProtocolRecord ToRecord(const ProtocolMessage& message);
// InvalidArgument when the record lacks what its kind needs (an identity,
// a profile), so a damaged record never reaches the protocol.
absl::StatusOr<ProtocolMessage> FromRecord(const internal::v1::ProtocolRecord& record);

internal::v1::SlotValue ToSlotValue(const Slot& slot, std::string state);
// The slot, and its profile's state bytes in `state` (empty: none).
absl::StatusOr<Slot> FromSlotValue(const internal::v1::SlotValue& value, std::string* state);
// The same from a serialized SlotValue (as stored and in the changelog);
// DataLoss when it does not parse.
absl::StatusOr<Slot> ParseSlot(std::string_view value, std::string* state);
// The epoch a serialized SlotValue was written in, read without parsing
// the rest (a restore asks it of every record); 0 when absent or damaged.
int64_t SlotEpoch(std::string_view value);
// Its profile's timer (SlotValue.timer_due_ms), read the same way.
int64_t SlotTimerDue(std::string_view value);

}  // namespace profiled::cluster
