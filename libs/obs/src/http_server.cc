#include "profiled/obs/http_server.h"

#include <civetweb.h>

#include <mutex>

#include "absl/strings/str_cat.h"

namespace profiled::obs {
namespace {

const char* StatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

int RunHandler(struct mg_connection* conn, void* data) {
  const auto* handler = static_cast<const HttpHandler*>(data);
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest req;
  req.method = info->request_method ? info->request_method : "";
  req.path = info->local_uri ? info->local_uri : "";
  req.query = info->query_string ? info->query_string : "";
  if (const char* auth = mg_get_header(conn, "Authorization")) req.authorization = auth;
  HttpResponse resp;
  try {
    resp = (*handler)(req);
  } catch (const std::exception& e) {
    // A handler bug must not take the process down with it.
    resp = HttpResponse::Text(500, absl::StrCat("internal error: ", e.what(), "\n"));
  }
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            resp.status, StatusText(resp.status), resp.content_type.c_str(), resp.body.size());
  mg_write(conn, resp.body.data(), resp.body.size());
  return resp.status;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options) {
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  std::unique_ptr<HttpServer> server(new HttpServer());
  const std::string threads = std::to_string(options.threads);
  const char* config[] = {"listening_ports", options.listen.c_str(), "num_threads",
                          threads.c_str(), nullptr};
  mg_callbacks callbacks{};
  server->ctx_ = mg_start(&callbacks, nullptr, config);
  if (server->ctx_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  mg_server_port ports[4];
  const int n = mg_get_server_ports(server->ctx_, 4, ports);
  if (n < 1) return absl::InternalError("civetweb reports no listening port");
  server->port_ = ports[0].port;
  return server;
}

HttpServer::~HttpServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

void HttpServer::Handle(const std::string& path, HttpHandler handler) {
  handlers_.push_back(std::make_unique<HttpHandler>(std::move(handler)));
  // civetweb matches a trailing "/" as a prefix and a plain path exactly ("$").
  const std::string pattern = path.back() == '/' ? path : path + "$";
  mg_set_request_handler(ctx_, pattern.c_str(), RunHandler, handlers_.back().get());
}

}  // namespace profiled::obs
