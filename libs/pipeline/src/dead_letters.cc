#include "profiled/pipeline/dead_letters.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"

namespace profiled::pipeline {

absl::StatusOr<std::unique_ptr<DeadLetterSink>> DeadLetterSink::Create(
    std::string topic, const kafka::Properties& producer_properties) {
  if (topic.empty()) return absl::InvalidArgumentError("dead-letter topic is required");
  std::unique_ptr<DeadLetterSink> sink(new DeadLetterSink(std::move(topic)));
  DeadLetterSink* raw = sink.get();
  ASSIGN_OR_RETURN(sink->producer_,
                   kafka::Producer::Create(producer_properties,
                                           [raw](uint64_t index, const absl::Status& s) {
                                             raw->outcome_[index] = s.ok() ? 1 : -1;
                                             if (!s.ok()) {
                                               LogWarn("dead letter not delivered: ", s.message());
                                             }
                                           }));
  return sink;
}

absl::Status DeadLetterSink::PublishAll(const std::vector<DeadLetter>& letters,
                                        const std::function<bool()>& should_stop) {
  if (letters.empty()) return absl::OkStatus();
  const std::string now =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  outcome_.assign(letters.size(), -1);  // -1: still to (re)send
  for (;;) {
    for (size_t i = 0; i < letters.size(); ++i) {
      if (outcome_[i] != -1) continue;
      const DeadLetter& l = letters[i];
      std::vector<kafka::Header> headers = {
          {kReasonHeader, l.reason},
          {kDetailHeader, l.detail},
          {kSourceTopicHeader, l.source_topic},
          {kSourcePartitionHeader, absl::StrCat(l.source_partition)},
          {kSourceOffsetHeader, absl::StrCat(l.source_offset)},
          {kTimeHeader, now}};
      if (l.redacted) headers.push_back({kRedactedHeader, "drop-list"});
      absl::Status s = producer_->Produce(topic_, l.key, l.value, headers, i);
      if (s.ok()) {
        outcome_[i] = 0;
      } else if (!absl::IsResourceExhausted(s)) {
        LogWarn("dead letter produce: ", s.ToString());
      }
    }
    // Wait for every report of this round.
    while (std::count(outcome_.begin(), outcome_.end(), 0) > 0) {
      if (should_stop()) return absl::CancelledError("stopping before dead letters were delivered");
      producer_->Poll(50);
    }
    if (std::count(outcome_.begin(), outcome_.end(), -1) == 0) return absl::OkStatus();
    if (should_stop()) return absl::CancelledError("stopping before dead letters were delivered");
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(retry_backoff_));
  }
}

}  // namespace profiled::pipeline
