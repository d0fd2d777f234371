// Activity state beyond decayed scores, kept per profile for the signals:
// what happened to each recent product and category (viewed, carted,
// removed, bought, with times), the current session, and the local time
// an event happened at.
//
//   RecordItems(event, /*limit=*/50, profile.items);
//   RecordSession(event.event_time_ms(), /*gap_ms=*/30 * 60'000, profile.session);
//   LocalTime lt = LocalTimeOf(event);   // hour 0-23, weekday 0 = Monday
//
// Items merge exactly (per key the latest of each time, newest `limit` kept)
// as long as a profile holds no more than `limit` items; the session is a
// best-effort view of the latest activity and not part of the exactness set.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "profiled/v1/event.pb.h"

namespace profiled::core {

// One product ("p:<id>") or category ("c:<path>") the profile interacted with.
struct ItemMemory {
  std::string key;
  int64_t viewed_ms = 0;       // latest view
  int64_t carted_ms = 0;       // latest add to cart
  int64_t uncarted_ms = 0;     // latest removal from cart
  int64_t bought_ms = 0;       // latest order holding it
  int64_t latest_ms() const {  // inline: ordering the memory calls it per comparison
    return std::max(std::max(viewed_ms, carted_ms), std::max(uncarted_ms, bought_ms));
  }
  bool operator==(const ItemMemory&) const = default;
};

inline constexpr std::string_view kProductItemPrefix = "p:";
inline constexpr std::string_view kCategoryItemPrefix = "c:";

// Records what `event` did to its products and categories (an order credits
// every line). Keeps the newest `limit` items by latest time, sorted by key.
void RecordItems(const v1::InteractionEvent& event, size_t limit, std::vector<ItemMemory>& items);

// Folds `other` into `items`: per key the latest of each time; newest `limit` kept.
void MergeItems(const std::vector<ItemMemory>& other, size_t limit, std::vector<ItemMemory>& items);

// The session around the latest activity: events closer than `gap_ms` to it
// belong to it.
struct Session {
  int64_t start_ms = 0;
  int64_t last_ms = 0;
  int64_t events = 0;
  bool operator==(const Session&) const = default;
};

void RecordSession(int64_t event_time_ms, int64_t gap_ms, Session& session);
void MergeSession(const Session& other, int64_t gap_ms, Session& session);

struct LocalTime {
  int hour = 0;     // 0-23
  int weekday = 0;  // 0 = Monday ... 6 = Sunday
};

// The event's time in its context.timezone (IANA name), or UTC when it has
// none or the name is unknown.
LocalTime LocalTimeOf(const v1::InteractionEvent& event);

// The UTC hour and weekday of a Unix time in milliseconds (any sign).
LocalTime UtcTimeOf(int64_t unix_ms);

inline constexpr int64_t kMsPerDay = 24LL * 3600 * 1000;

// Whole UTC days since 1970-01-01 of a Unix time in milliseconds, rounded
// down (times before the epoch count too).
inline int64_t UnixDayOf(int64_t unix_ms) {
  return unix_ms / kMsPerDay - (unix_ms % kMsPerDay < 0);
}

// "mon" ... "sun".
std::string_view WeekdayName(int weekday);

}  // namespace profiled::core
