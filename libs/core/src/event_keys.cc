#include "profiled/core/event_keys.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "profiled/core/activity.h"

namespace profiled::core {
namespace {

// Category keys a path credits: each dotted prefix, then the path.
template <typename Fn>
void ForEachCategoryKey(std::string_view path, Fn&& fn) {
  for (size_t dot = path.find('.'); dot != std::string_view::npos; dot = path.find('.', dot + 1)) {
    if (dot > 0) fn(path.substr(0, dot));
  }
  if (!path.empty()) fn(path);
}

// The most keys `event` can credit, over every family.
size_t MostKeys(const v1::InteractionEvent& event) {
  // Event type, channel, device, hour, weekday; per commerce block its
  // category levels, product and brand.
  size_t most = 5;
  auto block = [&](const v1::Commerce& c) {
    most += 3 + static_cast<size_t>(std::count(c.category().begin(), c.category().end(), '.'));
  };
  block(event.commerce());
  for (const v1::Commerce& line : event.line_items()) block(line);
  return most;
}

}  // namespace

EventKeys::EventKeys(const v1::InteractionEvent& event)
    // At most the device and one brand per commerce block are lowered.
    : lowered_capacity_(2 + static_cast<size_t>(event.line_items_size())) {
  if (const size_t most = MostKeys(event); most > inline_.size()) {
    spilled_.resize(most);
    keys_ = spilled_.data();
  }
  const bool lines = event.line_items_size() > 0;
  auto each_block = [&](auto&& fn) {
    fn(event.commerce());
    for (const v1::Commerce& line : event.line_items()) fn(line);
  };
  each_block([&](const v1::Commerce& c) {
    ForEachCategoryKey(c.category(), [&](std::string_view key) { Add(key); });
  });
  Close(Family::kCategory, lines);
  each_block([&](const v1::Commerce& c) {
    if (!c.product_id().empty()) Add(c.product_id());
  });
  Close(Family::kProduct, lines);
  each_block([&](const v1::Commerce& c) {
    if (!c.brand().empty()) Add(Lowered(c.brand()));
  });
  // An event credits a key once, however many lines share it.
  Close(Family::kBrand, lines);

  Add(event.type());
  Close(Family::kEventType, false);
  if (!event.channel().empty()) Add(event.channel());
  Close(Family::kChannel, false);
  if (!event.context().device().empty()) Add(Lowered(event.context().device()));
  Close(Family::kDevice, false);
  const LocalTime local = LocalTimeOf(event);
  hour_ = {static_cast<char>('0' + local.hour / 10), static_cast<char>('0' + local.hour % 10)};
  Add(std::string_view(hour_.data(), hour_.size()));
  Close(Family::kHour, false);
  Add(WeekdayName(local.weekday));
  Close(Family::kWeekday, false);
}

void EventKeys::Close(Family family, bool deduplicate) {
  const auto f = static_cast<size_t>(family);
  if (deduplicate) {
    std::string_view* first = keys_ + begin_[f];
    std::sort(first, keys_ + end_);
    end_ = static_cast<uint32_t>(std::unique(first, keys_ + end_) - keys_);
  }
  begin_[f + 1] = end_;
}

std::string_view EventKeys::Lowered(const std::string& text) {
  if (std::none_of(text.begin(), text.end(), absl::ascii_isupper)) return text;
  if (lowered_.empty()) lowered_.reserve(lowered_capacity_);
  return lowered_.emplace_back(absl::AsciiStrToLower(text));
}

}  // namespace profiled::core
