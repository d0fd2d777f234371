#include "profiled/config/app_config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "profiled/ingest/event_decoder.h"
#include "profiled/pipeline/model_fitter.h"
#include "profiled/pipeline/output_limits.h"
#include "profiled/signals/purchase_buckets.h"

namespace profiled::config {
namespace {

// "analytics, personalization, marketing": the purposes configured.
std::string PurposeNames(const core::ConsentOptions& consent) {
  std::vector<std::string> names;
  for (const auto& [purpose, granted] : consent.defaults) names.push_back(purpose);
  return absl::StrJoin(names, ", ");
}

// Walks the YAML tree, collecting every problem with its dotted path.
class Reader {
 public:
  std::vector<std::string>& errors() { return errors_; }

  void Error(const std::string& path, absl::string_view message) {
    errors_.push_back(absl::StrCat(path, ": ", message));
  }

  // Reports keys of `node` not in `known`.
  void CheckKeys(const YAML::Node& node, const std::string& path,
                 std::initializer_list<absl::string_view> known) {
    if (!node.IsMap()) return;
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        Error(Join(path, key),
              absl::StrCat("unknown key (expected one of: ", absl::StrJoin(known, ", "), ")"));
      }
    }
  }

  bool IsMapOrAbsent(const YAML::Node& node, const std::string& path) {
    if (!node || node.IsNull() || node.IsMap()) return true;
    Error(path, "must be a mapping");
    return false;
  }

  void String(const YAML::Node& node, const std::string& path, std::string& out) {
    if (!node) return;
    if (!node.IsScalar()) return Error(path, "must be a string");
    out = Expand(node.as<std::string>(), path);
  }

  // "${NAME}" in a string value is the environment variable NAME: secrets
  // and the pod name come from the environment, not the file.
  std::string Expand(const std::string& value, const std::string& path) {
    std::string out;
    for (size_t i = 0; i < value.size(); ++i) {
      const size_t end = value.find('}', i);
      if (value.compare(i, 2, "${") != 0 || end == std::string::npos) {
        out.push_back(value[i]);
        continue;
      }
      const std::string name = value.substr(i + 2, end - i - 2);
      const char* env = name.empty() ? nullptr : std::getenv(name.c_str());
      if (env == nullptr) {
        Error(path, absl::StrCat("environment variable '", name, "' is not set"));
      } else {
        out += env;
      }
      i = end;
    }
    return out;
  }

  template <typename Int>
  void Integer(const YAML::Node& node, const std::string& path, Int& out, int64_t min,
               int64_t max) {
    if (!node) return;
    int64_t v = 0;
    if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &v)) {
      return Error(path, absl::StrCat("must be an integer, got '", Describe(node), "'"));
    }
    if (v < min || v > max) {
      return Error(path, absl::StrCat("must be between ", min, " and ", max, ", got ", v));
    }
    out = static_cast<Int>(v);
  }

  // A size given in MiB (`min`..`max`), stored in bytes.
  void Mebibytes(const YAML::Node& node, const std::string& path, size_t& bytes, int64_t min,
                 int64_t max) {
    int64_t mib = static_cast<int64_t>(bytes >> 20);
    Integer(node, path, mib, min, max);
    bytes = static_cast<size_t>(mib) << 20;
  }

  void Number(const YAML::Node& node, const std::string& path, double& out, double min,
              bool min_exclusive) {
    if (!node) return;
    double v = 0;
    if (!node.IsScalar() || !absl::SimpleAtod(node.Scalar(), &v) || !std::isfinite(v)) {
      return Error(path, absl::StrCat("must be a number, got '", Describe(node), "'"));
    }
    if (min_exclusive ? v <= min : v < min) {
      return Error(path, absl::StrCat("must be ", min_exclusive ? "> " : ">= ", min));
    }
    out = v;
  }

  void Bool(const YAML::Node& node, const std::string& path, bool& out) {
    if (!node) return;
    const std::string s = node.IsScalar() ? absl::AsciiStrToLower(node.Scalar()) : "";
    if (s == "true" || s == "yes" || s == "on") {
      out = true;
    } else if (s == "false" || s == "no" || s == "off") {
      out = false;
    } else {
      Error(path, "must be true or false");
    }
  }

  // `zero_ok`: 0ms is a meaningful setting (off), not a mistake.
  void DurationMs(const YAML::Node& node, const std::string& path, double& out_ms,
                  bool zero_ok = false) {
    if (!node) return;
    std::optional<int64_t> ms = node.IsScalar() ? ParseDurationMs(node.Scalar()) : std::nullopt;
    if (!ms || *ms < 0 || (*ms == 0 && !zero_ok)) {
      return Error(path, absl::StrCat("bad duration '", Describe(node), "' (use a ",
                                      zero_ok ? "" : "positive ",
                                      "number with a unit: 1500ms, 30s, 30m, 12h, 7d, 2w)"));
    }
    out_ms = static_cast<double>(*ms);
  }

  void StringList(const YAML::Node& node, const std::string& path, std::vector<std::string>& out) {
    if (!node) return;
    if (!node.IsSequence()) return Error(path, "must be a list of strings");
    out.clear();
    for (size_t i = 0; i < node.size(); ++i) {
      if (!node[i].IsScalar() || node[i].Scalar().empty()) {
        Error(absl::StrCat(path, "[", i, "]"), "must be a non-empty string");
        continue;
      }
      out.push_back(node[i].Scalar());
    }
  }

  void Properties(const YAML::Node& node, const std::string& path, kafka::Properties& out) {
    if (!node || node.IsNull()) return;
    if (!node.IsMap()) return Error(path, "must be a mapping of librdkafka properties");
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      if (!kv.second.IsScalar()) {
        Error(Join(path, key), "must be a scalar value");
        continue;
      }
      out.emplace_back(key, Expand(kv.second.Scalar(), Join(path, key)));
    }
  }

  static std::string Join(const std::string& path, absl::string_view key) {
    return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
  }

  static std::string Describe(const YAML::Node& node) {
    if (node.IsScalar()) return node.Scalar();
    if (node.IsSequence()) return "<list>";
    if (node.IsMap()) return "<mapping>";
    return "<null>";
  }

 private:
  std::vector<std::string> errors_;
};

void ReadKafka(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "kafka") || !n) return;
  r.CheckKeys(n, "kafka",
              {"bootstrap", "properties", "consumer_properties", "producer_properties"});
  r.String(n["bootstrap"], "kafka.bootstrap", c.bootstrap);
  if (c.bootstrap.empty()) r.Error("kafka.bootstrap", "must be 'embedded' or host:port list");
  r.Properties(n["properties"], "kafka.properties", c.kafka_properties);
  r.Properties(n["consumer_properties"], "kafka.consumer_properties", c.consumer_properties);
  r.Properties(n["producer_properties"], "kafka.producer_properties", c.producer_properties);
}

// A mapped-JSON topic's field map; the decoder checks pointers and fields.
void ReadFieldMap(Reader& r, const YAML::Node& n, const std::string& path, ingest::FieldMap& map) {
  if (!r.IsMapOrAbsent(n, path) || !n) return;
  r.CheckKeys(n, path, {"event_id", "type", "type_values", "time", "time_format", "fields"});
  if (n["event_id"] && n["event_id"].IsScalar()) {
    map.event_id = {n["event_id"].Scalar()};
  } else {
    r.StringList(n["event_id"], path + ".event_id", map.event_id);
  }
  r.String(n["type"], path + ".type", map.type);
  r.String(n["time"], path + ".time", map.time);
  if (n["time_format"]) {
    std::string f;
    r.String(n["time_format"], path + ".time_format", f);
    if (f == "auto")
      map.time_format = ingest::TimeFormat::kAuto;
    else if (f == "unix_s")
      map.time_format = ingest::TimeFormat::kUnixSeconds;
    else if (f == "unix_ms")
      map.time_format = ingest::TimeFormat::kUnixMillis;
    else if (f == "rfc3339")
      map.time_format = ingest::TimeFormat::kRfc3339;
    else
      r.Error(path + ".time_format",
              absl::StrCat("must be auto, unix_s, unix_ms or rfc3339, got '", f, "'"));
  }
  for (const char* key : {"type_values", "fields"}) {
    const YAML::Node m = n[key];
    const std::string sub = absl::StrCat(path, ".", key);
    if (!r.IsMapOrAbsent(m, sub) || !m) continue;
    for (const auto& kv : m) {
      const std::string k = kv.first.as<std::string>();
      if (!kv.second.IsScalar()) {
        r.Error(absl::StrCat(sub, ".", k), "must be a string");
        continue;
      }
      if (std::string_view(key) == "fields") {
        map.fields.emplace_back(k, kv.second.Scalar());
      } else {
        map.type_values[k] = kv.second.Scalar();
      }
    }
  }
  // The decoder's own checks, each reported under this map's path.
  absl::StatusOr<ingest::MappedJsonDecoder> check =
      ingest::MappedJsonDecoder::Create({"web", {}, map});
  if (!check.ok()) {
    for (absl::string_view line : absl::StrSplit(check.status().message(), '\n')) {
      r.Error(path, line);
    }
  }
}

// input.topics: each entry a topic name (Protobuf) or a mapping
// {name, format, channel, map}.
void ReadInputTopics(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!n) return;
  if (!n.IsSequence()) return r.Error("input.topics", "must be a list of topics");
  c.runtime.consumer.topics.clear();
  c.runtime.pipeline.inputs.clear();
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string path = absl::StrCat("input.topics[", i, "]");
    const YAML::Node& entry = n[i];
    pipeline::InputTopicOptions topic;
    std::string name;
    if (entry.IsScalar()) {
      name = entry.Scalar();
    } else if (entry.IsMap()) {
      r.CheckKeys(entry, path, {"name", "format", "channel", "map"});
      r.String(entry["name"], path + ".name", name);
      r.String(entry["format"], path + ".format", topic.format);
      const ingest::EventFormat* format = ingest::FindEventFormat(topic.format);
      if (format == nullptr) {
        r.Error(path + ".format", absl::StrCat("must be one of ", ingest::EventFormatNames(),
                                               ", got '", topic.format, "'"));
      } else if (format->takes_map && !entry["map"]) {
        r.Error(path + ".map", "format " + topic.format + " needs a field map");
      } else if (!format->takes_map && entry["map"]) {
        r.Error(path + ".map", "format " + topic.format + " takes no field map");
      } else if (entry["map"]) {
        ReadFieldMap(r, entry["map"], path + ".map", topic.map);
      }
      r.String(entry["channel"], path + ".channel", topic.default_channel);
      if (topic.default_channel.empty()) r.Error(path + ".channel", "must not be empty");
    } else {
      r.Error(path, "must be a topic name or a mapping with name and format");
      continue;
    }
    if (name.empty()) {
      r.Error(entry.IsMap() ? path + ".name" : path, "must be a non-empty topic name");
      continue;
    }
    if (c.runtime.pipeline.inputs.contains(name)) {
      r.Error(path, absl::StrCat("topic '", name, "' is listed twice"));
      continue;
    }
    c.runtime.consumer.topics.push_back(name);
    c.runtime.pipeline.inputs[name] = topic;
  }
}

void ReadJsonLimits(Reader& r, const YAML::Node& n, ingest::JsonLimits& limits) {
  if (!r.IsMapOrAbsent(n, "input.json_limits") || !n) return;
  const std::string p = "input.json_limits";
  r.CheckKeys(
      n, p,
      {"max_message_bytes", "max_batch_events", "max_properties", "max_string_bytes", "max_depth"});
  r.Integer(n["max_message_bytes"], p + ".max_message_bytes", limits.max_message_bytes, 16,
            int64_t{64} << 20);
  r.Integer(n["max_batch_events"], p + ".max_batch_events", limits.max_batch_events, 1, 100000);
  r.Integer(n["max_properties"], p + ".max_properties", limits.max_properties, 1, 100000);
  r.Integer(n["max_string_bytes"], p + ".max_string_bytes", limits.max_string_bytes, 1,
            int64_t{64} << 20);
  r.Integer(n["max_depth"], p + ".max_depth", limits.max_depth, 2, 1024);
}

void ReadEventLimits(Reader& r, const YAML::Node& n, ingest::EventLimits& limits) {
  if (!r.IsMapOrAbsent(n, "input.event_limits") || !n) return;
  const std::string p = "input.event_limits";
  r.CheckKeys(n, p, {"max_key_bytes", "max_trait_bytes", "max_line_items"});
  r.Integer(n["max_key_bytes"], p + ".max_key_bytes", limits.max_key_bytes, 16, 65536);
  r.Integer(n["max_trait_bytes"], p + ".max_trait_bytes", limits.max_trait_bytes, 16,
            int64_t{1} << 20);
  r.Integer(n["max_line_items"], p + ".max_line_items", limits.max_line_items, 1, 10000);
}

void ReadFutureEvents(Reader& r, const YAML::Node& n, ingest::EventTimePolicy& policy) {
  if (!r.IsMapOrAbsent(n, "input.future_events") || !n) return;
  r.CheckKeys(n, "input.future_events", {"tolerance", "action"});
  double tolerance_ms = static_cast<double>(policy.future_tolerance_ms);
  r.DurationMs(n["tolerance"], "input.future_events.tolerance", tolerance_ms);
  policy.future_tolerance_ms = static_cast<int64_t>(tolerance_ms);
  if (n["action"]) {
    std::string action;
    r.String(n["action"], "input.future_events.action", action);
    if (action == "clamp") {
      policy.future = ingest::EventTimePolicy::Future::kClamp;
    } else if (action == "reject") {
      policy.future = ingest::EventTimePolicy::Future::kReject;
    } else {
      r.Error("input.future_events.action",
              absl::StrCat("must be clamp or reject, got '", action, "'"));
    }
  }
}

void ReadInput(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "input") || !n) return;
  r.CheckKeys(n, "input",
              {"topics", "group_id", "group_instance_id", "initial_position", "batch_max_events",
               "poll_timeout_ms", "json_limits", "event_limits", "future_events",
               "recent_event_ids", "control_topic", "worker_threads"});
  r.String(n["control_topic"], "input.control_topic", c.runtime.pipeline.control_topic);
  ReadInputTopics(r, n["topics"], c);
  ReadJsonLimits(r, n["json_limits"], c.runtime.pipeline.json_limits);
  ReadEventLimits(r, n["event_limits"], c.runtime.pipeline.event_limits);
  ReadFutureEvents(r, n["future_events"], c.runtime.pipeline.event_time);
  r.Integer(n["recent_event_ids"], "input.recent_event_ids",
            c.runtime.pipeline.scoring.recent_event_ids, 0, 4096);
  r.String(n["group_id"], "input.group_id", c.runtime.consumer.group_id);
  r.String(n["group_instance_id"], "input.group_instance_id", c.runtime.consumer.group_instance_id);
  if (c.runtime.consumer.group_id.empty()) r.Error("input.group_id", "must not be empty");
  if (n["initial_position"]) {
    std::string pos;
    r.String(n["initial_position"], "input.initial_position", pos);
    if (pos == "earliest" || pos == "latest") {
      c.runtime.consumer.start_from_earliest = pos == "earliest";
    } else {
      r.Error("input.initial_position",
              absl::StrCat("must be earliest or latest, got '", pos, "'"));
    }
  }
  r.Integer(n["batch_max_events"], "input.batch_max_events", c.runtime.pipeline.batch_max_events, 1,
            1000000);
  r.Integer(n["poll_timeout_ms"], "input.poll_timeout_ms", c.runtime.pipeline.poll_timeout_ms, 1,
            60000);
  r.Integer(n["worker_threads"], "input.worker_threads", c.runtime.pipeline.worker_threads, 0, 64);
}

void ReadOutput(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "output") || !n) return;
  r.CheckKeys(n, "output",
              {"topic", "dead_letter_topic", "outbox_max_entries", "max_in_flight",
               "receipts_topic", "purpose", "max_message_bytes", "refused_retry",
               "max_delay"});
  double max_delay_ms = c.runtime.pipeline.max_delay_ms;
  r.DurationMs(n["max_delay"], "output.max_delay", max_delay_ms, /*zero_ok=*/true);
  // Longer gathering would hold rate x max_delay of input as lag (readiness)
  // and in every update's latency (the 1 s SLO): not a real-time service.
  if (max_delay_ms > 1000) {
    r.Error("output.max_delay", "must be at most 1s");
  } else {
    c.runtime.pipeline.max_delay_ms = static_cast<int>(max_delay_ms);
  }
  double refused_ms = absl::ToDoubleMilliseconds(c.runtime.publisher.refused_retry);
  r.DurationMs(n["refused_retry"], "output.refused_retry", refused_ms);
  if (refused_ms < 100) r.Error("output.refused_retry", "must be at least 100ms");
  c.runtime.publisher.refused_retry = absl::Milliseconds(refused_ms);
  r.Integer(n["max_message_bytes"], "output.max_message_bytes",
            c.runtime.pipeline.max_output_message_bytes, 64 * 1024, int64_t{1} << 30);
  r.String(n["receipts_topic"], "output.receipts_topic", c.runtime.pipeline.receipts_topic);
  r.String(n["purpose"], "output.purpose", c.runtime.pipeline.scoring.consent.output_purpose);
  r.String(n["topic"], "output.topic", c.runtime.pipeline.output_topic);
  if (c.runtime.pipeline.output_topic.empty()) r.Error("output.topic", "must not be empty");
  r.String(n["dead_letter_topic"], "output.dead_letter_topic", c.runtime.dead_letter_topic);
  if (c.runtime.dead_letter_topic.empty()) r.Error("output.dead_letter_topic", "must not be empty");
  r.Integer(n["outbox_max_entries"], "output.outbox_max_entries",
            c.runtime.pipeline.outbox_max_entries, 1, int64_t{1} << 40);
  r.Integer(n["max_in_flight"], "output.max_in_flight", c.runtime.publisher.max_in_flight, 1,
            1000000);
}

void ReadStore(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "store") || !n) return;
  r.CheckKeys(n, "store",
              {"path", "block_cache_mb", "profile_cache_mb", "memtable_mb", "sync_writes"});
  r.String(n["path"], "store.path", c.runtime.store.path);
  if (c.runtime.store.path.empty()) r.Error("store.path", "must not be empty");
  r.Mebibytes(n["block_cache_mb"], "store.block_cache_mb", c.runtime.store.block_cache_bytes, 1,
              1 << 20);
  r.Mebibytes(n["profile_cache_mb"], "store.profile_cache_mb",
              c.runtime.pipeline.profile_cache_bytes, 0, 1 << 20);
  r.Mebibytes(n["memtable_mb"], "store.memtable_mb", c.runtime.store.memtable_bytes, 8, 1 << 20);
  r.Bool(n["sync_writes"], "store.sync_writes", c.runtime.store.sync_writes);
}

void ReadHttp(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "http") || !n) return;
  r.CheckKeys(
      n, "http",
      {"listen", "threads", "token", "ready_max_lag", "request_timeout", "max_connections"});
  r.String(n["token"], "http.token", c.http_token);
  r.Integer(n["ready_max_lag"], "http.ready_max_lag", c.runtime.health.ready_max_lag, 0,
            int64_t{1} << 40);
  r.String(n["listen"], "http.listen", c.http.listen);
  if (c.http.listen.find(':') == std::string::npos) {
    r.Error("http.listen", absl::StrCat("must be host:port, got '", c.http.listen, "'"));
  }
  r.Integer(n["threads"], "http.threads", c.http.threads, 1, 64);
  double timeout_ms = c.http.request_timeout_ms;
  r.DurationMs(n["request_timeout"], "http.request_timeout", timeout_ms);
  if (timeout_ms < 100 || timeout_ms > 600'000) {
    r.Error("http.request_timeout", "must be between 100ms and 10m");
  }
  c.http.request_timeout_ms = static_cast<int>(timeout_ms);
  r.Integer(n["max_connections"], "http.max_connections", c.http.max_connections, 8, 100'000);
}

void ReadHealth(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "health") || !n) return;
  r.CheckKeys(n, "health", {"stall_timeout"});
  double stall_ms = absl::ToDoubleMilliseconds(c.runtime.health.stall_timeout);
  r.DurationMs(n["stall_timeout"], "health.stall_timeout", stall_ms);
  if (stall_ms < 1000) r.Error("health.stall_timeout", "must be at least 1s");
  c.runtime.health.stall_timeout = absl::Milliseconds(stall_ms);
}

void ReadCluster(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "cluster") || !n) return;
  r.CheckKeys(n, "cluster",
              {"mode", "instance_id", "members_topic", "lease_ttl", "advertised_http", "partitions",
               "repartition_topic", "changelog_topic", "internal_retention", "standby_replicas"});
  cluster::GroupLeaseOptions& lease = c.runtime.lease;
  std::string mode(cluster::kSingleMode);
  r.String(n["mode"], "cluster.mode", mode);
  if (mode == "partitioned") {
    c.partitioned = true;
  } else if (mode != cluster::kSingleMode) {
    r.Error("cluster.mode", absl::StrCat("'", mode, "' is not a mode: single or partitioned"));
  }
  r.String(n["instance_id"], "cluster.instance_id", lease.instance_id);
  r.String(n["members_topic"], "cluster.members_topic", lease.topic);
  r.String(n["advertised_http"], "cluster.advertised_http", lease.advertised_http);
  double ttl_ms = absl::ToDoubleMilliseconds(lease.ttl);
  r.DurationMs(n["lease_ttl"], "cluster.lease_ttl", ttl_ms);
  lease.ttl = absl::Milliseconds(ttl_ms);
  int partitions = c.partitions;
  r.Integer(n["partitions"], "cluster.partitions", partitions, 1, 10000);
  c.partitions = partitions;
  r.String(n["repartition_topic"], "cluster.repartition_topic", c.repartition_topic);
  r.String(n["changelog_topic"], "cluster.changelog_topic", c.changelog_topic);
  double retention_ms = static_cast<double>(c.internal_retention_ms);
  r.DurationMs(n["internal_retention"], "cluster.internal_retention", retention_ms);
  c.internal_retention_ms = static_cast<int64_t>(retention_ms);
  r.Integer(n["standby_replicas"], "cluster.standby_replicas", c.standby_replicas, 0, 3);
}

// What partitioned mode needs, and what it does not do yet, under the
// keys that ask for it.
void CheckPartitioned(Reader& r, const AppConfig& c) {
  if (!c.partitioned) return;
  if (c.refit_set && c.runtime.model_fit.every > absl::ZeroDuration()) {
    // Each instance holds part of the customers: a fit must see them all.
    r.Error("signals.purchase_model.refit_every",
            "fitting is not supported in partitioned mode yet: the configured parameters are "
            "used; set refit_every: off (docs/signals.md, \"Fitting from the store\")");
  }
  if (c.repartition_topic.empty()) r.Error("cluster.repartition_topic", "is required");
  if (c.changelog_topic.empty()) r.Error("cluster.changelog_topic", "is required");
  if (c.standby_replicas > 0 && c.runtime.lease.topic.empty()) {
    r.Error("cluster.standby_replicas",
            "needs cluster.members_topic: standbys follow who owns what there");
  }
}

void ReadLog(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "log") || !n) return;
  r.CheckKeys(n, "log", {"level", "format"});
  std::string level, format;
  r.String(n["level"], "log.level", level);
  r.String(n["format"], "log.format", format);
  if (!level.empty()) {
    if (auto parsed = ParseLogLevel(level)) {
      c.log_level = *parsed;
    } else {
      r.Error("log.level", absl::StrCat("must be debug, info, warn or error, got '", level, "'"));
    }
  }
  if (!format.empty()) {
    if (auto parsed = ParseLogFormat(format)) {
      c.log_format = *parsed;
    } else {
      r.Error("log.format", absl::StrCat("must be text or json, got '", format, "'"));
    }
  }
}

void ReadSignals(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "signals") || !n) return;
  signals::SignalOptions& o = c.runtime.pipeline.signals;
  core::ScoringOptions& scoring = c.runtime.pipeline.scoring;
  r.CheckKeys(n, "signals",
              {"top_intents", "journey", "suppression", "cart", "lifecycle", "cold_start",
               "holdout", "session_gap", "recent_items", "engagement", "purchase_model"});
  auto duration = [&](const YAML::Node& node, const std::string& path, int64_t& out) {
    double ms = static_cast<double>(out);
    r.DurationMs(node, path, ms);
    out = static_cast<int64_t>(ms);
  };
  auto section = [&](const char* key, std::initializer_list<absl::string_view> keys) {
    const YAML::Node sub = n[key];
    const std::string path = absl::StrCat("signals.", key);
    if (!r.IsMapOrAbsent(sub, path) || !sub) return YAML::Node();
    r.CheckKeys(sub, path, keys);
    return sub;
  };
  r.Integer(n["top_intents"], "signals.top_intents", o.top_intents, 1, 100);
  r.Integer(n["recent_items"], "signals.recent_items", scoring.recent_items, 0, 10000);
  duration(n["session_gap"], "signals.session_gap", scoring.session_gap_ms);
  if (YAML::Node j =
          section("journey", {"purchased", "post_purchase", "considering_views", "window"})) {
    duration(j["purchased"], "signals.journey.purchased", o.purchased_ms);
    duration(j["post_purchase"], "signals.journey.post_purchase", o.post_purchase_ms);
    duration(j["window"], "signals.journey.window", o.journey_window_ms);
    r.Number(j["considering_views"], "signals.journey.considering_views", o.considering_views, 0,
             true);
  }
  if (YAML::Node x = section("suppression", {"product", "category"})) {
    duration(x["product"], "signals.suppression.product", o.suppress_product_ms);
    duration(x["category"], "signals.suppression.category", o.suppress_category_ms);
  }
  if (YAML::Node x = section("cart", {"abandon_after"})) {
    duration(x["abandon_after"], "signals.cart.abandon_after", o.abandon_after_ms);
  }
  if (YAML::Node x = section(
          "lifecycle", {"new", "at_risk", "lapsed", "reactivated", "churn_half_life", "horizon"})) {
    duration(x["horizon"], "signals.lifecycle.horizon", o.purchase_horizon_ms);
    duration(x["new"], "signals.lifecycle.new", o.new_ms);
    duration(x["at_risk"], "signals.lifecycle.at_risk", o.at_risk_ms);
    duration(x["lapsed"], "signals.lifecycle.lapsed", o.lapsed_ms);
    duration(x["reactivated"], "signals.lifecycle.reactivated", o.reactivated_ms);
    duration(x["churn_half_life"], "signals.lifecycle.churn_half_life", o.churn_half_life_ms);
    if (o.at_risk_ms >= o.lapsed_ms) {
      r.Error("signals.lifecycle", "at_risk must be shorter than lapsed");
    }
  }
  // A return after `lapsed` is what "reactivated" means.
  scoring.return_gap_ms = o.lapsed_ms;
  if (YAML::Node x =
          section("purchase_model", {"r", "alpha", "a", "b", "refit_every", "min_customers",
                                     "max_buckets", "profiles_per_second"})) {
    // BG/NBD's parameters, per week (docs/signals.md, "Purchase model").
    r.Number(x["r"], "signals.purchase_model.r", o.purchase_model.r, 0, true);
    r.Number(x["alpha"], "signals.purchase_model.alpha", o.purchase_model.alpha, 0, true);
    r.Number(x["a"], "signals.purchase_model.a", o.purchase_model.a, 0, true);
    r.Number(x["b"], "signals.purchase_model.b", o.purchase_model.b, 0, true);
    // Fitting them from the store (pipeline/model_fitter.h).
    pipeline::ModelFitOptions& fit = c.runtime.model_fit;
    for (const char* key : {"refit_every", "min_customers", "max_buckets", "profiles_per_second"}) {
      if (x[key]) c.refit_set = true;
    }
    if (const YAML::Node every = x["refit_every"]) {
      const std::string off = every.IsScalar() ? absl::AsciiStrToLower(every.Scalar()) : "";
      if (off == "0" || off == "off" || off == "never" ||
          ParseDurationMs(off) == std::optional<int64_t>(0)) {
        fit.every = absl::ZeroDuration();
      } else {
        double ms = absl::ToDoubleMilliseconds(fit.every);
        r.DurationMs(every, "signals.purchase_model.refit_every", ms);
        fit.every = absl::Milliseconds(ms);
      }
    }
    r.Integer(x["min_customers"], "signals.purchase_model.min_customers", fit.min_customers, 1,
              1'000'000'000);
    r.Integer(x["max_buckets"], "signals.purchase_model.max_buckets", fit.max_buckets,
              signals::PurchaseBuckets::kMinBuckets, 10'000'000);
    r.Integer(x["profiles_per_second"], "signals.purchase_model.profiles_per_second",
              fit.profiles_per_second, pipeline::kModelFitPiece, 100'000'000);
  }
  if (YAML::Node x = section("cold_start", {"min_weight"})) {
    r.Number(x["min_weight"], "signals.cold_start.min_weight", o.cold_start_weight, 0, false);
  }
  if (YAML::Node x = section("holdout", {"percent", "salt"})) {
    r.Number(x["percent"], "signals.holdout.percent", o.holdout_percent, 0, false);
    if (o.holdout_percent > 100) r.Error("signals.holdout.percent", "must be at most 100");
    r.String(x["salt"], "signals.holdout.salt", o.holdout_salt);
    if (o.holdout_salt.empty()) r.Error("signals.holdout.salt", "must not be empty");
  }
  if (YAML::Node x = section("engagement", {"fast_half_life", "slow_half_life"})) {
    r.DurationMs(x["fast_half_life"], "signals.engagement.fast_half_life",
                 scoring.engagement_fast_half_life_ms);
    r.DurationMs(x["slow_half_life"], "signals.engagement.slow_half_life",
                 scoring.engagement_slow_half_life_ms);
  }
}

// privacy.consent: purposes with their defaults, and source categories.
void ReadConsent(Reader& r, const YAML::Node& n, core::ConsentOptions& o) {
  if (!r.IsMapOrAbsent(n, "privacy.consent") || !n) return;
  r.CheckKeys(n, "privacy.consent", {"purposes", "categories"});
  if (const YAML::Node p = n["purposes"]; r.IsMapOrAbsent(p, "privacy.consent.purposes") && p) {
    o.defaults.clear();
    for (const auto& kv : p) {
      const std::string purpose = kv.first.as<std::string>();
      const std::string path = absl::StrCat("privacy.consent.purposes.", purpose);
      const std::string value = kv.second.IsScalar() ? kv.second.Scalar() : "";
      if (value != "granted" && value != "denied") {
        r.Error(path, "must be granted (opt-out) or denied (opt-in)");
        continue;
      }
      o.defaults.emplace_back(purpose, value == "granted");
    }
    for (const char* needed : {core::kAnalyticsPurpose, core::kPersonalizationPurpose}) {
      if (!o.Knows(needed)) {
        r.Error("privacy.consent.purposes", absl::StrCat("must include ", needed));
      }
    }
  }
  if (const YAML::Node m = n["categories"]; r.IsMapOrAbsent(m, "privacy.consent.categories") && m) {
    o.categories.clear();
    for (const auto& kv : m) {
      const std::string category = absl::AsciiStrToLower(kv.first.as<std::string>());
      const std::string path =
          absl::StrCat("privacy.consent.categories.", kv.first.as<std::string>());
      if (!kv.second.IsScalar() || !o.Knows(kv.second.Scalar())) {
        r.Error(path, absl::StrCat("must name one of the purposes (", PurposeNames(o), "), got '",
                                   Reader::Describe(kv.second), "'"));
        continue;
      }
      o.categories[category] = kv.second.Scalar();
    }
  }
}

void ReadPrivacy(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "privacy") || !n) return;
  privacy::PrivacyOptions& o = c.runtime.pipeline.privacy;
  r.CheckKeys(n, "privacy",
              {"drop_fields", "drop_key_patterns", "hash_fields", "hash_key_patterns", "consent",
               "erasure", "retention"});
  if (const YAML::Node t = n["retention"]; r.IsMapOrAbsent(t, "privacy.retention") && t) {
    r.CheckKeys(t, "privacy.retention", {"ttl"});
    double ttl = 0;
    r.DurationMs(t["ttl"], "privacy.retention.ttl", ttl);
    c.runtime.pipeline.retention_ttl_ms = static_cast<int64_t>(ttl);
  }
  if (const YAML::Node e = n["erasure"]; r.IsMapOrAbsent(e, "privacy.erasure") && e) {
    r.CheckKeys(e, "privacy.erasure", {"suppression_window", "secret", "secret_file"});
    double window = static_cast<double>(c.runtime.pipeline.erasure_suppression_ms);
    r.DurationMs(e["suppression_window"], "privacy.erasure.suppression_window", window);
    c.runtime.pipeline.erasure_suppression_ms = static_cast<int64_t>(window);
    r.String(e["secret"], "privacy.erasure.secret", c.runtime.pipeline.erasure_secret);
    std::string file;
    r.String(e["secret_file"], "privacy.erasure.secret_file", file);
    if (!file.empty()) {
      // Kept apart from the store (a mounted secret): a copy of the data
      // volume then cannot tell which identities were erased.
      std::ifstream in(file);
      std::stringstream text;
      text << in.rdbuf();
      std::string secret(absl::StripAsciiWhitespace(text.str()));
      if (!in) {
        r.Error("privacy.erasure.secret_file", absl::StrCat("cannot read '", file, "'"));
      } else if (secret.size() < 16) {
        r.Error("privacy.erasure.secret_file",
                absl::StrCat("'", file, "' must hold a secret of at least 16 characters"));
      } else if (!c.runtime.pipeline.erasure_secret.empty()) {
        r.Error("privacy.erasure.secret_file", "give either secret or secret_file, not both");
      } else {
        c.runtime.pipeline.erasure_secret = std::move(secret);
      }
    }
  }
  ReadConsent(r, n["consent"], c.runtime.pipeline.scoring.consent);
  struct List {
    const char* key;
    std::vector<std::string>* values;
  };
  for (const List& list :
       {List{"drop_fields", &o.drop_fields}, List{"drop_key_patterns", &o.drop_key_patterns},
        List{"hash_fields", &o.hash_fields}, List{"hash_key_patterns", &o.hash_key_patterns}}) {
    const std::string path = absl::StrCat("privacy.", list.key);
    r.StringList(n[list.key], path, *list.values);
    // Each entry checked alone, so an error names its own index.
    for (size_t i = 0; i < list.values->size(); ++i) {
      privacy::PrivacyOptions one{{}, {}, {}, {}};
      const std::string key = list.key;
      (key == "drop_fields"         ? one.drop_fields
       : key == "drop_key_patterns" ? one.drop_key_patterns
       : key == "hash_fields"       ? one.hash_fields
                                    : one.hash_key_patterns) = {(*list.values)[i]};
      if (absl::Status s = privacy::PrivacyFilter::Create(one).status(); !s.ok()) {
        r.Error(absl::StrCat(path, "[", i, "]"), s.message());
      }
    }
  }
}

void ReadIdentity(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "identity") || !n) return;
  identity::IdentityOptions& o = c.runtime.pipeline.identity;
  r.CheckKeys(n, "identity",
              {"store_raw_email", "blocked_values", "blocked_patterns", "max_per_kind",
               "max_identities", "max_merges_per_hour", "kind_priority"});
  r.Bool(n["store_raw_email"], "identity.store_raw_email", o.store_raw_email);
  if (n["blocked_values"]) {
    // Values may legitimately be empty strings here: read them raw.
    const YAML::Node v = n["blocked_values"];
    if (!v.IsSequence()) {
      r.Error("identity.blocked_values", "must be a list of strings");
    } else {
      o.blocked_values.clear();
      for (size_t i = 0; i < v.size(); ++i) {
        if (!v[i].IsScalar()) {
          r.Error(absl::StrCat("identity.blocked_values[", i, "]"), "must be a string");
        } else {
          o.blocked_values.push_back(v[i].Scalar());
        }
      }
    }
  }
  r.StringList(n["blocked_patterns"], "identity.blocked_patterns", o.blocked_patterns);
  for (size_t i = 0; i < o.blocked_patterns.size(); ++i) {
    try {
      std::regex check(o.blocked_patterns[i], std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      r.Error(absl::StrCat("identity.blocked_patterns[", i, "]"),
              absl::StrCat("not a valid regular expression: ", e.what()));
    }
  }
  const YAML::Node limits = n["max_per_kind"];
  if (r.IsMapOrAbsent(limits, "identity.max_per_kind") && limits && limits.IsMap()) {
    o.max_per_kind.clear();
    for (const auto& kv : limits) {
      const std::string kind = kv.first.as<std::string>();
      size_t limit = 1;
      r.Integer(kv.second, absl::StrCat("identity.max_per_kind.", kind), limit, 1, 100000);
      o.max_per_kind[kind] = limit;
    }
  }
  r.Integer(n["max_identities"], "identity.max_identities", o.max_identities, 1, 100000);
  r.Integer(n["max_merges_per_hour"], "identity.max_merges_per_hour", o.max_merges_per_hour, 1,
            1000000);
  r.StringList(n["kind_priority"], "identity.kind_priority", o.kind_priority);
}

void ReadClock(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "clock") || !n) return;
  r.CheckKeys(n, "clock", {"mode", "caught_up_max_lag"});
  if (n["mode"]) {
    std::string mode;
    r.String(n["mode"], "clock.mode", mode);
    if (mode == "auto") {
      c.runtime.pipeline.clock_mode = core::PipelineClock::Mode::kAuto;
    } else if (mode == "event_time") {
      c.runtime.pipeline.clock_mode = core::PipelineClock::Mode::kEventTime;
    } else {
      r.Error("clock.mode", absl::StrCat("must be auto or event_time, got '", mode, "'"));
    }
  }
  r.Integer(n["caught_up_max_lag"], "clock.caught_up_max_lag", c.runtime.pipeline.caught_up_max_lag,
            0, int64_t{1} << 40);
}

void ReadScoring(Reader& r, const YAML::Node& n, AppConfig& c) {
  if (!r.IsMapOrAbsent(n, "scoring") || !n) return;
  core::ScoringOptions& s = c.runtime.pipeline.scoring;
  r.CheckKeys(n, "scoring", {"families", "event_weights", "default_weight", "max_traits"});
  r.Integer(n["max_traits"], "scoring.max_traits", s.max_traits, 1, 10000);
  r.Number(n["default_weight"], "scoring.default_weight", s.default_weight, 0, true);
  const YAML::Node weights = n["event_weights"];
  if (r.IsMapOrAbsent(weights, "scoring.event_weights") && weights && weights.IsMap()) {
    s.event_weights.clear();
    for (const auto& kv : weights) {
      const std::string type = kv.first.as<std::string>();
      double w = 0;
      r.Number(kv.second, absl::StrCat("scoring.event_weights.", type), w, 0, true);
      s.event_weights[type] = w;
    }
  }
  const YAML::Node families = n["families"];
  if (!r.IsMapOrAbsent(families, "scoring.families") || !families) return;
  for (const auto& kv : families) {
    const std::string name = kv.first.as<std::string>();
    const std::string path = absl::StrCat("scoring.families.", name);
    std::optional<core::Family> family = core::FamilyFromName(name);
    if (!family) {
      std::vector<std::string> names;
      names.reserve(std::size(core::kAllFamilies));
      for (core::Family f : core::kAllFamilies) names.emplace_back(core::FamilyName(f));
      r.Error(
          path,
          absl::StrCat("unknown score family (expected one of: ", absl::StrJoin(names, ", "), ")"));
      continue;
    }
    if (!r.IsMapOrAbsent(kv.second, path)) continue;
    r.CheckKeys(kv.second, path, {"half_life", "top_k", "epsilon"});
    core::FamilyOptions& fo = s.family(*family);
    r.DurationMs(kv.second["half_life"], path + ".half_life", fo.half_life_ms);
    r.Integer(kv.second["top_k"], path + ".top_k", fo.top_k, 1, 100000);
    r.Number(kv.second["epsilon"], path + ".epsilon", fo.epsilon, 0, false);
  }
}

}  // namespace

std::optional<int64_t> ParseDurationMs(std::string_view raw) {
  absl::string_view text = absl::StripAsciiWhitespace(absl::string_view(raw.data(), raw.size()));
  size_t unit_at = 0;
  while (unit_at < text.size() &&
         (absl::ascii_isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.')) {
    ++unit_at;
  }
  double amount = 0;
  if (unit_at == 0 || !absl::SimpleAtod(text.substr(0, unit_at), &amount)) return std::nullopt;
  const absl::string_view unit = text.substr(unit_at);
  double scale = 0;
  if (unit == "ms")
    scale = 1;
  else if (unit == "s")
    scale = 1e3;
  else if (unit == "m")
    scale = 60e3;
  else if (unit == "h")
    scale = 3600e3;
  else if (unit == "d")
    scale = 86400e3;
  else if (unit == "w")
    scale = 7 * 86400e3;
  else
    return std::nullopt;
  return static_cast<int64_t>(amount * scale);
}

kafka::Properties AppConfig::ConsumerProperties(const std::string& bootstrap_servers) const {
  kafka::Properties p = {{"bootstrap.servers", bootstrap_servers}};
  p.insert(p.end(), kafka_properties.begin(), kafka_properties.end());
  p.insert(p.end(), consumer_properties.begin(), consumer_properties.end());
  return p;
}

kafka::Properties AppConfig::ProducerProperties(const std::string& bootstrap_servers) const {
  kafka::Properties p = {{"bootstrap.servers", bootstrap_servers}};
  p.insert(p.end(), kafka_properties.begin(), kafka_properties.end());
  p.insert(p.end(), producer_properties.begin(), producer_properties.end());
  return p;
}

AppConfig DefaultConfig() {
  AppConfig c;
  c.runtime.consumer.topics = {"profiled.events"};
  c.runtime.pipeline.output_topic = "profiled.updates";
  c.runtime.store.path = "./profiled-data";
  return c;
}

// A problem of RuntimeOptions::Validate ("pipeline.output_topic: is
// required") as the YAML key a user writes, and its message.
std::pair<std::string, std::string> YamlPathOf(absl::string_view line,
                                               const pipeline::RuntimeOptions& runtime) {
  const size_t colon = line.find(": ");
  std::string path(line.substr(0, colon));
  std::string message(colon == absl::string_view::npos ? "" : line.substr(colon + 2));
  static const std::pair<absl::string_view, absl::string_view> kKeys[] = {
      {"consumer.topics", "input.topics"},
      {"consumer.group_id", "input.group_id"},
      {"dead_letter_topic", "output.dead_letter_topic"},
      {"pipeline.output_topic", "output.topic"},
      {"pipeline.control_topic", "input.control_topic"},
      {"pipeline.scoring.consent.output_purpose", "output.purpose"},
      {"pipeline.event_limits.", "input.event_limits."},
      {"pipeline.identity.", "identity."},
      {"pipeline.batch_max_events", "input.batch_max_events"},
      {"pipeline.outbox_max_entries", "output.outbox_max_entries"},
      {"pipeline.max_delay_ms", "output.max_delay"},
      {"publisher.max_in_flight", "output.max_in_flight"},
      {"health.ready_max_lag", "http.ready_max_lag"},
      {"health.", "health."},
      {"model_fit.every", "signals.purchase_model.refit_every"},
      {"model_fit.", "signals.purchase_model."},
      {"store.", "store."},
      {"lease.topic", "cluster.members_topic"},
      {"lease.ttl", "cluster.lease_ttl"},
      {"lease.", "cluster."},
  };
  for (const auto& [from, to] : kKeys) {
    if (absl::StartsWith(path, from)) return {absl::StrCat(to, path.substr(from.size())), message};
  }
  // pipeline.inputs[NAME].field -> input.topics[i].field
  if (absl::StartsWith(path, "pipeline.inputs[")) {
    const size_t close = path.find(']');
    const std::string name = path.substr(16, close - 16);
    const auto& topics = runtime.consumer.topics;
    const size_t i = std::find(topics.begin(), topics.end(), name) - topics.begin();
    std::string field = path.substr(close + 1);
    if (field == ".default_channel") field = ".channel";
    return {absl::StrCat("input.topics[", i, "]", field), message};
  }
  return {path, message};
}

absl::StatusOr<AppConfig> ParseConfig(std::string_view yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config is not valid YAML: ", e.what()));
  }
  AppConfig c = DefaultConfig();
  Reader r;
  if (root && !root.IsNull()) {
    if (!root.IsMap()) return absl::InvalidArgumentError("config: top level must be a mapping");
    try {
      r.CheckKeys(root, "",
                  {"kafka", "embedded", "input", "output", "store", "http", "clock", "scoring",
                   "identity", "privacy", "signals", "log", "health", "cluster"});
      ReadKafka(r, root["kafka"], c);
      if (const YAML::Node e = root["embedded"]; r.IsMapOrAbsent(e, "embedded") && e) {
        r.CheckKeys(e, "embedded", {"partitions"});
        r.Integer(e["partitions"], "embedded.partitions", c.embedded_partitions, 1, 1024);
      }
      ReadInput(r, root["input"], c);
      ReadOutput(r, root["output"], c);
      ReadStore(r, root["store"], c);
      ReadHttp(r, root["http"], c);
      ReadClock(r, root["clock"], c);
      ReadScoring(r, root["scoring"], c);
      ReadIdentity(r, root["identity"], c);
      ReadPrivacy(r, root["privacy"], c);
      ReadSignals(r, root["signals"], c);
      ReadLog(r, root["log"], c);
      ReadHealth(r, root["health"], c);
      // One loop can wait poll_timeout_ms for a first message and then
      // gather for max_delay: well inside the stall timeout, or a quiet
      // stream reads as a stalled pipeline.
      if (absl::Milliseconds(c.runtime.pipeline.max_delay_ms + c.runtime.pipeline.poll_timeout_ms) >
          c.runtime.health.stall_timeout / 2) {
        r.Error("output.max_delay",
                "with input.poll_timeout_ms, must be at most half of health.stall_timeout");
      }
      ReadCluster(r, root["cluster"], c);
      CheckPartitioned(r, c);
    } catch (const YAML::Exception& e) {
      r.Error("config", e.what());
    }
  }
  // What the options themselves find wrong (RuntimeOptions::Validate), under
  // the YAML keys they came from; a key the reader already faulted is not
  // reported twice.
  if (absl::Status valid = c.runtime.Validate(); !valid.ok()) {
    for (absl::string_view line : absl::StrSplit(valid.message(), '\n')) {
      const std::pair<std::string, std::string> yaml = YamlPathOf(line, c.runtime);
      const std::string& path = yaml.first;
      const bool reported =
          std::any_of(r.errors().begin(), r.errors().end(),
                      [&](const std::string& e) { return e.rfind(path, 0) == 0; });
      if (!reported) r.Error(path, yaml.second);
    }
  }
  if (absl::Status fits = pipeline::CheckOutputLimits(c.runtime.pipeline); !fits.ok()) {
    r.Error("output.max_message_bytes", fits.message());
  }
  if (!r.errors().empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(r.errors(), "\n"));
  }
  return c;
}

absl::StatusOr<ingest::FieldMap> ParseFieldMap(std::string_view yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("field map is not valid YAML: ", e.what()));
  }
  Reader r;
  ingest::FieldMap map;
  if (!root.IsMap()) return absl::InvalidArgumentError("map: must be a mapping");
  try {
    ReadFieldMap(r, root, "map", map);
  } catch (const YAML::Exception& e) {
    r.Error("map", e.what());
  }
  if (!r.errors().empty()) return absl::InvalidArgumentError(absl::StrJoin(r.errors(), "\n"));
  return map;
}

absl::StatusOr<AppConfig> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str());
}

}  // namespace profiled::config
