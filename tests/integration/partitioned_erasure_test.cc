// Lookups, erasure and consent across partitions, through the broker: two
// partitioned instances over 6 partitions, each answering /v1 (a profile
// owned by the other is a redirect there); an erase request by one of a
// person's identities reaches every slot that held them, the receipt comes
// once every slot acknowledged after its store's purge, the changelog's
// newest records hold nothing of them, later events of theirs are refused,
// everyone else is untouched; a consent update by identity reaches the
// person's profile wherever it lives.
#include <google/protobuf/util/json_util.h>

#include <map>
#include <random>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "profile_lookup.h"
#include "profiled/cluster/changelog.h"
#include "profiled/cluster/protocol_codec.h"
#include "profiled/core/profile_id.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/obs/http_client.h"
#include "profiled/obs/http_server.h"
#include "profiled/v1/control.pb.h"
#include "profiled/v1/profile_update.pb.h"
#include "support/kafka_harness.h"
#include "support/partitioned_instance.h"
#include "support/people.h"
#include "support/test_support.h"

namespace profiled::pipeline {
namespace {

constexpr int64_t T0 = 1'700'000'000'000;
constexpr int32_t kPartitions = 6;

std::string Control(const v1::ControlRequest& request) { return request.SerializeAsString(); }

// GET /v1/profiles/{kind}/{value} on `server`, following redirects to
// other instances; the final response and how many redirects it took.
std::pair<obs::HttpResponse, int> Lookup(std::string server, std::string path) {
  for (int hops = 0; hops < 5; ++hops) {
    absl::StatusOr<obs::HttpResponse> r = obs::HttpGet(server, path);
    REQUIRE_OK(r.status());
    if (r->status != 307) return {*r, hops};
    const std::string& to = r->location;
    REQUIRE(to.rfind("http://127.0.0.1:", 0) == 0);
    const size_t slash = to.find('/', 7);
    REQUIRE(slash != std::string::npos);
    server = to.substr(7, slash - 7);
    path = to.substr(slash);
  }
  FAIL("more than 5 redirects");
  return {};
}

double Sum(const std::vector<std::unique_ptr<testing::PartitionedInstance>>& instances,
           const std::string& metric) {
  double sum = 0;
  for (const auto& i : instances) sum += std::max(0.0, i->Metric(metric));
  return sum;
}

TEST_CASE(
    "partitioned: lookups answer on any instance by redirect, an erasure by any identity empties "
    "every slot of the person after every purge, consent reaches the person's owner",
    "[integration][partitioned][erasure]") {
  std::unique_ptr<kafka::MockCluster> cluster = testing::PartitionedCluster(4, kPartitions);
  REQUIRE_OK(cluster->CreateTopic("control", 2));
  REQUIRE_OK(cluster->CreateTopic("receipts", 1));
  const std::string bootstrap = cluster->bootstrap();

  std::mt19937_64 rng(5);
  const int people = 12;
  const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, people, 240, T0);
  std::vector<std::pair<std::string, std::string>> records;
  for (const v1::InteractionEvent& e : events) {
    records.emplace_back(absl::StrCat("k", rng() % 97), e.SerializeAsString());
  }
  testing::ProduceRecords(bootstrap, "events", records);

  testing::TempDir dir;
  const std::map<std::string, core::Profile> single = testing::SingleModeReference(
      bootstrap, "events", testing::EquivalenceOptions(), events.size(), dir.Sub("single"));
  // Each instance answers /v1 on its own port, advertised on the members
  // topic with the partitions it owns.
  const PipelineOptions pipeline = testing::EquivalenceOptions();
  const identity::IdentityRules rules = *identity::IdentityRules::Create(pipeline.identity);
  const signals::Signals signals(pipeline.signals);
  core::SystemClock wall;
  std::vector<std::unique_ptr<obs::HttpServer>> servers;
  std::vector<std::string> addresses;
  std::vector<std::unique_ptr<testing::PartitionedInstance>> instances;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::unique_ptr<obs::HttpServer>> server =
        obs::HttpServer::Start({.listen = "127.0.0.1:0"});
    REQUIRE_OK(server.status());
    const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
    instances.push_back(std::make_unique<testing::PartitionedInstance>(
        bootstrap, dir.Sub(absl::StrCat("p", i)), kPartitions, [&](PartitionedOptions& o) {
          o.runtime.pipeline.control_topic = "control";
          o.runtime.pipeline.receipts_topic = "receipts";
          o.runtime.lease.advertised_http = address;
        }));
    (*server)->Handle(
        "/v1/profiles/",
        app::PartitionedProfileLookup{instances.back()->runtime(),
                                      {pipeline.scoring, wall, pipeline.clock_mode, rules, signals},
                                      address});
    (*server)->Handle("/v1/merges/",
                      app::PartitionedMergeAuditLookup{instances.back()->runtime(), address});
    servers.push_back(std::move(*server));
    addresses.push_back(address);
  }
  bool converged = false;
  testing::WaitForChangelogVersions(bootstrap, "profiled.changelog", single,
                                    std::chrono::seconds(90), &converged);
  REQUIRE(converged);

  // Every person, asked on either instance by user id, anonymous id or
  // profile id: the single-mode version, some answers after a redirect.
  int redirected = 0;
  CHECK(testing::WaitUntil(
      [&] {  // both instances' heartbeats have carried their partitions
        for (int p = 0; p < kPartitions; ++p) {
          if (!instances[0]->runtime().OwnerAddress(p).has_value()) return false;
        }
        return true;
      },
      std::chrono::seconds(30)));
  for (const auto& [user, profile] : single) {
    const std::string n = user.substr(user.find('-') + 1);
    for (const std::string& path : {absl::StrCat("/v1/profiles/user_id/", user),
                                    absl::StrCat("/v1/profiles/anonymous_id/anon-", n),
                                    absl::StrCat("/v1/profiles/profile_id/", profile.id)}) {
      for (const std::string& server : addresses) {
        CAPTURE(user, path, server);
        auto [response, hops] = Lookup(server, path);
        REQUIRE(response.status == 200);
        v1::ProfileUpdate got;
        REQUIRE(google::protobuf::util::JsonStringToMessage(response.body, &got).ok());
        CHECK(got.version() == profile.version);
        CHECK(got.profile_id() == profile.id);
        redirected += hops;
      }
    }
  }
  CHECK(redirected > 0);  // the partitions are spread: some answers are elsewhere
  CHECK(Lookup(addresses[0], "/v1/profiles/user_id/nobody").first.status == 404);

  // The merge audit, on either instance: each merge the changelog shows is
  // listed under the absorbed profile and under the one it went into.
  int audited = 0;
  for (const auto& [key, slot] : testing::NewestSlots(bootstrap, nullptr)) {
    if (!slot.profile.has_value() || !slot.profile->absorbed_into.has_value()) continue;
    const std::string& into = slot.profile->absorbed_into->id;
    for (const std::string& id : {key, into}) {
      for (const std::string& server : addresses) {
        CAPTURE(key, into, id, server);
        auto [response, hops] = Lookup(server, absl::StrCat("/v1/merges/", id));
        REQUIRE(response.status == 200);
        CHECK(absl::StrContains(response.body,
                                absl::StrCat("\"survivor\":\"", into, "\",\"absorbed\":[\"", key,
                                             "\"],\"rule\":\"merge\"")));
        redirected += hops;
      }
    }
    ++audited;
  }
  CHECK(audited >= people / 2);
  CHECK(Lookup(addresses[1], "/v1/merges/p-unknown").first.body == "[]\n");

  // The person to erase, found as a new owner would: user-3's label, its
  // profile (the survivor), and every identity listed as its member.
  const std::string erased_user = "user-3";
  std::map<std::string, cluster::Slot> before = testing::NewestSlots(bootstrap, nullptr);
  const std::string user_key = core::ProfileIdFor({"user_id", erased_user});
  REQUIRE(before.contains(user_key));
  REQUIRE(before.at(user_key).identity.has_value());
  const std::string person = before.at(user_key).identity->label.id;
  REQUIRE(before.at(person).profile.has_value());
  const std::vector<core::Identity> members = before.at(person).profile->members;
  REQUIRE(members.size() >= 2);  // linked across partitions: the test needs it
  std::set<std::string> person_keys = {person};
  for (const core::Identity& id : members) person_keys.insert(core::ProfileIdFor(id));
  for (const cluster::ProfileRef& ref : before.at(person).profile->absorbed) {
    person_keys.insert(ref.id);
  }

  // Erase by the anonymous id, not the user id the profile is named by;
  // give user-4 a consent decision denying analytics.
  v1::ControlRequest erase;
  erase.mutable_erase()->set_request_id("erase-3");
  erase.mutable_erase()->set_kind("anonymous_id");
  erase.mutable_erase()->set_value("anon-3");
  erase.mutable_erase()->set_requested_ms(absl::ToUnixMillis(absl::Now()));
  v1::ControlRequest consent;
  consent.mutable_consent()->set_request_id("consent-4");
  consent.mutable_consent()->set_kind("user_id");
  consent.mutable_consent()->set_value("user-4");
  (*consent.mutable_consent()->mutable_purposes())["analytics"] = false;
  consent.mutable_consent()->set_decided_ms(T0 + 1000LL * 60'000);
  testing::ProduceRecords(bootstrap, "control", {{"a", Control(erase)}, {"b", Control(consent)}});

  // Both receipts, once every slot is purged: the first says what went and
  // until when internal topics may hold copies; the second only when.
  std::vector<kafka::ConsumedMessage> receipts = testing::ReadTopic(bootstrap, "receipts", 2);
  REQUIRE(receipts.size() == 2);
  v1::ErasureReceipt receipt, purged;
  REQUIRE(receipt.ParseFromArray(receipts[0].payload().data(),
                                 static_cast<int>(receipts[0].payload().size())));
  REQUIRE(purged.ParseFromArray(receipts[1].payload().data(),
                                static_cast<int>(receipts[1].payload().size())));
  CHECK(receipts[0].key() == "erase-3");
  CHECK(receipts[1].key() == "erase-3");
  CHECK(purged.request_id() == "erase-3");
  CHECK(purged.erased_profile_ids().empty());  // nothing that names the person
  CHECK(purged.purged_ms() >= receipt.completed_ms());
  CHECK(receipt.internal_copies_until_ms() ==
        receipt.completed_ms() + 7LL * 24 * 3600 * 1000);  // the default retention
  CHECK(receipt.request_id() == "erase-3");
  CHECK(receipt.identities_erased() == static_cast<int>(members.size()));
  CHECK(receipt.profiles_erased() >= 1);
  CHECK(std::find(receipt.erased_profile_ids().begin(), receipt.erased_profile_ids().end(),
                  person) != receipt.erased_profile_ids().end());
  CHECK(receipt.completed_ms() >= receipt.requested_ms());
  CHECK(Sum(instances, "profiled_erasures_total") == 1);

  // The changelog's newest record of every slot of the person: nothing of
  // them, suppressed.
  std::map<std::string, std::string> states;
  const std::map<std::string, cluster::Slot> after = testing::NewestSlots(bootstrap, &states);
  for (const std::string& key : person_keys) {
    CAPTURE(key);
    REQUIRE(after.contains(key));
    CHECK_FALSE(after.at(key).identity.has_value());
    CHECK_FALSE(after.at(key).profile.has_value());
    CHECK(states.at(key).empty());
    CHECK(after.at(key).suppressed_until_ms > absl::ToUnixMillis(absl::Now()));
    CHECK_FALSE(after.at(key).erasure.has_value());
  }
  // Asked by any of their identities, on either instance: nobody.
  for (const std::string& server : addresses) {
    CHECK(Lookup(server, absl::StrCat("/v1/profiles/user_id/", erased_user)).first.status == 404);
    CHECK(Lookup(server, "/v1/profiles/anonymous_id/anon-3").first.status == 404);
    CHECK(Lookup(server, absl::StrCat("/v1/profiles/profile_id/", person)).first.status == 404);
    CHECK(Lookup(server, absl::StrCat("/v1/merges/", person)).first.body == "[]\n");
  }
  // A tombstone on the output for the person's profile.
  bool tombstoned = false;
  for (const kafka::ConsumedMessage& m : testing::ReadTopicToEnd(bootstrap, "updates")) {
    if (m.key() == person && m.tombstone()) tombstoned = true;
  }
  CHECK(tombstoned);

  // Later events of the erased person (any of their identities) are
  // refused; user-4's are not stored (analytics denied); others apply.
  std::vector<v1::InteractionEvent> late;
  for (int i = 0; i < 6; ++i) {
    v1::InteractionEvent e = events[static_cast<size_t>(i)];
    e.set_event_id(absl::StrCat("late-", i));
    e.set_event_time_ms(T0 + (2000 + i) * 60'000LL);
    e.mutable_identities()->Clear();
    if (i < 2) e.mutable_identities()->set_user_id(erased_user);
    if (i == 2) e.mutable_identities()->set_anonymous_id("anon-3");
    if (i == 3) e.mutable_identities()->set_user_id("user-4");
    if (i >= 4) e.mutable_identities()->set_user_id("user-5");
    late.push_back(e);
  }
  const double applied = Sum(instances, "profiled_events_applied_total");
  testing::ProduceEvents(bootstrap, "events", late);
  CHECK(testing::WaitUntil(
      [&] {
        return Sum(instances, "profiled_erasure_suppressed_events_total") >= 3 &&
               Sum(instances, "profiled_consent_suppressed_events_total") >= 1 &&
               Sum(instances, "profiled_events_applied_total") >= applied + 2;
      },
      std::chrono::seconds(60)));
  for (auto& instance : instances) instance->Stop();
  CHECK(Sum(instances, "profiled_erasure_suppressed_events_total") == 3);
  CHECK(Sum(instances, "profiled_events_applied_total") == applied + 2);

  const std::map<std::string, cluster::Slot> last = testing::NewestSlots(bootstrap, &states);
  for (const std::string& key : person_keys) {
    CHECK_FALSE(last.at(key).identity.has_value());
    CHECK(states.at(key).empty());
  }
  // Everyone else is single mode's people (user-4 with its decision on
  // record, user-5 with two more events).
  std::vector<std::string> users;
  for (const auto& [user, profile] : single) {
    if (user != erased_user) users.push_back(user);
  }
  std::map<std::string, core::Profile> got =
      testing::ProfilesFromChangelog(bootstrap, "profiled.changelog", users);
  CHECK_FALSE(got.contains(erased_user));
  for (const std::string& user : users) {
    CAPTURE(user);
    REQUIRE(got.contains(user));
    const uint64_t extra = user == "user-5" ? 2 : 0;
    CHECK(got.at(user).version == single.at(user).version + extra);
    const bool denied = std::any_of(
        got.at(user).consent.begin(), got.at(user).consent.end(),
        [](const core::ConsentDecision& d) { return d.purpose == "analytics" && !d.granted; });
    CHECK(denied == (user == "user-4"));
  }
}

}  // namespace
}  // namespace profiled::pipeline
