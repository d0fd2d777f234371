#include "profiled/pipeline/health.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "profiled/base/log.h"

namespace profiled::pipeline {

std::string_view FaultName(Fault fault) {
  switch (fault) {
    case Fault::kDeadLettersStalled: return "dead_letters_stalled";
    case Fault::kDeadLettersRefused: return "dead_letters_refused";
    case Fault::kOutputStalled: return "output_stalled";
    case Fault::kOutputRefused: return "output_refused";
    case Fault::kStoreFailed: return "store_failed";
    case Fault::kProgressStalled: return "progress_stalled";
    case Fault::kPurgeFailed: return "purge_failed";
    case Fault::kInputUnreachable: return "input_unreachable";
    case Fault::kLeaseLapsed: return "lease_lapsed";
  }
  return "unknown";
}

namespace {

prometheus::Gauge& GaugeOf(prometheus::Registry& r, const std::string& name,
                           const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

size_t IndexOf(Fault fault) { return static_cast<size_t>(fault); }

}  // namespace

Health::Health(prometheus::Registry& registry, HealthOptions options,
               const core::Clock& wall_clock)
    : options_(options),
      wall_clock_(wall_clock),
      lag_family_(prometheus::BuildGauge()
                      .Name("profiled_consumer_lag")
                      .Help("Messages not yet committed: the partition's high watermark (as the "
                            "broker reports it) minus profiled's stored position.")
                      .Register(registry)),
      ready_gauge_(GaugeOf(registry, "profiled_ready",
                           "1 while /readyz answers 200: assigned, started, caught up, no fault.")),
      stall_gauge_(GaugeOf(registry, "profiled_progress_stall_seconds",
                           "Seconds since the last committed batch while input waits; 0 when "
                           "nothing waits.")) {
  auto& faults = prometheus::BuildGauge()
                     .Name("profiled_fault")
                     .Help("1 while a failure that stops progress holds, by reason "
                           "(docs/operations.md, fault table).")
                     .Register(registry);
  for (Fault f : kAllFaults) {
    fault_gauges_[IndexOf(f)] = &faults.Add({{"reason", std::string(FaultName(f))}});
  }
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  last_commit_ = now;
  last_idle_ = now;
  last_loop_ = now;
  last_answer_ = now;
}

void Health::Set(Fault fault, std::string detail) {
  absl::MutexLock lock(&mu_);
  SetLocked(fault, std::move(detail));
}

void Health::SetLocked(Fault fault, std::string detail) {
  std::optional<Active>& slot = faults_[IndexOf(fault)];
  if (slot.has_value()) {
    slot->detail = std::move(detail);  // still the same fault: no new log line
    return;
  }
  LogError("fault ", FaultName(fault), ": ", detail);
  slot = Active{std::move(detail), Now()};
  fault_gauges_[IndexOf(fault)]->Set(1);
  ready_gauge_.Set(0);  // at once, not at the next evaluation
}

void Health::Clear(Fault fault) {
  absl::MutexLock lock(&mu_);
  ClearLocked(fault);
}

void Health::ClearLocked(Fault fault) {
  std::optional<Active>& slot = faults_[IndexOf(fault)];
  if (!slot.has_value()) return;
  LogInfo("fault ", FaultName(fault), " cleared after ",
          absl::FormatDuration(absl::Trunc(Now() - slot->since, absl::Milliseconds(100))));
  slot.reset();
  fault_gauges_[IndexOf(fault)]->Set(0);
  ready_gauge_.Set(ReadyLocked() ? 1 : 0);
}

bool Health::ReadyLocked() const {
  if (!conditions_.empty()) return false;
  for (const std::optional<Active>& f : faults_) {
    if (f.has_value()) return false;
  }
  return true;
}

bool Health::Has(Fault fault) const {
  absl::MutexLock lock(&mu_);
  return faults_[IndexOf(fault)].has_value();
}

void Health::ReportAssignment(const std::vector<PartitionState>& partitions) {
  absl::MutexLock lock(&mu_);
  absl::flat_hash_map<core::PartitionKey, Partition> next;
  for (const PartitionState& s : partitions) {
    Partition p;
    if (auto it = partitions_.find(s.partition); it != partitions_.end()) {
      p = it->second;
      partitions_.erase(it);
    } else {
      p.lag = &lag_family_.Add(
          {{"topic", s.partition.topic}, {"partition", std::to_string(s.partition.partition)}});
    }
    p.position = s.position;
    p.high = std::max({p.high, s.position, s.cached.value_or(0)});
    p.known = p.known || s.cached.has_value();
    next.emplace(s.partition, p);
  }
  // Revoked partitions leave the lag metric rather than freeze in it.
  for (auto& [key, gone] : partitions_) lag_family_.Remove(gone.lag);
  partitions_ = std::move(next);
}

void Health::ReportCommit() {
  absl::MutexLock lock(&mu_);
  last_commit_ = Now();
  ++commits_;
}

uint64_t Health::Commits() const {
  absl::MutexLock lock(&mu_);
  return commits_;
}

void Health::ReportLoop() {
  absl::MutexLock lock(&mu_);
  last_loop_ = Now();
}

void Health::ReportIdle() {
  absl::MutexLock lock(&mu_);
  last_idle_ = Now();
}

void Health::ReportStarted(bool started) {
  absl::MutexLock lock(&mu_);
  started_ = started;
}

void Health::ReportRestoring(std::string what) {
  absl::MutexLock lock(&mu_);
  if (what.empty() && !restoring_.empty()) {
    // The time the restore took is not a stall of what comes after it.
    last_loop_ = last_commit_ = Now();
  }
  restoring_ = std::move(what);
}

void Health::ReportHighWatermarks(const std::vector<core::PartitionKey>& asked,
                                  const absl::flat_hash_map<core::PartitionKey, int64_t>& highs) {
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  if (asked.empty() || !highs.empty()) {
    last_answer_ = now;
    ClearLocked(Fault::kInputUnreachable);
  } else if (now - last_answer_ > options_.stall_timeout) {
    SetLocked(Fault::kInputUnreachable,
              absl::StrCat("the input brokers answered no watermark query for ",
                           absl::FormatDuration(absl::Trunc(now - last_answer_, absl::Seconds(1))),
                           " (", asked.size(), " partitions assigned); lag is unknown"));
  }
  for (const auto& [key, high] : highs) {
    if (auto it = partitions_.find(key); it != partitions_.end()) {
      it->second.high = std::max(it->second.high, high);
      it->second.known = true;
    }
  }
}

std::vector<core::PartitionKey> Health::Assigned() const {
  absl::MutexLock lock(&mu_);
  std::vector<core::PartitionKey> out;
  out.reserve(partitions_.size());
  for (const auto& [key, p] : partitions_) out.push_back(key);
  return out;
}

void Health::Evaluate() {
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  int64_t waiting = 0, worst_lag = 0;
  const core::PartitionKey* worst = nullptr;
  size_t unknown = 0;
  for (const auto& [key, p] : partitions_) {
    unknown += !p.known;
    const int64_t lag = std::max<int64_t>(p.high - p.position, 0);
    p.lag->Set(static_cast<double>(lag));
    waiting += lag;
    if (worst == nullptr || lag > worst_lag) {
      worst = &key;
      worst_lag = lag;
    }
  }
  if (waiting == 0) last_idle_ = now;
  const bool restoring = !restoring_.empty();
  const absl::Duration stall = waiting > 0 && !restoring
                                   ? now - std::max(last_commit_, last_idle_)
                                   : absl::ZeroDuration();
  // A loop that stopped turning is stalled whether or not input waits.
  const absl::Duration loop = started_ && !restoring ? now - last_loop_ : absl::ZeroDuration();
  stall_gauge_.Set(absl::ToDoubleSeconds(std::max(stall, loop)));
  const auto secs = [](absl::Duration d) {
    return absl::FormatDuration(absl::Trunc(d, absl::Seconds(1)));
  };
  if (stall > options_.stall_timeout) {
    SetLocked(Fault::kProgressStalled, absl::StrCat("no batch committed for ", secs(stall),
                                                    " while ", waiting, " messages wait"));
  } else if (loop > options_.stall_timeout) {
    SetLocked(Fault::kProgressStalled,
              absl::StrCat("the batch loop has not turned for ", secs(loop)));
  } else {
    ClearLocked(Fault::kProgressStalled);
  }

  std::vector<std::string>& reasons = conditions_;
  reasons.clear();
  if (!started_) reasons.push_back("the pipeline is starting or recovering");
  if (restoring) reasons.push_back(absl::StrCat("restoring ", restoring_));
  if (partitions_.empty()) {
    reasons.push_back("no partitions assigned (joining the group, or more instances than partitions)");
  } else if (unknown > 0) {
    reasons.push_back(absl::StrCat(unknown, " partitions' high watermarks not known yet"));
  } else if (worst_lag > options_.ready_max_lag) {
    reasons.push_back(absl::StrCat(worst->topic, "/", worst->partition, " is ", worst_lag,
                                   " messages behind (ready within ", options_.ready_max_lag, ")"));
  }
  ready_gauge_.Set(ReadyLocked() ? 1 : 0);
}

bool Health::ready() const {
  absl::MutexLock lock(&mu_);
  return ReadyLocked();
}

std::string Health::Describe() const {
  absl::MutexLock lock(&mu_);
  if (ReadyLocked()) return "ready";
  std::vector<std::string> reasons = conditions_;
  for (Fault f : kAllFaults) {
    if (const std::optional<Active>& a = faults_[IndexOf(f)]) {
      reasons.push_back(absl::StrCat(std::string(FaultName(f)), ": ", a->detail));
    }
  }
  return absl::StrCat("not ready: ", absl::StrJoin(reasons, "; "));
}

}  // namespace profiled::pipeline
