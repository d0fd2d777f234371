#include "profiled/ingest/protobuf_decoder.h"

#include "support/test_support.h"

namespace profiled::ingest {
namespace {

constexpr int64_t t0 = 1'569'888'000'000;

std::optional<RejectReason> ReasonFor(std::string_view bytes) {
  v1::InteractionEvent e;
  auto r = DecodeProtobufEvent(bytes, e);
  if (!r) return std::nullopt;
  return r->reason;
}

TEST_CASE("a complete event decodes", "[ingest]") {
  auto e = testing::MakeEvent("e1", "product_viewed", t0, "u1", "a.b", "P1");
  v1::InteractionEvent out;
  CHECK_FALSE(DecodeProtobufEvent(e.SerializeAsString(), out).has_value());
  CHECK(out.commerce().category() == "a.b");
}

TEST_CASE("each kind of bad message gets its own stable reason", "[ingest]") {
  auto good = testing::MakeEvent("e1", "product_viewed", t0, "u1");
  const std::string bytes = good.SerializeAsString();

  CHECK(ReasonFor("") == RejectReason::kEmptyMessage);
  CHECK(ReasonFor(bytes.substr(0, bytes.size() - 3)) == RejectReason::kUndecodable);
  CHECK(ReasonFor("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01") == RejectReason::kUndecodable);

  auto no_id = good;
  no_id.clear_event_id();
  CHECK(ReasonFor(no_id.SerializeAsString()) == RejectReason::kMissingEventId);
  auto no_type = good;
  no_type.clear_type();
  CHECK(ReasonFor(no_type.SerializeAsString()) == RejectReason::kMissingType);
  auto no_time = good;
  no_time.set_event_time_ms(-5);
  CHECK(ReasonFor(no_time.SerializeAsString()) == RejectReason::kInvalidEventTime);
  auto nobody = good;
  nobody.clear_identities();
  CHECK(ReasonFor(nobody.SerializeAsString()) == RejectReason::kNoIdentity);

  CHECK(ReasonCode(RejectReason::kEmptyMessage) == "empty_message");
  CHECK(ReasonCode(RejectReason::kUndecodable) == "undecodable_protobuf");
  CHECK(ReasonCode(RejectReason::kNoIdentity) == "no_identity");
}

TEST_CASE("an identity under other counts only with both kind and value", "[ingest]") {
  auto e = testing::MakeEvent("e1", "page_viewed", t0, "");
  e.clear_identities();
  (*e.mutable_identities()->mutable_other())["crm_id"] = "";
  CHECK(ValidateEvent(e)->reason == RejectReason::kNoIdentity);
  (*e.mutable_identities()->mutable_other())["crm_id"] = "C1";
  CHECK_FALSE(ValidateEvent(e).has_value());
}

}  // namespace
}  // namespace profiled::ingest
