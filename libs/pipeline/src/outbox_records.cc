#include "outbox_records.h"

#include "profiled/codec/update_codec.h"
#include "profiled/internal/v1/profile_state.pb.h"

namespace profiled::pipeline::internal {

namespace {

// A Protobuf record with its content-type and schema headers; `value` is
// moved in, not copied.
::profiled::internal::v1::OutboxRecord MessageRecord(const std::string& topic,
                                                     const std::string& key, std::string value,
                                                     const std::string& schema) {
  ::profiled::internal::v1::OutboxRecord r;
  r.set_topic(topic);
  r.set_key(key);
  r.set_value(std::move(value));
  r.add_header_names(std::string(codec::kContentTypeHeader));
  r.add_header_values(std::string(codec::kProtobufContentType));
  r.add_header_names(std::string(codec::kSchemaHeader));
  r.add_header_values(schema);
  return r;
}

}  // namespace

std::string MessageRecordFor(const std::string& topic, const std::string& key,
                             const google::protobuf::MessageLite& message,
                             const std::string& schema) {
  return MessageRecord(topic, key, message.SerializeAsString(), schema).SerializeAsString();
}

std::string OutboxRecordFor(const std::string& topic, const v1::ProfileUpdate& update,
                            int64_t source_time_ms) {
  return OutboxRecordFor(topic, update.profile_id(), update.SerializeAsString(), source_time_ms);
}

std::string OutboxRecordFor(const std::string& topic, const std::string& profile_id,
                            std::string update_bytes, int64_t source_time_ms) {
  ::profiled::internal::v1::OutboxRecord r = MessageRecord(
      topic, profile_id, std::move(update_bytes), std::string(codec::kProfileUpdateSchema));
  if (source_time_ms > 0) {
    // Subscribers see how fresh the update is; the publisher times it.
    r.add_header_names(std::string(codec::kSourceTimeHeader));
    r.add_header_values(std::to_string(source_time_ms));
  }
  return r.SerializeAsString();
}

std::string TombstoneRecordFor(const std::string& topic, const std::string& key) {
  // Kafka allows headers on a null value: the same ones as an update, so a
  // consumer routing by schema sees tombstones of the topic it expects.
  ::profiled::internal::v1::OutboxRecord r;
  r.set_topic(topic);
  r.set_key(key);
  r.add_header_names(std::string(codec::kContentTypeHeader));
  r.add_header_values(std::string(codec::kProtobufContentType));
  r.add_header_names(std::string(codec::kSchemaHeader));
  r.add_header_values(std::string(codec::kProfileUpdateSchema));
  return r.SerializeAsString();
}

}  // namespace profiled::pipeline::internal
