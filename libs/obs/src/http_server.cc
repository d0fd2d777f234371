#include "profiled/obs/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "http_request.h"
#include "profiled/base/log.h"

namespace profiled::obs {

using Clock = std::chrono::steady_clock;
using internal::SerializeResponse;

absl::Status HttpServerOptions::Validate() const {
  if (listen.rfind(':') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("listen must be host:port, got '", listen, "'"));
  }
  if (threads < 1 || threads > 256) return absl::InvalidArgumentError("threads must be 1..256");
  if (request_timeout_ms < 100) {
    return absl::InvalidArgumentError("request_timeout_ms must be at least 100");
  }
  if (max_connections < 8) return absl::InvalidArgumentError("max_connections must be at least 8");
  return absl::OkStatus();
}

namespace {

HttpResponse Run(const HttpHandler& handler, const HttpRequest& request) {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    // A handler bug must not take the process down with it.
    return HttpResponse::Text(500, absl::StrCat("internal error: ", e.what(), "\n"));
  }
}

}  // namespace

class HttpServer::Impl {
 public:
  explicit Impl(const HttpServerOptions& options) : options_(options) {}
  ~Impl() { Stop(); }

  absl::Status Listen();
  void Start();
  void Stop();
  int port() const { return port_; }
  void Handle(const std::string& path, HttpHandler handler, HttpLane lane);

 private:
  enum class State { kReading, kHandling, kWriting };
  // epoll carries a connection's id, never its fd: an fd closed and reused
  // within one batch of events must not receive the old one's events.
  static constexpr uint64_t kListenId = 0, kWakeId = 1;
  struct Connection {
    int fd = -1;
    uint64_t id = 0;  // never reused, so a late response finds no stranger
    State state = State::kReading;
    Clock::time_point deadline;
    std::string in;
    std::string out;
    size_t written = 0;
    bool watched = true;  // registered with epoll (not while a worker handles it)
  };
  struct Route {
    std::string path;
    bool prefix = false;
    HttpHandler handler;
    HttpLane lane;
  };
  struct Job {
    uint64_t connection_id;
    const HttpHandler* handler;
    HttpRequest request;
  };
  // A set of worker threads with their queue.
  struct Lane {
    absl::Mutex mu;
    std::deque<Job> queue ABSL_GUARDED_BY(mu);
    size_t max_queue = 0;
    std::vector<std::thread> threads;
  };

  void Loop();
  void Accept();
  // Out of descriptors: accept and close one pending connection with the
  // spare descriptor, so the listening socket does not stay readable.
  void ShedOne();
  void OnReadable(Connection& c);
  void OnWritable(Connection& c);
  void Dispatch(Connection& c, size_t head_end);
  void Respond(Connection& c, const HttpResponse& response);
  void Close(uint64_t id);
  void ExpireDeadlines();
  void DeliverCompletions();
  void Work(Lane& lane);
  void Watch(Connection& c, uint32_t events);

  HttpServerOptions options_;
  int listen_fd_ = -1, epoll_fd_ = -1, wake_fd_ = -1;
  int spare_fd_ = -1;  // held to be given up when descriptors run out
  Clock::time_point next_shed_log_{};
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread loop_;

  absl::Mutex routes_mu_;
  std::vector<std::unique_ptr<Route>> routes_ ABSL_GUARDED_BY(routes_mu_);  // stable addresses for jobs

  // Loop-thread state, by connection id.
  std::unordered_map<uint64_t, Connection> connections_;
  uint64_t next_id_ = 2;
  Clock::time_point next_expiry_scan_{};

  Lane api_, probe_;
  absl::Mutex done_mu_;
  // From workers to the loop.
  std::vector<std::pair<uint64_t, HttpResponse>> done_ ABSL_GUARDED_BY(done_mu_);
};

absl::Status HttpServer::Impl::Listen() {
  const size_t colon = options_.listen.rfind(':');
  std::string host = options_.listen.substr(0, colon);
  const std::string port = options_.listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot listen on ", options_.listen, ": ", gai_strerror(rc)));
  }
  std::string error = "no address";
  for (addrinfo* a = found; a != nullptr && listen_fd_ < 0; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 512) == 0) {
      listen_fd_ = fd;
    } else {
      error = std::strerror(errno);
      close(fd);
    }
  }
  freeaddrinfo(found);
  if (listen_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen, ": ", error));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  // Every connection needs a descriptor: make sure the bound fits the limit.
  rlimit limit{};
  const rlim_t wanted = static_cast<rlim_t>(options_.max_connections) + 256;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < wanted) {
    limit.rlim_cur = std::min(wanted, limit.rlim_max);
    setrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < wanted) {
      LogWarn("http: the open-file limit (", limit.rlim_cur, ") is below http.max_connections + 256");
    }
  }

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) return absl::InternalError("epoll/eventfd unavailable");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenId;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kWakeId;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  return absl::OkStatus();
}

void HttpServer::Impl::Start() {
  api_.max_queue = static_cast<size_t>(options_.threads) * 16;
  probe_.max_queue = 64;  // scrapes come every few seconds, not by the hundred
  for (int i = 0; i < options_.threads; ++i) api_.threads.emplace_back([this] { Work(api_); });
  probe_.threads.emplace_back([this] { Work(probe_); });
  loop_ = std::thread([this] { Loop(); });
}

void HttpServer::Impl::Stop() {
  if (stop_.exchange(true)) return;
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof(one));
  if (loop_.joinable()) loop_.join();
  for (Lane* lane : {&api_, &probe_}) {
    // Under the lane's lock: a worker waits on a condition that reads
    // stop_, re-evaluated when the lock is released.
    { absl::MutexLock lock(&lane->mu); }
    for (std::thread& t : lane->threads) t.join();
  }
  for (auto& [id, c] : connections_) close(c.fd);
  for (int fd : {listen_fd_, epoll_fd_, wake_fd_, spare_fd_}) {
    if (fd >= 0) close(fd);
  }
}

void HttpServer::Impl::Handle(const std::string& path, HttpHandler handler, HttpLane lane) {
  absl::MutexLock lock(&routes_mu_);
  const bool prefix = !path.empty() && path.back() == '/';
  routes_.push_back(std::make_unique<Route>(Route{path, prefix, std::move(handler), lane}));
}

void HttpServer::Impl::Watch(Connection& c, uint32_t events) {
  // Level-triggered: a connection being handled is not watched at all, or a
  // hang-up would wake the loop until the worker is done.
  if (events == 0) {
    if (c.watched) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    c.watched = false;
    return;
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = c.id;
  epoll_ctl(epoll_fd_, c.watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c.fd, &ev);
  c.watched = true;
}

void HttpServer::Impl::Loop() {
  std::vector<epoll_event> events(256);
  while (!stop_) {
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 100);
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == kListenId) {
        Accept();
        continue;
      }
      if (id == kWakeId) {
        uint64_t count = 0;
        (void)!read(wake_fd_, &count, sizeof(count));
        DeliverCompletions();
        continue;
      }
      auto it = connections_.find(id);
      if (it == connections_.end()) continue;  // closed earlier in this batch
      Connection& c = it->second;
      const uint32_t what = events[i].events;
      if (what & EPOLLERR) {
        Close(id);
      } else if (c.state == State::kReading) {
        OnReadable(c);  // data, or the end of the stream (recv returns 0)
      } else if (c.state == State::kWriting) {
        OnWritable(c);
      }
    }
    ExpireDeadlines();
  }
}

void HttpServer::Impl::Accept() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) ShedOne();
      return;
    }
    if (connections_.size() >= static_cast<size_t>(options_.max_connections)) {
      // Make room by dropping the connection that has waited longest for its
      // request or for its reader: an idle or slow client, never one whose
      // request a worker is handling.
      uint64_t oldest = 0;
      Clock::time_point oldest_deadline = Clock::time_point::max();
      for (const auto& [other_id, other] : connections_) {
        if (other.state != State::kHandling && other.deadline < oldest_deadline) {
          oldest = other_id;
          oldest_deadline = other.deadline;
        }
      }
      if (oldest == 0) {
        close(fd);  // every slot is being served: the new one may retry
        continue;
      }
      Close(oldest);
    }
    const uint64_t id = next_id_++;
    Connection& c = connections_[id];
    c.fd = fd;
    c.id = id;
    c.deadline = Clock::now() + std::chrono::milliseconds(options_.request_timeout_ms);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = id;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
}

void HttpServer::Impl::ShedOne() {
  if (Clock::now() >= next_shed_log_) {
    LogWarn("http: out of file descriptors; refusing connections until some close");
    next_shed_log_ = Clock::now() + std::chrono::seconds(10);
  }
  if (spare_fd_ < 0) return;
  close(spare_fd_);
  const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) close(fd);
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void HttpServer::Impl::OnReadable(Connection& c) {
  char buf[4096];
  for (;;) {
    const ssize_t got = recv(c.fd, buf, sizeof(buf), 0);
    if (got > 0) {
      c.in.append(buf, static_cast<size_t>(got));
      const size_t end = internal::HeadEnd(c.in);
      if (end <= internal::kMaxHeadBytes) {  // npos (incomplete) is never within
        Dispatch(c, end);
        return;
      }
      if (c.in.size() > internal::kMaxHeadBytes) {
        Respond(c, HttpResponse::Text(431, "request head larger than 16 KiB\n"));
        return;
      }
      continue;
    }
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (got < 0 && errno == EINTR) continue;
    Close(c.id);  // closed by the client, or an error, before a whole request
    return;
  }
}

void HttpServer::Impl::Dispatch(Connection& c, size_t head_end) {
  HttpRequest request;
  if (auto error = internal::ParseHead(std::string_view(c.in).substr(0, head_end), request)) {
    Respond(c, HttpResponse::Text(error->status, error->reason + "\n"));
    return;
  }
  const Route* route = nullptr;
  {
    absl::ReaderMutexLock lock(&routes_mu_);
    for (const auto& r : routes_) {
      if (r->prefix ? request.path.rfind(r->path, 0) == 0 : request.path == r->path) {
        route = r.get();
        break;
      }
    }
  }
  if (route == nullptr) {
    Respond(c, HttpResponse::Text(404, "not found\n"));
    return;
  }
  if (route->lane == HttpLane::kInline) {
    Respond(c, Run(route->handler, request));
    return;
  }
  Lane& lane = route->lane == HttpLane::kProbe ? probe_ : api_;
  bool queued = false;
  {
    absl::MutexLock lock(&lane.mu);
    if (lane.queue.size() < lane.max_queue) {
      lane.queue.push_back(Job{c.id, &route->handler, std::move(request)});
      queued = true;
    }
  }
  if (!queued) {
    Respond(c, HttpResponse::Text(503, "busy, retry later\n"));
    return;
  }
  c.state = State::kHandling;
  c.in.clear();
  Watch(c, 0);
}

void HttpServer::Impl::Respond(Connection& c, const HttpResponse& response) {
  c.out = SerializeResponse(response);
  c.written = 0;
  c.state = State::kWriting;
  c.deadline = Clock::now() + std::chrono::milliseconds(options_.request_timeout_ms);
  Watch(c, EPOLLOUT);
  OnWritable(c);
}

void HttpServer::Impl::OnWritable(Connection& c) {
  while (c.written < c.out.size()) {
    const ssize_t sent =
        send(c.fd, c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
    if (sent > 0) {
      c.written += static_cast<size_t>(sent);
      continue;
    }
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (sent < 0 && errno == EINTR) continue;
    break;  // the client went away
  }
  Close(c.id);
}

void HttpServer::Impl::Close(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  if (it->second.watched) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
  close(it->second.fd);
  connections_.erase(it);
}

void HttpServer::Impl::ExpireDeadlines() {
  const Clock::time_point now = Clock::now();
  if (now < next_expiry_scan_) return;
  next_expiry_scan_ = now + std::chrono::milliseconds(50);
  std::vector<uint64_t> late;
  for (const auto& [id, c] : connections_) {
    if (c.state != State::kHandling && c.deadline <= now) late.push_back(id);
  }
  for (uint64_t id : late) {
    Connection& c = connections_.at(id);
    if (c.state == State::kReading) {
      // Best effort: say why before closing; never wait on a slow reader.
      const std::string timeout =
          SerializeResponse(HttpResponse::Text(408, "request not complete in time\n"));
      (void)!send(c.fd, timeout.data(), timeout.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    Close(id);
  }
}

void HttpServer::Impl::DeliverCompletions() {
  std::vector<std::pair<uint64_t, HttpResponse>> done;
  {
    absl::MutexLock lock(&done_mu_);
    done.swap(done_);
  }
  for (auto& [id, response] : done) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;  // the client left meanwhile
    Respond(it->second, response);
  }
}

void HttpServer::Impl::Work(Lane& lane) {
  for (;;) {
    Job job;
    {
      absl::MutexLock lock(&lane.mu);
      const auto has_work = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lane.mu) {
        return stop_ || !lane.queue.empty();
      };
      lane.mu.Await(absl::Condition(&has_work));
      if (stop_) return;
      job = std::move(lane.queue.front());
      lane.queue.pop_front();
    }
    HttpResponse response = Run(*job.handler, job.request);
    {
      absl::MutexLock lock(&done_mu_);
      done_.emplace_back(job.connection_id, std::move(response));
    }
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(options);
  if (absl::Status s = impl->Listen(); !s.ok()) return s;
  impl->Start();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() = default;

void HttpServer::Handle(const std::string& path, HttpHandler handler, HttpLane lane) {
  impl_->Handle(path, std::move(handler), lane);
}

int HttpServer::port() const { return impl_->port(); }

}  // namespace profiled::obs
