#include "standby_copy.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "profiled/base/status_macros.h"
#include "profiled/cluster/protocol_codec.h"

namespace profiled::pipeline::internal {

StandbyCopy::StandbyCopy(std::string path, std::shared_ptr<store::ProfileStore> store,
                         core::PartitionKey partition)
    : path_(std::move(path)),
      store_(std::move(store)),
      restorer_(*store_, std::move(partition)),
      fold_(
          [this](std::string_view key, std::optional<std::string_view> value) {
            return restorer_.Add(key, value);
          },
          /*low=*/0, /*high=*/0, cluster::SlotEpoch) {}

absl::StatusOr<std::unique_ptr<StandbyCopy>> StandbyCopy::Open(const store::StoreOptions& options,
                                                               core::PartitionKey partition) {
  std::error_code ignored;
  std::filesystem::remove_all(options.path, ignored);
  ASSIGN_OR_RETURN(std::unique_ptr<store::ProfileStore> store, store::ProfileStore::Open(options));
  return std::unique_ptr<StandbyCopy>(
      new StandbyCopy(options.path, std::move(store), std::move(partition)));
}

absl::Status StandbyCopy::Add(const kafka::LogRecord& record) {
  if (record.offset < next()) return absl::OkStatus();  // handed over again
  RETURN_IF_ERROR(fold_.Apply(record));
  const cluster::RestoreResult& folded = fold_.result();
  if (record.key == cluster::kMarkerKey && folded.marker_offset == record.offset) {
    // The owner purges its disk of an erased person's old values before
    // the receipt goes; this copy read them too.
    for (const std::string& key : folded.marker->purge_keys()) purge_.profile_ids.push_back(key);
  }
  return absl::OkStatus();
}

absl::Status StandbyCopy::Flush() {
  RETURN_IF_ERROR(restorer_.Flush());
  if (purge_.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(store_->Purge(purge_));
  purge_ = store::PurgeKeys();
  return absl::OkStatus();
}

absl::StatusOr<cluster::RestoreResult> StandbyCopy::CatchUp(kafka::PartitionLog& log,
                                                            int timeout_ms) {
  ASSIGN_OR_RETURN(const kafka::LogRange range, log.Range(timeout_ms));
  if (range.low > next()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the standby copy had read up to offset ", next(), " but the changelog now starts at ",
        range.low, ": retention deleted records it had not read"));
  }
  if (next() < range.high) {
    absl::Status read = log.Read(next(), range.high, timeout_ms,
                                 [this](const kafka::LogRecord& r) { return Add(r); });
    if (absl::IsOutOfRange(read)) return absl::FailedPreconditionError(read.message());
    RETURN_IF_ERROR(read);
  }
  RETURN_IF_ERROR(Flush());
  RETURN_IF_ERROR(restorer_.Finish());
  cluster::RestoreResult result = fold_.result();
  result.progress.low = range.low;
  result.progress.high = range.high;
  return result;
}

}  // namespace profiled::pipeline::internal
