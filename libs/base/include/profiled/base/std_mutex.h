// StdMutex: a std::mutex clang's thread-safety analysis understands
// (libstdc++'s is not annotated), for the hot hand-offs between two threads
// where std::condition_variable measured faster than absl::Mutex::Await
// (the worker pool and the committer: 4% of end-to-end throughput).
//
//   StdMutex mu_;
//   bool ready_ ABSL_GUARDED_BY(mu_) = false;
//   StdLock lock(mu_);
//   lock.Wait(cv_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ready_; });
#pragma once

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace profiled {

class ABSL_LOCKABLE StdMutex {
 public:
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

// Holds a StdMutex for its scope; can wait on a condition variable.
class ABSL_SCOPED_LOCKABLE StdLock {
 public:
  explicit StdLock(StdMutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : lock_(mu.native()) {}
  ~StdLock() ABSL_UNLOCK_FUNCTION() {}
  StdLock(const StdLock&) = delete;
  StdLock& operator=(const StdLock&) = delete;

  // Releases the lock while waiting; `done` runs with it held.
  template <typename Predicate>
  void Wait(std::condition_variable& cv, Predicate done) {
    cv.wait(lock_, done);
  }
  template <typename Predicate, typename Duration>
  bool WaitFor(std::condition_variable& cv, Duration timeout, Predicate done) {
    return cv.wait_for(lock_, timeout, done);
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace profiled
