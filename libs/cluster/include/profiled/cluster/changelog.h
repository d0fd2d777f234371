// Changelog restore: a stage's state for one partition, rebuilt from its
// compacted changelog partition (docs/scaling.md, "Exactly once without
// transactions").
//
// A changelog partition holds, per batch, the full new value of every key
// the batch changed (a null value when it deleted one), then a marker under
// kMarkerKey. Restoring reads the partition from its start to its high
// watermark and hands every non-marker record to the sink in order; the
// newest marker says where to resume consuming. Records after the newest
// marker (a batch half-published when its writer died) are handed over too:
// each value carries what it applied, so re-consuming from the marker
// applies nothing twice.
//
// Zombies (docs/scaling.md): a new owner first writes a claim marker whose
// own offset is its epoch, and stamps everything after with it. A restore
// skips every record written after a claim in an older epoch — the late
// writes of an owner that lost the partition without noticing; a record of
// an epoch kept raises the epoch too (compaction may have removed its
// claim). Compaction may still drop one of our records for a zombie's newer
// one of the same key: the owner re-writes such keys when it sees the
// zombie's record (PartitionedRuntime's changelog tail), and a new owner
// re-writes the keys its restore skipped (fenced_keys), both within the
// changelog's min.compaction.lag.ms.
//
//   ASSIGN_OR_RETURN(RestoreResult r, RestoreChangelog(log, sink, progress, timeout));
//   consumer.Seek(r.marker ? r.marker->next_offset() : 0);
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "profiled/internal/v1/cluster.pb.h"
#include "profiled/kafka/partition_log.h"

namespace profiled::cluster {

using internal::v1::ChangelogMarker;

// The key no state record can have (state keys never start with NUL).
inline constexpr std::string_view kMarkerKey{"\0marker", 7};

// Called with each state record: key, and its value or nullopt (deleted).
using RestoreSink =
    std::function<absl::Status(std::string_view key, std::optional<std::string_view> value)>;

// The epoch a marker at `offset` was written in: a claim's is its own
// offset (a new owner's epoch), any other marker's its epoch field. The one
// rule for restores and for reading back one's own changelog.
inline int64_t MarkerEpoch(const ChangelogMarker& marker, int64_t offset) {
  return marker.claim() ? offset : marker.epoch();
}

// The epoch a state record's value was written in (0: before any claim).
// Tombstones carry none and are never skipped.
using EpochOf = std::function<int64_t(std::string_view value)>;

struct RestoreProgress {
  int64_t low = 0;      // the partition's first offset
  int64_t high = 0;     // its high watermark when the restore began
  int64_t next = 0;     // next offset to read
  int64_t records = 0;  // state records handed to the sink
  int64_t bytes = 0;    // their key and value bytes
  int64_t fenced = 0;   // records and markers of an older epoch, skipped
};

struct RestoreResult {
  RestoreProgress progress;
  // The newest marker of the current epoch, if the partition holds one (a
  // claim's epoch is its offset).
  std::optional<ChangelogMarker> marker;
  int64_t marker_offset = -1;
  // The newest epoch seen (a claim's offset, or the epoch of a record kept:
  // compaction may have removed the claim itself); 0 when none.
  int64_t epoch = 0;
  // State keys a zombie wrote after a claim (records skipped): the new
  // owner writes them again, so compaction never keeps the zombie's alone.
  std::vector<std::string> fenced_keys;
};

// Folds records in offset order (pure): what RestoreChangelog does with
// each record it reads. Without `epoch_of`, state records are never
// skipped (markers still are).
class ChangelogFold {
 public:
  ChangelogFold(RestoreSink sink, int64_t low, int64_t high, EpochOf epoch_of = nullptr);
  [[nodiscard]] absl::Status Apply(const kafka::LogRecord& record);
  const RestoreResult& result() const { return result_; }

 private:
  RestoreSink sink_;
  EpochOf epoch_of_;
  RestoreResult result_;
};

// Checks that the partition still starts where its writer began it:
// retention that deleted the oldest records (low watermark above 0) would
// make a restore silently partial. FailedPrecondition then.
[[nodiscard]] absl::Status CheckNotTruncated(const kafka::LogRange& range, std::string_view what);

// Reads the whole partition through `sink`; `progress` (may be null) is
// called every 10,000 records and at the end. Fails on a truncated
// partition, a sink error or a read that does not finish within
// timeout_ms.
[[nodiscard]] absl::StatusOr<RestoreResult> RestoreChangelog(
    kafka::PartitionLog& log, std::string_view what, const RestoreSink& sink,
    const std::function<void(const RestoreProgress&)>& progress, int timeout_ms,
    const EpochOf& epoch_of = nullptr);

}  // namespace profiled::cluster
