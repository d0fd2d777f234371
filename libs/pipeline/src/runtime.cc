#include "profiled/pipeline/runtime.h"

#include "profiled/base/status_macros.h"

namespace profiled::pipeline {

Runtime::Runtime(prometheus::Registry& registry, const std::vector<std::string>& topics)
    : pipeline_metrics_(registry, topics), publisher_metrics_(registry) {}

absl::StatusOr<std::unique_ptr<Runtime>> Runtime::Start(const RuntimeOptions& options,
                                                        prometheus::Registry& registry,
                                                        const core::Clock& wall_clock,
                                                        std::function<bool()> should_stop) {
  std::unique_ptr<Runtime> rt(new Runtime(registry, options.consumer.topics));
  ASSIGN_OR_RETURN(rt->store_, store::ProfileStore::Open(options.store));
  ASSIGN_OR_RETURN(rt->publisher_,
                   Publisher::Create(options.publisher, options.producer_properties, *rt->store_,
                                     rt->publisher_metrics_));
  rt->publisher_->Start();
  ASSIGN_OR_RETURN(rt->dead_letters_, DeadLetterSink::Create(options.dead_letter_topic,
                                                             options.producer_properties));
  ASSIGN_OR_RETURN(rt->pipeline_,
                   Pipeline::Create(options.pipeline, options.consumer,
                                    {*rt->store_, wall_clock, rt->publisher_.get(),
                                     *rt->dead_letters_, rt->pipeline_metrics_,
                                     std::move(should_stop)}));
  return rt;
}

Runtime::~Runtime() { Shutdown(absl::Seconds(10)); }

bool Runtime::Shutdown(absl::Duration timeout) {
  if (shut_down_) return store_->OutboxDepth() == 0;
  shut_down_ = true;
  if (pipeline_) pipeline_->Close();
  return publisher_ == nullptr || publisher_->DrainAndStop(timeout);
}

}  // namespace profiled::pipeline
