#include "worker_pool.h"

#include <atomic>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace profiled::pipeline::internal {
namespace {

TEST_CASE("ParallelFor runs every index exactly once, round after round", "[worker_pool]") {
  for (size_t helpers : {0, 1, 3}) {
    WorkerPool pool(helpers);
    for (size_t n : {0, 1, 15, 16, 17, 1000, 4099}) {
      for (int round = 0; round < 20; ++round) {
        std::vector<std::atomic<int>> hits(n);
        pool.ParallelFor(n, [&](size_t i) { hits[i].fetch_add(1); });
        for (size_t i = 0; i < n; ++i) {
          INFO("helpers " << helpers << ", n " << n << ", index " << i);
          REQUIRE(hits[i].load() == 1);
        }
      }
    }
  }
}

TEST_CASE("with a helper, large rounds really use a second thread", "[worker_pool]") {
  WorkerPool pool(1);
  const std::thread::id caller = std::this_thread::get_id();
  bool other_thread_seen = false;
  for (int round = 0; round < 50 && !other_thread_seen; ++round) {
    std::vector<std::thread::id> ran_on(2000);
    pool.ParallelFor(ran_on.size(), [&](size_t i) {
      ran_on[i] = std::this_thread::get_id();
      std::this_thread::yield();
    });
    for (const std::thread::id& id : ran_on) other_thread_seen = other_thread_seen || id != caller;
  }
  CHECK(other_thread_seen);
}

}  // namespace
}  // namespace profiled::pipeline::internal
