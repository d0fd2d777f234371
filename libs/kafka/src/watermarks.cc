#include "profiled/kafka/watermarks.h"

#include "conf.h"
#include "profiled/base/status_macros.h"

namespace profiled::kafka {
namespace {

class KafkaWatermarkReader final : public WatermarkReader {
 public:
  absl::Status Init(const Properties& properties) {
    ASSIGN_OR_RETURN(std::unique_ptr<RdKafka::Conf> conf, internal::MakeConf(properties));
    std::string err;
    if (conf->set("event_cb", &errors_, err) != RdKafka::Conf::CONF_OK) {
      return absl::InternalError(err);
    }
    // A producer handle: it joins no group and never fetches.
    handle_.reset(RdKafka::Producer::create(conf.get(), err));
    if (!handle_)
      return absl::InvalidArgumentError(absl::StrCat("creating watermark client: ", err));
    return absl::OkStatus();
  }

  absl::flat_hash_map<core::PartitionKey, int64_t> HighWatermarks(
      const std::vector<core::PartitionKey>& partitions, int timeout_ms) override {
    absl::flat_hash_map<core::PartitionKey, int64_t> out;
    if (partitions.empty()) return out;
    std::vector<RdKafka::TopicPartition*> list;
    list.reserve(partitions.size());
    for (const core::PartitionKey& p : partitions) {
      // Timestamp -1 asks ListOffsets for the latest offset: the high
      // watermark, for every partition in one request per broker.
      list.push_back(
          RdKafka::TopicPartition::create(p.topic, p.partition, RdKafka::Topic::OFFSET_END));
    }
    handle_->offsetsForTimes(list, timeout_ms);
    handle_->poll(0);  // its error events: logged, not piled up
    for (RdKafka::TopicPartition* tp : list) {
      if (tp->err() == RdKafka::ERR_NO_ERROR && tp->offset() >= 0) {
        out[core::PartitionKey{tp->topic(), tp->partition()}] = tp->offset();
      }
    }
    RdKafka::TopicPartition::destroy(list);
    return out;
  }

 private:
  internal::EventLogger errors_{"watermarks"};
  std::unique_ptr<RdKafka::Producer> handle_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WatermarkReader>> WatermarkReader::Create(
    const Properties& properties) {
  auto reader = std::make_unique<KafkaWatermarkReader>();
  RETURN_IF_ERROR(reader->Init(properties));
  return std::unique_ptr<WatermarkReader>(std::move(reader));
}

}  // namespace profiled::kafka
