#include "hot_cache.h"

#include <algorithm>
#include <utility>

namespace profiled::pipeline::internal {

namespace {
constexpr size_t kLinkOverhead = 96;  // node, list links and two strings' headers

std::string ProfileKey(const std::string& id) { return "p" + id; }
std::string LinkKey(const std::string& key) { return "l" + key; }
}  // namespace

void HotCache::Unlist(Entry& e) {
  (e.newer != nullptr ? e.newer->older : newest_) = e.older;
  (e.older != nullptr ? e.older->newer : oldest_) = e.newer;
  e.newer = e.older = nullptr;
}

void HotCache::PushNewest(Entry& e) {
  e.older = newest_;
  e.newer = nullptr;
  if (newest_ != nullptr) newest_->newer = &e;
  newest_ = &e;
  if (oldest_ == nullptr) oldest_ = &e;
}

void HotCache::Erase(absl::node_hash_map<std::string, Entry>::iterator it) {
  Unlist(it->second);
  bytes_ -= it->second.charge;
  map_.erase(it);
}

HotCache::Entry& HotCache::Upsert(const std::string& key, size_t charge, uint64_t seq) {
  auto [it, inserted] = map_.try_emplace(key);
  Entry& e = it->second;
  if (!inserted) {
    Unlist(e);
    bytes_ -= e.charge;
    // A pin from an earlier, uncommitted batch stays until that batch commits.
    seq = std::max(seq, e.seq);
  }
  e.key = &it->first;
  e.charge = charge;
  e.seq = seq;
  bytes_ += charge;
  PushNewest(e);
  return e;
}

void HotCache::EvictOverBudget() {
  size_t passed = 0;
  while (bytes_ > max_bytes_ && oldest_ != nullptr && passed < map_.size()) {
    Entry& e = *oldest_;
    if (e.seq > committed_seq_) {
      // Not in the store yet: keep it, and look past it.
      Unlist(e);
      PushNewest(e);
      ++passed;
      continue;
    }
    Erase(map_.find(*e.key));
  }
}

HotCache::Lookup HotCache::TakeProfile(const std::string& id, Taken& out) {
  auto it = map_.find(ProfileKey(id));
  if (it == map_.end()) {
    ++misses_;
    return kMiss;
  }
  ++hits_;
  if (!it->second.profile.has_value()) return kAbsent;
  out.profile = std::move(*it->second.profile);
  out.charge = it->second.charge;
  out.seq = it->second.seq;
  Erase(it);
  return kPresent;
}

void HotCache::PutProfile(const std::string& id, core::Profile profile, size_t charge,
                          uint64_t seq) {
  Entry& e = Upsert(ProfileKey(id), charge, seq);
  e.profile = std::move(profile);
  EvictOverBudget();
}

void HotCache::PutProfileAbsent(const std::string& id, uint64_t seq) {
  Entry& e = Upsert(ProfileKey(id), id.size() + kLinkOverhead, seq);
  e.profile.reset();
  EvictOverBudget();
}

HotCache::Lookup HotCache::FindLink(const std::string& key, std::string& profile_id) {
  auto it = map_.find(LinkKey(key));
  if (it == map_.end()) return kMiss;
  Unlist(it->second);
  PushNewest(it->second);
  if (!it->second.link.has_value()) return kAbsent;
  profile_id = *it->second.link;
  return kPresent;
}

void HotCache::PutLink(const std::string& key, std::optional<std::string> profile_id,
                       uint64_t seq) {
  const size_t charge = key.size() + (profile_id ? profile_id->size() : 0) + kLinkOverhead;
  Entry& e = Upsert(LinkKey(key), charge, seq);
  e.link = std::move(profile_id);
  EvictOverBudget();
}

void HotCache::Committed(uint64_t seq) {
  committed_seq_ = std::max(committed_seq_, seq);
  EvictOverBudget();
}

void HotCache::Clear() {
  map_.clear();
  newest_ = oldest_ = nullptr;
  bytes_ = 0;
}

}  // namespace profiled::pipeline::internal
