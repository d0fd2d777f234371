// The single-mode fence with real processes: two profiled instances with
// the same group against one devbroker. Before the fence the second joined
// the group and took half the partitions (half of each person's events),
// and for a session timeout no one held any; now exactly one runs.
#include <csignal>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "support/process.h"
#include "support/test_support.h"

namespace profiled {
namespace {

using std::chrono::seconds;

struct Instance {
  std::string config, out, err;
};

Instance WriteInstance(const testing::TempDir& dir, const std::string& bootstrap,
                       const std::string& name) {
  Instance i{dir.Sub(name + ".yaml"), dir.Sub(name + ".out"), dir.Sub(name + ".err")};
  std::ofstream out(i.config);
  // A short session: after kill -9 the group frees the dead member's
  // partitions in 6 s instead of 45.
  out << "kafka: {bootstrap: \"" << bootstrap
      << "\", consumer_properties: {session.timeout.ms: 6000}}\n"
      << "input: {topics: [events], group_id: shop}\n"
      << "output: {topic: updates, dead_letter_topic: deadletters}\n"
      << "store: {path: " << dir.Sub(name + "-store") << "}\n"
      << "http: {listen: \"127.0.0.1:0\"}\n"
      << "cluster: {instance_id: " << name << ", lease_ttl: 3s}\n";
  return i;
}

std::unique_ptr<testing::ChildProcess> Start(const Instance& i, int attempt) {
  return std::make_unique<testing::ChildProcess>(
      std::vector<std::string>{PROFILED_BIN, "--config", i.config}, std::vector<std::string>{},
      absl::StrCat(i.out, ".", attempt), absl::StrCat(i.err, ".", attempt));
}

std::string Log(const Instance& i, int attempt) {
  return testing::ReadFile(absl::StrCat(i.out, ".", attempt)) +
         testing::ReadFile(absl::StrCat(i.err, ".", attempt));
}

bool HoldsAllPartitions(const Instance& i, int attempt) {
  return testing::WaitUntil(
      [&] {
        const std::string log = Log(i, attempt);
        for (int p = 0; p < 4; ++p) {
          if (log.find(absl::StrCat("assigned events/", p)) == std::string::npos) return false;
        }
        return true;
      },
      seconds(30));
}

TEST_CASE("single mode: of two instances with one group exactly one runs, the other refuses",
          "[crash][cluster]") {
  testing::TempDir dir;
  testing::ChildProcess broker({DEVBROKER_BIN, "--topic", "events:4", "--topic", "updates:4",
                                "--topic", "deadletters:1", "--topic", "profiled.members:1"},
                               {}, dir.Sub("broker.out"), dir.Sub("broker.err"));
  REQUIRE(testing::WaitForFileContains(dir.Sub("broker.out"), "\n", seconds(20)));
  std::string bootstrap = testing::ReadFile(dir.Sub("broker.out"));
  bootstrap = bootstrap.substr(0, bootstrap.find('\n'));
  Instance a = WriteInstance(dir, bootstrap, "pod-a");
  Instance b = WriteInstance(dir, bootstrap, "pod-b");

  // Started together: one wins, whichever's lease landed first.
  auto pa = Start(a, 1);
  auto pb = Start(b, 1);
  std::optional<int> a_exit, b_exit;
  REQUIRE(testing::WaitUntil(
      [&] {
        a_exit = pa->Running() ? std::nullopt : pa->Wait(std::chrono::milliseconds(1));
        b_exit = pb->Running() ? std::nullopt : pb->Wait(std::chrono::milliseconds(1));
        return a_exit.has_value() || b_exit.has_value();
      },
      seconds(30)));
  REQUIRE(a_exit.has_value() != b_exit.has_value());
  const bool a_won = !a_exit.has_value();
  Instance& winner = a_won ? a : b;
  Instance& loser = a_won ? b : a;
  std::unique_ptr<testing::ChildProcess>& running = a_won ? pa : pb;
  CHECK((a_won ? b_exit : a_exit) == 1);
  const std::string refusal = Log(loser, 1);
  CHECK_THAT(refusal, Catch::Contains(absl::StrCat("not starting: instance '",
                                                   a_won ? "pod-a" : "pod-b", "'")));
  CHECK(refusal.find("assigned events/") == std::string::npos);  // never joined the group
  REQUIRE(HoldsAllPartitions(winner, 1));

  // Tried again while the holder runs: refused again; the holder keeps every partition.
  auto again = Start(loser, 2);
  REQUIRE(again->Wait(seconds(30)) == 1);
  CHECK_THAT(Log(loser, 2), Catch::Contains("not starting"));
  CHECK(running->Running());
  CHECK(Log(winner, 1).find("revoked") == std::string::npos);

  // What an operator sees: the holder and the refused instance, by name.
  testing::ChildProcess members({PROFILECTL_BIN, "members", "--bootstrap", bootstrap, "--group",
                                 "shop"},
                                {}, dir.Sub("members.out"), dir.Sub("members.err"));
  REQUIRE(members.Wait(seconds(30)) == 0);
  const std::string listed = testing::ReadFile(dir.Sub("members.out"));
  CHECK_THAT(listed, Catch::Contains(absl::StrCat("holds    ", a_won ? "pod-a" : "pod-b", " on ")));
  CHECK_THAT(listed, Catch::Contains(absl::StrCat("refused  ", a_won ? "pod-b" : "pod-a", " on ")));

  SECTION("a clean stop hands the group over at once") {
    running->Signal(SIGTERM);
    REQUIRE(running->Wait(seconds(30)) == 0);
    auto next = Start(loser, 3);
    REQUIRE(HoldsAllPartitions(loser, 3));
    CHECK(next->Running());
  }
  SECTION("after kill -9 another instance is refused until the lease expires, then runs") {
    running->Signal(SIGKILL);
    running->Wait(seconds(10));
    int attempt = 3;
    std::unique_ptr<testing::ChildProcess> next;
    REQUIRE(testing::WaitUntil(
        [&] {
          next = Start(loser, attempt);
          if (next->Wait(seconds(4)).has_value()) {
            CHECK_THAT(Log(loser, attempt), Catch::Contains("lease ends"));
            ++attempt;
            return false;
          }
          return true;
        },
        seconds(30)));
    CHECK(attempt > 3);  // refused at least once: the dead holder's lease had not expired yet
    REQUIRE(HoldsAllPartitions(loser, attempt));
  }
}

}  // namespace
}  // namespace profiled
