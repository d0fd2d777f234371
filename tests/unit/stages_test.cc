// The pipeline's stages without a broker: messages in, WriteBatch out, on a
// real RocksDB in a temporary directory and a manual clock. What the
// integration tests show through Kafka, here step by step and synchronously.
#include <map>

#include "back_pressure.h"
#include "batch_stages.h"
#include "batch_state.h"
#include "batch_work.h"
#include "gather_window.h"
#include "hot_cache.h"
#include "profiled/codec/state_codec.h"
#include "profiled/core/clock.h"
#include "profiled/core/profile_id.h"
#include "profiled/identity/merge_audit.h"
#include "profiled/internal/v1/profile_state.pb.h"
#include "profiled/pipeline/metrics.h"
#include "profiled/v1/control.pb.h"
#include "read_stage.h"
#include "route_stage.h"
#include "support/test_support.h"
#include "timer_stage.h"
#include "worker_pool.h"

namespace profiled::pipeline::internal {
namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t T = 1'790'000'000'000;

kafka::ConsumedMessage Message(const std::string& topic, int64_t offset, std::string payload) {
  return kafka::ConsumedMessage(topic, 0, offset, "k", std::move(payload), false, T, {});
}

std::string Proto(const v1::InteractionEvent& e) { return e.SerializeAsString(); }

// An outbox record's key and value.
std::pair<std::string, std::string> Record(const std::string& bytes) {
  ::profiled::internal::v1::OutboxRecord r;
  REQUIRE(r.ParseFromString(bytes));
  return {r.key(), r.value()};
}

// Every stage wired as the pipeline wires them, over a real store.
struct Stages {
  explicit Stages(PipelineOptions o = Defaults())
      : options(std::move(o)),
        store(Open(dir.Sub("store"))),
        rules(*identity::IdentityRules::Create(options.identity)),
        privacy(*privacy::PrivacyFilter::Create(options.privacy)),
        signals(options.signals),
        clock(wall, core::PipelineClock::Mode::kEventTime),
        stages(options, rules, *store, signals, workers, clock),
        timers(options, stages.output(), *store, cache),
        metrics(registry, {"events", "seg", "csv", "control"}) {
    auto created = ReadStage::Create(options, rules, privacy, workers);
    REQUIRE_OK(created.status());
    read = *std::move(created);
  }

  static PipelineOptions Defaults() {
    PipelineOptions o;
    o.output_topic = "updates";
    o.inputs["seg"].format = "segment-json";
    o.inputs["csv"].format = "rees46-csv";
    o.control_topic = "control";
    o.worker_threads = 0;
    return o;
  }
  static std::unique_ptr<store::ProfileStore> Open(const std::string& path) {
    store::StoreOptions so;
    so.path = path;
    auto opened = store::ProfileStore::Open(so);
    REQUIRE_OK(opened.status());
    return *std::move(opened);
  }

  // One batch through every stage, committed; its work returned for checks.
  BatchWork Run(const std::vector<kafka::ConsumedMessage>& messages) {
    BatchWork work;
    work.read = read->Read(messages, wall.NowMs());
    BatchState state(*store, cache);
    REQUIRE_OK(state.Preload(work.read.mentioned));
    auto charges =
        stages.Run(state, work, "secret", store->HasSuppressions().value_or(true), wall.NowMs());
    REQUIRE_OK(charges.status());
    work.Finish(state, clock, metrics);
    state.ReturnTo(++seq, *charges);
    REQUIRE_OK(store->Commit(work.batch));
    cache.Committed(seq);
    return work;
  }

  std::optional<core::Profile> Stored(const std::string& id) {
    auto bytes = store->Get(id);
    REQUIRE_OK(bytes.status());
    if (!bytes->has_value()) return std::nullopt;
    auto decoded = codec::DecodeProfileState(**bytes);
    REQUIRE_OK(decoded.status());
    return *decoded;
  }

  PipelineOptions options;
  testing::TempDir dir;
  std::unique_ptr<store::ProfileStore> store;
  identity::IdentityRules rules;
  privacy::PrivacyFilter privacy;
  signals::Signals signals;
  WorkerPool workers{0};
  core::ManualClock wall{T};
  core::PipelineClock clock;
  HotCache cache{64 << 20};
  std::unique_ptr<ReadStage> read;
  BatchStages stages;
  TimerStage timers;
  prometheus::Registry registry;
  PipelineMetrics metrics;
  uint64_t seq = 0;
};

TEST_CASE("read: each topic decodes through its format, dead letters keep their reason",
          "[stages][read]") {
  Stages s;
  const std::string segment =
      R"({"type":"track","event":"Product Viewed","messageId":"m1","userId":"u1",)"
      R"("timestamp":"2026-09-21T13:33:20Z","properties":{"product_id":"P1","password":"x"}})";
  const std::string bad_segment = R"({"type":"track","password":"hunter2"})";
  const std::string row = "2019-10-01 00:00:00 UTC,view,1,2,a.b,br,1.5,77,s";
  ReadBatch batch = s.read->Read(
      {Message("events", 0, Proto(testing::MakeEvent("e1", "product_viewed", T, "u1"))),
       Message("seg", 0, segment), Message("seg", 1, bad_segment), Message("csv", 0, row),
       Message("csv", 1, "not,a,row"), Message("events", 1, "\x01garbage")},
      T);
  REQUIRE(batch.accepted.size() == 3);
  CHECK(batch.accepted[0].event.event_id() == "e1");
  CHECK(batch.accepted[1].event.event_id() == "m1");
  CHECK(batch.accepted[2].event.identities().user_id() == "77");
  CHECK(batch.accepted[2].event.event_id().starts_with("rees46-"));
  REQUIRE(batch.letters.size() == 3);
  // The JSON topic's letter is redacted by the privacy filter; others are not.
  CHECK(batch.letters[0].source_topic == "seg");
  CHECK(batch.letters[0].redacted);
  CHECK(batch.letters[0].value.find("hunter2") == std::string::npos);
  CHECK(batch.letters[1].source_topic == "csv");
  CHECK(batch.letters[1].reason == "undecodable_protobuf");
  CHECK_FALSE(batch.letters[1].redacted);
  CHECK(batch.letters[2].reason == "undecodable_protobuf");
  CHECK(batch.privacy_dropped == 1);  // the segment event's password property
  // Positions: after the last message of each partition, counting every message.
  CHECK(batch.touched.at({"events", 0}).position.next_offset == 2);
  CHECK(batch.touched.at({"seg", 0}).messages == 2);
  CHECK(batch.touched.at({"csv", 0}).position.next_offset == 2);
}

TEST_CASE("read: control requests become erasures, consent events or dead letters",
          "[stages][read]") {
  Stages s;
  v1::ControlRequest erase;
  erase.mutable_erase()->set_request_id("r1");
  erase.mutable_erase()->set_kind("user_id");
  erase.mutable_erase()->set_value("u1");
  v1::ControlRequest consent;
  v1::ConsentUpdate& c = *consent.mutable_consent();
  c.set_request_id("c1");
  c.set_kind("user_id");
  c.set_value("u2");
  c.set_decided_ms(T);
  (*c.mutable_purposes())["marketing"] = false;
  v1::ControlRequest empty;
  ReadBatch batch = s.read->Read({Message("control", 0, erase.SerializeAsString()),
                                  Message("control", 1, consent.SerializeAsString()),
                                  Message("control", 2, empty.SerializeAsString())},
                                 T);
  REQUIRE(batch.erasures.size() == 1);
  CHECK(batch.erasures[0].request.request_id() == "r1");
  REQUIRE(batch.accepted.size() == 1);
  CHECK(batch.accepted[0].consent_only);
  CHECK(batch.accepted[0].event.type() == "consent_updated");
  REQUIRE(batch.letters.size() == 1);
  CHECK(batch.letters[0].source_offset == 2);
}

TEST_CASE("route: records keyed by the profile their anchor founds, stamped with their origin",
          "[stages][route]") {
  Stages s;
  v1::InteractionEvent both;
  both.set_event_id("e1");
  both.set_type("product_viewed");
  both.set_event_time_ms(T);
  both.mutable_identities()->set_anonymous_id("anon-1");
  both.mutable_identities()->set_email("Jane@Example.com ");
  v1::InteractionEvent bad = both;
  bad.clear_identities();
  v1::ControlRequest erase;
  erase.mutable_erase()->set_request_id("r1");
  erase.mutable_erase()->set_kind("email");
  erase.mutable_erase()->set_value("jane@example.com");
  // The batch points into its messages: they outlive it, as in the pipeline.
  v1::ControlRequest consent;  // after the erasure on its control partition
  consent.mutable_consent()->set_request_id("c1");
  consent.mutable_consent()->set_kind("user_id");
  consent.mutable_consent()->set_value("u1");
  (*consent.mutable_consent()->mutable_purposes())["analytics"] = false;
  consent.mutable_consent()->set_decided_ms(T);
  const std::vector<kafka::ConsumedMessage> messages = {
      Message("control", 7, erase.SerializeAsString()), Message("events", 3, Proto(both)),
      Message("events", 4, Proto(bad)), Message("control", 8, consent.SerializeAsString())};
  const ReadBatch batch = s.read->Read(messages, T);
  REQUIRE(batch.letters.size() == 1);  // no identity: a dead letter, never routed

  const std::vector<RoutedRecord> routed =
      RouteStage::Route(batch, s.rules, /*epoch=*/42, /*suppress_until_ms=*/T + 1000);
  // In offset order per upstream partition: the erasure (control@7), the
  // consent update (control@8, read as an event), the event (events@3). A
  // receiver skips an origin below one it took: control@8 first would
  // make the erasure look like a re-send.
  REQUIRE(routed.size() == 3);
  ::profiled::internal::v1::RepartitionRecord consent_record;
  REQUIRE(consent_record.ParseFromString(routed[1].value));
  CHECK(consent_record.origin().offset() == 8);
  // The event: keyed by its anchor, the hashed email (it outranks the cookie).
  const core::Identity email{"email_sha256", identity::EmailSha256("jane@example.com")};
  CHECK(routed[2].key == core::ProfileIdFor(email));
  ::profiled::internal::v1::RepartitionRecord event;
  REQUIRE(event.ParseFromString(routed[2].value));
  CHECK(event.origin().topic() == "events");
  CHECK(event.origin().offset() == 3);
  CHECK(event.origin().epoch() == 42);
  REQUIRE(event.has_protocol());
  CHECK(event.protocol().kind() == ::profiled::internal::v1::ProtocolRecord::EVENT);
  CHECK(event.protocol().time_ms() == T);
  REQUIRE(event.protocol().ids_size() == 2);
  CHECK(event.protocol().ids(0).kind() == "email_sha256");
  CHECK(event.protocol().ids(1).kind() == "anonymous_id");
  ::profiled::internal::v1::RoutedEvent routed_event;
  REQUIRE(routed_event.ParseFromString(event.protocol().payload()));
  CHECK(routed_event.event().event_id() == "e1");
  CHECK(routed_event.identities_size() == 2);
  // The erasure: keyed where that identity is owned.
  CHECK(routed[0].key == core::ProfileIdFor(email));
  ::profiled::internal::v1::RepartitionRecord erasure;
  REQUIRE(erasure.ParseFromString(routed[0].value));
  CHECK(erasure.protocol().kind() == ::profiled::internal::v1::ProtocolRecord::ERASE);
  REQUIRE(erasure.protocol().ids_size() == 1);
  CHECK(erasure.protocol().ids(0).kind() == "email_sha256");  // normalized, as events are
  CHECK(erasure.protocol().suppress_until_ms() == T + 1000);
  v1::EraseRequest request;
  REQUIRE(request.ParseFromString(erasure.protocol().payload()));
  CHECK(request.request_id() == "r1");
  CHECK(erasure.origin().topic() == "control");
  CHECK(erasure.origin().offset() == 7);
  // No raw identifier in any key.
  for (const RoutedRecord& r : routed) {
    CHECK(r.key.find("jane") == std::string::npos);
    CHECK(r.key.find("anon-1") == std::string::npos);
  }
}

TEST_CASE("resolve and apply: a merge publishes the survivor, then the notice and tombstone",
          "[stages][identity]") {
  Stages s;
  auto anon = testing::MakeEvent("e1", "product_viewed", T, "");
  anon.mutable_identities()->clear_user_id();
  anon.mutable_identities()->set_anonymous_id("a1");
  s.Run({Message("events", 0, Proto(anon)),
         Message("events", 1, Proto(testing::MakeEvent("e2", "product_viewed", T + 1, "u1")))});
  const std::string anon_id = *core::ProfileIdFor(anon);
  const std::string user_id = core::ProfileIdFor({"user_id", "u1"});
  REQUIRE(s.Stored(anon_id).has_value());
  REQUIRE(s.Stored(user_id).has_value());

  // One event names both: the user id's profile survives (its kind ranks first).
  auto both = testing::MakeEvent("e3", "added_to_cart", T + 2, "u1", "c", "P1");
  both.mutable_identities()->set_anonymous_id("a1");
  BatchWork work = s.Run({Message("events", 2, Proto(both))});
  REQUIRE(work.batch.outbox.size() == 3);
  CHECK(Record(work.batch.outbox[0]).first == user_id);
  v1::ProfileUpdate notice;
  REQUIRE(notice.ParseFromString(Record(work.batch.outbox[1]).second));
  CHECK(notice.profile_id() == anon_id);
  CHECK(notice.merged_into() == user_id);
  CHECK(Record(work.batch.outbox[2]) == std::pair<std::string, std::string>{anon_id, ""});
  CHECK(work.counts.merges == 1);
  // The audit names the merge under both profiles.
  REQUIRE(work.batch.audit.size() == 2);
  ::profiled::internal::v1::MergeRecord audit;
  REQUIRE(audit.ParseFromString(work.batch.audit[0].second));
  CHECK(audit.rule() == identity::MergeKindName(identity::MergeKind::kMerge));
  CHECK_FALSE(s.Stored(anon_id).has_value());
  const core::Profile survivor = *s.Stored(user_id);
  CHECK(survivor.version == 3);
  CHECK(survivor.identities.size() == 2);
  CHECK(survivor.merge_times_ms == std::vector<int64_t>{T + 2});
}

TEST_CASE("apply: a re-sent event changes nothing and is counted once as a duplicate",
          "[stages][dedup]") {
  Stages s;
  const auto e = testing::MakeEvent("e1", "product_viewed", T, "u1", "c", "P1");
  s.Run({Message("events", 0, Proto(e))});
  BatchWork again = s.Run({Message("events", 1, Proto(e))});
  CHECK(again.counts.duplicates == 1);
  CHECK(again.counts.applied == 0);
  CHECK(again.batch.outbox.empty());         // nothing changed: nothing published
  CHECK(again.batch.positions.size() == 1);  // but the position moves on
  CHECK(s.Stored(core::ProfileIdFor({"user_id", "u1"}))->version == 1);
}

TEST_CASE("timers: a cart turns abandoned once, on time, with no new event", "[stages][timers]") {
  Stages s;
  const core::PartitionKey p{"events", 0};
  s.Run({Message("events", 0,
                 Proto(testing::MakeEvent("cart-1", "added_to_cart", T, "u1", "shoes", "P1")))});
  // Twenty minutes on only the cold start has turned: the one event's
  // weight (3, a cart add) was exactly the threshold and decays below it at
  // once. The session ends at +30 min, the cart turns at +1 h.
  s.clock.Observe(p, T + 20 * kMinute);
  REQUIRE(s.timers.MaybeDue(T + 20 * kMinute));  // unknown yet: it looks
  auto early = s.timers.Collect(T + 20 * kMinute, s.clock);
  REQUIRE_OK(early.status());
  CHECK(early->fired == 1);
  REQUIRE(early->batch.outbox.size() == 1);
  v1::ProfileUpdate cold;
  REQUIRE(cold.ParseFromString(Record(early->batch.outbox[0]).second));
  CHECK(cold.signals().cold_start().cold());
  CHECK_FALSE(cold.signals().cart().abandoned());
  REQUIRE_OK(s.store->Commit(early->batch));
  REQUIRE_OK(s.timers.Committed(*early));
  CHECK_FALSE(s.timers.MaybeDue(T + 20 * kMinute));

  // Two hours on, the cart has turned: one update, same version, later as_of.
  s.clock.Observe(p, T + 120 * kMinute);
  auto due = s.timers.Collect(T + 120 * kMinute, s.clock);
  REQUIRE_OK(due.status());
  CHECK(due->fired >= 1);
  REQUIRE(due->batch.outbox.size() == 1);
  v1::ProfileUpdate turned;
  REQUIRE(turned.ParseFromString(Record(due->batch.outbox[0]).second));
  CHECK(turned.version() == 1);
  CHECK(turned.as_of_ms() == T + 120 * kMinute);
  CHECK(turned.signals().cart().abandoned());
  REQUIRE_OK(s.store->Commit(due->batch));
  REQUIRE_OK(s.timers.Committed(*due));

  // A minute later nothing is due again: the next transition is days away.
  s.clock.Observe(p, T + 121 * kMinute);
  auto after = s.timers.Collect(T + 121 * kMinute, s.clock);
  REQUIRE_OK(after.status());
  CHECK(after->fired == 0);
  CHECK(after->batch.outbox.empty());
}

TEST_CASE("timers: a profile past the retention TTL expires with its links and a tombstone",
          "[stages][timers][retention]") {
  PipelineOptions o = Stages::Defaults();
  o.retention_ttl_ms = 30LL * 24 * 60 * kMinute;
  Stages s(o);
  const core::PartitionKey p{"events", 0};
  s.Run({Message("events", 0, Proto(testing::MakeEvent("e1", "product_viewed", T, "u1")))});
  const std::string id = core::ProfileIdFor({"user_id", "u1"});
  const int64_t expiry = T + o.retention_ttl_ms;
  s.clock.Observe(p, expiry);
  // Other timers (lifecycle stages) fire on the way; the expiry comes last.
  TimerWork work;
  for (int round = 0; round < 10 && work.expired.empty(); ++round) {
    auto collected = s.timers.Collect(expiry, s.clock);
    REQUIRE_OK(collected.status());
    work = *std::move(collected);
    REQUIRE_OK(s.store->Commit(work.batch));
    REQUIRE_OK(s.timers.Committed(work));
  }
  REQUIRE(work.expired.size() == 1);
  CHECK(work.expired[0].id == id);
  CHECK(Record(work.batch.outbox.back()) == std::pair<std::string, std::string>{id, ""});
  CHECK(work.batch.identity_links_deleted ==
        std::vector<std::string>{store::IdentityKey("user_id", "u1")});
  CHECK_FALSE(s.Stored(id).has_value());
}

TEST_CASE("a batch gathers what is left of max_delay since the last poll and never more",
          "[stages][gather]") {
  using std::chrono::milliseconds;
  const GatherWindow::Clock::time_point t0{};
  GatherWindow window(20);
  CHECK(window.NextGatherMs(t0) == 20);  // the first poll: all of it
  window.Polled(t0);
  CHECK(window.NextGatherMs(t0) == 20);                      // straight back: all of it
  CHECK(window.NextGatherMs(t0 + milliseconds(7)) == 13);   // 7 ms spent on the batch
  CHECK(window.NextGatherMs(t0 + milliseconds(20)) == 0);   // at the limit
  CHECK(window.NextGatherMs(t0 + milliseconds(21)) == 0);   // just over
  CHECK(window.NextGatherMs(t0 + milliseconds(5000)) == 0); // far over: never negative
  window.Polled(t0 + milliseconds(5000));
  CHECK(window.NextGatherMs(t0 + milliseconds(5001)) == 19);

  GatherWindow off(0);
  CHECK(off.NextGatherMs(t0) == 0);
  off.Polled(t0);
  CHECK(off.NextGatherMs(t0 + milliseconds(1)) == 0);
}

TEST_CASE("back-pressure pauses at the bound and resumes at half of it, without flapping",
          "[stages][backpressure]") {
  BackPressure b(40);
  CHECK(b.Next(0) == BackPressure::kNone);
  CHECK(b.Next(39) == BackPressure::kNone);
  CHECK(b.Next(40) == BackPressure::kPause);
  CHECK(b.paused());
  CHECK(b.Next(41) == BackPressure::kNone);  // already paused
  CHECK(b.Next(21) == BackPressure::kNone);  // draining, not yet half
  CHECK(b.Next(39) == BackPressure::kNone);  // a delivery report's wobble
  CHECK(b.Next(20) == BackPressure::kResume);
  CHECK_FALSE(b.paused());
  CHECK(b.Next(39) == BackPressure::kNone);
  CHECK(b.Next(1000) == BackPressure::kPause);  // far over: one pause
  CHECK(b.Next(0) == BackPressure::kResume);
}

}  // namespace
}  // namespace profiled::pipeline::internal

namespace profiled::pipeline::internal {
namespace {

// A format only this test knows: "user|type|time" lines. Adding it takes
// its decoder and one registration, nothing in the pipeline.
class PipeDecoder final : public ingest::EventDecoder {
 public:
  std::optional<ingest::Rejection> Decode(std::string_view payload,
                                          std::vector<v1::InteractionEvent>& out) override {
    const size_t a = payload.find('|'), b = payload.find('|', a + 1);
    if (a == std::string_view::npos || b == std::string_view::npos) {
      return ingest::Rejection{ingest::RejectReason::kUndecodable, "not user|type|time"};
    }
    v1::InteractionEvent e;
    e.set_event_id(std::string(payload));
    e.mutable_identities()->set_user_id(std::string(payload.substr(0, a)));
    e.set_type(std::string(payload.substr(a + 1, b - a - 1)));
    e.set_event_time_ms(std::stoll(std::string(payload.substr(b + 1))));
    out.push_back(std::move(e));
    return std::nullopt;
  }
};

TEST_CASE("a new input format is one decoder and one registration", "[stages][formats]") {
  ingest::EventFormat pipe{.name = "test-pipe",
                           .summary = "user|type|time",
                           .split_file = ingest::internal::SplitLines,
                           .create = [](const ingest::DecoderOptions&)
                               -> absl::StatusOr<std::unique_ptr<ingest::EventDecoder>> {
                             return std::make_unique<PipeDecoder>();
                           }};
  if (ingest::FindEventFormat("test-pipe") == nullptr) {
    REQUIRE_OK(ingest::RegisterEventFormat(pipe));
  }
  CHECK(absl::IsAlreadyExists(ingest::RegisterEventFormat(pipe)));
  CHECK_FALSE(ingest::RegisterEventFormat({.name = "half"}).ok());

  PipelineOptions o = Stages::Defaults();
  o.inputs["pipes"].format = "test-pipe";
  REQUIRE_OK(o.Validate());
  Stages s(o);
  BatchWork work = s.Run({Message("pipes", 0, "u7|product_viewed|" + std::to_string(T)),
                          Message("pipes", 1, "garbage")});
  CHECK(work.counts.applied == 1);
  REQUIRE(work.read.letters.size() == 1);
  CHECK(work.read.letters[0].reason == "undecodable_protobuf");
  REQUIRE(work.counts.reasons.size() == 1);
  CHECK(work.counts.reasons[0] == ingest::RejectReason::kUndecodable);
  CHECK(s.Stored(core::ProfileIdFor({"user_id", "u7"}))->version == 1);
}

TEST_CASE("erasure: the person goes with their links, a tombstone, a receipt and a suppression",
          "[stages][erasure]") {
  PipelineOptions o = Stages::Defaults();
  o.receipts_topic = "receipts";
  Stages s(o);
  s.Run({Message("events", 0, Proto(testing::MakeEvent("e1", "product_viewed", T, "u1"))),
         Message("events", 1, Proto(testing::MakeEvent("e2", "product_viewed", T, "u2")))});
  const std::string id = core::ProfileIdFor({"user_id", "u1"});
  v1::ControlRequest erase;
  erase.mutable_erase()->set_request_id("r1");
  erase.mutable_erase()->set_kind("user_id");
  erase.mutable_erase()->set_value("u1");
  BatchWork work = s.Run({Message("control", 0, erase.SerializeAsString())});
  CHECK(work.counts.erasures == 1);
  CHECK_FALSE(s.Stored(id).has_value());
  REQUIRE(s.Stored(core::ProfileIdFor({"user_id", "u2"})).has_value());  // only that person
  CHECK(work.batch.identity_links_deleted ==
        std::vector<std::string>{store::IdentityKey("user_id", "u1")});
  CHECK(work.batch.purges_pending == std::vector<std::string>{"r1"});
  CHECK(work.purge.profile_ids == std::vector<std::string>{id});
  // A tombstone for the profile and a receipt naming the request.
  bool tombstone = false, receipt = false;
  for (const std::string& r : work.batch.outbox) {
    ::profiled::internal::v1::OutboxRecord record;
    REQUIRE(record.ParseFromString(r));
    tombstone =
        tombstone || (record.topic() == "updates" && record.key() == id && record.value().empty());
    receipt = receipt || (record.topic() == "receipts" && record.key() == "r1");
  }
  CHECK(tombstone);
  CHECK(receipt);
  // A late event naming the erased identity is refused, not re-created.
  BatchWork late =
      s.Run({Message("events", 2, Proto(testing::MakeEvent("e3", "product_viewed", T + 1, "u1")))});
  CHECK(late.counts.erasure_suppressed == 1);
  CHECK_FALSE(s.Stored(id).has_value());
}

}  // namespace
}  // namespace profiled::pipeline::internal
