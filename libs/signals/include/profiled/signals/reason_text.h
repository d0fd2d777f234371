// The human text of a signal reason, e.g. "category electronics: 3.21, last
// 2d ago" — what `SignalReason.text` carries (docs/signals.md). Formatted
// without printf: it is written for every reason of every update.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace profiled::signals {

// "<what> <key>: <weight as %.3g>", then ", last <ago>" when `last_ms` > 0
// (ago: "45s", "12m", "3h" or "2d", whole units, of now_ms - last_ms).
// Appended to `text` (a message's own string: no copy).
void AppendReasonText(std::string_view what, std::string_view key, double weight, int64_t last_ms,
                      int64_t now_ms, std::string& text);

}  // namespace profiled::signals
