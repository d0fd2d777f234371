// Private helpers shared by the librdkafka adapters.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "profiled/base/log.h"
#include "profiled/kafka/partition_log.h"
#include "profiled/kafka/properties.h"

namespace profiled::kafka::internal {

// librdkafka's code as an absl status, classified as errors.h documents.
inline absl::Status KafkaError(RdKafka::ErrorCode code, absl::string_view what) {
  const std::string msg = absl::StrCat(what, ": ", RdKafka::err2str(code));
  switch (code) {
    case RdKafka::ERR_MSG_SIZE_TOO_LARGE:
    case RdKafka::ERR_RECORD_LIST_TOO_LARGE:
    case RdKafka::ERR_INVALID_MSG_SIZE:
      return absl::OutOfRangeError(msg);
    case RdKafka::ERR_UNKNOWN_TOPIC_OR_PART:
    case RdKafka::ERR__UNKNOWN_TOPIC:
    case RdKafka::ERR__UNKNOWN_PARTITION:
    case RdKafka::ERR_TOPIC_EXCEPTION:
      return absl::NotFoundError(msg);
    case RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED:
    case RdKafka::ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RdKafka::ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RdKafka::ERR_SASL_AUTHENTICATION_FAILED:
    case RdKafka::ERR__AUTHENTICATION:
      return absl::PermissionDeniedError(msg);
    case RdKafka::ERR_INVALID_RECORD:
    case RdKafka::ERR_INVALID_REQUIRED_ACKS:
    case RdKafka::ERR_POLICY_VIOLATION:
    case RdKafka::ERR_UNSUPPORTED_VERSION:
    case RdKafka::ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RdKafka::ERR__INVALID_ARG:
    case RdKafka::ERR__FATAL:
      return absl::FailedPreconditionError(msg);
    case RdKafka::ERR__QUEUE_FULL:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::UnavailableError(msg);
  }
}

// A global conf with `properties` applied; an unknown property or bad value
// fails naming it.
inline absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeConf(const Properties& properties) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  for (const auto& [name, value] : properties) {
    if (conf->set(name, value, err) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka property '", name, "': ", err));
    }
  }
  return conf;
}

// librdkafka's errors and log lines through our logger (so they follow
// log.format). Transient errors are retried by librdkafka itself: debug only.
inline void LogKafkaEvent(const char* who, RdKafka::Event& event) {
  if (event.type() == RdKafka::Event::EVENT_ERROR) {
    if (event.fatal()) {
      LogError("kafka ", who, " fatal error: ", RdKafka::err2str(event.err()), ": ", event.str());
    } else {
      LogDebug("kafka ", who, ": ", RdKafka::err2str(event.err()), ": ", event.str());
    }
  } else if (event.type() == RdKafka::Event::EVENT_LOG) {
    const int severity = static_cast<int>(event.severity());
    if (severity <= RdKafka::Event::EVENT_SEVERITY_ERROR) {
      LogError("kafka ", who, " ", event.fac(), ": ", event.str());
    } else if (severity == RdKafka::Event::EVENT_SEVERITY_WARNING) {
      LogWarn("kafka ", who, " ", event.fac(), ": ", event.str());
    } else {
      LogDebug("kafka ", who, " ", event.fac(), ": ", event.str());
    }
  }
}

// An event callback that logs as LogKafkaEvent, naming the client `who`.
class EventLogger final : public RdKafka::EventCb {
 public:
  explicit EventLogger(const char* who) : who_(who) {}
  void event_cb(RdKafka::Event& event) override { LogKafkaEvent(who_, event); }

 private:
  const char* who_;
};

// A topic handle of `handle` that never skips silently: an offset
// retention removed is reported (auto.offset.reset=error).
inline absl::StatusOr<std::unique_ptr<RdKafka::Topic>> StrictTopic(RdKafka::Handle* handle,
                                                                   const std::string& topic) {
  std::unique_ptr<RdKafka::Conf> tconf(RdKafka::Conf::create(RdKafka::Conf::CONF_TOPIC));
  std::string err;
  if (tconf->set("auto.offset.reset", "error", err) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(err);
  }
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(handle, topic, tconf.get(), err));
  if (!t) return absl::InvalidArgumentError(absl::StrCat("topic ", topic, ": ", err));
  return t;
}

// A consumed message as a LogRecord: views valid while `msg` lives.
inline LogRecord LogRecordOf(const RdKafka::Message& msg) {
  LogRecord record;
  record.offset = msg.offset();
  if (msg.key_pointer() != nullptr) {
    record.key = std::string_view(static_cast<const char*>(msg.key_pointer()), msg.key_len());
  }
  if (msg.payload() != nullptr) {
    record.value.emplace(static_cast<const char*>(msg.payload()), msg.len());
  }
  return record;
}

inline absl::Status SetOrFail(RdKafka::Conf& conf, const std::string& name,
                              const std::string& value) {
  std::string err;
  if (conf.set(name, value, err) != RdKafka::Conf::CONF_OK) {
    return absl::InvalidArgumentError(absl::StrCat("kafka property '", name, "': ", err));
  }
  return absl::OkStatus();
}

// Sets `name` only when the caller's properties do not.
inline absl::Status SetDefault(RdKafka::Conf& conf, const Properties& properties,
                               const std::string& name, const std::string& value) {
  for (const auto& p : properties) {
    if (p.first == name) return absl::OkStatus();
  }
  return SetOrFail(conf, name, value);
}

}  // namespace profiled::kafka::internal
