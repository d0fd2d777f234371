#include "output_stage.h"

#include <google/protobuf/arena.h>

#include <algorithm>
#include <array>

#include "hot_cache.h"
#include "outbox_records.h"
#include "profiled/base/log.h"
#include "profiled/codec/state_codec.h"
#include "profiled/codec/update_codec.h"
#include "profiled/pipeline/output_limits.h"

namespace profiled::pipeline::internal {
namespace {

// An update is ~5 KB encoded and several times that as messages; larger
// ones take more blocks from the heap.
constexpr size_t kUpdateArenaBytes = 64 << 10;

}  // namespace

Output OutputStage::Build(const core::Profile& profile, int64_t as_of_ms,
                          int64_t source_time_ms) const {
  Output out;
  // The rest of the update is built on an arena whose first block is this
  // thread's: its small messages and strings cost no malloc each
  // (docs/benchmarks.md, "Pure stages").
  thread_local std::array<char, kUpdateArenaBytes> first_block;
  google::protobuf::Arena arena(first_block.data(), first_block.size());
  core::Rankings ranked(profile, as_of_ms, options_.scoring);  // ranked once for all three
  v1::ProfileUpdate& tail = *google::protobuf::Arena::CreateMessage<v1::ProfileUpdate>(&arena);
  std::string bytes;
  codec::EncodeProfileUpdate(ranked, signals_, tail, bytes);
  const size_t max_bytes = options_.max_output_message_bytes - kRecordOverheadBytes;
  if (bytes.size() <= max_bytes) {
    out.fingerprint = signals::Fingerprint(tail.signals());
    out.record =
        OutboxRecordFor(options_.output_topic, profile.id, std::move(bytes), source_time_ms);
  } else {
    // Too large (a profile stored before the size caps): built whole, then cut.
    v1::ProfileUpdate& update = *google::protobuf::Arena::CreateMessage<v1::ProfileUpdate>(&arena);
    codec::BuildProfileUpdateInto(ranked, signals_, update);
    out.truncated = codec::FitUpdate(max_bytes, update);
    LogWarn("update of ", profile.id, " exceeded output.max_message_bytes and was cut ",
            "(a profile stored before the size caps; its next event trims it)");
    out.fingerprint = signals::Fingerprint(update.signals());
    out.record = OutboxRecordFor(options_.output_topic, update, source_time_ms);
  }
  out.next_due_ms = signals_.NextTransitionMs(ranked);
  if (options_.retention_ttl_ms > 0) {
    const int64_t expiry = profile.last_seen_ms + options_.retention_ttl_ms;
    if (out.next_due_ms == 0 || expiry < out.next_due_ms) {
      out.next_due_ms = std::max(expiry, as_of_ms + 1);
    }
  }
  return out;
}

void OutputStage::RecordTimerChange(int64_t old_due_ms, const core::Profile& profile,
                                    const core::PartitionKey& partition,
                                    store::CommitBatch& batch) {
  if (old_due_ms == profile.timer_due_ms) return;
  if (old_due_ms != 0) batch.timers_deleted.emplace_back(old_due_ms, profile.id);
  if (profile.timer_due_ms != 0) {
    batch.timers_set.push_back(
        {profile.timer_due_ms, profile.id, partition.topic, partition.partition});
  }
}

absl::flat_hash_map<std::string, size_t> OutputStage::BuildBatch(BatchState& state,
                                                                 const core::PipelineClock& clock,
                                                                 BatchWork& work) {
  store::CommitBatch& batch = work.batch;
  // Each changed profile's update, timer and state are independent of the
  // others: built on every core, then added in order.
  const std::vector<std::pair<core::Profile*, const core::PartitionKey*>> changed = state.Changed();
  struct Built {
    Output output;
    int64_t old_due_ms = 0;
    std::string state;
  };
  std::vector<Built> built(changed.size());
  std::vector<int64_t> as_of(changed.size());
  for (size_t i = 0; i < changed.size(); ++i) {
    as_of[i] = std::max(clock.NowMs(*changed[i].second), changed[i].first->last_seen_ms);
  }
  workers_.ParallelFor(changed.size(), [&](size_t i) {
    core::Profile& profile = *changed[i].first;
    auto source = work.source_time_ms.find(profile.id);
    Built& out = built[i];
    out.output = Build(profile, as_of[i], source == work.source_time_ms.end() ? 0 : source->second);
    profile.signals_fingerprint = out.output.fingerprint;
    out.old_due_ms = profile.timer_due_ms;
    profile.timer_due_ms = out.output.next_due_ms;
    out.state = codec::EncodeProfileState(profile);
  });
  absl::flat_hash_map<std::string, size_t> charges;
  charges.reserve(changed.size());
  for (size_t i = 0; i < changed.size(); ++i) {
    const core::Profile& profile = *changed[i].first;
    RecordTimerChange(built[i].old_due_ms, profile, *changed[i].second, batch);
    charges[profile.id] = HotCache::ProfileCharge(built[i].state.size());
    work.counts.truncated += built[i].output.truncated;
    batch.outbox.push_back(std::move(built[i].output.record));
    batch.profiles.emplace_back(profile.id, std::move(built[i].state));
  }
  for (const BatchWork::Notice& n : work.notices) {
    v1::ProfileUpdate notice;
    notice.set_profile_id(n.absorbed);
    notice.set_version(n.version);
    notice.set_as_of_ms(clock.NowMs(n.partition));
    notice.set_merged_into(n.survivor);
    batch.outbox.push_back(OutboxRecordFor(options_.output_topic, notice));
    batch.outbox.push_back(TombstoneRecordFor(options_.output_topic, n.absorbed));
  }
  return charges;
}

}  // namespace profiled::pipeline::internal
