// StandbyCopy: a warm copy of one repartition partition this instance does
// not own (cluster.standby_replicas; docs/scaling.md, "Standbys"). It folds
// the partition's changelog into a store of its own exactly as a restore
// does (the same ChangelogFold and SlotRestorer, record by record in offset
// order), only a little per poll as the changelog tail hands records over.
// When the group gives the partition here, CatchUp reads what was written
// since and returns what a restore of the whole changelog would have: the
// copy becomes the owned store without reading the partition from 0.
//
//   ASSIGN_OR_RETURN(auto copy, StandbyCopy::Open(store_options, {repartition, k}));
//   tail->Start(k, copy->next());
//   ... each tailed record: RETURN_IF_ERROR(copy->Add(record)); after a poll: copy->Flush();
//   ASSIGN_OR_RETURN(cluster::RestoreResult r, copy->CatchUp(log, timeout_ms));  // taken
//
// An erasure's marker purges the copy's disk of the erased keys as the
// owner does (the copy also read their older values). Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "partition_task.h"
#include "profiled/cluster/changelog.h"
#include "profiled/core/clock.h"
#include "profiled/kafka/partition_log.h"
#include "profiled/store/profile_store.h"

namespace profiled::pipeline::internal {

class StandbyCopy {
 public:
  // A new, empty copy at options.path (wiped first), following from offset 0.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<StandbyCopy>> Open(
      const store::StoreOptions& options, core::PartitionKey partition);

  // The next changelog record, in offset order.
  [[nodiscard]] absl::Status Add(const kafka::LogRecord& record);
  // Commits what Add gathered, and purges what an erasure marker named.
  [[nodiscard]] absl::Status Flush();
  // Reads the changelog from next() to its end and finishes the copy
  // (timers indexed): what RestoreChangelog over the whole partition
  // returns. FailedPrecondition when the changelog no longer holds next().
  [[nodiscard]] absl::StatusOr<cluster::RestoreResult> CatchUp(kafka::PartitionLog& log,
                                                               int timeout_ms);

  int64_t next() const { return fold_.result().progress.next; }
  int64_t records() const { return fold_.result().progress.records; }
  const std::string& path() const { return path_; }
  const std::shared_ptr<store::ProfileStore>& store() const { return store_; }

 private:
  StandbyCopy(std::string path, std::shared_ptr<store::ProfileStore> store,
              core::PartitionKey partition);

  const std::string path_;
  std::shared_ptr<store::ProfileStore> store_;
  SlotRestorer restorer_;
  cluster::ChangelogFold fold_;
  store::PurgeKeys purge_;  // named by erasure markers since the last Flush
};

}  // namespace profiled::pipeline::internal
