#include "profiled/obs/metrics.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sstream>

namespace profiled::obs {

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {}
Metrics::~Metrics() = default;

std::string Metrics::RenderText() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

HttpResponse Metrics::Render() const {
  return {200, "text/plain; version=0.0.4; charset=utf-8", RenderText()};
}

}  // namespace profiled::obs
