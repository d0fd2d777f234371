#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <random>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "profiled/base/failpoint.h"
#include "profiled/base/status_macros.h"
#include "profiled/store/profile_store.h"
#include "profiled/store/rocksdb_tuning.h"

namespace profiled::store {
namespace {

constexpr const char* kProfilesCf = "profiles";
constexpr const char* kOffsetsCf = "offsets";
constexpr const char* kOutboxCf = "outbox";
constexpr const char* kIdentitiesCf = "identities";
constexpr const char* kMergesCf = "merges";
constexpr const char* kTimersCf = "timers";
constexpr const char* kSuppressionsCf = "suppressions";
constexpr const char* kSecretKey = "deployment_secret";
constexpr const char* kNextAuditSeqKey = "next_audit_seq";
constexpr const char* kProfileCountKey = "profile_count";
constexpr const char* kProbeKey = "write_probe";
// Recover waits for this much free space before touching the store.
constexpr uint64_t kMinFreeBytes = 64ull << 20;
// Erasures whose purge from disk is pending: kPurgePrefix + request id.
constexpr const char* kPurgePrefix = "purge_pending:";
constexpr const char* kChangelogMarkerKey = "changelog_marker";
// Named settings (ReadSetting): kSettingPrefix + name.
constexpr const char* kSettingPrefix = "setting:";
std::string SettingKey(std::string_view name) { return kSettingPrefix + std::string(name); }

absl::Status ToStatus(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

void PutBigEndian64(uint64_t v, char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

uint64_t GetBigEndian64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

std::string OutboxKey(uint64_t seq) {
  std::string key(8, '\0');
  PutBigEndian64(seq, key.data());
  return key;
}

std::string PositionKey(std::string_view topic, int32_t partition) {
  std::string key(topic);
  key.push_back('\0');
  char be[8];
  PutBigEndian64(static_cast<uint32_t>(partition), be);
  key.append(be + 4, 4);
  return key;
}

// Inverse of PositionKey: `bytes` is topic \0 partition(be32), size >= 5.
void DecodePositionKey(std::string_view bytes, std::string& topic, int32_t& partition) {
  topic.assign(bytes.data(), bytes.size() - 5);
  char be[8] = {0, 0, 0, 0};
  std::memcpy(be + 4, bytes.data() + bytes.size() - 4, 4);
  partition = static_cast<int32_t>(GetBigEndian64(be));
}

// Timer keys sort by due time (sign bit flipped so negative times sort
// first), then profile id.
constexpr uint64_t kSignBit = uint64_t{1} << 63;
std::string TimerKey(int64_t due_ms, std::string_view profile_id) {
  std::string key(8, '\0');
  PutBigEndian64(static_cast<uint64_t>(due_ms) ^ kSignBit, key.data());
  key.append(profile_id);
  return key;
}

std::string PositionValue(const PartitionPosition& p) {
  std::string v(16, '\0');
  PutBigEndian64(static_cast<uint64_t>(p.next_offset), v.data());
  PutBigEndian64(static_cast<uint64_t>(p.stream_time_ms), v.data() + 8);
  return v;
}

// The largest commit buffer kept between commits (a flat-out batch of
// 10,000 events takes ~12 MB).
constexpr size_t kKeptCommitBufferBytes = 64 << 20;

// Roughly what `batch` takes in a WriteBatch: keys, values and per-record
// framing.
size_t EstimatedBytes(const CommitBatch& batch) {
  constexpr size_t kFraming = 32;
  size_t n = 64;
  for (const auto& [id, bytes] : batch.profiles) n += id.size() + bytes.size() + kFraming;
  for (const std::string& record : batch.outbox) n += record.size() + 8 + kFraming;
  for (const auto& [key, id] : batch.identity_links) n += key.size() + id.size() + kFraming;
  for (const auto& [id, record] : batch.audit) n += id.size() + record.size() + 9 + kFraming;
  n += (batch.timers_set.size() + batch.timers_deleted.size() + batch.positions.size() +
        batch.deleted_profiles.size() + batch.identity_links_deleted.size()) *
       64;
  return n;
}

// The column families, in the order they are opened.
const std::vector<std::string>& ColumnFamilyNames() {
  static const std::vector<std::string> names = {rocksdb::kDefaultColumnFamilyName,
                                                 kProfilesCf,
                                                 kOffsetsCf,
                                                 kOutboxCf,
                                                 kIdentitiesCf,
                                                 kMergesCf,
                                                 kTimersCf,
                                                 kSuppressionsCf};
  return names;
}

// An open RocksDB with its column family handles.
struct OpenDb {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;

  // Flushes every memtable (so the write-ahead log holds nothing a restart
  // needs) and closes. After a failed write there is nothing to flush that
  // the WAL does not replay, and touching the failed WAL again trips an
  // assertion in RocksDB builds that keep them: close without flushing.
  void FlushAndClose(bool write_failed = false) {
    if (!db) return;
    if (!write_failed) db->Flush(rocksdb::FlushOptions(), handles).PermitUncheckedError();
    for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
    handles.clear();
    db->Close().PermitUncheckedError();
    db.reset();
  }
};

class RocksDbProfileStore final : public ProfileStore {
 public:
  RocksDbProfileStore(StoreOptions options, rocksdb::Options db_options,
                      std::vector<rocksdb::ColumnFamilyDescriptor> cfs)
      : options_(std::move(options)), db_options_(std::move(db_options)), cfs_(std::move(cfs)) {
    write_options_.sync = options_.sync_writes;
  }

  ~RocksDbProfileStore() override {
    absl::WriterMutexLock lock(&db_mu_);
    open_.FlushAndClose(write_failed_);
  }

  absl::Status Open() ABSL_LOCKS_EXCLUDED(db_mu_) {
    absl::MutexLock commit(&commit_mu_);
    absl::WriterMutexLock lock(&db_mu_);
    return OpenLocked();
  }

 private:
  // The counters kept beside the data, read again on every open: a reopen
  // may replay a write the process saw fail (it reached the WAL), so what
  // was in memory cannot be trusted.
  absl::Status InitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_, db_mu_) {
    std::unique_ptr<rocksdb::Iterator> it(db()->NewIterator({}, outbox()));
    uint64_t depth = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++depth;
    RETURN_IF_ERROR(ToStatus(it->status(), "scanning outbox"));
    it->SeekToLast();
    // Never backwards: an emptied outbox says nothing of the numbers already
    // handed to the publisher, whose cursor is past them.
    next_outbox_seq_ =
        std::max(next_outbox_seq_, it->Valid() ? GetBigEndian64(it->key().data()) + 1 : 1);
    outbox_depth_.store(depth);
    // The next audit sequence is kept in the default column family.
    std::string next;
    rocksdb::Status got = db()->Get({}, defaults(), kNextAuditSeqKey, &next);
    if (got.ok() && next.size() == 8) {
      next_audit_seq_ = std::max(next_audit_seq_, GetBigEndian64(next.data()));
    }
    if (!got.ok() && !got.IsNotFound()) return ToStatus(got, "reading audit sequence");
    // The profile count is kept in the default column family too; a store
    // written before it existed is counted once.
    std::string count;
    got = db()->Get({}, defaults(), kProfileCountKey, &count);
    if (got.ok() && count.size() == 8) {
      profile_count_.store(GetBigEndian64(count.data()));
    } else if (got.IsNotFound()) {
      std::unique_ptr<rocksdb::Iterator> profiles_it(db()->NewIterator({}, profiles()));
      uint64_t n = 0;
      for (profiles_it->SeekToFirst(); profiles_it->Valid(); profiles_it->Next()) ++n;
      RETURN_IF_ERROR(ToStatus(profiles_it->status(), "counting profiles"));
      RETURN_IF_ERROR(
          ToStatus(db()->Put(write_options_, defaults(), kProfileCountKey, OutboxKey(n)),
                   "storing the profile count"));
      profile_count_.store(n);
    } else {
      return ToStatus(got, "reading the profile count");
    }
    return absl::OkStatus();
  }

 public:
  absl::Status MultiGet(const std::vector<std::string>& ids,
                        std::vector<std::optional<std::string>>& out) override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    return MultiGetFrom(profiles(), ids, out);
  }

  absl::Status MultiGetIdentities(const std::vector<std::string>& keys,
                                  std::vector<std::optional<std::string>>& out) override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    return MultiGetFrom(identities(), keys, out);
  }

  absl::Status ReadDueTimers(int64_t due_by_ms, size_t max, std::vector<Timer>& out) override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    std::unique_ptr<rocksdb::Iterator> it(db()->NewIterator({}, timers()));
    for (it->SeekToFirst(); it->Valid() && out.size() < max; it->Next()) {
      rocksdb::Slice k = it->key();
      rocksdb::Slice v = it->value();
      if (k.size() < 8 || v.size() < 5) return absl::DataLossError("malformed timer entry");
      const int64_t due = static_cast<int64_t>(GetBigEndian64(k.data()) ^ kSignBit);
      if (due > due_by_ms) break;
      Timer t;
      t.due_ms = due;
      t.profile_id.assign(k.data() + 8, k.size() - 8);
      DecodePositionKey({v.data(), v.size()}, t.topic, t.partition);
      out.push_back(std::move(t));
    }
    return ToStatus(it->status(), "reading timers");
  }

  absl::Status MultiGetSuppressions(const std::vector<std::string>& hashes,
                                    std::vector<std::optional<int64_t>>& out) override {
    std::vector<std::optional<std::string>> raw;
    {
      absl::ReaderMutexLock lock(&db_mu_);
      if (open_.db == nullptr) return Closed();
      RETURN_IF_ERROR(MultiGetFrom(suppressions(), hashes, raw));
    }
    out.assign(raw.size(), std::nullopt);
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i].has_value() && raw[i]->size() == 8) {
        out[i] = static_cast<int64_t>(GetBigEndian64(raw[i]->data()));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<bool> HasSuppressions() override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    std::unique_ptr<rocksdb::Iterator> it(db()->NewIterator({}, suppressions()));
    it->SeekToFirst();
    RETURN_IF_ERROR(ToStatus(it->status(), "reading suppressions"));
    return it->Valid();
  }

  absl::StatusOr<std::string> DeploymentSecret() override {
    absl::MutexLock commit(&commit_mu_);
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    std::string secret;
    rocksdb::Status got = db()->Get({}, defaults(), kSecretKey, &secret);
    if (got.ok()) return secret;
    if (!got.IsNotFound()) return ToStatus(got, "reading the deployment secret");
    std::random_device rd;
    secret.resize(32);
    for (char& c : secret) c = static_cast<char>(rd());
    RETURN_IF_ERROR(ToStatus(db()->Put(write_options_, defaults(), kSecretKey, secret),
                             "storing the deployment secret"));
    return secret;
  }

  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ReadAuditEntries(
      std::string_view profile_id) override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    std::string prefix(profile_id);
    prefix.push_back('\0');
    std::vector<std::pair<std::string, std::string>> out;
    std::unique_ptr<rocksdb::Iterator> it(db()->NewIterator({}, merges()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      out.emplace_back(it->key().ToString(), it->value().ToString());
    }
    RETURN_IF_ERROR(ToStatus(it->status(), "reading merge audit"));
    return out;
  }

  absl::StatusOr<std::vector<std::string>> ReadAudit(std::string_view profile_id) override {
    ASSIGN_OR_RETURN(auto entries, ReadAuditEntries(profile_id));
    std::vector<std::string> out;
    out.reserve(entries.size());
    for (auto& [key, record] : entries) out.push_back(std::move(record));
    return out;
  }

  absl::Status CompactAll() override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    rocksdb::CompactRangeOptions options;
    options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    for (rocksdb::ColumnFamilyHandle* h : open_.handles) {
      RETURN_IF_ERROR(ToStatus(db()->Flush(rocksdb::FlushOptions(), h), "flushing"));
      RETURN_IF_ERROR(ToStatus(db()->CompactRange(options, h, nullptr, nullptr), "compacting"));
    }
    return absl::OkStatus();
  }

  absl::Status Purge(const PurgeKeys& keys) override {
    {
      absl::ReaderMutexLock lock(&db_mu_);
      if (open_.db == nullptr) return Closed();
      RETURN_IF_ERROR(ToStatus(db()->Flush(rocksdb::FlushOptions(), open_.handles),
                               "flushing before the purge"));
      rocksdb::CompactRangeOptions options;
      options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
      options.exclusive_manual_compaction = false;  // background work goes on
      auto compact = [&](rocksdb::ColumnFamilyHandle* cf, const std::string& first,
                         const std::string& last) ABSL_SHARED_LOCKS_REQUIRED(db_mu_) {
        rocksdb::Slice begin(first), end(last);
        return ToStatus(db()->CompactRange(options, cf, &begin, &end), "compacting for a purge");
      };
      if (keys.everything) {
        for (rocksdb::ColumnFamilyHandle* h : open_.handles) {
          RETURN_IF_ERROR(
              ToStatus(db()->CompactRange(options, h, nullptr, nullptr), "compacting for a purge"));
        }
      } else {
        // Each ranged compaction rewrites the files around one key; past a
        // few dozen keys in a column family, one compaction of all of it
        // rewrites less.
        constexpr size_t kRangesPerColumnFamily = 32;
        auto compact_each =
            [&](rocksdb::ColumnFamilyHandle* cf,
                const std::vector<std::pair<std::string, std::string>>& ranges)
                ABSL_SHARED_LOCKS_REQUIRED(db_mu_) {
                  if (ranges.size() > kRangesPerColumnFamily) {
                    return ToStatus(db()->CompactRange(options, cf, nullptr, nullptr),
                                    "compacting for a purge");
                  }
                  for (const auto& [first, last] : ranges)
                    RETURN_IF_ERROR(compact(cf, first, last));
                  return absl::OkStatus();
                };
        std::vector<std::pair<std::string, std::string>> profile_ranges, audit_ranges,
            identity_ranges, timer_ranges;
        for (const std::string& id : keys.profile_ids) {
          profile_ranges.emplace_back(id, id);
          // The profile's audit records: id \0 seq.
          audit_ranges.emplace_back(id + std::string(1, '\0'), id + std::string(1, '\1'));
        }
        for (const std::string& key : keys.identity_keys) identity_ranges.emplace_back(key, key);
        for (const std::string& key : keys.audit_keys) audit_ranges.emplace_back(key, key);
        for (const auto& [due, id] : keys.timers) {
          const std::string key = TimerKey(due, id);
          timer_ranges.emplace_back(key, key);
        }
        RETURN_IF_ERROR(compact_each(profiles(), profile_ranges));
        RETURN_IF_ERROR(compact_each(merges(), audit_ranges));
        RETURN_IF_ERROR(compact_each(identities(), identity_ranges));
        RETURN_IF_ERROR(compact_each(timers(), timer_ranges));
        // Published updates of the person, their tombstones and receipt.
        RETURN_IF_ERROR(ToStatus(db()->CompactRange(options, outbox(), nullptr, nullptr),
                                 "compacting the outbox for a purge"));
      }
    }
    // A MANIFEST records file key boundaries for as long as it lives; it is
    // rewritten only at its size limit or on open: reopen. If that fails the
    // store answers Unavailable until Recover opens it.
    absl::MutexLock commit(&commit_mu_);
    absl::WriterMutexLock lock(&db_mu_);
    open_.FlushAndClose();
    return OpenLocked();
  }

  absl::StatusOr<std::vector<std::string>> PendingPurges() override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(db()->NewIterator({}, defaults()));
    for (it->Seek(kPurgePrefix); it->Valid() && it->key().starts_with(kPurgePrefix); it->Next()) {
      out.push_back(it->key().ToString().substr(std::strlen(kPurgePrefix)));
    }
    RETURN_IF_ERROR(ToStatus(it->status(), "reading pending purges"));
    return out;
  }

  absl::StatusOr<std::optional<std::string>> LoadChangelogMarker() override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    std::string value;
    rocksdb::Status s = db()->Get({}, defaults(), kChangelogMarkerKey, &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    RETURN_IF_ERROR(ToStatus(s, "reading the changelog marker"));
    return std::optional<std::string>(std::move(value));
  }

  absl::Status Recover() override {
    absl::MutexLock commit(&commit_mu_);
    absl::WriterMutexLock lock(&db_mu_);
    // RocksDB holds a failed write as a background error; Resume clears it
    // once the cause is gone (it flushes what the failed write left). An
    // error it cannot resume from takes a reopen, which replays the WAL.
    // Nothing works on a full disk, and reopening there trips assertions in
    // RocksDB builds that keep them: wait for space first.
    struct statvfs fs {};
    if (statvfs(options_.path.c_str(), &fs) == 0) {
      const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
      if (free_bytes < kMinFreeBytes) {
        return absl::UnavailableError(absl::StrCat("waiting for disk space: ", free_bytes >> 20,
                                                   " MiB free at ", options_.path));
      }
    }
    if (open_.db == nullptr) {
      RETURN_IF_ERROR(OpenLocked());
    } else if (rocksdb::Status resumed = db()->Resume(); !resumed.ok()) {
      // An error Resume will not clear (a fatal WAL error) takes a reopen,
      // which replays the WAL.
      open_.FlushAndClose(/*write_failed=*/true);
      RETURN_IF_ERROR(OpenLocked());
    }
    // Prove it: a synced write of a key nothing reads.
    rocksdb::WriteOptions synced;
    synced.sync = true;
    RETURN_IF_ERROR(ToStatus(db()->Put(synced, defaults(), kProbeKey, OutboxKey(next_outbox_seq_)),
                             "probing the store"));
    write_failed_ = false;
    return absl::OkStatus();
  }

  absl::Status MultiGetFrom(rocksdb::ColumnFamilyHandle* cf, const std::vector<std::string>& ids,
                            std::vector<std::optional<std::string>>& out)
      ABSL_SHARED_LOCKS_REQUIRED(db_mu_) {
    const size_t n = ids.size();
    out.assign(n, std::nullopt);
    if (n == 0) return absl::OkStatus();
    std::vector<rocksdb::Slice> keys(ids.begin(), ids.end());
    std::vector<rocksdb::PinnableSlice> values(n);
    std::vector<rocksdb::Status> statuses(n);
    db()->MultiGet(rocksdb::ReadOptions(), cf, n, keys.data(), values.data(), statuses.data());
    for (size_t i = 0; i < n; ++i) {
      if (statuses[i].ok()) {
        out[i].emplace(values[i].data(), values[i].size());
      } else if (!statuses[i].IsNotFound()) {
        return ToStatus(statuses[i], "multi-get");
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<std::string>> Get(std::string_view id) override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    std::string value;
    rocksdb::Status s = db()->Get(rocksdb::ReadOptions(), profiles(), id, &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    RETURN_IF_ERROR(ToStatus(s, "reading profile"));
    return std::optional<std::string>(std::move(value));
  }

  absl::Status Commit(const CommitBatch& batch) override {
    if (batch.empty()) return absl::OkStatus();
    // One committer at a time keeps outbox sequence numbers in commit order.
    absl::MutexLock commit(&commit_mu_);
    if (PROFILED_FAILPOINT_ERROR("store_write")) {
      write_failed_ = true;
      return absl::UnavailableError("committing batch: IO error: injected (failpoint store_write)");
    }
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    if (write_failed_) return absl::UnavailableError("the store's last write failed: recovering");
    // One buffer for every commit, sized up front when it is too small: a
    // large batch's buffer would otherwise be regrown (and copied) a dozen
    // times, and a new one each commit is fresh memory, page-faulted in
    // again every time (12% of the process in a flat-out run). A quarter
    // over the need: batches that grow a little each time (a backlog
    // building) would otherwise get a fresh buffer every commit. The
    // headroom stops at the kept bound, so it never makes a buffer that is
    // released after the commit.
    rocksdb::WriteBatch& wb = commit_batch_;
    if (const size_t needed = EstimatedBytes(batch); wb.Data().capacity() < needed) {
      wb = rocksdb::WriteBatch(
          std::min(needed + needed / 4, std::max(needed, kKeptCommitBufferBytes)));
    } else {
      wb.Clear();
    }
    for (const std::string& id : batch.deleted_profiles) {
      RETURN_IF_ERROR(ToStatus(wb.Delete(profiles(), id), "batching profile delete"));
    }
    for (const auto& [id, bytes] : batch.profiles) {
      RETURN_IF_ERROR(ToStatus(wb.Put(profiles(), id, bytes), "batching profile"));
    }
    for (const auto& [key, id] : batch.identity_links) {
      RETURN_IF_ERROR(ToStatus(wb.Put(identities(), key, id), "batching identity link"));
    }
    uint64_t audit_seq = next_audit_seq_;
    for (const auto& [id, record] : batch.audit) {
      std::string key = id;
      key.push_back('\0');
      key += OutboxKey(audit_seq++);
      RETURN_IF_ERROR(ToStatus(wb.Put(merges(), key, record), "batching merge audit"));
    }
    if (!batch.audit.empty()) {
      RETURN_IF_ERROR(ToStatus(wb.Put(defaults(), kNextAuditSeqKey, OutboxKey(audit_seq)),
                               "batching audit sequence"));
    }
    const uint64_t profile_count = static_cast<uint64_t>(
        std::max<int64_t>(static_cast<int64_t>(profile_count_.load()) + batch.profiles_added, 0));
    if (batch.profiles_added != 0) {
      RETURN_IF_ERROR(ToStatus(wb.Put(defaults(), kProfileCountKey, OutboxKey(profile_count)),
                               "batching profile count"));
    }
    for (const std::string& request : batch.purges_pending) {
      RETURN_IF_ERROR(ToStatus(wb.Put(defaults(), kPurgePrefix + request, ""), "batching purge"));
    }
    for (const std::string& request : batch.purges_done) {
      RETURN_IF_ERROR(ToStatus(wb.Delete(defaults(), kPurgePrefix + request), "batching purge"));
    }
    if (batch.changelog_marker.has_value()) {
      RETURN_IF_ERROR(ToStatus(wb.Put(defaults(), kChangelogMarkerKey, *batch.changelog_marker),
                               "batching changelog marker"));
    }
    uint64_t seq = next_outbox_seq_;
    for (const std::string& record : batch.outbox) {
      RETURN_IF_ERROR(ToStatus(wb.Put(outbox(), OutboxKey(seq++), record), "batching outbox"));
    }
    for (const std::string& key : batch.identity_links_deleted) {
      RETURN_IF_ERROR(ToStatus(wb.Delete(identities(), key), "batching identity unlink"));
    }
    for (const std::string& key : batch.audit_deleted) {
      RETURN_IF_ERROR(ToStatus(wb.Delete(merges(), key), "batching audit delete"));
    }
    for (const auto& [hash, until] : batch.suppressions) {
      RETURN_IF_ERROR(
          ToStatus(wb.Put(suppressions(), hash, OutboxKey(static_cast<uint64_t>(until))),
                   "batching suppression"));
    }
    for (const auto& [due, id] : batch.timers_deleted) {
      RETURN_IF_ERROR(ToStatus(wb.Delete(timers(), TimerKey(due, id)), "batching timer delete"));
    }
    for (const Timer& t : batch.timers_set) {
      RETURN_IF_ERROR(ToStatus(
          wb.Put(timers(), TimerKey(t.due_ms, t.profile_id), PositionKey(t.topic, t.partition)),
          "batching timer"));
    }
    for (const PartitionPosition& p : batch.positions) {
      RETURN_IF_ERROR(
          ToStatus(wb.Put(offsets(), PositionKey(p.topic, p.partition), PositionValue(p)),
                   "batching offsets"));
    }
    absl::Status written = ToStatus(db()->Write(write_options_, &wb), "committing batch");
    // The buffer is kept for the next commit, up to a bound: one huge
    // catch-up batch does not pin its memory for the life of the process.
    if (wb.Data().capacity() > kKeptCommitBufferBytes) {
      wb = rocksdb::WriteBatch();
    } else {
      wb.Clear();
    }
    if (!written.ok()) {
      write_failed_ = true;
      return written;
    }
    next_outbox_seq_ = seq;
    next_audit_seq_ = audit_seq;
    profile_count_.store(profile_count);
    outbox_depth_.fetch_add(batch.outbox.size());
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<PartitionPosition>> LoadPositions() override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    std::vector<PartitionPosition> out;
    std::unique_ptr<rocksdb::Iterator> it(db()->NewIterator({}, offsets()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      rocksdb::Slice k = it->key();
      rocksdb::Slice v = it->value();
      if (k.size() < 5 || v.size() != 16) return absl::DataLossError("malformed offsets entry");
      PartitionPosition p;
      DecodePositionKey({k.data(), k.size()}, p.topic, p.partition);
      p.next_offset = static_cast<int64_t>(GetBigEndian64(v.data()));
      p.stream_time_ms = static_cast<int64_t>(GetBigEndian64(v.data() + 8));
      out.push_back(std::move(p));
    }
    RETURN_IF_ERROR(ToStatus(it->status(), "reading offsets"));
    return out;
  }

  absl::Status ReadOutbox(uint64_t from_seq, size_t max, std::vector<OutboxEntry>& out) override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    out.clear();
    std::unique_ptr<rocksdb::Iterator> it(db()->NewIterator({}, outbox()));
    for (it->Seek(OutboxKey(from_seq)); it->Valid() && out.size() < max; it->Next()) {
      out.push_back({GetBigEndian64(it->key().data()), it->value().ToString()});
    }
    return ToStatus(it->status(), "reading outbox");
  }

  absl::Status DeleteOutbox(const std::vector<uint64_t>& seqs) override {
    if (seqs.empty()) return absl::OkStatus();
    // Writes go one at a time: after a failed write RocksDB refuses the next
    // with its background error, but a write racing the failure into the
    // same WAL writer trips an assertion in Debian's RocksDB build.
    absl::MutexLock commit(&commit_mu_);
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    if (write_failed_) return absl::UnavailableError("the store's last write failed: recovering");
    rocksdb::WriteBatch wb;
    for (uint64_t seq : seqs) {
      RETURN_IF_ERROR(ToStatus(wb.Delete(outbox(), OutboxKey(seq)), "batching outbox delete"));
    }
    if (absl::Status s = ToStatus(db()->Write(write_options_, &wb), "deleting outbox entries");
        !s.ok()) {
      write_failed_ = true;
      return s;
    }
    outbox_depth_.fetch_sub(seqs.size());
    return absl::OkStatus();
  }

  uint64_t OutboxDepth() const override { return outbox_depth_.load(); }

  bool WriteFailed() const override {
    absl::MutexLock commit(&commit_mu_);
    return write_failed_;
  }

  uint64_t NextOutboxSeq() const override {
    absl::MutexLock commit(&commit_mu_);
    return next_outbox_seq_;
  }

  absl::StatusOr<uint64_t> OldestOutboxSeq() override {
    const uint64_t next = NextOutboxSeq();
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    std::unique_ptr<rocksdb::Iterator> it(db()->NewIterator({}, outbox()));
    it->SeekToFirst();
    RETURN_IF_ERROR(ToStatus(it->status(), "reading outbox"));
    return it->Valid() ? GetBigEndian64(it->key().data()) : next;
  }

  StoreStats Stats() const override {
    absl::ReaderMutexLock lock(&db_mu_);
    StoreStats stats;
    stats.profiles = profile_count_.load();
    if (open_.db == nullptr) return stats;  // closed: only the count is known
    uint64_t value = 0;
    for (rocksdb::ColumnFamilyHandle* h : open_.handles) {
      if (db()->GetIntProperty(h, rocksdb::DB::Properties::kLiveSstFilesSize, &value)) {
        stats.live_sst_bytes += value;
      }
      if (db()->GetIntProperty(h, rocksdb::DB::Properties::kSizeAllMemTables, &value)) {
        stats.memtable_bytes += value;
      }
      if (db()->GetIntProperty(h, rocksdb::DB::Properties::kEstimatePendingCompactionBytes,
                               &value)) {
        stats.pending_compaction_bytes += value;
      }
    }
    if (db()->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &value)) {
      stats.writes_stopped = value != 0;
    }
    if (const auto& statistics = db_options_.statistics; statistics != nullptr) {
      stats.block_cache_hits = statistics->getTickerCount(rocksdb::BLOCK_CACHE_HIT);
      stats.block_cache_misses = statistics->getTickerCount(rocksdb::BLOCK_CACHE_MISS);
      stats.write_stall_micros = statistics->getTickerCount(rocksdb::STALL_MICROS);
    }
    return stats;
  }

  absl::Status ReadProfiles(std::string_view after, size_t max,
                            std::vector<std::pair<std::string, std::string>>& out) override {
    out.clear();
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    // A background scan: the pipeline's hot blocks stay in the cache.
    rocksdb::ReadOptions scan;
    scan.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db()->NewIterator(scan, profiles()));
    it->Seek(rocksdb::Slice(after.data(), after.size()));
    if (it->Valid() && !after.empty() && it->key() == rocksdb::Slice(after.data(), after.size())) {
      it->Next();
    }
    for (; it->Valid() && out.size() < max; it->Next()) {
      out.emplace_back(it->key().ToString(), it->value().ToString());
    }
    return ToStatus(it->status(), "scanning profiles");
  }

  absl::StatusOr<std::optional<std::string>> ReadSetting(std::string_view name) override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    std::string value;
    rocksdb::Status got = db()->Get({}, defaults(), SettingKey(name), &value);
    if (got.IsNotFound()) return std::nullopt;
    RETURN_IF_ERROR(ToStatus(got, "reading setting " + std::string(name)));
    return value;
  }

  absl::Status WriteSetting(std::string_view name, std::string_view value) override {
    absl::MutexLock commit(&commit_mu_);
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    if (write_failed_) return absl::UnavailableError("the store's last write failed: recovering");
    absl::Status s = ToStatus(db()->Put(write_options_, defaults(), SettingKey(name),
                                        rocksdb::Slice(value.data(), value.size())),
                              "writing setting " + std::string(name));
    if (!s.ok()) write_failed_ = true;
    return s;
  }

  absl::Status ForEachProfile(
      const std::function<bool(std::string_view, std::string_view)>& fn) override {
    absl::ReaderMutexLock lock(&db_mu_);
    if (open_.db == nullptr) return Closed();
    std::unique_ptr<rocksdb::Iterator> it(db()->NewIterator({}, profiles()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (!fn(std::string_view(it->key().data(), it->key().size()),
              std::string_view(it->value().data(), it->value().size()))) {
        break;
      }
    }
    return ToStatus(it->status(), "scanning profiles");
  }

 private:
  // While a reopen has failed, every call answers this until Recover opens
  // the database again.
  static absl::Status Closed() {
    return absl::UnavailableError("the store is closed: reopening it failed; recovering");
  }

  // Opens the database and reads its counters.
  absl::Status OpenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_, db_mu_) {
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    RETURN_IF_ERROR(ToStatus(rocksdb::DB::Open(db_options_, options_.path, cfs_, &handles, &raw),
                             absl::StrCat("opening store at ", options_.path)));
    open_.db.reset(raw);
    open_.handles = std::move(handles);
    if (absl::Status s = InitLocked(); !s.ok()) {
      open_.FlushAndClose();
      return s;
    }
    return absl::OkStatus();
  }

  rocksdb::DB* db() const ABSL_SHARED_LOCKS_REQUIRED(db_mu_) { return open_.db.get(); }
  rocksdb::ColumnFamilyHandle* defaults() const ABSL_SHARED_LOCKS_REQUIRED(db_mu_) {
    return open_.handles[0];
  }
  rocksdb::ColumnFamilyHandle* profiles() const ABSL_SHARED_LOCKS_REQUIRED(db_mu_) {
    return open_.handles[1];
  }
  rocksdb::ColumnFamilyHandle* offsets() const ABSL_SHARED_LOCKS_REQUIRED(db_mu_) {
    return open_.handles[2];
  }
  rocksdb::ColumnFamilyHandle* outbox() const ABSL_SHARED_LOCKS_REQUIRED(db_mu_) {
    return open_.handles[3];
  }
  rocksdb::ColumnFamilyHandle* identities() const ABSL_SHARED_LOCKS_REQUIRED(db_mu_) {
    return open_.handles[4];
  }
  rocksdb::ColumnFamilyHandle* merges() const ABSL_SHARED_LOCKS_REQUIRED(db_mu_) {
    return open_.handles[5];
  }
  rocksdb::ColumnFamilyHandle* timers() const ABSL_SHARED_LOCKS_REQUIRED(db_mu_) {
    return open_.handles[6];
  }
  rocksdb::ColumnFamilyHandle* suppressions() const ABSL_SHARED_LOCKS_REQUIRED(db_mu_) {
    return open_.handles[7];
  }

  const StoreOptions options_;
  const rocksdb::Options db_options_;
  const std::vector<rocksdb::ColumnFamilyDescriptor> cfs_;
  rocksdb::WriteOptions write_options_;
  // The open database: replaced by Recover and Purge, which hold the lock
  // exclusively; every other call holds it shared.
  mutable absl::Mutex db_mu_;
  OpenDb open_ ABSL_GUARDED_BY(db_mu_);
  mutable absl::Mutex commit_mu_ ABSL_ACQUIRED_BEFORE(db_mu_);    // every write holds it
  rocksdb::WriteBatch commit_batch_ ABSL_GUARDED_BY(commit_mu_);  // reused by every commit
  // A write failed and Recover has not proved the store since: writes are
  // refused before they reach RocksDB's failed WAL writer.
  bool write_failed_ ABSL_GUARDED_BY(commit_mu_) = false;
  uint64_t next_outbox_seq_ ABSL_GUARDED_BY(commit_mu_) = 1;
  uint64_t next_audit_seq_ ABSL_GUARDED_BY(commit_mu_) = 1;
  std::atomic<uint64_t> outbox_depth_{0};
  std::atomic<uint64_t> profile_count_{0};  // written under commit_mu_
};

}  // namespace

std::string IdentityKey(std::string_view kind, std::string_view value) {
  std::string key(kind);
  key.push_back('\0');
  key.append(value);
  return key;
}

rocksdb::ColumnFamilyOptions ProfileColumnFamilyOptions(
    std::shared_ptr<rocksdb::Cache> block_cache) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = std::move(block_cache);
  // Point lookups (MultiGet by id or identity) dominate: a bloom filter
  // skips most files a key is not in.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter blocks stay out of the block cache, held by the open
  // tables (~4 MB per million profiles): in a small cache the multi-MB
  // blocks of a large file were evicted and re-read, ~1 ms per lookup.
  rocksdb::ColumnFamilyOptions cf;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Rewritten often: the young levels are compacted again soon, so stay
  // uncompressed; LZ4 below. (ZSTD at the bottom saved little disk at a
  // read cost the two cores could not spare: docs/decisions.md 36.)
  cf.level_compaction_dynamic_level_bytes = true;
  cf.compression_per_level = {rocksdb::kNoCompression,  rocksdb::kNoCompression,
                              rocksdb::kLZ4Compression, rocksdb::kLZ4Compression,
                              rocksdb::kLZ4Compression, rocksdb::kLZ4Compression,
                              rocksdb::kLZ4Compression};
  return cf;
}

absl::Status StoreOptions::Validate() const {
  if (path.empty()) return absl::InvalidArgumentError("path: is required");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ProfileStore>> ProfileStore::Open(const StoreOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  // Tickers only (cache hits, stall time): histograms and timers cost more.
  db_options.statistics = rocksdb::CreateDBStatistics();
  db_options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);

  db_options.db_write_buffer_size = options.memtable_bytes;
  db_options.bytes_per_sync = 1 << 20;  // write back steadily, not in bursts
  rocksdb::ColumnFamilyOptions profiles_cf =
      ProfileColumnFamilyOptions(rocksdb::NewLRUCache(options.block_cache_bytes));
  if (!options.compression) {
    profiles_cf.compression_per_level.clear();
    profiles_cf.compression = rocksdb::kNoCompression;
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const std::string& name : ColumnFamilyNames()) {
    const bool tuned = name == kProfilesCf || name == kIdentitiesCf;
    rocksdb::ColumnFamilyOptions cf = tuned ? profiles_cf : rocksdb::ColumnFamilyOptions();
    if (!options.compression) cf.compression = rocksdb::kNoCompression;
    cfs.emplace_back(name, cf);
  }
  auto store = std::make_unique<RocksDbProfileStore>(options, db_options, std::move(cfs));
  RETURN_IF_ERROR(store->Open());
  return std::unique_ptr<ProfileStore>(std::move(store));
}

void PurgeKeys::Add(const PurgeKeys& other) {
  everything = everything || other.everything;
  profile_ids.insert(profile_ids.end(), other.profile_ids.begin(), other.profile_ids.end());
  identity_keys.insert(identity_keys.end(), other.identity_keys.begin(), other.identity_keys.end());
  audit_keys.insert(audit_keys.end(), other.audit_keys.begin(), other.audit_keys.end());
  timers.insert(timers.end(), other.timers.begin(), other.timers.end());
}

}  // namespace profiled::store
