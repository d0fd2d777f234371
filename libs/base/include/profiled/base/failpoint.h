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
#pragma once

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <string>

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

}  // namespace profiled::internal

#define PROFILED_FAILPOINT(name) ::profiled::internal::HitFailpoint(name)
