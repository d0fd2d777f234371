#include "profiled/obs/http_client.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace profiled::obs {
namespace {

// Closes the socket on every path.
struct Socket {
  int fd = -1;
  ~Socket() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

std::string UrlEncode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

absl::StatusOr<HttpResponse> HttpGet(const std::string& host_port, const std::string& path,
                                     const std::string& authorization, int timeout_ms) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("expected host:port, got '", host_port, "'"));
  }
  const std::string host = host_port.substr(0, colon);
  const std::string port = host_port.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("resolving ", host_port, ": ", gai_strerror(rc)));
  }
  Socket sock;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    sock.fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (sock.fd < 0) continue;
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(sock.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(sock.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(sock.fd, a->ai_addr, a->ai_addrlen) == 0) break;
    close(sock.fd);
    sock.fd = -1;
  }
  freeaddrinfo(found);
  if (sock.fd < 0) return absl::UnavailableError(absl::StrCat("cannot connect to ", host_port));

  std::string request = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host_port,
                                     "\r\nConnection: close\r\n");
  if (!authorization.empty()) absl::StrAppend(&request, "Authorization: ", authorization, "\r\n");
  request += "\r\n";
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = send(sock.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return absl::UnavailableError(absl::StrCat("sending to ", host_port));
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    ssize_t n = recv(sock.fd, buf, sizeof(buf), 0);
    if (n < 0) return absl::UnavailableError(absl::StrCat("reading from ", host_port));
    if (n == 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }

  // Status line, headers, body (the server closes the connection).
  const size_t header_end = raw.find("\r\n\r\n");
  int status = 0;
  if (raw.rfind("HTTP/1.", 0) != 0 || header_end == std::string::npos || raw.size() < 12 ||
      !absl::SimpleAtoi(raw.substr(9, 3), &status)) {
    return absl::UnavailableError(absl::StrCat("no valid HTTP response from ", host_port));
  }
  HttpResponse response;
  response.status = status;
  response.body = raw.substr(header_end + 4);
  const std::string headers = absl::AsciiStrToLower(raw.substr(0, header_end));
  if (size_t ct = headers.find("\r\ncontent-type:"); ct != std::string::npos) {
    size_t start = ct + 15;
    size_t end = headers.find("\r\n", start);
    response.content_type = std::string(
        absl::StripAsciiWhitespace(raw.substr(start, end == std::string::npos ? end : end - start)));
  }
  return response;
}

}  // namespace profiled::obs
