#include "profiled/signals/reason_text.h"

#include <algorithm>
#include <charconv>

namespace profiled::signals {
namespace {

constexpr int64_t kMinuteMs = 60 * 1000;
constexpr int64_t kHourMs = 60 * kMinuteMs;
constexpr int64_t kDayMs = 24 * kHourMs;

void AppendInt(int64_t v, std::string& out) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

}  // namespace

void AppendReasonText(std::string_view what, std::string_view key, double weight, int64_t last_ms,
                      int64_t now_ms, std::string& text) {
  text.reserve(text.size() + what.size() + key.size() + 32);
  text.append(what).append(" ").append(key).append(": ");
  // to_chars with a precision is printf's %.3g, without the locale.
  char buf[32];
  const auto [end, ec] =
      std::to_chars(buf, buf + sizeof(buf), weight, std::chars_format::general, 3);
  text.append(buf, end);
  if (last_ms <= 0) return;
  text.append(", last ");
  const int64_t ago = now_ms - last_ms;
  if (ago < kMinuteMs) {
    AppendInt(std::max<int64_t>(ago, 0) / 1000, text);
    text.append("s ago");
  } else if (ago < kHourMs) {
    AppendInt(ago / kMinuteMs, text);
    text.append("m ago");
  } else if (ago < kDayMs) {
    AppendInt(ago / kHourMs, text);
    text.append("h ago");
  } else {
    AppendInt(ago / kDayMs, text);
    text.append("d ago");
  }
}

}  // namespace profiled::signals
