#include "profiled/kafka/mock_cluster.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <vector>

#include "absl/strings/str_cat.h"

namespace profiled::kafka {

// The mock cluster lives inside a dedicated (otherwise unused) rd_kafka_t.
struct MockCluster::Handle {
  rd_kafka_t* rk = nullptr;
  rd_kafka_mock_cluster_t* cluster = nullptr;
  ~Handle() {
    if (cluster != nullptr) rd_kafka_mock_cluster_destroy(cluster);
    if (rk != nullptr) rd_kafka_destroy(rk);
  }
};

MockCluster::MockCluster(std::unique_ptr<Handle> handle) : handle_(std::move(handle)) {
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(handle_->cluster);
}

MockCluster::~MockCluster() = default;

absl::StatusOr<std::unique_ptr<MockCluster>> MockCluster::Start(int brokers) {
  if (brokers < 1) return absl::InvalidArgumentError("mock cluster needs at least one broker");
  auto handle = std::make_unique<Handle>();
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // Keep the owning handle quiet: it never talks to a broker itself.
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  handle->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (handle->rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("creating mock cluster handle: ", err));
  }
  handle->cluster = rd_kafka_mock_cluster_new(handle->rk, brokers);
  if (handle->cluster == nullptr) return absl::InternalError("creating mock cluster failed");
  return std::unique_ptr<MockCluster>(new MockCluster(std::move(handle)));
}

absl::Status MockCluster::CreateTopic(const std::string& name, int partitions) {
  rd_kafka_resp_err_t err =
      rd_kafka_mock_topic_create(handle_->cluster, name.c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(
        absl::StrCat("creating mock topic ", name, ": ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

void MockCluster::SetTopicState(const std::string& topic, TopicState state) {
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (state == TopicState::kMissing) err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  if (state == TopicState::kUnauthorized) err = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
  rd_kafka_mock_topic_set_error(handle_->cluster, topic.c_str(), err);
}

void MockCluster::FailNextProduces(int count, ProduceError error) {
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
  if (error == ProduceError::kUnauthorized) err = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
  if (error == ProduceError::kRecordTooLarge) err = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
  std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(count), err);
  constexpr int16_t kProduceApiKey = 0;
  rd_kafka_mock_push_request_errors_array(handle_->cluster, kProduceApiKey, errors.size(),
                                          errors.data());
}

absl::Status MockCluster::SetBrokerUp(int broker_id, bool up) {
  rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(handle_->cluster, broker_id)
                               : rd_kafka_mock_broker_set_down(handle_->cluster, broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("mock broker ", broker_id, ": ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

}  // namespace profiled::kafka
