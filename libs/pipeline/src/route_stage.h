// RouteStage: the first hop of partitioned mode (docs/scaling.md). What the
// read stage accepted becomes records of the repartition topic: each event
// keyed by the profile id its anchor identity (the highest-ranked) founds,
// each erasure by the profile id its identity founds, every record stamped
// with its origin. The key is a hash (core::ProfileIdFor), never a raw
// identifier, and it names the partition that owns the anchor — and the
// profile the anchor founds, whose record lives with its founding identity.
// Pure; dead letters and positions stay with the read batch.
//
//   std::vector<RoutedRecord> out = RouteStage::Route(read_batch, rules, epoch, until);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "profiled/identity/identity_rules.h"
#include "profiled/internal/v1/routing.pb.h"
#include "read_stage.h"

namespace profiled::pipeline::internal {

struct RoutedRecord {
  std::string key;
  std::string value;  // a profiled::internal::v1::RepartitionRecord
};

class RouteStage {
 public:
  // In offset order per upstream partition (events and erasures of a
  // control partition interleaved as they arrived). `epoch`: the router's ownership epoch of the
  // input partitions (docs/scaling.md, zombies); an erased person is refused until
  // `suppress_until_ms`.
  static std::vector<RoutedRecord> Route(const ReadBatch& batch,
                                         const identity::IdentityRules& rules, int64_t epoch,
                                         int64_t suppress_until_ms);

  // The origin stamp of a consumed message.
  static profiled::internal::v1::Origin OriginOf(const kafka::ConsumedMessage& m, int64_t epoch);
};

}  // namespace profiled::pipeline::internal
