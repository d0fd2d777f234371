// Synthetic load shaped like the real REES46 sample: each generated event
// copies the event type, product, category, brand and price of a real row,
// and gets a user key drawn from a configurable population and skew. The
// output is Segment JSON of about 300 bytes, what a web tracker sends.
//
//   ASSIGN_OR_RETURN(EventShapes shapes, EventShapes::FromRees46Csv(csv_text));
//   KeySampler keys(100'000, KeySampler::Skew::kZipf, 1.1, /*seed=*/7);
//   std::string json = shapes.SegmentJson(i, keys.Next(), now_ms);
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace profiled::bench {

// Draws user ranks in [0, population): uniform, or Zipf with exponent s
// (rank r has probability proportional to 1 / (r + 1)^s), or sequential
// (0, 1, 2, ... wrapping: every event a new profile until all exist).
class KeySampler {
 public:
  enum class Skew { kUniform, kZipf, kSequential };
  KeySampler(uint64_t population, Skew skew, double s, uint64_t seed);
  uint64_t Next();
  uint64_t population() const { return population_; }

 private:
  uint64_t population_;
  Skew skew_;
  std::mt19937_64 rng_;
  std::vector<double> cdf_;  // Zipf only: cumulative probability by rank
  uint64_t next_ = 0;        // sequential only
};

// One real row's interaction, minus the user.
struct EventShape {
  std::string event;  // Segment event name: "Product Viewed", ...
  std::string product_id;
  std::string category;
  std::string brand;
  double price = 0;
};

class EventShapes {
 public:
  [[nodiscard]] static absl::StatusOr<EventShapes> FromRees46Csv(std::string_view csv_text);
  size_t size() const { return shapes_.size(); }
  // Segment track JSON for the `n`th generated event (shape n mod size) of
  // user `user_rank`, at `time_ms`. messageId is unique per n.
  std::string SegmentJson(uint64_t n, uint64_t user_rank, int64_t time_ms) const;

 private:
  std::vector<EventShape> shapes_;
};

}  // namespace profiled::bench
