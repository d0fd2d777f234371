// ProfileStore: profiles, consumed positions and the outbox in one RocksDB.
//
// Column families:
//   profiles  profile id -> stored profile bytes (codec/state_codec.h)
//   offsets   topic \0 partition(be32) -> next offset to consume + stream time
//   outbox    seq(be64) -> serialized OutboxRecord waiting to be published
//   identities  kind \0 value -> canonical profile id (the identity graph)
//   merges    profile id \0 seq(be64) -> merge audit record
//   timers    due ms(be64) profile id -> topic \0 partition(be32) of the
//             profile's latest event (whose clock decides when it is due)
//   suppressions  HMAC of an erased identity -> until ms(be64)
//
// Commit() writes the new profile states, the outbox records and the
// consumed positions of one batch in a single WriteBatch, so after a crash
// (kill -9 at any moment) the store holds either all of a batch or none of
// it: no event is lost or counted twice, and no update is lost.
//
//   ASSIGN_OR_RETURN(auto store, ProfileStore::Open(options));
//   CommitBatch batch;
//   batch.profiles.push_back({id, bytes});
//   batch.outbox.push_back(record_bytes);
//   batch.positions.push_back({"events", 0, /*next_offset=*/42, stream_time});
//   RETURN_IF_ERROR(store->Commit(batch));
//
// Thread-safety: all methods may be called from any thread (RocksDB is
// thread-safe); the pipeline commits from one thread and the publisher reads
// and deletes the outbox from another. Recover and Purge may reopen the
// database: they wait for calls in progress and hold new ones meanwhile.
//
// Closing flushes every memtable, so a clean stop leaves nothing in the
// write-ahead log.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace profiled::store {

struct StoreOptions {
  // Directory of the database; created if missing. Required.
  std::string path;
  // LRU block cache shared by all column families. Default: 64 MiB.
  size_t block_cache_bytes = 64ull << 20;
  // Memtables of all column families together (RocksDB flushes the largest
  // when they reach it). Default: 256 MiB.
  size_t memtable_bytes = 256ull << 20;
  // fsync the WAL on every commit. A process crash (kill -9) never loses a
  // committed batch either way; this protects against power loss at the cost
  // of throughput. Default: false.
  bool sync_writes = false;
  // LZ4 below the two youngest levels. Off only where bytes on disk must be
  // readable as written (the erasure test scans them). Default: true.
  bool compression = true;

  [[nodiscard]] absl::Status Validate() const;
};

struct PartitionPosition {
  std::string topic;
  int32_t partition = 0;
  // The next offset to consume.
  int64_t next_offset = 0;
  // Largest event time applied from this partition, ms.
  int64_t stream_time_ms = 0;
};

// RocksDB's own view of the store, for /metrics. Sizes are estimates.
struct StoreStats {
  uint64_t live_sst_bytes = 0;            // SST files of the current version
  uint64_t memtable_bytes = 0;            // active and unflushed memtables
  uint64_t pending_compaction_bytes = 0;  // what compaction still has to rewrite
  uint64_t profiles = 0;                  // profiles stored (exact: kept with every commit)
  uint64_t block_cache_hits = 0;          // cumulative since open
  uint64_t block_cache_misses = 0;        // cumulative since open
  uint64_t write_stall_micros = 0;        // cumulative time writes were delayed or stopped
  bool writes_stopped = false;            // writes are stopped right now
};

struct OutboxEntry {
  uint64_t seq = 0;
  std::string record;
};

// A profile's pending time-driven re-evaluation.
struct Timer {
  int64_t due_ms = 0;
  std::string profile_id;
  std::string topic;  // partition whose clock the timer runs on
  int32_t partition = 0;
  bool operator==(const Timer&) const = default;
};

// Keys whose old values must leave the disk after an erasure (Purge).
struct PurgeKeys {
  std::vector<std::string> profile_ids;                 // profiles, and their audit prefixes
  std::vector<std::string> identity_keys;               // graph keys (IdentityKey)
  std::vector<std::string> audit_keys;                  // single audit records kept elsewhere
  std::vector<std::pair<int64_t, std::string>> timers;  // (due ms, profile id)
  // Everything, when the keys are not known (a purge lost to a restart).
  bool everything = false;
  void Add(const PurgeKeys& other);
  bool empty() const {
    return !everything && profile_ids.empty() && identity_keys.empty() && audit_keys.empty() &&
           timers.empty();
  }
};

struct CommitBatch {
  std::vector<std::pair<std::string, std::string>> profiles;        // id -> state bytes
  std::vector<std::string> deleted_profiles;                        // ids (absorbed by merges)
  std::vector<std::pair<std::string, std::string>> identity_links;  // graph key -> profile id
  std::vector<std::pair<std::string, std::string>> audit;           // profile id -> record bytes
  std::vector<std::string> outbox;                                  // records, in order
  std::vector<PartitionPosition> positions;
  std::vector<Timer> timers_set;
  std::vector<std::pair<int64_t, std::string>> timers_deleted;  // (due ms, profile id)
  // Erasure: graph keys and audit keys to delete, suppressions to add.
  std::vector<std::string> identity_links_deleted;
  std::vector<std::string> audit_deleted;
  std::vector<std::pair<std::string, int64_t>> suppressions;  // keyed hash -> until ms
  // Profiles created minus profiles deleted by this batch: the stored count
  // moves with the batch, so it is exact after any crash.
  int64_t profiles_added = 0;
  // Erasure requests whose purge from disk is due (added) or done (removed):
  // kept in the store so a purge a crash interrupted is not forgotten.
  std::vector<std::string> purges_pending;
  std::vector<std::string> purges_done;
  // Partitioned mode: the changelog marker this batch ends with, kept so a
  // partition that comes back can tell whether its local copy is current.
  std::optional<std::string> changelog_marker;
  bool empty() const {
    return profiles.empty() && deleted_profiles.empty() && identity_links.empty() &&
           audit.empty() && outbox.empty() && positions.empty() && timers_set.empty() &&
           timers_deleted.empty() && identity_links_deleted.empty() && audit_deleted.empty() &&
           suppressions.empty() && profiles_added == 0 && purges_pending.empty() &&
           purges_done.empty() && !changelog_marker.has_value();
  }
};

// The identity graph key of (kind, value).
std::string IdentityKey(std::string_view kind, std::string_view value);

class ProfileStore {
 public:
  // Opens (creating if needed) the database at options.path.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ProfileStore>> Open(
      const StoreOptions& options);
  virtual ~ProfileStore() = default;

  // Stored bytes of each id (nullopt where absent), in the order of `ids`.
  [[nodiscard]] virtual absl::Status MultiGet(const std::vector<std::string>& ids,
                                              std::vector<std::optional<std::string>>& out) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::optional<std::string>> Get(std::string_view id) = 0;

  // Profile ids that each graph key maps to (nullopt where unmapped), in order.
  [[nodiscard]] virtual absl::Status MultiGetIdentities(
      const std::vector<std::string>& keys, std::vector<std::optional<std::string>>& out) = 0;

  // Up to `max` timers due at or before `due_by_ms`, earliest first.
  [[nodiscard]] virtual absl::Status ReadDueTimers(int64_t due_by_ms, size_t max,
                                                   std::vector<Timer>& out) = 0;

  // Until when each keyed hash is suppressed (nullopt where it is not), in order.
  [[nodiscard]] virtual absl::Status MultiGetSuppressions(
      const std::vector<std::string>& hashes, std::vector<std::optional<int64_t>>& out) = 0;

  // True when any suppression was ever stored (so events need checking).
  [[nodiscard]] virtual absl::StatusOr<bool> HasSuppressions() = 0;

  // The per-deployment secret keying suppression hashes: created (random)
  // on first use and kept in the store unless the caller provides one.
  [[nodiscard]] virtual absl::StatusOr<std::string> DeploymentSecret() = 0;

  // Audit records of one profile with their keys (for erasure), oldest first.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
  ReadAuditEntries(std::string_view profile_id) = 0;

  // Compacts every column family fully (deleted data leaves the files).
  [[nodiscard]] virtual absl::Status CompactAll() = 0;

  // Makes deleted data of `keys` unreadable on disk: flushes every memtable
  // (the write-ahead log holding them becomes obsolete and is deleted),
  // compacts their key ranges (and the whole outbox) to the bottom level so
  // no file keeps an old value or a delete marker naming them, then reopens
  // the database so a new MANIFEST holds no file boundary that names them.
  [[nodiscard]] virtual absl::Status Purge(const PurgeKeys& keys) = 0;
  // Erasure request ids committed with purges_pending and not yet done.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> PendingPurges() = 0;
  // The last committed CommitBatch::changelog_marker, if any.
  [[nodiscard]] virtual absl::StatusOr<std::optional<std::string>> LoadChangelogMarker() = 0;

  // After a failed write (disk full, I/O error): clears RocksDB's error
  // state, reopening the database if needed, and proves a write works.
  // Unavailable while writes still fail.
  [[nodiscard]] virtual absl::Status Recover() = 0;

  // Merge audit records of one profile, oldest first.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> ReadAudit(
      std::string_view profile_id) = 0;

  // Atomically writes `batch`; outbox records get consecutive sequence numbers.
  [[nodiscard]] virtual absl::Status Commit(const CommitBatch& batch) = 0;

  // All stored positions.
  [[nodiscard]] virtual absl::StatusOr<std::vector<PartitionPosition>> LoadPositions() = 0;

  // Up to `max` outbox entries with seq >= from_seq, in seq order.
  [[nodiscard]] virtual absl::Status ReadOutbox(uint64_t from_seq, size_t max,
                                                std::vector<OutboxEntry>& out) = 0;
  // Deletes published entries.
  [[nodiscard]] virtual absl::Status DeleteOutbox(const std::vector<uint64_t>& seqs) = 0;
  // Entries currently in the outbox.
  virtual uint64_t OutboxDepth() const = 0;
  // The sequence number the next committed outbox record gets.
  virtual uint64_t NextOutboxSeq() const = 0;
  // A write failed (a commit, or deleting published entries) and nothing
  // writes until Recover(): an idle owner must notice too.
  virtual bool WriteFailed() const = 0;
  // The smallest sequence number still in the outbox (NextOutboxSeq when empty).
  [[nodiscard]] virtual absl::StatusOr<uint64_t> OldestOutboxSeq() = 0;
  // Sizes, compaction debt, cache and stall figures; cheap, any thread.
  virtual StoreStats Stats() const = 0;

  // Up to `max` profiles whose ids come after `after` ("" = from the first),
  // in id order: a scan in pieces that holds nothing between them.
  [[nodiscard]] virtual absl::Status ReadProfiles(
      std::string_view after, size_t max, std::vector<std::pair<std::string, std::string>>& out) = 0;

  // Small named values kept beside the data (the fitted purchase model):
  // the value, or nullopt when none was written.
  [[nodiscard]] virtual absl::StatusOr<std::optional<std::string>> ReadSetting(
      std::string_view name) = 0;
  [[nodiscard]] virtual absl::Status WriteSetting(std::string_view name,
                                                  std::string_view value) = 0;

  // Calls `fn(id, bytes)` for every stored profile, in id order; stops early
  // when fn returns false.
  [[nodiscard]] virtual absl::Status ForEachProfile(
      const std::function<bool(std::string_view, std::string_view)>& fn) = 0;
};

}  // namespace profiled::store
