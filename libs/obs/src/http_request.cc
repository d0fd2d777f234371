#include "http_request.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace profiled::obs::internal {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a path; nullopt on a malformed escape or a NUL byte.
std::optional<std::string> DecodePath(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) return std::nullopt;
      const int hi = HexValue(raw[i + 1]), lo = HexValue(raw[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  return out;
}

}  // namespace

size_t HeadEnd(std::string_view buffer) {
  // Tolerate bare LF line ends as RFC 9112 allows recipients to.
  const size_t crlf = buffer.find("\r\n\r\n");
  const size_t lf = buffer.find("\n\n");
  if (crlf == std::string_view::npos && lf == std::string_view::npos) return std::string_view::npos;
  if (lf == std::string_view::npos || (crlf != std::string_view::npos && crlf < lf))
    return crlf + 4;
  return lf + 2;
}

std::optional<HeadError> ParseHead(std::string_view head, HttpRequest& out) {
  std::vector<absl::string_view> lines =
      absl::StrSplit(absl::string_view(head.data(), head.size()), '\n', absl::SkipEmpty());
  if (lines.empty()) return HeadError{400, "empty request"};
  auto trim_cr = [](absl::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };
  std::vector<absl::string_view> parts = absl::StrSplit(trim_cr(lines[0]), ' ');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty()) {
    return HeadError{400, "malformed request line"};
  }
  if (!absl::StartsWith(parts[2], "HTTP/1.")) return HeadError{505, "only HTTP/1.x is served"};
  for (char c : parts[0]) {
    if (!absl::ascii_isupper(c)) return HeadError{400, "malformed method"};
  }
  absl::string_view target = parts[1];
  if (target.front() != '/') return HeadError{400, "the request target must be a path"};
  const size_t question = target.find('?');
  std::optional<std::string> path =
      DecodePath(std::string_view(target.data(), std::min(question, target.size())));
  if (!path) return HeadError{400, "malformed percent-escape in the path"};
  out.method = std::string(parts[0]);
  out.path = std::move(*path);
  out.query = question == absl::string_view::npos ? "" : std::string(target.substr(question + 1));
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view line = trim_cr(lines[i]);
    if (line.empty()) continue;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || colon == 0) return HeadError{400, "malformed header"};
    const absl::string_view name = line.substr(0, colon);
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (absl::EqualsIgnoreCase(name, "authorization")) {
      out.authorization = std::string(value);
    } else if (absl::EqualsIgnoreCase(name, "content-length")) {
      uint64_t length = 0;
      if (!absl::SimpleAtoi(value, &length)) return HeadError{400, "malformed Content-Length"};
      if (length > 0) return HeadError{413, "request bodies are not accepted"};
    } else if (absl::EqualsIgnoreCase(name, "transfer-encoding")) {
      return HeadError{501, "request bodies are not accepted"};
    }
  }
  return std::nullopt;
}

const char* StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 307:
      return "Temporary Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

std::string SerializeResponse(const HttpResponse& response) {
  // A Location with a line break would split the response: not sent.
  const bool location =
      !response.location.empty() && response.location.find_first_of("\r\n") == std::string::npos;
  std::string out = absl::StrCat(
      "HTTP/1.1 ", response.status, " ", StatusText(response.status),
      location ? "\r\nLocation: " : "", location ? response.location : "",
      "\r\nContent-Type: ", response.content_type, "\r\nContent-Length: ", response.body.size(),
      "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
  out += response.body;
  return out;
}

}  // namespace profiled::obs::internal
