// The input format registry: every format is found by its name, makes a
// decoder, splits its files, and says whether its dead letters can be
// redacted; REES46 rows decode as values of their own.
#include <set>

#include "profiled/ingest/event_decoder.h"
#include "support/test_support.h"

namespace profiled::ingest {
namespace {

TEST_CASE("every registered format has a unique name and makes a decoder", "[ingest][formats]") {
  std::set<std::string_view> names;
  for (const EventFormat& f : EventFormats()) {
    CAPTURE(f.name);
    CHECK(names.insert(f.name).second);
    CHECK(FindEventFormat(f.name) == &f);
    REQUIRE(f.create != nullptr);
    REQUIRE(f.split_file != nullptr);
    DecoderOptions options;
    if (f.takes_map) {
      options.map.event_id = {"/id"};
      options.map.type = "/t";
      options.map.time = "/at";
      options.map.fields = {{"identities.user_id", "/u"}};
    }
    REQUIRE_OK(f.create(options).status());
  }
  CHECK(EventFormats().front().name == "protobuf");
  CHECK(FindEventFormat("xml") == nullptr);
  // The built-in formats first (a test may register more after them).
  CHECK(EventFormatNames().starts_with("protobuf, segment-json, json, rees46-csv"));
  CHECK(FindEventFormat("segment-json")->redactable_json);
  CHECK(FindEventFormat("json")->redactable_json);
  CHECK_FALSE(FindEventFormat("protobuf")->redactable_json);
  CHECK_FALSE(FindEventFormat("rees46-csv")->redactable_json);
  // A map-taking format refuses to start without one, with the reason.
  CHECK_FALSE(FindEventFormat("json")->create({}).ok());
}

TEST_CASE("every format refuses a value over max_message_bytes as payload_too_large",
          "[ingest][formats]") {
  for (const char* name : {"protobuf", "segment-json", "rees46-csv"}) {
    CAPTURE(name);
    DecoderOptions options;
    options.limits.max_message_bytes = 64;
    auto decoder = FindEventFormat(name)->create(options);
    REQUIRE_OK(decoder.status());
    std::vector<v1::InteractionEvent> out;
    auto at_limit = (*decoder)->Decode(std::string(64, 'x'), out);
    CHECK((!at_limit || at_limit->reason != RejectReason::kPayloadTooLarge));
    auto over = (*decoder)->Decode(std::string(65, 'x'), out);
    REQUIRE(over.has_value());
    CHECK(over->reason == RejectReason::kPayloadTooLarge);
    CHECK(out.empty());
  }
}

TEST_CASE("REES46 rows decode as values: a header is skipped, a bad row rejects the value",
          "[ingest][formats][rees46]") {
  auto decoder = FindEventFormat("rees46-csv")->create({});
  REQUIRE_OK(decoder.status());
  const std::string row =
      "2019-10-01 00:00:00 UTC,purchase,1004,2053,electronics.phone,apple,489.07,77,s1";
  std::vector<v1::InteractionEvent> out;
  REQUIRE_FALSE((*decoder)->Decode(
      "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,"
      "user_session\r\n" +
          row + "\r\n",
      out));
  REQUIRE(out.size() == 1);
  CHECK(out[0].type() == "order_completed");
  CHECK(out[0].identities().user_id() == "77");
  CHECK(out[0].commerce().price() == 489.07);
  // The same row is the same event; another row another.
  std::vector<v1::InteractionEvent> again;
  REQUIRE_FALSE((*decoder)->Decode(row, again));
  CHECK(again[0].event_id() == out[0].event_id());
  REQUIRE_FALSE((*decoder)->Decode(row.substr(0, row.size() - 1) + "2", again));
  CHECK(again[1].event_id() != out[0].event_id());

  std::vector<v1::InteractionEvent> none;
  auto bad = (*decoder)->Decode(row + "\nnot,a,row", none);
  REQUIRE(bad.has_value());
  CHECK(bad->reason == RejectReason::kUndecodable);
  CHECK(bad->detail.find("line 2") != std::string::npos);
  CHECK(none.empty());  // accepted whole or not at all
  CHECK((*decoder)->Decode("", none)->reason == RejectReason::kEmptyMessage);
  CHECK((*decoder)->Decode("\n\n", none)->reason == RejectReason::kUndecodable);
}

TEST_CASE("files split into the values their format produces", "[ingest][formats]") {
  FileRecords csv =
      FindEventFormat("rees46-csv")
          ->split_file(
              "\xEF\xBB\xBF"
              "event_time,event_type,product_id,category_id,category_code,brand,price,"
              "user_id,user_session\nrow1\n\n  \nrow2\r\n");
  CHECK(csv.values == std::vector<std::string>{"row1", "row2"});
  FileRecords one_doc = FindEventFormat("segment-json")->split_file("{\n \"a\": 1\n}\n");
  CHECK(one_doc.values.size() == 1);
  FileRecords lines = FindEventFormat("segment-json")->split_file("{\"a\":1}\n\n{\"b\":2}\n");
  CHECK(lines.values == std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"});
  FileRecords proto =
      FindEventFormat("protobuf")
          ->split_file("{\"eventId\":\"e1\",\"type\":\"t\",\"eventTimeMs\":\"5\"}\nnot json\n");
  REQUIRE(proto.values.size() == 1);
  v1::InteractionEvent e;
  REQUIRE(e.ParseFromString(proto.values[0]));
  CHECK(e.event_id() == "e1");
  REQUIRE(proto.errors.size() == 1);
  CHECK(proto.errors[0].starts_with("line 2: "));
}

}  // namespace
}  // namespace profiled::ingest
