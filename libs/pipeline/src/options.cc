// Validate() of the pipeline's options structs: every problem at once, one
// per line, each named by its field's path in the struct (the configuration
// reader translates the paths to its YAML keys).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "profiled/ingest/event_decoder.h"
#include "profiled/pipeline/health.h"
#include "profiled/pipeline/model_fitter.h"
#include "profiled/pipeline/pipeline.h"
#include "profiled/pipeline/publisher.h"
#include "profiled/pipeline/runtime.h"
#include "profiled/signals/purchase_buckets.h"

namespace profiled::pipeline {
namespace {

// Collects "path: message" lines; ok when there are none.
class Problems {
 public:
  void Add(absl::string_view path, absl::string_view message) {
    lines_.push_back(absl::StrCat(path, ": ", message));
  }
  // Every line of `s` (a nested Validate()), under `prefix`.
  void AddAll(const std::string& prefix, const absl::Status& s) {
    if (s.ok()) return;
    for (absl::string_view line : absl::StrSplit(s.message(), '\n')) {
      lines_.push_back(absl::StrCat(prefix, line));
    }
  }
  absl::Status ToStatus() const {
    return lines_.empty() ? absl::OkStatus() : absl::InvalidArgumentError(absl::StrJoin(lines_, "\n"));
  }

 private:
  std::vector<std::string> lines_;
};

}  // namespace

absl::Status PipelineOptions::Validate() const {
  Problems p;
  if (output_topic.empty()) p.Add("output_topic", "is required");
  for (const auto& [topic, input] : inputs) {
    const std::string path = absl::StrCat("inputs[", topic, "]");
    const ingest::EventFormat* f = ingest::FindEventFormat(input.format);
    if (f == nullptr) {
      p.Add(path + ".format", absl::StrCat("must be one of ", ingest::EventFormatNames(), ", got '",
                                           input.format, "'"));
      continue;
    }
    if (input.default_channel.empty()) p.Add(path + ".default_channel", "must not be empty");
    if (auto decoder = f->create({input.default_channel, json_limits, input.map}); !decoder.ok()) {
      p.AddAll(path + ".map: ", decoder.status());
    }
  }
  if (!control_topic.empty() && inputs.contains(control_topic)) {
    p.Add("control_topic", "must not be one of the input topics");
  }
  if (batch_max_events == 0) p.Add("batch_max_events", "must be at least 1");
  if (outbox_max_entries == 0) p.Add("outbox_max_entries", "must be at least 1");
  if (poll_timeout_ms < 0) p.Add("poll_timeout_ms", "must not be negative");
  if (max_delay_ms < 0) p.Add("max_delay_ms", "must not be negative");
  if (retention_ttl_ms < 0) p.Add("retention_ttl_ms", "must not be negative");
  if (erasure_suppression_ms < 0) p.Add("erasure_suppression_ms", "must not be negative");
  if (const std::string& purpose = scoring.consent.output_purpose;
      !purpose.empty() && !scoring.consent.Knows(purpose)) {
    std::vector<std::string> names;
    for (const auto& [name, granted] : scoring.consent.defaults) names.push_back(name);
    p.Add("scoring.consent.output_purpose",
          absl::StrCat("'", purpose, "' is not one of privacy.consent.purposes (",
                       absl::StrJoin(names, ", "), ")"));
  }
  p.AddAll("event_limits.", event_limits.Validate());
  p.AddAll("identity.", identity.Validate());
  return p.ToStatus();
}

absl::Status PublisherOptions::Validate() const {
  Problems p;
  if (max_in_flight == 0) p.Add("max_in_flight", "must be at least 1");
  if (retry_backoff < absl::ZeroDuration()) p.Add("retry_backoff", "must not be negative");
  if (refused_retry < absl::ZeroDuration()) p.Add("refused_retry", "must not be negative");
  if (max_message_bytes == 0) p.Add("max_message_bytes", "must be at least 1");
  return p.ToStatus();
}

absl::Status HealthOptions::Validate() const {
  Problems p;
  if (ready_max_lag < 0) p.Add("ready_max_lag", "must not be negative");
  if (stall_timeout < absl::Seconds(1)) p.Add("stall_timeout", "must be at least 1s");
  return p.ToStatus();
}

absl::Status ModelFitOptions::Validate() const {
  Problems p;
  if (every < absl::ZeroDuration()) p.Add("every", "must not be negative");
  if (every > absl::ZeroDuration() && every < absl::Seconds(1)) {
    p.Add("every", "must be at least 1s (or 0: never fit)");
  }
  if (min_customers < 1) p.Add("min_customers", "must be at least 1");
  if (max_buckets < signals::PurchaseBuckets::kMinBuckets) {
    p.Add("max_buckets", absl::StrCat("must be at least ", signals::PurchaseBuckets::kMinBuckets));
  }
  if (profiles_per_second < kModelFitPiece) {
    p.Add("profiles_per_second", absl::StrCat("must be at least ", kModelFitPiece));
  }
  return p.ToStatus();
}

absl::Status RuntimeOptions::Validate() const {
  Problems p;
  p.AddAll("store.", store.Validate());
  if (consumer.topics.empty()) p.Add("consumer.topics", "must list at least one topic");
  if (consumer.group_id.empty()) p.Add("consumer.group_id", "must not be empty");
  if (dead_letter_topic.empty()) p.Add("dead_letter_topic", "must not be empty");
  p.AddAll("pipeline.", pipeline.Validate());
  p.AddAll("publisher.", publisher.Validate());
  p.AddAll("health.", health.Validate());
  p.AddAll("model_fit.", model_fit.Validate());
  if (recovery_backoff <= absl::ZeroDuration()) p.Add("recovery_backoff", "must be positive");
  // group_id is the consumer's, reported above.
  if (!consumer.group_id.empty()) p.AddAll("lease.", Lease().Validate());
  return p.ToStatus();
}

cluster::GroupLeaseOptions RuntimeOptions::Lease() const {
  cluster::GroupLeaseOptions out = lease;
  out.group_id = consumer.group_id;
  out.mode = std::string(cluster::kSingleMode);
  if (out.instance_id.empty()) out.instance_id = cluster::DefaultInstanceId(store.path);
  return out;
}

}  // namespace profiled::pipeline
