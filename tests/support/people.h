// Inputs and comparisons for partitioned mode's equivalence tests: people
// met as an anonymous visitor, then logged in, then with an email (a
// person's identities arrive on different partitions), and the check that
// two profiles of one person hold the same thing.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "profiled/core/profile.h"
#include "profiled/pipeline/pipeline.h"
#include "profiled/v1/event.pb.h"

namespace profiled::testing {

// The options every equivalence test runs both modes with: no guardrail
// fires (people are exactly the linked identities) and event-id
// de-duplication is off, so exactly once must come from the protocol
// (origins, slots ahead of a restore), not from the profile's memory.
pipeline::PipelineOptions EquivalenceOptions();

// `events` events of `people` people, a minute apart from `t0_ms`: each an
// anonymous visit, a login (anonymous id and user id), a logged-in visit,
// or one giving the email too. Ids "e<i>"; orders carry revenue.
std::vector<v1::InteractionEvent> PeopleEvents(std::mt19937_64& rng, int people, int events,
                                               int64_t t0_ms);

// Produces events [from, to) to `topic`, keyed at random so that a
// person's events spread over every input partition.
void ProduceSpread(const std::string& bootstrap, const std::string& topic,
                   const std::vector<v1::InteractionEvent>& events, size_t from, size_t to,
                   std::mt19937_64& rng);

// Same id, version, counters, first/last seen, identities and every family's
// ranked scores at `now_ms` (within 1e-9 relative): Catch CHECKs.
void CheckSameProfile(const core::Profile& got, const core::Profile& want,
                      const core::ScoringOptions& scoring, int64_t now_ms);

// Single mode's final profile of each person (keyed by user id), from a
// single-mode pipeline consuming `topic` (which holds exactly `events`
// events) on its own group, with its store at `store_path`.
std::map<std::string, core::Profile> SingleModeReference(const std::string& bootstrap,
                                                         const std::string& topic,
                                                         const pipeline::PipelineOptions& options,
                                                         size_t events,
                                                         const std::string& store_path);

// Each of `users`' profile as changelog `topic` holds it (the newest record
// per key, as a new owner restores it), found from the user id's slot
// through forward pointers; users whose chain is not complete yet are left
// out.
std::map<std::string, core::Profile> ProfilesFromChangelog(const std::string& bootstrap,
                                                           const std::string& topic,
                                                           const std::vector<std::string>& users);

// Reads the changelog until every person of `reference` is there with the
// reference's version (or `timeout` passes); returns what it read last.
std::map<std::string, core::Profile> WaitForChangelogVersions(
    const std::string& bootstrap, const std::string& topic,
    const std::map<std::string, core::Profile>& reference, std::chrono::seconds timeout,
    bool* converged);

// Every person's profile checked against the reference (CheckSameProfile).
void CheckSamePeople(const std::map<std::string, core::Profile>& got,
                     const std::map<std::string, core::Profile>& reference,
                     const core::ScoringOptions& scoring, int64_t now_ms);

}  // namespace profiled::testing
