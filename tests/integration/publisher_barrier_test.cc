// The publisher's partitioned-mode records through a real broker: records
// produced to the partition they name, and a barrier that holds back
// everything after it until everything before it is acknowledged (a
// batch's sends before its changelog, docs/scaling.md).
#include <map>

#include "absl/strings/str_cat.h"
#include "profiled/core/clock.h"
#include "profiled/internal/v1/profile_state.pb.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/pipeline/publisher.h"
#include "support/kafka_harness.h"
#include "support/test_support.h"

namespace profiled::pipeline {
namespace {

std::string Record(const std::string& key, int32_t partition) {
  ::profiled::internal::v1::OutboxRecord r;
  r.set_topic("t");
  r.set_key(key);
  r.set_value(absl::StrCat("value-", key));
  r.set_partition(partition);
  return r.SerializeAsString();
}

std::string Barrier() {
  ::profiled::internal::v1::OutboxRecord r;
  r.set_barrier(true);
  return r.SerializeAsString();
}

struct Parts {
  Parts() : metrics(registry), health(registry, {}, clock) {
    auto started = kafka::MockCluster::Start(1);
    REQUIRE_OK(started.status());
    cluster = std::move(*started);
    REQUIRE_OK(cluster->CreateTopic("t", 3));
    auto opened = store::ProfileStore::Open({.path = dir.Sub("store")});
    REQUIRE_OK(opened.status());
    store = std::move(*opened);
  }
  std::unique_ptr<Publisher> Start() {
    PublisherOptions options;
    options.retry_backoff = absl::Milliseconds(100);
    options.refused_retry = absl::Milliseconds(100);
    auto p = Publisher::Create(options, {{"bootstrap.servers", cluster->bootstrap()}}, *store,
                               metrics, health);
    REQUIRE_OK(p.status());
    (*p)->Start();
    return std::move(*p);
  }
  testing::TempDir dir;
  prometheus::Registry registry;
  core::SystemClock clock;
  PublisherMetrics metrics;
  Health health;
  std::unique_ptr<kafka::MockCluster> cluster;
  std::unique_ptr<store::ProfileStore> store;
};

TEST_CASE("outbox records go to the partition they name, and a barrier is never produced",
          "[integration][publisher]") {
  Parts p;
  store::CommitBatch batch;
  batch.outbox = {Record("a", 1), Record("b", 2), Barrier(), Record("c", 0), Record("d", 2)};
  REQUIRE_OK(p.store->Commit(batch));
  auto publisher = p.Start();
  publisher->Notify();
  REQUIRE(testing::WaitUntil([&] { return p.store->OutboxDepth() == 0; }));
  publisher->Stop();
  std::map<std::string, int32_t> partition_of;
  for (const kafka::ConsumedMessage& m : testing::ReadTopic(p.cluster->bootstrap(), "t", 4)) {
    partition_of[std::string(m.key())] = m.partition();
  }
  CHECK(partition_of == std::map<std::string, int32_t>{{"a", 1}, {"b", 2}, {"c", 0}, {"d", 2}});
}

TEST_CASE("nothing after a barrier is produced while a record before it is not acknowledged",
          "[integration][publisher]") {
  Parts p;
  store::CommitBatch batch;
  // Partition 7 does not exist: the record before the barrier keeps failing.
  batch.outbox = {Record("stuck", 7), Barrier(), Record("after", 0)};
  REQUIRE_OK(p.store->Commit(batch));
  auto publisher = p.Start();
  publisher->Notify();
  // Several retries of the failing record pass; the one after the barrier waits.
  REQUIRE(testing::WaitUntil([&] { return p.metrics.publish_errors.Value() >= 3; }));
  CHECK(p.store->OutboxDepth() == 3);
  CHECK(testing::ReadTopicToEnd(p.cluster->bootstrap(), "t").empty());
  publisher->Stop();
}

}  // namespace
}  // namespace profiled::pipeline
