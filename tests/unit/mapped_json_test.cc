// Mapped JSON: the example ESP field maps (deploy/examples/esp-webhooks.yaml)
// turn the real SendGrid and Mailgun webhook fixtures into the expected
// envelopes; time formats, bad records and bad maps are handled explicitly.
#include "profiled/ingest/mapped_json.h"

#include "profiled/config/app_config.h"
#include "support/test_support.h"

namespace profiled::ingest {
namespace {

MappedJsonDecoder ExampleDecoder(const std::string& topic) {
  auto config = config::LoadConfigFile(PROFILED_SOURCE_DIR "/deploy/examples/esp-webhooks.yaml");
  REQUIRE_OK(config.status());
  const pipeline::InputTopicOptions& input = config->runtime.pipeline.inputs.at(topic);
  REQUIRE(input.format == "json");
  auto decoder = MappedJsonDecoder::Create({input.default_channel, {}, input.map});
  REQUIRE_OK(decoder.status());
  return std::move(*decoder);
}

std::vector<v1::InteractionEvent> DecodeOk(MappedJsonDecoder& decoder, const std::string& json) {
  std::vector<v1::InteractionEvent> out;
  auto rejection = decoder.Decode(json, out);
  INFO((rejection ? std::string(rejection->code()) + ": " + rejection->detail : "ok"));
  REQUIRE_FALSE(rejection.has_value());
  return out;
}

std::string ReasonOf(MappedJsonDecoder& decoder, const std::string& json) {
  std::vector<v1::InteractionEvent> out;
  auto rejection = decoder.Decode(json, out);
  if (!rejection) return "accepted";
  CHECK(out.empty());
  return std::string(rejection->code());
}

TEST_CASE("the SendGrid fixture becomes an email-channel event", "[ingest][mapped]") {
  MappedJsonDecoder decoder = ExampleDecoder("esp.sendgrid");
  auto events =
      DecodeOk(decoder, testing::ReadSourceFile("tests/data/email-webhooks/sendgrid-webhook.json"));
  REQUIRE(events.size() == 1);
  const v1::InteractionEvent& e = events[0];
  CHECK(e.event_id() == "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA");
  CHECK(e.type() == "email_dropped");
  CHECK(e.event_time_ms() == 1'600'112'492'000);
  CHECK(e.channel() == "email");
  CHECK(e.identities().email() == "hello@world.com");
  CHECK(e.properties().at("reason") == "Bounced Address");
  CHECK(e.properties().at("message_id").rfind("LRzXl_NHStOGhQ4kofSm_A.", 0) == 0);
  CHECK(e.properties().count("url") == 0);  // absent in the source: not set
}

TEST_CASE("every Mailgun fixture becomes the expected email event", "[ingest][mapped]") {
  MappedJsonDecoder decoder = ExampleDecoder("esp.mailgun");
  struct Want {
    std::string file, type, id;
    int64_t time_ms;
  };
  const std::vector<Want> wants = {
      {"accepted", "email_accepted", "4o7-z86dSkSI54c6IudeuA:accepted", 1'707'402'341'912},
      {"clicks", "email_clicked", "Ase7i2zsRYeDXztHGENqRA:clicked", 1'521'243'339'873},
      {"delivered_messages", "email_delivered", "CPgfbmQMTCKtHW6uIWtuVe:delivered",
       1'521'472'262'000},
      {"opens", "email_opened", "Ase7i2zsRYeDXztHGENqRA:opened", 1'521'243'339'873},
      {"permanent_failure", "email_bounced", "G9Bn5sl1TC6nu79C8C0bwg:failed", 1'521'233'195'375},
      {"permanent_failure_no_description", "email_bounced", "G9Bn5sl1TC6nu79C8C0bwg:failed",
       1'521'233'195'375},
      {"spam_complaints", "email_spam_reported", "-Agny091SquKnsrW2NEKUA:complained",
       1'521'233'123'501},
      {"suppression_failure", "email_bounced", "G9Bn5sl1TC6nu79C8C0bwg:failed", 1'521'233'195'375},
      {"temporary_failure", "email_bounced", "Fs7-5t81S2ispqxqDw2U4Q:failed", 1'521'472'262'908},
      {"unsubscribes", "unsubscribed", "Ase7i2zsRYeDXztHGENqRA:unsubscribed", 1'521'243'339'873},
  };
  for (const Want& w : wants) {
    INFO(w.file);
    auto events = DecodeOk(
        decoder, testing::ReadSourceFile("tests/data/email-webhooks/mailgun-" + w.file + ".json"));
    REQUIRE(events.size() == 1);
    const v1::InteractionEvent& e = events[0];
    CHECK(e.type() == w.type);
    CHECK(e.event_id() == w.id);
    CHECK(e.event_time_ms() == w.time_ms);
    CHECK(e.channel() == "email");
    CHECK(e.identities().email() == "alice@example.com");
  }
  auto click =
      DecodeOk(decoder, testing::ReadSourceFile("tests/data/email-webhooks/mailgun-clicks.json"));
  CHECK(click[0].context().device() == "desktop");
  CHECK(click[0].context().os() == "Linux");
  CHECK(click[0].context().ip() == "50.56.129.169");  // the pipeline's privacy filter drops it
  CHECK(click[0].context().user_agent().rfind("Mozilla/5.0 (X11; Linux", 0) == 0);
  CHECK(click[0].properties().at("tags") == R"(["my_tag_1","my_tag_2"])");  // arrays kept as JSON
  CHECK(click[0].properties().at("message_id") == "20130503182626.18666.16540@app.symfony.com");
}

MappedJsonDecoder SimpleDecoder(TimeFormat format = TimeFormat::kAuto, JsonLimits limits = {}) {
  FieldMap map;
  map.event_id = {"/id"};
  map.type = "/what";
  map.time = "/at";
  map.time_format = format;
  map.type_values = {{"buy", "order_completed"}};
  map.fields = {{"identities.user_id", "/user"},
                {"identities.crm_id", "/crm"},
                {"commerce.price", "/price"},
                {"commerce.quantity", "/qty"},
                {"traits.profile", "/profile"}};
  auto decoder = MappedJsonDecoder::Create({"crm", limits, map});
  REQUIRE_OK(decoder.status());
  return std::move(*decoder);
}

TEST_CASE("mapped values: type map, snake case, numbers, other identities, objects as JSON",
          "[ingest][mapped]") {
  MappedJsonDecoder d = SimpleDecoder();
  auto e = DecodeOk(d, R"({"id":7,"what":"buy","at":1700000000,"user":"u1","crm":"C-9",
                           "price":"19.5","qty":2,"profile":{"tier":"gold"}})")[0];
  CHECK(e.event_id() == "7");
  CHECK(e.type() == "order_completed");
  CHECK(e.channel() == "crm");
  CHECK(e.identities().user_id() == "u1");
  CHECK(e.identities().other().at("crm_id") == "C-9");
  CHECK(e.commerce().price() == 19.5);
  CHECK(e.commerce().quantity() == 2);
  CHECK(e.traits().at("profile") == R"({"tier":"gold"})");
  auto other = DecodeOk(d, R"({"id":"x","what":"Link Clicked","at":1700000000,"user":"u1"})")[0];
  CHECK(other.type() == "link_clicked");
  // A top-level array is a batch of records; an empty one holds no event.
  CHECK(DecodeOk(d, R"([{"id":"a","what":"v","at":1700000000,"user":"u"},
                        {"id":"b","what":"v","at":1700000001,"user":"u"}])")
            .size() == 2);
  CHECK(DecodeOk(d, "[]").empty());
}

TEST_CASE("event times: seconds, milliseconds, fractions, RFC 3339 and numeric strings",
          "[ingest][mapped]") {
  auto time_of = [](MappedJsonDecoder& d, const std::string& at) {
    return DecodeOk(d, R"({"id":"e","what":"v","user":"u","at":)" + at + "}")[0].event_time_ms();
  };
  MappedJsonDecoder automatic = SimpleDecoder();
  CHECK(time_of(automatic, "1700000000") == 1'700'000'000'000);
  CHECK(time_of(automatic, "1700000000.25") == 1'700'000'000'250);
  CHECK(time_of(automatic, "1700000000123") == 1'700'000'000'123);  // >= 1e11: milliseconds
  CHECK(time_of(automatic, R"("1700000000")") == 1'700'000'000'000);
  CHECK(time_of(automatic, R"("2023-11-14T22:13:20Z")") == 1'700'000'000'000);
  MappedJsonDecoder millis = SimpleDecoder(TimeFormat::kUnixMillis);
  CHECK(time_of(millis, "1700000000") == 1'700'000'000);
  MappedJsonDecoder rfc = SimpleDecoder(TimeFormat::kRfc3339);
  CHECK(ReasonOf(rfc, R"({"id":"e","what":"v","user":"u","at":1700000000})") ==
        "invalid_event_time");
  CHECK(ReasonOf(automatic, R"({"id":"e","what":"v","user":"u","at":"yesterday"})") ==
        "invalid_event_time");
  CHECK(ReasonOf(automatic, R"({"id":"e","what":"v","user":"u","at":true})") ==
        "invalid_event_time");
  CHECK(ReasonOf(automatic, R"({"id":"e","what":"v","user":"u"})") == "invalid_event_time");
}

TEST_CASE("bad mapped records are rejected with a stable reason", "[ingest][mapped]") {
  MappedJsonDecoder d =
      SimpleDecoder(TimeFormat::kAuto, {.max_batch_events = 2, .max_string_bytes = 64});
  const std::string good = R"({"id":"e","what":"v","at":1700000000,"user":"u"})";
  CHECK(ReasonOf(d, good) == "accepted");
  CHECK(ReasonOf(d, "") == "empty_message");
  CHECK(ReasonOf(d, good.substr(0, 20)) == "invalid_json");
  CHECK(ReasonOf(d, good + "{}") == "invalid_json");
  CHECK(ReasonOf(d, R"({"what":"v","at":1700000000,"user":"u"})") == "missing_event_id");
  CHECK(ReasonOf(d, R"({"id":"e","at":1700000000,"user":"u"})") == "missing_type");
  CHECK(ReasonOf(d, R"({"id":"e","what":"v","at":1700000000})") == "no_identity");
  CHECK(ReasonOf(d, R"({"id":"e","what":"v","at":1700000000,"user":{"a":1}})") ==
        "wrong_field_type");
  CHECK(ReasonOf(d, R"({"id":"e","what":"v","at":1700000000,"user":"u","price":"cheap"})") ==
        "wrong_field_type");
  CHECK(ReasonOf(d, R"({"id":"e","what":"v","at":1700000000,"user":")" + std::string(100, 'x') +
                        "\"}") == "string_too_long");
  CHECK(ReasonOf(d, "[" + good + "," + good + "," + good + "]") == "batch_too_large");
  CHECK(ReasonOf(d, "{\"id\":\"e\",\"what\":\"v\",\"at\":1700000000,\"user\":\"\xff\"}") ==
        "invalid_utf8");
  // One bad record rejects the whole value, naming its index.
  std::vector<v1::InteractionEvent> out;
  auto r = d.Decode("[" + good + R"(,{"id":"e2"}])", out);
  REQUIRE(r.has_value());
  CHECK(r->detail.rfind("[1]: ", 0) == 0);
  CHECK(out.empty());
}

TEST_CASE("a bad field map fails with every problem listed", "[ingest][mapped]") {
  FieldMap map;
  map.type = "event";  // not a pointer
  map.time = "/t";
  map.fields = {{"identities", "/x"}, {"context.shoe_size", "/s"}, {"traits.ok", "no-slash"}};
  auto decoder = MappedJsonDecoder::Create({"web", {}, map});
  REQUIRE_FALSE(decoder.ok());
  const std::string msg(decoder.status().message());
  CHECK_THAT(msg, Catch::Matchers::Contains("event_id: at least one JSON pointer is required"));
  CHECK_THAT(msg, Catch::Matchers::Contains("type: 'event' is not a JSON pointer"));
  CHECK_THAT(msg, Catch::Matchers::Contains("fields.identities: not a mappable envelope field"));
  CHECK_THAT(msg,
             Catch::Matchers::Contains("fields.context.shoe_size: not a mappable envelope field"));
  CHECK_THAT(msg, Catch::Matchers::Contains("fields.traits.ok: 'no-slash' is not a JSON pointer"));
}

}  // namespace
}  // namespace profiled::ingest
