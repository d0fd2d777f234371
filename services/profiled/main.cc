// profiled: unified real-time customer profiles, Kafka in, Kafka out.
// Parses flags and config, then hands over to App.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "app.h"
#include "profiled/base/log.h"
#include "profiled/config/app_config.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

constexpr const char* kUsage = R"(usage: profiled [options]

  --config FILE      YAML configuration (docs/configuration.md); default: built-in
  --embedded-kafka   run against an in-process Kafka mock cluster
  --replay FILE      produce a REES46 CSV onto the first input topic while running
  --once             exit 0 once everything on the input is applied and published
  --fresh            delete the store directory first
  --store PATH       override store.path
  --http HOST:PORT   override http.listen (port 0 picks a free port)
  --check-config     validate the configuration, print every problem, and exit
  --help             this text
)";

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, store_path, http_listen;
  bool embedded = false, check_only = false;
  profiled::app::RunOptions run;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* flag) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "profiled: %s needs a value\n%s", flag, kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--config") config_path = value("--config");
    else if (arg == "--embedded-kafka") embedded = true;
    else if (arg == "--replay") run.replay_path = value("--replay");
    else if (arg == "--once") run.once = true;
    else if (arg == "--fresh") run.fresh = true;
    else if (arg == "--store") store_path = value("--store");
    else if (arg == "--http") http_listen = value("--http");
    else if (arg == "--check-config") check_only = true;
    else if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "profiled: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }

  absl::StatusOr<profiled::config::AppConfig> config =
      config_path.empty() ? profiled::config::DefaultConfig()
                          : profiled::config::LoadConfigFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "profiled: invalid configuration %s:\n%s\n", config_path.c_str(),
                 std::string(config.status().message()).c_str());
    return 2;
  }
  if (check_only) {
    std::printf("configuration %s is valid\n", config_path.c_str());
    return 0;
  }
  profiled::SetMinLogLevel(config->log_level);
  profiled::SetLogFormat(config->log_format);
  if (embedded) config->bootstrap = std::string(profiled::config::kEmbeddedBootstrap);
  if (!store_path.empty()) config->runtime.store.path = store_path;
  if (!http_listen.empty()) config->http.listen = http_listen;

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  absl::StatusOr<std::unique_ptr<profiled::app::App>> app =
      profiled::app::App::Create(*config, run);
  if (!app.ok()) {
    std::fprintf(stderr, "profiled: %s\n", std::string(app.status().message()).c_str());
    return 1;
  }
  return (*app)->Run(g_stop);
}
