#include "synthetic_events.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "profiled/ingest/rees46.h"

namespace profiled::bench {

KeySampler::KeySampler(uint64_t population, Skew skew, double s, uint64_t seed)
    : population_(std::max<uint64_t>(population, 1)), skew_(skew), rng_(seed) {
  if (skew_ != Skew::kZipf) return;
  // An explicit CDF: exact for any s, 8 bytes per rank (80 MB at 10M ranks).
  cdf_.resize(population_);
  double sum = 0;
  for (uint64_t r = 0; r < population_; ++r) {
    sum += 1.0 / std::pow(static_cast<double>(r + 1), s);
    cdf_[r] = sum;
  }
  for (double& c : cdf_) c /= sum;
}

uint64_t KeySampler::Next() {
  if (skew_ == Skew::kSequential) return next_++ % population_;
  if (skew_ == Skew::kUniform) {
    return std::uniform_int_distribution<uint64_t>(0, population_ - 1)(rng_);
  }
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
  return std::min<uint64_t>(static_cast<uint64_t>(it - cdf_.begin()), population_ - 1);
}

absl::StatusOr<EventShapes> EventShapes::FromRees46Csv(std::string_view csv_text) {
  EventShapes out;
  ingest::Rees46Reader reader(csv_text);
  v1::InteractionEvent e;
  while (reader.Next(e)) {
    EventShape s;
    const std::string& type = e.type();
    s.event = type == "added_to_cart"       ? "Product Added"
              : type == "removed_from_cart" ? "Product Removed"
              : type == "order_completed"   ? "Order Completed"
                                            : "Product Viewed";
    s.product_id = e.commerce().product_id();
    s.category = e.commerce().category();
    s.brand = e.commerce().brand();
    s.price = e.commerce().price();
    out.shapes_.push_back(std::move(s));
  }
  if (out.shapes_.empty()) return absl::InvalidArgumentError("no usable REES46 rows");
  return out;
}

std::string EventShapes::SegmentJson(uint64_t n, uint64_t user_rank, int64_t time_ms) const {
  const EventShape& s = shapes_[n % shapes_.size()];
  const std::string time =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(time_ms), absl::UTCTimeZone());
  std::string json;
  json.reserve(320);
  absl::StrAppend(&json, R"({"type":"track","event":")", s.event, R"(","messageId":"bench-)", n,
                  R"(","userId":"u)", user_rank, R"(","anonymousId":"a)", user_rank,
                  R"(","timestamp":")", time,
                  R"(","context":{"library":{"name":"analytics.js","version":"4.1.0"},"locale":"en-US"},)",
                  R"("properties":{"product_id":")", s.product_id, R"(","category":")",
                  s.category.empty() ? "unknown" : s.category, R"(","brand":")",
                  s.brand.empty() ? "unknown" : s.brand, R"(","price":)", s.price,
                  R"(,"currency":"USD"}})");
  return json;
}

}  // namespace profiled::bench
