// The process-wide Prometheus registry and its text rendering for /metrics.
//
//   Metrics metrics;
//   auto probe = pipeline::PipelineMetrics::Register(metrics.registry(), topics);
//   server->Handle("/metrics", [&](const HttpRequest&) { return metrics.Render(); });
//
// prometheus-cpp's Exposer keeps its own web server private, so we render
// with its TextSerializer and serve it from our HttpServer.
#pragma once

#include <memory>
#include <string>

#include "profiled/obs/http_server.h"

namespace prometheus {
class Registry;
}

namespace profiled::obs {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  prometheus::Registry& registry() { return *registry_; }
  // Prometheus text exposition format 0.0.4.
  std::string RenderText() const;
  // RenderText() as an HTTP response with the right content type.
  HttpResponse Render() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
};

}  // namespace profiled::obs
