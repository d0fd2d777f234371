#include "replay.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "profiled/base/log.h"
#include "profiled/base/status_macros.h"
#include "profiled/core/profile.h"
#include "profiled/ingest/rees46.h"
#include "profiled/kafka/producer.h"

namespace profiled::app {

absl::StatusOr<uint64_t> ReplayRees46File(const std::string& csv_path, const std::string& topic,
                                          const kafka::Properties& properties,
                                          ReplayProgress& progress) {
  std::ifstream in(csv_path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read replay file ", csv_path));
  std::stringstream text;
  text << in.rdbuf();
  const std::string csv = text.str();

  std::atomic<uint64_t> failed{0};
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::Producer> producer,
                   kafka::Producer::Create(properties, [&](uint64_t, const absl::Status& s) {
                     if (s.ok()) {
                       progress.produced.fetch_add(1);
                     } else {
                       failed.fetch_add(1);
                     }
                   }));
  ingest::Rees46Reader reader(csv);
  v1::InteractionEvent event;
  std::string bytes;
  while (reader.Next(event)) {
    progress.total.fetch_add(1);
    event.SerializeToString(&bytes);
    const std::string key = core::IdentitiesOf(event).front().value;
    for (;;) {
      absl::Status s = producer->Produce(topic, key, bytes, {}, 0);
      if (s.ok()) break;
      if (!absl::IsResourceExhausted(s)) return s;
      producer->Poll(10);
    }
    producer->Poll(0);
  }
  for (const std::string& e : reader.errors()) LogWarn("replay: bad row, not sent: ", e);
  LogInfo("replay: ", reader.rows(), " rows", reader.header() ? " after the header" : " (no header)",
          ", ", reader.rows() - reader.bad_rows(), " sent, ", reader.bad_rows(), " bad");
  RETURN_IF_ERROR(producer->Flush(60000));
  if (failed > 0) return absl::UnavailableError(absl::StrCat(failed.load(), " replay events failed"));
  progress.done = true;
  return progress.produced.load();
}

}  // namespace profiled::app
