// EventKeys against the plain rule it implements (a string per key, each
// commerce family sorted and de-duplicated), and the UTC arithmetic against
// absl's civil time.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "profiled/core/event_keys.h"
#include "support/test_support.h"

namespace profiled::core {
namespace {

// The rule, written the obvious way.
std::vector<std::string> ModelKeys(const v1::InteractionEvent& e, Family family) {
  std::vector<std::string> keys;
  auto block = [&](const v1::Commerce& c) {
    if (family == Family::kCategory) {
      const std::string& path = c.category();
      for (size_t i = 1; i < path.size(); ++i) {
        if (path[i] == '.') keys.push_back(path.substr(0, i));
      }
      if (!path.empty()) keys.push_back(path);
    } else if (family == Family::kProduct && !c.product_id().empty()) {
      keys.push_back(c.product_id());
    } else if (family == Family::kBrand && !c.brand().empty()) {
      keys.push_back(absl::AsciiStrToLower(c.brand()));
    }
  };
  switch (family) {
    case Family::kEventType:
      return {e.type()};
    case Family::kChannel:
      return e.channel().empty() ? keys : std::vector<std::string>{e.channel()};
    case Family::kDevice:
      return e.context().device().empty()
                 ? keys
                 : std::vector<std::string>{absl::AsciiStrToLower(e.context().device())};
    case Family::kHour: {
      const LocalTime local = LocalTimeOf(e);
      char hour[3];
      std::snprintf(hour, sizeof hour, "%02d", local.hour);
      return {hour};
    }
    case Family::kWeekday:
      return {std::string(WeekdayName(LocalTimeOf(e).weekday))};
    default:
      block(e.commerce());
      for (const v1::Commerce& line : e.line_items()) block(line);
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
      return keys;
  }
}

std::string RandomText(std::mt19937_64& rng, const char* alphabet, size_t most) {
  std::string s;
  for (size_t n = rng() % (most + 1); n > 0; --n) s += alphabet[rng() % std::strlen(alphabet)];
  return s;
}

TEST_CASE("event keys equal the plain rule for any commerce blocks, dots, case and line count",
          "[profile][property]") {
  std::mt19937_64 rng(19);
  // From no line items to more keys than the inline storage holds.
  for (int round = 0; round < 2000; ++round) {
    v1::InteractionEvent e;
    e.set_type(RandomText(rng, "abc_", 12));
    e.set_channel(RandomText(rng, "webmail", 5));
    e.mutable_context()->set_device(RandomText(rng, "MobileDESK", 6));
    if (rng() % 3 == 0) e.mutable_context()->set_timezone("Europe/Berlin");
    e.set_event_time_ms(static_cast<int64_t>(rng() % 4'000'000'000'000) - 1'000'000'000'000);
    std::vector<v1::Commerce*> blocks = {e.mutable_commerce()};
    for (size_t l = rng() % 4 == 0 ? rng() % 12 : 0; l > 0; --l) {
      blocks.push_back(e.add_line_items());
    }
    for (v1::Commerce* c : blocks) {
      c->set_category(RandomText(rng, "ab..", 9));  // leading, doubled and trailing dots
      c->set_product_id(RandomText(rng, "P12", 3));
      c->set_brand(RandomText(rng, "SoNy", 4));
    }
    const EventKeys keys(e);
    for (Family f : kAllFamilies) {
      const auto got = keys.Of(f);
      INFO("round " << round << " family " << FamilyName(f));
      REQUIRE(std::vector<std::string>(got.begin(), got.end()) == ModelKeys(e, f));
    }
  }
}

TEST_CASE("the UTC hour and weekday equal absl's civil time, before and after the epoch",
          "[profile][property]") {
  std::mt19937_64 rng(7);
  std::vector<int64_t> times = {0, -1, 1, 86'400'000 - 1, 86'400'000, -86'400'000,
                                -86'400'000 - 1, 1'569'888'000'000};
  for (int i = 0; i < 20000; ++i) {
    times.push_back(static_cast<int64_t>(rng() % 8'000'000'000'000) - 4'000'000'000'000);
  }
  for (int64_t t : times) {
    const absl::CivilSecond civil = absl::ToCivilSecond(absl::FromUnixMillis(t), absl::UTCTimeZone());
    const int weekday = (static_cast<int>(absl::GetWeekday(absl::CivilDay(civil))) -
                         static_cast<int>(absl::Weekday::monday) + 7) % 7;
    const LocalTime local = UtcTimeOf(t);
    INFO("t = " << t);
    REQUIRE(local.hour == civil.hour());
    REQUIRE(local.weekday == weekday);
  }
}

}  // namespace
}  // namespace profiled::core
