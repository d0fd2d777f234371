// Partitioned mode's tasks (libs/pipeline/src/partition_task.h) against
// single mode, in one process with real stores: the same REES46-shaped
// events — anonymous visitors who log in and later give an email, the
// three identities of a person on different partitions — routed to 4
// partitions whose owners run batches of any size and pass the records
// they send on; every person ends as one profile equal to single mode's:
// same version, counters, identities and scores (within 1e-9 relative).
#include "partition_task.h"

#include <limits>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "batch_stages.h"
#include "batch_state.h"
#include "hot_cache.h"
#include "profiled/cluster/protocol_codec.h"
#include "profiled/codec/state_codec.h"
#include "profiled/core/profile_id.h"
#include "profiled/internal/v1/profile_state.pb.h"
#include "read_stage.h"
#include "route_stage.h"
#include "support/people.h"
#include "support/test_support.h"

namespace profiled::pipeline::internal {
namespace {

constexpr int64_t T0 = 1'700'000'000'000;

PipelineOptions Options() {
  PipelineOptions o = testing::EquivalenceOptions();
  o.worker_threads = 0;
  return o;
}

std::unique_ptr<store::ProfileStore> OpenStore(const std::string& path) {
  auto opened = store::ProfileStore::Open({.path = path});
  REQUIRE_OK(opened.status());
  return *std::move(opened);
}

// Events [from, to) at offsets from `first_offset` + from on.
std::vector<kafka::ConsumedMessage> Messages(const std::vector<v1::InteractionEvent>& events,
                                             size_t from, size_t to, int64_t first_offset = 0) {
  std::vector<kafka::ConsumedMessage> out;
  for (size_t i = from; i < to; ++i) {
    out.emplace_back("events", 0, first_offset + static_cast<int64_t>(i), "k",
                     events[i].SerializeAsString(), false, T0, std::vector<kafka::Header>{});
  }
  return out;
}

// Single mode's final profile of each person, keyed by the user id.
std::map<std::string, core::Profile> SingleMode(const PipelineOptions& options,
                                                const std::vector<v1::InteractionEvent>& events,
                                                const std::string& dir) {
  auto store = OpenStore(dir);
  const identity::IdentityRules rules = *identity::IdentityRules::Create(options.identity);
  const privacy::PrivacyFilter privacy = *privacy::PrivacyFilter::Create(options.privacy);
  const signals::Signals signals(options.signals);
  WorkerPool workers(0);
  core::SystemClock wall;
  core::PipelineClock clock(wall, core::PipelineClock::Mode::kEventTime);
  BatchStages stages(options, rules, *store, signals, workers, clock);
  HotCache cache(0);
  auto read = *ReadStage::Create(options, rules, privacy, workers);
  prometheus::Registry registry;
  PipelineMetrics metrics(registry, {"events"});
  for (size_t i = 0; i < events.size(); i += 7) {
    const auto messages = Messages(events, i, std::min(events.size(), i + 7));
    BatchWork work;
    work.read = read->Read(messages, wall.NowMs());
    BatchState state(*store, cache);
    REQUIRE_OK(state.Preload(work.read.mentioned));
    REQUIRE_OK(stages.Run(state, work, "secret", false, wall.NowMs()).status());
    work.Finish(state, clock, metrics);
    REQUIRE_OK(store->Commit(work.batch));
  }
  std::map<std::string, core::Profile> out;
  REQUIRE_OK(store->ForEachProfile([&](std::string_view, std::string_view bytes) {
    auto profile = codec::DecodeProfileState(bytes);
    REQUIRE_OK(profile.status());
    for (const core::Identity& id : profile->identities) {
      if (id.kind == "user_id") out[id.value] = *profile;
    }
    return true;
  }));
  return out;
}

// The partitioned run: 4 tasks, each with its own store; what they send
// goes to the log of the partition it names.
class Partitioned {
 public:
  Partitioned(const PipelineOptions& options, const testing::TempDir& dir)
      : options_(options),
        rules_(*identity::IdentityRules::Create(options.identity)),
        signals_(options.signals),
        workers_(0),
        output_(options_, signals_, workers_),
        dir_(dir) {
    for (int32_t k = 0; k < kPartitions; ++k) {
      stores_.push_back(OpenStore(dir.Sub(absl::StrCat("partition-", k))));
      tasks_.push_back(std::make_unique<PartitionTask>(
          options_, rules_, output_, TaskTopics{"repartition", "changelog", kPartitions}, k,
          *stores_.back()));
      logs_.emplace_back();
    }
  }

  // The events as read from offset `first_offset` of the input on.
  void Route(const std::vector<v1::InteractionEvent>& events, int64_t first_offset = 0) {
    const privacy::PrivacyFilter privacy = *privacy::PrivacyFilter::Create(options_.privacy);
    auto read = *ReadStage::Create(options_, rules_, privacy, workers_);
    const auto messages = Messages(events, 0, events.size(), first_offset);
    const ReadBatch batch = read->Read(messages, core::SystemClock().NowMs());
    for (const RoutedRecord& r : RouteStage::Route(batch, rules_, 1, 0)) {
      Append(cluster::IdentityProtocol::PartitionOf(r.key, kPartitions), r.key, r.value);
    }
  }

  // A control request (options.control_topic) read at `offset` of it.
  void RouteControl(const v1::ControlRequest& request, int64_t offset) {
    const privacy::PrivacyFilter privacy = *privacy::PrivacyFilter::Create(options_.privacy);
    auto read = *ReadStage::Create(options_, rules_, privacy, workers_);
    const std::vector<kafka::ConsumedMessage> messages{{options_.control_topic, 0, offset, "k",
                                                        request.SerializeAsString(), false, T0,
                                                        std::vector<kafka::Header>{}}};
    const ReadBatch batch = read->Read(messages, core::SystemClock().NowMs());
    const int64_t suppress_until = core::SystemClock().NowMs() + 3'600'000;
    for (const RoutedRecord& r : RouteStage::Route(batch, rules_, 1, suppress_until)) {
      Append(cluster::IdentityProtocol::PartitionOf(r.key, kPartitions), r.key, r.value);
    }
  }

  // Runs every partition in random batches until idle. While `chaos`
  // steps last, owners publish only part of their outbox at a time,
  // re-send what they had sent (a kill -9 keeping the disk), or lose the
  // partition to a new owner that restores the changelog as published so
  // far (a move, or a wiped disk).
  void Drain(std::mt19937_64& rng, int chaos) {
    for (bool busy = true; busy; --chaos) {
      busy = false;
      for (int32_t k = 0; k < kPartitions; ++k) {
        if (chaos > 0 && rng() % 40 == 0) Move(k);
        if (chaos > 0 && rng() % 20 == 0) ResendRecent(k);
        PartitionTask& task = *tasks_[k];
        const auto& log = logs_[k];
        if (task.purge_due()) {
          // As the runtime: once its outbox is published, purge, then acknowledge.
          Publish(k, 1'000'000);
          REQUIRE_OK(stores_[k]->Purge(task.PurgeDue()));
          REQUIRE_OK(task.SendAfterPurge());
          busy = true;
        } else if (task.next_offset() < static_cast<int64_t>(log.size())) {
          busy = true;
          const size_t from = static_cast<size_t>(task.next_offset());
          const size_t to = std::min(log.size(), from + 1 + rng() % 9);
          const std::vector<kafka::ConsumedMessage> batch(log.begin() + static_cast<long>(from),
                                                          log.begin() + static_cast<long>(to));
          REQUIRE_OK(task.RunBatch(batch).status());
        }
        if (stores_[k]->OutboxDepth() > 0) {
          busy = true;
          Publish(k, chaos > 0 ? rng() % 12 : 1'000'000);
        }
      }
    }
  }

  int moves() const { return moves_; }
  // Every partition's due timers at `now_ms` on its clock, published.
  uint64_t RunTimers(int64_t now_ms) {
    uint64_t fired = 0;
    for (int32_t k = 0; k < kPartitions; ++k) {
      auto counts = tasks_[k]->RunTimers(now_ms);
      REQUIRE_OK(counts.status());
      fired += counts->timers_fired;
      Publish(k, 1'000'000);
    }
    return fired;
  }
  int64_t StreamTime(int32_t k) const { return tasks_[k]->stream_time_ms(); }
  // Every stored timer, in every partition: (due ms, profile id).
  std::vector<std::pair<int64_t, std::string>> Timers() {
    std::vector<std::pair<int64_t, std::string>> out;
    for (const auto& store : stores_) {
      std::vector<store::Timer> timers;
      REQUIRE_OK(store->ReadDueTimers(std::numeric_limits<int64_t>::max(), 1'000'000, timers));
      for (const store::Timer& t : timers) out.emplace_back(t.due_ms, t.profile_id);
    }
    return out;
  }
  // Every slot of every partition, by key.
  std::map<std::string, cluster::Slot> AllSlots() {
    std::map<std::string, cluster::Slot> out;
    for (const auto& store : stores_) {
      REQUIRE_OK(store->ForEachProfile([&](std::string_view key, std::string_view bytes) {
        auto slot = cluster::ParseSlot(bytes, nullptr);
        REQUIRE_OK(slot.status());
        out.emplace(std::string(key), *slot);
        return true;
      }));
    }
    return out;
  }
  // Updates published to the output topic so far, in order.
  std::vector<v1::ProfileUpdate> TakeUpdates() { return std::exchange(updates_, {}); }
  void MoveAll() {
    for (int32_t k = 0; k < kPartitions; ++k) Move(k);
  }
  // Each person's live profile (keyed by user id): found from the user id's
  // slot, following forward pointers.
  core::Profile ProfileOf(const std::string& user) {
    std::string key = core::ProfileIdFor({"user_id", user});
    cluster::Slot slot = Slot(key);
    REQUIRE(slot.identity.has_value());
    key = slot.identity->label.id;
    for (;;) {
      std::string state;
      slot = Slot(key, &state);
      REQUIRE(slot.profile.has_value());
      if (!slot.profile->absorbed_into.has_value()) {
        REQUIRE_FALSE(state.empty());
        auto profile = codec::DecodeProfileState(state);
        REQUIRE_OK(profile.status());
        return *profile;
      }
      key = slot.profile->absorbed_into->id;
    }
  }

  static constexpr int32_t kPartitions = 4;

 private:
  void Append(int32_t k, const std::string& key, const std::string& value) {
    logs_[k].emplace_back("repartition", k, static_cast<int64_t>(logs_[k].size()), key, value,
                          false, T0, std::vector<kafka::Header>{});
  }

  // The first `max` outbox entries: sends to their partitions, changelog
  // records to the (compacted) changelog, updates dropped.
  void Publish(int32_t k, size_t max) {
    std::vector<store::OutboxEntry> entries;
    REQUIRE_OK(stores_[k]->ReadOutbox(0, max, entries));
    std::vector<uint64_t> seqs;
    for (const store::OutboxEntry& e : entries) {
      ::profiled::internal::v1::OutboxRecord r;
      REQUIRE(r.ParseFromString(e.record));
      if (r.topic() == "repartition") {
        Append(r.partition(), r.key(), r.value());
        recent_[k].push_back({r.partition(), r.key(), r.value()});
        if (recent_[k].size() > 5) recent_[k].erase(recent_[k].begin());
      } else if (r.topic() == "changelog") {
        REQUIRE(r.partition() == k);
        changelogs_[k][r.key()] = r.value();
      } else if (r.topic() == options_.output_topic && !r.value().empty()) {
        REQUIRE(updates_.emplace_back().ParseFromString(r.value()));
      }
      seqs.push_back(e.seq);
    }
    REQUIRE_OK(stores_[k]->DeleteOutbox(seqs));
  }

  void ResendRecent(int32_t k) {
    for (const auto& [to, key, value] : recent_[k]) Append(to, key, value);
  }

  // A new owner: an empty store filled from the changelog, resuming at its
  // newest marker; whatever the old owner had not published is gone.
  void Move(int32_t k) {
    ++moves_;
    tasks_[k].reset();
    stores_[k] = OpenStore(dir_.Sub(absl::StrCat("partition-", k, "-owner-", moves_)));
    std::optional<cluster::ChangelogMarker> marker;
    SlotRestorer restorer(*stores_[k], {"repartition", k});
    for (const auto& [key, value] : changelogs_[k]) {
      if (key == cluster::kMarkerKey) {
        marker.emplace();
        REQUIRE(marker->ParseFromString(value));
        continue;
      }
      REQUIRE_OK(restorer.Add(key, value));
    }
    REQUIRE_OK(restorer.Finish());
    tasks_[k] = std::make_unique<PartitionTask>(options_, rules_, output_,
                                                TaskTopics{"repartition", "changelog", kPartitions},
                                                k, *stores_[k]);
    tasks_[k]->Resume(marker, moves_);
    recent_[k].clear();
  }

  cluster::Slot Slot(const std::string& key, std::string* state = nullptr) {
    auto bytes =
        stores_[static_cast<size_t>(cluster::IdentityProtocol::PartitionOf(key, kPartitions))]->Get(
            key);
    REQUIRE_OK(bytes.status());
    REQUIRE(bytes->has_value());
    auto slot = cluster::ParseSlot(**bytes, state);
    REQUIRE_OK(slot.status());
    return *slot;
  }

  PipelineOptions options_;
  identity::IdentityRules rules_;
  signals::Signals signals_;
  WorkerPool workers_;
  OutputStage output_;
  std::vector<std::unique_ptr<store::ProfileStore>> stores_;
  std::vector<std::unique_ptr<PartitionTask>> tasks_;
  std::vector<std::vector<kafka::ConsumedMessage>> logs_;
  const testing::TempDir& dir_;
  std::vector<std::map<std::string, std::string>> changelogs_{kPartitions};
  std::vector<std::vector<std::tuple<int32_t, std::string, std::string>>> recent_{kPartitions};
  std::vector<v1::ProfileUpdate> updates_;
  int moves_ = 0;
};

TEST_CASE(
    "four partitions' tasks end with single mode's people: versions, counters, "
    "identities and scores, through partial publishing, re-sends and moves",
    "[partitioned][equivalence]") {
  const PipelineOptions options = Options();
  std::mt19937_64 rng(7);
  int moves = 0;
  for (int round = 0; round < 8; ++round) {
    CAPTURE(round);
    testing::TempDir dir;
    const int people = 12;
    const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, people, 240, T0);
    const auto single = SingleMode(options, events, dir.Sub("single"));
    Partitioned partitioned(options, dir);
    partitioned.Route(events);
    partitioned.Drain(rng, /*chaos=*/round == 0 ? 0 : 200);
    const int64_t now_ms = T0 + 240 * 60'000;
    for (const auto& [user, want] : single) {
      CAPTURE(user);
      const core::Profile got = partitioned.ProfileOf(user);
      testing::CheckSameProfile(got, want, options.scoring, now_ms);
    }
    // The merge audit: every merge is recorded once under the absorbed
    // profile and once under the profile it went into, through the moves.
    const std::map<std::string, cluster::Slot> slots = partitioned.AllSlots();
    auto merges_in = [](const cluster::ProfileEntry& entry, const std::string& survivor,
                        const std::string& absorbed) {
      int n = 0;
      for (const std::string& bytes : entry.audit) {
        ::profiled::internal::v1::MergeRecord r;
        REQUIRE(r.ParseFromString(bytes));
        n += r.rule() == "merge" && !r.refused() && r.survivor() == survivor &&
             r.absorbed_size() == 1 && r.absorbed(0) == absorbed;
      }
      return n;
    };
    int absorbed = 0;
    for (const auto& [key, slot] : slots) {
      if (!slot.profile.has_value() || !slot.profile->absorbed_into.has_value()) continue;
      ++absorbed;
      const std::string& into = slot.profile->absorbed_into->id;
      CAPTURE(key, into);
      CHECK(merges_in(*slot.profile, into, key) == 1);
      REQUIRE(slots.contains(into));
      REQUIRE(slots.at(into).profile.has_value());
      CHECK(merges_in(*slots.at(into).profile, into, key) == 1);
      CHECK(slot.profile->audit_dropped == 0);
    }
    CHECK(absorbed >= people / 2);  // most anonymous profiles went into their user's
    moves += partitioned.moves();
  }
  CHECK(moves > 10);  // the moves happened
}

TEST_CASE("events a router sends again after every partition moved are skipped by origin",
          "[partitioned]") {
  const PipelineOptions options = Options();
  std::mt19937_64 rng(3);
  testing::TempDir dir;
  const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, 3, 30, T0);
  Partitioned partitioned(options, dir);
  partitioned.Route(events);
  partitioned.Drain(rng, 0);
  // New owners restore the changelogs; the router, restarted from an old
  // position, sends every event again under the same origins.
  partitioned.MoveAll();
  partitioned.Route(events);
  partitioned.Drain(rng, 0);
  const auto single = SingleMode(options, events, dir.Sub("single"));
  for (const auto& [user, want] : single) {
    CAPTURE(user);
    CHECK(partitioned.ProfileOf(user).version == want.version);
  }
}

TEST_CASE(
    "timers in partitioned mode: a cart turns abandoned once, on its partition's clock, also "
    "after the partition moved",
    "[partitioned][timers]") {
  constexpr int64_t kMinute = 60'000;
  const PipelineOptions options = Options();
  std::mt19937_64 rng(5);
  testing::TempDir dir;
  Partitioned partitioned(options, dir);
  partitioned.Route({testing::MakeEvent("cart-1", "added_to_cart", T0, "u1", "shoes", "P1")});
  partitioned.Drain(rng, 0);
  const std::vector<v1::ProfileUpdate> applied = partitioned.TakeUpdates();
  REQUIRE(applied.size() == 1);
  CHECK_FALSE(applied[0].signals().cart().abandoned());
  const int32_t owner = cluster::IdentityProtocol::PartitionOf(
      core::ProfileIdFor({"user_id", "u1"}), Partitioned::kPartitions);
  CHECK(partitioned.StreamTime(owner) == T0);  // the latest event time applied there

  // Twenty minutes on only the cold start has turned (the one event's
  // weight was exactly the threshold); the cart turns at +1 h.
  CHECK(partitioned.RunTimers(T0 + 20 * kMinute) == 1);
  const std::vector<v1::ProfileUpdate> cold = partitioned.TakeUpdates();
  REQUIRE(cold.size() == 1);
  CHECK(cold[0].signals().cold_start().cold());
  CHECK_FALSE(cold[0].signals().cart().abandoned());

  // New owners restore every partition from its changelog: the timer and
  // the stream time come with it.
  partitioned.MoveAll();
  CHECK(partitioned.StreamTime(owner) == T0);
  CHECK(partitioned.RunTimers(T0 + 120 * kMinute) >= 1);
  const std::vector<v1::ProfileUpdate> turned = partitioned.TakeUpdates();
  REQUIRE(turned.size() == 1);
  CHECK(turned[0].profile_id() == applied[0].profile_id());
  CHECK(turned[0].version() == 1);  // no event was applied
  CHECK(turned[0].as_of_ms() == T0 + 120 * kMinute);
  CHECK(turned[0].signals().cart().abandoned());

  // Once turned, nothing more a minute later: the next transition is days away.
  CHECK(partitioned.RunTimers(T0 + 121 * kMinute) == 0);
  CHECK(partitioned.TakeUpdates().empty());
  // An event afterwards is applied on top of the timer's state.
  partitioned.Route(
      {testing::MakeEvent("view-1", "product_viewed", T0 + 130 * kMinute, "u1", "shoes", "P2")},
      /*first_offset=*/1);
  partitioned.Drain(rng, 0);
  const std::vector<v1::ProfileUpdate> later = partitioned.TakeUpdates();
  REQUIRE(later.size() == 1);
  CHECK(later[0].version() == 2);
  CHECK(partitioned.StreamTime(owner) == T0 + 130 * kMinute);
}

TEST_CASE("timers in partitioned mode: an erased person's timer goes with them",
          "[partitioned][timers][erasure]") {
  PipelineOptions options = Options();
  options.control_topic = "control";
  options.receipts_topic = "receipts";
  std::mt19937_64 rng(9);
  testing::TempDir dir;
  Partitioned partitioned(options, dir);
  partitioned.Route({testing::MakeEvent("cart-1", "added_to_cart", T0, "u1", "shoes", "P1"),
                     testing::MakeEvent("cart-2", "added_to_cart", T0, "u2", "shoes", "P1")});
  partitioned.Drain(rng, 0);
  const std::string erased = core::ProfileIdFor({"user_id", "u1"});
  const std::string kept = core::ProfileIdFor({"user_id", "u2"});
  auto timers_of = [&](const std::string& id) {
    size_t n = 0;
    for (const auto& [due, profile] : partitioned.Timers()) n += profile == id;
    return n;
  };
  REQUIRE(timers_of(erased) == 1);  // the cart's, due in an hour
  REQUIRE(timers_of(kept) == 1);

  v1::ControlRequest request;
  request.mutable_erase()->set_request_id("erase-1");
  request.mutable_erase()->set_kind("user_id");
  request.mutable_erase()->set_value("u1");
  partitioned.TakeUpdates();
  partitioned.RouteControl(request, 0);
  partitioned.Drain(rng, 0);
  CHECK(partitioned.TakeUpdates().empty());  // a tombstone only
  CHECK(timers_of(erased) == 0);
  CHECK(timers_of(kept) == 1);
  // Nothing fires for the erased person: one update, the other cart's.
  CHECK(partitioned.RunTimers(T0 + 120 * 60'000) == 1);
  bool turned_kept = false;
  for (const v1::ProfileUpdate& u : partitioned.TakeUpdates()) {
    CHECK(u.profile_id() != erased);
    if (u.profile_id() == kept && u.signals().cart().abandoned()) turned_kept = true;
  }
  CHECK(turned_kept);
}

TEST_CASE(
    "retention in partitioned mode: people idle past the TTL expire on every partition they "
    "span, through moves, and their next event founds them afresh as single mode does, while "
    "someone "
    "active stays",
    "[partitioned][timers][retention]") {
  constexpr int64_t kDay = 24LL * 3'600'000;
  PipelineOptions options = Options();
  options.retention_ttl_ms = 30 * kDay;
  std::mt19937_64 rng(21);
  testing::TempDir dir;
  const std::vector<v1::InteractionEvent> events = testing::PeopleEvents(rng, 4, 60, T0);
  const auto single = SingleMode(options, events, dir.Sub("single"));
  REQUIRE(single.size() == 4);
  Partitioned partitioned(options, dir);
  partitioned.Route(events);
  partitioned.Drain(rng, 0);
  const std::string active = single.begin()->first;
  partitioned.Route(
      {testing::MakeEvent("late-1", "product_viewed", T0 + 20 * kDay, active, "shoes", "P1")},
      static_cast<int64_t>(events.size()));
  partitioned.Drain(rng, 0);

  // Day 31: the idle people's timers start their expiries, which run while
  // partitions move and owners re-send.
  partitioned.RunTimers(T0 + 31 * kDay);
  partitioned.Drain(rng, /*chaos=*/100);
  const std::map<std::string, cluster::Slot> slots = partitioned.AllSlots();
  for (const auto& [user, profile] : single) {
    CAPTURE(user);
    for (const core::Identity& id : profile.identities) {
      const std::string key = core::ProfileIdFor(id);
      const bool labelled = slots.contains(key) && slots.at(key).identity.has_value();
      CHECK(labelled == (user == active));  // every identity of an idle person unknown
    }
    const bool live = slots.contains(profile.id) && slots.at(profile.id).profile.has_value() &&
                      !slots.at(profile.id).profile->absorbed_into.has_value();
    CHECK(live == (user == active));
    CHECK_FALSE((slots.contains(profile.id) && slots.at(profile.id).expiry.has_value()));
  }
  CHECK(partitioned.ProfileOf(active).version == single.at(active).version + 1);
  for (const auto& [due, id] : partitioned.Timers()) {
    CHECK(id == single.at(active).id);  // the idle people's timers went with them
  }

  // An expired person's next event founds a new profile: the event alone.
  const std::string returning = std::next(single.begin())->first;
  const v1::InteractionEvent back =
      testing::MakeEvent("back-1", "product_viewed", T0 + 32 * kDay, returning, "shoes", "P3");
  partitioned.Route({back}, static_cast<int64_t>(events.size()) + 1);
  partitioned.Drain(rng, 0);
  const auto fresh = SingleMode(options, {back}, dir.Sub("single-fresh"));
  testing::CheckSameProfile(partitioned.ProfileOf(returning), fresh.at(returning), options.scoring,
                            T0 + 32 * kDay);
}

TEST_CASE(
    "merge audit in partitioned mode: refusals are recorded in the profile's slot, the last 32 "
    "decided kept and the older ones counted",
    "[partitioned][audit]") {
  PipelineOptions options = Options();
  options.identity.max_per_kind["email_sha256"] = 1;
  std::mt19937_64 rng(13);
  testing::TempDir dir;
  Partitioned partitioned(options, dir);
  std::vector<v1::InteractionEvent> events;
  for (int i = 0; i < 41; ++i) {
    v1::InteractionEvent e = testing::MakeEvent(absl::StrCat("e", i), "product_viewed",
                                                T0 + i * 60'000, "u1", "shoes", "P1");
    e.mutable_identities()->set_email(absl::StrCat("person", i, "@example.com"));
    events.push_back(e);
  }
  partitioned.Route(events);
  partitioned.Drain(rng, 0);
  const std::string id = core::ProfileIdFor({"user_id", "u1"});
  const std::map<std::string, cluster::Slot> slots = partitioned.AllSlots();
  REQUIRE(slots.contains(id));
  const cluster::ProfileEntry& entry = *slots.at(id).profile;
  // The first email joined; the other 40 were refused by the kind limit.
  REQUIRE(entry.audit.size() == kAuditKept);
  CHECK(entry.audit_dropped == 40 - static_cast<int64_t>(kAuditKept));
  // In the order decided (the emails' slots answer from several
  // partitions), each refusal once, of the events after the first.
  std::set<int64_t> times;
  for (const std::string& bytes : entry.audit) {
    ::profiled::internal::v1::MergeRecord r;
    REQUIRE(r.ParseFromString(bytes));
    CHECK(r.refused());
    CHECK(r.rule() == "kind_limit");
    CHECK(r.survivor() == id);
    CHECK(r.absorbed().empty());  // the other party is never named
    CHECK_FALSE(r.detail().empty());
    CHECK(r.time_ms() > T0);
    CHECK(r.time_ms() <= T0 + 40 * 60'000);
    times.insert(r.time_ms());
  }
  CHECK(times.size() == kAuditKept);
}

TEST_CASE(
    "explicit aliases in partitioned mode: the previous id is linked as a user id when known, "
    "else as an anonymous id, ending as single mode does",
    "[partitioned][alias]") {
  const PipelineOptions options = Options();
  auto event = [](const std::string& id, const std::string& type, int minute,
                  const std::string& user, const std::string& anonymous,
                  const std::string& previous) {
    v1::InteractionEvent e =
        testing::MakeEvent(id, type, T0 + minute * 60'000LL, user, "shoes", "P1");
    e.mutable_identities()->Clear();
    if (!user.empty()) e.mutable_identities()->set_user_id(user);
    if (!anonymous.empty()) e.mutable_identities()->set_anonymous_id(anonymous);
    e.set_previous_id(previous);
    return e;
  };
  const std::vector<v1::InteractionEvent> events = {
      event("a", "product_viewed", 0, "userA", "a1", ""),
      event("x", "product_viewed", 1, "", "x1", ""),
      event("e", "product_viewed", 2, "userE", "", ""),
      event("f", "product_viewed", 3, "userF", "", ""),
      // Known as a user id; known only as an anonymous id; unknown anywhere.
      event("alias-b", "alias", 4, "userB", "", "userA"),
      event("alias-c", "alias", 5, "userC", "", "x1"),
      event("alias-d", "alias", 6, "userD", "", "z9"),
      // Two user ids joined by an alias: an alias may join ids of one kind.
      event("alias-f", "alias", 7, "userF", "", "userE"),
  };
  testing::TempDir dir;
  const auto single = SingleMode(options, events, dir.Sub("single"));
  REQUIRE(single.at("userA").id == single.at("userB").id);  // the reference joined them
  REQUIRE(single.at("userE").id == single.at("userF").id);
  std::mt19937_64 rng(17);
  for (int round = 0; round < 10; ++round) {
    CAPTURE(round);
    testing::TempDir run;
    Partitioned partitioned(options, run);
    partitioned.Route(events);
    partitioned.Drain(rng, round == 0 ? 0 : 200);
    for (const auto& [user, want] : single) {
      CAPTURE(user);
      testing::CheckSameProfile(partitioned.ProfileOf(user), want, options.scoring,
                                T0 + 10 * 60'000);
    }
    auto holds = [&](const std::string& user, const core::Identity& id) {
      const core::Profile p = partitioned.ProfileOf(user);
      return std::find(p.identities.begin(), p.identities.end(), id) != p.identities.end();
    };
    CHECK(holds("userB", {"user_id", "userA"}));
    CHECK(holds("userC", {"anonymous_id", "x1"}));
    CHECK_FALSE(holds("userC", {"user_id", "x1"}));
    CHECK(holds("userD", {"anonymous_id", "z9"}));
    CHECK(holds("userF", {"user_id", "userE"}));
  }
}

TEST_CASE(
    "a restore indexes each slot's final timer only: an older value's timer, or one of a slot "
    "erased since, is not brought back",
    "[partitioned][timers]") {
  testing::TempDir dir;
  auto store = OpenStore(dir.Sub("restored"));
  auto slot_with_timer = [](int64_t due_ms) {
    ::profiled::internal::v1::SlotValue v;
    v.set_timer_due_ms(due_ms);
    return v.SerializeAsString();
  };
  SlotRestorer restorer(*store, {"repartition", 0});
  // As a changelog not yet compacted holds them: old values first.
  REQUIRE_OK(restorer.Add("p-moved", slot_with_timer(100)));
  REQUIRE_OK(restorer.Add("p-erased", slot_with_timer(200)));
  REQUIRE_OK(restorer.Add("p-gone", slot_with_timer(300)));
  REQUIRE_OK(restorer.Add("p-kept", slot_with_timer(400)));
  REQUIRE_OK(restorer.Add("p-moved", slot_with_timer(150)));
  REQUIRE_OK(restorer.Add("p-erased", slot_with_timer(0)));  // its slot after an erasure
  REQUIRE_OK(restorer.Add("p-gone", std::nullopt));          // a tombstone
  REQUIRE_OK(restorer.Finish());
  std::vector<store::Timer> timers;
  REQUIRE_OK(store->ReadDueTimers(std::numeric_limits<int64_t>::max(), 100, timers));
  std::vector<std::pair<int64_t, std::string>> got;
  for (const store::Timer& t : timers) {
    CHECK(t.topic == "repartition");
    got.emplace_back(t.due_ms, t.profile_id);
  }
  CHECK(got == std::vector<std::pair<int64_t, std::string>>{{150, "p-moved"}, {400, "p-kept"}});
}

}  // namespace
}  // namespace profiled::pipeline::internal
