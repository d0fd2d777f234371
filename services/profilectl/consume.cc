// profilectl tail and redrive: read a topic with a throwaway consumer group.
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <functional>

#include <google/protobuf/util/json_util.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "cli.h"
#include "profiled/kafka/consumer.h"
#include "profiled/pipeline/dead_letters.h"
#include "profiled/v1/profile_update.pb.h"
#include "producing.h"

namespace profilectl {
namespace {

using profiled::kafka::ConsumedMessage;

// Calls `on_message` for every message of `topic`; returns at the end of
// every partition when `to_end`, else when a signal arrives.
absl::Status ReadTopic(const std::string& bootstrap, const std::string& topic, bool from_beginning,
                       bool to_end, const std::function<void(const ConsumedMessage&)>& on_message) {
  profiled::kafka::ConsumerOptions options;
  options.properties = {{"bootstrap.servers", bootstrap}};
  options.group_id = absl::StrCat("profilectl-", getpid(), "-", time(nullptr));
  options.topics = {topic};
  options.start_from_earliest = from_beginning;
  auto consumer = profiled::kafka::Consumer::Create(
      options, [](const profiled::core::PartitionKey&) { return std::optional<int64_t>(); });
  if (!consumer.ok()) return consumer.status();
  absl::flat_hash_map<profiled::core::PartitionKey, int64_t> next_offset;
  std::vector<ConsumedMessage> batch;
  while (!g_stop) {
    batch.clear();
    if (absl::Status s = (*consumer)->Poll(1000, 200, batch); !s.ok()) return s;
    for (const ConsumedMessage& m : batch) {
      next_offset[{m.topic(), m.partition()}] = m.offset() + 1;
      on_message(m);
    }
    std::fflush(stdout);
    if (to_end && batch.empty()) {
      auto assigned = (*consumer)->Assignment();
      bool at_end = !assigned.empty();
      for (const auto& p : assigned) {
        auto high = (*consumer)->QueryHighWatermark(p, 5000);
        auto it = next_offset.find(p);
        const int64_t pos = it == next_offset.end() ? 0 : it->second;
        at_end = at_end && high.ok() && pos >= *high;
      }
      if (at_end) break;
    }
  }
  (*consumer)->Close();
  return absl::OkStatus();
}

}  // namespace

int Tail(const Args& args) {
  if (!args.Has("--bootstrap") || !args.Has("--topic")) {
    return Usage("tail needs --bootstrap and --topic");
  }
  google::protobuf::util::JsonPrintOptions json;
  profiled::v1::ProfileUpdate update;
  absl::Status s = ReadTopic(
      args.Get("--bootstrap"), args.Get("--topic"), args.Has("--from-beginning"),
      args.Has("--exit-at-end"), [&](const ConsumedMessage& m) {
        if (m.tombstone()) {
          std::printf("{\"profileId\":%s,\"deleted\":true}\n", JsonString(m.key()).c_str());
          return;
        }
        std::string line;
        if (!update.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())) ||
            !google::protobuf::util::MessageToJsonString(update, &line, json).ok()) {
          std::fprintf(stderr, "profilectl: %s/%d@%lld is not a ProfileUpdate\n", m.topic().c_str(),
                       m.partition(), static_cast<long long>(m.offset()));
          return;
        }
        std::printf("%s\n", line.c_str());
      });
  return s.ok() ? 0 : Fail(s.ToString());
}

int Redrive(const Args& args) {
  if (!args.Has("--bootstrap") || !args.Has("--topic")) {
    return Usage("redrive needs --bootstrap and --topic (the dead-letter topic)");
  }
  namespace pl = profiled::pipeline;
  const std::string reason = args.Get("--reason");
  const std::string source = args.Get("--source-topic");
  std::vector<Outgoing> records;
  uint64_t skipped = 0, cut = 0;
  absl::Status s = ReadTopic(
      args.Get("--bootstrap"), args.Get("--topic"), /*from_beginning=*/true, /*to_end=*/true,
      [&](const ConsumedMessage& m) {
        const std::string letter_reason(m.header(pl::kReasonHeader).value_or(""));
        const std::string from(m.header(pl::kSourceTopicHeader).value_or(""));
        if (from.empty() || (!reason.empty() && letter_reason != reason) ||
            (!source.empty() && from != source)) {
          ++skipped;
          return;
        }
        const std::string letter = absl::StrCat(m.topic(), "/", m.partition(), "@", m.offset());
        if (auto truncated = m.header(pl::kTruncatedHeader)) {
          // Only part of the original bytes is here: re-sending it would
          // feed the input a different message. Recover it from its source.
          std::fprintf(stderr, "profilectl: %s not re-driven: its value was cut (%s of %s bytes kept)\n",
                       letter.c_str(), std::string(*truncated).c_str(),
                       std::string(m.header(pl::kOriginalSizeHeader).value_or("?")).c_str());
          ++skipped;
          ++cut;
          return;
        }
        const std::string to = args.Get("--to", from);
        std::printf("%s %s -> %s\n", letter.c_str(), letter_reason.c_str(), to.c_str());
        records.push_back({to, std::string(m.key()), std::string(m.payload()),
                           {{"profiled.redriven_from", letter}}});
      });
  if (!s.ok()) return Fail(s.ToString());
  if (args.Has("--dry-run")) {
    std::fprintf(stderr, "profilectl: would re-drive %zu dead letters (%llu skipped, %llu of them cut)\n",
                 records.size(), static_cast<unsigned long long>(skipped),
                 static_cast<unsigned long long>(cut));
    return 0;
  }
  const SendResult sent = SendAll(args.Get("--bootstrap"), records);
  std::fprintf(stderr, "profilectl: re-drove %llu of %zu dead letters (%llu failed, %llu skipped)\n",
               static_cast<unsigned long long>(sent.delivered), records.size(),
               static_cast<unsigned long long>(sent.failed), static_cast<unsigned long long>(skipped));
  if (!sent.error.empty()) return Fail(sent.error);
  return sent.failed == 0 ? 0 : 1;
}

}  // namespace profilectl
