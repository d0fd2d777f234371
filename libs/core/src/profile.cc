#include "profiled/core/profile.h"

#include <algorithm>
#include <iterator>

#include "profiled/core/event_keys.h"

namespace profiled::core {
namespace {

constexpr std::array<std::string_view, kFamilyCount> kFamilyNames = {
    "category", "product", "brand", "event_type", "channel", "device", "hour", "weekday"};

// Latest event time wins; on a tie the larger value wins, so the outcome does
// not depend on the order ties arrive in.
void SetTrait(const std::string& key, const std::string& value, int64_t at_ms, Profile& profile) {
  for (Trait& t : profile.traits) {
    if (t.key != key) continue;
    if (at_ms > t.event_time_ms || (at_ms == t.event_time_ms && value > t.value)) {
      t.value = value;
      t.event_time_ms = at_ms;
    }
    return;
  }
  profile.traits.push_back({key, value, at_ms});
}

// Keeps the `limit` newest traits by event time (ties: the smaller key). The
// newest-N of a union equals the newest-N of the newest-N of its parts, so
// trimming after every event and merge keeps merges exact.
void TrimTraits(size_t limit, std::vector<Trait>& traits) {
  if (traits.size() <= limit) return;
  auto newer = [](const Trait& a, const Trait& b) {
    return a.event_time_ms != b.event_time_ms ? a.event_time_ms > b.event_time_ms : a.key < b.key;
  };
  std::nth_element(traits.begin(), traits.begin() + static_cast<std::ptrdiff_t>(limit),
                   traits.end(), newer);
  traits.resize(limit);
}

double LineRevenue(const v1::Commerce& c) {
  return c.price() * static_cast<double>(std::max<int64_t>(c.quantity(), 1));
}

// The order total: given revenue, else the sum of the lines, else price x quantity.
double OrderRevenue(const v1::InteractionEvent& e) {
  if (e.commerce().revenue() > 0) return e.commerce().revenue();
  if (e.line_items_size() > 0) {
    double sum = 0;
    for (const v1::Commerce& line : e.line_items()) sum += LineRevenue(line);
    return sum;
  }
  return LineRevenue(e.commerce());
}

}  // namespace

std::string_view FamilyName(Family family) { return kFamilyNames[static_cast<size_t>(family)]; }

std::optional<Family> FamilyFromName(std::string_view name) {
  for (Family f : kAllFamilies) {
    if (FamilyName(f) == name) return f;
  }
  return std::nullopt;
}

double ScoringOptions::WeightOf(std::string_view type) const {
  auto it = event_weights.find(absl::string_view(type.data(), type.size()));
  return it == event_weights.end() ? default_weight : it->second;
}

void SetIdentity(const Identity& identity, v1::Identities& ids) {
  const std::string& kind = identity.kind;
  if (kind == "user_id") {
    ids.set_user_id(identity.value);
  } else if (kind == "anonymous_id") {
    ids.set_anonymous_id(identity.value);
  } else if (kind == "email") {
    ids.set_email(identity.value);
  } else if (kind == "device_id") {
    ids.set_device_id(identity.value);
  } else {
    (*ids.mutable_other())[kind] = identity.value;
  }
}

std::vector<Identity> IdentitiesOf(const v1::InteractionEvent& event) {
  std::vector<Identity> out;
  const v1::Identities& ids = event.identities();
  auto add = [&](std::string_view kind, const std::string& value) {
    if (!value.empty()) out.push_back({std::string(kind), value});
  };
  add("user_id", ids.user_id());
  add("email", ids.email());
  add("anonymous_id", ids.anonymous_id());
  add("device_id", ids.device_id());
  std::vector<Identity> others;
  for (const auto& [kind, value] : ids.other()) {
    if (!kind.empty() && !value.empty()) others.push_back({kind, value});
  }
  std::sort(others.begin(), others.end(),
            [](const Identity& a, const Identity& b) { return a.kind < b.kind; });
  out.insert(out.end(), others.begin(), others.end());
  return out;
}

std::vector<std::string> KeysFor(const v1::InteractionEvent& event, Family family) {
  const EventKeys keys(event);
  return {keys.Of(family).begin(), keys.Of(family).end()};
}

uint64_t EventIdHash(std::string_view event_id) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : event_id) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

bool AlreadyApplied(const v1::InteractionEvent& event, const Profile& profile) {
  const uint64_t h = EventIdHash(event.event_id());
  return std::any_of(profile.recent_events.begin(), profile.recent_events.end(),
                     [h](const RecentEvent& r) { return r.id_hash == h; });
}

namespace {

// Keeps the newest `limit` entries of a sorted, duplicate-free memory.
void TrimRecent(size_t limit, std::vector<RecentEvent>& recent) {
  if (recent.size() > limit) recent.erase(recent.begin(), recent.end() - limit);
}

void Remember(const v1::InteractionEvent& event, size_t limit, Profile& profile) {
  if (limit == 0) return;
  const RecentEvent r{EventIdHash(event.event_id()), event.event_time_ms()};
  auto& recent = profile.recent_events;
  recent.insert(std::upper_bound(recent.begin(), recent.end(), r), r);
  TrimRecent(limit, recent);
}

}  // namespace

void RecordPurchaseDay(int64_t event_time_ms, PurchaseDays& days) {
  const auto day = static_cast<int32_t>(UnixDayOf(event_time_ms));
  std::vector<int32_t>& recent = days.recent;
  if (days.count > 0 && std::binary_search(recent.begin(), recent.end(), day)) return;
  days.first_day = days.count == 0 ? day : std::min(days.first_day, day);
  ++days.count;
  if (recent.size() == kRecentPurchaseDays && day < recent.front()) return;  // see the bound
  recent.insert(std::upper_bound(recent.begin(), recent.end(), day), day);
  if (recent.size() > kRecentPurchaseDays) recent.erase(recent.begin());
}

void MergePurchaseDays(const PurchaseDays& absorbed, PurchaseDays& survivor) {
  if (absorbed.count == 0) return;
  if (survivor.count == 0) {
    survivor = absorbed;
    return;
  }
  std::vector<int32_t> both;
  std::set_union(survivor.recent.begin(), survivor.recent.end(), absorbed.recent.begin(),
                 absorbed.recent.end(), std::back_inserter(both));
  const auto shared =
      static_cast<int64_t>(survivor.recent.size() + absorbed.recent.size() - both.size());
  survivor.count += absorbed.count - shared;
  survivor.first_day = std::min(survivor.first_day, absorbed.first_day);
  if (both.size() > kRecentPurchaseDays) both.erase(both.begin(), both.end() - kRecentPurchaseDays);
  survivor.recent = std::move(both);
}

void ApplyEvent(const v1::InteractionEvent& event, const ScoringOptions& options,
                Profile& profile) {
  const int64_t t = event.event_time_ms();
  if (profile.version > 0 && t - profile.last_seen_ms >= options.return_gap_ms) {
    profile.returned_ms = std::max(profile.returned_ms, t);
  }
  if (profile.version == 0) {
    profile.first_seen_ms = t;
    profile.last_seen_ms = t;
  } else {
    profile.first_seen_ms = std::min(profile.first_seen_ms, t);
    profile.last_seen_ms = std::max(profile.last_seen_ms, t);
  }
  ++profile.version;

  const double weight = options.WeightOf(event.type());
  const EventKeys keys(event);
  for (Family f : kAllFamilies) {
    for (std::string_view key : keys.Of(f)) {
      profile.family(f).Add(key, weight, t, options.family(f));
    }
  }

  switch (EventTypeOf(event.type())) {
    case EventType::kProductViewed:
      ++profile.counters.product_views;
      break;
    case EventType::kAddedToCart:
      ++profile.counters.cart_adds;
      break;
    case EventType::kOrderCompleted:
      ++profile.counters.orders;
      profile.counters.revenue += OrderRevenue(event);
      RecordPurchaseDay(t, profile.purchase_days);
      break;
    default:
      break;
  }

  for (const auto& [key, value] : event.traits()) SetTrait(key, value, t, profile);
  TrimTraits(options.max_traits, profile.traits);
  Remember(event, options.recent_event_ids, profile);
  RecordItems(event, options.recent_items, profile.items);
  RecordSession(t, options.session_gap_ms, profile.session);
  profile.engagement_fast.Add(weight, t, options.engagement_fast_half_life_ms);
  profile.engagement_slow.Add(weight, t, options.engagement_slow_half_life_ms);
}

void LinkIdentity(const Identity& identity, Profile& profile) {
  if (std::find(profile.identities.begin(), profile.identities.end(), identity) ==
      profile.identities.end()) {
    profile.identities.push_back(identity);
  }
}

const std::string& HoldoutKey(const Profile& profile) {
  return profile.holdout_key.empty() ? profile.id : profile.holdout_key;
}

void MergeProfiles(const Profile& absorbed, const ScoringOptions& options, Profile& survivor) {
  // Before first_seen moves: which side was seen first keeps its assignment.
  auto seen_first = [](const Profile& p) {
    return std::tuple<bool, int64_t, const std::string&>(p.version == 0, p.first_seen_ms,
                                                         HoldoutKey(p));
  };
  if (seen_first(absorbed) < seen_first(survivor)) {
    survivor.holdout_key = HoldoutKey(absorbed) == survivor.id ? "" : HoldoutKey(absorbed);
  }
  if (absorbed.version > 0) {
    if (survivor.version == 0) {
      survivor.first_seen_ms = absorbed.first_seen_ms;
      survivor.last_seen_ms = absorbed.last_seen_ms;
    } else {
      survivor.first_seen_ms = std::min(survivor.first_seen_ms, absorbed.first_seen_ms);
      survivor.last_seen_ms = std::max(survivor.last_seen_ms, absorbed.last_seen_ms);
    }
  }
  survivor.version += absorbed.version;
  for (Family f : kAllFamilies) {
    survivor.family(f).MergeFrom(absorbed.family(f), options.family(f));
  }
  survivor.counters.product_views += absorbed.counters.product_views;
  survivor.counters.cart_adds += absorbed.counters.cart_adds;
  survivor.counters.orders += absorbed.counters.orders;
  survivor.counters.revenue += absorbed.counters.revenue;
  for (const Trait& t : absorbed.traits) SetTrait(t.key, t.value, t.event_time_ms, survivor);
  TrimTraits(options.max_traits, survivor.traits);
  for (const Identity& id : absorbed.identities) LinkIdentity(id, survivor);
  survivor.merge_times_ms.insert(survivor.merge_times_ms.end(), absorbed.merge_times_ms.begin(),
                                 absorbed.merge_times_ms.end());
  std::sort(survivor.merge_times_ms.begin(), survivor.merge_times_ms.end());

  // The union, newest `recent_event_ids` kept: the same set one profile fed
  // every event would remember.
  auto& recent = survivor.recent_events;
  std::vector<RecentEvent> both;
  both.reserve(recent.size() + absorbed.recent_events.size());
  std::merge(recent.begin(), recent.end(), absorbed.recent_events.begin(),
             absorbed.recent_events.end(), std::back_inserter(both));
  both.erase(std::unique(both.begin(), both.end()), both.end());
  TrimRecent(options.recent_event_ids, both);
  recent = std::move(both);

  MergeItems(absorbed.items, options.recent_items, survivor.items);
  survivor.returned_ms = std::max(survivor.returned_ms, absorbed.returned_ms);
  MergePurchaseDays(absorbed.purchase_days, survivor.purchase_days);
  MergeConsent(absorbed.consent, survivor.consent);
  MergeSession(absorbed.session, options.session_gap_ms, survivor.session);
  survivor.engagement_fast.MergeFrom(absorbed.engagement_fast,
                                     options.engagement_fast_half_life_ms);
  survivor.engagement_slow.MergeFrom(absorbed.engagement_slow,
                                     options.engagement_slow_half_life_ms);
}

}  // namespace profiled::core
