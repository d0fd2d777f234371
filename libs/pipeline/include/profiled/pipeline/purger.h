// Purger: after an erasure, makes the person's bytes unreadable on disk.
//
// The erasure batch deletes the person from every column family, but RocksDB
// keeps deleted values in its write-ahead log, in older SST files and as
// delete markers, and file key boundaries in its MANIFEST. The purger waits
// until the erasure's tombstones and receipt (which name the person) have
// left the outbox, gathers the erasures that are due (a burst shares one
// purge), and calls ProfileStore::Purge: flush (the WAL holding them is
// deleted), compaction of their key ranges and of the outbox to the bottom
// level, and a reopen that writes a new MANIFEST. Then it commits, in one
// WriteBatch, the requests' pending markers as done and a second receipt per
// request (request_id and purged_ms only: nothing that names the person).
//
// The pending markers are stored with the erasure itself: a purge that a
// crash interrupted is redone at the next start, for the whole store, since
// the keys are not kept (they would name the person).
//
//   Purger purger(store, publisher, health, metrics, {.receipts_topic = "receipts"});
//   purger.Start();
//   purger.Schedule({"req-1"}, keys, store.NextOutboxSeq());   // after the erasure commits
//
// Thread-safe; the purge runs on the purger's own thread.
#pragma once

#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "profiled/pipeline/health.h"
#include "profiled/pipeline/metrics.h"
#include "profiled/store/profile_store.h"

namespace profiled::pipeline {

class Publisher;

struct PurgerOptions {
  // Where the second ("purged") receipts go; empty: none.
  std::string receipts_topic;
  // How long an erasure waits for others to share its purge. Default: 1 s.
  absl::Duration coalesce = absl::Seconds(1);
  // After a failed purge, the wait before the next attempt. Default: 10 s.
  absl::Duration retry = absl::Seconds(10);
};

class Purger {
 public:
  Purger(store::ProfileStore& store, Publisher* publisher, Health& health,
         PipelineMetrics& metrics, PurgerOptions options);
  ~Purger();
  Purger(const Purger&) = delete;
  Purger& operator=(const Purger&) = delete;

  // Schedules the purges a crash left pending (everything is compacted),
  // then starts the thread.
  [[nodiscard]] absl::Status Start();
  void Stop();

  // Purges `keys` for `request_ids` once every outbox record before
  // `after_seq` is published.
  void Schedule(std::vector<std::string> request_ids, store::PurgeKeys keys, uint64_t after_seq);

 private:
  struct Due {
    std::vector<std::string> request_ids;
    store::PurgeKeys keys;
    uint64_t after_seq = 0;
    absl::Time scheduled;
  };
  void Run();
  // Purges what is due; false when a purge failed (retry later).
  bool PurgeDue();

  store::ProfileStore& store_;
  Publisher* publisher_;
  Health& health_;
  PipelineMetrics& metrics_;
  const PurgerOptions options_;
  absl::Mutex mu_;
  std::vector<Due> due_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;  // by Stop() or Schedule()
  std::thread thread_;
};

}  // namespace profiled::pipeline
