// Prometheus metrics of the pipeline and the publisher ("probe" structs).
// Readiness, lag, faults and the progress stall are Health's (health.h).
//
// Every labelled child is resolved once here, at registration, so the hot
// path only increments a counter it already holds. Names are stable once
// published (docs/operations.md lists them):
//
//   profiled_events_consumed_total{topic}   messages read and committed
//   profiled_events_applied_total           events applied to profiles
//   profiled_dead_letters_total{reason}     rejected messages by reason code
//   profiled_batches_total                  committed batches
//   profiled_updates_enqueued_total         updates written to the outbox
//   profiled_consumption_paused             1 while the outbox is full
//   profiled_merges_total                   profiles merged into another
//   profiled_merges_refused_total{rule}     links/merges a guardrail refused
//   profiled_holdout_switches_total         merges joining profiles of different holdout groups
//   profiled_updates_truncated_total        updates cut to fit output.max_message_bytes
//   profiled_events_clamped_total           future event times clamped to now
//   profiled_events_duplicate_total         re-sent events skipped (same id)
//   profiled_privacy_fields_total{action}   fields the privacy filter dropped/hashed
//   profiled_timers_fired_total             due profiles re-evaluated without an event
//   profiled_consent_suppressed_events_total events not stored: no analytics consent
//   profiled_erasures_total                 erase requests committed
//   profiled_profiles_expired_total         profiles deleted by the retention TTL
//   profiled_erasure_suppressed_events_total late events of erased people refused
//   profiled_erasure_latency_seconds        erase request -> tombstones committed
//   profiled_erasure_purge_seconds          erasure committed -> purged from disk
//   profiled_erasure_purges_pending         erasures waiting for their purge
//   profiled_batch_duration_seconds         processing + commit time of one batch
//   profiled_batch_size_events              input messages per batch
//   profiled_profiles_stored                profiles in the store (exact)
//   profiled_profile_cache_hits_total / _misses_total  profile reads served by the hot cache / the
//   store profiled_profile_cache_bytes            estimated memory held by the hot cache
//   profiled_rocksdb_live_sst_bytes         SST files of the current version
//   profiled_rocksdb_memtable_bytes         memtables not yet flushed
//   profiled_rocksdb_pending_compaction_bytes  compaction debt
//   profiled_rocksdb_block_cache_hits_total / _misses_total  block-cache lookups
//   profiled_rocksdb_write_stall_seconds_total  time writes were delayed or stopped
//   profiled_rocksdb_writes_stopped         1 while RocksDB stops writes
//   profiled_build_info{version}            1
//   profiled_input_offset_resets_total      stored positions gone from the broker (input lost)
//   profiled_updates_published_total        outbox records acknowledged
//   profiled_publish_errors_total           failed deliveries (retried)
//   profiled_outbox_depth                   records waiting in the outbox
//   profiled_producer_queue_depth           records handed to librdkafka, not yet acknowledged
//   profiled_event_publish_latency_seconds  input message timestamp -> its update acknowledged
//   profiled_partitions_owned, _unowned, _restoring, profiled_restore_*,
//   profiled_partition_restores_total, _reuses_total, profiled_repartition_resent_total,
//   profiled_changelog_fenced_total / _reasserted_total, profiled_partitions_superseded_total
//   partitioned mode (docs/operations.md)
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "profiled/identity/resolver.h"
#include "profiled/ingest/protobuf_decoder.h"
#include "profiled/store/profile_store.h"

namespace profiled::pipeline {

// Partitioned mode's own (exported at 0 in single mode, so dashboards and
// alerts read the same series in both).
struct PartitionMetrics {
  explicit PartitionMetrics(prometheus::Registry& registry);
  prometheus::Gauge& owned;              // repartition partitions owned
  prometheus::Gauge& unowned;            // partitions no live member owns (members topic)
  prometheus::Gauge& restoring;          // 1 while a restore runs
  prometheus::Gauge& restore_remaining;  // changelog offsets it has still to read
  prometheus::Counter& restores;
  prometheus::Counter& reused;  // given back and resumed from the kept store
  prometheus::Counter& restored_records;
  prometheus::Histogram& restore_duration;
  prometheus::Counter& resent;      // repartition re-sends skipped
  prometheus::Counter& fenced;      // a zombie's changelog records seen
  prometheus::Counter& reasserted;  // keys written again over them
  prometheus::Counter& superseded;  // partitions a newer owner claimed
  prometheus::Gauge& standbys;             // warm copies kept of others' partitions
  prometheus::Gauge& standby_lag;          // changelog offsets they have still to read
  prometheus::Counter& standby_records;    // changelog records folded into them
  prometheus::Counter& standby_takeovers;  // partitions taken from a warm copy
};

class PipelineMetrics {
 public:
  PipelineMetrics(prometheus::Registry& registry, const std::vector<std::string>& input_topics);

  // The consumed counter of `topic` (one of the input topics).
  prometheus::Counter& consumed(const std::string& topic);
  prometheus::Counter& dead_letters(ingest::RejectReason reason) {
    return *dead_letters_[static_cast<size_t>(reason)];
  }
  double ConsumedTotal() const;
  double DeadLettersTotal() const;
  // Sets the store gauges and advances the store counters to `stats`.
  void RecordStoreStats(const store::StoreStats& stats);
  // Advances input_offset_resets to the consumer's cumulative count.
  void RecordOffsetResets(uint64_t total);
  // The hot cache's cumulative hits and misses, and its size now.
  void RecordProfileCache(uint64_t hits, uint64_t misses, size_t bytes);

  prometheus::Counter& applied;
  prometheus::Counter& batches;
  prometheus::Counter& updates_enqueued;
  prometheus::Gauge& paused;
  prometheus::Counter& merges;
  prometheus::Counter& holdout_switches;
  prometheus::Counter& updates_truncated;
  prometheus::Counter& clamped;
  prometheus::Counter& duplicates;
  prometheus::Counter& timers_fired;
  prometheus::Counter& consent_suppressed;
  prometheus::Counter& erasures;
  prometheus::Counter& expired;
  prometheus::Counter& erasure_suppressed;
  prometheus::Histogram& erasure_latency;
  // From an erasure's commit to its purge from disk, and erasures waiting for one.
  prometheus::Histogram& purge_latency;
  prometheus::Gauge& purges_pending;
  // Wall time to process and commit one batch.
  prometheus::Histogram& batch_duration;
  prometheus::Histogram& batch_size;
  prometheus::Counter& input_offset_resets;
  prometheus::Gauge& profiles_stored;
  prometheus::Counter& profile_cache_hits;
  prometheus::Counter& profile_cache_misses;
  prometheus::Gauge& profile_cache_bytes;
  prometheus::Gauge& rocksdb_live_sst_bytes;
  prometheus::Gauge& rocksdb_memtable_bytes;
  prometheus::Gauge& rocksdb_pending_compaction_bytes;
  prometheus::Gauge& rocksdb_writes_stopped;
  prometheus::Counter& rocksdb_block_cache_hits;
  prometheus::Counter& rocksdb_block_cache_misses;
  prometheus::Counter& rocksdb_write_stall_seconds;
  prometheus::Counter& privacy_dropped;
  prometheus::Counter& privacy_hashed;
  prometheus::Counter& refused_kind_limit;
  prometheus::Counter& refused_merge_rate;
  PartitionMetrics partitions;
  // The refusal counter of a resolver rule: one per rule, none shared.
  prometheus::Counter& refused(identity::RefusalRule rule) {
    switch (rule) {
      case identity::RefusalRule::kKindLimit:
        return refused_kind_limit;
      case identity::RefusalRule::kMergeRate:
        return refused_merge_rate;
    }
    return refused_kind_limit;  // unreachable: the switch names every rule (-Wswitch)
  }

 private:
  prometheus::Family<prometheus::Counter>& consumed_family_;
  absl::flat_hash_map<std::string, prometheus::Counter*> consumed_;
  std::array<prometheus::Counter*, std::size(ingest::kAllRejectReasons)> dead_letters_{};
  // Adds to `counter` what a cumulative source gained since `seen` (in
  // `unit`s) and remembers `total`.
  static void AdvanceTo(prometheus::Counter& counter, uint64_t total, uint64_t& seen,
                        double unit = 1);
  store::StoreStats last_stats_;     // cumulative store figures already counted
  uint64_t offset_resets_seen_ = 0;  // consumer resets already counted
  uint64_t cache_hits_seen_ = 0, cache_misses_seen_ = 0;
};

struct PublisherMetrics {
  explicit PublisherMetrics(prometheus::Registry& registry);
  prometheus::Counter& published;
  prometheus::Counter& publish_errors;
  prometheus::Gauge& outbox_depth;
  prometheus::Gauge& producer_queue_depth;
  // From the input message's Kafka timestamp (the oldest one behind the
  // update) to the output cluster acknowledging the update.
  prometheus::Histogram& event_publish_latency;
};

}  // namespace profiled::pipeline
