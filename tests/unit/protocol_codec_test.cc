// Protocol records and slots through their wire format
// (cluster/protocol_codec.h): everything survives the round trip, and a
// damaged record is refused before it reaches the protocol.
#include "profiled/cluster/protocol_codec.h"

#include <catch2/catch.hpp>

namespace profiled::cluster {
namespace {

ProtocolMessage Full(MessageKind kind) {
  ProtocolMessage m;
  m.kind = kind;
  m.ids = {{"user_id", "u1"}, {"anonymous_id", "a1"}};
  m.profile = {"p-1", 0, 17};
  m.other = {"p-2", 4, 1};
  m.payload = std::string("\0bytes", 6);
  m.time_ms = 1'700'000'000'000;
  m.explicit_alias = true;
  m.merge_times_ms = {1, 2, 3};
  m.absorbed = {{"p-3", 0, 5}, {"p-4", 0, 9}};
  m.refused = identity::RefusalRule::kMergeRate;
  m.suppress_until_ms = 1'800'000'000'000;
  m.alias = {{"user_id", "old"}};
  m.expiry = 42;
  m.linked = {{"device_id", "d1"}};
  return m;
}

TEST_CASE("every protocol record kind survives its wire format", "[cluster][codec]") {
  for (int k = 0; k <= static_cast<int>(MessageKind::kDropped); ++k) {
    const ProtocolMessage m = Full(static_cast<MessageKind>(k));
    internal::v1::ProtocolRecord wire;
    REQUIRE(wire.ParseFromString(ToRecord(m).SerializeAsString()));
    absl::StatusOr<ProtocolMessage> back = FromRecord(wire);
    REQUIRE(back.ok());
    CHECK(*back == m);
  }
  ProtocolMessage plain;  // nothing optional set
  plain.ids = {{"email_sha256", "e"}};
  absl::StatusOr<ProtocolMessage> back = FromRecord(ToRecord(plain));
  REQUIRE(back.ok());
  CHECK(*back == plain);
  CHECK_FALSE(back->refused.has_value());
}

TEST_CASE("a damaged protocol record is refused with its reason", "[cluster][codec]") {
  ProtocolMessage link = Full(MessageKind::kLink);
  link.ids.clear();
  CHECK(FromRecord(ToRecord(link)).status().message() == "no identity");
  ProtocolMessage apply = Full(MessageKind::kApply);
  apply.profile = {};
  CHECK(FromRecord(ToRecord(apply)).status().message() == "no profile");
  ProtocolMessage offer = Full(MessageKind::kOffer);
  offer.other = {};
  CHECK(FromRecord(ToRecord(offer)).status().message() == "no absorbed profile");
  ProtocolMessage blank = Full(MessageKind::kBind);
  blank.ids = {{"user_id", ""}};
  CHECK_FALSE(FromRecord(ToRecord(blank)).ok());
  internal::v1::ProtocolRecord unknown = ToRecord(Full(MessageKind::kEvent));
  unknown.set_kind(static_cast<internal::v1::ProtocolRecord::Kind>(42));
  CHECK_FALSE(FromRecord(unknown).ok());
  ProtocolMessage erase = Full(MessageKind::kErase);
  erase.ids.clear();
  CHECK(FromRecord(ToRecord(erase)).status().message() == "no identity");
  ProtocolMessage forget = Full(MessageKind::kForget);
  forget.ids.clear();
  forget.other = {};
  CHECK(FromRecord(ToRecord(forget)).status().message() == "a forget names no slot");
  ProtocolMessage stale = Full(MessageKind::kStale);
  stale.other = {};
  CHECK(FromRecord(ToRecord(stale)).status().message() == "no absorbed profile");
  stale = Full(MessageKind::kStale);
  stale.profile = {};  // a stale label dropped, nothing linked instead
  CHECK(FromRecord(ToRecord(stale)).ok());
  internal::v1::ProtocolRecord past_last = ToRecord(Full(MessageKind::kDropped));
  past_last.set_kind(static_cast<internal::v1::ProtocolRecord::Kind>(17));
  CHECK_FALSE(FromRecord(past_last).ok());
  internal::v1::ProtocolRecord bad_rule = ToRecord(Full(MessageKind::kDecline));
  bad_rule.set_refused(9);
  CHECK_FALSE(FromRecord(bad_rule).ok());
}

TEST_CASE("a slot and its state survive the changelog's format", "[cluster][codec]") {
  Slot slot;
  slot.identity = IdentityEntry{{"p-9", 1, 3}};
  ProfileEntry p;
  p.self = {"p-9", 1, 3};
  p.members = {{"email_sha256", "e1"}};
  p.merge_times_ms = {5};
  p.absorbed_into = ProfileRef{"p-0", 0};
  p.absorbed = {{"p-7", 0, 2}};
  p.awaiting = ProfileRef{"p-8", 3};
  p.deferred = {Full(MessageKind::kClaim), Full(MessageKind::kOffer)};
  slot.profile = p;
  slot.applied = 77;
  slot.suppressed_until_ms = 1'800'000'000'000;
  slot.erasure = Erasure{
      .request = "req", .pending = 3, .identities = 2, .profile_ids = {"p-9"}, .awaiting = "p-4"};
  slot.expiry = Expiry{.id = 12,
                       .pending = 2,
                       .self = {"p-9", 1, 3},
                       .members = {{"email_sha256", "e1"}},
                       .absorbed = {{"p-7", 0, 2}},
                       .held = {Full(MessageKind::kApply), Full(MessageKind::kLink)}};
  slot.forgotten = {{"p-2", 0, 4}, {"p-6", 0, 8}};
  slot.forgotten_until_ms = 1'900'000'000'000;
  internal::v1::SlotValue wire;
  REQUIRE(wire.ParseFromString(ToSlotValue(slot, "state-bytes").SerializeAsString()));
  std::string state;
  absl::StatusOr<Slot> back = FromSlotValue(wire, &state);
  REQUIRE(back.ok());
  CHECK(*back == slot);
  CHECK(state == "state-bytes");

  Slot identity_only;
  identity_only.identity = IdentityEntry{{"p-5", 2}};
  back = FromSlotValue(ToSlotValue(identity_only, ""), &state);
  REQUIRE(back.ok());
  CHECK(*back == identity_only);
  CHECK_FALSE(back->profile.has_value());
  CHECK(state.empty());
}

TEST_CASE(
    "records and slots written before incarnations read as incarnation 0, their absorbed "
    "profiles from the bare ids",
    "[cluster][codec]") {
  internal::v1::ProtocolRecord record = ToRecord(Full(MessageKind::kShip));
  record.clear_absorbed();
  record.add_absorbed_ids("p-3");
  record.mutable_profile()->clear_incarnation();
  absl::StatusOr<ProtocolMessage> m = FromRecord(record);
  REQUIRE(m.ok());
  CHECK(m->absorbed == std::vector<ProfileRef>{{"p-3", 0, 0}});
  CHECK(m->profile == ProfileRef{"p-1", 0, 0});

  internal::v1::SlotValue value;
  value.mutable_profile()->mutable_self()->set_id("p-9");
  value.mutable_profile()->add_absorbed_ids("p-7");
  value.mutable_expiry()->add_absorbed_ids("p-6");
  absl::StatusOr<Slot> slot = FromSlotValue(value, nullptr);
  REQUIRE(slot.ok());
  CHECK(slot->profile->absorbed == std::vector<ProfileRef>{{"p-7", 0, 0}});
  CHECK(slot->expiry->absorbed == std::vector<ProfileRef>{{"p-6", 0, 0}});
}

}  // namespace
}  // namespace profiled::cluster
