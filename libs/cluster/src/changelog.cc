#include "profiled/cluster/changelog.h"

#include "absl/strings/str_cat.h"
#include "profiled/base/status_macros.h"

namespace profiled::cluster {

ChangelogFold::ChangelogFold(RestoreSink sink, int64_t low, int64_t high, EpochOf epoch_of)
    : sink_(std::move(sink)), epoch_of_(std::move(epoch_of)) {
  result_.progress.low = low;
  result_.progress.high = high;
  result_.progress.next = low;
}

absl::Status ChangelogFold::Apply(const kafka::LogRecord& record) {
  RestoreProgress& p = result_.progress;
  p.next = record.offset + 1;
  if (record.key == kMarkerKey) {
    ChangelogMarker marker;
    if (!record.value ||
        !marker.ParseFromArray(record.value->data(), static_cast<int>(record.value->size()))) {
      return absl::DataLossError(
          absl::StrCat("changelog marker at offset ", record.offset, " is unreadable"));
    }
    const int64_t epoch = MarkerEpoch(marker, record.offset);
    // Offsets only grow: a claim always starts a newer epoch. Epochs only
    // come from claims: a marker kept means its claim was made, even when
    // compaction has removed the claim record since.
    if (!marker.claim() && epoch < result_.epoch) {
      ++p.fenced;  // a zombie's late marker
      return absl::OkStatus();
    }
    result_.epoch = epoch;
    marker.set_epoch(epoch);
    marker.set_claim(false);
    result_.marker = std::move(marker);
    result_.marker_offset = record.offset;
    return absl::OkStatus();
  }
  if (record.value && epoch_of_) {
    const int64_t epoch = epoch_of_(*record.value);
    if (epoch < result_.epoch) {
      ++p.fenced;  // a zombie's late write
      result_.fenced_keys.emplace_back(record.key);
      return absl::OkStatus();
    }
    result_.epoch = epoch;  // as for markers: its claim was made
  }
  ++p.records;
  p.bytes += static_cast<int64_t>(record.key.size() + (record.value ? record.value->size() : 0));
  return sink_(record.key, record.value);
}

absl::Status CheckNotTruncated(const kafka::LogRange& range, std::string_view what) {
  if (range.low == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      std::string(what), " starts at offset ", range.low,
      ", not 0: retention deleted its oldest records, so "
      "a restore from it would silently miss state. A changelog must be cleanup.policy=compact "
      "with no retention.ms / retention.bytes limit; restore this partition from its input "
      "instead"));
}

absl::StatusOr<RestoreResult> RestoreChangelog(
    kafka::PartitionLog& log, std::string_view what, const RestoreSink& sink,
    const std::function<void(const RestoreProgress&)>& progress, int timeout_ms,
    const EpochOf& epoch_of) {
  ASSIGN_OR_RETURN(kafka::LogRange range, log.Range(timeout_ms));
  RETURN_IF_ERROR(CheckNotTruncated(range, what));
  ChangelogFold fold(sink, range.low, range.high, epoch_of);
  absl::Status read = log.Read(range.low, range.high, timeout_ms, [&](const kafka::LogRecord& r) {
    RETURN_IF_ERROR(fold.Apply(r));
    // Counted in records: compaction leaves gaps in offsets.
    if (progress && fold.result().progress.records % 10'000 == 0) progress(fold.result().progress);
    return absl::OkStatus();
  });
  // The oldest records went while we read them: as truncated as before.
  if (absl::IsOutOfRange(read)) {
    return absl::FailedPreconditionError(absl::StrCat(std::string(what), ": ", read.message()));
  }
  RETURN_IF_ERROR(read);
  if (progress) progress(fold.result().progress);
  return fold.result();
}

}  // namespace profiled::cluster
