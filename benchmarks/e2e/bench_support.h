// Small helpers shared by the end-to-end benchmark programs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace profiled::bench {

// Wall-clock Unix milliseconds.
int64_t WallMs();

// Prints "<program>: message" to stderr and exits 1.
[[noreturn]] void Die(const std::string& message);

// A child process (argv[0] a path) with its stdout and stderr in files;
// SIGKILLed and reaped on destruction if still running.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& out, const std::string& err);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  bool Alive();
  // Exit code, or 128 + signal.
  int Wait();
  void Signal(int sig);

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

std::string ReadFile(const std::string& path);

// Waits for `needle` in the file and returns the rest of its line; dies when
// the child exits first or `timeout_s` passes.
std::string AwaitLine(const std::string& path, const std::string& needle, Child& child,
                      double timeout_s);

// Sum of every series of metric `name` on http://host_port/metrics (all
// label sets); -1 when the scrape fails or the metric is absent.
double ScrapeSum(const std::string& host_port, std::string_view name);
// The largest sample of `name` (e.g. the most behind partition's lag), or -1.
double ScrapeMax(const std::string& host_port, std::string_view name);

// "--flag value" arguments; Get returns `fallback` for an absent flag.
class Flags {
 public:
  Flags(int argc, char** argv);
  std::string Get(const std::string& flag, const std::string& fallback) const;
  double Number(const std::string& flag, double fallback) const;
  const std::string& error() const { return error_; }

 private:
  std::map<std::string, std::string> values_;
  std::string error_;
};

}  // namespace profiled::bench
