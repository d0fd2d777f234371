// AppConfig: profiled's one YAML configuration file, parsed and validated.
//
//   absl::StatusOr<AppConfig> config = LoadConfigFile("profiled.yaml");
//   // on error: message lists every problem, one per line, each with its path:
//   //   input.topics: must list at least one topic
//   //   scoring.families.brand.half_life: bad duration 'x' (use e.g. 30m, 12h, 7d)
//
// Unknown keys are errors (a typo must not silently fall back to a default).
// Every key, its meaning and default is documented in docs/configuration.md.
// Only services/ use this module; libraries take their own Options structs.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "profiled/base/log.h"
#include "profiled/kafka/consumer.h"
#include "profiled/kafka/properties.h"
#include "profiled/obs/http_server.h"
#include "profiled/pipeline/runtime.h"
#include "profiled/store/profile_store.h"

namespace profiled::config {

inline constexpr std::string_view kEmbeddedBootstrap = "embedded";

struct AppConfig {
  // kafka.bootstrap: "embedded" starts an in-process mock cluster.
  std::string bootstrap = std::string(kEmbeddedBootstrap);
  // embedded.partitions: partitions of each topic the embedded cluster creates.
  int embedded_partitions = 4;
  // kafka.properties, merged under consumer_/producer_properties.
  kafka::Properties kafka_properties;
  kafka::Properties consumer_properties;
  kafka::Properties producer_properties;

  // input.*, output.*, store.*, scoring.*, identity.*, privacy.*, signals.*,
  // health.*: everything the runtime takes, with its own defaults (one
  // source). The consumer's and producers' properties are filled from the
  // kafka section when the service starts (ConsumerProperties below).
  pipeline::RuntimeOptions runtime;
  // cluster.mode partitioned: the instance is one of many sharing the
  // input through the repartition topic (docs/scaling.md); cluster.partitions
  // and the two internal topics.
  bool partitioned = false;
  // signals.purchase_model.refit_every was given (partitioned mode cannot
  // fit yet, and says so when asked to; its default is simply not used).
  bool refit_set = false;
  int32_t partitions = 12;
  std::string repartition_topic = "profiled.repartition";
  std::string changelog_topic = "profiled.changelog";
  // cluster.internal_retention: how long the internal topics may keep a
  // record (the repartition topic's retention.ms, and the changelog's
  // min.compaction.lag.ms plus segment.ms): stated on erasure receipts.
  int64_t internal_retention_ms = 7LL * 24 * 3600 * 1000;
  // Warm copies of the next members' partitions (partitioned mode).
  int standby_replicas = 0;
  // http.listen: /metrics, /healthz and /v1 on one address.
  obs::HttpServerOptions http;
  // http.token: when set, /v1/* requires "Authorization: Bearer <token>".
  std::string http_token;
  // log.level and log.format: see profiled/base/log.h.
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;

  bool embedded() const { return bootstrap == kEmbeddedBootstrap; }
  // Properties for the consumer / producer: bootstrap, common, then specific.
  kafka::Properties ConsumerProperties(const std::string& bootstrap_servers) const;
  kafka::Properties ProducerProperties(const std::string& bootstrap_servers) const;
};

// The configuration used when no file is given (the embedded demo).
AppConfig DefaultConfig();

// Parses YAML text; every problem is reported, each with its YAML path.
[[nodiscard]] absl::StatusOr<AppConfig> ParseConfig(std::string_view yaml_text);
[[nodiscard]] absl::StatusOr<AppConfig> LoadConfigFile(const std::string& path);

// A mapped-JSON field map on its own (the `map:` block of an input topic),
// e.g. for `profilectl produce --format json --map FILE`.
[[nodiscard]] absl::StatusOr<ingest::FieldMap> ParseFieldMap(std::string_view yaml_text);

// "30m", "12h", "7d", "1500ms", "2w" -> milliseconds; nullopt when malformed.
std::optional<int64_t> ParseDurationMs(std::string_view text);

}  // namespace profiled::config
