#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "profiled/core/profile.h"
#include "profiled/core/profile_id.h"
#include "profiled/identity/identity_rules.h"
#include "profiled/identity/resolver.h"
#include "support/test_support.h"

namespace profiled::identity {
namespace {

using core::Identity;
using core::Profile;
constexpr int64_t t0 = 1'569'888'000'000;

IdentityRules Rules(IdentityOptions options = {}) {
  auto r = IdentityRules::Create(options);
  REQUIRE_OK(r.status());
  return *std::move(r);
}

// An identity graph and its records in memory, for the resolver.
class FakeGraph : public IdentityView {
 public:
  // A profile founded by its first identity (named after it, as the
  // pipeline names profiles), known to the test as `label`.
  IdentityRecord& Add(const std::string& label, std::vector<Identity> ids) {
    const std::string id = core::ProfileIdFor(ids.front());
    labels_[label] = id;
    IdentityRecord p{id, ids, {}};
    for (const Identity& i : ids) graph_[i.kind + ":" + i.value] = id;
    return profiles_[id] = std::move(p);
  }
  const std::string& Id(const std::string& label) const { return labels_.at(label); }
  std::optional<std::string> ProfileOf(const Identity& i) override {
    auto it = graph_.find(i.kind + ":" + i.value);
    if (it == graph_.end()) return std::nullopt;
    return it->second;
  }
  const IdentityRecord* Find(const std::string& id) override { return &profiles_.at(id); }

 private:
  std::map<std::string, std::string> graph_;
  std::map<std::string, IdentityRecord> profiles_;
  std::map<std::string, std::string> labels_;
};

TEST_CASE("emails are trimmed, lower-cased and kept only as a SHA-256", "[identity]") {
  // sha256("jane@example.com")
  const std::string want = "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d";
  CHECK(EmailSha256("  Jane@Example.COM ") == want);
  v1::InteractionEvent e;
  e.mutable_identities()->set_email(" Jane@Example.com");
  e.mutable_identities()->set_anonymous_id("a1");
  auto ids = Rules().IdentitiesOf(e, nullptr);
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] == Identity{"email_sha256", want});  // ranked before anonymous_id
  CHECK(ids[1] == Identity{"anonymous_id", "a1"});

  IdentityOptions raw;
  raw.store_raw_email = true;
  auto with_raw = Rules(raw).IdentitiesOf(e, nullptr);
  CHECK(std::find(with_raw.begin(), with_raw.end(), Identity{"email", "jane@example.com"}) !=
        with_raw.end());
}

TEST_CASE("blocked values and patterns never become identities", "[identity]") {
  IdentityOptions options;
  options.blocked_patterns = {"^test-.*"};
  IdentityRules rules = Rules(options);
  for (const char* junk : {"", "null", "undefined", "Anonymous", " UNKNOWN ", "0", "-1",
                           "00000000-0000-0000-0000-000000000000", "test-123"}) {
    INFO(junk);
    CHECK(rules.IsBlocked(junk));
  }
  CHECK_FALSE(rules.IsBlocked("user-42"));
  v1::InteractionEvent e;
  e.mutable_identities()->set_anonymous_id("undefined");
  e.mutable_identities()->set_device_id("0");
  e.mutable_identities()->set_user_id("u1");
  std::vector<Identity> blocked;
  auto ids = rules.IdentitiesOf(e, &blocked);
  CHECK(ids == std::vector<Identity>{{"user_id", "u1"}});
  CHECK(blocked.size() == 2);
  CHECK_FALSE(IdentityRules::Create({.blocked_patterns = {"(unclosed"}}).ok());
}

TEST_CASE("an event with unknown identities creates a profile named after the best one",
          "[identity][resolver]") {
  IdentityRules rules = Rules();
  FakeGraph g;
  Resolution r = Resolver(rules).Resolve({{"user_id", "u1"}, {"anonymous_id", "a1"}}, false, t0, g);
  CHECK(r.create);
  CHECK(r.target == core::ProfileIdFor(Identity{"user_id", "u1"}));
  CHECK(r.absorbed.empty());
  CHECK(r.link.size() == 2);
}

TEST_CASE("identities of two profiles in one event merge them into the survivor",
          "[identity][resolver]") {
  IdentityRules rules = Rules();
  FakeGraph g;
  g.Add("p-anon", {{"anonymous_id", "a1"}});
  g.Add("p-user", {{"user_id", "u1"}});
  Resolution r = Resolver(rules).Resolve({{"user_id", "u1"}, {"anonymous_id", "a1"}}, false, t0, g);
  CHECK_FALSE(r.create);
  CHECK(r.target == g.Id("p-user"));  // user_id outranks anonymous_id, though seen later
  CHECK(r.absorbed == std::vector<std::string>{g.Id("p-anon")});
  CHECK(r.refusals.empty());
}

TEST_CASE("two user ids never merge by co-occurrence and the refusal is reported",
          "[identity][resolver]") {
  IdentityRules rules = Rules();
  FakeGraph g;
  g.Add("p-1", {{"user_id", "u1"}, {"anonymous_id", "shared"}});
  g.Add("p-2", {{"user_id", "u2"}});
  // u2 logs in on u1's browser: the event belongs to u2, not to u1's profile.
  Resolution r =
      Resolver(rules).Resolve({{"user_id", "u2"}, {"anonymous_id", "shared"}}, false, t0, g);
  CHECK(r.target == g.Id("p-2"));
  CHECK(r.absorbed.empty());
  REQUIRE(r.refusals.size() == 1);
  CHECK(r.refusals[0].rule == RefusalRule::kKindLimit);
  CHECK(r.refusals[0].other_profile == g.Id("p-1"));

  // A brand-new user id on a known browser starts its own profile.
  Resolution fresh =
      Resolver(rules).Resolve({{"user_id", "u3"}, {"anonymous_id", "shared"}}, false, t0, g);
  CHECK(fresh.create);
  CHECK(fresh.target == core::ProfileIdFor(Identity{"user_id", "u3"}));
  CHECK(fresh.link == std::vector<Identity>{{"user_id", "u3"}});
  REQUIRE(fresh.refusals.size() == 1);
  CHECK(fresh.refusals[0].rule == RefusalRule::kKindLimit);
}

TEST_CASE("an explicit alias merges even two user ids", "[identity][resolver]") {
  IdentityRules rules = Rules();
  FakeGraph g;
  g.Add("p-old", {{"user_id", "old-id"}});
  g.Add("p-new", {{"user_id", "new-id"}});
  Resolution r =
      Resolver(rules).Resolve({{"user_id", "new-id"}, {"user_id", "old-id"}}, true, t0, g);
  CHECK(r.refusals.empty());
  // Same founding rank: the smaller id survives, whichever came first.
  const auto [small, large] = std::minmax(g.Id("p-old"), g.Id("p-new"));
  CHECK(r.target == small);
  CHECK(r.absorbed == std::vector<std::string>{large});
  v1::InteractionEvent alias;
  alias.set_type("alias");
  alias.set_previous_id("old-id");
  CHECK(Resolver(rules).PreviousIdentity(alias, g) == Identity{"user_id", "old-id"});
  alias.set_previous_id("anon-7");
  CHECK(Resolver(rules).PreviousIdentity(alias, g) == Identity{"anonymous_id", "anon-7"});
  alias.set_previous_id("undefined");
  CHECK_FALSE(Resolver(rules).PreviousIdentity(alias, g).has_value());
}

TEST_CASE("the merge-rate cap refuses merges beyond it within an hour", "[identity][resolver]") {
  IdentityOptions options;
  options.max_merges_per_hour = 2;
  IdentityRules rules = Rules(options);
  FakeGraph g;
  IdentityRecord& hub = g.Add("p-hub", {{"user_id", "u1"}});
  hub.merge_times_ms = {t0 - 10'000, t0 - 5'000};  // two merges in the last hour
  g.Add("p-x", {{"anonymous_id", "x"}});
  Resolution r = Resolver(rules).Resolve({{"user_id", "u1"}, {"anonymous_id", "x"}}, false, t0, g);
  CHECK(r.target == g.Id("p-hub"));
  CHECK(r.absorbed.empty());
  REQUIRE(r.refusals.size() == 1);
  CHECK(r.refusals[0].rule == RefusalRule::kMergeRate);
  // An hour later the window has passed.
  Resolution later = Resolver(rules).Resolve({{"user_id", "u1"}, {"anonymous_id", "x"}}, false,
                                             t0 + kMergeRateWindowMs, g);
  CHECK(later.absorbed == std::vector<std::string>{g.Id("p-x")});
}

TEST_CASE("the survivor does not depend on the order candidates are seen", "[identity][property]") {
  IdentityRules rules = Rules();
  std::mt19937_64 rng(11);
  const char* kinds[] = {"user_id", "email_sha256", "device_id", "anonymous_id", "crm_id"};
  for (int round = 0; round < 500; ++round) {
    CAPTURE(round);
    std::vector<IdentityRecord> profiles;
    const int n = std::uniform_int_distribution<int>(2, 6)(rng);
    for (int i = 0; i < n; ++i) {
      // Founded by one identity (ranks tie often), or named some other way.
      const Identity founder{kinds[rng() % 5], std::to_string(rng() % 4) + "-" + std::to_string(i)};
      IdentityRecord p{
          rng() % 8 == 0 ? "p-legacy-" + std::to_string(i) : core::ProfileIdFor(founder),
          {founder}};
      profiles.push_back(p);
    }
    std::vector<const IdentityRecord*> view;
    for (const IdentityRecord& p : profiles) view.push_back(&p);
    const IdentityRecord* chosen = rules.ChooseSurvivor(view);
    const std::string first = chosen->profile_id;
    const size_t best_rank = rules.FoundingRank(*chosen);
    for (int shuffle = 0; shuffle < 5; ++shuffle) {
      std::shuffle(view.begin(), view.end(), rng);
      CHECK(rules.ChooseSurvivor(view)->profile_id == first);
    }
    for (const IdentityRecord* p : view) {
      const size_t rank = rules.FoundingRank(*p);
      CHECK((rank > best_rank || (rank == best_rank && p->profile_id >= first)));
    }
    // Growth never changes the choice: a decider holding newer records (more
    // identities, of any kind) picks the same survivor (docs/scaling.md).
    for (IdentityRecord& p : profiles) {
      p.identities.push_back({kinds[rng() % 5], "linked-" + std::to_string(rng() % 100)});
    }
    CHECK(rules.ChooseSurvivor(view)->profile_id == first);
  }
}

TEST_CASE("the survivor is ranked by the identity that founded it, not what it linked since",
          "[identity][resolver]") {
  IdentityRules rules = Rules();
  FakeGraph g;
  // Founded by a browser, later linked to a user id; the other by an email.
  g.Add("p-browser", {{"anonymous_id", "a1"}, {"user_id", "u1"}});
  g.Add("p-email", {{"email_sha256", "e1"}});
  Resolution r = Resolver(rules).Resolve({{"user_id", "u1"}, {"email_sha256", "e1"}}, false, t0, g);
  CHECK(r.refusals.empty());
  CHECK(r.target == g.Id("p-email"));
  CHECK(r.absorbed == std::vector<std::string>{g.Id("p-browser")});
  CHECK(rules.FoundingRank(*g.Find(g.Id("p-browser"))) == rules.KindRank("anonymous_id"));
}

TEST_CASE("a profile holding two user ids through an alias still merges and links other kinds",
          "[identity][resolver]") {
  IdentityRules rules = Rules();
  FakeGraph g;
  // u1 and u2 were joined by an explicit alias; a second device browsed alone.
  g.Add("p-person", {{"user_id", "u1"}, {"user_id", "u2"}, {"anonymous_id", "a1"}});
  g.Add("p-device2", {{"anonymous_id", "a2"}});
  Resolution r = Resolver(rules).Resolve({{"user_id", "u2"}, {"anonymous_id", "a2"}}, false, t0, g);
  CHECK(r.refusals.empty());
  CHECK(r.target == g.Id("p-person"));
  CHECK(r.absorbed == std::vector<std::string>{g.Id("p-device2")});
  // A new device id links; a third user id still does not.
  Resolution linked =
      Resolver(rules).Resolve({{"user_id", "u1"}, {"device_id", "d9"}}, false, t0, g);
  CHECK(linked.refusals.empty());
  CHECK(linked.link == std::vector<Identity>{{"device_id", "d9"}});
  g.Add("p-other", {{"user_id", "u3"}});
  Resolution third = Resolver(rules).Resolve({{"user_id", "u1"}, {"user_id", "u3"}}, false, t0, g);
  CHECK(third.absorbed.empty());
  REQUIRE(third.refusals.size() == 1);
  CHECK(third.refusals[0].rule == RefusalRule::kKindLimit);
}

// The guardrail rule of docs/identity.md, transcribed on its own: a link or
// merge is refused when the profile it would make holds more identities of a
// kind (or in total) than the limit AND more than any profile it joins held
// alone, or when the merges into it within the hour would exceed the cap.
class DocumentedRule {
 public:
  explicit DocumentedRule(const IdentityOptions& o) : o_(o) {}
  // An explicit alias is held to max_identities alone.
  bool Allows(const std::vector<const IdentityRecord*>& parts, const std::vector<Identity>& extra,
              size_t merges, int64_t now, bool alias = false) const {
    std::map<std::string, std::set<std::string>> all;
    std::map<std::string, size_t> largest;
    size_t largest_total = 0;
    for (const IdentityRecord* p : parts) {
      std::map<std::string, size_t> mine;
      for (const Identity& id : p->identities) {
        all[id.kind].insert(id.value);
        mine[id.kind]++;
      }
      for (const auto& [k, n] : mine) largest[k] = std::max(largest[k], n);
      largest_total = std::max(largest_total, p->identities.size());
    }
    for (const Identity& id : extra) all[id.kind].insert(id.value);
    size_t total = 0;
    for (const auto& [kind, values] : all) {
      total += values.size();
      auto lim = o_.max_per_kind.find(kind);
      const size_t limit = lim == o_.max_per_kind.end() ? o_.max_identities : lim->second;
      if (!alias && values.size() > limit && values.size() > largest[kind]) return false;
    }
    if (total > o_.max_identities && total > largest_total) return false;
    if (merges == 0 || alias) return true;
    size_t recent = merges;
    for (const IdentityRecord* p : parts) {
      for (int64_t t : p->merge_times_ms) recent += t > now - kMergeRateWindowMs;
    }
    return recent <= o_.max_merges_per_hour;
  }

 private:
  IdentityOptions o_;
};

// A graph the pipeline's own ApplyResolution carries each resolution out on.
class ModelGraph : public IdentityGraph {
 public:
  std::optional<std::string> ProfileOf(const Identity& i) override {
    auto it = graph_.find({i.kind, i.value});
    if (it == graph_.end()) return std::nullopt;
    return it->second;
  }
  const IdentityRecord* Find(const std::string& id) override { return &records_.at(id); }
  void Link(const Identity& i, const std::string& id) override { graph_[{i.kind, i.value}] = id; }
  IdentityRecord& Record(const std::string& id) override {
    auto [it, inserted] = records_.try_emplace(id);
    it->second.profile_id = id;
    return it->second;
  }
  IdentityRecord TakeRecord(const std::string& id) override {
    IdentityRecord r = records_.at(id);
    records_.erase(id);
    return r;
  }
  const std::map<std::string, IdentityRecord>& records() const { return records_; }

 private:
  std::map<std::pair<std::string, std::string>, std::string> graph_;
  std::map<std::string, IdentityRecord> records_;
};

TEST_CASE("random link, alias and merge sequences refuse exactly what the documented rule refuses",
          "[identity][property]") {
  IdentityOptions options;
  options.max_per_kind = {{"user_id", 1}, {"device_id", 2}};
  options.max_identities = 6;
  options.max_merges_per_hour = 3;
  IdentityRules rules = Rules(options);
  Resolver resolver(rules);
  DocumentedRule rule(options);
  const std::vector<std::pair<std::string, int>> universe = {
      {"user_id", 5}, {"anonymous_id", 8}, {"device_id", 5}, {"email_sha256", 4}};
  size_t refusals = 0, merges = 0, aliases_over_limit = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    ModelGraph g;
    int64_t now = t0;
    for (int step = 0; step < 60; ++step) {
      CAPTURE(step);
      now += static_cast<int64_t>(rng() % 1'200'000);
      const bool alias = rng() % 8 == 0;
      std::vector<Identity> ids;
      const int n = alias ? 2 : 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < n; ++i) {
        const auto& [kind, count] = alias ? universe[0] : universe[rng() % universe.size()];
        Identity id{kind, kind.substr(0, 1) + std::to_string(rng() % count)};
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
      }
      if (!alias) {
        std::stable_sort(ids.begin(), ids.end(), [&](const Identity& a, const Identity& b) {
          return rules.KindRank(a.kind) < rules.KindRank(b.kind);
        });
      }
      // The documented decision, step by step from the state before the event.
      std::vector<std::string> candidates;
      std::vector<Identity> unmatched;
      for (const Identity& id : ids) {
        auto p = g.ProfileOf(id);
        if (!p)
          unmatched.push_back(id);
        else if (std::find(candidates.begin(), candidates.end(), *p) == candidates.end())
          candidates.push_back(*p);
      }
      std::vector<const IdentityRecord*> group;
      size_t expected_refusals = 0;
      for (size_t i = 0; i < candidates.size(); ++i) {
        std::vector<const IdentityRecord*> trial = group;
        trial.push_back(g.Find(candidates[i]));
        if (i == 0 || rule.Allows(trial, {}, trial.size() - 1, now, alias)) {
          group = trial;
        } else {
          ++expected_refusals;
        }
      }
      if (!group.empty() && !alias && !unmatched.empty() && unmatched.front() == ids.front() &&
          !rule.Allows(group, {ids.front()}, 0, now)) {
        group.clear();
        ++expected_refusals;
      }
      std::vector<Identity> expected_links;
      for (const Identity& id : unmatched) {
        bool held = false;
        for (const IdentityRecord* p : group) {
          held = held ||
                 std::find(p->identities.begin(), p->identities.end(), id) != p->identities.end();
        }
        if (held) continue;
        std::vector<Identity> trial = expected_links;
        trial.push_back(id);
        if (rule.Allows(group, trial, 0, now, alias))
          expected_links = trial;
        else
          ++expected_refusals;
      }
      std::set<std::string> expected_members;
      for (const IdentityRecord* p : group) expected_members.insert(p->profile_id);

      const Resolution r = resolver.Resolve(ids, alias, now, g);
      std::set<std::string> members(r.absorbed.begin(), r.absorbed.end());
      if (!r.create) members.insert(r.target);
      CHECK(members == expected_members);
      // A new best identity founds a profile that names the person when it
      // outranks the matched survivor (as partitioned mode's anchor does),
      // under an alias too.
      bool founded_survives = false;
      if (!group.empty() && !unmatched.empty() && unmatched.front() == ids.front()) {
        const IdentityRecord founded{core::ProfileIdFor(ids.front()), {ids.front()}, {}};
        std::vector<const IdentityRecord*> with = group;
        with.push_back(&founded);
        founded_survives = rules.ChooseSurvivor(with) == &founded &&
                           rule.Allows(with, {}, group.size(), now, alias);
      }
      CHECK(r.create == (group.empty() || founded_survives));
      CHECK(r.link == expected_links);
      CHECK(r.refusals.size() == expected_refusals);
      refusals += r.refusals.size();
      merges += r.absorbed.size();
      ApplyResolution(r, now, g);
      // Every identity maps to the profile whose record holds it.
      for (const auto& [id, p] : g.records()) {
        for (const Identity& i : p.identities) CHECK(g.ProfileOf(i) == id);
      }
      // Only explicit aliases ever put a profile over a per-kind limit, and
      // nothing over max_identities (it bounds the profile's size).
      for (const auto& [id, p] : g.records()) {
        CHECK(p.identities.size() <= options.max_identities);
        size_t users = 0;
        for (const Identity& i : p.identities) users += i.kind == "user_id";
        if (users > 1) ++aliases_over_limit;
      }
    }
  }
  // The sequences exercise every path: refusals, merges, and aliased profiles
  // carrying two user ids into later merges.
  CHECK(refusals > 100);
  CHECK(merges > 100);
  CHECK(aliases_over_limit > 100);
}

// Merge exactness: profiles built from parts of the events, merged in any
// order and grouping, equal one profile fed all the events.
TEST_CASE("merging A, B, C in any order and grouping equals one profile fed everything",
          "[identity][property]") {
  core::ScoringOptions scoring;
  for (core::Family f : core::kAllFamilies) scoring.family(f) = {3'600'000.0, 100000, 0.0};
  scoring.recent_event_ids = 16;  // fewer than the events: the bound is exercised
  scoring.max_traits = 2;         // fewer than the trait keys: the cap is exercised
  const char* types[] = {"product_viewed", "added_to_cart", "order_completed", "identify"};
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    std::vector<v1::InteractionEvent> events;
    const int n = std::uniform_int_distribution<int>(3, 60)(rng);
    for (int i = 0; i < n; ++i) {
      auto e =
          testing::MakeEvent("e" + std::to_string(i), types[rng() % 4],
                             t0 + static_cast<int64_t>(rng() % (30 * 3'600'000)), "u",
                             "c" + std::to_string(rng() % 4) + ".s" + std::to_string(rng() % 3),
                             "P" + std::to_string(rng() % 9), "B" + std::to_string(rng() % 3));
      e.mutable_commerce()->set_price(static_cast<double>(rng() % 10000) / 100);
      (*e.mutable_traits())["t" + std::to_string(rng() % 3)] = std::to_string(rng() % 5);
      events.push_back(e);
    }
    Profile whole = Profile::New("p");
    for (const auto& e : events) core::ApplyEvent(e, scoring, whole);

    Profile part[3] = {Profile::New("a"), Profile::New("b"), Profile::New("c")};
    for (const auto& e : events) core::ApplyEvent(e, scoring, part[rng() % 3]);
    auto merged = [&](int x, int y, int z, bool left) {
      Profile out = part[x];
      if (left) {  // (x + y) + z
        core::MergeProfiles(part[y], scoring, out);
        core::MergeProfiles(part[z], scoring, out);
      } else {  // x + (y + z)
        Profile yz = part[y];
        core::MergeProfiles(part[z], scoring, yz);
        core::MergeProfiles(yz, scoring, out);
      }
      return out;
    };
    for (const Profile& m : {merged(0, 1, 2, true), merged(2, 0, 1, false), merged(1, 2, 0, true),
                             merged(1, 0, 2, false)}) {
      CHECK(m.version == whole.version);
      CHECK(m.first_seen_ms == whole.first_seen_ms);
      CHECK(m.last_seen_ms == whole.last_seen_ms);
      CHECK(m.counters.orders == whole.counters.orders);
      CHECK(m.counters.cart_adds == whole.counters.cart_adds);
      CHECK(testing::RelativelyClose(m.counters.revenue, whole.counters.revenue, 1e-12));
      std::map<std::string, std::string> mt, wt;
      for (const auto& t : m.traits) mt[t.key] = t.value + "@" + std::to_string(t.event_time_ms);
      for (const auto& t : whole.traits)
        wt[t.key] = t.value + "@" + std::to_string(t.event_time_ms);
      CHECK(mt == wt);
      CHECK(m.recent_events == whole.recent_events);
      CHECK(m.items == whole.items);  // fewer than recent_items keys: exact
      CHECK(testing::RelativelyClose(
          m.engagement_fast.ValueAt(t0, scoring.engagement_fast_half_life_ms),
          whole.engagement_fast.ValueAt(t0, scoring.engagement_fast_half_life_ms), 1e-9));
      CHECK(testing::RelativelyClose(
          m.engagement_slow.ValueAt(t0, scoring.engagement_slow_half_life_ms),
          whole.engagement_slow.ValueAt(t0, scoring.engagement_slow_half_life_ms), 1e-9));
      for (core::Family f : core::kAllFamilies) {
        const auto& want = whole.family(f);
        const auto& got = m.family(f);
        REQUIRE(got.size() == want.size());
        for (const auto& e : want.entries()) {
          const core::DecayedScore* s = got.Find(e.key);
          REQUIRE(s != nullptr);
          const int64_t at = t0 + 40 * 3'600'000LL;
          CHECK(testing::RelativelyClose(s->ValueAt(at, 3'600'000.0),
                                         e.score.ValueAt(at, 3'600'000.0), 1e-9));
        }
      }
    }
  }
}

}  // namespace
}  // namespace profiled::identity
