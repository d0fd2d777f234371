// Minimal leveled logging to stderr, one line per call, safe from any thread.
//
//   LogInfo("assigned ", n, " partitions");
//   LogWarn("publish failed: ", status.ToString());
//
// Structured (JSON) logs arrive with the operating-surface work; callers keep
// this interface.
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace profiled {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

namespace internal {
inline LogLevel& MinLogLevel() {
  static LogLevel level = LogLevel::kInfo;
  return level;
}
inline void WriteLog(LogLevel level, const std::string& message) {
  if (level < MinLogLevel()) return;
  static std::mutex mu;
  static constexpr const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[32];
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "%sZ %-5s %s\n", ts, kNames[static_cast<int>(level)], message.c_str());
}
// Debian's Abseil has its own string_view: let callers pass std::string_view.
template <typename T>
const T& Loggable(const T& v) {
  return v;
}
inline absl::string_view Loggable(std::string_view v) { return {v.data(), v.size()}; }
}  // namespace internal

inline void SetMinLogLevel(LogLevel level) { internal::MinLogLevel() = level; }

template <typename... Args>
void LogDebug(const Args&... args) {
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
