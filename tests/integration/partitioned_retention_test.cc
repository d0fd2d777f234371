// Retention TTL in partitioned mode, through the broker: two instances
// over 6 partitions on event time. People idle past the TTL expire on
// every partition they span once the partitions' clocks pass it — their
// identities unknown again, their profiles gone from the changelog's
// newest records, counted once each — while someone active stays; an
// expired person's next event founds a new profile holding that event
// alone (docs/scaling.md, "Retention TTL").
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "profiled/cluster/changelog.h"
#include "profiled/cluster/identity_protocol.h"
#include "profiled/cluster/protocol_codec.h"
#include "profiled/core/profile_id.h"
#include "profiled/kafka/mock_cluster.h"
#include "support/kafka_harness.h"
#include "support/partitioned_instance.h"
#include "support/people.h"
#include "support/test_support.h"

namespace profiled::pipeline {
namespace {

constexpr int64_t T0 = 1'700'000'000'000;
constexpr int64_t kDay = 24LL * 3'600'000;
constexpr int32_t kPartitions = 6;

bool Labelled(const std::map<std::string, cluster::Slot>& slots, const core::Identity& id) {
  auto it = slots.find(core::ProfileIdFor(id));
  return it != slots.end() && it->second.identity.has_value();
}

bool Live(const std::map<std::string, cluster::Slot>& slots, const std::string& profile_id) {
  auto it = slots.find(profile_id);
  return it != slots.end() && it->second.profile.has_value() &&
         !it->second.profile->absorbed_into.has_value();
}

TEST_CASE(
    "partitioned: people idle past the retention TTL expire on every partition they span, "
    "someone active stays, and an expired person's next event founds them afresh",
    "[integration][partitioned][retention]") {
  std::unique_ptr<kafka::MockCluster> cluster = testing::PartitionedCluster(4, kPartitions);
  const std::string bootstrap = cluster->bootstrap();

  std::mt19937_64 rng(17);
  const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, 6, 120, T0);
  std::vector<std::pair<std::string, std::string>> records;
  for (const v1::InteractionEvent& e : events) {
    records.emplace_back(absl::StrCat("k", rng() % 97), e.SerializeAsString());
  }
  // user-0 comes back on day 20: active when the others' TTL runs out.
  const std::string active = "user-0";
  records.emplace_back("k-active", testing::MakeEvent("active-1", "product_viewed", T0 + 20 * kDay,
                                                      active, "cat1", "sku1")
                                       .SerializeAsString());
  testing::ProduceRecords(bootstrap, "events", records);

  testing::TempDir dir;
  PipelineOptions reference_options = testing::EquivalenceOptions();
  const std::map<std::string, core::Profile> single = testing::SingleModeReference(
      bootstrap, "events", reference_options, records.size(), dir.Sub("single"));
  REQUIRE(single.size() == 6);

  std::vector<std::unique_ptr<testing::PartitionedInstance>> instances;
  for (int i = 0; i < 2; ++i) {
    instances.push_back(std::make_unique<testing::PartitionedInstance>(
        bootstrap, dir.Sub(absl::StrCat("p", i)), kPartitions, [](PartitionedOptions& o) {
          o.runtime.pipeline.retention_ttl_ms = 30 * kDay;
          // Each partition's clock is its stream time: nothing expires
          // until events past the TTL reach it.
          o.runtime.pipeline.clock_mode = core::PipelineClock::Mode::kEventTime;
        }));
  }
  auto expired = [&] {
    double sum = 0;
    for (const auto& i : instances)
      sum += std::max(0.0, i->Metric("profiled_profiles_expired_total"));
    return sum;
  };
  bool converged = false;
  testing::WaitForChangelogVersions(bootstrap, "profiled.changelog", single,
                                    std::chrono::seconds(90), &converged);
  REQUIRE(converged);
  CHECK(expired() == 0);

  // Day 31 reaches every partition: one new user anchored on each.
  std::vector<std::pair<std::string, std::string>> ticks;
  std::set<int32_t> reached;
  for (int i = 0; reached.size() < static_cast<size_t>(kPartitions); ++i) {
    const std::string user = absl::StrCat("tick-", i);
    const int32_t p =
        cluster::IdentityProtocol::PartitionOf(core::ProfileIdFor({"user_id", user}), kPartitions);
    if (!reached.insert(p).second) continue;
    ticks.emplace_back(user, testing::MakeEvent(absl::StrCat("tick-", i), "product_viewed",
                                                T0 + 31 * kDay, user, "cat2", "sku2")
                                 .SerializeAsString());
  }
  testing::ProduceRecords(bootstrap, "events", ticks);

  // The five idle people expire: every identity of theirs unknown, their
  // profile gone, nothing left expiring.
  std::map<std::string, cluster::Slot> slots;
  auto idle_gone = [&] {
    slots = testing::NewestSlots(bootstrap);
    for (const auto& [user, profile] : single) {
      if (user == active) continue;
      if (Live(slots, profile.id)) return false;
      for (const core::Identity& id : profile.identities) {
        if (Labelled(slots, id)) return false;
      }
    }
    for (const auto& [key, slot] : slots) {
      if (slot.expiry.has_value()) return false;
    }
    return true;
  };
  REQUIRE(testing::WaitUntil(idle_gone, std::chrono::seconds(60)));
  CHECK(testing::WaitUntil([&] { return expired() == 5; }, std::chrono::seconds(10)));
  // The active person and the new users stay, whole.
  const core::Profile& kept = single.at(active);
  CHECK(Live(slots, kept.id));
  for (const core::Identity& id : kept.identities) CHECK(Labelled(slots, id));
  for (const auto& [user, bytes] : ticks) {
    CHECK(Labelled(slots, {"user_id", user}));
    CHECK(Live(slots, core::ProfileIdFor({"user_id", user})));
  }

  // user-1 returns on day 32 with only its user id: a new profile of that
  // event alone, none of its old identities with it.
  const std::string returning = "user-1";
  testing::ProduceRecords(bootstrap, "events",
                          {{"k-back", testing::MakeEvent("back-1", "order_completed",
                                                         T0 + 32 * kDay, returning, "cat3", "sku3")
                                          .SerializeAsString()}});
  const std::map<std::string, core::Profile> fresh = testing::WaitForChangelogVersions(
      bootstrap, "profiled.changelog",
      {{returning, core::Profile{.id = core::ProfileIdFor({"user_id", returning}), .version = 1}}},
      std::chrono::seconds(60), &converged);
  REQUIRE(converged);
  const core::Profile& back = fresh.at(returning);
  CHECK(back.version == 1);
  CHECK(back.counters.orders == 1);
  CHECK(back.first_seen_ms == T0 + 32 * kDay);
  REQUIRE(back.identities.size() == 1);
  CHECK(back.identities[0] == core::Identity{"user_id", returning});
  slots = testing::NewestSlots(bootstrap);
  for (const core::Identity& id : single.at(returning).identities) {
    if (id.kind != "user_id") CHECK_FALSE(Labelled(slots, id));
  }
  for (auto& i : instances) i->Stop();
}

}  // namespace
}  // namespace profiled::pipeline
