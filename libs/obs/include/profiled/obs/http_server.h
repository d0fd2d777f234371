// HttpServer: profiled's one HTTP endpoint (civetweb), shared by /metrics,
// /healthz and the /v1 API so every endpoint lives on one configured address.
//
//   ASSIGN_OR_RETURN(auto server, HttpServer::Start({.listen = "127.0.0.1:0"}));
//   server->Handle("/healthz", [](const HttpRequest&) { return HttpResponse::Text(200, "ok\n"); });
//   int port = server->port();
//
// Handlers run on civetweb's worker threads: they must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

struct mg_context;  // civetweb's, kept out of this header

namespace profiled::obs {

struct HttpServerOptions {
  // host:port to listen on; port 0 picks a free one. Default: 127.0.0.1:9464.
  std::string listen = "127.0.0.1:9464";
  // Worker threads. Default: 2.
  int threads = 2;
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

  static HttpResponse Text(int status, std::string body) {
    return {status, "text/plain; charset=utf-8", std::move(body)};
  }
  static HttpResponse Json(int status, std::string body) {
    return {status, "application/json", std::move(body)};
  }
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const HttpServerOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes requests whose path equals `path`, or starts with it when `path`
  // ends in '/', to `handler`. Register before traffic arrives.
  void Handle(const std::string& path, HttpHandler handler);

  // The port actually listened on.
  int port() const { return port_; }

 private:
  HttpServer() = default;

  ::mg_context* ctx_ = nullptr;
  // Owned here; civetweb holds raw pointers to them until mg_stop.
  std::vector<std::unique_ptr<HttpHandler>> handlers_;
  int port_ = 0;
};

}  // namespace profiled::obs
