// profilectl: the command line for people driving profiled.
//
//   profilectl produce --bootstrap B --topic T [--format F] [--map M] FILE
//   profilectl tail --bootstrap B --topic T [--from-beginning] [--exit-at-end]
//   profilectl redrive --bootstrap B --topic DEAD_LETTERS [--reason CODE] [--to T]
//   profilectl erase --bootstrap B --topic CONTROL KIND:VALUE
//   profilectl members --bootstrap B [--group G]          who holds a group (leases)
//   profilectl convert rees46 FILE                      REES46 CSV -> JSON lines
//   profilectl get --http HOST:PORT KIND VALUE          one profile via HTTP
//   profilectl merges --http HOST:PORT PROFILE_ID       its merge audit
//   profilectl http --http HOST:PORT PATH               any endpoint (/readyz, /metrics)
//
// Exit codes: 0 success, 1 failure (or profile not found), 2 usage error.
// `profilectl help` prints the full usage (cli.cc).
#include <google/protobuf/util/json_util.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli.h"
#include "profiled/ingest/rees46.h"
#include "profiled/obs/http_client.h"

namespace profilectl {
namespace {

namespace v1 = profiled::v1;
using google::protobuf::util::JsonPrintOptions;

void OnSignal(int) { g_stop = true; }

int Convert(const Args& args) {
  if (args.positional.size() != 2 || args.positional[0] != "rees46") {
    return Usage("convert supports: convert rees46 FILE");
  }
  std::string csv;
  if (!ReadAll(args.positional[1], csv)) return Usage("cannot read " + args.positional[1]);
  profiled::ingest::Rees46Reader reader(csv);
  v1::InteractionEvent event;
  JsonPrintOptions json;
  std::string line;
  while (reader.Next(event)) {
    line.clear();
    (void)google::protobuf::util::MessageToJsonString(event, &line, json);
    std::printf("%s\n", line.c_str());
  }
  for (const std::string& e : reader.errors())
    std::fprintf(stderr, "profilectl: skipped %s\n", e.c_str());
  return reader.errors().empty() ? 0 : 1;
}

// GET `path` on --http; prints the body; exit 0 on 200. A redirect (a
// partitioned instance naming the owner) is followed, five times at most.
int HttpCommand(const Args& args, const std::string& path) {
  const std::string token = args.Get("--token");
  std::string server = args.Get("--http"), at = path;
  absl::StatusOr<profiled::obs::HttpResponse> response;
  for (int hops = 0;; ++hops) {
    response = profiled::obs::HttpGet(server, at, token.empty() ? "" : "Bearer " + token);
    if (!response.ok() || response->status != 307 || hops == 5) break;
    if (absl::StartsWith(server, "https://") && !absl::StartsWith(response->location, "https://")) {
      std::fprintf(stderr, "profilectl: not following a redirect from https to %s\n",
                   response->location.c_str());
      return 1;
    }
    const size_t scheme = response->location.find("://");
    const size_t slash = response->location.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    if (scheme == std::string::npos || slash == std::string::npos) break;
    server = response->location.substr(0, slash);
    at = response->location.substr(slash);
  }
  if (!response.ok()) {
    std::fprintf(stderr, "profilectl: %s\n", response.status().ToString().c_str());
    return 1;
  }
  if (response->status != 200) std::fprintf(stderr, "profilectl: HTTP %d\n", response->status);
  std::fwrite(response->body.data(), 1, response->body.size(),
              response->status == 200 ? stdout : stderr);
  return response->status == 200 ? 0 : 1;
}

int Get(const Args& args) {
  if (!args.Has("--http") || args.positional.size() != 2) {
    return Usage("get needs --http HOST:PORT, KIND and VALUE");
  }
  return HttpCommand(
      args, absl::StrCat("/v1/profiles/", profiled::obs::UrlEncode(args.positional[0]), "/",
                         profiled::obs::UrlEncode(args.positional[1])));
}

int Http(const Args& args) {
  if (!args.Has("--http") || args.positional.size() != 1 || args.positional[0].empty() ||
      args.positional[0][0] != '/') {
    return Usage("http needs --http HOST:PORT and a PATH such as /readyz");
  }
  return HttpCommand(args, args.positional[0]);
}

int Merges(const Args& args) {
  if (!args.Has("--http") || args.positional.size() != 1) {
    return Usage("merges needs --http HOST:PORT and PROFILE_ID");
  }
  return HttpCommand(args, "/v1/merges/" + profiled::obs::UrlEncode(args.positional[0]));
}

}  // namespace
}  // namespace profilectl

int main(int argc, char** argv) {
  using namespace profilectl;
  if (argc < 2) return Usage("missing command");
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  const std::string command = argv[1];
  if (command == "produce") return Produce(Parse(argc, argv, 2, {}));
  if (command == "tail") return Tail(Parse(argc, argv, 2, {"--from-beginning", "--exit-at-end"}));
  if (command == "redrive") return Redrive(Parse(argc, argv, 2, {"--dry-run"}));
  if (command == "erase") return Erase(Parse(argc, argv, 2, {}));
  if (command == "members") return Members(Parse(argc, argv, 2, {}));
  if (command == "convert") return Convert(Parse(argc, argv, 2, {}));
  if (command == "get") return Get(Parse(argc, argv, 2, {}));
  if (command == "merges") return Merges(Parse(argc, argv, 2, {}));
  if (command == "http") return Http(Parse(argc, argv, 2, {}));
  if (command == "--help" || command == "-h" || command == "help") {
    std::printf("%s", kUsage);
    return 0;
  }
  return Usage("unknown command '" + command + "'");
}
