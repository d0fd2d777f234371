// model_fit_bench: what one fit of the purchase model from the store costs
// (pipeline/model_fitter.h), beside the raw scan it cannot avoid: reading
// and decoding every stored profile, in the same run on the same store.
//
//   model_fit_bench [--profiles 200000] [--customers 0.3] [--runs 3] [--dir DIR]
//
// The store holds `--profiles` copies of a 50-event profile (~4 KB
// encoded), a `--customers` share of them customers whose order days are
// simulated from BG/NBD (tests/support/purchase_simulation.h) over two years. Prints, per run and
// as medians: the raw scan (ReadProfiles + DecodeProfileState), the fit (scan, buckets,
// maximization; unthrottled), their ratio, and the process's peak RSS before and after the fits.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "profiled/codec/state_codec.h"
#include "profiled/core/profile.h"
#include "profiled/pipeline/model_fitter.h"
#include "profiled/signals/signals.h"
#include "profiled/store/profile_store.h"
#include "support/purchase_simulation.h"

namespace profiled::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kDayMs = 24 * 3600 * 1000LL;
constexpr int64_t kNowMs = 1'790'000'000'000;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Peak resident memory of this process, MiB (VmHWM).
double PeakRssMiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1;
}

// A profile with 50 events over 50 products in 10 categories.
core::Profile Template() {
  const core::ScoringOptions options;
  core::Profile p = core::Profile::New("template");
  for (int i = 0; i < 50; ++i) {
    v1::InteractionEvent e;
    e.set_event_id(absl::StrCat("e", i));
    e.set_type(i % 10 == 9 ? "added_to_cart" : "product_viewed");
    e.set_event_time_ms(kNowMs - (50 - i) * 3'600'000LL);
    e.set_channel(i % 3 == 0 ? "app" : "web");
    e.mutable_identities()->set_user_id("u");
    e.mutable_commerce()->set_category(absl::StrCat("category-", i % 10));
    e.mutable_commerce()->set_product_id(absl::StrCat("product-", i));
    e.mutable_commerce()->set_brand(absl::StrCat("brand-", i % 7));
    e.mutable_commerce()->set_price(9.99 + i);
    core::ApplyEvent(e, options, p);
  }
  return p;
}

int Run(int argc, char** argv) {
  int64_t profiles = 200'000;
  double customers = 0.3;
  int runs = 3;
  std::string dir = "/tmp/model_fit_bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    bool ok = true;
    if (flag == "--profiles") {
      ok = absl::SimpleAtoi(value, &profiles);
    } else if (flag == "--customers") {
      ok = absl::SimpleAtod(value, &customers);
    } else if (flag == "--runs") {
      ok = absl::SimpleAtoi(value, &runs);
    } else if (flag == "--dir") {
      dir = value;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "model_fit_bench: bad flag %s %s\n", flag.c_str(), value);
      return 2;
    }
  }
  std::filesystem::remove_all(dir);
  store::StoreOptions store_options;
  store_options.path = dir;
  auto opened = store::ProfileStore::Open(store_options);
  if (!opened.ok()) {
    std::fprintf(stderr, "model_fit_bench: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  store::ProfileStore& store = **opened;

  const core::Profile tmpl = Template();
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> coin(0, 1);
  // Customers buying as BG/NBD says (the CDNOW parameters), first orders
  // over two years.
  const int64_t start_day = kNowMs / kDayMs - 730;
  const std::vector<core::PurchaseDays> bought = testing::SimulatedOrderDays(
      {}, static_cast<int>(static_cast<double>(profiles) * customers) + 1, start_day, 700, kNowMs,
      42);
  size_t next_customer = 0;
  size_t state_bytes = 0;
  const Clock::time_point build = Clock::now();
  for (int64_t done = 0; done < profiles;) {
    store::CommitBatch batch;
    for (int i = 0; i < 10'000 && done < profiles; ++i, ++done) {
      core::Profile p = tmpl;
      p.id = absl::StrCat("p-", done);
      if (coin(rng) < customers && next_customer < bought.size()) {
        p.purchase_days = bought[next_customer++];
      }
      batch.profiles.push_back({p.id, codec::EncodeProfileState(p)});
      state_bytes = batch.profiles.back().second.size();
    }
    batch.profiles_added = static_cast<int64_t>(batch.profiles.size());
    if (done == profiles) batch.positions = {{"events", 0, done, kNowMs}};
    if (absl::Status s = store.Commit(batch); !s.ok()) {
      std::fprintf(stderr, "model_fit_bench: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::printf("store: %lld profiles (%.0f%% customers), %zu state bytes each, built in %.1f s\n",
              static_cast<long long>(profiles), customers * 100, state_bytes,
              Seconds(Clock::now() - build));
  const double rss_before = PeakRssMiB();

  const signals::Signals signals{signals::SignalOptions{}};
  prometheus::Registry registry;
  pipeline::ModelFitOptions options;
  options.every = absl::ZeroDuration();
  options.profiles_per_second = 100'000'000;  // unthrottled: the cost itself
  auto fitter = pipeline::ModelFitter::Start(options, store, signals, {}, registry);
  if (!fitter.ok()) return 1;
  std::vector<double> scans, fits;
  for (int r = 0; r < runs; ++r) {
    const Clock::time_point start = Clock::now();
    std::vector<std::pair<std::string, std::string>> piece;
    std::string after;
    int64_t decoded = 0;
    for (;;) {
      if (!store.ReadProfiles(after, pipeline::kModelFitPiece, piece).ok()) return 1;
      if (piece.empty()) break;
      after = piece.back().first;
      for (const auto& [id, bytes] : piece) decoded += codec::DecodeProfileState(bytes).ok();
    }
    scans.push_back(Seconds(Clock::now() - start));
    // A fit from the defaults each time (a later one would start at the optimum).
    signals.SetPurchaseModel({});
    const pipeline::ModelFitReport report = (*fitter)->FitNow();
    fits.push_back(absl::ToDoubleSeconds(report.took));
    std::printf(
        "run %d: raw scan %.2f s (%lld decoded) | fit %.2f s (%s, %llu customers, %lld-day "
        "buckets, %d iterations) | ratio %.2f\n",
        r + 1, scans.back(), static_cast<long long>(decoded), fits.back(), report.result.c_str(),
        static_cast<unsigned long long>(report.customers),
        static_cast<long long>(report.width_days), report.fit.iterations,
        fits.back() / scans.back());
  }
  std::sort(scans.begin(), scans.end());
  std::sort(fits.begin(), fits.end());
  const double scan = scans[scans.size() / 2], fit = fits[fits.size() / 2];
  std::printf(
      "median: raw scan %.2f s (%.2f us/profile) | fit %.2f s (%.2f us/profile) | ratio %.2f\n"
      "peak RSS: %.0f MiB after building the store, %.0f MiB after the fits\n",
      scan, scan / static_cast<double>(profiles) * 1e6, fit,
      fit / static_cast<double>(profiles) * 1e6, fit / scan, rss_before, PeakRssMiB());
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace profiled::bench

int main(int argc, char** argv) { return profiled::bench::Run(argc, argv); }
