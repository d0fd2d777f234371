#include "profiled/pipeline/metrics.h"

#include <algorithm>

namespace profiled::pipeline {
namespace {

prometheus::Counter& CounterOf(prometheus::Registry& r, const std::string& name,
                               const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Gauge& GaugeOf(prometheus::Registry& r, const std::string& name,
                           const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

prometheus::Histogram& HistogramOf(prometheus::Registry& r, const std::string& name,
                                   const std::string& help,
                                   const prometheus::Histogram::BucketBoundaries& buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add({}, buckets);
}

prometheus::Family<prometheus::Counter>& RefusalFamily(prometheus::Registry& r) {
  // Registering the same name twice returns the existing family.
  return prometheus::BuildCounter()
      .Name("profiled_merges_refused_total")
      .Help("Identity links and merges a guardrail refused, by rule.")
      .Register(r);
}

prometheus::Family<prometheus::Counter>& PrivacyFamily(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("profiled_privacy_fields_total")
      .Help("Event fields the privacy filter dropped or hashed before storing, by action.")
      .Register(r);
}

}  // namespace

PartitionMetrics::PartitionMetrics(prometheus::Registry& r)
    : owned(GaugeOf(r, "profiled_partitions_owned",
                    "Repartition partitions this instance owns (restored and running).")),
      unowned(GaugeOf(r, "profiled_partitions_unowned",
                      "Repartition partitions no live member says it owns, as this instance "
                      "last read the members topic (0 in single mode).")),
      restoring(GaugeOf(r, "profiled_partitions_restoring",
                        "1 while a partition given to this instance is restored from its "
                        "changelog (nothing else runs meanwhile).")),
      restore_remaining(GaugeOf(r, "profiled_restore_remaining_offsets",
                                "Changelog offsets the running restore has still to read.")),
      restores(CounterOf(r, "profiled_partition_restores_total",
                         "Partitions restored from their changelog on assignment.")),
      reused(CounterOf(r, "profiled_partition_reuses_total",
                       "Partitions given back to this instance by a rebalance and resumed from "
                       "the store it kept (their changelog ended with its last marker): no "
                       "restore.")),
      restored_records(CounterOf(r, "profiled_restore_records_total",
                                 "Changelog records restored into partition stores.")),
      restore_duration(prometheus::BuildHistogram()
                           .Name("profiled_restore_duration_seconds")
                           .Help("Time to restore one partition from its changelog.")
                           .Register(r)
                           .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 0.5, 1, 5, 10, 30,
                                                                            60, 300, 900, 3600})),
      resent(CounterOf(r, "profiled_repartition_resent_total",
                       "Repartition records skipped as re-sends (at or below their origin's "
                       "watermark).")),
      fenced(CounterOf(r, "profiled_changelog_fenced_total",
                       "Changelog records of an older owner (a zombie) written after this "
                       "owner's claim: skipped by a restore or re-asserted over by the tail.")),
      reasserted(CounterOf(r, "profiled_changelog_reasserted_total",
                           "Keys written to the changelog again over a zombie's record.")),
      superseded(CounterOf(r, "profiled_partitions_superseded_total",
                           "Partitions this instance stopped writing because a newer owner "
                           "claimed them (this instance was the zombie).")),
      standbys(GaugeOf(r, "profiled_standby_partitions",
                       "Warm copies this instance keeps of partitions other members own "
                       "(cluster.standby_replicas).")),
      standby_lag(GaugeOf(r, "profiled_standby_lag_offsets",
                          "Changelog offsets the warm copies have still to read, summed.")),
      standby_records(CounterOf(r, "profiled_standby_records_total",
                                "Changelog records folded into warm copies.")),
      standby_takeovers(CounterOf(r, "profiled_partition_standby_takeovers_total",
                                  "Partitions taken from a warm copy on assignment: only the "
                                  "changelog written since was read.")) {}

PipelineMetrics::PipelineMetrics(prometheus::Registry& registry,
                                 const std::vector<std::string>& input_topics)
    : applied(CounterOf(registry, "profiled_events_applied_total",
                        "Events applied to profiles and committed.")),
      batches(CounterOf(registry, "profiled_batches_total", "Batches committed to the store.")),
      updates_enqueued(CounterOf(registry, "profiled_updates_enqueued_total",
                                 "Profile updates written to the outbox.")),
      paused(GaugeOf(registry, "profiled_consumption_paused",
                     "1 while consumption is paused because the outbox is full.")),
      merges(CounterOf(registry, "profiled_merges_total",
                       "Profiles merged into another by identity resolution.")),
      holdout_switches(CounterOf(
          registry, "profiled_holdout_switches_total",
          "Merges that joined profiles in different holdout groups; the person keeps the group "
          "of the profile seen first.")),
      updates_truncated(CounterOf(
          registry, "profiled_updates_truncated_total",
          "Updates cut to fit output.max_message_bytes (profiles stored before the size caps).")),
      clamped(CounterOf(registry, "profiled_events_clamped_total",
                        "Events whose future event time was clamped to the wall clock.")),
      duplicates(CounterOf(registry, "profiled_events_duplicate_total",
                           "Events skipped because their profile already applied their id.")),
      timers_fired(
          CounterOf(registry, "profiled_timers_fired_total",
                    "Profiles re-evaluated because a signal was due to change with time.")),
      consent_suppressed(CounterOf(registry, "profiled_consent_suppressed_events_total",
                                   "Events acknowledged but not stored: no analytics consent.")),
      erasures(CounterOf(registry, "profiled_erasures_total", "Erase requests committed.")),
      expired(CounterOf(registry, "profiled_profiles_expired_total",
                        "Profiles deleted because they were not seen for the retention TTL.")),
      erasure_suppressed(CounterOf(registry, "profiled_erasure_suppressed_events_total",
                                   "Events refused because they name an erased identity.")),
      erasure_latency(HistogramOf(registry, "profiled_erasure_latency_seconds",
                                  "From an erase request to its tombstones and receipt committed.",
                                  {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30, 300})),
      purge_latency(HistogramOf(registry, "profiled_erasure_purge_seconds",
                                "From an erasure's commit to the person's bytes purged from disk "
                                "(WAL, SST files, MANIFEST).",
                                {0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600})),
      purges_pending(GaugeOf(registry, "profiled_erasure_purges_pending",
                             "Committed erasures whose purge from disk has not run yet.")),
      batch_duration(
          HistogramOf(registry, "profiled_batch_duration_seconds",
                      "Time to decode, apply and commit one batch.",
                      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5})),
      batch_size(HistogramOf(registry, "profiled_batch_size_events", "Input messages in one batch.",
                             {1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000})),
      input_offset_resets(CounterOf(
          registry, "profiled_input_offset_resets_total",
          "Stored input positions no longer on the broker (retention deleted the messages "
          "before they were consumed); each restarted at the oldest message left.")),
      profiles_stored(GaugeOf(registry, "profiled_profiles_stored",
                              "Profiles in the store (exact; kept with every batch).")),
      profile_cache_hits(CounterOf(registry, "profiled_profile_cache_hits_total",
                                   "Profile reads served by the hot cache.")),
      profile_cache_misses(CounterOf(registry, "profiled_profile_cache_misses_total",
                                     "Profile reads that went to the store (and decoded).")),
      profile_cache_bytes(
          GaugeOf(registry, "profiled_profile_cache_bytes",
                  "Estimated memory held by the hot cache (store.profile_cache_mb).")),
      rocksdb_live_sst_bytes(GaugeOf(registry, "profiled_rocksdb_live_sst_bytes",
                                     "Bytes of the store's SST files in the current version.")),
      rocksdb_memtable_bytes(GaugeOf(registry, "profiled_rocksdb_memtable_bytes",
                                     "Bytes in RocksDB memtables not yet flushed.")),
      rocksdb_pending_compaction_bytes(
          GaugeOf(registry, "profiled_rocksdb_pending_compaction_bytes",
                  "Bytes RocksDB estimates compaction still has to rewrite.")),
      rocksdb_writes_stopped(GaugeOf(registry, "profiled_rocksdb_writes_stopped",
                                     "1 while RocksDB stops writes (compaction far behind).")),
      rocksdb_block_cache_hits(CounterOf(registry, "profiled_rocksdb_block_cache_hits_total",
                                         "Block-cache lookups that hit.")),
      rocksdb_block_cache_misses(CounterOf(registry, "profiled_rocksdb_block_cache_misses_total",
                                           "Block-cache lookups that missed (read from disk).")),
      rocksdb_write_stall_seconds(
          CounterOf(registry, "profiled_rocksdb_write_stall_seconds_total",
                    "Time RocksDB delayed or stopped writes to let compaction catch up.")),
      privacy_dropped(PrivacyFamily(registry).Add({{"action", "dropped"}})),
      privacy_hashed(PrivacyFamily(registry).Add({{"action", "hashed"}})),
      refused_kind_limit(RefusalFamily(registry).Add(
          {{"rule", std::string(identity::RuleName(identity::RefusalRule::kKindLimit))}})),
      refused_merge_rate(RefusalFamily(registry).Add(
          {{"rule", std::string(identity::RuleName(identity::RefusalRule::kMergeRate))}})),
      partitions(registry),
      consumed_family_(prometheus::BuildCounter()
                           .Name("profiled_events_consumed_total")
                           .Help("Input messages consumed and committed, by topic.")
                           .Register(registry)) {
  prometheus::BuildGauge()
      .Name("profiled_build_info")
      .Help("Always 1; the labels name the build.")
      .Register(registry)
      .Add({{"version", PROFILED_VERSION}})
      .Set(1);
  for (const std::string& topic : input_topics) {
    consumed_[topic] = &consumed_family_.Add({{"topic", topic}});
  }
  auto& dead = prometheus::BuildCounter()
                   .Name("profiled_dead_letters_total")
                   .Help("Input messages rejected to the dead-letter topic, by reason.")
                   .Register(registry);
  for (ingest::RejectReason reason : ingest::kAllRejectReasons) {
    dead_letters_[static_cast<size_t>(reason)] =
        &dead.Add({{"reason", std::string(ingest::ReasonCode(reason))}});
  }
}

prometheus::Counter& PipelineMetrics::consumed(const std::string& topic) {
  auto it = consumed_.find(topic);
  if (it != consumed_.end()) return *it->second;
  // A topic matched by a pattern subscription: resolved once, then cached.
  return *(consumed_[topic] = &consumed_family_.Add({{"topic", topic}}));
}

double PipelineMetrics::ConsumedTotal() const {
  double sum = 0;
  for (const auto& [topic, counter] : consumed_) sum += counter->Value();
  return sum;
}

double PipelineMetrics::DeadLettersTotal() const {
  double sum = 0;
  for (const prometheus::Counter* c : dead_letters_) sum += c->Value();
  return sum;
}

void PipelineMetrics::RecordStoreStats(const store::StoreStats& stats) {
  profiles_stored.Set(static_cast<double>(stats.profiles));
  rocksdb_live_sst_bytes.Set(static_cast<double>(stats.live_sst_bytes));
  rocksdb_memtable_bytes.Set(static_cast<double>(stats.memtable_bytes));
  rocksdb_pending_compaction_bytes.Set(static_cast<double>(stats.pending_compaction_bytes));
  rocksdb_writes_stopped.Set(stats.writes_stopped ? 1 : 0);
  // RocksDB's tickers are cumulative since open: count what is new.
  AdvanceTo(rocksdb_block_cache_hits, stats.block_cache_hits, last_stats_.block_cache_hits);
  AdvanceTo(rocksdb_block_cache_misses, stats.block_cache_misses, last_stats_.block_cache_misses);
  AdvanceTo(rocksdb_write_stall_seconds, stats.write_stall_micros, last_stats_.write_stall_micros,
            1e-6);
}

void PipelineMetrics::RecordOffsetResets(uint64_t total) {
  AdvanceTo(input_offset_resets, total, offset_resets_seen_);
}

void PipelineMetrics::RecordProfileCache(uint64_t hits, uint64_t misses, size_t bytes) {
  AdvanceTo(profile_cache_hits, hits, cache_hits_seen_);
  AdvanceTo(profile_cache_misses, misses, cache_misses_seen_);
  profile_cache_bytes.Set(static_cast<double>(bytes));
}

void PipelineMetrics::AdvanceTo(prometheus::Counter& counter, uint64_t total, uint64_t& seen,
                                double unit) {
  if (total > seen) counter.Increment(static_cast<double>(total - seen) * unit);
  seen = std::max(seen, total);
}

PublisherMetrics::PublisherMetrics(prometheus::Registry& registry)
    : published(CounterOf(registry, "profiled_updates_published_total",
                          "Outbox records acknowledged by the output cluster.")),
      publish_errors(CounterOf(registry, "profiled_publish_errors_total",
                               "Failed deliveries of outbox records (each is retried).")),
      outbox_depth(GaugeOf(registry, "profiled_outbox_depth",
                           "Records waiting in the outbox to be published.")),
      producer_queue_depth(GaugeOf(registry, "profiled_producer_queue_depth",
                                   "Records handed to librdkafka and not yet acknowledged.")),
      event_publish_latency(HistogramOf(
          registry, "profiled_event_publish_latency_seconds",
          "From an input message's Kafka timestamp to the output cluster acknowledging the "
          "profile update it produced.",
          {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60})) {}

}  // namespace profiled::pipeline
