// OriginFilter: a stage's guard against re-sent records (docs/scaling.md,
// "Exactly once without transactions"). Every internal record carries its
// Origin; an upstream partition's records reach this stage in that
// partition's order (one producer per upstream partition's work,
// idempotent), so a record at or below the highest origin offset already
// applied from its upstream partition is a re-send after its producer
// crashed or moved, and is skipped. Pure; the watermarks go into the same
// WriteBatch as the state and into each changelog marker.
//
//   OriginFilter filter;
//   filter.Restore(marker);                    // after a restore
//   if (!filter.Admit(record.origin())) continue;   // a re-send
//   filter.SaveTo(marker);                     // with the batch
//
// The epoch is not compared: a new owner re-sends with a higher epoch and
// the same offsets, which must be skipped just the same; a zombie never
// produces (it drops its outbox on losing the partition).
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "profiled/internal/v1/cluster.pb.h"
#include "profiled/internal/v1/routing.pb.h"

namespace profiled::cluster {

class OriginFilter {
 public:
  // True when `origin` is new (and now counts as applied); false for a
  // re-send at or below what was applied from its upstream partition.
  bool Admit(const internal::v1::Origin& origin);
  // Whether Admit would refuse it, without recording anything.
  bool Seen(const internal::v1::Origin& origin) const;

  void Restore(const internal::v1::ChangelogMarker& marker);
  void SaveTo(internal::v1::ChangelogMarker& marker) const;

  // "<topic>:<partition>", the marker's key for an upstream partition.
  static std::string UpstreamKey(const internal::v1::Origin& origin);

 private:
  using Position = std::pair<int64_t, int32_t>;  // (offset, index)
  static Position PositionOf(const internal::v1::Origin& origin) {
    return {origin.offset(), origin.index()};
  }
  absl::flat_hash_map<std::string, Position> highest_;
};

}  // namespace profiled::cluster
