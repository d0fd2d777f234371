// Partitioned mode with real processes and a real broker process: profiled
// instances in one group while events arrive in waves — one killed with
// SIGKILL mid-run, one added, one stopped with SIGTERM, the killed one
// restarted on a wiped disk — end with exactly the people a single-mode
// run builds: no event lost, none counted twice, and every person's last
// update on the output topic is their final state.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "profiled/core/profile_id.h"
#include "profiled/internal/v1/routing.pb.h"
#include "profiled/v1/profile_update.pb.h"
#include "support/kafka_harness.h"
#include "support/people.h"
#include "support/process.h"
#include "support/test_support.h"

namespace profiled {
namespace {

using std::chrono::seconds;

constexpr int64_t T0 = 1'700'000'000'000;

struct Instance {
  std::string name, config, store;
  int starts = 0;
  std::unique_ptr<testing::ChildProcess> process;
};

Instance Write(const testing::TempDir& dir, const std::string& bootstrap, const std::string& name,
               int standby_replicas) {
  Instance i{name, dir.Sub(name + ".yaml"), dir.Sub(name + "-store")};
  std::ofstream out(i.config);
  // Short sessions: a killed member's partitions move in seconds, not 45.
  out << "kafka: {bootstrap: \"" << bootstrap
      << "\", consumer_properties: {session.timeout.ms: 6000, heartbeat.interval.ms: 500}}\n"
      << "input: {topics: [events], group_id: shop, recent_event_ids: 0}\n"
      << "output: {topic: updates, dead_letter_topic: deadletters}\n"
      << "store: {path: " << i.store << "}\n"
      << "http: {listen: \"127.0.0.1:0\"}\n"
      << "identity: {max_per_kind: {}, max_merges_per_hour: 1000000}\n"
      << "cluster: {mode: partitioned, partitions: 12, standby_replicas: " << standby_replicas
      << "}\n";
  return i;
}

void Start(Instance& i, const testing::TempDir& dir) {
  ++i.starts;
  i.process = std::make_unique<testing::ChildProcess>(
      std::vector<std::string>{PROFILED_BIN, "--config", i.config}, std::vector<std::string>{},
      dir.Sub(absl::StrCat(i.name, ".out.", i.starts)),
      dir.Sub(absl::StrCat(i.name, ".err.", i.starts)));
}

void Produce(const std::string& bootstrap, const std::vector<v1::InteractionEvent>& events,
             size_t from, size_t to, std::mt19937_64& rng) {
  testing::ProduceSpread(bootstrap, "events", events, from, to, rng);
}

// How many partitions the instances took from warm copies, read from their logs.
int TakenFromCopies(const testing::TempDir& dir, const std::vector<const Instance*>& instances) {
  int taken = 0;
  for (const Instance* i : instances) {
    for (int start = 1; start <= i->starts; ++start) {
      const std::string log = testing::ReadFile(dir.Sub(absl::StrCat(i->name, ".err.", start)));
      for (size_t at = log.find("from its warm copy"); at != std::string::npos;
           at = log.find("from its warm copy", at + 1)) {
        ++taken;
      }
    }
  }
  return taken;
}

// Kills, adds, pauses, stops and wipes instances while 900 events of 30
// people arrive; returns how many partitions were taken from warm copies.
int MovesEndWithSingleModesPeople(int standby_replicas) {
  testing::TempDir dir;
  testing::ChildProcess broker(
      {DEVBROKER_BIN, "--topic", "events:4", "--topic", "updates:4", "--topic", "deadletters:1",
       "--topic", "profiled.members:1", "--topic", "profiled.repartition:12", "--topic",
       "profiled.changelog:12"},
      {}, dir.Sub("broker.out"), dir.Sub("broker.err"));
  REQUIRE(testing::WaitForFileContains(dir.Sub("broker.out"), "\n", seconds(20)));
  std::string bootstrap = testing::ReadFile(dir.Sub("broker.out"));
  bootstrap = bootstrap.substr(0, bootstrap.find('\n'));

  std::mt19937_64 rng(5);
  const int people = 30;
  const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, people, 900, T0);
  Instance a = Write(dir, bootstrap, "pod-a", standby_replicas);
  Instance b = Write(dir, bootstrap, "pod-b", standby_replicas);
  Instance c = Write(dir, bootstrap, "pod-c", standby_replicas);

  Produce(bootstrap, events, 0, 300, rng);
  Start(a, dir);
  Start(b, dir);
  std::this_thread::sleep_for(seconds(5));
  Produce(bootstrap, events, 300, 600, rng);
  std::this_thread::sleep_for(seconds(1));
  const std::string b_log = dir.Sub("pod-b.err.1");
  if (standby_replicas > 0) {
    // b keeps copies of a's partitions once a's heartbeat names them.
    REQUIRE(testing::WaitForFileContains(b_log, "keeping a warm copy", seconds(30)));
  }
  REQUIRE(a.process->Running());
  a.process->Signal(SIGKILL);  // mid-run: its unpublished outbox is lost with it
  REQUIRE(a.process->Wait(std::chrono::milliseconds(5000)).value_or(-1) == 128 + SIGKILL);
  if (standby_replicas > 0) {
    // With c joining at once, the assignor may hand a's partitions to c
    // instead: c joins once b has taken them (from its copies).
    REQUIRE(testing::WaitForFileContains(b_log, "from its warm copy", seconds(40)));
  }
  Start(c, dir);  // added while (or, with standbys, after) a's partitions move
  std::this_thread::sleep_for(seconds(4));
  Produce(bootstrap, events, 600, 900, rng);
  // A zombie: c paused past the session timeout while it has work in hand;
  // its partitions move, and when it resumes it may publish before it
  // learns it lost them (the new owners' claims fence what it writes).
  c.process->Signal(SIGSTOP);
  std::this_thread::sleep_for(seconds(9));
  c.process->Signal(SIGCONT);
  b.process->Signal(SIGTERM);
  CHECK(b.process->Wait(std::chrono::milliseconds(40'000)).value_or(-1) == 0);
  std::filesystem::remove_all(a.store);  // a wiped disk
  Start(a, dir);

  const std::map<std::string, core::Profile> single = testing::SingleModeReference(
      bootstrap, "events", testing::EquivalenceOptions(), events.size(), dir.Sub("single"));
  REQUIRE(single.size() == static_cast<size_t>(people));
  bool converged = false;
  const std::map<std::string, core::Profile> partitioned = testing::WaitForChangelogVersions(
      bootstrap, "profiled.changelog", single, seconds(150), &converged);
  // Every event reached the repartition topic (routers re-send, never drop).
  std::set<std::string> routed;
  for (const kafka::ConsumedMessage& m :
       testing::ReadTopicToEnd(bootstrap, "profiled.repartition")) {
    ::profiled::internal::v1::RepartitionRecord r;
    REQUIRE(r.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())));
    if (r.protocol().kind() != ::profiled::internal::v1::ProtocolRecord::EVENT) continue;
    ::profiled::internal::v1::RoutedEvent e;
    REQUIRE(e.ParseFromString(r.protocol().payload()));
    routed.insert(e.event().event_id());
  }
  CHECK(routed.size() == events.size());
  CHECK(converged);
  testing::CheckSamePeople(partitioned, single, testing::EquivalenceOptions().scoring,
                           T0 + 900 * 60'000);
  uint64_t total = 0;
  for (const auto& [user, profile] : partitioned) total += profile.version;
  CHECK(total == events.size());  // none lost, none twice

  // Each person's last update on the output topic is their final state.
  REQUIRE(testing::WaitUntil(
      [&] {
        std::map<std::string, uint64_t> last_version;
        for (const kafka::ConsumedMessage& m : testing::ReadTopicToEnd(bootstrap, "updates")) {
          if (m.tombstone()) continue;
          v1::ProfileUpdate update;
          if (update.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size()))) {
            last_version[update.profile_id()] = update.version();
          }
        }
        for (const auto& [user, p] : partitioned) {
          auto it = last_version.find(p.id);
          if (it == last_version.end() || it->second != p.version) return false;
        }
        return true;
      },
      seconds(60)));
  a.process->Signal(SIGTERM);
  c.process->Signal(SIGTERM);
  CHECK(a.process->Wait(std::chrono::milliseconds(40'000)).value_or(-1) == 0);
  CHECK(c.process->Wait(std::chrono::milliseconds(40'000)).value_or(-1) == 0);
  return TakenFromCopies(dir, {&a, &b, &c});
}

TEST_CASE(
    "partitioned instances killed, added, paused, stopped and wiped mid-run end with single "
    "mode's people, and each person's last update is their final state",
    "[crash][partitioned]") {
  CHECK(MovesEndWithSingleModesPeople(0) == 0);
}

TEST_CASE(
    "with standby replicas, the same moves take partitions from warm copies and still end with "
    "single mode's people",
    "[crash][partitioned][standby]") {
  // pod-b stands by for pod-a's partitions (and a for b's): the kill -9 of
  // a at least moves its partitions to b's copies.
  CHECK(MovesEndWithSingleModesPeople(1) > 0);
}

}  // namespace
}  // namespace profiled
