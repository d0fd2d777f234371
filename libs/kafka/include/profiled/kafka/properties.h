// librdkafka configuration passed through from profiled's config: any
// property librdkafka knows (bootstrap.servers, security.protocol,
// sasl.*, ssl.* ...) as name/value pairs, applied in order (later wins).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace profiled::kafka {

using Properties = std::vector<std::pair<std::string, std::string>>;

struct Header {
  std::string name;
  std::string value;
};

}  // namespace profiled::kafka
