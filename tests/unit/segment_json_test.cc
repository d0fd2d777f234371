// Segment-spec JSON decoding: every fixture of Segment's own Go library
// decodes to the expected envelope, the e-commerce spec maps to commerce
// fields, and a malformed corpus is rejected with a reason — never a crash.
#include "profiled/ingest/segment_json.h"

#include "support/test_support.h"

namespace profiled::ingest {
namespace {

constexpr int64_t k2009 = 1'257'894'000'000;  // 2009-11-10T23:00:00Z

std::string Fixture(const std::string& name) {
  return testing::ReadSourceFile("tests/data/" + name);
}

std::vector<v1::InteractionEvent> DecodeOk(const std::string& json) {
  SegmentDecoder decoder({});
  std::vector<v1::InteractionEvent> out;
  auto rejection = decoder.Decode(json, out);
  INFO((rejection ? std::string(rejection->code()) + ": " + rejection->detail : "ok"));
  REQUIRE_FALSE(rejection.has_value());
  return out;
}

std::string ReasonOf(const std::string& json, JsonLimits limits = {}) {
  SegmentDecoder decoder({.default_channel = "web", .limits = limits});
  std::vector<v1::InteractionEvent> out;
  auto rejection = decoder.Decode(json, out);
  if (!rejection) return "accepted";
  CHECK(out.empty());  // a rejected value yields nothing
  return std::string(rejection->code());
}

TEST_CASE("every Segment fixture decodes to the expected envelope", "[ingest][segment]") {
  struct Want {
    std::string file, type, user_id, event_id;
    int64_t time_ms;
  };
  const std::vector<Want> wants = {
      {"test-enqueue-identify.json", "identify", "B", "I'm unique", k2009},
      {"test-enqueue-alias.json", "alias", "B", "I'm unique", k2009},
      {"test-enqueue-group.json", "group", "B", "I'm unique", k2009},
      {"test-enqueue-page.json", "page_viewed", "B", "I'm unique", k2009},
      {"test-enqueue-screen.json", "screen_viewed", "B", "I'm unique", k2009},
      {"test-enqueue-track.json", "download", "123456", "I'm unique", k2009},
      {"test-integrations-track.json", "download", "123456", "I'm unique", k2009},
      {"test-interval-track.json", "download", "123456", "I'm unique", k2009},
      {"test-messageid-track.json", "download", "123456", "abc", k2009},
      {"test-timestamp-track.json", "download", "123456", "I'm unique", 1'436'569'200'000},
      {"test-context-track.json", "download", "123456", "I'm unique", k2009},
  };
  for (const Want& w : wants) {
    INFO(w.file);
    auto events = DecodeOk(Fixture("segment-spec/" + w.file));
    REQUIRE(events.size() == 1);
    const v1::InteractionEvent& e = events[0];
    CHECK(e.type() == w.type);
    CHECK(e.identities().user_id() == w.user_id);
    CHECK(e.event_id() == w.event_id);
    CHECK(e.event_time_ms() == w.time_ms);
    CHECK(e.channel() == "web");
    if (w.type == "download") {
      CHECK(e.properties().at("application") == "Segment Desktop");
    }
  }
  auto alias = DecodeOk(Fixture("segment-spec/test-enqueue-alias.json"));
  CHECK(alias[0].previous_id() == "A");
  auto context = DecodeOk(Fixture("segment-spec/test-context-track.json"));
  CHECK(context[0].properties().at("platform") == "osx");
  auto many = DecodeOk(Fixture("segment-spec/test-many-track.json"));
  REQUIRE(many.size() == 3);
  for (int i = 0; i < 3; ++i) CHECK(many[i].properties().at("version") == std::to_string(i));
}

TEST_CASE("e-commerce spec events fill the commerce fields", "[ingest][segment]") {
  auto viewed = DecodeOk(R"({"type":"track","event":"Product Viewed","messageId":"m1",
    "timestamp":"2024-03-01T10:00:00.250Z","anonymousId":"anon-1",
    "properties":{"product_id":507,"category":"Electronics/Audio","brand":"Sony","price":"12.50"}})");
  REQUIRE(viewed.size() == 1);
  CHECK(viewed[0].type() == "product_viewed");
  CHECK(viewed[0].event_time_ms() == 1'709'287'200'250);
  CHECK(viewed[0].commerce().product_id() == "507");
  CHECK(viewed[0].commerce().category() == "Electronics.Audio");
  CHECK(viewed[0].commerce().brand() == "Sony");
  CHECK(viewed[0].commerce().price() == Approx(12.5));

  auto order = DecodeOk(R"({"type":"track","event":"Order Completed","messageId":"m2",
    "timestamp":"2024-03-01T10:05:00Z","userId":"u1",
    "properties":{"order_id":"o-9","total":42.5,"currency":"EUR","products":[
      {"product_id":"p1","sku":"ignored","category":"Audio","price":10,"quantity":2},
      {"sku":"p2","category":"Video","brand":"LG","price":22.5,"quantity":1}]}})");
  REQUIRE(order.size() == 1);
  CHECK(order[0].type() == "order_completed");
  CHECK(order[0].commerce().order_id() == "o-9");
  CHECK(order[0].commerce().revenue() == Approx(42.5));
  CHECK(order[0].commerce().currency() == "EUR");
  REQUIRE(order[0].line_items_size() == 2);
  CHECK(order[0].line_items(0).product_id() == "p1");
  CHECK(order[0].line_items(0).quantity() == 2);
  CHECK(order[0].line_items(1).product_id() == "p2");
  CHECK(order[0].line_items(1).brand() == "LG");

  CHECK(SegmentEventType("Product Added") == "added_to_cart");
  CHECK(SegmentEventType("Checkout Started") == "checkout_started");
  CHECK(SegmentEventType("Email Link Clicked") == "email_clicked");
  CHECK(SegmentEventType("Video Playback  Started!") == "video_playback_started");
}

TEST_CASE("clock skew is corrected from receivedAt, sentAt and originalTimestamp",
          "[ingest][segment]") {
  // The device clock is 1 h fast: it sent at 11:00 device time, received 10:00:02.
  auto e = DecodeOk(R"({"type":"track","event":"Tapped","messageId":"m","userId":"u",
    "originalTimestamp":"2024-03-01T10:59:00Z","sentAt":"2024-03-01T11:00:00Z",
    "receivedAt":"2024-03-01T10:00:02Z","timestamp":"2024-03-01T10:59:00Z"})");
  CHECK(e[0].event_time_ms() == 1'709'287'142'000);  // 10:00:02 - 60 s = 09:59:02
  // sentAt of a batch body applies to its messages.
  auto batch = DecodeOk(R"({"batch":[{"type":"page","messageId":"m","userId":"u",
    "originalTimestamp":"2024-03-01T10:59:00Z","receivedAt":"2024-03-01T10:00:02Z"}],
    "sentAt":"2024-03-01T11:00:00Z"})");
  CHECK(batch[0].event_time_ms() == 1'709'287'142'000);
}

TEST_CASE("context fills device, locale, ids and the email trait", "[ingest][segment]") {
  auto e = DecodeOk(R"({"type":"identify","messageId":"m","anonymousId":"a1","userId":"u1",
    "timestamp":"2024-03-01T10:00:00Z","traits":{"email":"Jane@Example.com","plan":"gold","age":41},
    "context":{"channel":"mobile","locale":"de-DE","timezone":"Europe/Berlin",
      "device":{"id":"dev-1","type":"ios"},"os":{"name":"iOS"},
      "page":{"url":"https://shop.example/p"},"campaign":{"name":"spring"},
      "externalIds":[{"id":"C-7","type":"crm_id","collection":"users"}],
      "ip":"203.0.113.9","userAgent":"Mozilla/5.0","app":{"name":"Shop","version":"4.2"},
      "consent":{"categoryPreferences":{"Advertising":false,"Analytics":true}}}})");
  const v1::InteractionEvent& x = e[0];
  CHECK(x.channel() == "mobile");
  CHECK(x.identities().email() == "Jane@Example.com");
  CHECK(x.identities().device_id() == "dev-1");
  CHECK(x.identities().other().at("crm_id") == "C-7");
  CHECK(x.context().locale() == "de-DE");
  CHECK(x.context().timezone() == "Europe/Berlin");
  CHECK(x.context().device() == "ios");
  CHECK(x.context().os() == "iOS");
  CHECK(x.context().campaign() == "spring");
  CHECK(x.traits().at("plan") == "gold");
  CHECK(x.traits().at("age") == "41");
  CHECK(x.context().ip() == "203.0.113.9");  // decoded; the privacy filter drops it by default
  CHECK(x.context().user_agent() == "Mozilla/5.0");
  CHECK(x.context().app_name() == "Shop");
  CHECK(x.context().app_version() == "4.2");
  CHECK(x.context().consent().at("Advertising") == false);
  CHECK(x.context().consent().at("Analytics") == true);
  CHECK(ReasonOf(R"({"type":"track","event":"X","messageId":"m","userId":"u",
    "timestamp":"2024-03-01T10:00:00Z","context":{"consent":{"categoryPreferences":{"Ads":"no"}}}})") ==
        "wrong_field_type");
}

TEST_CASE("malformed JSON is rejected with a stable reason", "[ingest][segment]") {
  const std::string good =
      R"({"type":"track","event":"X","messageId":"m","userId":"u","timestamp":"2024-03-01T10:00:00Z"})";
  CHECK(ReasonOf(good) == "accepted");
  CHECK(ReasonOf("") == "empty_message");
  CHECK(ReasonOf(good.substr(0, good.size() - 5)) == "invalid_json");  // truncated
  CHECK(ReasonOf(good + " {}") == "invalid_json");                     // trailing content
  CHECK(ReasonOf(good + "garbage") == "invalid_json");
  CHECK(ReasonOf("[1,2,3]") == "wrong_field_type");
  CHECK(
      ReasonOf(
          R"({"type":"track","event":"X","messageId":"m","userId":42,"timestamp":"2024-03-01T10:00:00Z"})") ==
      "wrong_field_type");
  CHECK(
      ReasonOf(
          R"({"type":"track","event":"X","messageId":"m","userId":"u","timestamp":"yesterday"})") ==
      "invalid_event_time");
  CHECK(
      ReasonOf(R"({"type":"track","event":"X","userId":"u","timestamp":"2024-03-01T10:00:00Z"})") ==
      "missing_event_id");
  CHECK(
      ReasonOf(
          R"({"type":"teleport","messageId":"m","userId":"u","timestamp":"2024-03-01T10:00:00Z"})") ==
      "unsupported_segment_type");
  CHECK(ReasonOf(
            R"({"type":"track","event":"X","messageId":"m","timestamp":"2024-03-01T10:00:00Z"})") ==
        "no_identity");
  CHECK(ReasonOf("{\"type\":\"track\",\"event\":\"X\",\"messageId\":\"m\",\"userId\":\"\xff\xfe\","
                 "\"timestamp\":\"2024-03-01T10:00:00Z\"}") == "invalid_utf8");
  std::string deep = good.substr(0, good.size() - 1) + ",\"properties\":{\"a\":";
  for (int i = 0; i < 40; ++i) deep += "[";
  for (int i = 0; i < 40; ++i) deep += "]";
  CHECK(ReasonOf(deep + "}}") == "nesting_too_deep");
  std::string huge = good.substr(0, good.size() - 1) + ",\"properties\":{\"a\":\"" +
                     std::string(10000, 'x') + "\"}}";
  CHECK(ReasonOf(huge) == "string_too_long");
  CHECK(ReasonOf(huge, {.max_message_bytes = 1000}) == "payload_too_large");
  std::string many = good.substr(0, good.size() - 1) + ",\"properties\":{";
  for (int i = 0; i < 300; ++i)
    many += (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\":1";
  CHECK(ReasonOf(many + "}}") == "too_many_properties");
  // One bad message rejects its whole batch body, naming the index.
  SegmentDecoder decoder({});
  std::vector<v1::InteractionEvent> out;
  auto r = decoder.Decode("{\"batch\":[" + good + ",{\"type\":\"track\"}]}", out);
  REQUIRE(r.has_value());
  CHECK(r->detail.rfind("batch[1]", 0) == 0);
  CHECK(out.empty());
}

TEST_CASE("every naughty string as a property value decodes or is rejected, never crashes",
          "[ingest][segment]") {
  // blns.json is a JSON array of strings; take them out with the decoder's
  // own parser by wrapping the array as a property.
  const std::string blns = Fixture("naughty-strings/blns.json");
  SegmentDecoder unlimited({.default_channel = "web", .limits = {.max_string_bytes = 1 << 20}});
  std::vector<v1::InteractionEvent> wrapped;
  REQUIRE_FALSE(unlimited
                    .Decode(R"({"type":"track","event":"X","messageId":"m","userId":"u",
    "timestamp":"2024-03-01T10:00:00Z","properties":{"all":)" +
                                blns + "}}",
                            wrapped)
                    .has_value());
  // The array comes back minified; split it by re-decoding each element.
  const std::string& array = wrapped[0].properties().at("all");
  REQUIRE(array.size() > 1000);
  size_t accepted = 0, rejected = 0;
  SegmentDecoder decoder({});
  // Walk the minified array: elements are JSON strings separated by commas.
  size_t i = 1;
  while (i < array.size() && array[i] == '"') {
    size_t j = i + 1;
    while (array[j] != '"') j += array[j] == '\\' ? 2 : 1;
    const std::string literal = array.substr(i, j - i + 1);
    i = j + 2;
    std::vector<v1::InteractionEvent> out;
    auto r = decoder.Decode(R"({"type":"track","event":"X","messageId":"m","userId":"u",
      "timestamp":"2024-03-01T10:00:00Z","properties":{"v":)" +
                                literal + "}}",
                            out);
    if (r) {
      ++rejected;
    } else {
      ++accepted;
      CHECK(out.size() == 1);
    }
  }
  CHECK(accepted + rejected > 400);
  CHECK(accepted > 400);  // valid JSON strings are data, not errors
}

}  // namespace
}  // namespace profiled::ingest
