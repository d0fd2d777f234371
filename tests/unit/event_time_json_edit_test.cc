// The future-time policy at, just over and far over its tolerance, and the
// JSON member removal the dead letters' redaction relies on.
#include "profiled/ingest/event_time_policy.h"
#include "profiled/ingest/json_edit.h"
#include "support/test_support.h"

namespace profiled::ingest {
namespace {

constexpr int64_t kNow = 1'790'000'000'000;

v1::InteractionEvent At(int64_t ms) {
  v1::InteractionEvent e;
  e.set_event_time_ms(ms);
  return e;
}

TEST_CASE("future event times: accepted within the tolerance, clamped or rejected beyond it",
          "[ingest][event_time]") {
  EventTimePolicy clamp;  // 10 minutes, clamp
  const int64_t tol = clamp.future_tolerance_ms;
  for (int64_t t : {kNow - int64_t{365} * 24 * 3600 * 1000, kNow - 1, kNow, kNow + tol}) {
    CAPTURE(t);
    v1::InteractionEvent e = At(t);
    CHECK(CheckEventTime(clamp, kNow, e) == EventTimeVerdict::kAccepted);
    CHECK(e.event_time_ms() == t);  // old events are normal: replays, backfills
  }
  for (int64_t t : {kNow + tol + 1, kNow + 1000 * tol}) {
    CAPTURE(t);
    v1::InteractionEvent e = At(t);
    CHECK(CheckEventTime(clamp, kNow, e) == EventTimeVerdict::kClamped);
    CHECK(e.event_time_ms() == kNow);  // to the wall clock, not to the tolerance
  }
  EventTimePolicy reject = clamp;
  reject.future = EventTimePolicy::Future::kReject;
  v1::InteractionEvent at_limit = At(kNow + tol);
  CHECK(CheckEventTime(reject, kNow, at_limit) == EventTimeVerdict::kAccepted);
  v1::InteractionEvent over = At(kNow + tol + 1);
  CHECK(CheckEventTime(reject, kNow, over) == EventTimeVerdict::kRejected);
  CHECK(over.event_time_ms() == kNow + tol + 1);  // a rejected event is kept as it came
}

TEST_CASE("JSON members are removed by parent and key, at any depth, batches included",
          "[ingest][json_edit]") {
  const auto drop = [](std::string_view parent, std::string_view key) {
    return (parent == "context" && key == "ip") || key == "password";
  };
  auto one = RemoveJsonMembers(
      R"({"type":"track","context":{"ip":"1.2.3.4","locale":"en"},"properties":{"password":"x","n":[1,{"password":2}]}})",
      drop);
  REQUIRE(one.has_value());
  CHECK(one->removed == 3);
  CHECK(one->json == R"({"type":"track","context":{"locale":"en"},"properties":{"n":[1,{}]}})");
  // In a batch body the messages sit in an array: their parent is "".
  auto batch =
      RemoveJsonMembers(R"({"batch":[{"password":"a","context":{"ip":"x"}},{"k":1}]})", drop);
  REQUIRE(batch.has_value());
  CHECK(batch->removed == 2);
  CHECK(batch->json == R"({"batch":[{"context":{}},{"k":1}]})");
  // Nothing to remove: the document comes back minified, unchanged in content.
  auto none = RemoveJsonMembers("{ \"a\" : [ 1 , 2 ] }", drop);
  REQUIRE(none.has_value());
  CHECK(none->removed == 0);
  CHECK(none->json == R"({"a":[1,2]})");
  // Not one valid document: nothing to rewrite.
  CHECK_FALSE(RemoveJsonMembers("{\"a\":", drop).has_value());
  CHECK_FALSE(RemoveJsonMembers("{} {}", drop).has_value());
}

}  // namespace
}  // namespace profiled::ingest
