// The HTTP server under slow and hostile clients, over real loopback sockets:
// hundreds of idle and half-sent connections and a busy /v1 must not delay
// the probes; malformed requests get a status, never a hang.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "profiled/obs/http_server.h"
#include "support/test_support.h"

namespace profiled::obs {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

void SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close first (e.g. 431): what it said is read next
    sent += static_cast<size_t>(n);
  }
}

// Everything the server sends until it closes, or what arrived by `timeout`.
std::string ReadUntilClosed(int fd, milliseconds timeout, bool* closed = nullptr) {
  std::string out;
  const auto deadline = Clock::now() + timeout;
  char buf[8192];
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      if (closed != nullptr) *closed = true;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// One request on its own connection; the whole response.
std::string Request(int port, const std::string& raw, milliseconds timeout = milliseconds(5000)) {
  const int fd = Connect(port);
  SendAll(fd, raw);
  std::string response = ReadUntilClosed(fd, timeout);
  close(fd);
  return response;
}

std::string Get(int port, const std::string& path) {
  return Request(port, "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n");
}

std::unique_ptr<HttpServer> StartServer(HttpServerOptions options) {
  options.listen = "127.0.0.1:0";
  auto server = HttpServer::Start(options);
  REQUIRE_OK(server.status());
  (*server)->Handle("/healthz", [](const HttpRequest&) { return HttpResponse::Text(200, "ok\n"); },
                    HttpLane::kInline);
  (*server)->Handle("/metrics", [](const HttpRequest&) {
    return HttpResponse::Text(200, std::string(200'000, '#') + "\n");  // a large scrape
  }, HttpLane::kProbe);
  (*server)->Handle("/v1/slow/", [](const HttpRequest&) {
    std::this_thread::sleep_for(milliseconds(1500));
    return HttpResponse::Text(200, "slow\n");
  });
  (*server)->Handle("/v1/echo/", [](const HttpRequest& r) {
    return HttpResponse::Text(200, r.method + " " + r.path + " ? " + r.query + " | " +
                                       r.authorization + "\n");
  });
  return std::move(*server);
}

TEST_CASE("probes answer within a second while hundreds of connections idle or half-send "
          "and /v1 is busy",
          "[integration][http]") {
  HttpServerOptions options;
  options.threads = 2;
  options.request_timeout_ms = 2000;
  auto server = StartServer(options);
  const int port = server->port();

  std::vector<int> idle, half;
  for (int i = 0; i < 300; ++i) idle.push_back(Connect(port));
  for (int i = 0; i < 300; ++i) {
    half.push_back(Connect(port));
    SendAll(half.back(), "GET /healthz HTTP/1.1\r\nHost: slow");  // never finished
  }
  // Fill the API lane: two workers busy, more waiting.
  std::atomic<int> slow_ok{0};
  std::vector<std::thread> busy;
  for (int i = 0; i < 4; ++i) {
    busy.emplace_back([&] {
      if (Get(port, "/v1/slow/x").rfind("HTTP/1.1 200", 0) == 0) ++slow_ok;
    });
  }
  std::this_thread::sleep_for(milliseconds(100));

  int64_t slowest_ms = 0;
  for (int i = 0; i < 10; ++i) {
    for (const char* path : {"/healthz", "/metrics"}) {
      const auto start = Clock::now();
      const std::string response = Get(port, path);
      const int64_t ms =
          std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
      slowest_ms = std::max(slowest_ms, ms);
      CHECK(response.rfind("HTTP/1.1 200 OK", 0) == 0);
    }
  }
  CHECK(slowest_ms < 1000);
  WARN("slowest probe with 600 idle/half-sent connections and a busy /v1: " << slowest_ms << " ms");

  for (std::thread& t : busy) t.join();
  CHECK(slow_ok == 4);

  // Past the request timeout every idle and half-sent connection is closed,
  // the half-sent ones told why.
  size_t closed = 0, told = 0;
  for (int fd : half) {
    bool was_closed = false;
    const std::string said = ReadUntilClosed(fd, milliseconds(4000), &was_closed);
    closed += was_closed;
    told += said.rfind("HTTP/1.1 408", 0) == 0;
    close(fd);
  }
  for (int fd : idle) {
    bool was_closed = false;
    ReadUntilClosed(fd, milliseconds(1000), &was_closed);
    closed += was_closed;
    close(fd);
  }
  CHECK(closed == 600);
  CHECK(told == 300);
}

TEST_CASE("at the connection bound the oldest waiting connection makes room for a probe",
          "[integration][http]") {
  HttpServerOptions options;
  options.max_connections = 50;
  options.request_timeout_ms = 30'000;  // nothing times out during the test
  auto server = StartServer(options);
  std::vector<int> idle;
  for (int i = 0; i < 120; ++i) idle.push_back(Connect(server->port()));
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    CHECK(Get(server->port(), "/healthz").rfind("HTTP/1.1 200 OK", 0) == 0);
    CHECK(Clock::now() - start < milliseconds(1000));
  }
  // The oldest ones were dropped; the newest still wait.
  bool first_closed = false, last_closed = false;
  ReadUntilClosed(idle.front(), milliseconds(500), &first_closed);
  ReadUntilClosed(idle.back(), milliseconds(200), &last_closed);
  CHECK(first_closed);
  CHECK_FALSE(last_closed);
  for (int fd : idle) close(fd);
}

TEST_CASE("malformed, oversized and unknown requests get a status, not a hang",
          "[integration][http]") {
  auto server = StartServer({});
  const int port = server->port();
  auto status_of = [&](const std::string& raw) { return Request(port, raw).substr(0, 12); };
  CHECK(status_of("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(20'000, 'a') + "\r\n\r\n") ==
        "HTTP/1.1 431");
  CHECK(status_of("POST /v1/echo/x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello") == "HTTP/1.1 413");
  CHECK(status_of("POST /v1/echo/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        "HTTP/1.1 501");
  CHECK(status_of("hello there\r\n\r\n") == "HTTP/1.1 400");
  CHECK(status_of("GET /v1/echo/%zz HTTP/1.1\r\n\r\n") == "HTTP/1.1 400");
  CHECK(status_of("GET /healthz HTTP/2.0\r\n\r\n") == "HTTP/1.1 505");
  CHECK(status_of("GET /nothing-here HTTP/1.1\r\n\r\n") == "HTTP/1.1 404");
  // Paths are percent-decoded, queries kept raw, bare LF line ends tolerated.
  const std::string echo =
      Request(port, "GET /v1/echo/a%20b?x=1%202 HTTP/1.0\nauthorization: Bearer t\n\n");
  CHECK(echo.rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(echo.find("GET /v1/echo/a b ? x=1%202 | Bearer t") != std::string::npos);
  CHECK(echo.find("Connection: close") != std::string::npos);
}

TEST_CASE("bad server options fail at start with the reason", "[integration][http]") {
  HttpServerOptions options;
  options.listen = "no-port";
  CHECK(absl::IsInvalidArgument(HttpServer::Start(options).status()));
  options.listen = "127.0.0.1:0";
  options.max_connections = 2;
  CHECK(absl::IsInvalidArgument(HttpServer::Start(options).status()));
  options.max_connections = 100;
  options.listen = "256.0.0.1:0";
  CHECK_FALSE(HttpServer::Start(options).ok());
}

}  // namespace
}  // namespace profiled::obs
