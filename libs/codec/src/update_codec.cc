#include "profiled/codec/update_codec.h"

#include <algorithm>
#include <cmath>

namespace profiled::codec {
namespace {

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
  if (!consent.output_purpose.empty() &&
      !core::Allows(profile.consent, consent.output_purpose, consent)) {
    // The topic serves a purpose the person refused: only their consent goes out.
    u.clear_identities();
    u.clear_score_families();
    u.clear_counters();
    u.clear_traits();
    u.clear_signals();
    return;
  }
  if (!core::Allows(profile.consent, core::kPersonalizationPurpose, consent)) {
    u.clear_score_families();
  }
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

void BuildProfileUpdateInto(core::Rankings& ranked, const signals::Signals& signals,
                            v1::ProfileUpdate& u) {
  const core::Profile& profile = ranked.profile();
  const int64_t as_of_ms = ranked.now_ms();
  const core::ScoringOptions& options = ranked.scoring();
  u.set_profile_id(profile.id);
  u.set_version(profile.version);
  u.set_as_of_ms(as_of_ms);
  u.set_first_seen_ms(profile.first_seen_ms);
  u.set_last_seen_ms(profile.last_seen_ms);
  for (const core::Identity& id : profile.identities) {
    v1::Identity* out = u.add_identities();
    out->set_kind(id.kind);
    out->set_value(id.value);
  }
  for (core::Family f : core::kAllFamilies) {
    const core::FamilyOptions& fo = options.family(f);
    const std::vector<core::ScoreFamily::Ranked>& scores = ranked.Of(f);
    if (scores.empty()) continue;
    v1::ScoreFamily* sf = u.add_score_families();
    const std::string_view name = core::FamilyName(f);
    sf->set_family(name.data(), name.size());
    sf->set_half_life_ms(static_cast<int64_t>(std::llround(fo.half_life_ms)));
    sf->mutable_scores()->Reserve(static_cast<int>(scores.size()));
    for (const core::ScoreFamily::Ranked& r : scores) {
      v1::Score* s = sf->add_scores();
      s->set_key(r.key.data(), r.key.size());  // no temporary string
      s->set_value(r.value);
      s->set_last_event_time_ms(r.ref_time_ms);
    }
  }
  v1::Counters* c = u.mutable_counters();
  c->set_events(static_cast<int64_t>(profile.version));
  c->set_product_views(profile.counters.product_views);
  c->set_cart_adds(profile.counters.cart_adds);
  c->set_orders(profile.counters.orders);
  c->set_revenue(profile.counters.revenue);
  for (const core::Trait& t : profile.traits) (*u.mutable_traits())[t.key] = t.value;
  signals.DeriveInto(ranked, *u.mutable_signals());
  ApplyConsent(profile, options.consent, u);
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
