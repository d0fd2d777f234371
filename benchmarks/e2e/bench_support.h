// Small helpers shared by the end-to-end benchmark programs.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace profiled::bench {

// Sum of every series of metric `name` on http://host_port/metrics (all
// label sets); -1 when the scrape fails or the metric is absent.
double ScrapeSum(const std::string& host_port, std::string_view name);

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
