#include "profiled/codec/update_codec.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "wire.h"

namespace profiled::codec {
namespace {

// What consent lets the update carry: nothing but the consent itself when
// the output topic's purpose is refused (identities are the first to go),
// score families only with personalization. ApplyConsent clears the rest
// from a built message; the encoder leaves it out of the bytes.
struct Visible {
  bool identities = true;
  bool score_families = true;
};
Visible VisibleParts(const core::Profile& profile, const core::ConsentOptions& consent) {
  const bool output = consent.output_purpose.empty() ||
                      core::Allows(profile.consent, consent.output_purpose, consent);
  return {output, output && core::Allows(profile.consent, core::kPersonalizationPurpose, consent)};
}

// States every purpose's consent on the update and removes what the person
// did not allow: score families and signals of a denied purpose.
void ApplyConsent(const core::Profile& profile, const core::ConsentOptions& consent,
                  v1::ProfileUpdate& u) {
  for (const auto& [purpose, by_default] : consent.defaults) {
    v1::PurposeConsent* c = u.add_consent();
    c->set_purpose(purpose);
    c->set_granted(core::Allows(profile.consent, purpose, consent));
    for (const core::ConsentDecision& d : profile.consent) {
      if (d.purpose == purpose) c->set_decided_ms(d.decided_ms);
    }
  }
  auto allowed = [&](const v1::SignalMeta& meta) {
    return core::Allows(profile.consent, meta.purpose(), consent);
  };
  const Visible visible = VisibleParts(profile, consent);
  if (!visible.identities) {
    // The topic serves a purpose the person refused: only their consent goes out.
    u.clear_identities();
    u.clear_score_families();
    u.clear_counters();
    u.clear_traits();
    u.clear_signals();
    return;
  }
  if (!visible.score_families) u.clear_score_families();
  v1::ContextSignals& s = *u.mutable_signals();
  if (!allowed(s.top_intents().meta())) s.clear_top_intents();
  if (!allowed(s.journey().meta())) s.clear_journey();
  if (!allowed(s.suppression().meta())) s.clear_suppression();
  if (!allowed(s.cart().meta())) s.clear_cart();
  if (!allowed(s.lifecycle().meta())) s.clear_lifecycle();
  if (!allowed(s.cold_start().meta())) s.clear_cold_start();
  if (!allowed(s.preferences().meta())) s.clear_preferences();
  if (!allowed(s.session().meta())) s.clear_session();
  if (!allowed(s.engagement().meta())) s.clear_engagement();
}

}  // namespace

v1::ProfileUpdate BuildProfileUpdate(const core::Profile& profile, int64_t as_of_ms,
                                     const core::ScoringOptions& options,
                                     const signals::Signals& signals) {
  v1::ProfileUpdate u;
  BuildProfileUpdateInto(profile, as_of_ms, options, signals, u);
  return u;
}

void BuildProfileUpdateInto(const core::Profile& profile, int64_t as_of_ms,
                            const core::ScoringOptions& options, const signals::Signals& signals,
                            v1::ProfileUpdate& u) {
  core::Rankings ranked(profile, as_of_ms, options);
  BuildProfileUpdateInto(ranked, signals, u);
}

namespace {

int64_t HalfLifeMs(const core::FamilyOptions& options) {
  return static_cast<int64_t>(std::llround(options.half_life_ms));
}

// Fields 1 to 7 (ids, times, identities, score families) as messages.
void BuildHead(core::Rankings& ranked, v1::ProfileUpdate& u) {
  const core::Profile& profile = ranked.profile();
  u.set_profile_id(profile.id);
  u.set_version(profile.version);
  u.set_as_of_ms(ranked.now_ms());
  u.set_first_seen_ms(profile.first_seen_ms);
  u.set_last_seen_ms(profile.last_seen_ms);
  for (const core::Identity& id : profile.identities) {
    v1::Identity* out = u.add_identities();
    out->set_kind(id.kind);
    out->set_value(id.value);
  }
  for (core::Family f : core::kAllFamilies) {
    const std::vector<core::ScoreFamily::Ranked>& scores = ranked.Of(f);
    if (scores.empty()) continue;
    v1::ScoreFamily* sf = u.add_score_families();
    const std::string_view name = core::FamilyName(f);
    sf->set_family(name.data(), name.size());
    sf->set_half_life_ms(HalfLifeMs(ranked.scoring().family(f)));
    sf->mutable_scores()->Reserve(static_cast<int>(scores.size()));
    for (const core::ScoreFamily::Ranked& r : scores) {
      v1::Score* s = sf->add_scores();
      s->set_key(r.key.data(), r.key.size());  // no temporary string
      s->set_value(r.value);
      s->set_last_event_time_ms(r.ref_time_ms);
    }
  }
}

// The fields after them (counters, traits, signals, consent), and what
// consent removes.
void BuildTail(core::Rankings& ranked, const signals::Signals& signals, v1::ProfileUpdate& u) {
  const core::Profile& profile = ranked.profile();
  v1::Counters* c = u.mutable_counters();
  c->set_events(static_cast<int64_t>(profile.version));
  c->set_product_views(profile.counters.product_views);
  c->set_cart_adds(profile.counters.cart_adds);
  c->set_orders(profile.counters.orders);
  c->set_revenue(profile.counters.revenue);
  for (const core::Trait& t : profile.traits) (*u.mutable_traits())[t.key] = t.value;
  signals.DeriveInto(ranked, *u.mutable_signals());
  ApplyConsent(profile, ranked.scoring().consent, u);
}

// ---- Fields 1 to 7 written as bytes, as the generated serializer writes
// BuildHead's message (update.proto's field numbers).
enum UpdateField : uint32_t {
  kProfileId = 1,
  kVersion = 2,
  kAsOf = 3,
  kIdentities = 4,
  kFirstSeen = 5,
  kLastSeen = 6,
  kScoreFamilies = 7
};
enum IdentityField : uint32_t { kKind = 1, kValue = 2 };
enum FamilyField : uint32_t { kFamilyName = 1, kHalfLife = 2, kScores = 3 };
enum ScoreField : uint32_t { kKey = 1, kScoreValue = 2, kLastEventTime = 3 };

template <typename Out>
void PutScore(Out& out, const core::ScoreFamily::Ranked& r) {
  wire::PutSingularString(out, kKey, r.key);
  wire::PutDouble(out, kScoreValue, r.value);
  wire::PutInt(out, kLastEventTime, r.ref_time_ms);
}

// The sizes of every nested message of the head, counted once before it is
// written: each family's, and each score's in the order they are written.
struct HeadSizes {
  std::array<size_t, core::kFamilyCount> families{};
  std::vector<uint32_t> scores;
  size_t total = 0;
};

template <typename Out>
void PutFamilyFields(Out& out, core::Family f, int64_t half_life_ms) {
  wire::PutSingularString(out, kFamilyName, core::FamilyName(f));
  wire::PutInt(out, kHalfLife, half_life_ms);
}

template <typename Out>
void PutHeadFields(Out& out, const core::Profile& profile, int64_t as_of_ms,
                   const Visible& visible) {
  wire::PutSingularString(out, kProfileId, profile.id);
  wire::PutVarintField(out, kVersion, profile.version);
  wire::PutInt(out, kAsOf, as_of_ms);
  if (visible.identities) {
    for (const core::Identity& id : profile.identities) {
      wire::PutMessage(out, kIdentities, [&](auto& o) {
        wire::PutSingularString(o, kKind, id.kind);
        wire::PutSingularString(o, kValue, id.value);
      });
    }
  }
  wire::PutInt(out, kFirstSeen, profile.first_seen_ms);
  wire::PutInt(out, kLastSeen, profile.last_seen_ms);
}

void CountHead(core::Rankings& ranked, const Visible& visible, HeadSizes& sizes) {
  wire::Counter head;
  PutHeadFields(head, ranked.profile(), ranked.now_ms(), visible);
  sizes.total = head.size();
  sizes.scores.clear();
  if (!visible.score_families) return;
  for (core::Family f : core::kAllFamilies) {
    const std::vector<core::ScoreFamily::Ranked>& scores = ranked.Of(f);
    if (scores.empty()) continue;
    wire::Counter family;
    PutFamilyFields(family, f, HalfLifeMs(ranked.scoring().family(f)));
    size_t size = family.size();
    for (const core::ScoreFamily::Ranked& r : scores) {
      wire::Counter score;
      PutScore(score, r);
      sizes.scores.push_back(static_cast<uint32_t>(score.size()));
      size += 1 + wire::VarintSize(score.size()) + score.size();
    }
    sizes.families[static_cast<size_t>(f)] = size;
    sizes.total += 1 + wire::VarintSize(size) + size;
  }
}

void WriteHead(core::Rankings& ranked, const Visible& visible, const HeadSizes& sizes,
               wire::Writer& out) {
  PutHeadFields(out, ranked.profile(), ranked.now_ms(), visible);
  if (!visible.score_families) return;
  const uint32_t* score_size = sizes.scores.data();
  for (core::Family f : core::kAllFamilies) {
    const std::vector<core::ScoreFamily::Ranked>& scores = ranked.Of(f);
    if (scores.empty()) continue;
    out.Varint(wire::Tag(kScoreFamilies, wire::kLengthDelimited));
    out.Varint(sizes.families[static_cast<size_t>(f)]);
    PutFamilyFields(out, f, HalfLifeMs(ranked.scoring().family(f)));
    for (const core::ScoreFamily::Ranked& r : scores) {
      out.Varint(wire::Tag(kScores, wire::kLengthDelimited));
      out.Varint(*score_size++);
      PutScore(out, r);
    }
  }
}

}  // namespace

void BuildProfileUpdateInto(core::Rankings& ranked, const signals::Signals& signals,
                            v1::ProfileUpdate& u) {
  BuildHead(ranked, u);
  BuildTail(ranked, signals, u);
}

void EncodeProfileUpdate(core::Rankings& ranked, const signals::Signals& signals,
                         v1::ProfileUpdate& tail, std::string& bytes) {
  tail.Clear();  // a field 1 to 7 left in it would be written twice
  BuildTail(ranked, signals, tail);
  const Visible visible = VisibleParts(ranked.profile(), ranked.scoring().consent);
  thread_local HeadSizes sizes;  // its vector keeps its capacity between updates
  CountHead(ranked, visible, sizes);
  const size_t tail_size = tail.ByteSizeLong();
  bytes.resize(sizes.total + tail_size);
  wire::Writer out(bytes.data());
  WriteHead(ranked, visible, sizes, out);
  // Fields 8 on: the generated serializer writes a message's fields in
  // number order, so these bytes after fields 1 to 7 are the whole
  // update's.
  tail.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(bytes.data() + sizes.total));
}

bool FitUpdate(size_t max_bytes, v1::ProfileUpdate& u) {
  if (u.ByteSizeLong() <= max_bytes) return false;
  u.set_truncated(true);
  auto fits = [&] { return u.ByteSizeLong() <= max_bytes; };
  for (bool any = true; any && !fits();) {
    any = false;
    for (v1::ScoreFamily& f : *u.mutable_score_families()) {
      const int keep = f.scores_size() / 2;  // scores are best first
      if (keep < f.scores_size()) {
        f.mutable_scores()->DeleteSubrange(keep, f.scores_size() - keep);
        any = true;
      }
    }
  }
  if (!fits()) u.clear_traits();
  if (!fits()) u.clear_signals();
  if (!fits() && u.identities_size() > 10) {
    u.mutable_identities()->DeleteSubrange(10, u.identities_size() - 10);
  }
  return true;
}

}  // namespace profiled::codec
