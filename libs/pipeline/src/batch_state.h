// BatchState: the identity graph and profiles one batch works on — taken
// from the hot cache or loaded with two MultiGets up front, changed in memory
// as events resolve, written back in the batch's WriteBatch and returned to
// the cache. Two sides: the identity side (graph links and each profile's
// IdentityRecord) that the resolve stage reads and changes, and the profiles
// the apply stage changes. Private to the pipeline.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "profiled/core/clock.h"
#include "profiled/core/profile.h"
#include "profiled/identity/resolver.h"
#include "profiled/store/profile_store.h"
#include "hot_cache.h"

namespace profiled::pipeline::internal {

class BatchState final : public identity::IdentityGraph {
 public:
  BatchState(store::ProfileStore& store, HotCache& cache) : store_(store), cache_(cache) {}

  // Loads the graph entries of `ids` and every profile they point to, from
  // the cache where it has them, else from the store.
  [[nodiscard]] absl::Status Preload(const std::vector<core::Identity>& ids);

  // The identity side.
  std::optional<std::string> ProfileOf(const core::Identity& identity) override;
  const identity::IdentityRecord* Find(const std::string& profile_id) override;
  void Link(const core::Identity& identity, const std::string& profile_id) override;
  identity::IdentityRecord& Record(const std::string& profile_id) override;
  identity::IdentityRecord TakeRecord(const std::string& profile_id) override;
  // Removes `identity` from the graph (erasure).
  void Unlink(const core::Identity& identity);

  // The profile side.
  // A loaded or created profile; null if there is none.
  const core::Profile* Profile(const std::string& id) const;
  // A new, empty profile.
  core::Profile& CreateProfile(const std::string& id);
  // A loaded profile, marked changed; `partition` is where its event came from.
  core::Profile& Touch(const std::string& id, const core::PartitionKey& partition);
  // Removes a profile (merged away, erased) with its record; returns its state.
  core::Profile TakeProfile(const std::string& id);

  // Changed profiles still alive, in first-touch order, with their partition.
  std::vector<std::pair<core::Profile*, const core::PartitionKey*>> Changed();
  const std::vector<std::string>& deleted() const { return deleted_; }
  const absl::flat_hash_map<std::string, std::string>& new_links() const { return new_links_; }
  const std::vector<std::string>& unlinked() const { return unlinked_; }
  // Profiles created minus profiles taken (merged away, erased) so far.
  int64_t profiles_added() const { return profiles_added_; }

  // Hands every profile and graph entry back to the cache; what this batch
  // changed is pinned under `seq` until it commits. `charges`: the memory
  // estimate of each changed profile, by id.
  void ReturnTo(uint64_t seq, const absl::flat_hash_map<std::string, size_t>& charges);

 private:
  struct Loaded {
    size_t charge = 0;
    uint64_t seq = 0;  // the batch that last wrote it, if still pinned
  };
  store::ProfileStore& store_;
  HotCache& cache_;
  absl::flat_hash_map<std::string, std::optional<std::string>> graph_;  // key -> profile id
  std::vector<std::string> graph_read_;  // keys read from the store
  absl::flat_hash_map<std::string, std::string> new_links_;             // key -> profile id
  absl::flat_hash_map<std::string, core::Profile> profiles_;
  absl::flat_hash_map<std::string, identity::IdentityRecord> records_;
  absl::flat_hash_map<std::string, Loaded> loaded_;
  absl::flat_hash_map<std::string, core::PartitionKey> partition_of_;
  std::vector<std::string> touched_;  // first-touch order
  absl::flat_hash_set<std::string> touched_set_;
  std::vector<std::string> deleted_;
  std::vector<std::string> unlinked_;  // graph keys to delete
  int64_t profiles_added_ = 0;
};

}  // namespace profiled::pipeline::internal
