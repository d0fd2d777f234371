// WorkerPool: runs the independent per-profile steps of a batch (update
// building, serialization, state encoding) on the pipeline thread and helper
// threads at once. Private to the pipeline.
//
//   WorkerPool pool(1);                       // one helper: two cores busy
//   pool.ParallelFor(n, [&](size_t i) { outputs[i] = Work(inputs[i]); });
//
// fn(i) runs exactly once for every i < n before ParallelFor returns; fn must
// only touch item i's data (and read shared data). One caller at a time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "profiled/base/std_mutex.h"

namespace profiled::pipeline::internal {

class WorkerPool {
 public:
  explicit WorkerPool(size_t helper_threads) {
    for (size_t t = 0; t < helper_threads; ++t) threads_.emplace_back([this] { Work(); });
  }
  ~WorkerPool() {
    {
      StdLock lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Below `min_items` items the wake-up costs more than it saves: all on
  // this thread.
  void ParallelFor(size_t n, const std::function<void(size_t)>& fn,
                   size_t min_items = kMinParallelItems) {
    if (threads_.empty() || n < min_items) {
      for (size_t i = 0; i < n; ++i) fn(i);
      return;
    }
    {
      StdLock lock(mu_);
      fn_ = &fn;
      n_ = n;
      next_.store(0);
      busy_ = threads_.size();
      ++generation_;
    }
    wake_.notify_all();
    Drain(fn, n);
    StdLock lock(mu_);
    lock.Wait(done_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return busy_ == 0; });
    fn_ = nullptr;
  }

 private:
  static constexpr size_t kMinParallelItems = 16;

  void Drain(const std::function<void(size_t)>& fn, size_t n) {
    for (size_t i = next_.fetch_add(1); i < n; i = next_.fetch_add(1)) fn(i);
  }

  void Work() {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(size_t)>* fn;
      size_t n;
      {
        StdLock lock(mu_);
        lock.Wait(wake_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stop_ || generation_ != seen;
        });
        if (stop_) return;
        seen = generation_;
        fn = fn_;
        n = n_;
      }
      Drain(*fn, n);
      {
        StdLock lock(mu_);
        --busy_;
      }
      done_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  StdMutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(size_t)>* fn_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t n_ ABSL_GUARDED_BY(mu_) = 0;
  size_t busy_ ABSL_GUARDED_BY(mu_) = 0;         // helpers still draining
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // one per ParallelFor
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<size_t> next_{0};
};

}  // namespace profiled::pipeline::internal
