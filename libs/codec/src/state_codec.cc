#include "profiled/codec/state_codec.h"

#include "profiled/internal/v1/profile_state.pb.h"

namespace profiled::codec {

namespace pb = profiled::internal::v1;

std::string EncodeProfileState(const core::Profile& profile) {
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
    sf->mutable_keys()->Reserve(static_cast<int>(family.size()));
    sf->mutable_values()->Reserve(static_cast<int>(family.size()));
    sf->mutable_ref_times_ms()->Reserve(static_cast<int>(family.size()));
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

absl::StatusOr<core::Profile> DecodeProfileState(std::string_view bytes) {
  pb::StoredProfile s;
  if (!s.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("stored profile does not parse");
  }
  if (s.identity_kinds_size() != s.identity_values_size()) {
    return absl::DataLossError("stored profile has unpaired identities");
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
      return absl::DataLossError("stored profile has a malformed score family");
    }
    core::ScoreFamily& family = p.family(static_cast<core::Family>(sf.family()));
    for (int i = 0; i < sf.keys_size(); ++i) {
      family.RestoreEntry(sf.keys(i), {sf.values(i), sf.ref_times_ms(i)});
    }
  }
  p.counters.product_views = s.product_views();
  p.counters.cart_adds = s.cart_adds();
  p.counters.orders = s.orders();
  p.counters.revenue = s.revenue();
  for (const pb::StoredTrait& st : s.traits()) {
    p.traits.push_back({st.key(), st.value(), st.event_time_ms()});
  }
  p.merge_times_ms.assign(s.merge_times_ms().begin(), s.merge_times_ms().end());
  if (s.recent_event_hashes_size() != s.recent_event_times_ms_size()) {
    return absl::DataLossError("stored profile has unpaired recent events");
  }
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
  if (s.consent_purposes_size() != s.consent_granted_size() ||
      s.consent_purposes_size() != s.consent_decided_ms_size()) {
    return absl::DataLossError("stored profile has unpaired consent decisions");
  }
  for (int i = 0; i < s.consent_purposes_size(); ++i) {
    p.consent.push_back({s.consent_purposes(i), s.consent_granted(i), s.consent_decided_ms(i)});
  }
  return p;
}

}  // namespace profiled::codec
