#include "support/kafka_harness.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "profiled/core/profile.h"
#include "profiled/kafka/producer.h"
#include "profiled/obs/http_client.h"
#include "support/test_support.h"

namespace profiled::testing {

void ProduceRecords(const std::string& bootstrap, const std::string& topic,
                    const std::vector<std::pair<std::string, std::string>>& records) {
  std::atomic<size_t> delivered{0}, failed{0};
  auto producer = kafka::Producer::Create(
      {{"bootstrap.servers", bootstrap}},
      [&](uint64_t, const absl::Status& s) { (s.ok() ? delivered : failed).fetch_add(1); });
  REQUIRE_OK(producer.status());
  for (const auto& [key, value] : records) {
    for (;;) {
      absl::Status s = (*producer)->Produce(topic, key, value, {}, 0);
      if (s.ok()) break;
      REQUIRE(absl::IsResourceExhausted(s));
      (*producer)->Poll(10);
    }
  }
  REQUIRE_OK((*producer)->Flush(60000));
  REQUIRE(failed == 0);
  REQUIRE(delivered == records.size());
}

void ProduceEvents(const std::string& bootstrap, const std::string& topic,
                   const std::vector<v1::InteractionEvent>& events) {
  std::vector<std::pair<std::string, std::string>> records;
  records.reserve(events.size());
  for (const v1::InteractionEvent& e : events) {
    std::vector<core::Identity> ids = core::IdentitiesOf(e);
    records.emplace_back(ids.empty() ? std::string() : ids.front().value, e.SerializeAsString());
  }
  ProduceRecords(bootstrap, topic, records);
}

std::vector<kafka::ConsumedMessage> ReadTopic(const std::string& bootstrap,
                                              const std::string& topic, size_t expected) {
  static std::atomic<int> group_counter{0};
  kafka::ConsumerOptions options;
  options.properties = {{"bootstrap.servers", bootstrap}};
  options.group_id = "test-reader-" + std::to_string(group_counter.fetch_add(1));
  options.topics = {topic};
  auto consumer = kafka::Consumer::Create(
      options, [](const core::PartitionKey&) { return std::optional<int64_t>(); });
  REQUIRE_OK(consumer.status());
  std::vector<kafka::ConsumedMessage> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (out.size() < expected && std::chrono::steady_clock::now() < deadline) {
    REQUIRE_OK((*consumer)->Poll(10000, 200, out));
  }
  (*consumer)->Close();
  return out;
}

std::vector<kafka::ConsumedMessage> ReadTopicToEnd(const std::string& bootstrap,
                                                   const std::string& topic) {
  static std::atomic<int> group_counter{0};
  kafka::ConsumerOptions options;
  options.properties = {{"bootstrap.servers", bootstrap}};
  options.group_id = "test-reader-to-end-" + std::to_string(group_counter.fetch_add(1));
  options.topics = {topic};
  auto consumer = kafka::Consumer::Create(
      options, [](const core::PartitionKey&) { return std::optional<int64_t>(); });
  REQUIRE_OK(consumer.status());
  std::vector<kafka::ConsumedMessage> out;
  std::map<std::pair<std::string, int32_t>, int64_t> next;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    const size_t before = out.size();
    REQUIRE_OK((*consumer)->Poll(10000, 200, out));
    for (size_t i = before; i < out.size(); ++i) {
      next[{out[i].topic(), out[i].partition()}] = out[i].offset() + 1;
    }
    if (out.size() != before) continue;
    const std::vector<core::PartitionKey> assigned = (*consumer)->Assignment();
    bool at_end = !assigned.empty();
    for (const core::PartitionKey& p : assigned) {
      absl::StatusOr<int64_t> high = (*consumer)->QueryHighWatermark(p, 5000);
      auto it = next.find({p.topic, p.partition});
      at_end = at_end && high.ok() && (it == next.end() ? 0 : it->second) >= *high;
    }
    if (at_end) break;
  }
  (*consumer)->Close();
  return out;
}

double MetricIn(const std::string& exposition, const std::string& name) {
  const std::string prefix = "\n" + name + " ";
  const size_t at = ("\n" + exposition).find(prefix);
  if (at == std::string::npos) return -1;
  return std::strtod(exposition.c_str() + at + prefix.size() - 1, nullptr);
}

double ScrapeCounter(const std::string& host_port, const std::string& name) {
  absl::StatusOr<obs::HttpResponse> r = obs::HttpGet(host_port, "/metrics", "", 2000);
  if (!r.ok() || r->status != 200) return -1;
  return MetricIn(r->body, name);
}

pipeline::RuntimeOptions RunnerOptions(const std::string& store_path,
                                       const pipeline::PipelineOptions& options,
                                       const std::vector<std::string>& input_topics,
                                       const std::string& input_bootstrap,
                                       const std::string& output_bootstrap,
                                       const pipeline::HealthOptions& health) {
  pipeline::RuntimeOptions rt;
  rt.store.path = store_path;
  rt.consumer.properties = {{"bootstrap.servers", input_bootstrap}};
  rt.consumer.topics = input_topics;
  rt.producer_properties = {{"bootstrap.servers", output_bootstrap}};
  rt.dead_letter_topic = PipelineRunner::kDeadLetterTopic;
  rt.pipeline = options;
  rt.health = health;
  return rt;
}

PipelineRunner::PipelineRunner(const std::string& store_path,
                               const pipeline::PipelineOptions& options,
                               const std::vector<std::string>& input_topics,
                               const std::string& input_bootstrap,
                               const std::string& output_bootstrap, const core::Clock* wall,
                               const pipeline::HealthOptions& health)
    : PipelineRunner(RunnerOptions(store_path, options, input_topics, input_bootstrap,
                                   output_bootstrap, health),
                     wall) {}

PipelineRunner::PipelineRunner(pipeline::RuntimeOptions rt, const core::Clock* wall) {
  // A group per runner: the mock broker holds a group for the previous
  // member's session timeout even after a clean leave, and positions come
  // from the store anyway.
  static std::atomic<int> runner_counter{0};
  rt.consumer.group_id = "profiled-test-" + std::to_string(runner_counter.fetch_add(1));
  auto runtime = pipeline::Runtime::Start(rt, observability_.registry(), wall ? *wall : wall_,
                                          [this] { return stop_.load(); });
  REQUIRE_OK(runtime.status());
  runtime_ = std::move(*runtime);
  loop_ = std::thread([this] {
    while (!stop_) {
      absl::StatusOr<size_t> n = runtime_->RunOnce();
      if (!n.ok() && !absl::IsCancelled(n.status())) {
        // Catch2 assertions are not thread-safe; an unexpected failure ends the test run loudly.
        std::fprintf(stderr, "pipeline failed: %s\n", n.status().ToString().c_str());
        std::abort();
      }
    }
  });
}

PipelineRunner::~PipelineRunner() { Stop(); }

void PipelineRunner::Stop() {
  if (stop_.exchange(true)) return;
  loop_.join();
  runtime_->Shutdown(absl::Seconds(10));
}

}  // namespace profiled::testing
