#include "profiled/codec/state_codec.h"

#include <google/protobuf/stubs/common.h>

#include <bit>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "wire.h"

// The bytes are proto/profiled/internal/v1/profile_state.proto's
// StoredProfile, written and read here by hand (wire.h says why); the field
// numbers below mirror the .proto, and state_codec_test holds the bytes
// equal to the generated serializer's and the reading equal to its parser.
namespace profiled::codec {
namespace {

using wire::Counter;
using wire::kFixed64;
using wire::kLengthDelimited;
using wire::kVarint;
using wire::PutDouble;
using wire::PutFixed64Field;
using wire::PutInt;
using wire::PutMessage;
using wire::PutPackedFixed64;
using wire::PutPackedVarints;
using wire::PutSingularString;
using wire::PutString;
using wire::PutVarintField;
using wire::Reader;
using wire::Writer;

enum ProfileField : uint32_t {
  kProfileId = 1,
  kVersion = 2,
  kFirstSeen = 3,
  kLastSeen = 4,
  kIdentityKinds = 5,
  kIdentityValues = 6,
  kFamilies = 7,
  kProductViews = 8,
  kCartAdds = 9,
  kOrders = 10,
  kRevenue = 11,
  kTraits = 12,
  kMergeTimes = 13,
  kRecentEventHashes = 14,
  kRecentEventTimes = 15,
  kItems = 16,
  kSessionStart = 17,
  kSessionLast = 18,
  kSessionEvents = 19,
  kEngagementFast = 20,
  kEngagementFastRef = 21,
  kEngagementSlow = 22,
  kEngagementSlowRef = 23,
  kReturned = 24,
  kTimerDue = 25,
  kSignalsFingerprint = 26,
  kConsentPurposes = 27,
  kConsentGranted = 28,
  kConsentDecided = 29,
  kHoldoutKey = 30,
  kPurchaseDays = 31,
  kFirstPurchaseDay = 32,
  kRecentPurchaseDays = 33,
};
enum FamilyField : uint32_t { kFamilyIndex = 1, kKeys = 2, kValues = 3, kRefTimes = 4 };
enum TraitField : uint32_t { kTraitKey = 1, kTraitValue = 2, kTraitTime = 3 };
enum ItemField : uint32_t { kItemKey = 1, kViewed = 2, kCarted = 3, kUncarted = 4, kBought = 5 };

// ---- Writing (wire.h's Put* helpers): the generated serializer's bytes.

template <typename Out>
void PutFamily(Out& out, core::Family f, const core::ScoreFamily& family) {
  const auto& entries = family.entries();
  PutVarintField(out, kFamilyIndex, static_cast<uint32_t>(f));
  for (const core::ScoreFamily::Entry& e : entries) PutString(out, kKeys, e.key);
  PutPackedFixed64(out, kValues, entries.size(), [&](const auto& emit) {
    for (const auto& e : entries) emit(std::bit_cast<uint64_t>(e.score.value));
  });
  PutPackedVarints(out, kRefTimes, entries.size(), [&](const auto& emit) {
    for (const auto& e : entries) emit(static_cast<uint64_t>(e.score.ref_time_ms));
  });
}

template <typename Out>
void PutProfile(Out& out, const core::Profile& p) {
  PutSingularString(out, kProfileId, p.id);
  PutVarintField(out, kVersion, p.version);
  PutInt(out, kFirstSeen, p.first_seen_ms);
  PutInt(out, kLastSeen, p.last_seen_ms);
  for (const core::Identity& id : p.identities) PutString(out, kIdentityKinds, id.kind);
  for (const core::Identity& id : p.identities) PutString(out, kIdentityValues, id.value);
  for (core::Family f : core::kAllFamilies) {
    const core::ScoreFamily& family = p.family(f);
    if (family.empty()) continue;
    PutMessage(out, kFamilies, [&](auto& o) { PutFamily(o, f, family); });
  }
  PutInt(out, kProductViews, p.counters.product_views);
  PutInt(out, kCartAdds, p.counters.cart_adds);
  PutInt(out, kOrders, p.counters.orders);
  PutDouble(out, kRevenue, p.counters.revenue);
  for (const core::Trait& t : p.traits) {
    PutMessage(out, kTraits, [&](auto& o) {
      PutSingularString(o, kTraitKey, t.key);
      PutSingularString(o, kTraitValue, t.value);
      PutInt(o, kTraitTime, t.event_time_ms);
    });
  }
  PutPackedVarints(out, kMergeTimes, p.merge_times_ms.size(), [&](const auto& emit) {
    for (int64_t t : p.merge_times_ms) emit(static_cast<uint64_t>(t));
  });
  PutPackedFixed64(out, kRecentEventHashes, p.recent_events.size(), [&](const auto& emit) {
    for (const core::RecentEvent& r : p.recent_events) emit(r.id_hash);
  });
  PutPackedVarints(out, kRecentEventTimes, p.recent_events.size(), [&](const auto& emit) {
    for (const core::RecentEvent& r : p.recent_events) emit(static_cast<uint64_t>(r.event_time_ms));
  });
  for (const core::ItemMemory& item : p.items) {
    PutMessage(out, kItems, [&](auto& o) {
      PutSingularString(o, kItemKey, item.key);
      PutInt(o, kViewed, item.viewed_ms);
      PutInt(o, kCarted, item.carted_ms);
      PutInt(o, kUncarted, item.uncarted_ms);
      PutInt(o, kBought, item.bought_ms);
    });
  }
  PutInt(out, kSessionStart, p.session.start_ms);
  PutInt(out, kSessionLast, p.session.last_ms);
  PutInt(out, kSessionEvents, p.session.events);
  PutDouble(out, kEngagementFast, p.engagement_fast.value);
  PutInt(out, kEngagementFastRef, p.engagement_fast.ref_time_ms);
  PutDouble(out, kEngagementSlow, p.engagement_slow.value);
  PutInt(out, kEngagementSlowRef, p.engagement_slow.ref_time_ms);
  PutInt(out, kReturned, p.returned_ms);
  PutInt(out, kTimerDue, p.timer_due_ms);
  PutFixed64Field(out, kSignalsFingerprint, p.signals_fingerprint);
  for (const core::ConsentDecision& d : p.consent) PutString(out, kConsentPurposes, d.purpose);
  PutPackedVarints(out, kConsentGranted, p.consent.size(), [&](const auto& emit) {
    for (const core::ConsentDecision& d : p.consent) emit(d.granted ? 1 : 0);
  });
  PutPackedVarints(out, kConsentDecided, p.consent.size(), [&](const auto& emit) {
    for (const core::ConsentDecision& d : p.consent) emit(static_cast<uint64_t>(d.decided_ms));
  });
  PutSingularString(out, kHoldoutKey, p.holdout_key);
  PutInt(out, kPurchaseDays, p.purchase_days.count);
  PutInt(out, kFirstPurchaseDay, p.purchase_days.first_day);
  PutPackedVarints(out, kRecentPurchaseDays, p.purchase_days.recent.size(), [&](const auto& emit) {
    for (int32_t d : p.purchase_days.recent) emit(static_cast<uint64_t>(int64_t{d}));
  });
}

// ---- Reading.

absl::Status Corrupt(const char* what) {
  return absl::DataLossError(absl::StrCat("stored profile ", what));
}

bool ReadString(Reader& in, std::string_view& s) {
  // proto3 strings are UTF-8: the generated parser refuses anything else.
  return in.ReadLengthDelimited(s) &&
         google::protobuf::internal::IsStructurallyValidUTF8(s.data(), static_cast<int>(s.size()));
}

// A repeated scalar field arrives packed (one length-delimited run) or one
// element per tag; `read` reads one element from a reader.
template <typename Read>
bool ReadRepeated(Reader& in, uint32_t type, uint32_t element_type, const Read& read) {
  if (type == element_type) return read(in);
  std::string_view packed;
  if (!in.ReadLengthDelimited(packed)) return false;
  Reader run(packed);
  while (!run.AtEnd()) {
    if (!read(run)) return false;
  }
  return true;
}

template <typename T, typename Convert>
bool ReadRepeatedVarints(Reader& in, uint32_t type, std::vector<T>& out, const Convert& convert) {
  return ReadRepeated(in, type, kVarint, [&](Reader& r) {
    uint64_t v = 0;
    if (!r.ReadVarint(v)) return false;
    out.push_back(convert(v));
    return true;
  });
}

// Fields of one nested message: `field(number, type, reader)` returns
// false on bytes refused, and skips nothing itself (this does, for a field
// it did not take: it returns true having read nothing).
// `depth`: messages entered so far (a nested message spends one level of the
// generated parser's recursion budget, which groups skipped inside it share).
template <typename Field>
bool ReadFields(Reader& in, const Field& field, int depth = 0) {
  while (!in.AtEnd()) {
    uint32_t number = 0;
    uint32_t type = 0;
    if (!in.ReadTag(number, type)) return false;
    bool taken = false;
    if (!field(number, type, in, taken)) return false;
    if (!taken && !in.Skip(number, type, depth)) return false;
  }
  return true;
}

// A field whose wire type is `expected`, or (a repeated scalar) packed.
bool Is(uint32_t type, uint32_t expected) { return type == expected; }
bool IsRepeated(uint32_t type, uint32_t element_type) {
  return type == element_type || type == kLengthDelimited;
}

template <typename T>
bool ReadInt(Reader& in, T& out) {
  uint64_t v = 0;
  if (!in.ReadVarint(v)) return false;
  out = static_cast<T>(v);  // int32 fields keep the low 32 bits
  return true;
}
bool ReadDouble(Reader& in, double& out) {
  uint64_t bits = 0;
  if (!in.ReadFixed64(bits)) return false;
  out = std::bit_cast<double>(bits);
  return true;
}

// False on bytes that do not parse; `malformed` when they parse but do
// not make a family (an unknown index, unpaired arrays).
bool ReadFamily(std::string_view bytes, core::Profile& p, bool& malformed) {
  uint32_t index = 0;
  absl::InlinedVector<std::string_view, 64> keys;
  absl::InlinedVector<double, 64> values;
  absl::InlinedVector<int64_t, 64> ref_times;
  Reader in(bytes);
  const bool parsed = ReadFields(
      in,
      [&](uint32_t number, uint32_t type, Reader& r, bool& taken) {
        switch (number) {
          case kFamilyIndex:
            if (!Is(type, kVarint)) return true;
            taken = true;
            return ReadInt(r, index);
          case kKeys: {
            if (!Is(type, kLengthDelimited)) return true;
            taken = true;
            std::string_view key;
            if (!ReadString(r, key)) return false;
            keys.push_back(key);
            return true;
          }
          case kValues:
            if (!IsRepeated(type, kFixed64)) return true;
            taken = true;
            return ReadRepeated(r, type, kFixed64, [&](Reader& e) {
              double v = 0;
              if (!ReadDouble(e, v)) return false;
              values.push_back(v);
              return true;
            });
          case kRefTimes:
            if (!IsRepeated(type, kVarint)) return true;
            taken = true;
            return ReadRepeated(r, type, kVarint, [&](Reader& e) {
              int64_t t = 0;
              if (!ReadInt(e, t)) return false;
              ref_times.push_back(t);
              return true;
            });
          default:
            return true;
        }
      },
      /*depth=*/1);
  if (!parsed) return false;
  if (index >= core::kFamilyCount || keys.size() != values.size() ||
      keys.size() != ref_times.size()) {
    malformed = true;
    return true;
  }
  core::ScoreFamily& family = p.family(static_cast<core::Family>(index));
  family.Reserve(family.size() + keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    family.RestoreEntry(std::string(keys[i]), {values[i], ref_times[i]});
  }
  return true;
}

bool ReadTrait(std::string_view bytes, core::Trait& t) {
  Reader in(bytes);
  return ReadFields(
      in,
      [&](uint32_t number, uint32_t type, Reader& r, bool& taken) {
        std::string_view s;
        switch (number) {
          case kTraitKey:
          case kTraitValue:
            if (!Is(type, kLengthDelimited)) return true;
            taken = true;
            if (!ReadString(r, s)) return false;
            (number == kTraitKey ? t.key : t.value).assign(s);
            return true;
          case kTraitTime:
            if (!Is(type, kVarint)) return true;
            taken = true;
            return ReadInt(r, t.event_time_ms);
          default:
            return true;
        }
      },
      /*depth=*/1);
}

bool ReadItem(std::string_view bytes, core::ItemMemory& item) {
  Reader in(bytes);
  return ReadFields(
      in,
      [&](uint32_t number, uint32_t type, Reader& r, bool& taken) {
        int64_t* time = nullptr;
        switch (number) {
          case kItemKey: {
            if (!Is(type, kLengthDelimited)) return true;
            taken = true;
            std::string_view s;
            if (!ReadString(r, s)) return false;
            item.key.assign(s);
            return true;
          }
          case kViewed:
            time = &item.viewed_ms;
            break;
          case kCarted:
            time = &item.carted_ms;
            break;
          case kUncarted:
            time = &item.uncarted_ms;
            break;
          case kBought:
            time = &item.bought_ms;
            break;
          default:
            return true;
        }
        if (!Is(type, kVarint)) return true;
        taken = true;
        return ReadInt(r, *time);
      },
      /*depth=*/1);
}

// Where each top-level scalar field goes.
int64_t* IntField(core::Profile& p, uint32_t number) {
  switch (number) {
    case kFirstSeen:
      return &p.first_seen_ms;
    case kLastSeen:
      return &p.last_seen_ms;
    case kProductViews:
      return &p.counters.product_views;
    case kCartAdds:
      return &p.counters.cart_adds;
    case kOrders:
      return &p.counters.orders;
    case kSessionStart:
      return &p.session.start_ms;
    case kSessionLast:
      return &p.session.last_ms;
    case kSessionEvents:
      return &p.session.events;
    case kEngagementFastRef:
      return &p.engagement_fast.ref_time_ms;
    case kEngagementSlowRef:
      return &p.engagement_slow.ref_time_ms;
    case kReturned:
      return &p.returned_ms;
    case kTimerDue:
      return &p.timer_due_ms;
    case kPurchaseDays:
      return &p.purchase_days.count;
    default:
      return nullptr;
  }
}
double* DoubleField(core::Profile& p, uint32_t number) {
  switch (number) {
    case kRevenue:
      return &p.counters.revenue;
    case kEngagementFast:
      return &p.engagement_fast.value;
    case kEngagementSlow:
      return &p.engagement_slow.value;
    default:
      return nullptr;
  }
}

}  // namespace

std::string EncodeProfileState(const core::Profile& profile) {
  Counter size;
  PutProfile(size, profile);
  std::string bytes(size.size(), '\0');
  Writer out(bytes.data());
  PutProfile(out, profile);
  return bytes;
}

absl::StatusOr<core::Profile> DecodeProfileState(std::string_view bytes) {
  core::Profile p;
  // Parallel arrays, paired once every field is read (any order is valid).
  absl::InlinedVector<std::string_view, 8> kinds, values, purposes;
  absl::InlinedVector<uint64_t, 32> hashes;
  std::vector<int64_t> event_times, decided;
  std::vector<bool> granted;
  bool malformed_family = false;
  Reader in(bytes);
  const bool parsed = ReadFields(in, [&](uint32_t number, uint32_t type, Reader& r, bool& taken) {
    std::string_view s;
    if (int64_t* field = IntField(p, number)) {
      if (!Is(type, kVarint)) return true;
      taken = true;
      return ReadInt(r, *field);
    }
    if (double* field = DoubleField(p, number)) {
      if (!Is(type, kFixed64)) return true;
      taken = true;
      return ReadDouble(r, *field);
    }
    switch (number) {
      case kVersion:
        if (!Is(type, kVarint)) return true;
        taken = true;
        return ReadInt(r, p.version);
      case kFirstPurchaseDay:
        if (!Is(type, kVarint)) return true;
        taken = true;
        return ReadInt(r, p.purchase_days.first_day);
      case kSignalsFingerprint:
        if (!Is(type, kFixed64)) return true;
        taken = true;
        return r.ReadFixed64(p.signals_fingerprint);
      case kProfileId:
      case kHoldoutKey:
      case kIdentityKinds:
      case kIdentityValues:
      case kConsentPurposes:
        if (!Is(type, kLengthDelimited)) return true;
        taken = true;
        if (!ReadString(r, s)) return false;
        if (number == kProfileId) p.id.assign(s);
        if (number == kHoldoutKey) p.holdout_key.assign(s);
        if (number == kIdentityKinds) kinds.push_back(s);
        if (number == kIdentityValues) values.push_back(s);
        if (number == kConsentPurposes) purposes.push_back(s);
        return true;
      case kFamilies:
      case kTraits:
      case kItems:
        if (!Is(type, kLengthDelimited)) return true;
        taken = true;
        if (!r.ReadLengthDelimited(s)) return false;
        if (number == kFamilies) return ReadFamily(s, p, malformed_family);
        if (number == kTraits) return ReadTrait(s, p.traits.emplace_back());
        return ReadItem(s, p.items.emplace_back());
      case kMergeTimes:
        if (!IsRepeated(type, kVarint)) return true;
        taken = true;
        return ReadRepeatedVarints(r, type, p.merge_times_ms,
                                   [](uint64_t v) { return static_cast<int64_t>(v); });
      case kRecentEventHashes:
        if (!IsRepeated(type, kFixed64)) return true;
        taken = true;
        return ReadRepeated(r, type, kFixed64, [&](Reader& e) {
          uint64_t h = 0;
          if (!e.ReadFixed64(h)) return false;
          hashes.push_back(h);
          return true;
        });
      case kRecentEventTimes:
        if (!IsRepeated(type, kVarint)) return true;
        taken = true;
        return ReadRepeatedVarints(r, type, event_times,
                                   [](uint64_t v) { return static_cast<int64_t>(v); });
      case kConsentGranted:
        if (!IsRepeated(type, kVarint)) return true;
        taken = true;
        return ReadRepeatedVarints(r, type, granted, [](uint64_t v) { return v != 0; });
      case kConsentDecided:
        if (!IsRepeated(type, kVarint)) return true;
        taken = true;
        return ReadRepeatedVarints(r, type, decided,
                                   [](uint64_t v) { return static_cast<int64_t>(v); });
      case kRecentPurchaseDays:
        if (!IsRepeated(type, kVarint)) return true;
        taken = true;
        return ReadRepeatedVarints(r, type, p.purchase_days.recent,
                                   [](uint64_t v) { return static_cast<int32_t>(v); });
      default:
        return true;
    }
  });
  if (!parsed) return Corrupt("does not parse");
  if (kinds.size() != values.size()) return Corrupt("has unpaired identities");
  if (malformed_family) return Corrupt("has a malformed score family");
  p.identities.reserve(kinds.size());
  for (size_t i = 0; i < kinds.size(); ++i) {
    p.identities.push_back({std::string(kinds[i]), std::string(values[i])});
  }
  if (hashes.size() != event_times.size()) return Corrupt("has unpaired recent events");
  p.recent_events.reserve(hashes.size());
  for (size_t i = 0; i < hashes.size(); ++i) p.recent_events.push_back({hashes[i], event_times[i]});
  if (purposes.size() != granted.size() || purposes.size() != decided.size()) {
    return Corrupt("has unpaired consent decisions");
  }
  for (size_t i = 0; i < purposes.size(); ++i) {
    p.consent.push_back({std::string(purposes[i]), granted[i], decided[i]});
  }
  return p;
}

}  // namespace profiled::codec
