// Leveled logging to stderr, one line per call, safe from any thread.
//
//   LogInfo("assigned ", n, " partitions");
//   LogWarn("publish failed: ", status.ToString());
//
// Two line formats (log.format in the config):
//   text  2026-11-22T21:22:56.123Z INFO  assigned events/0 from earliest
//   json  {"ts":"2026-11-22T21:22:56.123Z","level":"info","msg":"assigned events/0 from earliest"}
// JSON lines are what log shippers (Fluent Bit, Vector, Loki's promtail)
// parse without a custom pattern; the message is escaped per RFC 8259.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "profiled/base/json_escape.h"

namespace profiled {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class LogFormat { kText, kJson };

// "debug" | "info" | "warn" | "error" (nullopt for anything else).
inline std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return std::nullopt;
}

// "text" | "json" (nullopt for anything else).
inline std::optional<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

namespace internal {

inline std::atomic<LogLevel>& MinLogLevel() {
  static std::atomic<LogLevel> level{LogLevel::kInfo};
  return level;
}
inline std::atomic<LogFormat>& CurrentLogFormat() {
  static std::atomic<LogFormat> format{LogFormat::kText};
  return format;
}

// One complete log line (with its newline) in `format`.
inline std::string FormatLogLine(LogFormat format, LogLevel level, std::string_view message,
                                 std::chrono::system_clock::time_point now) {
  static constexpr const char* kText[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  static constexpr const char* kJson[] = {"debug", "info", "warn", "error"};
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                          now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[40];
  const size_t n = std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(ts + n, sizeof(ts) - n, ".%03dZ", static_cast<int>(millis));
  const int index = static_cast<int>(level);
  std::string line;
  line.reserve(message.size() + 64);
  if (format == LogFormat::kJson) {
    absl::StrAppend(&line, "{\"ts\":\"", ts, "\",\"level\":\"", kJson[index], "\",\"msg\":\"");
    AppendJsonEscaped(message, line);
    line += "\"}\n";
  } else {
    char level_field[8];
    std::snprintf(level_field, sizeof(level_field), "%-5s", kText[index]);
    absl::StrAppend(&line, ts, " ", level_field, " ",
                    absl::string_view(message.data(), message.size()), "\n");
  }
  return line;
}

inline void WriteLog(LogLevel level, const std::string& message) {
  if (level < MinLogLevel().load(std::memory_order_relaxed)) return;
  const std::string line = FormatLogLine(CurrentLogFormat().load(std::memory_order_relaxed),
                                         level, message, std::chrono::system_clock::now());
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

// Debian's Abseil has its own string_view: let callers pass std::string_view.
template <typename T>
const T& Loggable(const T& v) {
  return v;
}
inline absl::string_view Loggable(std::string_view v) { return {v.data(), v.size()}; }

}  // namespace internal

inline void SetMinLogLevel(LogLevel level) { internal::MinLogLevel() = level; }
inline void SetLogFormat(LogFormat format) { internal::CurrentLogFormat() = format; }

template <typename... Args>
void LogDebug(const Args&... args) {
  if (internal::MinLogLevel().load(std::memory_order_relaxed) > LogLevel::kDebug) return;
  internal::WriteLog(LogLevel::kDebug, absl::StrCat(internal::Loggable(args)...));
}
template <typename... Args>
void LogInfo(const Args&... args) {
  internal::WriteLog(LogLevel::kInfo, absl::StrCat(internal::Loggable(args)...));
}
template <typename... Args>
void LogWarn(const Args&... args) {
  internal::WriteLog(LogLevel::kWarn, absl::StrCat(internal::Loggable(args)...));
}
template <typename... Args>
void LogError(const Args&... args) {
  internal::WriteLog(LogLevel::kError, absl::StrCat(internal::Loggable(args)...));
}

}  // namespace profiled
