// GET /v1/profiles/{kind}/{value}: one profile as JSON (Protobuf JSON mapping
// of profiled.v1.ProfileUpdate), scores evaluated now. The identity is
// normalized as ingest does (an email is looked up by its SHA-256) and
// resolved through the identity graph; kind "profile_id" takes the id itself.
//   200 the profile; 404 no profile for that identity;
//   400 malformed path (reason in the body); 405 not a GET;
//   partitioned mode: 307 to the owner, 503 while nobody owns the partition.
//
// GET /v1/merges/{profile_id}: the merge audit of a profile as a JSON array
// of records (merges and refusals, oldest first); [] for an unknown id.
#pragma once

#include "profiled/core/clock.h"
#include "profiled/core/profile.h"
#include "profiled/identity/identity_rules.h"
#include "profiled/obs/http_server.h"
#include "profiled/pipeline/partitioned_runtime.h"
#include "profiled/signals/signals.h"
#include "profiled/store/profile_store.h"

namespace profiled::app {

// Wraps `handler` so it answers 401 unless the request carries
// "Authorization: Bearer <token>"; an empty token leaves it open.
obs::HttpHandler RequireBearer(std::string token, obs::HttpHandler handler);

// How a profile is resolved and rendered, in either mode.
struct ProfileView {
  const core::ScoringOptions& scoring;
  const core::Clock& wall_clock;
  // kEventTime: evaluate at the profile's last event (historical replays);
  // kAuto: at wall time.
  core::PipelineClock::Mode clock_mode;
  const identity::IdentityRules& rules;
  const signals::Signals& signals;
};

struct ProfileLookup {
  store::ProfileStore& store;
  ProfileView view;

  obs::HttpResponse operator()(const obs::HttpRequest& request) const;
};

// Partitioned mode (docs/scaling.md, lookups): the same answers on any
// instance. The identity's slot and the profile's (and a merged profile's
// survivor's) are read where they are owned here; a slot owned by another
// instance is a 307 to that instance's advertised address (from the
// members topic) with the same path — or /v1/profiles/profile_id/{id} once
// the identity is resolved. 503 while a partition has no known owner.
struct PartitionedProfileLookup {
  const pipeline::PartitionedRuntime& runtime;
  ProfileView view;
  std::string self_address;  // this instance's advertised address: never redirected to

  obs::HttpResponse operator()(const obs::HttpRequest& request) const;
};

struct MergeAuditLookup {
  store::ProfileStore& store;
  obs::HttpResponse operator()(const obs::HttpRequest& request) const;
};

// Partitioned mode: the audit kept in the profile's slot (its newest
// records: docs/scaling.md, merge audit), read where the slot is owned,
// else a 307 to its owner or a 503, as PartitionedProfileLookup.
struct PartitionedMergeAuditLookup {
  const pipeline::PartitionedRuntime& runtime;
  std::string self_address;

  obs::HttpResponse operator()(const obs::HttpRequest& request) const;
};

}  // namespace profiled::app
