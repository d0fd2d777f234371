// HttpServer: profiled's one HTTP endpoint, shared by /metrics, /healthz,
// /readyz and the /v1 API so every endpoint lives on one configured address.
//
//   ASSIGN_OR_RETURN(auto server, HttpServer::Start({.listen = "127.0.0.1:0"}));
//   server->Handle("/healthz", [](const HttpRequest&) { return HttpResponse::Text(200, "ok\n"); },
//                  HttpLane::kProbe);
//   int port = server->port();
//
// Built so that slow or hostile clients cannot starve the probes: one event
// loop (epoll) owns every connection, so an idle or half-sent connection
// costs a file descriptor, not a thread; a request that is not complete
// within `request_timeout_ms` of its connection is answered 408 and closed
// (a response not read within it is dropped); at `max_connections` the
// oldest connection not being handled is dropped to admit the new one.
// Complete requests run in lanes: cheap probes (/healthz, /readyz) on the
// event loop itself, /metrics on a worker of its own, /v1 on the API
// workers, so a busy /v1 or a scrape never delays a probe. HTTP/1.1 (and
// 1.0) GET-style requests only: one request per connection
// (`Connection: close`), no request bodies (413), headers up to 16 KiB (431).
//
// Handlers run on the worker threads: they must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace profiled::obs {

struct HttpServerOptions {
  // host:port to listen on (IPv4, or [IPv6]); port 0 picks a free one.
  // Default: 127.0.0.1:9464.
  std::string listen = "127.0.0.1:9464";
  // Worker threads of the API lane (/v1). Default: 2.
  int threads = 2;
  // A connection must deliver its whole request within this long, else it
  // gets 408 and is closed. Also bounds writing the response. Default: 3000.
  int request_timeout_ms = 3000;
  // Open connections at most; beyond it the oldest one still sending its
  // request is closed. Default: 1000.
  int max_connections = 1000;

  [[nodiscard]] absl::Status Validate() const;
};

struct HttpRequest {
  std::string method;
  // URL-decoded path, e.g. "/v1/profiles/user_id/42".
  std::string path;
  std::string query;
  // Value of the Authorization header, or empty.
  std::string authorization;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string location;  // a redirect's Location header (empty: none)

  static HttpResponse Text(int status, std::string body) {
    return {status, "text/plain; charset=utf-8", std::move(body)};
  }
  // 307: the same request, sent again to `location` (an absolute URL).
  static HttpResponse Redirect(const std::string& location) {
    return {307, "text/plain; charset=utf-8", "see " + location + "\n", location};
  }
  static HttpResponse Json(int status, std::string body) {
    return {status, "application/json", std::move(body)};
  }
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Which thread runs a route's handler.
enum class HttpLane {
  kApi,     // the `threads` API workers; queue bounded, 503 when full
  kProbe,   // a worker of its own (metrics); queue bounded, 503 when full
  kInline,  // the event loop itself: only for handlers that never block
            // and take microseconds (health, readiness)
};

class HttpServer {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const HttpServerOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes requests whose path equals `path`, or starts with it when `path`
  // ends in '/', to `handler`. Until registered, a path answers 404.
  void Handle(const std::string& path, HttpHandler handler, HttpLane lane = HttpLane::kApi);

  // The port actually listened on.
  int port() const;

 private:
  class Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace profiled::obs
