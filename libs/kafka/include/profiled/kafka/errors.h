// How the Kafka adapters report failures: librdkafka's error codes become
// absl codes by what the caller can do about them.
//
//   Unavailable         transient (broker down, timeouts, leaders moving): retry
//   ResourceExhausted   the local producer queue is full: poll and retry
//   OutOfRange          the record is larger than the producer or broker accepts
//   NotFound            the topic or partition does not exist
//   PermissionDenied    authorization or authentication was refused
//   FailedPrecondition  any other error retrying cannot fix (invalid record,
//                       policy violation, fatal producer state)
//
//   if (!kafka::IsRetriable(status)) health.Set(...);   // loud, not a silent loop
#pragma once

#include "absl/status/status.h"

namespace profiled::kafka {

// True for failures a retry may fix (Unavailable, ResourceExhausted,
// DeadlineExceeded); false for the rest, which need someone to act.
inline bool IsRetriable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsResourceExhausted(status) ||
         absl::IsDeadlineExceeded(status);
}

}  // namespace profiled::kafka
