// The reference every end-to-end and crash test compares with: a brute-force
// fold of raw events into expected per-profile figures, written here
// independently of libs/core (only the profile id function is shared, since
// it names the profile rather than computing anything about it).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "profiled/v1/event.pb.h"
#include "profiled/v1/profile_update.pb.h"

namespace profiled::testing {

struct ExpectedProfile {
  uint64_t events = 0;
  int64_t first_seen_ms = 0;
  int64_t last_seen_ms = 0;
  int64_t product_views = 0;
  int64_t cart_adds = 0;
  int64_t orders = 0;
  double revenue = 0;
  // "kind:value" of every identity (user_id, anonymous_id, device_id only:
  // the reference does not hash emails).
  std::set<std::string> identities;
  // family -> key -> every (weight, event time) added to it
  std::map<std::string, std::map<std::string, std::vector<std::pair<double, int64_t>>>> scores;
};

struct ReferenceWeights {
  std::map<std::string, double> by_type = {
      {"product_viewed", 1.0}, {"added_to_cart", 3.0}, {"order_completed", 5.0}};
  double default_weight = 1.0;
};

// Expected state of every profile, by profile id (events with one identity).
std::map<std::string, ExpectedProfile> FoldByProfile(const std::vector<v1::InteractionEvent>& events,
                                                     const ReferenceWeights& weights);

// Expected state per person, for events whose identities vary: `person_of`
// names the person an event belongs to.
std::map<std::string, ExpectedProfile> FoldByPerson(
    const std::vector<v1::InteractionEvent>& events, const ReferenceWeights& weights,
    const std::function<std::string(const v1::InteractionEvent&)>& person_of);

// Mismatches between `update` (scores read at its as_of) and `want`, one line
// each; empty when every score matches within relative error `rel`.
std::vector<std::string> CompareUpdate(const v1::ProfileUpdate& update,
                                       const ExpectedProfile& want, int64_t half_life_ms,
                                       double rel = 1e-9);

}  // namespace profiled::testing
