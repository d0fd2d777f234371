// Shared test helpers: status assertions, temp dirs, waiting with a deadline,
// event builders and the brute-force reference the assertions compare with.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "profiled/base/status_macros.h"
#include "profiled/v1/event.pb.h"

// The status variable is named per line so REQUIRE_OK can nest (a lambda
// with its own REQUIRE_OK passed to a call checked by REQUIRE_OK).
#define REQUIRE_OK(expr) PROFILED_REQUIRE_OK_IMPL(expr, PROFILED_CONCAT(profiled_test_status_, __LINE__))
#define PROFILED_REQUIRE_OK_IMPL(expr, var) \
  do {                                      \
    const ::absl::Status var = (expr);      \
    INFO(var.ToString());                   \
    REQUIRE(var.ok());                      \
  } while (0)

namespace profiled::testing {

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The contents of a file of the source tree, e.g. "tests/data/segment-spec/x.json".
std::string ReadSourceFile(const std::string& relative_path);

// Polls `condition` until it holds or `timeout` passes; returns whether it held.
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout = std::chrono::seconds(60));

// |actual - expected| <= rel * max(|expected|, |actual|), with a tiny absolute floor.
inline bool RelativelyClose(double actual, double expected, double rel = 1e-9) {
  const double scale = std::max(std::fabs(expected), std::fabs(actual));
  return std::fabs(actual - expected) <= rel * scale + 1e-300;
}

// Brute force: sum of w * 2^(-(now - t) / h), written independently of core.
inline double BruteForceDecay(const std::vector<std::pair<double, int64_t>>& weighted_times,
                              int64_t now_ms, double half_life_ms) {
  double sum = 0;
  for (const auto& [w, t] : weighted_times) {
    sum += w * std::pow(2.0, -static_cast<double>(now_ms - t) / half_life_ms);
  }
  return sum;
}

// The value of the first sample of metric `name` in Prometheus text whose
// line contains `labels` (e.g. `reason="output_refused"`); -1 when absent.
double MetricValue(const std::string& text, const std::string& name,
                   const std::string& labels = "");

// A valid product event for user `user_id`.
v1::InteractionEvent MakeEvent(const std::string& event_id, const std::string& type,
                               int64_t event_time_ms, const std::string& user_id,
                               const std::string& category = "", const std::string& product = "",
                               const std::string& brand = "");

}  // namespace profiled::testing
