#include "support/people.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "profiled/cluster/changelog.h"
#include "profiled/cluster/protocol_codec.h"
#include "profiled/codec/state_codec.h"
#include "profiled/core/profile_id.h"
#include "support/kafka_harness.h"
#include "support/test_support.h"

namespace profiled::testing {

pipeline::PipelineOptions EquivalenceOptions() {
  pipeline::PipelineOptions o;
  o.output_topic = "updates";
  o.identity.max_per_kind.clear();
  o.identity.max_merges_per_hour = 1000000;
  o.scoring.recent_event_ids = 0;
  return o;
}

void ProduceSpread(const std::string& bootstrap, const std::string& topic,
                   const std::vector<v1::InteractionEvent>& events, size_t from, size_t to,
                   std::mt19937_64& rng) {
  std::vector<std::pair<std::string, std::string>> records;
  for (size_t i = from; i < to; ++i) {
    records.emplace_back(absl::StrCat("k", rng() % 97), events[i].SerializeAsString());
  }
  ProduceRecords(bootstrap, topic, records);
}

std::vector<v1::InteractionEvent> PeopleEvents(std::mt19937_64& rng, int people, int events,
                                               int64_t t0_ms) {
  const std::vector<std::string> types = {"product_viewed", "product_viewed", "added_to_cart",
                                          "order_completed"};
  std::vector<v1::InteractionEvent> out;
  for (int i = 0; i < events; ++i) {
    const int person = static_cast<int>(rng() % static_cast<uint64_t>(people));
    v1::InteractionEvent e =
        MakeEvent(absl::StrCat("e", i), types[rng() % types.size()], t0_ms + i * 60'000, "",
                  absl::StrCat("cat", rng() % 5), absl::StrCat("sku", rng() % 20));
    e.mutable_identities()->clear_user_id();
    const uint64_t stage = rng() % 4;  // anonymous, logging in, logged in, giving an email
    if (stage <= 1) e.mutable_identities()->set_anonymous_id(absl::StrCat("anon-", person));
    if (stage >= 1) e.mutable_identities()->set_user_id(absl::StrCat("user-", person));
    if (stage == 3) e.mutable_identities()->set_email(absl::StrCat("p", person, "@example.com"));
    if (e.type() == "order_completed") {
      e.mutable_commerce()->set_revenue(10.0 + static_cast<double>(rng() % 90));
    }
    out.push_back(e);
  }
  return out;
}

void CheckSameProfile(const core::Profile& got, const core::Profile& want,
                      const core::ScoringOptions& scoring, int64_t now_ms) {
  CHECK(got.id == want.id);  // the same survivor names the person in both modes
  CHECK(got.version == want.version);
  CHECK(got.counters.product_views == want.counters.product_views);
  CHECK(got.counters.cart_adds == want.counters.cart_adds);
  CHECK(got.counters.orders == want.counters.orders);
  CHECK(RelativelyClose(got.counters.revenue, want.counters.revenue));
  CHECK(got.first_seen_ms == want.first_seen_ms);
  CHECK(got.last_seen_ms == want.last_seen_ms);
  std::set<std::string> got_ids, want_ids;
  for (const core::Identity& id : got.identities) got_ids.insert(id.kind + ":" + id.value);
  for (const core::Identity& id : want.identities) want_ids.insert(id.kind + ":" + id.value);
  CHECK(got_ids == want_ids);
  for (size_t f = 0; f < core::kFamilyCount; ++f) {
    const auto got_ranked = got.families[f].RankedAt(now_ms, scoring.families[f]);
    const auto want_ranked = want.families[f].RankedAt(now_ms, scoring.families[f]);
    CHECK(got_ranked.size() == want_ranked.size());
    if (got_ranked.size() != want_ranked.size()) continue;
    for (size_t i = 0; i < got_ranked.size(); ++i) {
      CHECK(got_ranked[i].key == want_ranked[i].key);
      CHECK(RelativelyClose(got_ranked[i].value, want_ranked[i].value));
    }
  }
}

std::map<std::string, core::Profile> SingleModeReference(const std::string& bootstrap,
                                                         const std::string& topic,
                                                         const pipeline::PipelineOptions& options,
                                                         size_t events,
                                                         const std::string& store_path) {
  PipelineRunner runner(store_path, options, {topic}, bootstrap, bootstrap);
  REQUIRE(WaitUntil([&] {
    uint64_t applied = 0;
    (void)runner.store().ForEachProfile([&](std::string_view, std::string_view bytes) {
      absl::StatusOr<core::Profile> p = codec::DecodeProfileState(bytes);
      if (p.ok()) applied += p->version;
      return true;
    });
    return applied == events;
  }));
  runner.Stop();
  std::map<std::string, core::Profile> out;
  REQUIRE_OK(runner.store().ForEachProfile([&](std::string_view, std::string_view bytes) {
    absl::StatusOr<core::Profile> p = codec::DecodeProfileState(bytes);
    REQUIRE_OK(p.status());
    for (const core::Identity& id : p->identities) {
      if (id.kind == "user_id") out[id.value] = *p;
    }
    return true;
  }));
  return out;
}

std::map<std::string, core::Profile> ProfilesFromChangelog(const std::string& bootstrap,
                                                           const std::string& topic,
                                                           const std::vector<std::string>& users) {
  std::map<std::string, std::string> slots;
  for (const kafka::ConsumedMessage& m : ReadTopicToEnd(bootstrap, topic)) {
    if (m.key() != cluster::kMarkerKey) slots[std::string(m.key())] = std::string(m.payload());
  }
  auto slot_of = [&](const std::string& key, std::string* state) -> std::optional<cluster::Slot> {
    auto it = slots.find(key);
    if (it == slots.end()) return std::nullopt;
    absl::StatusOr<cluster::Slot> slot = cluster::ParseSlot(it->second, state);
    return slot.ok() ? std::optional<cluster::Slot>(*slot) : std::nullopt;
  };
  std::map<std::string, core::Profile> out;
  for (const std::string& user : users) {
    std::optional<cluster::Slot> slot = slot_of(core::ProfileIdFor({"user_id", user}), nullptr);
    if (!slot.has_value() || !slot->identity.has_value()) continue;
    std::string key = slot->identity->label.id;
    for (int hops = 0; hops < 100; ++hops) {
      std::string state;
      slot = slot_of(key, &state);
      if (!slot.has_value() || !slot->profile.has_value()) break;
      if (slot->profile->absorbed_into.has_value()) {
        key = slot->profile->absorbed_into->id;
        continue;
      }
      absl::StatusOr<core::Profile> profile = codec::DecodeProfileState(state);
      if (profile.ok()) out[user] = *profile;
      break;
    }
  }
  return out;
}

std::map<std::string, core::Profile> WaitForChangelogVersions(
    const std::string& bootstrap, const std::string& topic,
    const std::map<std::string, core::Profile>& reference, std::chrono::seconds timeout,
    bool* converged) {
  std::vector<std::string> users;
  for (const auto& [user, profile] : reference) users.push_back(user);
  std::map<std::string, core::Profile> got;
  *converged = WaitUntil(
      [&] {
        got = ProfilesFromChangelog(bootstrap, topic, users);
        if (got.size() != users.size()) return false;
        for (const std::string& user : users) {
          if (got.at(user).version != reference.at(user).version) return false;
        }
        return true;
      },
      timeout);
  return got;
}

void CheckSamePeople(const std::map<std::string, core::Profile>& got,
                     const std::map<std::string, core::Profile>& reference,
                     const core::ScoringOptions& scoring, int64_t now_ms) {
  for (const auto& [user, want] : reference) {
    CAPTURE(user);
    REQUIRE(got.contains(user));
    CheckSameProfile(got.at(user), want, scoring, now_ms);
  }
}

}  // namespace profiled::testing
