#include "profiled/kafka/log_tail.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "conf.h"
#include "profiled/base/status_macros.h"

namespace profiled::kafka {
namespace {

class KafkaLogTail final : public LogTail {
 public:
  explicit KafkaLogTail(std::string topic) : topic_(std::move(topic)) {}

  ~KafkaLogTail() override {
    for (int32_t partition : started_) consumer_->stop(topic_handle_.get(), partition);
  }

  absl::Status Init(const Properties& properties) {
    ASSIGN_OR_RETURN(std::unique_ptr<RdKafka::Conf> conf, internal::MakeConf(properties));
    std::string err;
    if (conf->set("event_cb", &errors_, err) != RdKafka::Conf::CONF_OK) {
      return absl::InternalError(err);
    }
    // A follower waits for new records: hold fetches briefly, not 500 ms.
    RETURN_IF_ERROR(internal::SetDefault(*conf, properties, "fetch.wait.max.ms", "100"));
    consumer_.reset(RdKafka::Consumer::create(conf.get(), err));
    if (!consumer_) return absl::InvalidArgumentError(absl::StrCat("creating log tail: ", err));
    queue_.reset(RdKafka::Queue::create(consumer_.get()));
    ASSIGN_OR_RETURN(topic_handle_, internal::StrictTopic(consumer_.get(), topic_));
    return absl::OkStatus();
  }

  absl::Status Start(int32_t partition, int64_t from) override {
    Stop(partition);
    if (RdKafka::ErrorCode err =
            consumer_->start(topic_handle_.get(), partition, from, queue_.get());
        err != RdKafka::ERR_NO_ERROR) {
      return internal::KafkaError(err, absl::StrCat("following ", topic_, "/", partition));
    }
    started_.insert(partition);
    return absl::OkStatus();
  }

  void Stop(int32_t partition) override {
    if (started_.erase(partition) == 0) return;
    consumer_->stop(topic_handle_.get(), partition);
  }

  std::optional<int64_t> CachedHighWatermark(int32_t partition) override {
    int64_t low = 0;
    int64_t high = 0;
    if (consumer_->get_watermark_offsets(topic_, partition, &low, &high) != RdKafka::ERR_NO_ERROR ||
        high < 0) {
      return std::nullopt;
    }
    return high;
  }

  absl::Status Poll(int timeout_ms, size_t max_records,
                    const std::function<void(int32_t, const LogRecord&)>& each) override {
    int wait = timeout_ms;
    for (size_t n = 0; n < max_records; ++n) {
      std::unique_ptr<RdKafka::Message> msg(consumer_->consume(queue_.get(), wait));
      consumer_->poll(0);  // error events: logged
      wait = 0;            // only the first record is waited for
      if (msg->err() == RdKafka::ERR__TIMED_OUT) return absl::OkStatus();
      if (msg->err() == RdKafka::ERR__PARTITION_EOF) continue;
      if (started_.count(msg->partition()) == 0) continue;  // stopped meanwhile
      if (msg->err() == RdKafka::ERR_OFFSET_OUT_OF_RANGE ||
          msg->err() == RdKafka::ERR__AUTO_OFFSET_RESET) {
        return absl::OutOfRangeError(
            absl::StrCat(topic_, "/", msg->partition(), " no longer holds the offset followed"));
      }
      if (msg->err() != RdKafka::ERR_NO_ERROR) {
        return internal::KafkaError(msg->err(),
                                    absl::StrCat("following ", topic_, "/", msg->partition()));
      }
      each(msg->partition(), internal::LogRecordOf(*msg));
    }
    return absl::OkStatus();
  }

 private:
  const std::string topic_;
  internal::EventLogger errors_{"tail"};
  std::unique_ptr<RdKafka::Consumer> consumer_;
  std::unique_ptr<RdKafka::Queue> queue_;         // before consumer_ goes
  std::unique_ptr<RdKafka::Topic> topic_handle_;  // before consumer_ goes
  std::set<int32_t> started_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LogTail>> LogTail::Open(const Properties& properties,
                                                       std::string topic) {
  auto tail = std::make_unique<KafkaLogTail>(std::move(topic));
  RETURN_IF_ERROR(tail->Init(properties));
  return std::unique_ptr<LogTail>(std::move(tail));
}

}  // namespace profiled::kafka
