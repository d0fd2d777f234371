// Failpoints for crash tests: named places where the process can kill itself
// with SIGKILL, exactly as `kill -9` would, at a chosen moment.
//
//   PROFILED_FAILPOINT("after_commit");
//
// With PROFILED_FAILPOINT=after_commit:3 in the environment, the third time
// execution reaches that point the process dies on the spot. Unset (always,
// in production) the cost is one load of a static pointer.
//
// Points: before_commit (dead letters acknowledged, batch not yet written),
// after_commit (batch written, outbox not yet published), after_publish
// (updates acknowledged by Kafka, outbox entries not yet deleted).
//
// Error failpoints make a named operation fail instead of killing, as a disk
// or device would:
//
//   if (PROFILED_FAILPOINT_ERROR("store_write")) return absl::UnavailableError(...);
//
// armed with PROFILED_FAILPOINT_ERRORS=store_write:5 (the next 5 hits fail)
// or, in tests, ArmFailpointErrors("store_write", 5). Point: store_write (a
// RocksDB commit of a batch).
#pragma once

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <string>
#include <string_view>

namespace profiled::internal {

struct FailpointSpec {
  std::string name;
  std::atomic<long> remaining{0};
};

inline FailpointSpec* ArmedFailpoint() {
  static FailpointSpec* spec = []() -> FailpointSpec* {
    const char* env = std::getenv("PROFILED_FAILPOINT");
    if (env == nullptr) return nullptr;
    const std::string text = env;
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos) return nullptr;
    auto* s = new FailpointSpec();  // lives for the process
    s->name = text.substr(0, colon);
    s->remaining = std::strtol(text.c_str() + colon + 1, nullptr, 10);
    return s;
  }();
  return spec;
}

inline void HitFailpoint(const char* name) {
  FailpointSpec* spec = ArmedFailpoint();
  if (spec == nullptr || spec->name != name) return;
  if (spec->remaining.fetch_sub(1) == 1) std::raise(SIGKILL);
}

struct ErrorFailpoint {
  std::atomic<const char*> name{nullptr};  // a string literal or leaked copy
  std::atomic<long> remaining{0};
};

inline ErrorFailpoint& ErrorFailpointSpec() {
  static ErrorFailpoint* spec = [] {
    auto* s = new ErrorFailpoint();  // lives for the process
    if (const char* env = std::getenv("PROFILED_FAILPOINT_ERRORS")) {
      const std::string text = env;
      const size_t colon = text.rfind(':');
      if (colon != std::string::npos) {
        s->name = (new std::string(text.substr(0, colon)))->c_str();
        s->remaining = std::strtol(text.c_str() + colon + 1, nullptr, 10);
      }
    }
    return s;
  }();
  return *spec;
}

// The next `count` hits of `name` fail (0 disarms). `name` must outlive the process.
inline void ArmFailpointErrors(const char* name, long count) {
  ErrorFailpoint& spec = ErrorFailpointSpec();
  spec.remaining = 0;
  spec.name = name;
  spec.remaining = count;
}

inline bool HitErrorFailpoint(const char* name) {
  ErrorFailpoint& spec = ErrorFailpointSpec();
  const char* armed = spec.name.load();
  if (armed == nullptr || std::string_view(armed) != name) return false;
  long left = spec.remaining.load();
  while (left > 0 && !spec.remaining.compare_exchange_weak(left, left - 1)) {
  }
  return left > 0;
}

}  // namespace profiled::internal

#define PROFILED_FAILPOINT(name) ::profiled::internal::HitFailpoint(name)
#define PROFILED_FAILPOINT_ERROR(name) ::profiled::internal::HitErrorFailpoint(name)
