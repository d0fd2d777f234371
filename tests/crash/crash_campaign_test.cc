// The kill -9 proof. profiled runs as a separate process against a separate
// devbroker process and is killed with SIGKILL again and again, at random
// moments and at failpoints between the WriteBatch and the publish, then
// restarted. Afterwards every stored profile must equal a brute-force fold of
// the input (every score, every counter, every version) and the last update
// per key on the output topic must equal the stored profile.
//
// Seeded: PROFILED_CRASH_SEED=<n> reruns one campaign; the seed is printed.
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "profiled/codec/state_codec.h"
#include "profiled/codec/update_codec.h"
#include "profiled/ingest/rees46.h"
#include "profiled/store/profile_store.h"
#include "support/kafka_harness.h"
#include "support/process.h"
#include "support/reference_fold.h"
#include "support/test_support.h"

namespace profiled {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int64_t kHalfLifeMs = 3'600'000;
constexpr int kCopies = 4;          // 4 x 5,019 real rows = 20,076 events
constexpr int kPartitions = 12;

// The person an event belongs to (its user id, or the one its cookie becomes).
std::string PersonOf(const v1::InteractionEvent& e) {
  const std::string& anon = e.identities().anonymous_id();
  return e.identities().user_id().empty() ? anon.substr(5) : e.identities().user_id();
}

// The REES46 sample, copied kCopies times as different people, shuffled so
// arrival order is not event-time order. In the first two copies every
// person browses anonymously first: their events before the middle carry
// only a cookie ("anon-<user>"), and an identify event at their first event
// time ties cookie and user id together — a merge whenever it arrives after
// both profiles exist.
std::vector<v1::InteractionEvent> CampaignEvents(uint64_t seed) {
  std::ifstream in(PROFILED_SOURCE_DIR "/deploy/demo/data/rees46-2019oct-head/events.csv");
  std::stringstream text;
  text << in.rdbuf();
  const std::string csv = text.str();
  std::vector<v1::InteractionEvent> base;
  ingest::Rees46Reader reader(csv);
  v1::InteractionEvent e;
  while (reader.Next(e)) base.push_back(e);
  std::map<std::string, int64_t> first_seen;
  for (const v1::InteractionEvent& ev : base) {
    auto [it, fresh] = first_seen.try_emplace(ev.identities().user_id(), ev.event_time_ms());
    if (!fresh) it->second = std::min(it->second, ev.event_time_ms());
  }
  std::vector<v1::InteractionEvent> events;
  for (int copy = 0; copy < kCopies; ++copy) {
    const bool anonymous_first = copy < 2;
    size_t i = 0;
    for (v1::InteractionEvent ev : base) {
      const std::string user = absl::StrCat(ev.identities().user_id(), "-c", copy);
      ev.set_event_id(absl::StrCat(ev.event_id(), "-c", copy));
      if (anonymous_first && i++ < base.size() / 2) {
        ev.mutable_identities()->clear_user_id();
        ev.mutable_identities()->set_anonymous_id("anon-" + user);
      } else {
        ev.mutable_identities()->set_user_id(user);
      }
      events.push_back(std::move(ev));
    }
    if (!anonymous_first) continue;
    for (const auto& [user_id, at] : first_seen) {
      v1::InteractionEvent identify;
      const std::string user = absl::StrCat(user_id, "-c", copy);
      identify.set_event_id("identify-" + user);
      identify.set_type("identify");
      identify.set_event_time_ms(at);
      identify.set_channel("web");
      identify.mutable_identities()->set_user_id(user);
      identify.mutable_identities()->set_anonymous_id("anon-" + user);
      events.push_back(std::move(identify));
    }
  }
  std::mt19937_64 rng(seed);
  std::shuffle(events.begin(), events.end(), rng);
  return events;
}

std::string WriteConfig(const testing::TempDir& dir, const std::string& bootstrap, int run) {
  const std::string path = dir.Sub(absl::StrCat("run-", run, ".yaml"));
  std::ofstream out(path);
  // A fresh group per run: the broker would otherwise hold the killed
  // member's partitions for its session timeout. Positions come from the store.
  // Event-id de-duplication is off: it would hide a batch applied twice.
  // Pruning is off too (top_k far above any person's keys), which lets an
  // update grow beyond a stock topic's limit on paper: the output limit is
  // raised to match, as the configuration check demands.
  out << "kafka: {bootstrap: \"" << bootstrap << "\"}\n"
      << "input: {topics: [events], group_id: crash-run-" << run
      << ", batch_max_events: 150, recent_event_ids: 0}\n"
      << "output: {topic: updates, dead_letter_topic: deadletters, max_message_bytes: 16000000}\n"
      << "store: {path: " << dir.Sub("store") << "}\n"
      << "http: {listen: \"127.0.0.1:0\"}\n"
      << "clock: {mode: event_time}\n"
      << "scoring:\n  families:\n";
  for (core::Family f : core::kAllFamilies) {
    out << "    " << core::FamilyName(f) << ": {half_life: 1h, top_k: 5000, epsilon: 0}\n";
  }
  return path;
}

TEST_CASE("kill -9 at any moment loses and double-counts nothing", "[crash]") {
  const char* env_seed = std::getenv("PROFILED_CRASH_SEED");
  const uint64_t seed = env_seed != nullptr ? std::strtoull(env_seed, nullptr, 10) : 20261122;
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  testing::TempDir dir;

  testing::ChildProcess broker(
      {DEVBROKER_BIN, "--topic", absl::StrCat("events:", kPartitions), "--topic",
       absl::StrCat("updates:", kPartitions), "--topic", "deadletters:1"},
      {}, dir.Sub("broker.out"), dir.Sub("broker.err"));
  REQUIRE(testing::WaitForFileContains(dir.Sub("broker.out"), "\n", seconds(20)));
  std::string bootstrap = testing::ReadFile(dir.Sub("broker.out"));
  bootstrap = bootstrap.substr(0, bootstrap.find('\n'));

  const std::vector<v1::InteractionEvent> events = CampaignEvents(seed);
  REQUIRE(events.size() >= 20000);
  const std::map<std::string, testing::ExpectedProfile> expected =
      testing::FoldByPerson(events, {}, PersonOf);
  testing::ProduceEvents(bootstrap, "events", events);

  // Kills: failpoints between the WriteBatch and the publish, and SIGKILL
  // from outside once the run has applied a seeded number of events (read
  // from its /metrics), so every kill lands mid-stream. Bounded per run so
  // that eight runs never finish the input: 8 x 1,800 < 20,076.
  struct Kill {
    std::string failpoint;  // empty: external SIGKILL
    int count = 0;          // failpoint hits / events applied before the kill
  };
  std::vector<Kill> kills = {{"after_commit", 0}, {"before_commit", 0}, {"", 0},
                             {"after_publish", 0}, {"", 0},             {"after_commit", 0},
                             {"", 0},              {"after_publish", 0}};
  for (Kill& k : kills) {
    k.count = k.failpoint.empty() ? std::uniform_int_distribution<int>(200, 1800)(rng)
                                  : std::uniform_int_distribution<int>(2, 12)(rng);
  }
  int run = 0, kills_done = 0;
  for (const Kill& k : kills) {
    ++run;
    const std::string out = dir.Sub(absl::StrCat("run-", run, ".out"));
    const std::string err = dir.Sub(absl::StrCat("run-", run, ".err"));
    std::vector<std::string> env;
    if (!k.failpoint.empty()) {
      env.push_back(absl::StrCat("PROFILED_FAILPOINT=", k.failpoint, ":", k.count));
    }
    testing::ChildProcess p({PROFILED_BIN, "--config", WriteConfig(dir, bootstrap, run)}, env, out,
                            err);
    INFO("run " << run << " failpoint '" << k.failpoint << "' count " << k.count);
    if (k.failpoint.empty()) {
      REQUIRE(testing::WaitForFileContains(err, "on port ", seconds(60)));
      const std::string log = testing::ReadFile(err);
      const std::string port = log.substr(log.find("on port ") + 8, 5);
      const std::string http = "127.0.0.1:" + port.substr(0, port.find('\n'));
      REQUIRE(testing::WaitUntil(
          [&] { return testing::ScrapeCounter(http, "profiled_events_applied_total") >= k.count; },
          seconds(60)));
      p.Signal(SIGKILL);
    }
    std::optional<int> status = p.Wait(seconds(120));
    INFO(testing::ReadFile(err));
    REQUIRE(status == std::optional<int>(128 + SIGKILL));
    ++kills_done;
  }

  // Final run to completion, then a clean restart that must find nothing to do.
  ++run;
  {
    testing::ChildProcess p({PROFILED_BIN, "--config", WriteConfig(dir, bootstrap, run), "--once"},
                            {}, dir.Sub("final.out"), dir.Sub("final.err"));
    std::optional<int> status = p.Wait(seconds(300));
    INFO(testing::ReadFile(dir.Sub("final.err")));
    REQUIRE(status == std::optional<int>(0));
  }
  ++run;
  {
    testing::ChildProcess p({PROFILED_BIN, "--config", WriteConfig(dir, bootstrap, run), "--once"},
                            {}, dir.Sub("restart.out"), dir.Sub("restart.err"));
    REQUIRE(p.Wait(seconds(120)) == std::optional<int>(0));
    const std::string summary = testing::ReadFile(dir.Sub("restart.out"));
    INFO(summary);
    CHECK(summary.find("events consumed:   0\n") != std::string::npos);
  }

  // 1. Every person is one stored profile equal to the brute-force fold of
  //    their events, found through the identity graph.
  core::ScoringOptions scoring;
  const signals::Signals signals({});
  for (core::Family f : core::kAllFamilies) {
    scoring.family(f) = core::FamilyOptions{double(kHalfLifeMs), 100000, 0.0};
  }
  std::map<std::string, core::Profile> stored;
  std::map<std::string, std::string> profile_of_person;
  {
    store::StoreOptions options;
    options.path = dir.Sub("store");
    auto store = store::ProfileStore::Open(options);
    REQUIRE_OK(store.status());
    CHECK((*store)->OutboxDepth() == 0);
    REQUIRE_OK((*store)->ForEachProfile([&](std::string_view id, std::string_view bytes) {
      auto p = codec::DecodeProfileState(bytes);
      REQUIRE_OK(p.status());
      stored.emplace(std::string(id), *std::move(p));
      return true;
    }));
    // The count the store keeps with every batch survived every kill exactly.
    CHECK((*store)->Stats().profiles == stored.size());
    std::vector<std::string> keys;
    for (const auto& [person, want] : expected) keys.push_back(store::IdentityKey("user_id", person));
    std::vector<std::optional<std::string>> ids;
    REQUIRE_OK((*store)->MultiGetIdentities(keys, ids));
    size_t i = 0;
    for (const auto& [person, want] : expected) {
      REQUIRE(ids[i].has_value());
      profile_of_person[person] = *ids[i++];
    }
  }
  REQUIRE(stored.size() == expected.size());
  size_t state_mismatches = 0, scores_checked = 0;
  for (const auto& [person, want] : expected) {
    const std::string& id = profile_of_person.at(person);
    auto it = stored.find(id);
    REQUIRE(it != stored.end());
    const v1::ProfileUpdate view =
        codec::BuildProfileUpdate(it->second, it->second.last_seen_ms, scoring, signals);
    const std::vector<std::string> bad = testing::CompareUpdate(view, want, kHalfLifeMs);
    if (!bad.empty()) {
      ++state_mismatches;
      UNSCOPED_INFO("stored " << id << ": " << absl::StrJoin(bad, "; "));
    }
    for (const auto& [family, keys] : want.scores) scores_checked += keys.size();
  }
  CHECK(state_mismatches == 0);

  // 2. The last update per key on the output topic equals the stored
  //    profile; every absorbed profile's key ends with a tombstone.
  const std::vector<kafka::ConsumedMessage> out = testing::ReadTopicToEnd(bootstrap, "updates");
  std::map<std::string, v1::ProfileUpdate> last;
  std::map<std::string, std::string> last_bytes;
  std::map<std::string, bool> ends_in_tombstone;
  for (const kafka::ConsumedMessage& m : out) {
    ends_in_tombstone[std::string(m.key())] = m.tombstone();
    if (m.tombstone()) continue;
    v1::ProfileUpdate u;
    REQUIRE(u.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())));
    auto it = last.find(u.profile_id());
    if (it == last.end() || u.version() >= it->second.version()) {
      last_bytes[u.profile_id()] = std::string(m.payload());
      last[u.profile_id()] = std::move(u);
    }
  }
  size_t output_mismatches = 0;
  for (const auto& [id, profile] : stored) {
    auto it = last.find(id);
    if (it == last.end()) {
      ++output_mismatches;
      UNSCOPED_INFO("no update on the output for " << id);
      continue;
    }
    const std::string want =
        codec::BuildProfileUpdate(profile, it->second.as_of_ms(), scoring, signals).SerializeAsString();
    if (want != last_bytes[id]) {
      ++output_mismatches;
      UNSCOPED_INFO("last update of " << id << " (version " << it->second.version()
                                      << ") differs from the stored profile (version "
                                      << profile.version << ")");
    }
  }
  size_t merged_away = 0;
  for (const auto& [key, tombstoned] : ends_in_tombstone) {
    if (stored.count(key) > 0) {
      if (tombstoned) {
        ++output_mismatches;
        UNSCOPED_INFO("live profile " << key << " ends in a tombstone");
      }
    } else if (!tombstoned) {
      ++output_mismatches;
      UNSCOPED_INFO("absorbed profile " << key << " has no final tombstone");
    } else {
      ++merged_away;
    }
  }
  CHECK(output_mismatches == 0);
  CHECK(merged_away >= 100);  // merges really happened between the kills (188 with the default seed)
  CHECK(kills_done >= 5);

  WARN("crash campaign seed " << seed << ": " << events.size() << " events, " << expected.size()
                              << " profiles, " << merged_away << " merged away, " << kills_done
                              << " kill -9, " << out.size()
                              << " updates on the output, " << scores_checked
                              << " scores checked; mismatches: state " << state_mismatches
                              << ", output " << output_mismatches);
  broker.Signal(SIGTERM);
  broker.Wait(seconds(10));
}

}  // namespace
}  // namespace profiled
