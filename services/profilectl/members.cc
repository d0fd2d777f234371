// profilectl members: who holds a group, read from the members topic with
// the rule every instance applies (cluster/lease.h).
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli.h"
#include "profiled/cluster/lease.h"
#include "profiled/kafka/partition_log.h"

namespace profilectl {

int Members(const Args& args) {
  if (!args.Has("--bootstrap")) return Usage("members needs --bootstrap HOST:PORT");
  const std::string topic = args.Get("--topic", "profiled.members");
  const std::string group = args.Get("--group", "profiled");
  auto log = profiled::kafka::PartitionLog::Open({{"bootstrap.servers", args.Get("--bootstrap")}},
                                                 topic, 0);
  if (!log.ok()) return Fail(log.status().ToString());
  auto range = (*log)->Range(10'000);
  if (!range.ok()) return Fail(range.status().ToString());
  profiled::cluster::LeaseTable table(group);
  absl::Status read = (*log)->Read(range->low, range->high, 30'000,
                                   [&](const profiled::kafka::LogRecord& r) {
                                     table.Apply(r.offset, r.value);
                                     return absl::OkStatus();
                                   });
  if (!read.ok()) return Fail(read.ToString());
  const int64_t now = absl::ToUnixMillis(absl::Now());
  std::printf("group '%s' on %s (%lld records, %zu unreadable)\n", group.c_str(), topic.c_str(),
              static_cast<long long>(range->high - range->low), table.unreadable());
  for (const auto& m : table.Members()) {
    const profiled::cluster::MemberLease& l = *m.lease;
    // A refused instance also releases its record: refused says more.
    const char* state = m.yielded                                  ? "refused"
                        : l.released()                             ? "released"
                        : profiled::cluster::LiveAt(l, now)        ? "holds"
                                                                   : "expired";
    std::printf("  %-8s %s on %s  mode %s  lease from offset %lld  last heard %llds ago  http %s\n",
                state, l.instance_id().c_str(), l.host().c_str(), l.mode().c_str(),
                static_cast<long long>(m.order),
                static_cast<long long>((now - l.heartbeat_ms()) / 1000),
                l.advertised_http().empty() ? "-" : l.advertised_http().c_str());
  }
  return 0;
}

}  // namespace profilectl
