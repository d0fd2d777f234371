// Shared plumbing of profilectl's subcommands: argument parsing, usage,
// reading input files, stopping on a signal.
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace profilectl {

// Set by SIGINT/SIGTERM; long-running subcommands poll it.
extern std::atomic<bool> g_stop;

// --name value flags and positional arguments of one subcommand.
struct Args {
  std::map<std::string, std::string> flags;
  std::vector<std::string> positional;
  bool Has(const std::string& f) const { return flags.count(f) > 0; }
  std::string Get(const std::string& f, const std::string& fallback = "") const {
    auto it = flags.find(f);
    return it == flags.end() ? fallback : it->second;
  }
};

// Flags in `switches` take no value.
Args Parse(int argc, char** argv, int from, const std::vector<std::string>& switches);

// Prints `problem` and the usage text to stderr; returns exit code 2.
int Usage(const std::string& problem);
extern const char* const kUsage;

// The contents of `path` ("-" reads stdin); false when unreadable.
bool ReadAll(const std::string& path, std::string& out);

// A JSON string literal for arbitrary bytes.
std::string JsonString(std::string_view raw);

// Prints `message` (a Status or text) to stderr with the tool's prefix; returns 1.
int Fail(const std::string& message);

// Subcommands.
int Produce(const Args& args);
int Tail(const Args& args);
int Redrive(const Args& args);
int Erase(const Args& args);
int Members(const Args& args);

}  // namespace profilectl
