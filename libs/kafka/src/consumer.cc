#include "profiled/kafka/consumer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "conf.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"

namespace profiled::kafka {
namespace {

// Frees librdkafka's TopicPartition vectors on every path.
struct PartitionList {
  std::vector<RdKafka::TopicPartition*> parts;
  ~PartitionList() { RdKafka::TopicPartition::destroy(parts); }
};

class KafkaConsumer;

ConsumedMessage ToConsumedMessage(RdKafka::Message& msg) {
  std::vector<Header> headers;
  if (RdKafka::Headers* h = msg.headers()) {
    for (const RdKafka::Headers::Header& one : h->get_all()) {
      const char* v = static_cast<const char*>(one.value());
      headers.push_back(
          {one.key(), v == nullptr ? std::string() : std::string(v, one.value_size())});
    }
  }
  const bool tombstone = msg.payload() == nullptr;
  return ConsumedMessage(
      msg.topic_name(), msg.partition(), msg.offset(), msg.key() ? *msg.key() : std::string(),
      tombstone ? std::string() : std::string(static_cast<const char*>(msg.payload()), msg.len()),
      tombstone, msg.timestamp().timestamp, std::move(headers));
}

class Rebalancer final : public RdKafka::RebalanceCb {
 public:
  explicit Rebalancer(KafkaConsumer* owner) : owner_(owner) {}
  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override;

 private:
  KafkaConsumer* owner_;
};

class ConsumerErrorLogger final : public RdKafka::EventCb {
 public:
  void event_cb(RdKafka::Event& event) override {
    // librdkafka reports an out-of-range position only as a log line.
    if (event.type() == RdKafka::Event::EVENT_LOG && event.fac() == "OFFSET" &&
        event.str().find("offset reset") != std::string::npos) {
      offset_resets_.fetch_add(1);
      LogError("input messages lost: a stored position is no longer on the broker (retention ",
               "deleted it before profiled consumed it); restarting at the oldest message: ",
               event.str());
      return;
    }
    internal::LogKafkaEvent("consumer", event);
  }
  uint64_t offset_resets() const { return offset_resets_.load(); }

 private:
  std::atomic<uint64_t> offset_resets_{0};
};

class KafkaConsumer final : public Consumer {
 public:
  KafkaConsumer(ConsumerOptions options, PositionLookup lookup)
      : options_(std::move(options)), lookup_(std::move(lookup)), rebalancer_(this) {}

  absl::Status Init() {
    ASSIGN_OR_RETURN(std::unique_ptr<RdKafka::Conf> conf, internal::MakeConf(options_.properties));
    RETURN_IF_ERROR(internal::SetOrFail(*conf, "group.id", options_.group_id));
    if (!options_.group_instance_id.empty()) {
      RETURN_IF_ERROR(internal::SetOrFail(*conf, "group.instance.id", options_.group_instance_id));
    }
    // Positions live in profiled's store; the group's offsets are informational.
    RETURN_IF_ERROR(internal::SetOrFail(*conf, "enable.auto.commit", "false"));
    RETURN_IF_ERROR(internal::SetOrFail(*conf, "enable.auto.offset.store", "false"));
    RETURN_IF_ERROR(internal::SetOrFail(*conf, "enable.partition.eof", "false"));
    // Real-time by default: librdkafka's 500 ms fetch wait would sit in every
    // quiet partition's event->publish latency. Overridable.
    const bool wait_set =
        std::any_of(options_.properties.begin(), options_.properties.end(),
                    [](const auto& kv) { return kv.first == "fetch.wait.max.ms"; });
    if (!wait_set) RETURN_IF_ERROR(internal::SetOrFail(*conf, "fetch.wait.max.ms", "100"));
    // Only an out-of-range stored position uses this (new partitions are
    // sought explicitly): restart at the oldest message still on the broker,
    // losing only what retention already deleted, never skipping to the end.
    RETURN_IF_ERROR(internal::SetOrFail(*conf, "auto.offset.reset", "earliest"));
    // The protocol follows from the strategy; asking librdkafka for it
    // inside a rebalance callback can block forever once close() has begun
    // (librdkafka issue #4041; a suspect, not proven, in a partitioned
    // member's shutdown that hung once in CI).
    std::string strategy;
    if (conf->get("partition.assignment.strategy", strategy) == RdKafka::Conf::CONF_OK) {
      cooperative_ = strategy.find("cooperative") != std::string::npos;
    }
    // Before 2.3.0 the cooperative-sticky assignor aborts the process when a
    // consumer closes before its first assignment (librdkafka issue #4312).
    constexpr int kFixedIn = 0x020300ff;
    if (cooperative_ && RdKafka::version() < kFixedIn) {
      return absl::InvalidArgumentError(absl::StrCat(
          "partition.assignment.strategy \"", strategy, "\": librdkafka ",
          RdKafka::version_str(), " aborts when a cooperative consumer closes before its first ",
          "assignment (librdkafka issue #4312, fixed in 2.3.0); use the default (eager) strategy"));
    }
    std::string err;
    if (conf->set("rebalance_cb", &rebalancer_, err) != RdKafka::Conf::CONF_OK ||
        conf->set("event_cb", &errors_, err) != RdKafka::Conf::CONF_OK) {
      return absl::InternalError(err);
    }
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
    if (!consumer_) return absl::InvalidArgumentError(absl::StrCat("creating consumer: ", err));
    RdKafka::ErrorCode code = consumer_->subscribe(options_.topics);
    if (code != RdKafka::ERR_NO_ERROR) return internal::KafkaError(code, "subscribe");
    return absl::OkStatus();
  }

  ~KafkaConsumer() override { Close(); }

  uint64_t OffsetResets() const override { return errors_.offset_resets(); }

  using Consumer::Poll;
  absl::Status Poll(size_t max_messages, int timeout_ms, int gather_ms,
                    std::vector<ConsumedMessage>& out) override {
    rebalanced_ = false;
    std::optional<std::chrono::steady_clock::time_point> gather_until;
    for (size_t n = 0; n < max_messages && !rebalanced_; ++n) {
      int wait_ms = n == 0 ? timeout_ms : 0;
      if (gather_until.has_value()) {
        const auto left = *gather_until - std::chrono::steady_clock::now();
        wait_ms = static_cast<int>(
            std::max<int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
      }
      std::unique_ptr<RdKafka::Message> msg(consumer_->consume(wait_ms));
      switch (msg->err()) {
        case RdKafka::ERR_NO_ERROR:
          if (!gather_until.has_value()) {
            gather_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(gather_ms);
          }
          // Where a partition without a stored position really started, for Rewind.
          first_offset_.try_emplace({msg->topic_name(), msg->partition()}, msg->offset());
          out.push_back(ToConsumedMessage(*msg));
          break;
        case RdKafka::ERR__TIMED_OUT:
          return absl::OkStatus();
        case RdKafka::ERR__PARTITION_EOF:
          break;
        case RdKafka::ERR__FATAL:
          // A fenced static member or similar: this consumer cannot go on.
          return internal::KafkaError(msg->err(), absl::StrCat("consume: ", msg->errstr()));
        default:
          // Transient broker or partition errors: librdkafka recovers by itself.
          LogWarn("consume: ", msg->errstr());
          return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }

  void PauseAll() override {
    paused_ = true;
    PartitionList list;
    consumer_->assignment(list.parts);
    if (!list.parts.empty()) consumer_->pause(list.parts);
  }

  void ResumeAll() override {
    paused_ = false;
    PartitionList list;
    consumer_->assignment(list.parts);
    if (!list.parts.empty()) consumer_->resume(list.parts);
  }

  void Pause(const std::vector<core::PartitionKey>& partitions) override {
    PartitionList list;
    Fill(partitions, list);
    if (!list.parts.empty()) consumer_->pause(list.parts);
  }

  void Resume(const std::vector<core::PartitionKey>& partitions) override {
    PartitionList list;
    Fill(partitions, list);
    if (!list.parts.empty()) consumer_->resume(list.parts);
  }

  // Filled in place: PartitionList owns its elements and must not be copied.
  static void Fill(const std::vector<core::PartitionKey>& partitions, PartitionList& list) {
    list.parts.reserve(partitions.size());
    for (const core::PartitionKey& p : partitions) {
      list.parts.push_back(RdKafka::TopicPartition::create(p.topic, p.partition));
    }
  }

  void CommitAsync(const std::vector<CommitPosition>& positions) override {
    if (positions.empty()) return;
    PartitionList list;
    for (const CommitPosition& p : positions) {
      list.parts.push_back(
          RdKafka::TopicPartition::create(p.partition.topic, p.partition.partition, p.next_offset));
    }
    RdKafka::ErrorCode err = consumer_->commitAsync(list.parts);
    if (err != RdKafka::ERR_NO_ERROR) LogDebug("group commit: ", RdKafka::err2str(err));
  }

  std::vector<core::PartitionKey> Assignment() override {
    PartitionList list;
    consumer_->assignment(list.parts);
    std::vector<core::PartitionKey> out;
    for (RdKafka::TopicPartition* tp : list.parts) out.push_back({tp->topic(), tp->partition()});
    return out;
  }

  absl::StatusOr<int64_t> QueryHighWatermark(const core::PartitionKey& p, int timeout_ms) override {
    // ListOffsets for the latest offset: query_watermark_offsets can wait
    // far past its timeout while the leader's broker is down.
    PartitionList list;
    list.parts.push_back(
        RdKafka::TopicPartition::create(p.topic, p.partition, RdKafka::Topic::OFFSET_END));
    RdKafka::ErrorCode err = consumer_->offsetsForTimes(list.parts, timeout_ms);
    if (err == RdKafka::ERR_NO_ERROR) err = list.parts[0]->err();
    if (err != RdKafka::ERR_NO_ERROR) return internal::KafkaError(err, "query watermarks");
    return list.parts[0]->offset();
  }

  std::optional<int64_t> CachedHighWatermark(const core::PartitionKey& p) override {
    int64_t low = 0, high = 0;
    if (consumer_->get_watermark_offsets(p.topic, p.partition, &low, &high) !=
            RdKafka::ERR_NO_ERROR ||
        high < 0) {
      return std::nullopt;
    }
    return high;
  }

  absl::Status Rewind() override {
    PartitionList list;
    consumer_->assignment(list.parts);
    for (RdKafka::TopicPartition* tp : list.parts) {
      const bool committed_topic = IsCommittedTopic(tp->topic());
      std::optional<int64_t> stored;
      if (!committed_topic) stored = lookup_({tp->topic(), tp->partition()});
      if (!stored) {
        // Back to the first message consumed, not to a logical start: with
        // initial_position latest, "the end" would skip what was read.
        auto first = first_offset_.find(core::PartitionKey{tp->topic(), tp->partition()});
        if (first != first_offset_.end()) stored = first->second;
        // Nothing consumed since it was assigned at the group's offset: it is still there.
        if (!stored && committed_topic) continue;
      }
      tp->set_offset(stored ? *stored
                            : (options_.start_from_earliest ? RdKafka::Topic::OFFSET_BEGINNING
                                                            : RdKafka::Topic::OFFSET_END));
      RdKafka::ErrorCode err = consumer_->seek(*tp, 5000);
      if (err != RdKafka::ERR_NO_ERROR) {
        return internal::KafkaError(err,
                                    absl::StrCat("rewinding ", tp->topic(), "/", tp->partition()));
      }
      LogInfo("rewound ", tp->topic(), "/", tp->partition(), " to ",
              stored ? absl::StrCat("stored offset ", *stored) : std::string("its start"));
    }
    return absl::OkStatus();
  }

  absl::Status Seek(const core::PartitionKey& partition, int64_t next_offset) override {
    std::unique_ptr<RdKafka::TopicPartition> tp(
        RdKafka::TopicPartition::create(partition.topic, partition.partition, next_offset));
    RdKafka::ErrorCode err = consumer_->seek(*tp, 5000);
    if (err != RdKafka::ERR_NO_ERROR) {
      return internal::KafkaError(
          err, absl::StrCat("seeking ", partition.topic, "/", partition.partition));
    }
    return absl::OkStatus();
  }

  void Close() override {
    if (consumer_ && !closed_) {
      closed_ = true;
      consumer_->close();
    }
  }

  bool IsCommittedTopic(const std::string& topic) const {
    return std::find(options_.committed_topics.begin(), options_.committed_topics.end(), topic) !=
           options_.committed_topics.end();
  }

  // The group's committed offsets of those of `partitions` in committed
  // topics (-1: none committed); empty when the coordinator did not answer.
  absl::flat_hash_map<core::PartitionKey, int64_t> CommittedOffsets(
      RdKafka::KafkaConsumer* consumer, const std::vector<RdKafka::TopicPartition*>& partitions) {
    absl::flat_hash_map<core::PartitionKey, int64_t> offsets;
    PartitionList list;
    for (const RdKafka::TopicPartition* tp : partitions) {
      if (IsCommittedTopic(tp->topic())) {
        list.parts.push_back(RdKafka::TopicPartition::create(tp->topic(), tp->partition()));
      }
    }
    if (list.parts.empty()) return offsets;
    const RdKafka::ErrorCode err = consumer->committed(list.parts, 10'000);
    if (err != RdKafka::ERR_NO_ERROR) {
      LogWarn("reading the group's committed offsets: ", RdKafka::err2str(err));
      return offsets;
    }
    for (const RdKafka::TopicPartition* tp : list.parts) {
      if (tp->err() != RdKafka::ERR_NO_ERROR) continue;
      offsets[core::PartitionKey{tp->topic(), tp->partition()}] =
          std::max<int64_t>(tp->offset(), -1);
    }
    return offsets;
  }

  // The partition's end offset, committed to the group as its position;
  // nullopt (start at the end, unpinned) when the broker did not answer.
  std::optional<int64_t> PinLatest(RdKafka::KafkaConsumer* consumer,
                                   const core::PartitionKey& key) {
    absl::StatusOr<int64_t> high = QueryHighWatermark(key, 5000);
    absl::Status pinned = high.status();
    if (high.ok()) {
      PartitionList list;
      list.parts.push_back(RdKafka::TopicPartition::create(key.topic, key.partition, *high));
      RdKafka::ErrorCode err = consumer->commitSync(list.parts);
      if (err == RdKafka::ERR_NO_ERROR) err = list.parts[0]->err();
      if (err != RdKafka::ERR_NO_ERROR) pinned = internal::KafkaError(err, "commit");
    }
    if (!pinned.ok()) {
      LogWarn("pinning ", key.topic, "/", key.partition, " at its end offset: ", pinned.message(),
              "; starting at the end unpinned (a move before the first commit may skip input)");
      return std::nullopt;
    }
    return *high;
  }

  void OnRebalance(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                   std::vector<RdKafka::TopicPartition*>& partitions) {
    rebalanced_ = true;
    const bool cooperative = cooperative_;
    for (RdKafka::TopicPartition* tp : partitions) {
      first_offset_.erase(core::PartitionKey{tp->topic(), tp->partition()});
    }
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      const absl::flat_hash_map<core::PartitionKey, int64_t> committed =
          CommittedOffsets(consumer, partitions);
      for (RdKafka::TopicPartition* tp : partitions) {
        const core::PartitionKey key{tp->topic(), tp->partition()};
        std::string from;
        std::optional<int64_t> stored;
        if (IsCommittedTopic(tp->topic())) {
          auto it = committed.find(key);
          if (it == committed.end()) {
            // The group's offset could not be read now: librdkafka reads it
            // itself (earliest when there is none), never skipping input.
            tp->set_offset(RdKafka::Topic::OFFSET_STORED);
            LogInfo("assigned ", tp->topic(), "/", tp->partition(), " from the group's offset");
            continue;
          }
          if (it->second >= 0) {
            stored = it->second;
            from = "committed offset ";
          } else if (!options_.start_from_earliest) {
            // Latest, and the group has nothing: pin "the end" as it is now,
            // so a later owner (after a move before the first commit) starts
            // here rather than at a later end, skipping what came between.
            stored = PinLatest(consumer, key);
            from = "pinned latest offset ";
          }
        } else {
          stored = lookup_(key);
          from = "stored offset ";
        }
        tp->set_offset(stored ? *stored
                              : (options_.start_from_earliest ? RdKafka::Topic::OFFSET_BEGINNING
                                                              : RdKafka::Topic::OFFSET_END));
        LogInfo("assigned ", tp->topic(), "/", tp->partition(), " from ",
                stored ? absl::StrCat(from, *stored)
                       : std::string(options_.start_from_earliest ? "earliest" : "latest"));
      }
      if (cooperative) {
        delete consumer->incremental_assign(partitions);
      } else {
        consumer->assign(partitions);
      }
      if (paused_) consumer->pause(partitions);
    } else {
      for (RdKafka::TopicPartition* tp : partitions) {
        LogInfo("revoked ", tp->topic(), "/", tp->partition());
      }
      if (cooperative) {
        delete consumer->incremental_unassign(partitions);
      } else {
        consumer->unassign();
      }
    }
  }

 private:
  ConsumerOptions options_;
  PositionLookup lookup_;
  Rebalancer rebalancer_;
  ConsumerErrorLogger errors_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  bool rebalanced_ = false;
  bool paused_ = false;
  bool cooperative_ = false;  // partition.assignment.strategy is cooperative-sticky
  absl::flat_hash_map<core::PartitionKey, int64_t> first_offset_;
  bool closed_ = false;
};

void Rebalancer::rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                              std::vector<RdKafka::TopicPartition*>& partitions) {
  owner_->OnRebalance(consumer, err, partitions);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(const ConsumerOptions& options,
                                                           PositionLookup lookup) {
  if (options.topics.empty()) return absl::InvalidArgumentError("no input topics");
  auto consumer = std::make_unique<KafkaConsumer>(options, std::move(lookup));
  RETURN_IF_ERROR(consumer->Init());
  return std::unique_ptr<Consumer>(std::move(consumer));
}

}  // namespace profiled::kafka
