// MockCluster: librdkafka's in-process mock Kafka cluster, a real
// Kafka-protocol broker on 127.0.0.1 (random ports). Used by the embedded
// default (`profiled --embedded-kafka`), devbroker and the tests.
//
//   ASSIGN_OR_RETURN(auto cluster, MockCluster::Start(/*brokers=*/1));
//   RETURN_IF_ERROR(cluster->CreateTopic("events", 8));
//   props.emplace_back("bootstrap.servers", cluster->bootstrap());
//
// Limits (see TOOLCHAIN.md): partitions keep ~5 MiB in RAM, no log
// compaction, transactions not truly emulated.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace profiled::kafka {

class MockCluster {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MockCluster>> Start(int brokers);
  ~MockCluster();
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  // "127.0.0.1:port,..." for bootstrap.servers.
  const std::string& bootstrap() const { return bootstrap_; }

  [[nodiscard]] absl::Status CreateTopic(const std::string& name, int partitions);
  // Takes broker `broker_id` (1-based) down or brings it back up.
  [[nodiscard]] absl::Status SetBrokerUp(int broker_id, bool up);

  // What metadata requests say about a topic, to test clients against a
  // topic that is missing or forbidden on a real cluster (the mock creates
  // any topic it is asked about).
  enum class TopicState { kNormal, kMissing, kUnauthorized };
  void SetTopicState(const std::string& topic, TopicState state);

  // The next `count` produce requests to any topic fail with `error`, as a
  // real broker answers a record it refuses.
  enum class ProduceError { kUnauthorized, kRecordTooLarge, kNotLeader };
  void FailNextProduces(int count, ProduceError error);

 private:
  struct Handle;
  explicit MockCluster(std::unique_ptr<Handle> handle);
  std::unique_ptr<Handle> handle_;
  std::string bootstrap_;
};

}  // namespace profiled::kafka
