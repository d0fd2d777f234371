#include "profiled/kafka/partition_log.h"

#include <chrono>

#include "conf.h"
#include "profiled/base/status_macros.h"

namespace profiled::kafka {
namespace {

// The outcome of the one record in flight (Append waits for it).
class LastDelivery final : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    done = true;
    error = message.err();
    offset = message.offset();
  }
  bool done = false;
  RdKafka::ErrorCode error = RdKafka::ERR_NO_ERROR;
  int64_t offset = -1;
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class KafkaPartitionLog final : public PartitionLog {
 public:
  KafkaPartitionLog(std::string topic, int32_t partition)
      : topic_(std::move(topic)), partition_(partition) {}

  absl::Status Init(const Properties& properties) {
    ASSIGN_OR_RETURN(std::unique_ptr<RdKafka::Conf> pconf, internal::MakeConf(properties));
    std::string err;
    if (pconf->set("dr_cb", &delivery_, err) != RdKafka::Conf::CONF_OK ||
        pconf->set("event_cb", &errors_, err) != RdKafka::Conf::CONF_OK) {
      return absl::InternalError(err);
    }
    RETURN_IF_ERROR(internal::SetDefault(*pconf, properties, "acks", "all"));
    RETURN_IF_ERROR(internal::SetDefault(*pconf, properties, "linger.ms", "0"));
    producer_.reset(RdKafka::Producer::create(pconf.get(), err));
    if (!producer_) return absl::InvalidArgumentError(absl::StrCat("creating log producer: ", err));

    ASSIGN_OR_RETURN(std::unique_ptr<RdKafka::Conf> cconf, internal::MakeConf(properties));
    if (cconf->set("event_cb", &errors_, err) != RdKafka::Conf::CONF_OK) {
      return absl::InternalError(err);
    }
    // librdkafka's simple consumer: no group at all (a KafkaConsumer with a
    // group id waited ~1 s for its group machinery before each first fetch).
    RETURN_IF_ERROR(internal::SetOrFail(*cconf, "enable.partition.eof", "true"));
    // Reads are short and waited on: do not let the broker hold fetches.
    RETURN_IF_ERROR(internal::SetDefault(*cconf, properties, "fetch.wait.max.ms", "10"));
    consumer_.reset(RdKafka::Consumer::create(cconf.get(), err));
    if (!consumer_) return absl::InvalidArgumentError(absl::StrCat("creating log reader: ", err));
    ASSIGN_OR_RETURN(topic_handle_, internal::StrictTopic(consumer_.get(), topic_));
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Append(std::string_view key, std::optional<std::string_view> value,
                                 int timeout_ms) override {
    delivery_ = LastDelivery();
    void* payload = value ? const_cast<char*>(value->data()) : nullptr;
    RdKafka::ErrorCode err =
        producer_->produce(topic_, partition_, RdKafka::Producer::RK_MSG_COPY, payload,
                           value ? value->size() : 0, key.data(), key.size(), 0, nullptr, nullptr);
    if (err != RdKafka::ERR_NO_ERROR) return internal::KafkaError(err, "append to " + topic_);
    const int64_t deadline = NowMs() + timeout_ms;
    while (!delivery_.done && NowMs() < deadline) producer_->poll(10);
    if (!delivery_.done) {
      // Purge it so a late delivery cannot be taken for the next record's.
      producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
      producer_->poll(0);
      return absl::DeadlineExceededError(
          absl::StrCat("append to ", topic_, ": no acknowledgement within ", timeout_ms, " ms"));
    }
    if (delivery_.error != RdKafka::ERR_NO_ERROR) {
      return internal::KafkaError(delivery_.error, "append to " + topic_);
    }
    return delivery_.offset;
  }

  absl::StatusOr<LogRange> Range(int timeout_ms) override {
    LogRange range;
    RdKafka::ErrorCode err =
        producer_->query_watermark_offsets(topic_, partition_, &range.low, &range.high, timeout_ms);
    if (err != RdKafka::ERR_NO_ERROR) {
      return internal::KafkaError(err, absl::StrCat("watermarks of ", topic_, "/", partition_));
    }
    return range;
  }

  absl::Status Read(int64_t from, int64_t until, int timeout_ms,
                    const std::function<absl::Status(const LogRecord&)>& each) override {
    if (from >= until) return absl::OkStatus();
    if (RdKafka::ErrorCode err = consumer_->start(topic_handle_.get(), partition_, from);
        err != RdKafka::ERR_NO_ERROR) {
      return internal::KafkaError(err, "reading " + topic_);
    }
    const int64_t deadline = NowMs() + timeout_ms;
    int64_t next = from;
    absl::Status result = absl::OkStatus();
    while (next < until) {
      const int64_t left = deadline - NowMs();
      if (left <= 0) {
        result = absl::DeadlineExceededError(absl::StrCat("reading ", topic_, "/", partition_,
                                                          ": at offset ", next, " of ", until,
                                                          " after ", timeout_ms, " ms"));
        break;
      }
      std::unique_ptr<RdKafka::Message> msg(consumer_->consume(
          topic_handle_.get(), partition_, static_cast<int>(std::min<int64_t>(left, 100))));
      consumer_->poll(0);  // error events: logged
      if (msg->err() == RdKafka::ERR__TIMED_OUT) continue;
      if (msg->err() == RdKafka::ERR__PARTITION_EOF) {
        // Compaction leaves gaps: the end of the log ends the range too.
        if (msg->offset() >= until) break;
        continue;
      }
      if (msg->err() == RdKafka::ERR_OFFSET_OUT_OF_RANGE ||
          msg->err() == RdKafka::ERR__AUTO_OFFSET_RESET) {
        result = OutOfRange(next, timeout_ms);
        break;
      }
      if (msg->err() != RdKafka::ERR_NO_ERROR) {
        result = internal::KafkaError(msg->err(), "reading " + topic_);
        break;
      }
      if (msg->offset() < next) continue;  // a record before `from` after a retry
      next = msg->offset() + 1;
      if (msg->offset() >= until) break;
      result = each(internal::LogRecordOf(*msg));
      if (!result.ok()) break;
    }
    consumer_->stop(topic_handle_.get(), partition_);
    return result;
  }

 private:
  // Offset `at` is not held: retention removed it (OutOfRange), or it is
  // past the end, the caller's mistake (InvalidArgument).
  absl::Status OutOfRange(int64_t at, int timeout_ms) {
    absl::StatusOr<LogRange> range = Range(timeout_ms);
    if (range.ok() && at >= range->high) {
      return absl::InvalidArgumentError(absl::StrCat("reading ", topic_, "/", partition_,
                                                     " at offset ", at,
                                                     ": past its end (high "
                                                     "watermark ",
                                                     range->high, ")"));
    }
    return absl::OutOfRangeError(
        absl::StrCat(topic_, "/", partition_, " no longer holds offset ", at));
  }

  const std::string topic_;
  const int32_t partition_;
  internal::EventLogger errors_{"log"};
  LastDelivery delivery_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::unique_ptr<RdKafka::Consumer> consumer_;
  std::unique_ptr<RdKafka::Topic> topic_handle_;  // before consumer_ goes
};

}  // namespace

absl::StatusOr<std::unique_ptr<PartitionLog>> PartitionLog::Open(const Properties& properties,
                                                                 std::string topic,
                                                                 int32_t partition) {
  auto log = std::make_unique<KafkaPartitionLog>(std::move(topic), partition);
  RETURN_IF_ERROR(log->Init(properties));
  return std::unique_ptr<PartitionLog>(std::move(log));
}

}  // namespace profiled::kafka
