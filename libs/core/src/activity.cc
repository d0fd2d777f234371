#include "profiled/core/activity.h"

#include <algorithm>
#include <array>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "profiled/core/event_types.h"

namespace profiled::core {
namespace {

// Orders by recency: newest first, ties by key.
bool Newer(const ItemMemory& a, const ItemMemory& b) {
  return a.latest_ms() != b.latest_ms() ? a.latest_ms() > b.latest_ms() : a.key < b.key;
}

// Trim's general case: select the newest `limit`, then sort them by key.
void TrimBySelection(size_t limit, std::vector<ItemMemory>& items) {
  if (items.size() > limit) {
    std::nth_element(items.begin(), items.begin() + static_cast<long>(limit), items.end(), Newer);
    items.resize(limit);
    std::sort(items.begin(), items.end(),
              [](const ItemMemory& a, const ItemMemory& b) { return a.key < b.key; });
  }
}

// Keeps the `limit` most recent of a key-sorted memory, still sorted by key.
void Trim(size_t limit, std::vector<ItemMemory>& items) {
  // A few new keys over the cap (the steady state: an event adds a product
  // and its category): drop the oldest, one at a time. Newer is a total
  // order, so this keeps exactly the set a selection would.
  constexpr size_t kDropOneByOne = 4;
  if (items.size() > limit && items.size() <= limit + kDropOneByOne) {
    // One pass: the `excess` oldest so far, oldest first, each item's time
    // read once and keys compared only between equal times.
    const size_t excess = items.size() - limit;
    struct Old {
      size_t index;
      int64_t latest_ms;
    };
    std::array<Old, kDropOneByOne> oldest;
    size_t held = 0;
    auto older = [&](const Old& a, const Old& b) {  // Newer(b, a)
      return a.latest_ms != b.latest_ms ? a.latest_ms < b.latest_ms
                                        : items[b.index].key < items[a.index].key;
    };
    for (size_t i = 0; i < items.size(); ++i) {
      const Old item{i, items[i].latest_ms()};
      if (held == excess && !older(item, oldest[held - 1])) continue;
      size_t at = held == excess ? held - 1 : held++;
      for (; at > 0 && older(item, oldest[at - 1]); --at) oldest[at] = oldest[at - 1];
      oldest[at] = item;
    }
    std::array<size_t, kDropOneByOne> drop;
    for (size_t k = 0; k < held; ++k) drop[k] = oldest[k].index;
    std::sort(drop.begin(), drop.begin() + held);
    size_t kept = 0, next_drop = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (next_drop < held && drop[next_drop] == i) {
        ++next_drop;
        continue;
      }
      if (kept != i) items[kept] = std::move(items[i]);
      ++kept;
    }
    items.resize(kept);
    return;
  }
  TrimBySelection(limit, items);
}

// The memory of `prefix` + `name` in a key-sorted list, inserted in place if
// new. The key is built only when it is inserted.
ItemMemory& Slot(std::string_view prefix, std::string_view name, std::vector<ItemMemory>& items) {
  auto before = [&](const ItemMemory& m) {  // m.key < prefix + name
    const std::string_view key = m.key;
    const std::string_view head = key.substr(0, prefix.size());
    if (head != prefix) return head < prefix;
    return key.substr(head.size()) < name;
  };
  auto it = std::partition_point(items.begin(), items.end(), before);
  if (it != items.end() && it->key.size() == prefix.size() + name.size() &&
      it->key.starts_with(prefix) && it->key.ends_with(name)) {
    return *it;
  }
  std::string key;
  key.reserve(prefix.size() + name.size());
  key.append(prefix).append(name);
  return *items.insert(it, ItemMemory{std::move(key)});
}

ItemMemory& Slot(const std::string& key, std::vector<ItemMemory>& items) {
  return Slot(std::string_view(), key, items);
}

void Latest(int64_t& field, int64_t t) { field = std::max(field, t); }

// The time field an event type sets, or nullptr for types that set none.
int64_t ItemMemory::*FieldFor(const std::string& type) {
  switch (EventTypeOf(type)) {
    case EventType::kProductViewed:
      return &ItemMemory::viewed_ms;
    case EventType::kAddedToCart:
      return &ItemMemory::carted_ms;
    case EventType::kRemovedFromCart:
      return &ItemMemory::uncarted_ms;
    case EventType::kOrderCompleted:
      return &ItemMemory::bought_ms;
    default:
      return nullptr;
  }
}

}  // namespace

void RecordItems(const v1::InteractionEvent& event, size_t limit, std::vector<ItemMemory>& items) {
  int64_t ItemMemory::*field = FieldFor(event.type());
  if (field == nullptr || limit == 0) return;
  const int64_t t = event.event_time_ms();
  auto record = [&](const v1::Commerce& c) {
    if (!c.product_id().empty()) {
      Latest(Slot(kProductItemPrefix, c.product_id(), items).*field, t);
    }
    if (!c.category().empty()) {
      Latest(Slot(kCategoryItemPrefix, c.category(), items).*field, t);
    }
  };
  record(event.commerce());
  for (const v1::Commerce& line : event.line_items()) record(line);
  Trim(limit, items);
}

void MergeItems(const std::vector<ItemMemory>& other, size_t limit,
                std::vector<ItemMemory>& items) {
  for (const ItemMemory& theirs : other) {
    ItemMemory& mine = Slot(theirs.key, items);
    Latest(mine.viewed_ms, theirs.viewed_ms);
    Latest(mine.carted_ms, theirs.carted_ms);
    Latest(mine.uncarted_ms, theirs.uncarted_ms);
    Latest(mine.bought_ms, theirs.bought_ms);
  }
  Trim(limit, items);
}

void RecordSession(int64_t t, int64_t gap_ms, Session& s) {
  if (s.events == 0 || t > s.last_ms + gap_ms) {
    s = {t, t, 1};
  } else if (t >= s.start_ms - gap_ms) {
    s.start_ms = std::min(s.start_ms, t);
    s.last_ms = std::max(s.last_ms, t);
    ++s.events;
  }  // else: from an earlier session, which is over
}

void MergeSession(const Session& other, int64_t gap_ms, Session& s) {
  if (other.events == 0) return;
  if (s.events == 0) {
    s = other;
    return;
  }
  const Session& later = other.last_ms > s.last_ms ? other : s;
  const Session& earlier = other.last_ms > s.last_ms ? s : other;
  if (earlier.last_ms >= later.start_ms - gap_ms) {
    s = {std::min(later.start_ms, earlier.start_ms), later.last_ms, later.events + earlier.events};
  } else {
    s = later;
  }
}

LocalTime UtcTimeOf(int64_t unix_ms) {
  const int64_t day = UnixDayOf(unix_ms);
  const int64_t in_day = unix_ms - day * kMsPerDay;
  // 1970-01-01 was a Thursday (3, Monday being 0).
  const int64_t weekday = ((day + 3) % 7 + 7) % 7;
  return {static_cast<int>(in_day / 3'600'000), static_cast<int>(weekday)};
}

namespace {

// The zone `name` names, or UTC when it names none. Loading a zone reads
// tzdata: the names seen are cached (bounded, since they come from input).
absl::TimeZone ZoneNamed(const std::string& name) {
  static absl::Mutex mu(absl::kConstInit);
  static absl::flat_hash_map<std::string, absl::TimeZone> cache ABSL_GUARDED_BY(mu);
  absl::MutexLock lock(&mu);
  if (auto it = cache.find(name); it != cache.end()) return it->second;
  absl::TimeZone loaded;
  if (!absl::LoadTimeZone(name, &loaded)) return absl::UTCTimeZone();
  if (cache.size() < 1024) cache.emplace(name, loaded);
  return loaded;
}

}  // namespace

LocalTime LocalTimeOf(const v1::InteractionEvent& event) {
  const std::string& name = event.context().timezone();
  // Most events carry no zone: UTC is arithmetic, no time-zone lookup.
  if (name.empty()) return UtcTimeOf(event.event_time_ms());
  const absl::TimeZone::CivilInfo civil =
      ZoneNamed(name).At(absl::FromUnixMillis(event.event_time_ms()));
  LocalTime lt;
  lt.hour = civil.cs.hour();
  switch (absl::GetWeekday(absl::CivilDay(civil.cs))) {
    case absl::Weekday::monday:
      lt.weekday = 0;
      break;
    case absl::Weekday::tuesday:
      lt.weekday = 1;
      break;
    case absl::Weekday::wednesday:
      lt.weekday = 2;
      break;
    case absl::Weekday::thursday:
      lt.weekday = 3;
      break;
    case absl::Weekday::friday:
      lt.weekday = 4;
      break;
    case absl::Weekday::saturday:
      lt.weekday = 5;
      break;
    case absl::Weekday::sunday:
      lt.weekday = 6;
      break;
  }
  return lt;
}

std::string_view WeekdayName(int weekday) {
  static constexpr std::array<std::string_view, 7> kNames = {"mon", "tue", "wed", "thu",
                                                             "fri", "sat", "sun"};
  return kNames[static_cast<size_t>(weekday % 7)];
}

}  // namespace profiled::core
