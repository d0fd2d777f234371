// profilectl produce: push real files onto topics in any input format.
#include <cstdio>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli.h"
#include "profiled/config/app_config.h"
#include "profiled/core/profile_id.h"
#include "profiled/ingest/event_decoder.h"
#include "profiled/ingest/rees46.h"
#include "producing.h"
#include "profiled/v1/control.pb.h"
#include "absl/time/clock.h"
#include <unistd.h>
#include <ctime>

namespace profilectl {
namespace {

namespace v1 = profiled::v1;

// Key of a record: the profile id of its first event's routing identity (a
// hash, so no personal value lands in a Kafka key), or "" when undecodable.
std::string KeyOf(const std::vector<v1::InteractionEvent>& events) {
  if (events.empty()) return "";
  return profiled::core::ProfileIdFor(events.front()).value_or("");
}

// A file of a registered format: its Kafka values as they are, each keyed
// by the profile id of its first event (what the topic's decoder reads).
std::vector<Outgoing> FromFormat(const profiled::ingest::EventFormat& format,
                                 const profiled::ingest::DecoderOptions& options,
                                 const std::string& topic, const std::string& text, uint64_t& bad) {
  profiled::ingest::FileRecords file = format.split_file(text);
  for (const std::string& e : file.errors) std::fprintf(stderr, "profilectl: %s\n", e.c_str());
  bad += file.errors.size();
  auto decoder = format.create(options);
  std::vector<Outgoing> out;
  std::vector<v1::InteractionEvent> events;
  for (std::string& value : file.values) {
    events.clear();
    if (decoder.ok()) (void)(*decoder)->Decode(value, events);
    out.push_back({topic, KeyOf(events), std::move(value), {}});
  }
  return out;
}

std::vector<Outgoing> FromRees46Csv(const std::string& topic, const std::string& text,
                                    uint64_t& bad) {
  std::vector<Outgoing> out;
  profiled::ingest::Rees46Reader reader(text);
  v1::InteractionEvent event;
  while (reader.Next(event)) out.push_back({topic, KeyOf({event}), event.SerializeAsString(), {}});
  for (const std::string& e : reader.errors()) {
    std::fprintf(stderr, "profilectl: bad row, not sent: %s\n", e.c_str());
  }
  std::fprintf(stderr, "profilectl: %zu rows%s\n", reader.rows(),
               reader.header() ? " after the header" : " (no header)");
  bad += reader.bad_rows();
  return out;
}

}  // namespace

int Produce(const Args& args) {
  if (!args.Has("--bootstrap") || !args.Has("--topic") || args.positional.size() != 1) {
    return Usage("produce needs --bootstrap, --topic and one FILE");
  }
  const std::string format = args.Get("--format", "protobuf-json");
  const std::string topic = args.Get("--topic");
  std::string text;
  if (!ReadAll(args.positional[0], text)) return Usage("cannot read " + args.positional[0]);

  uint64_t bad = 0;
  std::vector<Outgoing> records;
  // Any registered format by its name; "protobuf-json" is the protobuf
  // format's file form, "csv" REES46 rows turned into Protobuf events.
  const std::string name = format == "protobuf-json" ? "protobuf" : format;
  if (format == "csv") {
    records = FromRees46Csv(topic, text, bad);
  } else if (const profiled::ingest::EventFormat* f = profiled::ingest::FindEventFormat(name)) {
    profiled::ingest::DecoderOptions options;
    if (f->takes_map && args.Has("--map")) {
      std::string map_text;
      if (!ReadAll(args.Get("--map"), map_text)) return Usage("cannot read " + args.Get("--map"));
      auto map = profiled::config::ParseFieldMap(map_text);
      if (!map.ok()) return Fail(absl::StrCat(args.Get("--map"), ": ", map.status().message()));
      options.map = *std::move(map);
      if (auto check = f->create(options); !check.ok()) return Fail(std::string(check.status().message()));
    }
    records = FromFormat(*f, options, topic, text, bad);
  } else {
    return Usage("unknown --format '" + format + "' (protobuf-json, csv, " +
                 profiled::ingest::EventFormatNames() + ")");
  }

  const SendResult sent = SendAll(args.Get("--bootstrap"), records);
  std::fprintf(stderr, "profilectl: produced %llu records (%llu delivered, %llu failed, %llu bad input)\n",
               static_cast<unsigned long long>(records.size()),
               static_cast<unsigned long long>(sent.delivered),
               static_cast<unsigned long long>(sent.failed), static_cast<unsigned long long>(bad));
  if (!sent.error.empty()) return Fail(sent.error);
  return sent.failed == 0 && bad == 0 ? 0 : 1;
}

int Erase(const Args& args) {
  const std::string target = args.positional.size() == 1 ? args.positional[0] : "";
  const size_t colon = target.find(':');
  if (!args.Has("--bootstrap") || !args.Has("--topic") || colon == std::string::npos ||
      colon == 0 || colon + 1 == target.size()) {
    return Usage("erase needs --bootstrap, --topic (the control topic) and KIND:VALUE");
  }
  v1::ControlRequest request;
  v1::EraseRequest& erase = *request.mutable_erase();
  erase.set_request_id(args.Get("--request-id", absl::StrCat("erase-", getpid(), "-", time(nullptr))));
  erase.set_kind(target.substr(0, colon));
  erase.set_value(target.substr(colon + 1));
  erase.set_requested_ms(absl::ToUnixMillis(absl::Now()));
  const SendResult sent = SendAll(args.Get("--bootstrap"), {{args.Get("--topic"), erase.request_id(),
                                                             request.SerializeAsString(), {}}});
  if (!sent.error.empty() || sent.delivered != 1) return Fail("erase request not delivered: " + sent.error);
  std::printf("%s\n", erase.request_id().c_str());
  return 0;
}

}  // namespace profilectl
