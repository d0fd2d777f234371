// Profile: the unified state of one person, and the pure rules that apply an
// InteractionEvent to it.
//
//   ScoringOptions options;                 // half-lives, top-K, weights
//   Profile p = Profile::New(ProfileIdFor(event));
//   ApplyEvent(event, options, p);          // p.version == 1
//   auto top = p.family(Family::kCategory).RankedAt(now_ms, options.family(Family::kCategory));
//
// Everything here is deterministic in the event sequence: the same events in
// the same order give the same profile, whatever the batching around them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "profiled/core/activity.h"
#include "profiled/core/consent.h"
#include "profiled/core/event_types.h"
#include "profiled/core/score_family.h"
#include "profiled/v1/event.pb.h"

namespace profiled::core {

// The score families every profile keeps. Stored by index: append only.
enum class Family : uint8_t {
  kCategory = 0,   // every prefix of the commerce category path
  kProduct = 1,    // commerce.product_id
  kBrand = 2,      // commerce.brand, lower-cased
  kEventType = 3,  // event type
  kChannel = 4,    // channel
  kDevice = 5,     // context.device, lower-cased
  kHour = 6,       // local hour of the event, "00" ... "23"
  kWeekday = 7,    // local day of the event, "mon" ... "sun"
};
inline constexpr size_t kFamilyCount = 8;
inline constexpr std::array<Family, kFamilyCount> kAllFamilies = {
    Family::kCategory, Family::kProduct, Family::kBrand, Family::kEventType,
    Family::kChannel,  Family::kDevice,  Family::kHour,  Family::kWeekday};

std::string_view FamilyName(Family family);
// The family named `name`, or nullopt.
std::optional<Family> FamilyFromName(std::string_view name);

struct Identity {
  std::string kind;
  std::string value;
  bool operator==(const Identity&) const = default;
};

struct Trait {
  std::string key;
  std::string value;
  int64_t event_time_ms = 0;
};

// Distinct days (UTC) with an order: what the purchase model counts
// (repeat purchases per customer-day, as BG/NBD was fitted on CDNOW). The
// newest kRecentPurchaseDays of them are kept, so a second order on a day
// already counted is not counted again, and a merge subtracts the days
// both profiles counted — exactly, unless they share a day older than
// either's newest kRecentPurchaseDays (then it is counted twice; an order
// arriving later than that many newer purchase days is counted as new).
struct PurchaseDays {
  int64_t count = 0;
  int32_t first_day = 0;        // days since the epoch; meaningful when count > 0
  std::vector<int32_t> recent;  // the newest counted days, ascending
  int32_t last_day() const { return recent.empty() ? first_day : recent.back(); }
  bool operator==(const PurchaseDays&) const = default;
};
inline constexpr size_t kRecentPurchaseDays = 16;

// Counts the day of an order at `event_time_ms`.
void RecordPurchaseDay(int64_t event_time_ms, PurchaseDays& days);
// Folds `absorbed`'s days into `survivor`'s (see PurchaseDays for the bound).
void MergePurchaseDays(const PurchaseDays& absorbed, PurchaseDays& survivor);

struct Counters {
  int64_t product_views = 0;
  int64_t cart_adds = 0;
  int64_t orders = 0;
  double revenue = 0.0;
};

// An applied event, remembered for de-duplication: a stable 64-bit hash of
// its event_id (EventIdHash) and its event time.
struct RecentEvent {
  uint64_t id_hash = 0;
  int64_t event_time_ms = 0;
  bool operator==(const RecentEvent&) const = default;
  auto operator<=>(const RecentEvent& o) const {
    return std::tie(event_time_ms, id_hash) <=> std::tie(o.event_time_ms, o.id_hash);
  }
};

struct ScoringOptions {
  std::array<FamilyOptions, kFamilyCount> families;
  // Weight of one event by type; types not listed weigh `default_weight`.
  absl::flat_hash_map<std::string, double> event_weights = {
      {std::string(EventTypeName(EventType::kProductViewed)), 1.0},
      {std::string(EventTypeName(EventType::kAddedToCart)), 3.0},
      {std::string(EventTypeName(EventType::kCheckoutStarted)), 4.0},
      {std::string(EventTypeName(EventType::kOrderCompleted)), 5.0}};
  double default_weight = 1.0;
  // Event ids each profile remembers (the newest by event time) so a re-sent
  // event is not applied twice. 0 turns de-duplication off. Default: 32.
  size_t recent_event_ids = 32;
  // Products and categories each profile remembers with their view, cart
  // and purchase times (the newest). Default: 50.
  size_t recent_items = 50;
  // Traits each profile keeps: the newest by event time (ties: the smaller
  // key), so merges stay exact and an update's size stays bounded. Default: 200.
  size_t max_traits = 200;
  // Events further apart than this start a new session. Default: 30 minutes.
  int64_t session_gap_ms = 30 * 60 * 1000;
  // Consent purposes, their defaults and how source categories map to them.
  ConsentOptions consent;
  // Half-lives of the two engagement sums whose ratio is the trend.
  // Defaults: 3 days and 30 days.
  double engagement_fast_half_life_ms = 3.0 * 24 * 3600 * 1000;
  double engagement_slow_half_life_ms = 30.0 * 24 * 3600 * 1000;
  // An event this long after the previous latest one marks a return (for
  // the "reactivated" lifecycle stage). Default: 60 days.
  int64_t return_gap_ms = 60LL * 24 * 3600 * 1000;

  const FamilyOptions& family(Family f) const { return families[static_cast<size_t>(f)]; }
  FamilyOptions& family(Family f) { return families[static_cast<size_t>(f)]; }
  double WeightOf(std::string_view type) const;
};

struct Profile {
  std::string id;
  // Number of events applied.
  uint64_t version = 0;
  int64_t first_seen_ms = 0;
  int64_t last_seen_ms = 0;
  std::vector<Identity> identities;
  std::array<ScoreFamily, kFamilyCount> families;
  Counters counters;
  std::vector<Trait> traits;
  // Event times of recent merges into this profile, oldest first (bounded by
  // the merge-rate guardrail).
  std::vector<int64_t> merge_times_ms;
  // The newest applied events by event time, oldest first (bounded by
  // ScoringOptions::recent_event_ids): the de-duplication memory.
  std::vector<RecentEvent> recent_events;
  // Recent products and categories with their times, sorted by key.
  std::vector<ItemMemory> items;
  Session session;
  // Every event's weight, decayed at the fast and the slow engagement half-life.
  DecayedScore engagement_fast;
  DecayedScore engagement_slow;
  // Event time of the latest return after return_gap_ms without events; 0 if none.
  int64_t returned_ms = 0;
  // Days with an order, for the purchase model.
  PurchaseDays purchase_days;
  // Consent decisions on record, by purpose (sorted).
  std::vector<ConsentDecision> consent;
  // Bookkeeping of time-driven publication (set by the pipeline, not by
  // events): when the pending timer is due (0: none) and a fingerprint of
  // the signals last published.
  int64_t timer_due_ms = 0;
  uint64_t signals_fingerprint = 0;
  // The profile id whose holdout assignment this person keeps; empty: its
  // own id. Set by merges (see HoldoutKey).
  std::string holdout_key;

  static Profile New(std::string id) {
    Profile p;
    p.id = std::move(id);
    return p;
  }
  const ScoreFamily& family(Family f) const { return families[static_cast<size_t>(f)]; }
  ScoreFamily& family(Family f) { return families[static_cast<size_t>(f)]; }
};

// The identities an event carries, in routing order: user_id, email,
// anonymous_id, device_id, then `other` sorted by kind. Empty values skipped.
std::vector<Identity> IdentitiesOf(const v1::InteractionEvent& event);

// The inverse: sets the field of `ids` for `identity.kind` (user_id,
// anonymous_id, email, device_id; any other kind goes to `other`).
void SetIdentity(const Identity& identity, v1::Identities& ids);

// FNV-1a of an event id: stable across processes and versions (it is stored).
uint64_t EventIdHash(std::string_view event_id);

// True when `profile` remembers applying an event with this event's id.
// Covers the newest `recent_event_ids` events by event time: a re-send of an
// older event than those is applied again.
bool AlreadyApplied(const v1::InteractionEvent& event, const Profile& profile);

// Applies one (validated) event to `profile`: scores, counters, traits,
// first/last seen, items, session, engagement, de-duplication memory;
// increments the version. Identities are linked by identity
// resolution (libs/identity), which normalizes them first.
void ApplyEvent(const v1::InteractionEvent& event, const ScoringOptions& options, Profile& profile);

// Folds `absorbed` into `survivor` exactly: decay pairs merge, counters and
// versions add, traits keep the latest by event time, first/last seen take
// min/max, identities, merge times, items and de-duplication memories are
// unioned, sessions joined when they overlap. With pruning off, merging
// profiles in any order and grouping equals feeding all their events to one.
void MergeProfiles(const Profile& absorbed, const ScoringOptions& options, Profile& survivor);

// The id a profile's holdout assignment is drawn from: after merges, the id
// of the merged profile seen first (one with events before one without, then
// the earliest first_seen, then the smaller id), so an anonymous visitor in
// the control group stays there after logging in, whatever the merge order.
const std::string& HoldoutKey(const Profile& profile);

// Links `identity` unless the profile already has it.
void LinkIdentity(const Identity& identity, Profile& profile);

// The keys credited in `family` by `event` (e.g. "electronics" and
// "electronics.smartphone" for category "electronics.smartphone").
std::vector<std::string> KeysFor(const v1::InteractionEvent& event, Family family);

}  // namespace profiled::core
