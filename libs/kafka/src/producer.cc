#include "profiled/kafka/producer.h"

#include "conf.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"

namespace profiled::kafka {
namespace {

class DeliveryReports final : public RdKafka::DeliveryReportCb {
 public:
  explicit DeliveryReports(DeliveryCallback cb) : cb_(std::move(cb)) {}
  void dr_cb(RdKafka::Message& message) override {
    uint64_t opaque = reinterpret_cast<uintptr_t>(message.msg_opaque());
    if (message.err() == RdKafka::ERR_NO_ERROR) {
      cb_(opaque, absl::OkStatus());
    } else {
      cb_(opaque, internal::KafkaError(message.err(), "delivery failed"));
    }
  }

 private:
  DeliveryCallback cb_;
};

class KafkaProducer final : public Producer {
 public:
  absl::Status Init(const Properties& properties, DeliveryCallback on_delivery) {
    reports_ = std::make_unique<DeliveryReports>(std::move(on_delivery));
    ASSIGN_OR_RETURN(std::unique_ptr<RdKafka::Conf> conf, internal::MakeConf(properties));
    RETURN_IF_ERROR(internal::SetDefault(*conf, properties, "enable.idempotence", "true"));
    std::string err;
    if (conf->set("dr_cb", reports_.get(), err) != RdKafka::Conf::CONF_OK ||
        conf->set("event_cb", &errors_, err) != RdKafka::Conf::CONF_OK) {
      return absl::InternalError(err);
    }
    producer_.reset(RdKafka::Producer::create(conf.get(), err));
    if (!producer_) return absl::InvalidArgumentError(absl::StrCat("creating producer: ", err));
    return absl::OkStatus();
  }

  ~KafkaProducer() override {
    if (producer_) producer_->flush(5000);
  }

  absl::Status ProduceTo(std::string_view topic, int32_t partition, std::string_view key,
                         std::optional<std::string_view> value, const std::vector<Header>& headers,
                         uint64_t opaque) override {
    RdKafka::Headers* hdrs = nullptr;
    if (!headers.empty()) {
      hdrs = RdKafka::Headers::create();
      for (const Header& h : headers) hdrs->add(h.name, h.value.data(), h.value.size());
    }
    void* payload = value ? const_cast<char*>(value->data()) : nullptr;
    size_t len = value ? value->size() : 0;
    RdKafka::ErrorCode err = producer_->produce(
        std::string(topic), partition == kAnyPartition ? RdKafka::Topic::PARTITION_UA : partition,
        RdKafka::Producer::RK_MSG_COPY, payload, len, key.data(), key.size(), 0, hdrs,
        reinterpret_cast<void*>(opaque));
    if (err == RdKafka::ERR_NO_ERROR) return absl::OkStatus();
    delete hdrs;  // left to us when produce() fails
    if (err == RdKafka::ERR__QUEUE_FULL) return absl::ResourceExhaustedError("producer queue full");
    return internal::KafkaError(err, "produce");
  }

  void Poll(int timeout_ms) override { producer_->poll(timeout_ms); }

  absl::Status Flush(int timeout_ms) override {
    RdKafka::ErrorCode err = producer_->flush(timeout_ms);
    if (err != RdKafka::ERR_NO_ERROR) return internal::KafkaError(err, "flush");
    return absl::OkStatus();
  }

  int OutQueueLength() const override { return producer_->outq_len(); }

  absl::Status FatalError() const override {
    std::string reason;
    const RdKafka::ErrorCode err = producer_->fatal_error(reason);
    if (err == RdKafka::ERR_NO_ERROR) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat("fatal producer error: ", reason));
  }

 private:
  std::unique_ptr<DeliveryReports> reports_;
  internal::EventLogger errors_{"producer"};
  std::unique_ptr<RdKafka::Producer> producer_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(const Properties& properties,
                                                           DeliveryCallback on_delivery) {
  auto producer = std::make_unique<KafkaProducer>();
  RETURN_IF_ERROR(producer->Init(properties, std::move(on_delivery)));
  return std::unique_ptr<Producer>(std::move(producer));
}

}  // namespace profiled::kafka
