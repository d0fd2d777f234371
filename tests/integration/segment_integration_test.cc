// Segment-spec JSON through a real Kafka-protocol broker: Segment's own
// fixtures link and merge profiles (alias between two user ids, a re-sent
// identify counted once), and a malformed corpus lands on the dead-letter
// topic message for message while every valid event is applied.
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "profiled/core/profile_id.h"
#include "profiled/kafka/mock_cluster.h"
#include "profiled/v1/profile_update.pb.h"
#include "profiled/identity/identity_rules.h"
#include "support/kafka_harness.h"
#include "support/rocksdb_scan.h"
#include "support/test_support.h"

namespace profiled {
namespace {

std::string SegmentFixture(const std::string& name) {
  return testing::ReadSourceFile("tests/data/segment-spec/" + name);
}

// Every fixture reuses the messageId "I'm unique"; give each occurrence its
// own id so the events are distinct (the de-duplication would otherwise
// rightly count them once).
std::string WithDistinctIds(const std::string& json, const std::string& prefix) {
  std::string out;
  size_t from = 0, n = 0;
  for (size_t at; (at = json.find("I'm unique", from)) != std::string::npos; from = at + 10) {
    absl::StrAppend(&out, json.substr(from, at - from), prefix, "-", n++);
  }
  return out + json.substr(from);
}

pipeline::PipelineOptions SegmentOptions(const std::string& topic) {
  pipeline::PipelineOptions options;
  options.output_topic = "updates";
  options.clock_mode = core::PipelineClock::Mode::kEventTime;
  options.inputs[topic] = {"segment-json", "web"};
  return options;
}

v1::ProfileUpdate ParseUpdate(const kafka::ConsumedMessage& m) {
  v1::ProfileUpdate u;
  REQUIRE(u.ParseFromArray(m.payload().data(), static_cast<int>(m.payload().size())));
  return u;
}

TEST_CASE("Segment track, identify and alias fixtures merge two user ids into one profile",
          "[integration][segment][identity]") {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("segment", 1));  // one partition: the script's order holds
  REQUIRE_OK((*cluster)->CreateTopic("updates", 1));
  const std::string bootstrap = (*cluster)->bootstrap();

  // User "A" downloads (track), user "B" is identified — twice, the second a
  // re-send with the same messageId — then alias says A is now B.
  const std::string track = absl::StrReplaceAll(
      WithDistinctIds(SegmentFixture("test-enqueue-track.json"), "track"),
      {{R"("userId": "123456")", R"("userId": "A")"}});
  const std::string identify = WithDistinctIds(SegmentFixture("test-enqueue-identify.json"), "identify");
  const std::string alias = WithDistinctIds(SegmentFixture("test-enqueue-alias.json"), "alias");
  REQUIRE(track.find(R"("userId": "A")") != std::string::npos);
  testing::ProduceRecords(bootstrap, "segment",
                          {{"A", track}, {"B", identify}, {"B", identify}, {"B", alias}});

  testing::TempDir dir;
  testing::PipelineRunner runner(dir.Sub("store"), SegmentOptions("segment"), {"segment"},
                                 bootstrap, bootstrap);
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().ConsumedTotal() == 4 && runner.store().OutboxDepth() == 0;
  }));
  CHECK(runner.metrics().DeadLettersTotal() == 0);
  CHECK(runner.metrics().applied.Value() == 3);
  CHECK(runner.metrics().duplicates.Value() == 1);
  CHECK(runner.metrics().merges.Value() == 1);

  // Both founded by a user id: the smaller profile id survives.
  const std::string id_a = core::ProfileIdFor(core::Identity{"user_id", "A"});
  const std::string id_b = core::ProfileIdFor(core::Identity{"user_id", "B"});
  const std::string survivor = std::min(id_a, id_b);
  const std::string absorbed = std::max(id_a, id_b);
  std::vector<std::optional<std::string>> mapped;
  REQUIRE_OK(runner.store().MultiGetIdentities(
      {std::string("user_id\0A", 9), std::string("user_id\0B", 9)}, mapped));
  CHECK(mapped[0] == survivor);
  CHECK(mapped[1] == survivor);
  size_t stored = 0;
  REQUIRE_OK(runner.store().ForEachProfile([&](std::string_view id, std::string_view) {
    CHECK(id == survivor);
    ++stored;
    return true;
  }));
  CHECK(stored == 1);
  const uint64_t published = runner.publisher_metrics().published.Value();
  runner.Stop();

  std::vector<kafka::ConsumedMessage> out = testing::ReadTopic(bootstrap, "updates", published);
  REQUIRE(out.size() == published);
  v1::ProfileUpdate last;
  std::vector<std::string> absorbed_trail;
  for (const kafka::ConsumedMessage& m : out) {
    if (std::string(m.key()) == absorbed) {
      absorbed_trail.push_back(m.tombstone() ? "tombstone"
                                             : "merged_into:" + ParseUpdate(m).merged_into());
      continue;
    }
    REQUIRE(std::string(m.key()) == survivor);
    v1::ProfileUpdate u = ParseUpdate(m);
    if (u.version() >= last.version()) last = u;  // ties: the later (time-driven) one
  }
  REQUIRE(absorbed_trail.size() >= 2);
  CHECK(absorbed_trail[absorbed_trail.size() - 2] == "merged_into:" + survivor);
  CHECK(absorbed_trail.back() == "tombstone");
  CHECK(last.version() == 3);  // track + identify + alias; the re-send not counted
  std::set<std::string> identities;
  for (const auto& id : last.identities()) identities.insert(id.kind() + ":" + id.value());
  CHECK(identities == std::set<std::string>{"user_id:A", "user_id:B"});
  WARN("segment fixtures: track(A), identify(B) x2, alias(A->B) -> profile " << survivor
                                                                                << " version "
                                                                                << last.version());
}

// One malformed message and the reason it must be rejected with.
struct Bad {
  std::string name, json, reason;
};

std::vector<Bad> MalformedCorpus() {
  const std::string good =
      R"({"type":"track","event":"X","messageId":"bad","userId":"u-bad","timestamp":"2024-03-01T10:00:00Z")";
  std::string deep = good + R"(,"properties":{"a":)";
  for (int i = 0; i < 40; ++i) deep += "[";
  for (int i = 0; i < 40; ++i) deep += "]";
  std::string many = good + R"(,"properties":{)";
  for (int i = 0; i < 300; ++i) absl::StrAppend(&many, i ? "," : "", "\"k", i, "\":1");
  return {
      {"empty", "", "empty_message"},
      {"truncated", good.substr(0, good.size() - 7), "invalid_json"},
      {"trailing", good + "} {}", "invalid_json"},
      {"not an object", "[1,2,3]", "wrong_field_type"},
      {"userId a number",
       R"({"type":"track","event":"X","messageId":"m","userId":42,"timestamp":"2024-03-01T10:00:00Z"})",
       "wrong_field_type"},
      {"invalid utf-8", "{\"type\":\"track\",\"event\":\"X\",\"messageId\":\"m\",\"userId\":\"\xc3\x28\","
                        "\"timestamp\":\"2024-03-01T10:00:00Z\"}",
       "invalid_utf8"},
      {"deep", deep + "}}", "nesting_too_deep"},
      {"huge string", good + R"(,"properties":{"a":")" + std::string(20000, 'x') + "\"}}",
       "string_too_long"},
      {"too many properties", many + "}}", "too_many_properties"},
      {"unknown type", R"({"type":"teleport","messageId":"m","userId":"u","timestamp":"2024-03-01T10:00:00Z"})",
       "unsupported_segment_type"},
      {"no message id", R"({"type":"track","event":"X","userId":"u","timestamp":"2024-03-01T10:00:00Z"})",
       "missing_event_id"},
      {"bad timestamp", R"({"type":"track","event":"X","messageId":"m","userId":"u","timestamp":"soon"})",
       "invalid_event_time"},
      {"from the future", R"({"type":"track","event":"X","messageId":"m","userId":"u","timestamp":"2100-01-01T00:00:00Z"})",
       "event_in_future"},
      {"only junk ids", R"({"type":"track","event":"X","messageId":"m","userId":"undefined","anonymousId":"0","timestamp":"2024-03-01T10:00:00Z"})",
       "only_blocked_identities"},
      {"bad batch member", "{\"batch\":[" + good + "},{\"type\":\"track\"}]}", "missing_type"},
  };
}

// The strings of the Big List of Naughty Strings, as JSON literals (one per
// line in blns.json).
std::vector<std::string> NaughtyLiterals() {
  const std::string text = testing::ReadSourceFile("tests/data/naughty-strings/blns.json");
  std::vector<std::string> literals;
  size_t from = 0;
  for (size_t end; (end = text.find('\n', from)) != std::string::npos; from = end + 1) {
    std::string line = text.substr(from, end - from);
    const size_t open = line.find('"');
    const size_t close = line.rfind('"');
    if (open == std::string::npos || close == open) continue;
    literals.push_back(line.substr(open, close - open + 1));
  }
  return literals;
}

TEST_CASE("the malformed corpus is dead-lettered message for message and every valid event "
          "is applied",
          "[integration][segment][deadletter]") {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("segment", 1));  // one partition: offsets are known
  REQUIRE_OK((*cluster)->CreateTopic("updates", 2));
  REQUIRE_OK((*cluster)->CreateTopic(testing::PipelineRunner::kDeadLetterTopic, 1));
  const std::string bootstrap = (*cluster)->bootstrap();

  std::vector<std::pair<std::string, std::string>> records;
  std::map<int64_t, std::string> reason_at;   // offset -> reason it must get
  std::map<int64_t, size_t> either_at;        // offsets that may go either way -> literal size
  size_t valid_events = 0;
  auto add = [&](std::string json, std::optional<std::string> reason, size_t events) {
    if (reason) reason_at[static_cast<int64_t>(records.size())] = *reason;
    records.emplace_back("k" + std::to_string(records.size()), std::move(json));
    valid_events += events;
  };
  // Every Segment fixture (batch bodies included), with distinct ids.
  const std::map<std::string, size_t> fixture_events = {
      {"test-context-track.json", 1}, {"test-enqueue-alias.json", 1},
      {"test-enqueue-group.json", 1}, {"test-enqueue-identify.json", 1},
      {"test-enqueue-page.json", 1},  {"test-enqueue-screen.json", 1},
      {"test-enqueue-track.json", 1}, {"test-integrations-track.json", 1},
      {"test-interval-track.json", 1}, {"test-many-track.json", 3},
      {"test-messageid-track.json", 1}, {"test-timestamp-track.json", 1}};
  for (const auto& [file, events] : fixture_events) {
    add(WithDistinctIds(SegmentFixture(file), file), std::nullopt, events);
  }
  const std::vector<Bad> corpus = MalformedCorpus();
  const std::vector<std::string> naughty = NaughtyLiterals();
  REQUIRE(naughty.size() > 500);
  for (size_t i = 0; i < naughty.size(); ++i) {
    // As a property value: data, always accepted.
    add(absl::StrCat(R"({"type":"track","event":"Naughty","messageId":"nv-)", i,
                     R"(","userId":"naughty-user","timestamp":"2024-03-01T10:00:00Z",)",
                     R"("properties":{"value":)", naughty[i], "}}"),
        std::nullopt, 1);
    // As the user id: applied, or refused when it is a blocked value ("undefined", "0" ...)
    // or longer than an identity may be (input.event_limits.max_key_bytes).
    either_at[static_cast<int64_t>(records.size())] = naughty[i].size();
    add(absl::StrCat(R"({"type":"track","event":"Naughty","messageId":"nu-)", i,
                     R"(","userId":)", naughty[i], R"(,"timestamp":"2024-03-01T10:00:00Z"})"),
        std::nullopt, 0);
    if (i < corpus.size()) add(corpus[i].json, corpus[i].reason, 0);
  }
  // Last: a valid event behind all of it — the partition never stalled.
  add(R"({"type":"track","event":"Order Completed","messageId":"last","userId":"after-the-storm",)"
      R"("timestamp":"2024-03-02T10:00:00Z","properties":{"revenue":10}})",
      std::nullopt, 1);
  testing::ProduceRecords(bootstrap, "segment", records);

  pipeline::PipelineOptions options = SegmentOptions("segment");
  options.event_time.future = ingest::EventTimePolicy::Future::kReject;
  testing::TempDir dir;
  testing::PipelineRunner runner(dir.Sub("store"), options, {"segment"}, bootstrap, bootstrap);
  REQUIRE(testing::WaitUntil([&] { return runner.metrics().ConsumedTotal() == records.size(); }));
  const double letters_total = runner.metrics().DeadLettersTotal();
  const double applied = runner.metrics().applied.Value();
  runner.Stop();

  // Every message is accounted for: applied, or on the dead-letter topic.
  std::vector<kafka::ConsumedMessage> letters = testing::ReadTopic(
      bootstrap, testing::PipelineRunner::kDeadLetterTopic, static_cast<size_t>(letters_total));
  REQUIRE(letters.size() == static_cast<size_t>(letters_total));
  std::set<int64_t> lettered;
  size_t blocked_user_ids = 0;
  for (const kafka::ConsumedMessage& l : letters) {
    const int64_t offset = std::stoll(std::string(*l.header("profiled.source.offset")));
    const std::string reason(*l.header("profiled.reason"));
    INFO("dead letter for offset " << offset << ": " << reason << ": "
                                   << *l.header("profiled.detail"));
    lettered.insert(offset);
    CHECK(std::string(l.payload()) == records[static_cast<size_t>(offset)].second);
    if (either_at.count(offset) == 1) {
      if (reason == "string_too_long") {
        CHECK(either_at.at(offset) > ingest::EventLimits{}.max_key_bytes);  // the JSON literal
      } else {
        CHECK((reason == "only_blocked_identities" || reason == "no_identity"));
      }
      ++blocked_user_ids;
      continue;
    }
    REQUIRE(reason_at.count(offset) == 1);
    CHECK(reason == reason_at.at(offset));
  }
  for (const auto& [offset, reason] : reason_at) {
    INFO("expected " << reason << " at offset " << offset);
    CHECK(lettered.count(offset) == 1);
  }
  CHECK(blocked_user_ids > 5);  // "", "undefined", "null", "0", "-1" at least
  CHECK(applied == static_cast<double>(valid_events + naughty.size() - blocked_user_ids));
  WARN("malformed corpus: " << records.size() << " messages, " << applied << " events applied, "
                            << letters.size() << " dead letters (" << corpus.size()
                            << " malformed, " << blocked_user_ids << " junk user ids)");
}

TEST_CASE("fields the privacy filter drops never reach RocksDB, the output or a dead letter",
          "[integration][segment][privacy]") {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("segment", 1));
  REQUIRE_OK((*cluster)->CreateTopic("updates", 1));
  REQUIRE_OK((*cluster)->CreateTopic(testing::PipelineRunner::kDeadLetterTopic, 1));
  const std::string bootstrap = (*cluster)->bootstrap();

  // Secrets a careless source sends along, each a unique needle to search for.
  const std::string ip = "203.0.113.77";
  const std::string password = "hunter2-needle";
  const std::string card = "4111111111111111";
  const std::string email = "Leak.Check@Example.com";
  const std::string context = R"("context":{"ip":")" + ip + R"(","locale":"de-DE"})";
  testing::ProduceRecords(bootstrap, "segment", {
      {"u", R"({"type":"identify","messageId":"m1","userId":"u-7","timestamp":"2024-03-01T10:00:00Z",)" +
                context + R"(,"traits":{"password":")" + password + R"(","email":")" + email +
                R"(","plan":"gold"}})"},
      {"u", R"({"type":"track","event":"Product Viewed","messageId":"m2","userId":"u-7",)"
            R"("timestamp":"2024-03-01T10:01:00Z",)" + context +
                R"(,"properties":{"product_id":"P1","category":"shoes","card_number":")" + card +
                R"("}})"},
      // Rejected (unknown type) while carrying the same secrets.
      {"u", R"({"type":"teleport","messageId":"m3","userId":"u-7","timestamp":"2024-03-01T10:02:00Z",)" +
                context + R"(,"properties":{"password":")" + password + R"("}})"}});

  testing::TempDir dir;
  uint64_t published = 0;
  {
    testing::PipelineRunner runner(dir.Sub("store"), SegmentOptions("segment"), {"segment"},
                                   bootstrap, bootstrap);
    REQUIRE(testing::WaitUntil([&] {
      return runner.metrics().ConsumedTotal() == 3 && runner.store().OutboxDepth() == 0;
    }));
    CHECK(runner.metrics().applied.Value() == 2);
    CHECK(runner.metrics().privacy_dropped.Value() == 4);  // ip twice, password, card_number
    CHECK(runner.metrics().privacy_hashed.Value() == 1);   // traits.email
    published = runner.publisher_metrics().published.Value();
    runner.Stop();
  }  // the store is closed: read it raw

  const std::vector<std::string> needles = {ip, password, card, email, "leak.check@example.com"};
  size_t entries = 0;
  REQUIRE_OK(testing::ScanRocksDb(dir.Sub("store"), [&](std::string_view cf, std::string_view key,
                                                        std::string_view value) {
    ++entries;
    for (const std::string& needle : needles) {
      INFO("column family " << cf << " holds " << needle);
      CHECK(key.find(needle) == std::string_view::npos);
      CHECK(value.find(needle) == std::string_view::npos);
    }
  }));
  CHECK(entries > 3);  // a profile, graph links, positions at least

  std::vector<kafka::ConsumedMessage> out = testing::ReadTopic(bootstrap, "updates", published);
  REQUIRE(out.size() == published);
  v1::ProfileUpdate last;
  for (const kafka::ConsumedMessage& m : out) {
    for (const std::string& needle : needles) CHECK(m.payload().find(needle) == std::string_view::npos);
    v1::ProfileUpdate u = ParseUpdate(m);
    if (u.version() >= last.version()) last = u;  // ties: the later (time-driven) one
  }
  CHECK(last.traits().at("plan") == "gold");
  CHECK(last.traits().at("email") == identity::EmailSha256(email));  // joinable with the identity
  CHECK(last.traits().count("password") == 0);

  std::vector<kafka::ConsumedMessage> letters =
      testing::ReadTopic(bootstrap, testing::PipelineRunner::kDeadLetterTopic, 1);
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].header("profiled.reason") == std::optional<std::string_view>("unsupported_segment_type"));
  CHECK(letters[0].header("profiled.redacted") == std::optional<std::string_view>("drop-list"));
  const std::string_view letter = letters[0].payload();
  for (const std::string& needle : needles) CHECK(letter.find(needle) == std::string_view::npos);
  CHECK(letter.find("teleport") != std::string_view::npos);
  CHECK(letter.find("de-DE") != std::string_view::npos);  // only the dropped fields are gone
}

TEST_CASE("consent withdrawn mid-journey: personalization stops at once, analytics denial stops storage",
          "[integration][segment][consent]") {
  auto cluster = kafka::MockCluster::Start(1);
  REQUIRE_OK(cluster.status());
  REQUIRE_OK((*cluster)->CreateTopic("segment", 1));
  REQUIRE_OK((*cluster)->CreateTopic("updates", 1));
  const std::string bootstrap = (*cluster)->bootstrap();
  auto view = [](int i, const std::string& consent) {
    return absl::StrCat(R"({"type":"track","event":"Product Viewed","messageId":"v)", i,
                        R"(","userId":"u-consent","timestamp":"2024-03-01T10:0)", i,
                        R"(:00Z","properties":{"product_id":"P)", i, R"(","category":"shoes"},)",
                        R"("context":{"consent":{"categoryPreferences":{)", consent, "}}}}");
  };
  testing::ProduceRecords(bootstrap, "segment",
                          {{"u", view(1, "")},
                           {"u", view(2, "")},
                           {"u", view(3, R"("Personalization":false)")},
                           {"u", view(4, R"("Analytics":false)")},
                           {"u", view(5, "")}});
  testing::TempDir dir;
  // One message per batch: every step publishes its own update.
  pipeline::PipelineOptions options = SegmentOptions("segment");
  options.batch_max_events = 1;
  testing::PipelineRunner runner(dir.Sub("store"), options, {"segment"}, bootstrap, bootstrap);
  REQUIRE(testing::WaitUntil([&] {
    return runner.metrics().ConsumedTotal() == 5 && runner.store().OutboxDepth() == 0;
  }));
  CHECK(runner.metrics().applied.Value() == 3);             // views 1-3
  CHECK(runner.metrics().consent_suppressed.Value() == 2);  // views 4-5: acknowledged, not stored
  runner.Stop();

  std::vector<v1::ProfileUpdate> updates;
  for (const kafka::ConsumedMessage& m : testing::ReadTopicToEnd(bootstrap, "updates")) {
    updates.push_back(ParseUpdate(m));
  }
  REQUIRE(updates.size() == 5);
  auto granted = [](const v1::ProfileUpdate& u, const std::string& purpose) {
    for (const auto& c : u.consent()) {
      if (c.purpose() == purpose) return c.granted();
    }
    return false;
  };
  CHECK(updates[1].score_families_size() > 0);
  CHECK(updates[1].signals().has_top_intents());
  // The withdrawal is itself published, and takes effect in that very update.
  CHECK_FALSE(granted(updates[2], "personalization"));
  CHECK(updates[2].score_families_size() == 0);
  CHECK_FALSE(updates[2].signals().has_top_intents());
  CHECK_FALSE(updates[2].signals().has_journey());
  CHECK(updates[2].signals().has_lifecycle());  // analytics still granted
  CHECK(updates[2].version() == 3);
  // Analytics denied: the event is not stored; the decision is, and published.
  CHECK_FALSE(granted(updates[3], "analytics"));
  CHECK(updates[3].version() == 3);
  CHECK_FALSE(updates[3].signals().has_lifecycle());
  CHECK(updates[4].version() == 3);
}

}  // namespace
}  // namespace profiled
