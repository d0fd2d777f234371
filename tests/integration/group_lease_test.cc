// The group lease through the broker: the members topic on librdkafka's
// mock cluster, instances as GroupLease objects (one per "process"), and a
// log that can be cut to stand for one instance's lost network.
#include "profiled/cluster/group_lease.h"

#include <atomic>
#include <thread>

#include "profiled/kafka/mock_cluster.h"
#include "profiled/kafka/partition_log.h"
#include "support/test_support.h"

namespace profiled::cluster {
namespace {

using State = GroupLease::State;

struct Members {
  Members() {
    auto started = kafka::MockCluster::Start(1);
    REQUIRE_OK(started.status());
    cluster = std::move(*started);
    REQUIRE_OK(cluster->CreateTopic("profiled.members", 1));
  }
  kafka::Properties Properties() const { return {{"bootstrap.servers", cluster->bootstrap()}}; }
  GroupLeaseOptions Options(const std::string& instance,
                            absl::Duration ttl = absl::Seconds(3)) const {
    GroupLeaseOptions o;
    o.group_id = "orders";
    o.instance_id = instance;
    o.advertised_http = instance + ".local:9464";
    o.ttl = ttl;
    return o;
  }
  absl::StatusOr<std::unique_ptr<GroupLease>> Acquire(const std::string& instance,
                                                      absl::Duration ttl = absl::Seconds(3)) {
    return GroupLease::Acquire(Options(instance, ttl), Properties(), clock);
  }
  std::unique_ptr<kafka::MockCluster> cluster;
  core::SystemClock clock;
};

// The real log, failing every call while `cut` is set: one instance's
// network gone while the others still reach the broker.
class CuttableLog final : public kafka::PartitionLog {
 public:
  CuttableLog(std::unique_ptr<kafka::PartitionLog> log, std::atomic<bool>& cut)
      : log_(std::move(log)), cut_(cut) {}
  absl::StatusOr<int64_t> Append(std::string_view key, std::optional<std::string_view> value,
                                 int timeout_ms) override {
    if (cut_) return absl::UnavailableError("network cut by the test");
    return log_->Append(key, value, timeout_ms);
  }
  absl::StatusOr<kafka::LogRange> Range(int timeout_ms) override {
    if (cut_) return absl::UnavailableError("network cut by the test");
    return log_->Range(timeout_ms);
  }
  absl::Status Read(int64_t from, int64_t until, int timeout_ms,
                    const std::function<absl::Status(const kafka::LogRecord&)>& each) override {
    if (cut_) return absl::UnavailableError("network cut by the test");
    return log_->Read(from, until, timeout_ms, each);
  }

 private:
  std::unique_ptr<kafka::PartitionLog> log_;
  std::atomic<bool>& cut_;
};

TEST_CASE("a second instance of a single-mode group refuses to start and names the holder",
          "[integration][cluster]") {
  Members m;
  auto first = m.Acquire("pod-0");
  REQUIRE_OK(first.status());
  CHECK((*first)->state() == State::kHeld);

  auto second = m.Acquire("pod-1");
  REQUIRE(absl::IsFailedPrecondition(second.status()));
  CHECK_THAT(std::string(second.status().message()), Catch::Contains("instance 'pod-0' on host '"));
  CHECK_THAT(std::string(second.status().message()),
             Catch::Contains("(http pod-0.local:9464) holds group 'orders'"));
  CHECK_THAT(std::string(second.status().message()), Catch::Contains("its own input.group_id"));
  // Refusing did not disturb the holder, and heartbeats keep it held past a ttl.
  std::this_thread::sleep_for(std::chrono::milliseconds(3'500));
  CHECK((*first)->state() == State::kHeld);
  CHECK(absl::IsFailedPrecondition(m.Acquire("pod-1").status()));

  SECTION("a clean stop frees the group at once") {
    (*first)->Release();
    auto next = m.Acquire("pod-1");
    REQUIRE_OK(next.status());
    CHECK((*next)->state() == State::kHeld);
  }
  SECTION("after a crash the same instance takes its group back at once, another waits a ttl") {
    first->reset();  // heartbeats stop, nothing released: as kill -9 leaves it
    REQUIRE_OK(m.Acquire("pod-0").status());
  }
  SECTION("after a crash another instance starts once the lease has expired") {
    first->reset();
    const auto crashed = std::chrono::steady_clock::now();
    CHECK(absl::IsFailedPrecondition(m.Acquire("pod-1").status()));
    REQUIRE(testing::WaitUntil([&] { return m.Acquire("pod-1").ok(); }, std::chrono::seconds(8)));
    // Not before the ttl (3 s) since the last heartbeat (at most 1 s before the crash).
    CHECK(std::chrono::steady_clock::now() - crashed >= std::chrono::milliseconds(1'900));
  }
}

TEST_CASE("of instances starting together exactly one holds the group", "[integration][cluster]") {
  Members m;
  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    GroupLeaseOptions base = m.Options("x");
    base.group_id = "race-" + std::to_string(round);
    std::vector<absl::StatusOr<std::unique_ptr<GroupLease>>> results(4);
    std::vector<std::thread> starters;
    for (int i = 0; i < 4; ++i) {
      starters.emplace_back([&, i] {
        GroupLeaseOptions o = base;
        o.instance_id = "pod-" + std::to_string(i);
        results[i] = GroupLease::Acquire(o, m.Properties(), m.clock);
      });
    }
    for (std::thread& t : starters) t.join();
    int held = 0;
    for (auto& r : results) {
      if (r.ok()) {
        ++held;
        CHECK((*r)->state() == State::kHeld);
      } else {
        CHECK(absl::IsFailedPrecondition(r.status()));
      }
    }
    CHECK(held == 1);
  }
}

TEST_CASE(
    "a lease that lapsed pauses its holder, which resumes if no one took the group or stops "
    "for good if someone did",
    "[integration][cluster]") {
  Members m;
  std::atomic<bool> cut{false};
  auto log = kafka::PartitionLog::Open(m.Properties(), "profiled.members", 0);
  REQUIRE_OK(log.status());
  auto a = GroupLease::Acquire(m.Options("pod-a", absl::Seconds(3)),
                               std::make_unique<CuttableLog>(std::move(*log), cut), m.clock);
  REQUIRE_OK(a.status());
  const int64_t first_order = (*a)->lease_order();

  cut = true;
  REQUIRE(
      testing::WaitUntil([&] { return (*a)->state() == State::kLapsed; }, std::chrono::seconds(5)));
  CHECK_THAT((*a)->reason(), Catch::Contains("network cut by the test"));

  SECTION("nobody took it: held again under a new lease") {
    cut = false;
    REQUIRE(
        testing::WaitUntil([&] { return (*a)->state() == State::kHeld; }, std::chrono::seconds(5)));
    CHECK((*a)->lease_order() > first_order);
    CHECK((*a)->reason().empty());
  }
  SECTION("another instance took it meanwhile: lost, and the new holder keeps it") {
    std::unique_ptr<GroupLease> b;
    REQUIRE(testing::WaitUntil(
        [&] {
          auto got = m.Acquire("pod-b", absl::Seconds(3));
          if (got.ok()) b = std::move(*got);
          return b != nullptr;
        },
        std::chrono::seconds(6)));
    cut = false;
    REQUIRE(
        testing::WaitUntil([&] { return (*a)->state() == State::kLost; }, std::chrono::seconds(5)));
    CHECK_THAT((*a)->reason(), Catch::Contains("instance 'pod-b'"));
    std::this_thread::sleep_for(std::chrono::milliseconds(3'500));
    CHECK(b->state() == State::kHeld);
  }
}

// The system clock, `skew_ms` ahead.
class SkewedClock final : public core::Clock {
 public:
  explicit SkewedClock(int64_t skew_ms) : skew_ms_(skew_ms) {}
  int64_t NowMs() const override { return system_.NowMs() + skew_ms_; }

 private:
  core::SystemClock system_;
  int64_t skew_ms_;
};

TEST_CASE(
    "an instance whose clock runs a ttl ahead starts, then gives way as soon as the holder "
    "renews",
    "[integration][cluster]") {
  Members m;
  auto a = m.Acquire("pod-a");
  REQUIRE_OK(a.status());
  const int64_t a_order = (*a)->lease_order();
  SkewedClock ahead(4'000);
  auto b = GroupLease::Acquire(m.Options("pod-b"), m.Properties(), ahead);
  // At b's clock a's lease looks expired, so b may start...
  if (b.ok()) {
    // ... but a's next heartbeat lands after b's lease began: b is lost.
    REQUIRE(
        testing::WaitUntil([&] { return (*b)->state() == State::kLost; }, std::chrono::seconds(5)));
    CHECK_THAT((*b)->reason(), Catch::Contains("instance 'pod-a'"));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1'500));
  CHECK((*a)->state() == State::kHeld);
  CHECK((*a)->lease_order() == a_order);  // never lapsed
}

TEST_CASE("partitioned members learn each other's partitions and count those no live member owns",
          "[integration][cluster]") {
  Members m;
  std::vector<std::unique_ptr<GroupLease>> members;
  for (const std::string instance : {"pod-0", "pod-1"}) {
    GroupLeaseOptions o = m.Options(instance);
    o.mode = std::string(kPartitionedMode);
    auto lease = GroupLease::Acquire(o, m.Properties(), m.clock);
    REQUIRE_OK(lease.status());  // partitioned leases do not exclude each other
    members.push_back(std::move(*lease));
  }
  GroupLease& pod0 = *members[0];
  CHECK(pod0.UnownedOf(4) == 4);  // nobody has said anything yet
  pod0.SetOwned({0, 1});
  members[1]->SetOwned({2, 3});
  // Each heartbeat (ttl/3 = 1 s) carries the partitions and reads the others'.
  REQUIRE(testing::WaitUntil([&] { return pod0.UnownedOf(4) == 0; }, std::chrono::seconds(5)));
  CHECK(pod0.AddressOf(3) == "pod-1.local:9464");
  CHECK(pod0.UnownedOf(6) == 2);  // partitions past what anyone owns

  SECTION("a killed member's partitions count as unowned once its lease expires") {
    members[1].reset();  // heartbeats stop, nothing released: as kill -9 leaves it
    std::this_thread::sleep_for(std::chrono::milliseconds(1'500));
    CHECK(pod0.UnownedOf(4) == 0);  // still within its ttl (3 s)
    REQUIRE(testing::WaitUntil([&] { return pod0.UnownedOf(4) == 2; }, std::chrono::seconds(5)));
    CHECK_FALSE(pod0.AddressOf(2).has_value());
    pod0.SetOwned({0, 1, 2, 3});  // the group gave them to pod-0
    REQUIRE(testing::WaitUntil([&] { return pod0.UnownedOf(4) == 0; }, std::chrono::seconds(5)));
    CHECK(pod0.AddressOf(2) == "pod-0.local:9464");
  }
  SECTION("a cleanly stopped member's partitions are unowned at the next heartbeat") {
    members[1]->Release();
    REQUIRE(testing::WaitUntil([&] { return pod0.UnownedOf(4) == 2; }, std::chrono::seconds(3)));
  }
}

TEST_CASE(
    "the lease topic missing on a cluster that does not create topics fails the start clearly",
    "[integration][cluster]") {
  Members m;
  m.cluster->SetTopicState("profiled.members", kafka::MockCluster::TopicState::kMissing);
  GroupLeaseOptions o = m.Options("pod-0");
  auto lease = GroupLease::Acquire(o, m.Properties(), m.clock);
  REQUIRE_FALSE(lease.ok());
  CHECK_THAT(std::string(lease.status().message()),
             Catch::Contains("cluster lease on topic 'profiled.members'"));
  CHECK_THAT(std::string(lease.status().message()), Catch::Contains("cleanup.policy=compact"));
}

}  // namespace
}  // namespace profiled::cluster
