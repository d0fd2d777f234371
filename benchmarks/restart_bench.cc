// restart_bench: how long a restarted profiled takes to publish again,
// beside how long a bare consumer-group member takes to consume again, on
// the same broker in the same run. Both are killed with SIGKILL (no clean
// leave) and restarted at once with the same group.instance.id.
//
//   restart_bench --bin BUILD_DIR [--runs 3] [--session-timeout-ms 6000] [--work DIR]
//
// On a real cluster static membership (KIP-345) returns the partitions of a
// member that comes back within its session timeout without a rebalance;
// librdkafka 2.0.2's mock broker ignores group.instance.id and rebalances
// after about a session timeout, so here both figures sit near it and their
// difference is what profiled adds (opening the store, rewinding, first batch).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "bench_support.h"
#include "profiled/core/profile_id.h"
#include "profiled/kafka/consumer.h"
#include "profiled/kafka/producer.h"
#include "profiled/v1/event.pb.h"

namespace profiled::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Member mode: a bare group member that prints what it consumes.
int Member(const std::string& bootstrap, const std::string& group, const std::string& instance,
           const std::string& session_ms) {
  kafka::ConsumerOptions options;
  options.properties = {{"bootstrap.servers", bootstrap}, {"session.timeout.ms", session_ms}};
  options.group_id = group;
  options.group_instance_id = instance;
  options.topics = {"bare"};  // from the earliest offset: nothing produced is missed
  auto consumer = kafka::Consumer::Create(options, [](const core::PartitionKey&) {
    return std::optional<int64_t>();
  });
  if (!consumer.ok()) Die(std::string(consumer.status().message()));
  bool assigned = false;
  std::vector<kafka::ConsumedMessage> batch;
  for (;;) {
    batch.clear();
    if (!(*consumer)->Poll(100, 100, batch).ok()) continue;
    if (!assigned && !(*consumer)->Assignment().empty()) {
      assigned = true;
      std::printf("assigned\n");
    }
    for (const auto& m : batch) std::printf("msg %s\n", std::string(m.payload()).c_str());
    std::fflush(stdout);
  }
}

void Produce(const std::string& bootstrap, const std::string& topic, const std::string& key,
             const std::string& value) {
  std::atomic<bool> done{false};
  auto producer = kafka::Producer::Create({{"bootstrap.servers", bootstrap}},
                                          [&](uint64_t, const absl::Status&) { done = true; });
  if (!producer.ok() || !(*producer)->Produce(topic, key, value, {}, 0).ok()) Die("produce");
  while (!done) (*producer)->Poll(10);
}

// Arrival times of the output topic's records, by key.
class OutputWatch {
 public:
  explicit OutputWatch(const std::string& bootstrap) {
    kafka::ConsumerOptions options;
    options.properties = {{"bootstrap.servers", bootstrap}};
    options.group_id = absl::StrCat("restart-bench-watch-", getpid());
    options.topics = {"up"};
    auto consumer = kafka::Consumer::Create(options, [](const core::PartitionKey&) {
      return std::optional<int64_t>();
    });
    if (!consumer.ok()) Die("output consumer");
    consumer_ = std::move(*consumer);
    thread_ = std::thread([this] {
      std::vector<kafka::ConsumedMessage> batch;
      while (!stop_) {
        batch.clear();
        if (!consumer_->Poll(1000, 50, batch).ok()) continue;
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& m : batch) seen_.try_emplace(std::string(m.key()), Clock::now());
      }
    });
  }
  ~OutputWatch() {
    stop_ = true;
    thread_.join();
    consumer_->Close();
  }
  // When a record keyed `key` first arrived; waits up to `timeout`.
  Clock::time_point Await(const std::string& key, std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (auto it = seen_.find(key); it != seen_.end()) return it->second;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Die("no update for " + key);
  }

 private:
  std::unique_ptr<kafka::Consumer> consumer_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  absl::flat_hash_map<std::string, Clock::time_point> seen_;
  std::thread thread_;
};

std::string Event(const std::string& user) {
  v1::InteractionEvent e;
  e.set_event_id(absl::StrCat(user, "-", WallMs()));
  e.set_type("product_viewed");
  e.set_event_time_ms(WallMs());
  e.mutable_identities()->set_user_id(user);
  return e.SerializeAsString();
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Run(const Flags& flags, const std::string& self) {
  const std::string bin = flags.Get("--bin", "");
  if (bin.empty()) Die("--bin BUILD_DIR is required");
  const int runs = static_cast<int>(flags.Number("--runs", 3));
  const std::string session = flags.Get("--session-timeout-ms", "6000");
  const std::string work = flags.Get("--work", absl::StrCat("/tmp/restart-bench-", getpid()));
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);

  Child broker({bin + "/services/devbroker/devbroker", "--topic", "ev:4", "--topic", "up:4",
                "--topic", "dl:1", "--topic", "bare:4"},
               work + "/broker.out", work + "/broker.err");
  const std::string bootstrap =
      "127.0.0.1" + AwaitLine(work + "/broker.out", "127.0.0.1", broker, 10);

  // The bare member: kill -9, restart, time until it consumes a new message.
  std::vector<double> bare;
  for (int r = 0; r < runs; ++r) {
    std::vector<std::string> argv = {self, "--member", bootstrap, "bare-group", "member-0", session};
    {
      Child member(argv, work + "/member.out", work + "/member.err");
      AwaitLine(work + "/member.out", "assigned", member, 60);
      Produce(bootstrap, "bare", "k", absl::StrCat("warm-", r));
      AwaitLine(work + "/member.out", absl::StrCat("msg warm-", r), member, 60);
      member.Signal(SIGKILL);
      member.Wait();
    }
    const auto restarted = Clock::now();
    Child member(argv, work + "/member2.out", work + "/member2.err");
    Produce(bootstrap, "bare", "k", absl::StrCat("after-", r));
    AwaitLine(work + "/member2.out", absl::StrCat("msg after-", r), member, 120);
    bare.push_back(Seconds(Clock::now() - restarted));
    std::printf("bare member run %d: consumed again %.2f s after its restart\n", r + 1, bare.back());
    member.Signal(SIGKILL);
  }

  // profiled: kill -9, restart on the same store, time until it publishes
  // the update of an event produced right after the restart.
  const std::string config = work + "/profiled.yaml";
  std::ofstream(config) << "kafka: {bootstrap: \"" << bootstrap
                        << "\", consumer_properties: {session.timeout.ms: " << session << "}}\n"
                        << "input: {topics: [ev], group_id: restart-bench, "
                           "group_instance_id: profiled-0}\n"
                        << "output: {topic: up, dead_letter_topic: dl}\n"
                        << "store: {path: " << work << "/store}\n"
                        << "http: {listen: \"127.0.0.1:0\"}\n";
  OutputWatch output(bootstrap);
  const std::vector<std::string> argv = {bin + "/services/profiled/profiled", "--config", config};
  std::vector<double> restarts;
  for (int r = 0; r < runs; ++r) {
    {
      Child profiled(argv, work + "/profiled.out", work + "/profiled.err");
      const std::string warm = absl::StrCat("warm-user-", r);
      Produce(bootstrap, "ev", warm, Event(warm));
      output.Await(core::ProfileIdFor(core::Identity{"user_id", warm}), std::chrono::seconds(120));
      profiled.Signal(SIGKILL);
      profiled.Wait();
    }
    const auto restarted = Clock::now();
    Child profiled(argv, work + "/profiled2.out", work + "/profiled2.err");
    const std::string after = absl::StrCat("after-user-", r);
    Produce(bootstrap, "ev", after, Event(after));
    const auto published =
        output.Await(core::ProfileIdFor(core::Identity{"user_id", after}), std::chrono::seconds(120));
    restarts.push_back(Seconds(published - restarted));
    std::printf("profiled run %d: published again %.2f s after its restart\n", r + 1,
                restarts.back());
    profiled.Signal(SIGKILL);
  }
  std::printf("\nrestart to first message (medians of %d, session.timeout.ms %s):\n"
              "  bare consumer-group member: %.2f s\n  profiled (first publish):   %.2f s\n"
              "  profiled's own share:       %.2f s\n",
              runs, session.c_str(), Median(bare), Median(restarts),
              Median(restarts) - Median(bare));
  std::printf("{\"bare_rejoin_s\": %.3f, \"profiled_restart_s\": %.3f, \"session_timeout_ms\": %s}\n",
              Median(bare), Median(restarts), session.c_str());
  return 0;
}

}  // namespace
}  // namespace profiled::bench

int main(int argc, char** argv) {
  if (argc == 6 && std::string(argv[1]) == "--member") {
    return profiled::bench::Member(argv[2], argv[3], argv[4], argv[5]);
  }
  profiled::bench::Flags flags(argc, argv);
  if (!flags.error().empty()) profiled::bench::Die(flags.error());
  return profiled::bench::Run(flags, std::filesystem::canonical("/proc/self/exe").string());
}
