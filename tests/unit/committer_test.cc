#include "committer.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace profiled::pipeline::internal {
namespace {

TEST_CASE("jobs run one at a time, in order, off the calling thread", "[committer]") {
  Committer committer;
  CHECK(committer.Wait().ok());  // nothing submitted
  std::vector<int> order;
  std::thread::id ran_on;
  for (int i = 0; i < 50; ++i) {
    REQUIRE(committer.Wait().ok());
    committer.Submit([&, i] {
      order.push_back(i);
      ran_on = std::this_thread::get_id();
      return absl::OkStatus();
    });
  }
  REQUIRE(committer.Wait().ok());
  REQUIRE(order.size() == 50);
  for (int i = 0; i < 50; ++i) CHECK(order[i] == i);
  CHECK(ran_on != std::this_thread::get_id());
}

TEST_CASE("Wait returns the job's failure once", "[committer]") {
  Committer committer;
  committer.Submit([] { return absl::UnavailableError("disk gone"); });
  const absl::Status s = committer.Wait();
  CHECK(absl::IsUnavailable(s));
  CHECK(s.message() == "disk gone");
  CHECK(committer.Wait().ok());
}

TEST_CASE("a job in flight finishes before the committer is destroyed", "[committer]") {
  std::atomic<bool> done{false};
  {
    Committer committer;
    committer.Submit([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      done = true;
      return absl::OkStatus();
    });
  }
  CHECK(done.load());
}

}  // namespace
}  // namespace profiled::pipeline::internal
