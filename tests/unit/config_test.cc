#include <fstream>

#include "absl/strings/str_cat.h"
#include "profiled/config/app_config.h"
#include "support/test_support.h"

namespace profiled::config {
namespace {

TEST_CASE("an empty file gives the documented defaults", "[config]") {
  auto c = ParseConfig("");
  REQUIRE_OK(c.status());
  CHECK(c->embedded());
  CHECK(c->runtime.consumer.topics == std::vector<std::string>{"profiled.events"});
  CHECK(c->runtime.pipeline.output_topic == "profiled.updates");
  CHECK(c->runtime.pipeline.outbox_max_entries == 100000);
  CHECK(c->runtime.pipeline.clock_mode == core::PipelineClock::Mode::kAuto);
}

TEST_CASE("a full file sets every section", "[config]") {
  auto c = ParseConfig(R"(
kafka:
  bootstrap: broker-1:9092,broker-2:9092
  properties: {security.protocol: SASL_SSL, sasl.mechanism: PLAIN}
  producer_properties: {linger.ms: 20}
input: {topics: [web, app], group_id: g1, initial_position: latest, batch_max_events: 500, worker_threads: 3}
output: {topic: out, outbox_max_entries: 1000, max_in_flight: 64}
store: {path: /var/lib/profiled, block_cache_mb: 256, profile_cache_mb: 0, memtable_mb: 64, sync_writes: true}
clock: {mode: event_time, caught_up_max_lag: 10}
scoring:
  default_weight: 0.5
  event_weights: {order_completed: 10}
  families:
    category: {half_life: 14d, top_k: 20, epsilon: 0.001}
    product: {half_life: 90m}
)");
  REQUIRE_OK(c.status());
  CHECK_FALSE(c->embedded());
  CHECK(c->runtime.consumer.topics == std::vector<std::string>{"web", "app"});
  CHECK_FALSE(c->runtime.consumer.start_from_earliest);
  CHECK(c->runtime.pipeline.batch_max_events == 500);
  CHECK(c->runtime.pipeline.worker_threads == 3);
  CHECK(c->runtime.publisher.max_in_flight == 64);
  CHECK(c->runtime.store.block_cache_bytes == 256ull << 20);
  CHECK(c->runtime.pipeline.profile_cache_bytes == 0);
  CHECK(c->runtime.store.memtable_bytes == 64ull << 20);
  CHECK(c->runtime.store.sync_writes);
  CHECK(c->runtime.pipeline.clock_mode == core::PipelineClock::Mode::kEventTime);
  const auto& cat = c->runtime.pipeline.scoring.family(core::Family::kCategory);
  CHECK(cat.half_life_ms == 14.0 * 86400e3);
  CHECK(cat.top_k == 20);
  CHECK(c->runtime.pipeline.scoring.family(core::Family::kProduct).half_life_ms == 90 * 60e3);
  CHECK(c->runtime.pipeline.scoring.WeightOf("order_completed") == 10);
  CHECK(c->runtime.pipeline.scoring.WeightOf("page_viewed") == 0.5);
  auto producer = c->ProducerProperties("b:1");
  CHECK(producer.front() == std::pair<std::string, std::string>{"bootstrap.servers", "b:1"});
  CHECK(producer.back() == std::pair<std::string, std::string>{"linger.ms", "20"});
}

TEST_CASE("every problem is reported with its path", "[config]") {
  auto c = ParseConfig(R"(
inputs: {}
input: {topics: [], batch_max_events: lots}
output: {topic: ""}
clock: {mode: sometimes}
store: {path: ./data, memtable_mb: 1, profile_cache_mb: -5}
scoring:
  families:
    category: {half_life: 7 days, top_k: 0}
    colour: {half_life: 1d}
)");
  REQUIRE_FALSE(c.ok());
  const std::string msg(c.status().message());
  INFO(msg);
  CHECK(msg.find("inputs: unknown key") != std::string::npos);
  CHECK(msg.find("input.topics: must list at least one topic") != std::string::npos);
  CHECK(msg.find("input.batch_max_events: must be an integer") != std::string::npos);
  CHECK(msg.find("output.topic: must not be empty") != std::string::npos);
  CHECK(msg.find("clock.mode: must be auto or event_time") != std::string::npos);
  CHECK(msg.find("scoring.families.category.half_life: bad duration '7 days'") !=
        std::string::npos);
  CHECK(msg.find("scoring.families.category.top_k: must be between 1") != std::string::npos);
  // An unknown value names every allowed one.
  CHECK(msg.find("scoring.families.colour: unknown score family (expected one of: category, "
                 "product, brand, event_type, channel, device, hour, weekday)") !=
        std::string::npos);
  CHECK(msg.find("store.memtable_mb: must be between 8") != std::string::npos);
  CHECK(msg.find("store.profile_cache_mb: must be between 0") != std::string::npos);
}

TEST_CASE("input topics name their format, channel and JSON limits", "[config]") {
  auto c = ParseConfig(R"(
input:
  topics:
    - events.proto
    - {name: segment.web, format: segment-json}
    - {name: segment.app, format: segment-json, channel: app}
  json_limits: {max_message_bytes: 65536, max_depth: 8}
  future_events: {tolerance: 5m, action: reject}
  recent_event_ids: 64
)");
  REQUIRE_OK(c.status());
  CHECK(c->runtime.consumer.topics ==
        std::vector<std::string>{"events.proto", "segment.web", "segment.app"});
  CHECK(c->runtime.pipeline.inputs.at("events.proto").format == "protobuf");
  CHECK(c->runtime.pipeline.inputs.at("segment.web").format == "segment-json");
  CHECK(c->runtime.pipeline.inputs.at("segment.web").default_channel == "web");
  CHECK(c->runtime.pipeline.inputs.at("segment.app").default_channel == "app");
  CHECK(c->runtime.pipeline.json_limits.max_message_bytes == 65536);
  CHECK(c->runtime.pipeline.json_limits.max_depth == 8);
  CHECK(c->runtime.pipeline.json_limits.max_properties == ingest::JsonLimits{}.max_properties);
  CHECK(c->runtime.pipeline.event_time.future_tolerance_ms == 300'000);
  CHECK(c->runtime.pipeline.event_time.future == ingest::EventTimePolicy::Future::kReject);
  CHECK(c->runtime.pipeline.scoring.recent_event_ids == 64);
}

TEST_CASE("size limits, output size, stall timeout and HTTP limits are configurable", "[config]") {
  auto c = ParseConfig(R"(
input:
  event_limits: {max_key_bytes: 128, max_trait_bytes: 512, max_line_items: 20}
scoring: {max_traits: 50}
output: {max_message_bytes: 2000000, refused_retry: 30s, max_delay: 20ms}
health: {stall_timeout: 1m}
http: {request_timeout: 1500ms, max_connections: 64, ready_max_lag: 5}
)");
  REQUIRE_OK(c.status());
  CHECK(c->runtime.pipeline.event_limits.max_key_bytes == 128);
  CHECK(c->runtime.pipeline.event_limits.max_trait_bytes == 512);
  CHECK(c->runtime.pipeline.event_limits.max_line_items == 20);
  CHECK(c->runtime.pipeline.scoring.max_traits == 50);
  CHECK(c->runtime.pipeline.max_output_message_bytes == 2'000'000);
  CHECK(c->runtime.publisher.refused_retry == absl::Seconds(30));
  CHECK(c->runtime.pipeline.max_delay_ms == 20);
  CHECK(c->runtime.health.stall_timeout == absl::Minutes(1));
  CHECK(c->runtime.health.ready_max_lag == 5);
  CHECK(c->http.request_timeout_ms == 1500);
  CHECK(c->http.max_connections == 64);

  // Limits that let an update outgrow the output are refused at start.
  auto big = ParseConfig(R"(
input: {event_limits: {max_trait_bytes: 65536}}
output: {max_message_bytes: 1000000, max_delay: 450ms}
health: {stall_timeout: 10ms}
)");
  REQUIRE_FALSE(big.ok());
  const std::string msg(big.status().message());
  CHECK_THAT(msg, Catch::Matchers::Contains("output.max_message_bytes: the largest update these "
                                            "limits allow is"));
  CHECK_THAT(msg, Catch::Matchers::Contains("max_trait_bytes (65536)"));
  CHECK_THAT(msg, Catch::Matchers::Contains("health.stall_timeout: must be at least 1s"));
  const std::string stall_rule =
      "output.max_delay: with input.poll_timeout_ms, must be at most half of "
      "health.stall_timeout";
  CHECK_THAT(msg, Catch::Matchers::Contains(stall_rule));

  // max_delay: at its bound, just over and far over; 0ms is off; not negative.
  auto at_bound = ParseConfig("output: {max_delay: 1s}\nhealth: {stall_timeout: 3s}");
  REQUIRE_OK(at_bound.status());
  CHECK(at_bound->runtime.pipeline.max_delay_ms == 1000);
  for (const char* too_long : {"1001ms", "3000000h"}) {
    auto over = ParseConfig(absl::StrCat("output: {max_delay: ", too_long, "}"));
    REQUIRE_FALSE(over.ok());
    CHECK_THAT(std::string(over.status().message()),
               Catch::Matchers::Contains("output.max_delay: must be at most 1s"));
  }
  auto off = ParseConfig("output: {max_delay: 0ms}");
  REQUIRE_OK(off.status());
  CHECK(off->runtime.pipeline.max_delay_ms == 0);
  auto negative = ParseConfig("output: {max_delay: -5ms}");
  REQUIRE_FALSE(negative.ok());
  CHECK_THAT(std::string(negative.status().message()),
             Catch::Matchers::Contains("output.max_delay"));
  // With the poll timeout (100 ms), at and just over half the stall timeout.
  CHECK(ParseConfig("output: {max_delay: 400ms}\nhealth: {stall_timeout: 1s}").ok());
  auto stalls = ParseConfig("output: {max_delay: 401ms}\nhealth: {stall_timeout: 1s}");
  REQUIRE_FALSE(stalls.ok());
  CHECK_THAT(std::string(stalls.status().message()), Catch::Matchers::Contains(stall_rule));
}

TEST_CASE("the cluster section sets the single-mode fence, and refuses what is not built",
          "[config]") {
  auto defaults = ParseConfig("store: {path: /data/store}");
  REQUIRE_OK(defaults.status());
  const cluster::GroupLeaseOptions lease = defaults->runtime.Lease();
  CHECK(lease.topic == "profiled.members");
  CHECK(lease.group_id == defaults->runtime.consumer.group_id);
  CHECK(lease.mode == "single");
  CHECK(lease.ttl == absl::Seconds(10));
  CHECK_THAT(lease.instance_id, Catch::Matchers::EndsWith(":/data/store"));

  auto set = ParseConfig(R"(
cluster: {instance_id: pod-3, members_topic: shop.members, lease_ttl: 4s,
          advertised_http: "pod-3.profiled:9464"}
)");
  REQUIRE_OK(set.status());
  CHECK(set->runtime.Lease().instance_id == "pod-3");
  CHECK(set->runtime.Lease().topic == "shop.members");
  CHECK(set->runtime.Lease().ttl == absl::Seconds(4));
  CHECK(set->runtime.Lease().advertised_http == "pod-3.profiled:9464");

  auto bad = ParseConfig(R"(
cluster: {mode: sharded, lease_ttl: 2s, members_topic: "", replicas: 3}
)");
  REQUIRE_FALSE(bad.ok());
  const std::string msg(bad.status().message());
  CHECK_THAT(msg, Catch::Matchers::Contains("cluster.mode: 'sharded' is not a mode"));
  CHECK_THAT(msg, Catch::Matchers::Contains("cluster.lease_ttl: must be between 3s and 10m"));
  CHECK_THAT(msg, Catch::Matchers::Contains("cluster.members_topic: is required"));
  CHECK_THAT(msg, Catch::Matchers::Contains("cluster.replicas"));
}

TEST_CASE(
    "partitioned mode: its partitions and topics, and what it does not do yet refused "
    "under the keys that ask for it",
    "[config]") {
  auto c = ParseConfig(R"(
cluster: {mode: partitioned, partitions: 24, repartition_topic: shop.rep, changelog_topic: shop.cl}
)");
  REQUIRE_OK(c.status());
  CHECK(c->partitioned);
  CHECK(c->partitions == 24);
  CHECK(c->repartition_topic == "shop.rep");
  CHECK(c->changelog_topic == "shop.cl");
  auto defaults = ParseConfig("cluster: {mode: partitioned}\n");
  REQUIRE_OK(defaults.status());
  CHECK(defaults->partitions == 12);
  CHECK(defaults->internal_retention_ms == 7LL * 24 * 3600 * 1000);
  CHECK(ParseConfig("cluster: {mode: partitioned, internal_retention: 3d}\n")
            ->internal_retention_ms == 3LL * 24 * 3600 * 1000);
  CHECK_FALSE(ParseConfig("{}\n")->partitioned);
  // Standbys: 0 to 3 warm copies, planned from the members topic.
  CHECK(defaults->standby_replicas == 0);
  CHECK(ParseConfig("cluster: {mode: partitioned, standby_replicas: 3}\n")->standby_replicas == 3);
  for (const char* asked : {"standby_replicas: 4", "standby_replicas: -1",
                            "standby_replicas: 1, members_topic: \"\""}) {
    CAPTURE(asked);
    auto standby = ParseConfig(absl::StrCat("cluster: {mode: partitioned, ", asked, "}\n"));
    REQUIRE_FALSE(standby.ok());
    CHECK_THAT(std::string(standby.status().message()),
               Catch::Matchers::Contains("cluster.standby_replicas"));
  }

  auto bad = ParseConfig(R"(
cluster: {mode: partitioned, partitions: 0, changelog_topic: ""}
input: {control_topic: profiled.control}
privacy: {retention: {ttl: 30d}}
)");
  REQUIRE_FALSE(bad.ok());
  const std::string msg(bad.status().message());
  CHECK_THAT(msg, Catch::Matchers::Contains("cluster.partitions"));
  CHECK_THAT(msg, Catch::Matchers::Contains("cluster.changelog_topic: is required"));
  CHECK(msg.find("input.control_topic") == std::string::npos);  // erasure works here now
  // Retention works here too since incarnations (docs/scaling.md).
  CHECK(msg.find("privacy.retention") == std::string::npos);
  CHECK(ParseConfig("cluster: {mode: partitioned}\nprivacy: {retention: {ttl: 30d}}\n").ok());
  // The purchase model is fitted per store; partitioned mode keeps the
  // configured parameters, and refuses a fit asked for explicitly.
  CHECK(ParseConfig("cluster: {mode: partitioned}\nsignals: {purchase_model: {refit_every: off}}\n")
            .ok());
  for (const char* asked : {"refit_every: 1d", "min_customers: 100"}) {
    CAPTURE(asked);
    auto fit = ParseConfig(
        absl::StrCat("cluster: {mode: partitioned}\nsignals: {purchase_model: {", asked, "}}\n"));
    REQUIRE_FALSE(fit.ok());
    CHECK_THAT(std::string(fit.status().message()),
               Catch::Matchers::Contains("signals.purchase_model.refit_every: fitting is not "
                                         "supported in partitioned mode yet"));
  }
}

TEST_CASE("${NAME} in a string value reads the environment", "[config]") {
  setenv("PROFILED_TEST_POD", "profiled-2", 1);
  setenv("PROFILED_TEST_TOKEN", "s3cret", 1);
  auto c = ParseConfig(R"(
input: {group_instance_id: "${PROFILED_TEST_POD}"}
http: {token: "${PROFILED_TEST_TOKEN}"}
kafka: {properties: {sasl.password: "pw-${PROFILED_TEST_TOKEN}"}}
)");
  REQUIRE_OK(c.status());
  CHECK(c->runtime.consumer.group_instance_id == "profiled-2");
  CHECK(c->http_token == "s3cret");
  CHECK(c->kafka_properties == kafka::Properties{{"sasl.password", "pw-s3cret"}});
  auto missing = ParseConfig("input: {group_instance_id: \"${PROFILED_TEST_UNSET_VAR}\"}\n");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(std::string(missing.status().message()),
             Catch::Matchers::Contains("input.group_instance_id: environment variable "
                                       "'PROFILED_TEST_UNSET_VAR' is not set"));
}

TEST_CASE("the erasure secret can live in a file of its own", "[config]") {
  testing::TempDir dir;
  const std::string path = dir.Sub("erasure-secret");
  std::ofstream(path) << "  0123456789abcdef-not-in-the-store\n";
  auto c = ParseConfig("privacy: {erasure: {secret_file: " + path + "}}\n");
  REQUIRE_OK(c.status());
  CHECK(c->runtime.pipeline.erasure_secret == "0123456789abcdef-not-in-the-store");
  std::ofstream(dir.Sub("short")) << "tiny";
  for (const auto& [yaml, error] : std::vector<std::pair<std::string, std::string>>{
           {"privacy: {erasure: {secret_file: " + dir.Sub("missing") + "}}", "cannot read"},
           {"privacy: {erasure: {secret_file: " + dir.Sub("short") + "}}",
            "at least 16 characters"},
           {"privacy: {erasure: {secret: abc, secret_file: " + path + "}}", "not both"}}) {
    auto bad = ParseConfig(yaml);
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(std::string(bad.status().message()),
               Catch::Matchers::Contains("privacy.erasure.secret_file: ") &&
                   Catch::Matchers::Contains(error));
  }
}

TEST_CASE("bad input topic entries are reported with their paths", "[config]") {
  auto c = ParseConfig(R"(
input:
  topics:
    - {name: a, format: xml}
    - {format: segment-json}
    - a
    - [nested]
    - {name: b, colour: red}
  json_limits: {max_depth: 0, max_bytes: 5}
  future_events: {tolerance: soon, action: ignore}
)");
  REQUIRE_FALSE(c.ok());
  const std::string msg(c.status().message());
  for (const char* expected :
       {"input.topics[0].format: must be one of protobuf, segment-json, json, rees46-csv",
        "input.topics[1].name: must be a non-empty topic name",
        "input.topics[2]: topic 'a' is listed twice",
        "input.topics[3]: must be a topic name or a mapping", "input.topics[4].colour: unknown key",
        "input.json_limits.max_depth: must be between 2 and 1024, got 0",
        "input.json_limits.max_bytes: unknown key",
        "input.future_events.tolerance: bad duration 'soon'",
        "input.future_events.action: must be clamp or reject, got 'ignore'"}) {
    CHECK_THAT(msg, Catch::Matchers::Contains(expected));
  }
}

TEST_CASE("privacy rules are read and every bad one is reported with its index", "[config]") {
  auto ok = ParseConfig(R"(
privacy:
  drop_fields: [context.ip, context.user_agent, traits.ssn]
  hash_fields: [context.session_id]
  hash_key_patterns: []
)");
  REQUIRE_OK(ok.status());
  CHECK(ok->runtime.pipeline.privacy.drop_fields ==
        std::vector<std::string>{"context.ip", "context.user_agent", "traits.ssn"});
  CHECK(ok->runtime.pipeline.privacy.hash_fields == std::vector<std::string>{"context.session_id"});
  CHECK(ok->runtime.pipeline.privacy.hash_key_patterns.empty());
  CHECK(ok->runtime.pipeline.privacy.drop_key_patterns ==
        privacy::PrivacyOptions{}.drop_key_patterns);

  auto bad = ParseConfig(R"(
privacy:
  drop_fields: [context.ip, context.shoe_size]
  hash_key_patterns: ["ok", "(unclosed"]
  keep_fields: []
)");
  REQUIRE_FALSE(bad.ok());
  const std::string msg(bad.status().message());
  CHECK_THAT(msg,
             Catch::Matchers::Contains("privacy.drop_fields[1]: drop_fields: 'context.shoe_size'"));
  CHECK_THAT(msg, Catch::Matchers::Contains(
                      "privacy.hash_key_patterns[1]: hash_key_patterns: '(unclosed'"));
  CHECK_THAT(msg, Catch::Matchers::Contains("privacy.keep_fields: unknown key"));
}

TEST_CASE("a mapped-JSON topic's field map is checked with its path", "[config]") {
  auto bad = ParseConfig(R"(
input:
  topics:
    - {name: a, format: json}
    - name: b
      format: json
      map: {event_id: id, type: /t, time: /at, time_format: weekly, fields: {context.shoe: /s}}
    - {name: c, format: segment-json, map: {type: /t}}
)");
  REQUIRE_FALSE(bad.ok());
  const std::string msg(bad.status().message());
  for (const char* expected :
       {"input.topics[0].map: format json needs a field map",
        "input.topics[1].map.time_format: must be auto, unix_s, unix_ms or rfc3339, got 'weekly'",
        "input.topics[1].map: event_id: 'id' is not a JSON pointer",
        "input.topics[1].map: fields.context.shoe: not a mappable envelope field",
        "input.topics[2].map: format segment-json takes no field map"}) {
    CHECK_THAT(msg, Catch::Matchers::Contains(expected));
  }
}

TEST_CASE("signal definitions are configurable and checked", "[config]") {
  auto ok = ParseConfig(R"(
signals:
  top_intents: 3
  session_gap: 45m
  cart: {abandon_after: 2h}
  lifecycle: {at_risk: 14d, lapsed: 30d, horizon: 30d}
  purchase_model: {r: 0.5, alpha: 6, a: 1.2, b: 2.8, refit_every: 12h, min_customers: 50,
                   max_buckets: 4096, profiles_per_second: 5000}
  holdout: {percent: 5, salt: spring}
  engagement: {fast_half_life: 1d}
)");
  REQUIRE_OK(ok.status());
  const signals::SignalOptions& s = ok->runtime.pipeline.signals;
  CHECK(s.top_intents == 3);
  CHECK(s.abandon_after_ms == 7'200'000);
  CHECK(s.at_risk_ms == 14 * 86'400'000LL);
  CHECK(s.lapsed_ms == 30 * 86'400'000LL);
  CHECK(ok->runtime.pipeline.scoring.return_gap_ms ==
        s.lapsed_ms);  // "reactivated" = back from lapsed
  CHECK(ok->runtime.pipeline.scoring.session_gap_ms == 2'700'000);
  CHECK(ok->runtime.pipeline.scoring.engagement_fast_half_life_ms == 86'400'000.0);
  CHECK(s.holdout_percent == 5.0);
  CHECK(s.holdout_salt == "spring");
  CHECK(s.purchase_horizon_ms == 30 * 86'400'000LL);
  CHECK(s.purchase_model == signals::BgNbdParams{0.5, 6, 1.2, 2.8});
  const pipeline::ModelFitOptions& fit = ok->runtime.model_fit;
  CHECK(fit.every == absl::Hours(12));
  CHECK(fit.min_customers == 50);
  CHECK(fit.max_buckets == 4096);
  CHECK(fit.profiles_per_second == 5000);
  CHECK(ParseConfig("{}\n")->runtime.model_fit.every == absl::Hours(24));
  for (const char* off : {"0", "0s", "0d", "off", "never"}) {
    CAPTURE(off);
    auto never = ParseConfig(absl::StrCat("signals: {purchase_model: {refit_every: ", off, "}}\n"));
    REQUIRE_OK(never.status());
    CHECK(never->runtime.model_fit.every == absl::ZeroDuration());
  }

  auto bad = ParseConfig(R"(
signals:
  cart: {abandon_after: soon, linger: 1h}
  lifecycle: {at_risk: 90d, horizon: 0s}
  purchase_model: {r: 0, alpha: -1, refit_every: 500ms, min_customers: 0, max_buckets: 1023,
                   profiles_per_second: 999}
  holdout: {percent: 150}
)");
  REQUIRE_FALSE(bad.ok());
  const std::string msg(bad.status().message());
  CHECK_THAT(msg, Catch::Matchers::Contains("signals.cart.abandon_after: bad duration 'soon'"));
  CHECK_THAT(msg, Catch::Matchers::Contains("signals.cart.linger: unknown key"));
  CHECK_THAT(msg,
             Catch::Matchers::Contains("signals.lifecycle: at_risk must be shorter than lapsed"));
  CHECK_THAT(msg, Catch::Matchers::Contains("signals.holdout.percent: must be at most 100"));
  CHECK_THAT(msg, Catch::Matchers::Contains("signals.lifecycle.horizon: bad duration '0s'"));
  CHECK_THAT(msg, Catch::Matchers::Contains("signals.purchase_model.r: must be"));
  CHECK_THAT(msg, Catch::Matchers::Contains("signals.purchase_model.alpha: must be"));
  CHECK_THAT(msg, Catch::Matchers::Contains(
                      "signals.purchase_model.refit_every: must be at least 1s (or 0: never fit)"));
  CHECK_THAT(msg, Catch::Matchers::Contains("signals.purchase_model.min_customers: must be"));
  CHECK_THAT(msg, Catch::Matchers::Contains("signals.purchase_model.max_buckets: must be"));
  CHECK_THAT(msg, Catch::Matchers::Contains("signals.purchase_model.profiles_per_second: must be"));
}

TEST_CASE("consent purposes and categories are configurable", "[config]") {
  auto ok = ParseConfig(R"(
privacy:
  consent:
    purposes: {analytics: granted, personalization: denied, marketing: denied}
    categories: {Advertising: marketing, Functional: personalization}
)");
  REQUIRE_OK(ok.status());
  const core::ConsentOptions& c = ok->runtime.pipeline.scoring.consent;
  CHECK(c.DefaultFor("analytics"));
  CHECK_FALSE(c.DefaultFor("personalization"));
  CHECK(c.categories.at("advertising") == "marketing");
  auto bad = ParseConfig(R"(
privacy:
  consent:
    purposes: {personalization: maybe}
    categories: {Ads: sales}
)");
  REQUIRE_FALSE(bad.ok());
  const std::string msg(bad.status().message());
  CHECK_THAT(msg, Catch::Matchers::Contains("privacy.consent.purposes.personalization: must be "
                                            "granted (opt-out) or denied (opt-in)"));
  CHECK_THAT(msg, Catch::Matchers::Contains("privacy.consent.purposes: must include analytics"));
  auto category = ParseConfig("privacy: {consent: {categories: {Ads: sales}}}\n");
  REQUIRE_FALSE(category.ok());
  CHECK_THAT(
      std::string(category.status().message()),
      Catch::Matchers::Contains("privacy.consent.categories.Ads: must name one of the "
                                "purposes (analytics, personalization, marketing), got 'sales'"));
  auto purpose = ParseConfig("output: {purpose: ads}\n");
  REQUIRE_FALSE(purpose.ok());
  CHECK_THAT(
      std::string(purpose.status().message()),
      Catch::Matchers::Contains("output.purpose: 'ads' is not one of privacy.consent.purposes "
                                "(analytics, personalization, marketing)"));
}

TEST_CASE("malformed YAML is an error, not a crash", "[config]") {
  auto c = ParseConfig("input: {topics: [a, b");
  REQUIRE_FALSE(c.ok());
  CHECK(std::string(c.status().message()).find("not valid YAML") != std::string::npos);
}

TEST_CASE("durations take a unit", "[config]") {
  CHECK(ParseDurationMs("1500ms") == 1500);
  CHECK(ParseDurationMs("30s") == 30'000);
  CHECK(ParseDurationMs("1.5h") == 5'400'000);
  CHECK(ParseDurationMs("7d") == 604'800'000);
  CHECK(ParseDurationMs("2w") == 1'209'600'000);
  CHECK_FALSE(ParseDurationMs("7").has_value());
  CHECK_FALSE(ParseDurationMs("d").has_value());
  CHECK_FALSE(ParseDurationMs("7 days").has_value());
}

TEST_CASE("log level and format are read and checked", "[config]") {
  auto ok = ParseConfig("log: {level: warn, format: json}");
  REQUIRE_OK(ok.status());
  CHECK(ok->log_level == LogLevel::kWarn);
  CHECK(ok->log_format == LogFormat::kJson);
  auto defaults = ParseConfig("");
  REQUIRE_OK(defaults.status());
  CHECK(defaults->log_level == LogLevel::kInfo);
  CHECK(defaults->log_format == LogFormat::kText);
  auto bad = ParseConfig("log: {level: loud, format: xml, colour: red}");
  REQUIRE_FALSE(bad.ok());
  const std::string message(bad.status().message());
  CHECK_THAT(message, Catch::Contains("log.level: must be debug, info, warn or error, got 'loud'"));
  CHECK_THAT(message, Catch::Contains("log.format: must be text or json, got 'xml'"));
  CHECK_THAT(message, Catch::Contains("log.colour: unknown key"));
}

}  // namespace
}  // namespace profiled::config

namespace profiled::config {
namespace {

TEST_CASE("the options validate themselves: every problem at once, under its YAML key",
          "[config][validate]") {
  // The options structs on their own, as a library user builds them.
  pipeline::RuntimeOptions rt;
  rt.dead_letter_topic.clear();
  rt.pipeline.inputs["web"].format = "xml";
  rt.pipeline.inputs["crm"].format = "json";  // and no map
  rt.pipeline.control_topic = "crm";
  rt.pipeline.batch_max_events = 0;
  rt.health.stall_timeout = absl::Milliseconds(10);
  const absl::Status s = rt.Validate();
  REQUIRE_FALSE(s.ok());
  const std::string m(s.message());
  for (const char* expected :
       {"store.path: is required", "consumer.topics: must list at least one topic",
        "dead_letter_topic: must not be empty", "pipeline.output_topic: is required",
        "pipeline.inputs[web].format: must be one of protobuf, segment-json, json, rees46-csv",
        "pipeline.inputs[crm].map: ", "pipeline.control_topic: must not be one of the input topics",
        "pipeline.batch_max_events: must be at least 1",
        "health.stall_timeout: must be at least 1s"}) {
    CHECK_THAT(m, Catch::Matchers::Contains(expected));
  }
  pipeline::PipelineOptions fine;
  fine.output_topic = "updates";
  CHECK(fine.Validate().ok());

  // Through the reader: the same checks, named by the keys a user writes.
  auto parsed = ParseConfig(R"(
input:
  topics: [events, control]
  control_topic: control
output: {purpose: ads}
)");
  REQUIRE_FALSE(parsed.ok());
  const std::string msg(parsed.status().message());
  CHECK_THAT(msg,
             Catch::Matchers::Contains("input.control_topic: must not be one of the input topics"));
  CHECK_THAT(msg, Catch::Matchers::Contains("output.purpose: 'ads' is not one of"));
  // The reader no longer adds the control topic to the input topics: the
  // pipeline subscribes to it.
  auto ok = ParseConfig("input: {topics: [events], control_topic: control}\n");
  REQUIRE_OK(ok.status());
  CHECK(ok->runtime.consumer.topics == std::vector<std::string>{"events"});
  CHECK(ok->runtime.pipeline.control_topic == "control");
}

}  // namespace
}  // namespace profiled::config
