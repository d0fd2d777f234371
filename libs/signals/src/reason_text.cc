#include "profiled/signals/reason_text.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

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

// 10^0 ... 10^22, each exact as a double.
constexpr std::array<double, 23> kPowersOf10 = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// printf's "%.3g" of `v` through std::to_chars (exact, ~80 ns).
void AppendG3Exact(double v, std::string& out) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, 3);
  out.append(buf, end);
}

// printf's "%.3g" of `v`, ~10x faster than to_chars for the weights reasons
// carry: the three significant digits come from one scaling by an exact
// power of ten and one rounding; a value whose scaled fraction lies near
// one half (where that rounding could differ from the exact decimal's) and
// anything outside 1e-5 <= |v| < 1e15 go to to_chars.
void AppendG3(double v, std::string& out) {
  const double magnitude = std::fabs(v);
  if (!(magnitude >= 1e-5 && magnitude < 1e15)) {
    AppendG3Exact(v, out);
    return;
  }
  int exponent = 0;  // of the leading digit: 10^exponent <= magnitude
  if (magnitude >= 1) {
    while (exponent < 14 && magnitude >= kPowersOf10[static_cast<size_t>(exponent) + 1]) {
      ++exponent;
    }
  } else {
    exponent = -1;
    while (exponent > -5 && magnitude < 1.0 / kPowersOf10[static_cast<size_t>(-exponent)]) {
      --exponent;
    }
  }
  // Three digits: magnitude / 10^(exponent - 2), from an exact power.
  const int shift = exponent - 2;
  const double scaled = shift >= 0 ? magnitude / kPowersOf10[static_cast<size_t>(shift)]
                                   : magnitude * kPowersOf10[static_cast<size_t>(-shift)];
  const double floor = std::floor(scaled);
  if (std::fabs(scaled - floor - 0.5) < 1e-6) {
    AppendG3Exact(v, out);
    return;
  }
  auto digits = static_cast<int>(floor) + (scaled - floor > 0.5 ? 1 : 0);
  if (digits >= 1000) {  // rounded up to the next power of ten
    digits /= 10;
    ++exponent;
  }
  if (digits < 100 || digits > 999) {  // the scaling fell outside [100, 1000)
    AppendG3Exact(v, out);
    return;
  }
  if (v < 0) out.push_back('-');
  const char d[3] = {static_cast<char>('0' + digits / 100),
                     static_cast<char>('0' + digits / 10 % 10), static_cast<char>('0' + digits % 10)};
  // Digits after the point, trailing zeros dropped as %g does.
  int significant = 3;
  while (significant > 1 && d[significant - 1] == '0') --significant;
  if (exponent >= -4 && exponent < 3) {
    if (exponent >= 0) {
      out.append(d, static_cast<size_t>(exponent) + 1);
      if (significant > exponent + 1) {
        out.push_back('.');
        out.append(d + exponent + 1, static_cast<size_t>(significant - exponent - 1));
      }
    } else {
      out.append("0.");
      out.append(static_cast<size_t>(-exponent - 1), '0');
      out.append(d, static_cast<size_t>(significant));
    }
    return;
  }
  out.push_back(d[0]);
  if (significant > 1) {
    out.push_back('.');
    out.append(d + 1, static_cast<size_t>(significant - 1));
  }
  out.append(exponent < 0 ? "e-" : "e+");
  const int e = std::abs(exponent);
  if (e < 10) out.push_back('0');
  AppendInt(e, out);
}

}  // namespace

void AppendReasonText(std::string_view what, std::string_view key, double weight, int64_t last_ms,
                      int64_t now_ms, std::string& text) {
  text.reserve(text.size() + what.size() + key.size() + 32);
  text.append(what).append(" ").append(key).append(": ");
  AppendG3(weight, text);
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
