#include "profiled/base/log.h"

#include <chrono>

#include "support/test_support.h"

namespace profiled {
namespace {

// 2026-11-22T21:22:56.123Z
const std::chrono::system_clock::time_point kInstant{std::chrono::milliseconds(1795382576123)};

TEST_CASE("text log lines carry a UTC millisecond timestamp and a padded level", "[log]") {
  CHECK(internal::FormatLogLine(LogFormat::kText, LogLevel::kInfo, "assigned events/0", kInstant) ==
        "2026-11-22T21:22:56.123Z INFO  assigned events/0\n");
  CHECK(internal::FormatLogLine(LogFormat::kText, LogLevel::kError, "x", kInstant) ==
        "2026-11-22T21:22:56.123Z ERROR x\n");
}

TEST_CASE("JSON log lines are one object per line with the message escaped", "[log]") {
  CHECK(internal::FormatLogLine(LogFormat::kJson, LogLevel::kWarn, "publish failed", kInstant) ==
        "{\"ts\":\"2026-11-22T21:22:56.123Z\",\"level\":\"warn\",\"msg\":\"publish failed\"}\n");
  // Quotes, backslashes, newlines and control bytes cannot break the line or the object.
  const std::string nasty = std::string("say \"hi\"\\ \n\t\r") + '\x01' + '\x7f' + " caf\xc3\xa9";
  const std::string line =
      internal::FormatLogLine(LogFormat::kJson, LogLevel::kDebug, nasty, kInstant);
  CHECK(line ==
        "{\"ts\":\"2026-11-22T21:22:56.123Z\",\"level\":\"debug\",\"msg\":"
        "\"say \\\"hi\\\"\\\\ \\n\\t\\r\\u0001\\u007f caf\xc3\xa9\"}\n");
  CHECK(line.find('\n') == line.size() - 1);
}

TEST_CASE("level and format names parse, anything else does not", "[log]") {
  CHECK(ParseLogLevel("debug") == LogLevel::kDebug);
  CHECK(ParseLogLevel("error") == LogLevel::kError);
  CHECK_FALSE(ParseLogLevel("INFO").has_value());
  CHECK(ParseLogFormat("json") == LogFormat::kJson);
  CHECK_FALSE(ParseLogFormat("logfmt").has_value());
}

}  // namespace
}  // namespace profiled
