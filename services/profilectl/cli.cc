#include "cli.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

namespace profilectl {

std::atomic<bool> g_stop{false};

const char* const kUsage = R"(usage:
  profilectl produce --bootstrap HOST:PORT --topic TOPIC [--format FORMAT] [--map FILE] FILE|-
      Pushes FILE onto TOPIC, keyed by the routing identity's profile id. FORMAT
      is the topic's input.topics[].format:
        protobuf-json (default)  each line an InteractionEvent in Protobuf's JSON
                                 mapping, produced as binary Protobuf (format protobuf)
        segment-json, json       produced as they are: the whole FILE when it is one
                                 JSON document, else each non-empty line (valid or
                                 not: profiled dead-letters what it rejects); json
                                 keys need --map FILE, a field map as in the config
        rees46-csv               each REES46 CSV row produced as it is (header skipped)
        csv                      REES46 CSV rows, produced as Protobuf events
  profilectl tail --bootstrap HOST:PORT --topic TOPIC [--from-beginning] [--exit-at-end]
      Prints each ProfileUpdate as one JSON object per line; tombstones as
      {"profileId": KEY, "deleted": true}.
  profilectl redrive --bootstrap HOST:PORT --topic DEAD_LETTER_TOPIC [--reason CODE]
                     [--source-topic TOPIC] [--to TOPIC] [--dry-run]
      Re-sends dead letters (from the beginning, up to the end) to the topic they
      came from (or --to), key and bytes as stored; prints one line per letter.
  profilectl erase --bootstrap HOST:PORT --topic CONTROL_TOPIC [--request-id ID] KIND:VALUE
      Asks profiled to erase the person an identity resolves to (e.g. email:jane@example.com);
      the receipt appears on output.receipts_topic under the request id.
  profilectl members --bootstrap HOST:PORT [--group GROUP] [--topic MEMBERS_TOPIC]
      Lists the instances of a group (default profiled) on the members topic
      (default profiled.members): which holds it, which were refused, expired or
      released, their hosts and HTTP addresses.
  profilectl convert rees46 FILE
      Prints each REES46 CSV row as an InteractionEvent JSON line.
  profilectl get --http HOST:PORT|URL [--token TOKEN] KIND VALUE
      Prints one profile (GET /v1/profiles/KIND/VALUE); KIND profile_id takes an id.
  profilectl merges --http HOST:PORT|URL [--token TOKEN] PROFILE_ID
      Prints the merge audit of a profile (merges and refusals) as JSON.
  profilectl http --http HOST:PORT|URL [--token TOKEN] PATH
      GET any endpoint (/readyz, /healthz, /metrics); prints the body, exit 0 on 200.
      --http: host:port for plain HTTP, or http(s)://host:port; the proxy
      variables http_proxy, https_proxy and no_proxy apply.
)";

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

int Usage(const std::string& problem) {
  std::fprintf(stderr, "profilectl: %s\n%s", problem.c_str(), kUsage);
  return 2;
}

bool ReadAll(const std::string& path, std::string& out) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    text << in.rdbuf();
  }
  out = text.str();
  return true;
}

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

int Fail(const std::string& message) {
  std::fprintf(stderr, "profilectl: %s\n", message.c_str());
  return 1;
}

}  // namespace profilectl
