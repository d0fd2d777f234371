#include "synthetic_events.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

#include "profiled/ingest/segment_json.h"
#include "support/test_support.h"

namespace profiled::bench {
namespace {

TEST_CASE("zipf keys follow 1/r^s and uniform keys cover the population", "[loadgen]") {
  constexpr uint64_t kPopulation = 1000;
  constexpr int kDraws = 400000;
  KeySampler zipf(kPopulation, KeySampler::Skew::kZipf, 1.1, 7);
  std::vector<int> counts(kPopulation, 0);
  for (int i = 0; i < kDraws; ++i) {
    const uint64_t r = zipf.Next();
    REQUIRE(r < kPopulation);
    ++counts[r];
  }
  // P(rank 1) / P(rank 2) = 2^1.1; P(rank 1) / P(rank 10) = 10^1.1.
  CHECK(static_cast<double>(counts[0]) / counts[1] == Approx(std::pow(2.0, 1.1)).epsilon(0.05));
  CHECK(static_cast<double>(counts[0]) / counts[9] == Approx(std::pow(10.0, 1.1)).epsilon(0.1));

  KeySampler uniform(kPopulation, KeySampler::Skew::kUniform, 0, 7);
  std::vector<int> seen(kPopulation, 0);
  double sum = 0;
  for (int i = 0; i < kDraws; ++i) {
    const uint64_t r = uniform.Next();
    REQUIRE(r < kPopulation);
    ++seen[r];
    sum += static_cast<double>(r);
  }
  CHECK(sum / kDraws == Approx((kPopulation - 1) / 2.0).epsilon(0.01));
  CHECK(*std::min_element(seen.begin(), seen.end()) > 0);
}

TEST_CASE("sequential keys name every profile once before any repeats", "[loadgen]") {
  KeySampler sequential(5, KeySampler::Skew::kSequential, 0, 7);
  std::vector<uint64_t> drawn;
  for (int i = 0; i < 12; ++i) drawn.push_back(sequential.Next());
  CHECK(drawn == std::vector<uint64_t>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1});
}

TEST_CASE("generated Segment JSON is a ~300-byte track event our decoder accepts", "[loadgen]") {
  std::ifstream in(std::string(PROFILED_SOURCE_DIR) +
                   "/deploy/demo/data/rees46-2019oct-head/events.csv");
  std::stringstream csv;
  csv << in.rdbuf();
  auto shapes = EventShapes::FromRees46Csv(csv.str());
  REQUIRE_OK(shapes.status());
  CHECK(shapes->size() == 5019);
  ingest::SegmentDecoder decoder({});
  size_t total_bytes = 0;
  for (uint64_t n = 0; n < 500; ++n) {
    const std::string json = shapes->SegmentJson(n, n % 17, 1795382576123);
    total_bytes += json.size();
    std::vector<v1::InteractionEvent> out;
    auto rejection = decoder.Decode(json, out);
    INFO(json);
    REQUIRE_FALSE(rejection.has_value());
    REQUIRE(out.size() == 1);
    CHECK(out[0].identities().user_id() == "u" + std::to_string(n % 17));
    CHECK(out[0].event_id() == "bench-" + std::to_string(n));
    CHECK(out[0].event_time_ms() == 1795382576123);
    CHECK(!out[0].commerce().product_id().empty());
  }
  const double mean = static_cast<double>(total_bytes) / 500;
  CHECK(mean > 250);
  CHECK(mean < 380);
}

}  // namespace
}  // namespace profiled::bench
