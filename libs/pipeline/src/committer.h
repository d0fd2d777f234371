// Committer: runs one batch's write (dead letters, the WriteBatch, the
// publisher's wake-up) on its own thread while the pipeline thread prepares
// the next batch. One job in flight at most; jobs run in submission order.
// Private to the pipeline.
//
//   Committer committer;
//   RETURN_IF_ERROR(committer.Wait());          // the previous batch is written
//   committer.Submit([&store, b = std::move(batch)] { return store.Commit(b); });
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "profiled/base/std_mutex.h"

namespace profiled::pipeline::internal {

class Committer {
 public:
  Committer() : thread_([this] { Loop(); }) {}
  ~Committer() {
    {
      StdLock lock(mu_);
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();  // a job in flight finishes first
  }
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Starts `job`. Call Wait() first: one job at a time.
  void Submit(std::function<absl::Status()> job) {
    {
      StdLock lock(mu_);
      job_ = std::move(job);
      busy_ = true;
    }
    changed_.notify_all();
  }

  // Blocks until no job is in flight; the last job's status (OK if none).
  absl::Status Wait() {
    StdLock lock(mu_);
    lock.Wait(changed_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !busy_; });
    absl::Status s = std::move(status_);
    status_ = absl::OkStatus();
    return s;
  }

 private:
  void Loop() {
    for (;;) {
      std::function<absl::Status()> job;
      {
        StdLock lock(mu_);
        lock.Wait(changed_,
                  [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || job_ != nullptr; });
        if (job_ == nullptr) return;  // stopping, nothing left
        job = std::move(job_);
        job_ = nullptr;
      }
      absl::Status s = job();
      {
        StdLock lock(mu_);
        status_ = std::move(s);
        busy_ = false;
      }
      changed_.notify_all();
    }
  }

  StdMutex mu_;
  std::condition_variable changed_;
  std::function<absl::Status()> job_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace profiled::pipeline::internal
