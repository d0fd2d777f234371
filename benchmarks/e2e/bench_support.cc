#include "bench_support.h"

#include <cstdlib>

#include "profiled/obs/http_client.h"

namespace profiled::bench {

double ScrapeSum(const std::string& host_port, std::string_view name) {
  auto r = obs::HttpGet(host_port, "/metrics", "", 2000);
  if (!r.ok() || r->status != 200) return -1;
  const std::string& body = r->body;
  double sum = 0;
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
    sum += std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
    found = true;
  }
  return found ? sum : -1;
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
