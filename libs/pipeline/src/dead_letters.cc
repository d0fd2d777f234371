#include "profiled/pipeline/dead_letters.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/kafka/errors.h"
#include "profiled/pipeline/output_limits.h"

namespace profiled::pipeline {
namespace {

// Cuts of a letter's value, from whole to none.
constexpr int kWhole = 0, kHead = 1, kNoValue = 2;

}  // namespace

absl::StatusOr<std::unique_ptr<DeadLetterSink>> DeadLetterSink::Create(
    const DeadLetterOptions& options, const kafka::Properties& producer_properties,
    Health& health) {
  if (options.topic.empty()) return absl::InvalidArgumentError("dead-letter topic is required");
  std::unique_ptr<DeadLetterSink> sink(new DeadLetterSink(options, health));
  DeadLetterSink* raw = sink.get();
  kafka::Properties props = OutputProducerDefaults(options.max_message_bytes);
  props.insert(props.end(), producer_properties.begin(), producer_properties.end());
  ASSIGN_OR_RETURN(sink->producer_,
                   kafka::Producer::Create(props, [raw](uint64_t index, const absl::Status& s) {
                     raw->outcome_[index] = s.ok() ? 1 : -1;
                     if (!s.ok()) raw->last_[index] = s;
                   }));
  return sink;
}

void DeadLetterSink::Produce(const DeadLetter& l, int cut, const std::string& now,
                             uint64_t index) {
  std::vector<kafka::Header> headers = {
      {kReasonHeader, l.reason},
      {kDetailHeader, l.detail},
      {kSourceTopicHeader, l.source_topic},
      {kSourcePartitionHeader, absl::StrCat(l.source_partition)},
      {kSourceOffsetHeader, absl::StrCat(l.source_offset)},
      {kTimeHeader, now}};
  if (l.redacted) headers.push_back({kRedactedHeader, "drop-list"});
  std::string_view value = l.value;
  std::string_view key = l.key;
  if (cut != kWhole) {
    headers.push_back({kTruncatedHeader, cut == kHead ? "value" : "all"});
    headers.push_back({kOriginalSizeHeader, absl::StrCat(l.value.size())});
    size_t framing = kRecordOverheadBytes;
    for (const kafka::Header& h : headers) framing += h.name.size() + h.value.size() + 8;
    const size_t room = options_.max_message_bytes > framing ? options_.max_message_bytes - framing : 0;
    key = key.substr(0, room / 2);  // a key is never the bulk; keep the value's share
    value = cut == kHead ? value.substr(0, room - key.size()) : std::string_view();
    if (cut == kNoValue) headers[1].value.resize(std::min<size_t>(headers[1].value.size(), 512));
  }
  absl::Status s = producer_->Produce(options_.topic, key, value, headers, index);
  if (s.ok()) {
    outcome_[index] = 0;
  } else {
    last_[index] = s;  // stays -1: handled with this round's failures
  }
}

absl::Status DeadLetterSink::PublishAll(const std::vector<DeadLetter>& letters,
                                        const std::function<bool()>& should_stop) {
  if (letters.empty()) return absl::OkStatus();
  const std::string now =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  const absl::Time started = absl::Now();
  const size_t n = letters.size();
  outcome_.assign(n, -1);
  last_.assign(n, absl::OkStatus());
  cut_.assign(n, kWhole);
  for (size_t i = 0; i < n; ++i) {
    const DeadLetter& l = letters[i];
    size_t bytes = kRecordOverheadBytes + l.key.size() + l.value.size() + l.detail.size() + 256;
    if (bytes > options_.max_message_bytes) cut_[i] = kHead;
  }
  auto report_stall = [&] {
    const absl::Duration waited = absl::Now() - started;
    if (waited < health_.options().stall_timeout) return;
    const size_t open = n - static_cast<size_t>(std::count(outcome_.begin(), outcome_.end(), 1));
    if (open == 0) return;
    std::string last;
    for (const absl::Status& s : last_) {
      if (!s.ok()) last = absl::StrCat("; last error: ", s.message());
    }
    health_.Set(Fault::kDeadLettersStalled,
                absl::StrCat(open, " of ", n, " dead letters to ", options_.topic,
                             " unacknowledged for ",
                             absl::FormatDuration(absl::Trunc(waited, absl::Seconds(1))), last));
  };
  for (;;) {
    for (size_t i = 0; i < n; ++i) {
      if (outcome_[i] == -1) Produce(letters[i], cut_[i], now, i);
    }
    while (std::count(outcome_.begin(), outcome_.end(), 0) > 0) {
      if (should_stop()) return absl::CancelledError("stopping before dead letters were delivered");
      producer_->Poll(50);
      report_stall();
    }
    std::string refused;
    bool cut_more = false;
    for (size_t i = 0; i < n; ++i) {
      if (outcome_[i] != -1) continue;
      const absl::Status& s = last_[i];
      if (absl::IsOutOfRange(s) && cut_[i] < kNoValue) {
        ++cut_[i];  // too large even cut to fit: send less, at once
        cut_more = true;
      } else if (!kafka::IsRetriable(s) && refused.empty()) {
        refused = absl::StrCat(options_.topic, " refused a dead letter: ", s.message());
      }
    }
    if (std::count(outcome_.begin(), outcome_.end(), -1) == 0) {
      health_.Clear(Fault::kDeadLettersStalled);
      health_.Clear(Fault::kDeadLettersRefused);
      return absl::OkStatus();
    }
    if (!refused.empty()) health_.Set(Fault::kDeadLettersRefused, refused);
    report_stall();
    if (cut_more) continue;
    if (should_stop()) return absl::CancelledError("stopping before dead letters were delivered");
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(options_.retry_backoff));
  }
}

}  // namespace profiled::pipeline
