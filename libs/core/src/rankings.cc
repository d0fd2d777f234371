#include "profiled/core/rankings.h"

namespace profiled::core {
namespace {

using RankedVector = std::vector<ScoreFamily::Ranked>;

// This thread's spare vectors: a family's worth each, at most a few
// Rankings' worth kept (a ranking is views and numbers, bounded by the
// families' key caps).
constexpr size_t kPoolMax = 4 * kFamilyCount;
thread_local std::vector<std::unique_ptr<RankedVector>> pool;

}  // namespace

std::unique_ptr<RankedVector> Rankings::TakeVector() {
  if (pool.empty()) return std::make_unique<RankedVector>();
  std::unique_ptr<RankedVector> v = std::move(pool.back());
  pool.pop_back();
  return v;
}

Rankings::~Rankings() {
  for (std::unique_ptr<RankedVector>& ranked : ranked_) {
    if (ranked != nullptr && pool.size() < kPoolMax) pool.push_back(std::move(ranked));
  }
}

}  // namespace profiled::core
