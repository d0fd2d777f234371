// A minimal blocking HTTP/1.1 GET client for tools and tests (profilectl get,
// scraping /metrics). Plain HTTP on a host:port; no TLS, no redirects.
//
//   ASSIGN_OR_RETURN(HttpResponse r, HttpGet("127.0.0.1:9464", "/metrics"));
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "profiled/obs/http_server.h"

namespace profiled::obs {

// `path` must be URL-encoded already. Fails with Unavailable when the
// server cannot be reached or answers with no valid HTTP response.
[[nodiscard]] absl::StatusOr<HttpResponse> HttpGet(const std::string& host_port,
                                                   const std::string& path,
                                                   const std::string& authorization = "",
                                                   int timeout_ms = 10000);

// Percent-encodes everything but unreserved characters (RFC 3986).
std::string UrlEncode(const std::string& text);

}  // namespace profiled::obs
