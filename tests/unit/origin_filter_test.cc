// Re-sends skipped by origin (cluster/origin_filter.h): a property test of
// at-least-once hops made exactly-once, and the watermarks through a marker.
#include "profiled/cluster/origin_filter.h"

#include <catch2/catch.hpp>
#include <map>
#include <random>

namespace profiled::cluster {
namespace {

internal::v1::Origin O(const std::string& topic, int32_t partition, int64_t offset,
                       int64_t epoch = 1, int32_t index = 0) {
  internal::v1::Origin o;
  o.set_topic(topic);
  o.set_partition(partition);
  o.set_offset(offset);
  o.set_epoch(epoch);
  o.set_index(index);
  return o;
}

TEST_CASE("a record at or below its upstream partition's watermark is a re-send",
          "[cluster][origin]") {
  OriginFilter f;
  CHECK(f.Admit(O("identity", 0, 5)));
  CHECK_FALSE(f.Admit(O("identity", 0, 5)));  // the same record again
  CHECK_FALSE(f.Admit(O("identity", 0, 3)));  // an older one re-sent
  CHECK(f.Admit(O("identity", 0, 6)));
  CHECK(f.Admit(O("identity", 1, 2)));  // another upstream partition
  CHECK(f.Admit(O("other", 0, 1)));     // another upstream topic
  // A new owner re-sends with a higher epoch and the same offsets: skipped.
  CHECK_FALSE(f.Admit(O("identity", 0, 6, /*epoch=*/9)));
  CHECK(f.Seen(O("identity", 1, 2)));
  CHECK_FALSE(f.Seen(O("identity", 1, 3)));
}

TEST_CASE("records made from one upstream record are told apart by their index",
          "[cluster][origin]") {
  OriginFilter f;
  CHECK(f.Admit(O("repartition", 2, 7, 1, 0)));
  CHECK(f.Admit(O("repartition", 2, 7, 1, 1)));        // the second record made from offset 7
  CHECK_FALSE(f.Admit(O("repartition", 2, 7, 1, 0)));  // the first one re-sent
  CHECK_FALSE(f.Admit(O("repartition", 2, 6, 1, 5)));  // an earlier offset, any index
  CHECK(f.Admit(O("repartition", 2, 8, 1, 0)));
  internal::v1::ChangelogMarker marker;
  f.SaveTo(marker);
  OriginFilter restored;
  restored.Restore(marker);
  CHECK(restored.Seen(O("repartition", 2, 8, 1, 0)));
  CHECK_FALSE(restored.Seen(O("repartition", 2, 8, 1, 1)));
}

TEST_CASE(
    "upstreams re-sending their tails after crashes apply every record exactly once, "
    "across a restore from a marker",
    "[cluster][origin][property]") {
  std::mt19937_64 rng(17);
  for (int round = 0; round < 200; ++round) {
    CAPTURE(round);
    // Three upstream partitions of 0..n-1 each; each crash re-sends a tail.
    std::vector<internal::v1::Origin> delivered;
    std::map<int32_t, int64_t> sent;
    for (int step = 0; step < 60; ++step) {
      const int32_t p = static_cast<int32_t>(rng() % 3);
      if (rng() % 8 == 0 && sent[p] > 0) {
        // Crash: the producer restarts from an earlier committed position.
        sent[p] = std::max<int64_t>(0, sent[p] - static_cast<int64_t>(rng() % 5) - 1);
      }
      delivered.push_back(O("identity", p, sent[p]++));
    }
    OriginFilter f;
    std::map<std::pair<int32_t, int64_t>, int> applied;
    const size_t restore_at = rng() % delivered.size();
    for (size_t i = 0; i < delivered.size(); ++i) {
      if (i == restore_at) {
        // The owner moves: its successor starts from the marker.
        internal::v1::ChangelogMarker marker;
        f.SaveTo(marker);
        OriginFilter next;
        next.Restore(marker);
        f = next;
      }
      if (f.Admit(delivered[i])) ++applied[{delivered[i].partition(), delivered[i].offset()}];
    }
    for (const auto& [p, n] : sent) {
      int64_t highest = -1;
      for (const auto& o : delivered) {
        if (o.partition() == p) highest = std::max(highest, o.offset());
      }
      for (int64_t off = 0; off <= highest; ++off) {
        CHECK(applied[{p, off}] == 1);
      }
    }
  }
}

}  // namespace
}  // namespace profiled::cluster
