#include "profiled/ingest/rees46.h"

#include <fstream>
#include <sstream>

#include "profiled/ingest/protobuf_decoder.h"
#include "support/test_support.h"

namespace profiled::ingest {
namespace {

TEST_CASE("a REES46 row becomes a product event on event time", "[ingest][rees46]") {
  auto e = ParseRees46Row(
      "2019-10-01 00:00:01 UTC,cart,1307067,2053013558920217191,computers.notebook,lenovo,"
      "251.74,550050854,7c90fc70-0e80-4590-96f3-13c02c18c713",
      12);
  REQUIRE_OK(e.status());
  CHECK(e->event_id() == "rees46-12");
  CHECK(e->type() == "added_to_cart");
  CHECK(e->event_time_ms() == 1'569'888'001'000);
  CHECK(e->identities().user_id() == "550050854");
  CHECK(e->context().session_id() == "7c90fc70-0e80-4590-96f3-13c02c18c713");
  CHECK(e->commerce().category() == "computers.notebook");
  CHECK(e->commerce().brand() == "lenovo");
  CHECK(e->commerce().price() == Approx(251.74));
  CHECK(e->channel() == "web");
  CHECK_FALSE(ValidateEvent(*e).has_value());
}

TEST_CASE("bad REES46 rows are reported with their row number", "[ingest][rees46]") {
  Rees46Reader reader(
      "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,"
      "user_session\n"
      "2019-10-01 00:00:00 UTC,view,1,2,,,1.0,42,s\n"
      "not a row\n"
      "2019-10-01 00:00:00 UTC,teleport,1,2,,,1.0,42,s\n"
      "2019-10-01 00:00:02 UTC,purchase,1,2,,,1.0,42,s\n");
  v1::InteractionEvent e;
  std::vector<std::string> types;
  while (reader.Next(e)) types.push_back(e.type());
  CHECK(types == std::vector<std::string>{"product_viewed", "order_completed"});
  REQUIRE(reader.errors().size() == 2);
  CHECK(reader.errors()[0].rfind("line 3: ", 0) == 0);
  CHECK(reader.errors()[1].rfind("line 4: ", 0) == 0);
  CHECK(reader.errors()[1].find("teleport") != std::string::npos);
  CHECK(reader.header());
  CHECK(reader.rows() == 4);
}

TEST_CASE("a REES46 file without a header keeps its first row", "[ingest][rees46]") {
  const std::string rows =
      "2019-10-01 00:00:00 UTC,view,1,2,,,1.0,42,s\n"
      "\n"
      "2019-10-01 00:00:02 UTC,purchase,1,2,,,1.0,42,s\r\n";
  for (const std::string& header :
       {std::string(), std::string("Event_Time, event_type,product_id,category_id,category_code,"
                                   "brand,price,user_id,user_session\r\n")}) {
    CAPTURE(header);
    const std::string text = header + rows;  // the reader keeps a view of it
    Rees46Reader reader(text);
    v1::InteractionEvent e;
    std::vector<std::string> ids;
    while (reader.Next(e)) ids.push_back(e.event_id());
    // The same rows get the same event ids with or without a header.
    CHECK(ids == std::vector<std::string>{"rees46-1", "rees46-2"});
    CHECK(reader.errors().empty());
    CHECK(reader.header() == !header.empty());
  }
  // A byte order mark before the header does not hide it.
  const std::string bom = "\xEF\xBB\xBF" + std::string("event_time,event_type,product_id,") +
                          "category_id,category_code,brand,price,user_id,user_session\n" + rows;
  Rees46Reader with_bom(bom);
  v1::InteractionEvent first;
  REQUIRE(with_bom.Next(first));
  CHECK(with_bom.header());
  CHECK(first.event_id() == "rees46-1");
  // A header-like line that is not the first row is a bad row, not skipped.
  Rees46Reader twice(
      "2019-10-01 00:00:00 UTC,view,1,2,,,1.0,42,s\n"
      "event_time,event_type,product_id,category_id,category_code,brand,price,"
      "user_id,user_session\n");
  v1::InteractionEvent e;
  size_t events = 0;
  while (twice.Next(e)) ++events;
  CHECK(events == 1);
  REQUIRE(twice.errors().size() == 1);
  CHECK(twice.errors()[0].rfind("line 2: ", 0) == 0);
}

TEST_CASE("the bundled REES46 sample parses completely", "[ingest][rees46]") {
  std::ifstream in(PROFILED_SOURCE_DIR "/deploy/demo/data/rees46-2019oct-head/events.csv");
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  const std::string csv = text.str();
  Rees46Reader reader(csv);
  v1::InteractionEvent e;
  size_t n = 0;
  int64_t first = 0, last = 0;
  while (reader.Next(e)) {
    if (n++ == 0) first = e.event_time_ms();
    last = std::max(last, e.event_time_ms());
  }
  CHECK(n == 5019);
  CHECK(reader.errors().empty());
  CHECK(last - first == (2 * 3600 + 28 * 60 + 17) * 1000);  // 00:00:00 .. 02:28:17
}

}  // namespace
}  // namespace profiled::ingest
