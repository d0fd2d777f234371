// Parsing of an HTTP/1.x request head (request line and headers). Pure;
// private to the obs module.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "profiled/obs/http_server.h"

namespace profiled::obs::internal {

// Largest request head accepted (431 beyond it).
inline constexpr size_t kMaxHeadBytes = 16 * 1024;

// Where the head ends (just past the blank line), or npos while incomplete.
size_t HeadEnd(std::string_view buffer);

struct HeadError {
  int status;  // 400, 413, 501, 505
  std::string reason;
};

// Parses a complete head (as HeadEnd delimits it) into `out`.
std::optional<HeadError> ParseHead(std::string_view head, HttpRequest& out);

// "Bad Request" etc. for the status codes the server answers with.
const char* StatusText(int status);

// The whole response: status line, headers, body; always Connection: close.
std::string SerializeResponse(const HttpResponse& response);

}  // namespace profiled::obs::internal
