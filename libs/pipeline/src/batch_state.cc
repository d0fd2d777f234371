#include "batch_state.h"

#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/codec/state_codec.h"

namespace profiled::pipeline::internal {

absl::Status BatchState::Preload(const std::vector<core::Identity>& ids) {
  std::vector<std::string> keys;
  for (const core::Identity& id : ids) {
    std::string key = store::IdentityKey(id.kind, id.value);
    if (!graph_.contains(key)) {
      graph_.emplace(key, std::nullopt);
      keys.push_back(std::move(key));
    }
  }
  std::vector<std::optional<std::string>> found;
  RETURN_IF_ERROR(store_.MultiGetIdentities(keys, found));
  std::vector<std::string> profile_ids;
  absl::flat_hash_set<std::string> wanted;
  for (size_t i = 0; i < keys.size(); ++i) {
    graph_[keys[i]] = found[i];
    if (found[i] && !profiles_.contains(*found[i]) && wanted.insert(*found[i]).second) {
      profile_ids.push_back(*found[i]);
    }
  }
  std::vector<std::optional<std::string>> states;
  RETURN_IF_ERROR(store_.MultiGet(profile_ids, states));
  for (size_t i = 0; i < profile_ids.size(); ++i) {
    if (!states[i]) {
      // Cannot happen (graph and profiles are written together): treat the
      // identity as unmapped rather than stop the pipeline.
      LogError("identity graph points to missing profile ", profile_ids[i]);
      continue;
    }
    ASSIGN_OR_RETURN(core::Profile p, codec::DecodeProfileState(*states[i]));
    profiles_.emplace(profile_ids[i], std::move(p));
  }
  return absl::OkStatus();
}

std::optional<std::string> BatchState::ProfileOf(const core::Identity& identity) {
  auto it = graph_.find(store::IdentityKey(identity.kind, identity.value));
  if (it == graph_.end() || !it->second || !profiles_.contains(*it->second)) return std::nullopt;
  return it->second;
}

const core::Profile* BatchState::Find(const std::string& profile_id) {
  auto it = profiles_.find(profile_id);
  return it == profiles_.end() ? nullptr : &it->second;
}

core::Profile& BatchState::Create(const std::string& id) {
  return profiles_.insert_or_assign(id, core::Profile::New(id)).first->second;
}

core::Profile& BatchState::Touch(const std::string& id, const core::PartitionKey& partition) {
  if (touched_set_.insert(id).second) touched_.push_back(id);
  partition_of_[id] = partition;
  return profiles_.at(id);
}

core::Profile BatchState::Take(const std::string& id) {
  auto node = profiles_.extract(id);
  deleted_.push_back(id);
  return std::move(node.mapped());
}

void BatchState::Link(const core::Identity& identity, const std::string& profile_id) {
  std::string key = store::IdentityKey(identity.kind, identity.value);
  graph_[key] = profile_id;
  new_links_[std::move(key)] = profile_id;
}

void BatchState::Unlink(const core::Identity& identity) {
  std::string key = store::IdentityKey(identity.kind, identity.value);
  graph_[key] = std::nullopt;
  new_links_.erase(key);
  unlinked_.push_back(std::move(key));
}

std::vector<std::pair<core::Profile*, const core::PartitionKey*>> BatchState::Changed() {
  std::vector<std::pair<core::Profile*, const core::PartitionKey*>> out;
  for (const std::string& id : touched_) {
    auto it = profiles_.find(id);
    if (it != profiles_.end()) out.emplace_back(&it->second, &partition_of_.at(id));
  }
  return out;
}

}  // namespace profiled::pipeline::internal
