// EventKeys: the keys one event credits in each score family, worked out
// once per event without copying them: views into the event's own strings
// (category prefixes are prefixes of the path) or into this object's small
// storage (a lower-cased brand or device, the hour). Applying an event
// credits every family's keys; building a string per key was most of the
// cost of applying one, beside the decay updates themselves.
//
//   const EventKeys keys(event);
//   for (std::string_view key : keys.Of(Family::kCategory)) ...
//
// The views live as long as both the event and this object, which cannot be
// copied or moved (its views may point into itself).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "profiled/core/profile.h"
#include "profiled/v1/event.pb.h"

namespace profiled::core {

class EventKeys {
 public:
  explicit EventKeys(const v1::InteractionEvent& event);
  EventKeys(const EventKeys&) = delete;
  EventKeys& operator=(const EventKeys&) = delete;

  // The keys credited in `family`, each once (the commerce families' sorted).
  absl::Span<const std::string_view> Of(Family family) const {
    const auto f = static_cast<size_t>(family);
    return {keys_ + begin_[f], begin_[f + 1] - begin_[f]};
  }

 private:
  void Add(std::string_view key) { keys_[end_++] = key; }
  // Closes the family being built: its keys are [begin_[f], end_).
  void Close(Family family, bool deduplicate);
  // `text` lower-cased: itself when it has no upper-case letter, else a copy
  // kept in `lowered_` (reserved up front, so views into it stay valid).
  std::string_view Lowered(const std::string& text);

  // Every family's keys, family after family in enum order: in `inline_`
  // unless the event has more than it holds (many line items).
  std::array<std::string_view, 24> inline_;
  std::vector<std::string_view> spilled_;
  std::string_view* keys_ = inline_.data();
  uint32_t end_ = 0;
  std::array<uint32_t, kFamilyCount + 1> begin_{};
  std::vector<std::string> lowered_;
  size_t lowered_capacity_ = 0;
  std::array<char, 2> hour_{};
};

}  // namespace profiled::core
