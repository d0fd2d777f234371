// devbroker: runs librdkafka's mock Kafka cluster (a real Kafka-protocol
// broker on 127.0.0.1) until SIGTERM, for tools and tests in separate
// processes. The first line of stdout is the bootstrap address.
//
//   devbroker --topic profiled.events:8 --topic profiled.updates:8
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "profiled/kafka/mock_cluster.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

constexpr const char* kUsage = R"(usage: devbroker [--brokers N] [--topic NAME:PARTITIONS]...

Runs an in-process Kafka mock cluster on 127.0.0.1 until SIGTERM or SIGINT.
Prints the bootstrap address as the first line of stdout. Topics not created
here are auto-created with 4 partitions on first use.
)";

}  // namespace

int main(int argc, char** argv) {
  int brokers = 1;
  std::vector<std::pair<std::string, int>> topics;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--topic" || arg == "--brokers") && i + 1 >= argc) {
      std::fprintf(stderr, "devbroker: %s needs a value\n%s", arg.c_str(), kUsage);
      return 2;
    }
    if (arg == "--brokers") {
      if (!absl::SimpleAtoi(argv[++i], &brokers) || brokers < 1) {
        std::fprintf(stderr, "devbroker: --brokers must be a positive integer\n");
        return 2;
      }
    } else if (arg == "--topic") {
      const std::string spec = argv[++i];
      const size_t colon = spec.rfind(':');
      int partitions = 0;
      if (colon == std::string::npos || colon == 0 ||
          !absl::SimpleAtoi(spec.substr(colon + 1), &partitions) || partitions < 1) {
        std::fprintf(stderr, "devbroker: --topic wants NAME:PARTITIONS, got '%s'\n", spec.c_str());
        return 2;
      }
      topics.emplace_back(spec.substr(0, colon), partitions);
    } else if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "devbroker: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }

  auto cluster = profiled::kafka::MockCluster::Start(brokers);
  if (!cluster.ok()) {
    std::fprintf(stderr, "devbroker: %s\n", std::string(cluster.status().message()).c_str());
    return 1;
  }
  for (const auto& [name, partitions] : topics) {
    if (auto s = (*cluster)->CreateTopic(name, partitions); !s.ok()) {
      std::fprintf(stderr, "devbroker: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::printf("%s\n", (*cluster)->bootstrap().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "devbroker: %d broker(s), %zu topic(s) created; SIGTERM stops\n", brokers,
               topics.size());
  while (!g_stop) usleep(100 * 1000);
  return 0;
}
