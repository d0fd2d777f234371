#include "batch_state.h"

#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/codec/state_codec.h"

namespace profiled::pipeline::internal {

absl::Status BatchState::Preload(const std::vector<core::Identity>& ids) {
  std::vector<std::string> keys;
  std::vector<std::string> profile_ids;
  absl::flat_hash_set<std::string> wanted;
  auto want = [&](const std::string& id) {
    if (!profiles_.contains(id) && wanted.insert(id).second) profile_ids.push_back(id);
  };
  std::string cached_id;
  for (const core::Identity& id : ids) {
    std::string key = store::IdentityKey(id.kind, id.value);
    if (graph_.contains(key)) continue;
    switch (cache_.FindLink(key, cached_id)) {
      case HotCache::kPresent:
        want(cached_id);
        graph_.emplace(std::move(key), cached_id);
        break;
      case HotCache::kAbsent:
        graph_.emplace(std::move(key), std::nullopt);
        break;
      case HotCache::kMiss:
        graph_.emplace(key, std::nullopt);
        keys.push_back(std::move(key));
        break;
    }
  }
  std::vector<std::optional<std::string>> found;
  RETURN_IF_ERROR(store_.MultiGetIdentities(keys, found));
  for (size_t i = 0; i < keys.size(); ++i) {
    graph_[keys[i]] = found[i];
    if (found[i]) want(*found[i]);
  }
  graph_read_ = std::move(keys);

  std::vector<std::string> missed;
  HotCache::Taken taken;
  for (std::string& id : profile_ids) {
    switch (cache_.TakeProfile(id, taken)) {
      case HotCache::kPresent:
        loaded_[id] = {taken.charge, taken.seq};
        records_.emplace(id, identity::IdentityRecord::Of(taken.profile));
        profiles_.emplace(std::move(id), std::move(taken.profile));
        break;
      case HotCache::kAbsent:
        break;  // deleted by an earlier batch: the identity is unmapped
      case HotCache::kMiss:
        missed.push_back(std::move(id));
        break;
    }
  }
  std::vector<std::optional<std::string>> states;
  RETURN_IF_ERROR(store_.MultiGet(missed, states));
  for (size_t i = 0; i < missed.size(); ++i) {
    if (!states[i]) {
      // Cannot happen (graph and profiles are written together): treat the
      // identity as unmapped rather than stop the pipeline.
      LogError("identity graph points to missing profile ", missed[i]);
      continue;
    }
    ASSIGN_OR_RETURN(core::Profile p, codec::DecodeProfileState(*states[i]));
    loaded_[missed[i]] = {HotCache::ProfileCharge(states[i]->size()), 0};
    records_.emplace(missed[i], identity::IdentityRecord::Of(p));
    profiles_.emplace(missed[i], std::move(p));
  }
  return absl::OkStatus();
}

void BatchState::ReturnTo(uint64_t seq, const absl::flat_hash_map<std::string, size_t>& charges) {
  for (const std::string& key : graph_read_) {
    if (!new_links_.contains(key)) cache_.PutLink(key, graph_.at(key), 0);
  }
  for (auto& [key, id] : new_links_) cache_.PutLink(key, id, seq);
  for (const std::string& key : unlinked_) cache_.PutLink(key, std::nullopt, seq);
  for (const std::string& id : deleted_) cache_.PutProfileAbsent(id, seq);
  for (auto& [id, profile] : profiles_) {
    const Loaded* loaded = nullptr;
    if (auto it = loaded_.find(id); it != loaded_.end()) loaded = &it->second;
    if (touched_set_.contains(id)) {
      auto charge = charges.find(id);
      cache_.PutProfile(id, std::move(profile),
                        charge != charges.end() ? charge->second
                        : loaded != nullptr ? loaded->charge
                                            : HotCache::ProfileCharge(0),
                        seq);
    } else if (loaded != nullptr) {
      cache_.PutProfile(id, std::move(profile), loaded->charge, loaded->seq);
    }
  }
  profiles_.clear();
  records_.clear();
}

std::optional<std::string> BatchState::ProfileOf(const core::Identity& identity) {
  auto it = graph_.find(store::IdentityKey(identity.kind, identity.value));
  if (it == graph_.end() || !it->second || !records_.contains(*it->second)) return std::nullopt;
  return it->second;
}

const identity::IdentityRecord* BatchState::Find(const std::string& profile_id) {
  auto it = records_.find(profile_id);
  return it == records_.end() ? nullptr : &it->second;
}

identity::IdentityRecord& BatchState::Record(const std::string& profile_id) {
  auto [it, inserted] = records_.try_emplace(profile_id);
  if (inserted) it->second.profile_id = profile_id;
  return it->second;
}

identity::IdentityRecord BatchState::TakeRecord(const std::string& profile_id) {
  auto node = records_.extract(profile_id);
  return node.empty() ? identity::IdentityRecord{profile_id} : std::move(node.mapped());
}

const core::Profile* BatchState::Profile(const std::string& id) const {
  auto it = profiles_.find(id);
  return it == profiles_.end() ? nullptr : &it->second;
}

core::Profile& BatchState::CreateProfile(const std::string& id) {
  ++profiles_added_;
  return profiles_.insert_or_assign(id, core::Profile::New(id)).first->second;
}

core::Profile& BatchState::Touch(const std::string& id, const core::PartitionKey& partition) {
  if (touched_set_.insert(id).second) touched_.push_back(id);
  partition_of_[id] = partition;
  return profiles_.at(id);
}

core::Profile BatchState::TakeProfile(const std::string& id) {
  auto node = profiles_.extract(id);
  records_.erase(id);
  deleted_.push_back(id);
  --profiles_added_;
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
