// App: the one place that wires concrete types — Kafka (embedded mock
// cluster or a real one), the RocksDB store, the publisher and the pipeline —
// and runs them until stopped.
//
//   ASSIGN_OR_RETURN(auto app, App::Create(config, run_options));
//   return app->Run(stop_flag);     // exit code
//
// Shutdown (SIGTERM/SIGINT): the current batch finishes and commits, the
// consumer leaves the group, the publisher drains the outbox, exit 0.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "profile_lookup.h"
#include "profiled/config/app_config.h"
#include "profiled/identity/identity_rules.h"
#include "profiled/obs/http_server.h"
#include "profiled/obs/metrics.h"
#include "profiled/signals/signals.h"

namespace profiled::kafka {
class MockCluster;
}
namespace profiled::pipeline {
class Health;
class Runtime;
class PartitionedRuntime;
}  // namespace profiled::pipeline
namespace profiled::core {
class Clock;
}

namespace profiled::app {

struct ReplayProgress;

struct RunOptions {
  // REES46 CSV to produce onto the first input topic while running.
  std::string replay_path;
  // Exit 0 once everything replayed (or already on the topics) is applied
  // and published.
  bool once = false;
  // Delete the store directory before opening it.
  bool fresh = false;
};

class App {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<App>> Create(const config::AppConfig& config,
                                                                   const RunOptions& run);
  ~App();

  // Runs until `stop` is set (or, with --once, until done). Returns the
  // process exit code.
  int Run(const std::atomic<bool>& stop);

 private:
  App(config::AppConfig config, RunOptions run);
  [[nodiscard]] absl::Status Start();
  void PrintProgress();
  void PrintSummary();
  bool Finished();

  [[nodiscard]] absl::Status StartHttp();
  // The identity rules and signals lookups use, then how they render.
  [[nodiscard]] absl::Status PrepareLookups();
  ProfileView View() const;
  // The HTTP server with /metrics, /healthz and /readyz (from `health`).
  [[nodiscard]] absl::Status StartProbes(const pipeline::Health& health);
  // cluster.mode partitioned: one instance of many (docs/scaling.md).
  [[nodiscard]] absl::Status StartPartitioned();
  absl::StatusOr<size_t> RunOnce();

  config::AppConfig config_;
  RunOptions run_;
  std::string bootstrap_;
  std::unique_ptr<core::Clock> wall_clock_;
  std::unique_ptr<identity::IdentityRules> identity_rules_;  // for lookups
  std::unique_ptr<signals::Signals> signals_;                // for lookups
  obs::Metrics metrics_;
  std::unique_ptr<kafka::MockCluster> cluster_;
  std::unique_ptr<pipeline::Runtime> runtime_;                 // single mode
  std::unique_ptr<pipeline::PartitionedRuntime> partitioned_;  // partitioned mode
  absl::Time idle_since_ = absl::InfiniteFuture();  // partitioned: since the last busy poll
  std::unique_ptr<ReplayProgress> replay_;
  std::thread replay_thread_;
  std::atomic<bool> replay_failed_{false};
  const std::atomic<bool>* stop_ = nullptr;  // set by Run()
  // Last: stopped first, before anything its handlers read.
  std::unique_ptr<obs::HttpServer> http_;
};

}  // namespace profiled::app
