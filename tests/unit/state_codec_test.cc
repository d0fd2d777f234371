#include "profiled/codec/state_codec.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>

#include <limits>
#include <random>

#include "profiled/internal/v1/profile_state.pb.h"
#include "support/test_support.h"

namespace profiled::codec {
namespace {

using core::Family;
constexpr int64_t t0 = 1'569'888'000'000;

core::Profile RichProfile(uint64_t seed) {
  std::mt19937_64 rng(seed);
  core::ScoringOptions options;
  core::Profile p = core::Profile::New("p-rich");
  const char* types[] = {"product_viewed", "added_to_cart", "order_completed", "page_viewed"};
  for (int i = 0; i < 200; ++i) {
    auto e = testing::MakeEvent(
        "e" + std::to_string(i), types[rng() % 4], t0 + static_cast<int64_t>(rng() % 86'400'000),
        "u1", "cat" + std::to_string(rng() % 7) + ".sub" + std::to_string(rng() % 3),
        "P" + std::to_string(rng() % 30), "B" + std::to_string(rng() % 5));
    e.mutable_commerce()->set_price(static_cast<double>(rng() % 1000) / 7.0);
    (*e.mutable_traits())["t" + std::to_string(rng() % 3)] = std::to_string(rng());
    core::ApplyEvent(e, options, p);
  }
  return p;
}

// ---- The reference: the generated protobuf code, as the codec was written
// before it read and wrote the wire format by hand. The hand-written codec
// must write the same bytes and read any bytes exactly as this does.
namespace reference {
namespace pb = profiled::internal::v1;

std::string Encode(const core::Profile& profile) {
  pb::StoredProfile s;
  s.set_profile_id(profile.id);
  s.set_version(profile.version);
  s.set_first_seen_ms(profile.first_seen_ms);
  s.set_last_seen_ms(profile.last_seen_ms);
  for (const core::Identity& id : profile.identities) {
    s.add_identity_kinds(id.kind);
    s.add_identity_values(id.value);
  }
  for (core::Family f : core::kAllFamilies) {
    const core::ScoreFamily& family = profile.family(f);
    if (family.empty()) continue;
    pb::StoredFamily* sf = s.add_families();
    sf->set_family(static_cast<uint32_t>(f));
    for (const core::ScoreFamily::Entry& e : family.entries()) {
      sf->add_keys(e.key);
      sf->add_values(e.score.value);
      sf->add_ref_times_ms(e.score.ref_time_ms);
    }
  }
  s.set_product_views(profile.counters.product_views);
  s.set_cart_adds(profile.counters.cart_adds);
  s.set_orders(profile.counters.orders);
  s.set_revenue(profile.counters.revenue);
  for (const core::Trait& t : profile.traits) {
    pb::StoredTrait* st = s.add_traits();
    st->set_key(t.key);
    st->set_value(t.value);
    st->set_event_time_ms(t.event_time_ms);
  }
  s.mutable_merge_times_ms()->Add(profile.merge_times_ms.begin(), profile.merge_times_ms.end());
  for (const core::RecentEvent& r : profile.recent_events) {
    s.add_recent_event_hashes(r.id_hash);
    s.add_recent_event_times_ms(r.event_time_ms);
  }
  for (const core::ItemMemory& item : profile.items) {
    pb::StoredItem* si = s.add_items();
    si->set_key(item.key);
    si->set_viewed_ms(item.viewed_ms);
    si->set_carted_ms(item.carted_ms);
    si->set_uncarted_ms(item.uncarted_ms);
    si->set_bought_ms(item.bought_ms);
  }
  s.set_session_start_ms(profile.session.start_ms);
  s.set_session_last_ms(profile.session.last_ms);
  s.set_session_events(profile.session.events);
  s.set_engagement_fast(profile.engagement_fast.value);
  s.set_engagement_fast_ref_ms(profile.engagement_fast.ref_time_ms);
  s.set_engagement_slow(profile.engagement_slow.value);
  s.set_engagement_slow_ref_ms(profile.engagement_slow.ref_time_ms);
  s.set_returned_ms(profile.returned_ms);
  s.set_timer_due_ms(profile.timer_due_ms);
  s.set_signals_fingerprint(profile.signals_fingerprint);
  s.set_holdout_key(profile.holdout_key);
  s.set_purchase_days(profile.purchase_days.count);
  s.set_first_purchase_day(profile.purchase_days.first_day);
  s.mutable_recent_purchase_days()->Add(profile.purchase_days.recent.begin(),
                                        profile.purchase_days.recent.end());
  for (const core::ConsentDecision& d : profile.consent) {
    s.add_consent_purposes(d.purpose);
    s.add_consent_granted(d.granted);
    s.add_consent_decided_ms(d.decided_ms);
  }
  return s.SerializeAsString();
}

std::optional<core::Profile> Decode(const std::string& bytes) {
  pb::StoredProfile s;
  if (!s.ParseFromString(bytes)) return std::nullopt;
  if (s.identity_kinds_size() != s.identity_values_size() ||
      s.recent_event_hashes_size() != s.recent_event_times_ms_size() ||
      s.consent_purposes_size() != s.consent_granted_size() ||
      s.consent_purposes_size() != s.consent_decided_ms_size()) {
    return std::nullopt;
  }
  core::Profile p = core::Profile::New(s.profile_id());
  p.version = s.version();
  p.first_seen_ms = s.first_seen_ms();
  p.last_seen_ms = s.last_seen_ms();
  for (int i = 0; i < s.identity_kinds_size(); ++i) {
    p.identities.push_back({s.identity_kinds(i), s.identity_values(i)});
  }
  for (const pb::StoredFamily& sf : s.families()) {
    if (sf.family() >= core::kFamilyCount || sf.keys_size() != sf.values_size() ||
        sf.keys_size() != sf.ref_times_ms_size()) {
      return std::nullopt;
    }
    for (int i = 0; i < sf.keys_size(); ++i) {
      p.family(static_cast<core::Family>(sf.family()))
          .RestoreEntry(sf.keys(i), {sf.values(i), sf.ref_times_ms(i)});
    }
  }
  p.counters = {s.product_views(), s.cart_adds(), s.orders(), s.revenue()};
  for (const pb::StoredTrait& st : s.traits()) {
    p.traits.push_back({st.key(), st.value(), st.event_time_ms()});
  }
  p.merge_times_ms.assign(s.merge_times_ms().begin(), s.merge_times_ms().end());
  for (int i = 0; i < s.recent_event_hashes_size(); ++i) {
    p.recent_events.push_back({s.recent_event_hashes(i), s.recent_event_times_ms(i)});
  }
  for (const pb::StoredItem& si : s.items()) {
    p.items.push_back({si.key(), si.viewed_ms(), si.carted_ms(), si.uncarted_ms(), si.bought_ms()});
  }
  p.session = {s.session_start_ms(), s.session_last_ms(), s.session_events()};
  p.engagement_fast = {s.engagement_fast(), s.engagement_fast_ref_ms()};
  p.engagement_slow = {s.engagement_slow(), s.engagement_slow_ref_ms()};
  p.returned_ms = s.returned_ms();
  p.timer_due_ms = s.timer_due_ms();
  p.signals_fingerprint = s.signals_fingerprint();
  p.holdout_key = s.holdout_key();
  p.purchase_days.count = s.purchase_days();
  p.purchase_days.first_day = s.first_purchase_day();
  p.purchase_days.recent.assign(s.recent_purchase_days().begin(), s.recent_purchase_days().end());
  for (int i = 0; i < s.consent_purposes_size(); ++i) {
    p.consent.push_back({s.consent_purposes(i), s.consent_granted(i), s.consent_decided_ms(i)});
  }
  return p;
}

}  // namespace reference

// Values at and beyond the edges of each field's type.
int64_t EdgyInt(std::mt19937_64& rng) {
  static constexpr int64_t kEdges[] = {0,
                                       1,
                                       -1,
                                       127,
                                       128,
                                       16383,
                                       16384,
                                       std::numeric_limits<int64_t>::max(),
                                       std::numeric_limits<int64_t>::min(),
                                       std::numeric_limits<int32_t>::min(),
                                       t0};
  if (rng() % 2 == 0) return kEdges[rng() % std::size(kEdges)];
  return static_cast<int64_t>(rng()) >> (rng() % 64);
}
double EdgyDouble(std::mt19937_64& rng) {
  static constexpr double kEdges[] = {0.0,
                                      -0.0,
                                      1e-300,
                                      5e-324,
                                      1.5,
                                      -2.25,
                                      std::numeric_limits<double>::infinity(),
                                      std::numeric_limits<double>::quiet_NaN()};
  if (rng() % 2 == 0) return kEdges[rng() % std::size(kEdges)];
  return static_cast<double>(static_cast<int64_t>(rng() % 2'000'000) - 1'000'000) / 7.0;
}
std::string EdgyString(std::mt19937_64& rng) {
  static constexpr std::string_view kEdges[] = {"",
                                                "a",
                                                "electronics.smartphone.accessories",
                                                "caf\xc3\xa9",
                                                "\xe2\x82\xac 12",
                                                std::string_view("x\0y", 3)};
  std::string s(kEdges[rng() % std::size(kEdges)]);
  if (rng() % 3 == 0) s.append(static_cast<size_t>(rng() % 300), 'k');
  return s;
}

// Every field set at random, each repeated one empty, short or long.
core::Profile RandomProfile(std::mt19937_64& rng) {
  core::Profile p = core::Profile::New(EdgyString(rng));
  auto count = [&](size_t max) { return rng() % 4 == 0 ? 0 : static_cast<size_t>(rng() % max); };
  p.version = static_cast<uint64_t>(EdgyInt(rng));
  p.first_seen_ms = EdgyInt(rng);
  p.last_seen_ms = EdgyInt(rng);
  for (size_t i = count(4); i > 0; --i) p.identities.push_back({EdgyString(rng), EdgyString(rng)});
  for (core::Family f : core::kAllFamilies) {
    for (size_t i = count(60); i > 0; --i) {
      p.family(f).RestoreEntry(EdgyString(rng) + std::to_string(i),
                               {EdgyDouble(rng), EdgyInt(rng)});
    }
  }
  p.counters = {EdgyInt(rng), EdgyInt(rng), EdgyInt(rng), EdgyDouble(rng)};
  for (size_t i = count(6); i > 0; --i) {
    p.traits.push_back({EdgyString(rng), EdgyString(rng), EdgyInt(rng)});
  }
  for (size_t i = count(8); i > 0; --i) p.merge_times_ms.push_back(EdgyInt(rng));
  for (size_t i = count(40); i > 0; --i) {
    p.recent_events.push_back({rng() >> (rng() % 64), EdgyInt(rng)});
  }
  for (size_t i = count(30); i > 0; --i) {
    p.items.push_back({EdgyString(rng), EdgyInt(rng), EdgyInt(rng), EdgyInt(rng), EdgyInt(rng)});
  }
  p.session = {EdgyInt(rng), EdgyInt(rng), EdgyInt(rng)};
  p.engagement_fast = {EdgyDouble(rng), EdgyInt(rng)};
  p.engagement_slow = {EdgyDouble(rng), EdgyInt(rng)};
  p.returned_ms = EdgyInt(rng);
  p.timer_due_ms = EdgyInt(rng);
  p.signals_fingerprint = rng() >> (rng() % 64);
  p.holdout_key = EdgyString(rng);
  p.purchase_days.count = EdgyInt(rng);
  p.purchase_days.first_day = static_cast<int32_t>(EdgyInt(rng));
  for (size_t i = count(10); i > 0; --i) {
    p.purchase_days.recent.push_back(static_cast<int32_t>(EdgyInt(rng)));
  }
  for (size_t i = count(5); i > 0; --i) {
    p.consent.push_back({EdgyString(rng), rng() % 2 == 0, EdgyInt(rng)});
  }
  return p;
}

// What the codec reads from `bytes`, in the reference's canonical bytes
// (or nothing when it refuses them), beside what the reference reads.
std::optional<std::string> ReadByCodec(const std::string& bytes) {
  absl::StatusOr<core::Profile> p = DecodeProfileState(bytes);
  if (!p.ok()) {
    CHECK(absl::IsDataLoss(p.status()));
    return std::nullopt;
  }
  return reference::Encode(*p);
}
std::optional<std::string> ReadByReference(const std::string& bytes) {
  std::optional<core::Profile> p = reference::Decode(bytes);
  if (!p.has_value()) return std::nullopt;
  return reference::Encode(*p);
}

// The generated parser logs refused UTF-8; the tests feed it on purpose.
class QuietProtobufLog {
 public:
  QuietProtobufLog() : old_(google::protobuf::SetLogHandler(nullptr)) {}
  ~QuietProtobufLog() { google::protobuf::SetLogHandler(old_); }

 private:
  google::protobuf::LogHandler* old_;
};

TEST_CASE("the state codec writes the bytes the generated serializer writes", "[codec]") {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 2000; ++i) {
    const core::Profile p = RandomProfile(rng);
    const std::string bytes = EncodeProfileState(p);
    REQUIRE(bytes == reference::Encode(p));
    REQUIRE(ReadByCodec(bytes) == bytes);
  }
  const core::Profile rich = RichProfile(3);
  CHECK(EncodeProfileState(rich) == reference::Encode(rich));
  CHECK(EncodeProfileState(core::Profile{}).empty());
}

// Bytes the generated serializer never writes but any protobuf writer may:
// fields out of order and repeated (a concatenation is a merge), repeated
// scalars unpacked, unknown fields of every wire type, groups.
std::string NonCanonicalTail(std::mt19937_64& rng) {
  std::string tail;
  google::protobuf::io::StringOutputStream stream(&tail);
  google::protobuf::io::CodedOutputStream out(&stream);
  for (int n = static_cast<int>(rng() % 6); n > 0; --n) {
    switch (rng() % 8) {
      case 0:  // merge_times_ms, unpacked
        out.WriteTag(13 << 3 | 0);
        out.WriteVarint64(static_cast<uint64_t>(EdgyInt(rng)));
        break;
      case 1:  // an unknown varint, fixed32, fixed64, bytes
        out.WriteTag(99 << 3 | 0);
        out.WriteVarint64(rng());
        out.WriteTag(100 << 3 | 5);
        out.WriteLittleEndian32(static_cast<uint32_t>(rng()));
        out.WriteTag(101 << 3 | 1);
        out.WriteLittleEndian64(rng());
        out.WriteTag(102 << 3 | 2);
        out.WriteVarint32(3);
        out.WriteRaw("abc", 3);
        break;
      case 2:  // an unknown group holding a nested group
        out.WriteTag(103 << 3 | 3);
        out.WriteTag(1 << 3 | 0);
        out.WriteVarint64(5);
        out.WriteTag(2 << 3 | 3);
        out.WriteTag(2 << 3 | 4);
        out.WriteTag(103 << 3 | 4);
        break;
      case 3:  // version with the wrong wire type: skipped as unknown
        out.WriteTag(2 << 3 | 1);
        out.WriteLittleEndian64(rng());
        break;
      case 4: {  // a family with an unpacked value and time, fields reversed
        std::string family;
        google::protobuf::io::StringOutputStream fs(&family);
        {
          google::protobuf::io::CodedOutputStream f(&fs);
          f.WriteTag(4 << 3 | 0);
          f.WriteVarint64(static_cast<uint64_t>(EdgyInt(rng)));
          f.WriteTag(3 << 3 | 1);
          f.WriteLittleEndian64(rng());
          f.WriteTag(2 << 3 | 2);
          f.WriteVarint32(4);
          f.WriteRaw("late", 4);
          f.WriteTag(1 << 3 | 0);
          f.WriteVarint64(rng() % core::kFamilyCount);
        }
        out.WriteTag(7 << 3 | 2);
        out.WriteVarint32(static_cast<uint32_t>(family.size()));
        out.WriteString(family);
        break;
      }
      case 5:  // the profile id again: the last one wins
        out.WriteTag(1 << 3 | 2);
        out.WriteVarint32(2);
        out.WriteRaw("zz", 2);
        break;
      case 6:  // a consent decision, its arrays unpacked
        out.WriteTag(27 << 3 | 2);
        out.WriteVarint32(1);
        out.WriteRaw("m", 1);
        out.WriteTag(28 << 3 | 0);
        out.WriteVarint64(rng() % 3);
        out.WriteTag(29 << 3 | 0);
        out.WriteVarint64(rng());
        break;
      default:  // a recent purchase day, unpacked and negative
        out.WriteTag(33 << 3 | 0);
        out.WriteVarint64(static_cast<uint64_t>(-static_cast<int64_t>(rng() % 1000)));
        break;
    }
  }
  out.Trim();
  return tail;
}

TEST_CASE(
    "the state codec reads what the generated parser reads: merged, unpacked, unknown fields "
    "and groups",
    "[codec]") {
  std::mt19937_64 rng(12);
  int read = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bytes = EncodeProfileState(RandomProfile(rng));
    bytes += NonCanonicalTail(rng);
    if (rng() % 2 == 0) bytes += EncodeProfileState(RandomProfile(rng));
    const std::optional<std::string> want = ReadByReference(bytes);
    REQUIRE(ReadByCodec(bytes) == want);
    if (want.has_value()) ++read;
  }
  CHECK(read > 1000);  // most of them are profiles, not refusals
}

TEST_CASE(
    "the state codec refuses what the generated parser refuses at its limits: long length "
    "prefixes and groups nested past the recursion budget",
    "[codec]") {
  const QuietProtobufLog quiet;
  auto agree = [](const std::string& bytes) {
    CAPTURE(bytes.size());
    CHECK(ReadByCodec(bytes) == ReadByReference(bytes));
  };
  // profile_id (field 1) of length 1, the length written in 1 to 10 bytes:
  // protobuf takes at most five, the fifth under 8.
  int read = 0;
  for (int extra = 0; extra <= 9; ++extra) {
    std::string bytes = "\x0a";
    bytes += extra == 0 ? std::string("\x01") : std::string("\x81");
    for (int i = 1; i < extra; ++i) bytes += '\x80';
    if (extra > 0) bytes += '\x00';
    bytes += 'z';
    agree(bytes);
    if (ReadByReference(bytes).has_value()) ++read;
  }
  CHECK(read == 5);                                    // one to five bytes
  agree(std::string("\x0a\x81\x80\x80\x80\x08z", 7));  // fifth byte 8: 2 GiB and over
  agree(std::string("\x0a\x81\x80\x80\x80\x07z", 7));  // fifth byte 7: longer than the bytes
  // Unknown groups (field 90) nested 98 to 102 deep, at the top and inside
  // a family, a trait and an item (each a message level of its own).
  int groups_read = 0;
  for (int depth = 98; depth <= 102; ++depth) {
    std::string group;
    for (int i = 0; i < depth; ++i) group += std::string("\xd3\x05");  // start group 90
    for (int i = 0; i < depth; ++i) group += std::string("\xd4\x05");  // end group 90
    auto prefixed = [&](const std::string& tag) {
      std::string bytes = tag;
      bytes += static_cast<char>(0x80 | (group.size() & 0x7f));
      bytes += static_cast<char>(group.size() >> 7);
      return bytes + group;
    };
    for (const std::string& bytes :
         {group, prefixed("\x3a"), prefixed("\x62"), prefixed("\x82\x01")}) {
      agree(bytes);
      if (ReadByReference(bytes).has_value()) ++groups_read;
    }
  }
  CHECK(groups_read > 0);   // the budget is reached inside the range,
  CHECK(groups_read < 20);  // not beyond it
}

TEST_CASE("the state codec refuses exactly what the generated parser refuses", "[codec]") {
  const QuietProtobufLog quiet;
  std::mt19937_64 rng(13);
  int refused = 0;
  int read = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = EncodeProfileState(RandomProfile(rng));
    if (rng() % 2 == 0) bytes += NonCanonicalTail(rng);
    for (int m = 1 + static_cast<int>(rng() % 3); m > 0 && !bytes.empty(); --m) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 5) {
        case 0:
          bytes[at] = static_cast<char>(rng());
          break;
        case 1:
          bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8)));
          break;
        case 2:
          bytes.resize(at);
          break;
        case 3:
          bytes.insert(at, 1, static_cast<char>(rng()));
          break;
        default:
          bytes.insert(at, bytes.substr(rng() % bytes.size(), rng() % 12));
          break;
      }
    }
    const std::optional<std::string> want = ReadByReference(bytes);
    CAPTURE(i, bytes.size());
    REQUIRE(ReadByCodec(bytes) == want);
    (want.has_value() ? read : refused) += 1;
  }
  CHECK(refused > 2000);
  CHECK(read > 2000);
}

TEST_CASE("a stored profile decodes to exactly the profile encoded", "[codec]") {
  const core::Profile p = RichProfile(7);
  absl::StatusOr<core::Profile> back = DecodeProfileState(EncodeProfileState(p));
  REQUIRE_OK(back.status());
  CHECK(back->id == p.id);
  CHECK(back->version == p.version);
  CHECK(back->first_seen_ms == p.first_seen_ms);
  CHECK(back->last_seen_ms == p.last_seen_ms);
  CHECK(back->identities == p.identities);
  CHECK(back->counters.revenue == p.counters.revenue);
  CHECK(back->counters.orders == p.counters.orders);
  for (Family f : core::kAllFamilies) {
    const auto& want = p.family(f).entries();
    const auto& got = back->family(f).entries();
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      CHECK(got[i].key == want[i].key);
      CHECK(got[i].score.value == want[i].score.value);  // bit-exact
      CHECK(got[i].score.ref_time_ms == want[i].score.ref_time_ms);
    }
  }
  REQUIRE(back->traits.size() == p.traits.size());
  for (size_t i = 0; i < p.traits.size(); ++i) {
    CHECK(back->traits[i].value == p.traits[i].value);
    CHECK(back->traits[i].event_time_ms == p.traits[i].event_time_ms);
  }
  REQUIRE(p.recent_events.size() == core::ScoringOptions{}.recent_event_ids);
  CHECK(back->recent_events == p.recent_events);
  REQUIRE_FALSE(p.items.empty());
  CHECK(back->items == p.items);
  CHECK(back->session == p.session);
  CHECK(back->engagement_fast.value == p.engagement_fast.value);
  CHECK(back->engagement_slow.ref_time_ms == p.engagement_slow.ref_time_ms);
  CHECK(back->returned_ms == p.returned_ms);
  REQUIRE(p.purchase_days.count > 0);
  CHECK(back->purchase_days == p.purchase_days);
  // Re-encoding is stable.
  CHECK(EncodeProfileState(*back) == EncodeProfileState(p));
}

TEST_CASE("bytes that are not a stored profile fail with DataLoss", "[codec]") {
  absl::StatusOr<core::Profile> bad = DecodeProfileState("\xff\xff\xff garbage");
  REQUIRE_FALSE(bad.ok());
  CHECK(absl::IsDataLoss(bad.status()));
}

}  // namespace
}  // namespace profiled::codec
