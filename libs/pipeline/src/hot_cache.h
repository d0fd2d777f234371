// HotCache: decoded profiles and identity-graph entries of recent batches, so
// a hot profile skips the MultiGet and the decode. Private to the pipeline;
// one thread.
//
// It also holds state that is not in the store yet: a batch's entries are
// written here when the batch is handed to the committer, with the batch's
// sequence number, and stay pinned (never evicted) until Committed() covers
// that number — until then they are the only up-to-date copy. Entries read
// from the store, or committed, are evicted least recently used first once
// the cache holds more than its budget.
//
//   HotCache cache(256 << 20);
//   if (cache.TakeProfile(id, p) == HotCache::kMiss) { ...read the store... }
//   cache.PutProfile(id, std::move(p), charge, /*seq=*/7);   // pinned
//   cache.Committed(7);                                       // evictable
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/node_hash_map.h"
#include "profiled/core/profile.h"

namespace profiled::pipeline::internal {

class HotCache {
 public:
  enum Lookup { kMiss, kPresent, kAbsent };

  // A profile moved out of the cache, with the batch that last wrote it.
  struct Taken {
    core::Profile profile;
    size_t charge = 0;
    uint64_t seq = 0;
  };

  explicit HotCache(size_t max_bytes) : max_bytes_(max_bytes) {}
  HotCache(const HotCache&) = delete;
  HotCache& operator=(const HotCache&) = delete;
  ~HotCache() { Clear(); }

  // Moves a cached profile out (the batch owns it while it works on it).
  // kAbsent: known deleted by a batch; kMiss: ask the store.
  Lookup TakeProfile(const std::string& id, Taken& out);
  void PutProfile(const std::string& id, core::Profile profile, size_t charge, uint64_t seq);
  // Records that the profile is deleted (merged away, erased, expired).
  void PutProfileAbsent(const std::string& id, uint64_t seq);

  // The cached graph entry of `key`: kPresent sets `profile_id`; kAbsent:
  // known unmapped; kMiss: ask the store.
  Lookup FindLink(const std::string& key, std::string& profile_id);
  void PutLink(const std::string& key, std::optional<std::string> profile_id, uint64_t seq);

  // Batches up to `seq` are in the store: their entries may be evicted.
  void Committed(uint64_t seq);
  // Forgets everything (after a failed commit the store is the truth again).
  void Clear();

  size_t bytes() const { return bytes_; }
  size_t entries() const { return map_.size(); }
  // Profile lookups so far: found (or known deleted) / not cached.
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

  // What a decoded profile costs in memory, estimated from its encoded size.
  static size_t ProfileCharge(size_t encoded_bytes) { return encoded_bytes * 4 + 256; }

 private:
  struct Entry {
    std::optional<core::Profile> profile;  // profiles: nullopt = deleted
    std::optional<std::string> link;       // graph entries: nullopt = unmapped
    size_t charge = 0;
    uint64_t seq = 0;
    // Recency list, most recent at head_.
    Entry* newer = nullptr;
    Entry* older = nullptr;
    const std::string* key = nullptr;
  };

  Entry& Upsert(const std::string& key, size_t charge, uint64_t seq);
  void Unlist(Entry& e);
  void PushNewest(Entry& e);
  void Erase(absl::node_hash_map<std::string, Entry>::iterator it);
  void EvictOverBudget();

  size_t max_bytes_;
  size_t bytes_ = 0;
  uint64_t committed_seq_ = 0;
  uint64_t hits_ = 0, misses_ = 0;
  // Profiles are keyed "p" + id, graph entries "l" + graph key.
  absl::node_hash_map<std::string, Entry> map_;
  Entry* newest_ = nullptr;
  Entry* oldest_ = nullptr;
};

}  // namespace profiled::pipeline::internal
