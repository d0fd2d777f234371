// profilectl: the command line for people driving profiled.
//
//   profilectl produce --bootstrap B --topic T FILE     JSON lines -> Protobuf events
//   profilectl tail --bootstrap B --topic T [--from-beginning] [--exit-at-end]
//   profilectl convert rees46 FILE                      REES46 CSV -> JSON lines
//   profilectl get --http HOST:PORT KIND VALUE          one profile via HTTP
//
// Exit codes: 0 success, 1 failure (or profile not found), 2 usage error.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "profiled/core/profile.h"
#include "profiled/ingest/rees46.h"
#include "profiled/kafka/consumer.h"
#include "profiled/kafka/producer.h"
#include "profiled/obs/http_client.h"
#include "profiled/v1/profile_update.pb.h"

namespace {

namespace v1 = profiled::v1;
using google::protobuf::util::JsonPrintOptions;

constexpr const char* kUsage = R"(usage:
  profilectl produce --bootstrap HOST:PORT --topic TOPIC FILE|-
      Each line of FILE is an InteractionEvent in Protobuf's JSON mapping; it is
      produced as a binary Protobuf message keyed by its routing identity.
  profilectl tail --bootstrap HOST:PORT --topic TOPIC [--from-beginning] [--exit-at-end]
      Prints each ProfileUpdate as one JSON object per line; tombstones as
      {"profileId": KEY, "deleted": true}.
  profilectl convert rees46 FILE
      Prints each REES46 CSV row as an InteractionEvent JSON line.
  profilectl get --http HOST:PORT [--token TOKEN] KIND VALUE
      Prints one profile (GET /v1/profiles/KIND/VALUE); KIND profile_id takes an id.
  profilectl merges --http HOST:PORT [--token TOKEN] PROFILE_ID
      Prints the merge audit of a profile (merges and refusals) as JSON.
)";

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

// A JSON string literal for arbitrary bytes (keys are not ours to trust).
std::string JsonString(std::string_view raw) {
  std::string out = "\"";
  for (unsigned char c : raw) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", c);
      out += esc;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

int Usage(const std::string& problem) {
  std::fprintf(stderr, "profilectl: %s\n%s", problem.c_str(), kUsage);
  return 2;
}

// --name value flags and positional arguments of one subcommand.
struct Args {
  std::map<std::string, std::string> flags;
  std::vector<std::string> positional;
  bool Has(const std::string& f) const { return flags.count(f) > 0; }
  std::string Get(const std::string& f) const {
    auto it = flags.find(f);
    return it == flags.end() ? "" : it->second;
  }
};

Args Parse(int argc, char** argv, int from, const std::vector<std::string>& switches) {
  Args a;
  for (int i = from; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0 && s.size() > 2) {
      if (std::find(switches.begin(), switches.end(), s) != switches.end() || i + 1 >= argc) {
        a.flags[s] = "";
      } else {
        a.flags[s] = argv[++i];
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

std::string ReadAll(const std::string& path, bool* ok) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) {
      *ok = false;
      return "";
    }
    text << in.rdbuf();
  }
  *ok = true;
  return text.str();
}

int Produce(const Args& args) {
  if (!args.Has("--bootstrap") || !args.Has("--topic") || args.positional.size() != 1) {
    return Usage("produce needs --bootstrap, --topic and one FILE");
  }
  bool ok = false;
  const std::string text = ReadAll(args.positional[0], &ok);
  if (!ok) return Usage("cannot read " + args.positional[0]);
  std::atomic<uint64_t> delivered{0}, failed{0};
  auto producer = profiled::kafka::Producer::Create(
      {{"bootstrap.servers", args.Get("--bootstrap")}},
      [&](uint64_t, const absl::Status& s) { (s.ok() ? delivered : failed).fetch_add(1); });
  if (!producer.ok()) {
    std::fprintf(stderr, "profilectl: %s\n", producer.status().ToString().c_str());
    return 1;
  }
  std::istringstream lines(text);
  std::string line, bytes;
  uint64_t line_no = 0, produced = 0, bad = 0;
  v1::InteractionEvent event;
  while (std::getline(lines, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    event.Clear();
    auto status = google::protobuf::util::JsonStringToMessage(line, &event);
    if (!status.ok()) {
      std::fprintf(stderr, "profilectl: line %llu: %s\n", static_cast<unsigned long long>(line_no),
                   status.ToString().c_str());
      ++bad;
      continue;
    }
    event.SerializeToString(&bytes);
    std::vector<profiled::core::Identity> ids = profiled::core::IdentitiesOf(event);
    const std::string key = ids.empty() ? "" : ids.front().value;
    for (;;) {
      absl::Status s = (*producer)->Produce(args.Get("--topic"), key, bytes, {}, 0);
      if (s.ok()) break;
      if (!absl::IsResourceExhausted(s)) {
        std::fprintf(stderr, "profilectl: %s\n", s.ToString().c_str());
        return 1;
      }
      (*producer)->Poll(10);
    }
    ++produced;
    (*producer)->Poll(0);
  }
  if (auto s = (*producer)->Flush(120000); !s.ok()) {
    std::fprintf(stderr, "profilectl: %s\n", s.ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "profilectl: produced %llu events (%llu delivered, %llu failed, %llu bad lines)\n",
               static_cast<unsigned long long>(produced),
               static_cast<unsigned long long>(delivered.load()),
               static_cast<unsigned long long>(failed.load()), static_cast<unsigned long long>(bad));
  return failed == 0 && bad == 0 ? 0 : 1;
}

int Tail(const Args& args) {
  if (!args.Has("--bootstrap") || !args.Has("--topic")) {
    return Usage("tail needs --bootstrap and --topic");
  }
  profiled::kafka::ConsumerOptions options;
  options.properties = {{"bootstrap.servers", args.Get("--bootstrap")}};
  options.group_id = absl::StrCat("profilectl-tail-", getpid(), "-", time(nullptr));
  options.topics = {args.Get("--topic")};
  options.start_from_earliest = args.Has("--from-beginning");
  auto consumer = profiled::kafka::Consumer::Create(
      options, [](const profiled::core::PartitionKey&) { return std::optional<int64_t>(); });
  if (!consumer.ok()) {
    std::fprintf(stderr, "profilectl: %s\n", consumer.status().ToString().c_str());
    return 1;
  }
  const bool exit_at_end = args.Has("--exit-at-end");
  absl::flat_hash_map<profiled::core::PartitionKey, int64_t> next_offset;
  JsonPrintOptions json;
  v1::ProfileUpdate update;
  std::vector<profiled::kafka::ConsumedMessage> batch;
  while (!g_stop) {
    batch.clear();
    if (auto s = (*consumer)->Poll(1000, 200, batch); !s.ok()) {
      std::fprintf(stderr, "profilectl: %s\n", s.ToString().c_str());
      return 1;
    }
    for (const auto& m : batch) {
      next_offset[{m.topic(), m.partition()}] = m.offset() + 1;
      if (m.tombstone()) {
        std::printf("{\"profileId\":%s,\"deleted\":true}\n", JsonString(m.key()).c_str());
        continue;
      }
      std::string line;
      if (!update.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())) ||
          !google::protobuf::util::MessageToJsonString(update, &line, json).ok()) {
        std::fprintf(stderr, "profilectl: %s/%d@%lld is not a ProfileUpdate\n", m.topic().c_str(),
                     m.partition(), static_cast<long long>(m.offset()));
        continue;
      }
      std::printf("%s\n", line.c_str());
    }
    std::fflush(stdout);
    if (exit_at_end && batch.empty()) {
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
  return 0;
}

int Convert(const Args& args) {
  if (args.positional.size() != 2 || args.positional[0] != "rees46") {
    return Usage("convert supports: convert rees46 FILE");
  }
  bool ok = false;
  const std::string csv = ReadAll(args.positional[1], &ok);
  if (!ok) return Usage("cannot read " + args.positional[1]);
  profiled::ingest::Rees46Reader reader(csv);
  v1::InteractionEvent event;
  JsonPrintOptions json;
  std::string line;
  while (reader.Next(event)) {
    line.clear();
    (void)google::protobuf::util::MessageToJsonString(event, &line, json);
    std::printf("%s\n", line.c_str());
  }
  for (const std::string& e : reader.errors()) std::fprintf(stderr, "profilectl: skipped %s\n", e.c_str());
  return reader.errors().empty() ? 0 : 1;
}

// GET `path` on --http; prints the body; exit 0 on 200.
int HttpCommand(const Args& args, const std::string& path) {
  const std::string token = args.Get("--token");
  auto response = profiled::obs::HttpGet(args.Get("--http"), path,
                                         token.empty() ? "" : "Bearer " + token);
  if (!response.ok()) {
    std::fprintf(stderr, "profilectl: %s\n", response.status().ToString().c_str());
    return 1;
  }
  std::fwrite(response->body.data(), 1, response->body.size(), response->status == 200 ? stdout : stderr);
  return response->status == 200 ? 0 : 1;
}

int Get(const Args& args) {
  if (!args.Has("--http") || args.positional.size() != 2) {
    return Usage("get needs --http HOST:PORT, KIND and VALUE");
  }
  return HttpCommand(args, absl::StrCat("/v1/profiles/", profiled::obs::UrlEncode(args.positional[0]),
                                        "/", profiled::obs::UrlEncode(args.positional[1])));
}

int Merges(const Args& args) {
  if (!args.Has("--http") || args.positional.size() != 1) {
    return Usage("merges needs --http HOST:PORT and PROFILE_ID");
  }
  return HttpCommand(args, "/v1/merges/" + profiled::obs::UrlEncode(args.positional[0]));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage("missing command");
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  const std::string command = argv[1];
  if (command == "produce") return Produce(Parse(argc, argv, 2, {}));
  if (command == "tail") return Tail(Parse(argc, argv, 2, {"--from-beginning", "--exit-at-end"}));
  if (command == "convert") return Convert(Parse(argc, argv, 2, {}));
  if (command == "get") return Get(Parse(argc, argv, 2, {}));
  if (command == "merges") return Merges(Parse(argc, argv, 2, {}));
  if (command == "--help" || command == "-h" || command == "help") {
    std::printf("%s", kUsage);
    return 0;
  }
  return Usage("unknown command '" + command + "'");
}
