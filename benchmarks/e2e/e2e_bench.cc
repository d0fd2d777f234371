// profiled_e2e_bench: one end-to-end run, every part a separate process.
//
//   devbroker (mock Kafka cluster, --partitions per topic)
//     <- profiled_loadgen (synthetic Segment JSON, open loop or flat out)
//     -> profiled (the real binary, RocksDB on disk)
//     -> this driver, consuming the output topic: event->publish latency from
//        the update's profiled.source_time_ms header to its arrival here.
// Then, in the same run and on the same broker and disk, the raw baselines:
// librdkafka consuming the input topic, RocksDB Get+Put with the
// profiles' real value size and, offered a rate, the same load relayed
// through two hops with no processing (the latency to hold profiled's
// against). Prints a readable summary and one JSON line.
//
//   profiled_e2e_bench --bin BUILD_DIR --sample rees46.csv [--profiles 100000]
//       [--keys zipf|uniform|sequential] [--rate 0|EVENTS_PER_S] [--seconds 30] [--warmup 5]
//       [--partitions 16] [--window 100000] [--linger-ms 5] [--work DIR] [--keep true]
//       [--batch-max-events 10000] [--profile-cache-mb N] [--max-delay-ms N] (output.max_delay)
//       [--config-extra YAML]   (appended to the generated config)
//       [--instances N]         (N > 0: partitioned mode, N instances sharing
//                                --partitions repartition partitions; 0: single mode)
//       [--standby N]           (partitioned: cluster.standby_replicas)
//       [--kill-at S]           (partitioned, N >= 2: kill -9 the last instance S s into
//                                the load; prints the failover time — until every
//                                repartition partition publishes input produced after
//                                the kill — beside a bare consumer group's rebalance
//                                after a kill -9 of one of two members, same broker
//                                and session timeout)
#include <librdkafka/rdkafkacpp.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "bench_support.h"
#include "profiled/cluster/identity_protocol.h"
#include "profiled/store/profile_store.h"
#include "profiled/store/rocksdb_tuning.h"

namespace profiled::bench {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

uint64_t PeakRssBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

// User + system CPU time the process has used so far, seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (stat.find(')') == std::string::npos) return 0;  // gone
  // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int n = 3; n <= 15 && rest >> field; ++n) {
    if (n >= 14) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

uint64_t DirectoryBytes(const std::string& path) {
  uint64_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(path)) {
    if (entry.is_regular_file()) total += entry.file_size();
  }
  return total;
}

double Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return -1;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]);
}

std::unique_ptr<RdKafka::KafkaConsumer> AssignedConsumer(const std::string& bootstrap,
                                                         const std::string& topic, int partitions,
                                                         int64_t offset,
                                                         const std::string& fetch_wait_ms = "5") {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  conf->set("bootstrap.servers", bootstrap, err);
  conf->set("group.id", absl::StrCat("bench-reader-", getpid(), "-", topic), err);
  conf->set("enable.auto.commit", "false", err);
  conf->set("fetch.wait.max.ms", fetch_wait_ms, err);
  conf->set("enable.partition.eof", "false", err);
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!c) Die("consumer: " + err);
  std::vector<RdKafka::TopicPartition*> parts;
  parts.reserve(static_cast<size_t>(partitions));
  for (int p = 0; p < partitions; ++p)
    parts.push_back(RdKafka::TopicPartition::create(topic, p, offset));
  c->assign(parts);
  RdKafka::TopicPartition::destroy(parts);
  return c;
}

// Both the instances' and the bare group's: a dead member is noticed after this.
constexpr int kSessionTimeoutMs = 6000;

// Consumes the output topic and records now - source time per update.
class LatencyReader {
 public:
  LatencyReader(const std::string& bootstrap, const std::string& topic, int partitions)
      : consumer_(AssignedConsumer(bootstrap, topic, partitions, RdKafka::Topic::OFFSET_END)),
        first_after_(static_cast<size_t>(partitions)),
        first_any_after_(static_cast<size_t>(partitions)) {
    for (auto& t : first_after_) t = -1;
    for (auto& t : first_any_after_) t = -1;
    thread_ = std::thread([this] { Run(); });
  }
  ~LatencyReader() { Stop(); }
  // Only updates whose source is at or after this count.
  void MeasureFrom(int64_t wall_ms) { from_ms_ = wall_ms; }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (consumer_) consumer_->close();
  }
  std::vector<int64_t> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(latencies_);
  }
  uint64_t updates() const { return updates_; }
  // From now on, note when each repartition partition (of the update's
  // key, a profile id) first publishes input produced at or after `wall_ms`.
  void WatchPartitionsFrom(int64_t wall_ms) { after_ms_ = wall_ms; }
  // Until every partition did, ms after that time; -1 while one has not.
  int64_t AllPublishedAfterMs() const { return LastFirst(first_after_); }
  // Until every partition published anything at all after that time (a
  // moved partition's backlog included): when it was available again.
  int64_t AllPublishedAgainMs() const { return LastFirst(first_any_after_); }

 private:
  int64_t LastFirst(const std::vector<std::atomic<int64_t>>& firsts) const {
    int64_t last = 0;
    for (const auto& t : firsts) {
      const int64_t at = t.load();
      if (at < 0) return -1;
      last = std::max(last, at - after_ms_.load());
    }
    return last;
  }
  // The first time `now` for the update's repartition partition (of its
  // key, a profile id).
  static void NoteFirst(std::vector<std::atomic<int64_t>>& firsts, const RdKafka::Message& m,
                        int64_t now) {
    std::string_view key(static_cast<const char*>(m.key_pointer()), m.key_len());
    auto& first = firsts[static_cast<size_t>(profiled::cluster::IdentityProtocol::PartitionOf(
        key, static_cast<int32_t>(firsts.size())))];
    if (first.load() < 0) first = now;
  }
  void Run() {
    while (!stop_) {
      std::unique_ptr<RdKafka::Message> m(consumer_->consume(50));
      if (!m || m->err() != RdKafka::ERR_NO_ERROR) continue;
      const int64_t now = WallMs();
      ++updates_;
      if (now >= after_ms_) NoteFirst(first_any_after_, *m, now);
      RdKafka::Headers* headers = m->headers();
      if (headers == nullptr) continue;
      RdKafka::Headers::Header h = headers->get_last("profiled.source_time_ms");
      if (h.err() != RdKafka::ERR_NO_ERROR || h.value() == nullptr) continue;
      const int64_t source = std::strtoll(
          std::string(static_cast<const char*>(h.value()), h.value_size()).c_str(), nullptr, 10);
      if (source >= after_ms_) NoteFirst(first_after_, *m, now);
      if (source < from_ms_) continue;
      std::lock_guard<std::mutex> lock(mu_);
      latencies_.push_back(now - source);
    }
  }

  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> from_ms_{INT64_MAX};
  std::atomic<int64_t> after_ms_{INT64_MAX};
  std::vector<std::atomic<int64_t>> first_after_;      // wall ms, -1: not yet
  std::vector<std::atomic<int64_t>> first_any_after_;  // the same, for any update
  std::atomic<uint64_t> updates_{0};
  std::mutex mu_;
  std::vector<int64_t> latencies_;
};

// The raw latency baseline (issue 19): the same generator at the same
// rate through the same broker, relayed with no processing — produce ->
// consume -> produce -> consume, the two hops profiled's in -> out takes —
// with the consumer's fetch.wait.max.ms and the producer's defaults that
// profiled uses. Returns the relayed messages' latencies, source time (the
// input's Kafka timestamp, as profiled's header) to arrival.
struct TwoHopSetup {
  std::string bin, bootstrap, sample, keys, fetch_wait_ms, linger_ms, work;
  uint64_t profiles = 0;
  double rate = 0, seconds = 0, warmup = 0;
  int partitions = 0;
};

std::vector<int64_t> RawTwoHopLatencies(const TwoHopSetup& s) {
  LatencyReader reader(s.bootstrap, "bench.raw.out", s.partitions);
  std::atomic<bool> stop{false};
  std::thread relay([&] {
    std::unique_ptr<RdKafka::Conf> pconf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string err;
    pconf->set("bootstrap.servers", s.bootstrap, err);
    pconf->set("enable.idempotence", "true", err);  // as profiled's publisher
    std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(pconf.get(), err));
    if (!producer) Die("relay producer: " + err);
    std::unique_ptr<RdKafka::KafkaConsumer> consumer =
        AssignedConsumer(s.bootstrap, "bench.raw.in", s.partitions,
                         RdKafka::Topic::OFFSET_BEGINNING, s.fetch_wait_ms);
    while (!stop) {
      std::unique_ptr<RdKafka::Message> m(consumer->consume(5));
      producer->poll(0);
      if (!m || m->err() != RdKafka::ERR_NO_ERROR) continue;
      RdKafka::Headers* headers = RdKafka::Headers::create();
      headers->add("profiled.source_time_ms", std::to_string(m->timestamp().timestamp));
      const RdKafka::ErrorCode e = producer->produce(
          "bench.raw.out", RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
          m->payload(), m->len(), m->key_pointer(), m->key_len(), 0, headers, nullptr);
      if (e != RdKafka::ERR_NO_ERROR) delete headers;  // left to us when produce() fails
    }
    producer->flush(5000);
    consumer->close();
  });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  reader.MeasureFrom(WallMs() + static_cast<int64_t>(s.warmup * 1000));
  Child loadgen({s.bin + "/benchmarks/profiled_loadgen", "--bootstrap", s.bootstrap, "--topic",
                 "bench.raw.in", "--sample", s.sample, "--profiles", std::to_string(s.profiles),
                 "--keys", s.keys, "--rate", absl::StrCat(s.rate), "--seconds",
                 absl::StrCat(s.seconds), "--linger-ms", s.linger_ms},
                s.work + "/raw-loadgen.out", s.work + "/raw-loadgen.err");
  if (loadgen.Wait() != 0) Die("raw loadgen failed: " + ReadFile(s.work + "/raw-loadgen.err"));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the last ones reach the reader
  stop = true;
  relay.join();
  reader.Stop();
  return reader.Take();
}

std::unique_ptr<RdKafka::KafkaConsumer> GroupMember(const std::string& bootstrap,
                                                    const std::string& topic,
                                                    const std::string& group) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  conf->set("bootstrap.servers", bootstrap, err);
  conf->set("group.id", group, err);
  conf->set("enable.auto.commit", "true", err);
  conf->set("auto.offset.reset", "latest", err);
  conf->set("fetch.wait.max.ms", "5", err);
  conf->set("session.timeout.ms", std::to_string(kSessionTimeoutMs), err);
  conf->set("heartbeat.interval.ms", "500", err);
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!c) Die("consumer: " + err);
  if (c->subscribe({topic}) != RdKafka::ERR_NO_ERROR) Die("subscribing to " + topic);
  return c;
}

// `--bare-member BOOTSTRAP TOPIC GROUP`: a consumer in the group until killed.
[[noreturn]] void BareMember(const std::string& bootstrap, const std::string& topic,
                             const std::string& group) {
  auto c = GroupMember(bootstrap, topic, group);
  for (;;) delete c->consume(100);
}

// A bare consumer group's failover on `topic` (written to continuously
// here): two members, one of them a process killed with SIGKILL; ms until
// the survivor consumes, from every partition, a message produced after
// the kill. -1 when it does not within a minute.
int64_t BareGroupFailoverMs(const std::string& self, const std::string& bootstrap,
                            const std::string& topic, int partitions, const std::string& work) {
  const std::string group = absl::StrCat("bare-", getpid());
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string err;
    conf->set("bootstrap.servers", bootstrap, err);
    conf->set("linger.ms", "1", err);
    std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), err));
    if (!producer) Die("producer: " + err);
    while (!stop) {
      for (int p = 0; p < partitions; ++p) {
        const std::string value = std::to_string(WallMs());
        producer->produce(topic, p, RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(value.data()),
                          value.size(), nullptr, 0, WallMs(), nullptr);
      }
      producer->poll(0);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    producer->flush(5000);
  });
  auto survivor = GroupMember(bootstrap, topic, group);
  Child other({self, "--bare-member", bootstrap, topic, group}, work + "/bare.out",
              work + "/bare.err");
  // Both members hold partitions: the survivor holds some, not all.
  int64_t failover = -1;
  const auto joined_by = Clock::now() + std::chrono::seconds(60);
  for (;;) {
    delete survivor->consume(50);
    std::vector<RdKafka::TopicPartition*> assigned;
    survivor->assignment(assigned);
    const size_t held = assigned.size();
    RdKafka::TopicPartition::destroy(assigned);
    if (held > 0 && held < static_cast<size_t>(partitions)) break;
    if (Clock::now() > joined_by) Die("the bare group never split its partitions");
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));  // settled
  other.Signal(SIGKILL);
  other.Wait();
  const int64_t killed_ms = WallMs();
  std::vector<int64_t> first(static_cast<size_t>(partitions), -1);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    std::unique_ptr<RdKafka::Message> m(survivor->consume(50));
    if (!m || m->err() != RdKafka::ERR_NO_ERROR) continue;
    if (m->timestamp().timestamp < killed_ms || first[static_cast<size_t>(m->partition())] >= 0) {
      continue;
    }
    first[static_cast<size_t>(m->partition())] = WallMs();
    if (std::all_of(first.begin(), first.end(), [](int64_t t) { return t >= 0; })) {
      failover = *std::max_element(first.begin(), first.end()) - killed_ms;
      break;
    }
  }
  stop = true;
  writer.join();
  survivor->close();
  return failover;
}

// Raw librdkafka: consume what the broker retains of `topic`, as fast as it goes.
double RawConsumeRate(const std::string& bootstrap, const std::string& topic, int partitions) {
  auto c = AssignedConsumer(bootstrap, topic, partitions, RdKafka::Topic::OFFSET_BEGINNING);
  int64_t remaining = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    c->query_watermark_offsets(topic, p, &low, &high, 5000);
    remaining += high - low;
  }
  const int64_t total = remaining;
  const auto start = Clock::now();
  while (remaining > 0 && Clock::now() - start < std::chrono::seconds(60)) {
    std::unique_ptr<RdKafka::Message> m(c->consume(100));
    if (m && m->err() == RdKafka::ERR_NO_ERROR) --remaining;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  c->close();
  return static_cast<double>(total - remaining) / seconds;
}

// Raw RocksDB: random Get then Put of `value_bytes` over `keys` keys, with the
// profiles column family's table options (64 MiB LRU cache, bloom, LZ4).
double RawRocksDbRate(const std::string& dir, uint64_t keys, size_t value_bytes, double seconds) {
  // The profiles column family's own options and default block cache.
  rocksdb::Options options(rocksdb::DBOptions(), profiled::store::ProfileColumnFamilyOptions(
                                                     rocksdb::NewLRUCache(64ull << 20)));
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, dir, &raw).ok()) Die("opening the RocksDB baseline at " + dir);
  std::unique_ptr<rocksdb::DB> db(raw);
  std::mt19937_64 rng(42);
  std::string value(value_bytes, 'x');
  for (char& ch : value) ch = static_cast<char>('a' + rng() % 16);  // compressible, like state
  auto key_of = [](uint64_t k) {
    return absl::StrCat("p-", k * 2654435761u % 1000000007u, "-", k);
  };
  rocksdb::WriteOptions write;
  for (uint64_t k = 0; k < keys; ++k) db->Put(write, key_of(k), value);
  std::string got;
  uint64_t pairs = 0;
  const auto start = Clock::now();
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    for (int i = 0; i < 256; ++i) {
      const std::string key = key_of(rng() % keys);
      db->Get(rocksdb::ReadOptions(), key, &got);
      db->Put(write, key, value);
      ++pairs;
    }
  }
  return static_cast<double>(pairs) / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace
}  // namespace profiled::bench

int main(int argc, char** argv) {
  using namespace profiled::bench;
  if (argc == 5 && std::string(argv[1]) == "--bare-member") BareMember(argv[2], argv[3], argv[4]);
  Flags flags(argc, argv);
  if (!flags.error().empty()) Die(flags.error());
  const std::string bin = flags.Get("--bin", "build");
  const std::string sample =
      flags.Get("--sample", "deploy/demo/data/rees46-2019oct-head/events.csv");
  const auto profiles = static_cast<uint64_t>(flags.Number("--profiles", 100000));
  const std::string keys = flags.Get("--keys", "zipf");
  const double rate = flags.Number("--rate", 0);
  const double seconds = flags.Number("--seconds", 30);
  const double warmup = flags.Number("--warmup", 5);
  const int partitions = static_cast<int>(flags.Number("--partitions", 16));
  // 0: single mode; N: partitioned mode with N instances in one group.
  const int instances = static_cast<int>(flags.Number("--instances", 0));
  const bool partitioned = instances > 0;
  const double kill_at = flags.Number("--kill-at", 0);
  if (kill_at > 0 && (instances < 2 || kill_at >= seconds)) {
    Die("--kill-at needs --instances 2 or more and a time within --seconds");
  }
  const std::string work = flags.Get("--work", absl::StrCat("/tmp/profiled-e2e-", getpid()));
  fs::remove_all(work);
  fs::create_directories(work);

  // 1. The broker.
  Child broker(
      {bin + "/services/devbroker/devbroker", "--topic", absl::StrCat("bench.events:", partitions),
       "--topic", absl::StrCat("bench.updates:", partitions), "--topic", "bench.deadletter:1",
       "--topic", absl::StrCat("profiled.repartition:", partitions), "--topic",
       absl::StrCat("profiled.changelog:", partitions), "--topic",
       absl::StrCat("bench.bare:", partitions), "--topic",
       absl::StrCat("bench.raw.in:", partitions), "--topic",
       absl::StrCat("bench.raw.out:", partitions)},
      work + "/broker.out", work + "/broker.err");
  std::string bootstrap;
  for (int i = 0; i < 100 && bootstrap.empty(); ++i) {
    std::istringstream(ReadFile(work + "/broker.out")) >> bootstrap;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (bootstrap.empty()) Die("devbroker printed no bootstrap address");

  // 2. profiled, on its own store (partitioned: each instance on its own).
  const std::string store = work + "/store";
  std::vector<std::unique_ptr<Child>> processes;
  std::vector<std::string> endpoints;  // each instance's metrics host:port
  for (int i = 0; i < std::max(instances, 1); ++i) {
    const std::string config = absl::StrCat(work, "/profiled-", i, ".yaml");
    std::ofstream(config)
        // The mock broker holds every fetch for fetch.wait.max.ms even when data
        // is there (a real broker answers at fetch.min.bytes): keep it short.
        << "kafka: {bootstrap: \"" << bootstrap
        << "\", consumer_properties: {fetch.wait.max.ms: " << flags.Get("--fetch-wait-ms", "5")
        << (partitioned ? absl::StrCat(", session.timeout.ms: ", kSessionTimeoutMs,
                                       ", heartbeat.interval.ms: 500")
                        : "")
        << "}}\n"
        << "input: {topics: [{name: bench.events, format: segment-json, channel: web}], group_id: "
           "bench, "
        << "batch_max_events: " << flags.Get("--batch-max-events", "10000") << "}\n"
        << "output: {topic: bench.updates, dead_letter_topic: bench.deadletter"
        << (flags.Get("--max-delay-ms", "").empty()
                ? std::string()
                : ", max_delay: " + flags.Get("--max-delay-ms", "") + "ms")
        << "}\n"
        << "store: {path: " << (partitioned ? absl::StrCat(store, "-", i) : store)
        << (flags.Get("--profile-cache-mb", "").empty()
                ? std::string()
                : ", profile_cache_mb: " + flags.Get("--profile-cache-mb", ""))
        << "}\n"
        << "http: {listen: \"127.0.0.1:0\"}\n"
        << (partitioned ? absl::StrCat("cluster: {mode: partitioned, partitions: ", partitions,
                                       ", standby_replicas: ", flags.Get("--standby", "0"), "}\n")
                        : std::string())
        << flags.Get("--config-extra", "") << "\n";
    const std::string err = absl::StrCat(work, "/profiled-", i, ".err");
    processes.push_back(std::make_unique<Child>(
        std::vector<std::string>{bin + "/services/profiled/profiled", "--config", config},
        absl::StrCat(work, "/profiled-", i, ".out"), err));
    const std::string port_text = AwaitLine(err, "on port ", *processes.back(), 30);
    endpoints.push_back("127.0.0.1:" +
                        port_text.substr(0, port_text.find_first_not_of("0123456789")));
  }
  const std::string metrics = endpoints.front();  // the load generator's back-pressure probe
  auto sum_of = [&](std::string_view name) {
    double total = 0;
    for (const std::string& e : endpoints) total += std::max(ScrapeSum(e, name), 0.0);
    return total;
  };
  auto cpu_seconds = [&] {
    double total = 0;
    for (const auto& p : processes) total += CpuSeconds(p->pid());
    return total;
  };
  for (int i = 0; i < 300; ++i) {
    // Single: ready. Partitioned: every repartition partition owned (restored).
    const bool up = partitioned ? sum_of("profiled_partitions_owned") == partitions
                                : ScrapeSum(metrics, "profiled_ready") == 1;
    if (up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // 3. The load, with the latency reader already at the output's end.
  LatencyReader reader(bootstrap, "bench.updates", partitions);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const int64_t load_start_ms = WallMs();
  reader.MeasureFrom(load_start_ms + static_cast<int64_t>(warmup * 1000));
  Child loadgen({bin + "/benchmarks/profiled_loadgen", "--bootstrap", bootstrap, "--topic",
                 "bench.events", "--sample", sample, "--profiles", std::to_string(profiles),
                 "--keys", keys, "--rate", absl::StrCat(rate), "--seconds", absl::StrCat(seconds),
                 "--metrics", absl::StrJoin(endpoints, ","), "--window",
                 // The mock keeps ~5 MiB a partition; instances consume their
                 // partitions unevenly, so partitioned runs keep a smaller lead.
                 flags.Get("--window", partitioned ? "40000" : "100000"), "--partition-window",
                 flags.Get("--partition-window", partitioned ? "5000" : "0"), "--linger-ms",
                 flags.Get("--linger-ms", "5")},
                work + "/loadgen.out", work + "/loadgen.err");
  // Applied events and profiled's CPU time sampled each second: the
  // sustained rate after warm-up, and events per CPU-second of profiled.
  struct Sample {
    double seconds, applied, cpu_seconds;
  };
  std::vector<Sample> applied;
  const auto start = Clock::now();
  // Killed: its endpoint is gone, so what it had applied (last scraped)
  // counts on; the new owners re-apply what it had not yet published.
  bool killed = false;
  double victim_applied = 0, victim_cpu = 0;
  int64_t killed_ms = 0;
  while (loadgen.Alive()) {
    const double at = std::chrono::duration<double>(Clock::now() - start).count();
    if (kill_at > 0 && !killed && at >= kill_at) {
      victim_applied = std::max(ScrapeSum(endpoints.back(), "profiled_events_applied_total"), 0.0);
      victim_cpu = CpuSeconds(processes.back()->pid());
      processes.back()->Signal(SIGKILL);
      processes.back()->Wait();
      killed_ms = WallMs();
      reader.WatchPartitionsFrom(killed_ms);
      endpoints.pop_back();
      killed = true;
      std::printf(
          "killed instance %d (pid %d) at %.1f s (%s)\n", instances - 1,
          static_cast<int>(processes.back()->pid()), at,
          absl::FormatTime("%H:%M:%E3S", absl::FromUnixMillis(killed_ms), absl::UTCTimeZone())
              .c_str());
    }
    applied.push_back(
        {at, sum_of("profiled_events_applied_total") + victim_applied, cpu_seconds() + victim_cpu});
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (loadgen.Wait() != 0) Die("loadgen failed: " + ReadFile(work + "/loadgen.err"));
  const std::string load_line = ReadFile(work + "/loadgen.out");
  const uint64_t produced = std::strtoull(load_line.c_str() + load_line.find('=') + 1, nullptr, 10);
  const double max_slip_ms =
      std::strtod(load_line.c_str() + load_line.find("max_slip_ms=") + 12, nullptr);

  // 4. Drain: everything consumed and published.
  const auto drain_deadline = Clock::now() + std::chrono::seconds(180);
  double consumed = 0;
  while (Clock::now() < drain_deadline) {
    // Partitioned: consumed counts routed input; done once every event is applied.
    consumed = partitioned ? sum_of("profiled_events_applied_total") + victim_applied
                           : sum_of("profiled_events_consumed_total");
    if (consumed >= static_cast<double>(produced) && sum_of("profiled_outbox_depth") == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // last updates reach the reader
  const int64_t failover_ms = killed ? reader.AllPublishedAfterMs() : -1;
  const int64_t available_ms = killed ? reader.AllPublishedAgainMs() : -1;
  reader.Stop();
  const double dead_letters = sum_of("profiled_dead_letters_total");
  uint64_t peak_rss = 0;  // the largest instance's
  for (const auto& p : processes) peak_rss = std::max(peak_rss, PeakRssBytes(p->pid()));
  if (killed) processes.pop_back();
  for (const auto& p : processes) p->Signal(SIGTERM);
  for (const auto& p : processes) {
    if (p->Wait() != 0) Die("profiled did not exit cleanly: see " + work + "/profiled-*.err");
  }

  double sustained = 0, per_cpu_second = 0, cores = 0;
  {
    // From the first sample after warm-up to the last sample of the load.
    auto first = std::find_if(applied.begin(), applied.end(),
                              [&](const Sample& s) { return s.seconds >= warmup; });
    if (first != applied.end() && applied.back().seconds > first->seconds) {
      const double events = applied.back().applied - first->applied;
      const double cpu = applied.back().cpu_seconds - first->cpu_seconds;
      sustained = events / (applied.back().seconds - first->seconds);
      cores = cpu / (applied.back().seconds - first->seconds);
      per_cpu_second = cpu > 0 ? events / cpu : 0;
    }
  }
  std::vector<int64_t> latencies = reader.Take();
  const double p50 = Percentile(latencies, 0.50), p95 = Percentile(latencies, 0.95),
               p99 = Percentile(latencies, 0.99), p999 = Percentile(latencies, 0.999);

  // 5. The store: exact profile count and value sizes, bytes on disk.
  uint64_t stored = 0, value_bytes = 0;
  if (!partitioned) {  // partitioned stores hold slots, not profiles: not counted
    auto opened = profiled::store::ProfileStore::Open({store});
    if (!opened.ok()) Die(opened.status().ToString());
    (void)(*opened)->ForEachProfile([&](std::string_view, std::string_view v) {
      ++stored;
      value_bytes += v.size();
      return true;
    });
  }
  const uint64_t disk = partitioned ? 0 : DirectoryBytes(store);
  const size_t mean_value = stored == 0 ? 0 : static_cast<size_t>(value_bytes / stored);

  // 6. Raw baselines, same broker, same disk.
  const double raw_consume = RawConsumeRate(bootstrap, "bench.events", partitions);
  const double raw_rocksdb =
      partitioned ? 0
                  : RawRocksDbRate(work + "/rocksdb-baseline", std::min<uint64_t>(stored, 1000000),
                                   std::max<size_t>(mean_value, 16), 5);
  const int64_t bare_failover_ms =
      killed ? BareGroupFailoverMs(argv[0], bootstrap, "bench.bare", partitions, work) : -1;
  // Offered a rate: the same load relayed raw, for the latency to compare with.
  double raw_p50 = -1, raw_p95 = -1, raw_p99 = -1;
  if (rate > 0) {
    std::vector<int64_t> raw =
        RawTwoHopLatencies({.bin = bin,
                            .bootstrap = bootstrap,
                            .sample = sample,
                            .keys = keys,
                            .fetch_wait_ms = flags.Get("--fetch-wait-ms", "5"),
                            .linger_ms = flags.Get("--linger-ms", "5"),
                            .work = work,
                            .profiles = profiles,
                            .rate = rate,
                            .seconds = seconds,
                            .warmup = warmup,
                            .partitions = partitions});
    raw_p50 = Percentile(raw, 0.50);
    raw_p95 = Percentile(raw, 0.95);
    raw_p99 = Percentile(raw, 0.99);
  }
  broker.Signal(SIGTERM);
  broker.Wait();

  const bool complete = consumed >= static_cast<double>(produced) && dead_letters <= 0;
  std::printf(
      "profiled end-to-end: %s keys over %llu profiles, %s, %d partitions, %s, %.0f s (+%.0f s "
      "warm-up)\n",
      keys.c_str(), static_cast<unsigned long long>(profiles),
      rate > 0 ? absl::StrCat("offered ", rate, " events/s").c_str() : "flat out", partitions,
      partitioned ? absl::StrCat("partitioned, ", instances, " instances").c_str() : "single mode",
      seconds - warmup, warmup);
  std::printf("  produced %llu, consumed %.0f, dead letters %.0f%s\n",
              static_cast<unsigned long long>(produced), consumed, std::max(dead_letters, 0.0),
              complete ? "" : "  <-- INCOMPLETE RUN");
  std::printf("  sustained          %10.0f events/s\n", sustained);
  std::printf("  profiled CPU       %10.2f cores, %.0f events per CPU-second\n", cores,
              per_cpu_second);
  std::printf(
      "  event->publish     p50 %.0f ms, p95 %.0f ms, p99 %.0f ms, p999 %.0f ms (%zu updates)\n",
      p50, p95, p99, p999, latencies.size());
  if (rate > 0) {
    std::printf("  raw two hops       p50 %.0f ms, p95 %.0f ms, p99 %.0f ms (p99 ratio %.1f)\n",
                raw_p50, raw_p95, raw_p99, raw_p99 > 0 ? p99 / raw_p99 : 0.0);
  }
  std::printf("  generator slip     %.1f ms max behind schedule\n", max_slip_ms);
  std::printf("  peak RSS           %.0f MiB\n", static_cast<double>(peak_rss) / (1 << 20));
  std::printf("  profiles stored    %llu, %.0f bytes each on disk (state %zu bytes)\n",
              static_cast<unsigned long long>(stored),
              stored == 0 ? 0.0 : static_cast<double>(disk) / static_cast<double>(stored),
              mean_value);
  std::printf("  raw consume        %10.0f msgs/s   (e2e ratio %.2f)\n", raw_consume,
              sustained / raw_consume);
  std::printf("  raw RocksDB        %10.0f get+put/s (e2e ratio %.2f)\n", raw_rocksdb,
              sustained / raw_rocksdb);
  if (killed) {
    std::printf(
        "  failover           %lld ms (kill -9 until every partition publishes new input); "
        "bare group %lld ms; difference %lld ms\n"
        "  available again    %lld ms (kill -9 until every partition publishes at all); "
        "difference %lld ms\n",
        static_cast<long long>(failover_ms), static_cast<long long>(bare_failover_ms),
        static_cast<long long>(failover_ms - bare_failover_ms),
        static_cast<long long>(available_ms),
        static_cast<long long>(available_ms - bare_failover_ms));
  }
  std::printf(
      "JSON {\"keys\":\"%s\",\"profiles\":%llu,\"rate\":%.0f,\"produced\":%llu,\"complete\":%s,"
      "\"sustained\":%.0f,\"p50_ms\":%.0f,\"p99_ms\":%.0f,\"p999_ms\":%.0f,\"slip_ms\":%.1f,"
      "\"peak_rss_mib\":%.0f,\"stored\":%llu,\"disk_bytes_per_profile\":%.0f,\"state_bytes\":%zu,"
      "\"raw_consume\":%.0f,\"raw_rocksdb\":%.0f,\"cores\":%.2f,\"per_cpu_second\":%.0f,"
      "\"instances\":%d,\"failover_ms\":%lld,\"bare_failover_ms\":%lld,"
      "\"available_ms\":%lld,\"p95_ms\":%.0f,\"raw_p50_ms\":%.0f,\"raw_p95_ms\":%.0f,"
      "\"raw_p99_ms\":%.0f}\n",
      keys.c_str(), static_cast<unsigned long long>(profiles), rate,
      static_cast<unsigned long long>(produced), complete ? "true" : "false", sustained, p50, p99,
      p999, max_slip_ms, static_cast<double>(peak_rss) / (1 << 20),
      static_cast<unsigned long long>(stored),
      stored == 0 ? 0.0 : static_cast<double>(disk) / static_cast<double>(stored), mean_value,
      raw_consume, raw_rocksdb, cores, per_cpu_second, instances,
      static_cast<long long>(failover_ms), static_cast<long long>(bare_failover_ms),
      static_cast<long long>(available_ms), p95, raw_p50, raw_p95, raw_p99);
  if (flags.Get("--keep", "false") != "true") fs::remove_all(work);
  return complete ? 0 : 1;
}
