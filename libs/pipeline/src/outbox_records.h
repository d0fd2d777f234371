// Outbox records (internal/v1 OutboxRecord bytes) for what the pipeline
// publishes: profile updates, tombstones and erasure receipts.
#pragma once

#include <cstdint>
#include <string>

#include "google/protobuf/message_lite.h"
#include "profiled/v1/profile_update.pb.h"

namespace profiled::pipeline::internal {

// `source_time_ms`: Kafka timestamp of the oldest input message behind the
// update, 0 for time-driven updates.
std::string OutboxRecordFor(const std::string& topic, const v1::ProfileUpdate& update,
                            int64_t source_time_ms = 0);
// The same for an update already encoded (codec::EncodeProfileUpdate).
std::string OutboxRecordFor(const std::string& topic, const std::string& profile_id,
                            std::string update_bytes, int64_t source_time_ms = 0);
std::string TombstoneRecordFor(const std::string& topic, const std::string& key);
// Any Protobuf message with its schema name in the `schema` header.
std::string MessageRecordFor(const std::string& topic, const std::string& key,
                             const google::protobuf::MessageLite& message,
                             const std::string& schema);

}  // namespace profiled::pipeline::internal
