#include "app.h"

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "profile_lookup.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/core/clock.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/pipeline/partitioned_runtime.h"
#include "profiled/pipeline/runtime.h"
#include "profiled/store/profile_store.h"
#include "replay.h"
#include "summary.h"

namespace profiled::app {

App::App(config::AppConfig config, RunOptions run)
    : config_(std::move(config)),
      run_(std::move(run)),
      wall_clock_(std::make_unique<core::SystemClock>()),
      replay_(std::make_unique<ReplayProgress>()) {}

App::~App() {
  if (replay_thread_.joinable()) replay_thread_.join();
}

absl::StatusOr<std::unique_ptr<App>> App::Create(const config::AppConfig& config,
                                                 const RunOptions& run) {
  std::unique_ptr<App> app(new App(config, run));
  RETURN_IF_ERROR(app->Start());
  return app;
}

absl::Status App::Start() {
  if (config_.embedded()) {
    ASSIGN_OR_RETURN(cluster_, kafka::MockCluster::Start(1));
    for (const std::string& topic : config_.runtime.consumer.topics) {
      RETURN_IF_ERROR(cluster_->CreateTopic(topic, config_.embedded_partitions));
    }
    if (const std::string& control = config_.runtime.pipeline.control_topic; !control.empty()) {
      RETURN_IF_ERROR(cluster_->CreateTopic(control, config_.embedded_partitions));
    }
    RETURN_IF_ERROR(
        cluster_->CreateTopic(config_.runtime.pipeline.output_topic, config_.embedded_partitions));
    RETURN_IF_ERROR(cluster_->CreateTopic(config_.runtime.dead_letter_topic, 1));
    RETURN_IF_ERROR(cluster_->CreateTopic(config_.runtime.lease.topic, 1));
    if (!config_.runtime.pipeline.receipts_topic.empty()) {
      RETURN_IF_ERROR(cluster_->CreateTopic(config_.runtime.pipeline.receipts_topic, 1));
    }
    if (config_.partitioned) {
      RETURN_IF_ERROR(cluster_->CreateTopic(config_.repartition_topic, config_.partitions));
      RETURN_IF_ERROR(cluster_->CreateTopic(config_.changelog_topic, config_.partitions));
    }
    bootstrap_ = cluster_->bootstrap();
    LogInfo("embedded Kafka mock cluster at ", bootstrap_);
  } else {
    bootstrap_ = config_.bootstrap;
  }

  if (run_.fresh) {
    std::error_code ec;
    std::filesystem::remove_all(config_.runtime.store.path, ec);
    if (ec)
      return absl::InternalError(
          absl::StrCat("removing ", config_.runtime.store.path, ": ", ec.message()));
  }
  if (config_.partitioned) return StartPartitioned();
  pipeline::RuntimeOptions options = config_.runtime;
  options.consumer.properties = config_.ConsumerProperties(bootstrap_);
  options.producer_properties = config_.ProducerProperties(bootstrap_);
  if (options.lease.advertised_http.empty()) options.lease.advertised_http = config_.http.listen;
  ASSIGN_OR_RETURN(runtime_,
                   pipeline::Runtime::Start(options, metrics_.registry(), *wall_clock_,
                                            [this] { return stop_ != nullptr && *stop_; }));
  store::ProfileStore& store = runtime_->store();
  if (config_.embedded()) {
    // The embedded broker starts empty every time: positions stored against
    // an earlier one would skip its messages. (Nothing was consumed yet.)
    ASSIGN_OR_RETURN(std::vector<store::PartitionPosition> positions, store.LoadPositions());
    if (!positions.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("store ", config_.runtime.store.path,
                       " holds positions from an earlier embedded broker; "
                       "pass --fresh to start over or point store.path elsewhere"));
    }
  }
  LogInfo("store open at ", config_.runtime.store.path, " (outbox holds ", store.OutboxDepth(),
          ")");
  RETURN_IF_ERROR(StartHttp());

  if (!run_.replay_path.empty()) {
    const std::string topic = config_.runtime.consumer.topics.front();
    kafka::Properties props = config_.ProducerProperties(bootstrap_);
    replay_thread_ = std::thread([this, topic, props] {
      absl::StatusOr<uint64_t> n = ReplayRees46File(run_.replay_path, topic, props, *replay_);
      if (!n.ok()) {
        LogError("replay failed: ", n.status().ToString());
        replay_failed_ = true;
      } else {
        LogInfo("replayed ", *n, " events from ", run_.replay_path, " onto ", topic);
      }
    });
  } else {
    replay_->done = true;
  }
  return absl::OkStatus();
}

absl::Status App::StartProbes(const pipeline::Health& health) {
  ASSIGN_OR_RETURN(http_, obs::HttpServer::Start(config_.http));
  // Probes answer on the event loop and scrapes on a worker of their own: a
  // busy /v1 or a slow scrape never delays them.
  http_->Handle(
      "/metrics", [this](const obs::HttpRequest&) { return metrics_.Render(); },
      obs::HttpLane::kProbe);
  http_->Handle(
      "/healthz", [](const obs::HttpRequest&) { return obs::HttpResponse::Text(200, "ok\n"); },
      obs::HttpLane::kInline);
  http_->Handle(
      "/readyz",
      [&health](const obs::HttpRequest&) {
        return obs::HttpResponse::Text(health.ready() ? 200 : 503, health.Describe() + "\n");
      },
      obs::HttpLane::kInline);
  return absl::OkStatus();
}

absl::Status App::StartPartitioned() {
  pipeline::PartitionedOptions options;
  options.runtime = config_.runtime;
  options.runtime.consumer.properties = config_.ConsumerProperties(bootstrap_);
  options.runtime.producer_properties = config_.ProducerProperties(bootstrap_);
  options.partitions = config_.partitions;
  options.repartition_topic = config_.repartition_topic;
  options.changelog_topic = config_.changelog_topic;
  options.internal_retention_ms = config_.internal_retention_ms;
  options.standby_replicas = config_.standby_replicas;
  if (options.runtime.lease.advertised_http.empty()) {
    options.runtime.lease.advertised_http = config_.http.listen;
  }
  ASSIGN_OR_RETURN(partitioned_,
                   pipeline::PartitionedRuntime::Start(options, metrics_.registry(), *wall_clock_));
  LogInfo("partitioned mode: ", config_.partitions, " partitions of ", config_.repartition_topic,
          ", stores under ", config_.runtime.store.path);
  RETURN_IF_ERROR(PrepareLookups());
  RETURN_IF_ERROR(StartProbes(partitioned_->health()));
  http_->Handle("/v1/profiles/",
                RequireBearer(config_.http_token,
                              PartitionedProfileLookup{*partitioned_, View(),
                                                       options.runtime.lease.advertised_http}));
  http_->Handle(
      "/v1/merges/",
      RequireBearer(config_.http_token, PartitionedMergeAuditLookup{
                                            *partitioned_, options.runtime.lease.advertised_http}));
  LogInfo("http: /metrics /healthz /readyz /v1/profiles /v1/merges on port ", http_->port());
  replay_->done = run_.replay_path.empty();
  if (!run_.replay_path.empty()) {
    return absl::InvalidArgumentError("--replay is not supported in partitioned mode yet");
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> App::RunOnce() {
  if (!partitioned_) return runtime_->RunOnce();
  absl::StatusOr<size_t> n = partitioned_->RunOnce();
  if (n.ok() && *n > 0) idle_since_ = absl::InfiniteFuture();
  if (n.ok() && *n == 0 && idle_since_ == absl::InfiniteFuture()) idle_since_ = absl::Now();
  return n;
}

ProfileView App::View() const {
  return {config_.runtime.pipeline.scoring, *wall_clock_, config_.runtime.pipeline.clock_mode,
          *identity_rules_, *signals_};
}

absl::Status App::PrepareLookups() {
  ASSIGN_OR_RETURN(identity::IdentityRules rules,
                   identity::IdentityRules::Create(config_.runtime.pipeline.identity));
  identity_rules_ = std::make_unique<identity::IdentityRules>(std::move(rules));
  // Single mode: the pipeline's own definitions, so lookups use the purchase
  // model the fitter set.
  signals_ = runtime_ ? std::make_unique<signals::Signals>(runtime_->pipeline().signals())
                      : std::make_unique<signals::Signals>(config_.runtime.pipeline.signals);
  return absl::OkStatus();
}

absl::Status App::StartHttp() {
  RETURN_IF_ERROR(PrepareLookups());
  RETURN_IF_ERROR(StartProbes(runtime_->health()));
  http_->Handle("/v1/profiles/",
                RequireBearer(config_.http_token, ProfileLookup{runtime_->store(), View()}));
  http_->Handle("/v1/merges/",
                RequireBearer(config_.http_token, MergeAuditLookup{runtime_->store()}));
  LogInfo("http: /metrics /healthz /readyz /v1/profiles /v1/merges on port ", http_->port(),
          config_.http_token.empty() ? " (/v1 open: set http.token to require a bearer token)"
                                     : " (/v1 requires a bearer token)");
  return absl::OkStatus();
}

void App::PrintProgress() {
  auto n = [](double v) { return static_cast<unsigned long long>(v); };
  const pipeline::PipelineMetrics& pipeline_metrics = runtime_->metrics();
  const pipeline::PublisherMetrics& publisher_metrics = runtime_->publisher_metrics();
  std::printf(
      "[progress] replayed %llu/%llu | consumed %llu applied %llu rejected %llu | "
      "updates %llu published %llu | outbox %llu%s\n",
      n(replay_->produced.load()), n(replay_->total.load()), n(pipeline_metrics.ConsumedTotal()),
      n(pipeline_metrics.applied.Value()), n(pipeline_metrics.DeadLettersTotal()),
      n(pipeline_metrics.updates_enqueued.Value()), n(publisher_metrics.published.Value()),
      n(runtime_->store().OutboxDepth()),
      runtime_->pipeline().paused() ? " (paused: outbox full)" : "");
  std::fflush(stdout);
}

void App::PrintSummary() {
  const pipeline::PipelineMetrics& pipeline_metrics = runtime_->metrics();
  const pipeline::PublisherMetrics& publisher_metrics = runtime_->publisher_metrics();
  SummaryInput in;
  in.consumed = static_cast<uint64_t>(pipeline_metrics.ConsumedTotal());
  in.applied = static_cast<uint64_t>(pipeline_metrics.applied.Value());
  in.rejected = static_cast<uint64_t>(pipeline_metrics.DeadLettersTotal());
  in.published = static_cast<uint64_t>(publisher_metrics.published.Value());
  absl::StatusOr<std::string> text =
      RenderSummary(runtime_->store(), config_.runtime.pipeline.scoring, *signals_, in);
  if (!text.ok()) {
    LogError("summary: ", text.status().ToString());
    return;
  }
  std::printf("%s\n", text->c_str());
  std::fflush(stdout);
}

// Everything replayed is consumed, applied and published. Partitioned: idle
// for two seconds with every owned outbox empty (records other instances
// send keep arriving until the whole group is done).
bool App::Finished() {
  if (partitioned_) {
    return replay_->done && partitioned_->OutboxDepth() == 0 &&
           absl::Now() - idle_since_ >= absl::Seconds(2);
  }
  return replay_->done && runtime_->store().OutboxDepth() == 0 &&
         runtime_->pipeline().CaughtUp(1000);
}

int App::Run(const std::atomic<bool>& stop) {
  stop_ = &stop;
  int exit_code = 0;
  bool summarized = false;
  absl::Time next_progress = absl::Now() + absl::Seconds(1);
  absl::Time next_finish_check = absl::Now();
  while (!stop) {
    absl::StatusOr<size_t> n = RunOnce();
    if (absl::IsCancelled(n.status())) break;  // stop requested mid-batch: nothing committed
    if (!n.ok()) {
      LogError("pipeline stopped: ", n.status().ToString());
      exit_code = 1;
      break;
    }
    if (replay_failed_) {
      exit_code = 1;
      break;
    }
    const absl::Time now = absl::Now();
    if (now >= next_progress && runtime_) {
      PrintProgress();
      next_progress = now + absl::Seconds(1);
    }
    // Only when idle: a busy pipeline is not finished.
    if (*n == 0 && !summarized && now >= next_finish_check) {
      next_finish_check = now + absl::Milliseconds(500);
      if (Finished()) {
        if (runtime_) {
          PrintProgress();
          PrintSummary();
        }
        summarized = true;
        if (run_.once) break;
        std::printf("caught up; serving until Ctrl-C\n");
        std::fflush(stdout);
      }
    }
  }
  LogInfo("shutting down: leaving the group and draining the outbox");
  if (partitioned_) {
    if (!partitioned_->Shutdown(absl::Seconds(30))) {
      LogWarn("records left unpublished; a partition's next owner rebuilds them");
    }
    return exit_code;
  }
  if (!runtime_->Shutdown(absl::Seconds(30))) {
    LogWarn(runtime_->store().OutboxDepth(),
            " updates left in the outbox; they are published on restart");
  }
  return exit_code;
}

}  // namespace profiled::app
