#include "hot_cache.h"

#include <map>
#include <random>
#include <string>

#include "support/test_support.h"

namespace profiled::pipeline::internal {
namespace {

core::Profile ProfileWithVersion(const std::string& id, uint64_t version) {
  core::Profile p = core::Profile::New(id);
  p.version = version;
  return p;
}

TEST_CASE("a taken profile leaves the cache until it is put back", "[hot_cache]") {
  HotCache cache(1 << 20);
  HotCache::Taken taken;
  CHECK(cache.TakeProfile("p1", taken) == HotCache::kMiss);
  cache.PutProfile("p1", ProfileWithVersion("p1", 7), 500, 3);
  REQUIRE(cache.TakeProfile("p1", taken) == HotCache::kPresent);
  CHECK(taken.profile.version == 7);
  CHECK(taken.charge == 500);
  CHECK(taken.seq == 3);
  CHECK(cache.TakeProfile("p1", taken) == HotCache::kMiss);
  CHECK(cache.bytes() == 0);
  CHECK(cache.hits() == 1);
  CHECK(cache.misses() == 2);
}

TEST_CASE("deleted profiles and unmapped identities are remembered as such", "[hot_cache]") {
  HotCache cache(1 << 20);
  cache.PutProfileAbsent("gone", 1);
  HotCache::Taken taken;
  CHECK(cache.TakeProfile("gone", taken) == HotCache::kAbsent);
  CHECK(cache.TakeProfile("gone", taken) == HotCache::kAbsent);  // not consumed

  std::string id;
  cache.PutLink("email\x1fx", std::string("p9"), 0);
  cache.PutLink("user_id\x1fu", std::nullopt, 0);
  REQUIRE(cache.FindLink("email\x1fx", id) == HotCache::kPresent);
  CHECK(id == "p9");
  CHECK(cache.FindLink("user_id\x1fu", id) == HotCache::kAbsent);
  CHECK(cache.FindLink("user_id\x1fother", id) == HotCache::kMiss);
  // A profile id and a graph key with the same text do not collide.
  cache.PutLink("p1", std::string("p2"), 0);
  CHECK(cache.TakeProfile("p1", taken) == HotCache::kMiss);
}

TEST_CASE("over budget, the least recently used committed entries go first", "[hot_cache]") {
  HotCache cache(1000);
  for (int i = 0; i < 3; ++i) cache.PutLink("k" + std::to_string(i), "p", 0);
  const size_t per_link = cache.bytes() / 3;
  REQUIRE(per_link > 0);
  HotCache small(per_link * 3);
  std::string id;
  for (int i = 0; i < 3; ++i) small.PutLink("k" + std::to_string(i), "p", 0);
  REQUIRE(small.FindLink("k0", id) == HotCache::kPresent);  // k0 is now the newest
  small.PutLink("k3", "p", 0);                              // evicts k1, the oldest
  CHECK(small.FindLink("k1", id) == HotCache::kMiss);
  CHECK(small.FindLink("k0", id) == HotCache::kPresent);
  CHECK(small.FindLink("k2", id) == HotCache::kPresent);
  CHECK(small.FindLink("k3", id) == HotCache::kPresent);
  CHECK(small.bytes() <= per_link * 3);
}

TEST_CASE("entries of an uncommitted batch stay until the batch commits", "[hot_cache]") {
  HotCache cache(0);  // nothing is kept once committed
  cache.PutProfile("p1", ProfileWithVersion("p1", 1), 400, 5);
  cache.PutLink("k", std::string("p1"), 5);
  cache.PutLink("read", std::string("p1"), 0);  // read from the store: not pinned
  std::string id;
  CHECK(cache.FindLink("read", id) == HotCache::kMiss);
  cache.Committed(4);
  CHECK(cache.FindLink("k", id) == HotCache::kPresent);
  HotCache::Taken taken;
  REQUIRE(cache.TakeProfile("p1", taken) == HotCache::kPresent);
  // Put back by a later batch that did not change it: still pinned by batch 5.
  cache.PutProfile("p1", std::move(taken.profile), taken.charge, taken.seq);
  cache.Committed(5);
  CHECK(cache.TakeProfile("p1", taken) == HotCache::kMiss);
  CHECK(cache.FindLink("k", id) == HotCache::kMiss);
  CHECK(cache.entries() == 0);
  CHECK(cache.bytes() == 0);
}

TEST_CASE("a rewrite keeps the pin of the earlier, uncommitted batch", "[hot_cache]") {
  HotCache cache(0);
  cache.PutLink("k", std::string("a"), 8);
  cache.PutLink("k", std::string("b"), 0);
  std::string id;
  REQUIRE(cache.FindLink("k", id) == HotCache::kPresent);
  CHECK(id == "b");
  cache.Committed(8);
  CHECK(cache.FindLink("k", id) == HotCache::kMiss);
}

TEST_CASE("random use: bytes add up and pinned entries are never lost", "[hot_cache]") {
  std::mt19937 rng(42);
  HotCache cache(5000);
  std::map<std::string, uint64_t> model;  // present profiles -> version
  std::map<std::string, uint64_t> pinned_seq;
  uint64_t seq = 0, committed = 0;
  for (int step = 0; step < 20000; ++step) {
    const std::string id = "p" + std::to_string(rng() % 50);
    switch (rng() % 4) {
      case 0:
      case 1: {  // a batch writes the profile
        ++seq;
        const uint64_t version = rng() % 1000;
        cache.PutProfile(id, ProfileWithVersion(id, version), 100 + rng() % 400, seq);
        model[id] = version;
        pinned_seq[id] = seq;
        break;
      }
      case 2: {  // a batch reads it
        HotCache::Taken taken;
        const HotCache::Lookup found = cache.TakeProfile(id, taken);
        const bool pinned = pinned_seq.contains(id) && pinned_seq[id] > committed;
        if (pinned) REQUIRE(found == HotCache::kPresent);
        if (found == HotCache::kPresent) {
          REQUIRE(model.contains(id));
          REQUIRE(taken.profile.version == model[id]);
          cache.PutProfile(id, std::move(taken.profile), taken.charge, taken.seq);
        }
        break;
      }
      case 3:  // the committer catches up
        committed = std::max(committed, seq - std::min<uint64_t>(seq, rng() % 5));
        cache.Committed(committed);
        REQUIRE(cache.bytes() <= 5000 + 500 * 4);  // only pinned entries exceed the budget
        break;
    }
  }
  cache.Committed(seq);
  CHECK(cache.bytes() <= 5000);
  cache.Clear();
  CHECK(cache.bytes() == 0);
  CHECK(cache.entries() == 0);
}

}  // namespace
}  // namespace profiled::pipeline::internal
