// A blocking HTTP GET for tools and tests (profilectl get, scraping
// /metrics), over libcurl: HTTP or HTTPS, the environment's proxies
// (http_proxy, https_proxy, no_proxy; never for this machine's own
// addresses). Redirects are not followed: a 307's target is in `location`.
//
//   ASSIGN_OR_RETURN(HttpResponse r, HttpGet("127.0.0.1:9464", "/metrics"));
//   ASSIGN_OR_RETURN(HttpResponse r, HttpGet("https://profiled.internal:8443", "/readyz"));
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "profiled/obs/http_server.h"

namespace profiled::obs {

// `server`: host:port (plain HTTP) or a URL with its scheme. `path` must be
// URL-encoded already. Fails with Unavailable when the server cannot be
// reached or answers with no valid HTTP response.
[[nodiscard]] absl::StatusOr<HttpResponse> HttpGet(const std::string& server,
                                                   const std::string& path,
                                                   const std::string& authorization = "",
                                                   int timeout_ms = 10000);

// Percent-encodes everything but unreserved characters (RFC 3986).
std::string UrlEncode(const std::string& text);

}  // namespace profiled::obs
