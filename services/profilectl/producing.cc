#include "producing.h"

#include <atomic>

#include "profiled/kafka/producer.h"

namespace profilectl {

SendResult SendAll(const std::string& bootstrap, const std::vector<Outgoing>& records) {
  SendResult result;
  std::atomic<uint64_t> delivered{0}, failed{0};
  auto producer = profiled::kafka::Producer::Create(
      {{"bootstrap.servers", bootstrap}},
      [&](uint64_t, const absl::Status& s) { (s.ok() ? delivered : failed).fetch_add(1); });
  if (!producer.ok()) {
    result.error = producer.status().ToString();
    return result;
  }
  for (const Outgoing& r : records) {
    for (;;) {
      absl::Status s = (*producer)->Produce(r.topic, r.key, r.value, r.headers, 0);
      if (s.ok()) break;
      if (!absl::IsResourceExhausted(s)) {
        result.error = s.ToString();
        break;
      }
      (*producer)->Poll(10);
    }
    if (!result.error.empty()) break;
    (*producer)->Poll(0);
  }
  if (absl::Status s = (*producer)->Flush(120000); !s.ok() && result.error.empty()) {
    result.error = s.ToString();
  }
  result.delivered = delivered.load();
  result.failed = failed.load();
  return result;
}

}  // namespace profilectl
