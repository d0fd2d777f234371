#include "bench_support.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"

#include "profiled/obs/http_client.h"

namespace profiled::bench {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Die(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, message.c_str());
  std::exit(1);
}

Child::Child(const std::vector<std::string>& argv, const std::string& out,
             const std::string& err) {
  pid_ = fork();
  if (pid_ < 0) Die("fork failed");
  if (pid_ == 0) {
    if (!freopen(out.c_str(), "w", stdout) || !freopen(err.c_str(), "w", stderr)) _exit(127);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

Child::~Child() {
  if (pid_ > 0 && !exited_) {
    kill(pid_, SIGKILL);
    Wait();
  }
}

bool Child::Alive() {
  if (exited_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    exited_ = true;
    status_ = status;
  }
  return !exited_;
}

int Child::Wait() {
  if (!exited_) {
    waitpid(pid_, &status_, 0);
    exited_ = true;
  }
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

void Child::Signal(int sig) { kill(pid_, sig); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string AwaitLine(const std::string& path, const std::string& needle, Child& child,
                      double timeout_s) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string text = ReadFile(path);
    if (size_t at = text.find(needle); at != std::string::npos) {
      const size_t end = text.find('\n', at);
      if (end != std::string::npos) return text.substr(at + needle.size(), end - at - needle.size());
    }
    if (!child.Alive()) Die(absl::StrCat("child exited before printing '", needle, "': ", path));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Die(absl::StrCat("timed out waiting for '", needle, "' in ", path));
}

namespace {

// Every sample of metric `name` (any labels) at host_port/metrics, folded
// with `fold`; -1 when the endpoint or the metric is not there.
double ScrapeFold(const std::string& host_port, std::string_view name,
                  double (*fold)(double, double)) {
  auto r = obs::HttpGet(host_port, "/metrics", "", 2000);
  if (!r.ok() || r->status != 200) return -1;
  const std::string& body = r->body;
  double folded = 0;
  bool found = false;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    std::string_view line(body.data() + at, end - at);
    at = end + 1;
    if (line.size() <= name.size() || line.substr(0, name.size()) != name) continue;
    const char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    const size_t space = line.rfind(' ');
    const double value = std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
    folded = found ? fold(folded, value) : value;
    found = true;
  }
  return found ? folded : -1;
}

}  // namespace

double ScrapeSum(const std::string& host_port, std::string_view name) {
  return ScrapeFold(host_port, name, [](double a, double b) { return a + b; });
}

double ScrapeMax(const std::string& host_port, std::string_view name) {
  return ScrapeFold(host_port, name, [](double a, double b) { return std::max(a, b); });
}

Flags::Flags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || i + 1 >= argc) {
      error_ = "expected --flag value pairs, got '" + arg + "'";
      return;
    }
    values_[arg] = argv[++i];
  }
}

std::string Flags::Get(const std::string& flag, const std::string& fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() ? fallback : it->second;
}

double Flags::Number(const std::string& flag, double fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() ? fallback : std::strtod(it->second.c_str(), nullptr);
}

}  // namespace profiled::bench
