// bridge_bench.cc: shmbus-bridge-bench, the Kafka bridge against bare librdkafka loops
// on the same in-process mock cluster, in one run.
//
//   out:  a stream of N records -> `run_bridge_out` (exit at end)   vs a bare idempotent
//         producer loop (acks=all, the bridge's settings) producing the same N messages;
//         both timed from the first acknowledgement to the last, and their start-up
//         (start -> first acknowledgement, the bridge's recovery scan included) apart
//   in:   N messages over 16 partitions -> `run_bridge_in` into a stream, timed from the
//         first record published to the last (the records' own publish times: nothing
//         polls the stream meanwhile), the start-up (start -> first record: the group join)
//         apart                                                    vs a bare consumer
//         loop (assign, no group) reading them, timed from the first message to the last,
//         its start-up (rd_kafka_new -> first message) apart; both with the same consumer
//         properties (the bridge's: partition EOF events, no auto commit;
//         fetch.wait.max.ms=10 on both); and, in a row of its own, against the bare loop
//         that also reads each message's shmbus.type header as the bridge must
//   rtt:  one record at a time, stream -> bridge out -> Kafka -> bridge in -> stream, p50
//         and p99                                                  vs a bare produce ->
//         consume round trip with the same client settings (linger.ms=0 and
//         fetch.wait.max.ms=1 on both: the mock holds a fetch for its whole wait)
// Sizes: 64 B and 1 KiB.  The mock keeps ~5 MiB per partition, which bounds N.
// Nothing is pinned: the mock's, the clients' and the bridge's threads share the cores.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "shmbus/kafka.h"
#include "shmbus/shmbus.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace kafka = shmbus::kafka;

namespace {

std::string g_ns = "bridge-bench-" + std::to_string(::getpid());

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

rd_kafka_t* client(rd_kafka_type_t type, const std::string& brokers,
                   std::vector<std::pair<const char*, const char*>> props) {
  char err[512];
  rd_kafka_conf_t* c = rd_kafka_conf_new();
  rd_kafka_conf_set(c, "bootstrap.servers", brokers.c_str(), err, sizeof err);
  rd_kafka_conf_set(c, "log_level", "2", err, sizeof err);
  for (auto& [k, v] : props)
    if (rd_kafka_conf_set(c, k, v, err, sizeof err)) std::fprintf(stderr, "%s: %s\n", k, err);
  rd_kafka_t* rk = rd_kafka_new(type, c, err, sizeof err);
  if (!rk) std::fprintf(stderr, "rd_kafka_new: %s\n", err), std::exit(1);
  return rk;
}

void make_stream(const std::string& name, uint64_t capacity) {
  (void)shmbus::remove_stream(g_ns, name, true);
  shmbus::StreamOptions o;
  o.capacity = capacity;
  if (auto r = shmbus::create_stream(g_ns, name, o); !r)
    std::fprintf(stderr, "create %s: %s\n", name.c_str(), r.error().message.c_str()), std::exit(1);
}

// ---- out ----------------------------------------------------------------------------
// Both sides are timed the same way: the steady-state rate from the first acknowledgement
// to the last ((n - 1) / that time), and the start-up apart: from the start (the bare
// producer's rd_kafka_new, the bridge's run_bridge_out: connect, metadata, the recovery
// scan, the stream's consumer) to the first acknowledgement.

struct OutRun {
  double rate = 0;     // records per second, first to last acknowledgement
  double startup = 0;  // seconds, start to first acknowledgement
};

struct Acks {
  Clock::time_point first{}, last{};
};

void on_bare_ack(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  if (m->err) return;
  auto* a = static_cast<Acks*>(opaque);
  a->last = Clock::now();
  if (a->first == Clock::time_point{}) a->first = a->last;
}

OutRun out_run(Clock::time_point start, Clock::time_point first, Clock::time_point last, uint64_t n) {
  if (first == Clock::time_point{} || last <= first) return {};
  return {static_cast<double>(n - 1) / secs(first, last), secs(start, first)};
}

OutRun bare_out(const std::string& brokers, const std::string& topic, uint64_t n, size_t size) {
  Acks acks;
  const auto start = Clock::now();
  char err[512];
  rd_kafka_conf_t* c = rd_kafka_conf_new();
  rd_kafka_conf_set(c, "bootstrap.servers", brokers.c_str(), err, sizeof err);
  rd_kafka_conf_set(c, "log_level", "2", err, sizeof err);
  rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof err);
  rd_kafka_conf_set(c, "acks", "all", err, sizeof err);
  rd_kafka_conf_set(c, "linger.ms", "5", err, sizeof err);
  rd_kafka_conf_set_dr_msg_cb(c, on_bare_ack);
  rd_kafka_conf_set_opaque(c, &acks);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
  if (!rk) std::fprintf(stderr, "rd_kafka_new: %s\n", err), std::exit(1);
  std::string v(size, 'x');
  // The same message as the bridge's: four headers and a timestamp.
  const std::string type = "0", stream = g_ns + "/out";
  for (uint64_t i = 0; i < n; ++i) {
    const std::string seq = std::to_string(i);
    const uint64_t ts = shmbus::now_ns();
    const std::string ts_text = std::to_string(ts);
    while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(v.data(), v.size()),
                             RD_KAFKA_V_TIMESTAMP(static_cast<int64_t>(ts / 1000000)),
                             RD_KAFKA_V_HEADER("shmbus.seq", seq.data(), static_cast<ssize_t>(seq.size())),
                             RD_KAFKA_V_HEADER("shmbus.type", type.data(), static_cast<ssize_t>(type.size())),
                             RD_KAFKA_V_HEADER("shmbus.ts_ns", ts_text.data(), static_cast<ssize_t>(ts_text.size())),
                             RD_KAFKA_V_HEADER("shmbus.stream", stream.data(), static_cast<ssize_t>(stream.size())),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(rk, 1);
    rd_kafka_poll(rk, 0);
  }
  rd_kafka_flush(rk, 120000);
  rd_kafka_destroy(rk);
  return out_run(start, acks.first, acks.last, n);
}

OutRun bridge_out(const std::string& brokers, const std::string& topic, uint64_t n, size_t size) {
  make_stream("out", 256 << 20);
  {
    auto p = shmbus::Producer::open(g_ns, "out");
    std::string v(size, 'x');
    for (uint64_t i = 0; i < n; ++i)
      (void)p->publish(shmbus::Bytes(reinterpret_cast<const std::byte*>(v.data()), v.size()));
  }
  kafka::OutOptions o;
  o.ns = g_ns;
  o.stream = "out";
  o.brokers = brokers;
  o.topic = topic;
  o.exit_at_end = true;
  const auto start = Clock::now();
  auto r = kafka::run_bridge_out(o, [] { return false; });
  (void)shmbus::remove_stream(g_ns, "out", true);
  if (!r) return std::fprintf(stderr, "bridge out: %s\n", r.error().message.c_str()), OutRun{};
  if (r->delivered != n) std::fprintf(stderr, "bridge out: %llu of %llu delivered\n",
                                      static_cast<unsigned long long>(r->delivered), static_cast<unsigned long long>(n));
  return out_run(start, r->first_ack, r->last_ack, n);
}

// ---- in -------------------------------------------------------------------------------

constexpr int kInPartitions = 32;

void fill_topic(const std::string& brokers, const std::string& topic, uint64_t n, size_t size) {
  rd_kafka_t* rk = client(RD_KAFKA_PRODUCER, brokers, {{"linger.ms", "5"}});
  std::string v(size, 'y');
  for (uint64_t i = 0; i < n; ++i) {
    while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                             RD_KAFKA_V_PARTITION(static_cast<int32_t>(i % kInPartitions)),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(v.data(), v.size()),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(rk, 1);
  }
  rd_kafka_flush(rk, 120000);
  rd_kafka_destroy(rk);
}

// Both sides are timed as out is: the rate from the first message (record) to the last,
// and the start-up apart (bare: rd_kafka_new, assignment and the first fetch; bridge:
// run_bridge_in's connect, metadata, group join and the first fetch).
struct InRun {
  double rate = 0;     // messages per second, first to last
  double startup = 0;  // seconds, start to the first message
};

// The consumer properties both sides use: the bridge's own (partition EOF events, no
// auto commit or offset store) and fetch.wait.max.ms=10 (the mock holds an empty fetch
// that long; what the round trip needs, not what throughput needs).
const std::vector<std::pair<const char*, const char*>> kInProps = {
    {"enable.auto.commit", "false"}, {"enable.auto.offset.store", "false"}, {"enable.partition.eof", "true"},
    {"fetch.wait.max.ms", "10"}};

// The bare consumer loops.  kPoll: rd_kafka_consumer_poll per message, the classic loop.
// kHeader: that, also looking up each message's shmbus.type header as the bridge must
// (librdkafka 2.0 then builds a header list for every message, even one with none).
// kBatch: rd_kafka_consume_batch_queue of what is already fetched (up to 256), one poll
// waiting when there is none, and the header lookup: how the bridge takes messages.
enum class BareIn { kPoll, kHeader, kBatch };

InRun bare_in(const std::string& brokers, const std::string& topic, uint64_t n, BareIn mode = BareIn::kPoll) {
  const auto start = Clock::now();
  auto props = kInProps;
  props.push_back({"group.id", "bare"});
  rd_kafka_t* rk = client(RD_KAFKA_CONSUMER, brokers, props);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_queue_t* q = rd_kafka_queue_get_consumer(rk);
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(kInPartitions);
  for (int p = 0; p < kInPartitions; ++p)
    rd_kafka_topic_partition_list_add(l, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  uint64_t got = 0;
  Clock::time_point t0{}, t1{};
  const auto deadline = Clock::now() + 120s;
  std::vector<rd_kafka_message_t*> batch(256);
  while (got < n && Clock::now() < deadline) {
    size_t k = 0;
    if (mode == BareIn::kBatch) {
      const ssize_t r = rd_kafka_consume_batch_queue(q, 0, batch.data(), batch.size());
      k = r > 0 ? static_cast<size_t>(r) : 0;
    }
    if (k == 0) {
      batch[0] = rd_kafka_consumer_poll(rk, 100);
      if (!batch[0]) continue;
      k = 1;
    }
    for (size_t i = 0; i < k; ++i) {
      rd_kafka_message_t* m = batch[i];
      if (!m->err) {
        if (mode != BareIn::kPoll) {
          rd_kafka_headers_t* h = nullptr;
          const void* v = nullptr;
          size_t len = 0;
          if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
            (void)rd_kafka_header_get_last(h, kafka::kHeaderType, &v, &len);
        }
        if (got++ == 0) t0 = Clock::now();
        if (got == n) t1 = Clock::now();
      }
      rd_kafka_message_destroy(m);
    }
  }
  rd_kafka_queue_destroy(q);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (got < n) return std::fprintf(stderr, "bare in: %llu of %llu\n", (unsigned long long)got, (unsigned long long)n), InRun{};
  return {static_cast<double>(n - 1) / secs(t0, t1), secs(start, t0)};
}

constexpr uint32_t kFillerType = 0xFFFF;
bool g_verbose = false;  // --verbose

InRun bridge_in(const std::string& brokers, const std::string& topic, uint64_t n, const std::string& group) {
  // A ring that holds the whole run (256 MiB), written once over before it (filler records
  // of their own type): a running stream's ring, whose pages are mapped, not a fresh one
  // whose first lap would be timed page fault by page fault.
  constexpr uint64_t kCapacity = 256 << 20;
  make_stream("in", kCapacity);
  {
    auto p = shmbus::Producer::open(g_ns, "in");
    const std::string v(64, 'f');
    for (uint64_t i = 0; i < kCapacity / 64; ++i)
      (void)p->publish(shmbus::Bytes(reinterpret_cast<const std::byte*>(v.data()), v.size()), kFillerType);
  }
  kafka::InOptions o;
  o.ns = g_ns;
  o.stream = "in";
  o.brokers = brokers;
  o.topic = topic;
  o.group = group;
  o.exit_at_end = true;
  o.properties = {{"fetch.wait.max.ms", "10"}};  // as the bare loop; the rest of kInProps are the bridge's own
  const uint64_t start_ns = shmbus::now_ns();
  auto r = kafka::run_bridge_in(o, [] { return false; });
  InRun run;
  if (!r) {
    std::fprintf(stderr, "bridge in: %s\n", r.error().message.c_str());
  } else if (r->delivered != n) {
    std::fprintf(stderr, "bridge in: %llu of %llu published\n", (unsigned long long)r->delivered, (unsigned long long)n);
  } else {
    // The records' publish times (stamped by the stream's producer, CLOCK_REALTIME).
    shmbus::ConsumerOptions co;
    co.start = shmbus::StartFrom::earliest();
    auto c = shmbus::Consumer::open(g_ns, "in", co);
    shmbus::Record rec;
    uint64_t first_ns = 0, last_ns = 0, seen = 0;
    shmbus::ReadStatus st;
    while (c && ((st = c->poll(&rec, 0ns)) == shmbus::ReadStatus::kOk || st == shmbus::ReadStatus::kLapped)) {
      if (st != shmbus::ReadStatus::kOk || rec.type == kFillerType) continue;
      if (seen++ == 0) first_ns = rec.ts_ns;
      last_ns = rec.ts_ns;
    }
    if (g_verbose) {  // the records' span in CLOCK_MONOTONIC seconds (for perf report --time)
      const double off = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count() -
                         static_cast<double>(shmbus::now_ns()) * 1e-9;
      std::fprintf(stderr, "bridge in records %.6f..%.6f\n", static_cast<double>(first_ns) * 1e-9 + off,
                   static_cast<double>(last_ns) * 1e-9 + off);
    }
    if (seen == n && last_ns > first_ns)
      run = {static_cast<double>(n - 1) * 1e9 / static_cast<double>(last_ns - first_ns),
             static_cast<double>(first_ns - start_ns) * 1e-9};
  }
  (void)shmbus::remove_stream(g_ns, "in", true);
  return run;
}

// ---- round trip --------------------------------------------------------------------------

struct Pct {
  double p50 = 0, p99 = 0;
};
Pct percentiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return {};
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

Pct bare_rtt(const std::string& brokers, const std::string& topic, int n) {
  rd_kafka_t* p = client(RD_KAFKA_PRODUCER, brokers,
                         {{"enable.idempotence", "true"}, {"acks", "all"}, {"linger.ms", "0"}});
  rd_kafka_t* c = client(RD_KAFKA_CONSUMER, brokers,
                         {{"group.id", "rtt"}, {"enable.auto.commit", "false"}, {"fetch.wait.max.ms", "1"}});
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic.c_str(), 0)->offset = RD_KAFKA_OFFSET_END;
  rd_kafka_assign(c, l);
  rd_kafka_topic_partition_list_destroy(l);
  std::this_thread::sleep_for(1s);
  std::vector<double> us;
  std::string v(64, 'z');
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(v.data(), v.size()), RD_KAFKA_V_END);
    for (;;) {
      rd_kafka_poll(p, 0);
      rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 1);
      if (!m) continue;
      const bool ok = !m->err;
      rd_kafka_message_destroy(m);
      if (ok) break;
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  rd_kafka_flush(p, 10000);
  rd_kafka_destroy(p);
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  return percentiles(us);
}

Pct bridge_rtt(const std::string& brokers, const std::string& topic, int n) {
  make_stream("rtt_a", 1 << 20);
  make_stream("rtt_b", 1 << 20);
  std::atomic<bool> stop{false};
  kafka::OutOptions oo;
  oo.ns = g_ns;
  oo.stream = "rtt_a";
  oo.brokers = brokers;
  oo.topic = topic;
  oo.from = shmbus::StartFrom::latest();
  oo.properties = {{"linger.ms", "0"}};         // as the bare round trip
  kafka::InOptions io;
  io.ns = g_ns;
  io.stream = "rtt_b";
  io.brokers = brokers;
  io.topic = topic;
  io.group = "rtt_bridge";
  io.from = "latest";
  io.properties = {{"fetch.wait.max.ms", "1"}};
  std::thread out([&] { (void)kafka::run_bridge_out(oo, [&] { return stop.load(); }); });
  std::thread in([&] { (void)kafka::run_bridge_in(io, [&] { return stop.load(); }); });
  auto p = shmbus::Producer::open(g_ns, "rtt_a");
  shmbus::ConsumerOptions co;
  co.start = shmbus::StartFrom::latest();
  co.wait = shmbus::WaitStrategy::kSpinYield;
  auto c = shmbus::Consumer::open(g_ns, "rtt_b", co);
  // Until both bridges run (the group join takes seconds on the mock): warm-up records.
  shmbus::Record rec;
  std::string v(64, 'w');
  const shmbus::Bytes b(reinterpret_cast<const std::byte*>(v.data()), v.size());
  for (int i = 0; i < 200; ++i) {
    (void)p->publish(b);
    if (c->poll(&rec, 100ms) == shmbus::ReadStatus::kOk) break;
  }
  while (c->poll(&rec, 500ms) == shmbus::ReadStatus::kOk) {
  }
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    (void)p->publish(b);
    if (c->poll(&rec, 10s) != shmbus::ReadStatus::kOk) break;
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  stop = true;
  out.join();
  in.join();
  p->close();
  c->close();
  (void)shmbus::remove_stream(g_ns, "rtt_a", true);
  (void)shmbus::remove_stream(g_ns, "rtt_b", true);
  return percentiles(us);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int reps = 3;
  bool in_only = false, verbose = false;  // --in-only: the in rows only; --verbose: each run to stderr
  int only_size = 0;                      // --size: that size only
  uint64_t in_count = 0;                  // --in-count: messages a run of the in rows (0: by size)
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    else if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (std::strcmp(argv[i], "--in-only") == 0) in_only = true;
    else if (std::strcmp(argv[i], "--size") == 0 && i + 1 < argc) only_size = std::atoi(argv[++i]);
    else if (std::strcmp(argv[i], "--verbose") == 0) verbose = g_verbose = true;
    else if (std::strcmp(argv[i], "--in-count") == 0 && i + 1 < argc) in_count = std::strtoull(argv[++i], nullptr, 10);
    else
      return std::fprintf(stderr, "usage: shmbus-bridge-bench [--quick] [--reps N] [--in-only] [--size 64|1024] "
                                  "[--verbose] [--in-count N]\n"), 2;
  }
  kafka::log_to_stderr("error");
  auto m = kafka::MockCluster::start(1);
  if (!m) return std::fprintf(stderr, "mock: %s\n", m.error().message.c_str()), 1;
  const std::string brokers = m.value()->bootstraps();
  std::printf("shmbus-bridge-bench: %s build, librdkafka %s mock cluster (1 broker, in-process), "
              "nothing pinned, %u cores, throughput: median of %d run(s)\n\n",
              SHMBUS_BENCH_BUILD_TYPE, rd_kafka_version_str(), std::thread::hardware_concurrency(), reps);
  std::printf("| measurement | bridge | bare librdkafka | ratio | target |\n|---|---|---|---|---|\n");
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (size_t size : {size_t{64}, size_t{1024}}) {
    if (only_size && size != static_cast<size_t>(only_size)) continue;
    // Enough that the rate is not a few batches' (the mock drops what is past ~5 MiB a
    // partition, which out does not read back; the stream holds them all: 256 MiB).
    const uint64_t n_out = quick ? 20000 : (size == 64 ? 500000 : 150000);
    const uint64_t n_in = in_count ? in_count : quick ? 16000 : (size == 64 ? 200000 : 100000);
    const std::string sz = std::to_string(size) + " B";
    std::vector<double> bo, br, bo_up, br_up, bi, ri, bi_up, ri_up, bh, bb;
    const std::string in_topic = "in_" + std::to_string(size);
    (void)m.value()->create_topic({in_topic, kInPartitions});
    fill_topic(brokers, in_topic, n_in, size);
    for (int rep = 0; rep < reps; ++rep) {
      const std::string tag = std::to_string(size) + "_" + std::to_string(rep);
      (void)m.value()->create_topic({"bare_out_" + tag, 1});
      (void)m.value()->create_topic({"bridge_out_" + tag, 1});
      const OutRun bare = in_only ? OutRun{} : bare_out(brokers, "bare_out_" + tag, n_out, size);
      const OutRun bridge = in_only ? OutRun{} : bridge_out(brokers, "bridge_out_" + tag, n_out, size);
      bo.push_back(bare.rate);
      bo_up.push_back(bare.startup);
      br.push_back(bridge.rate);
      br_up.push_back(bridge.startup);
      const InRun bare_i = bare_in(brokers, in_topic, n_in);
      const auto bridge_t0 = std::chrono::steady_clock::now();
      const InRun bridge_i = bridge_in(brokers, in_topic, n_in, "bench_" + tag);
      if (verbose)  // CLOCK_MONOTONIC seconds: for `perf record -k CLOCK_MONOTONIC` + `perf report --time`
        std::fprintf(stderr, "rep %d bridge in ran %.6f..%.6f\n", rep,
                     std::chrono::duration<double>(bridge_t0.time_since_epoch()).count(),
                     std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count());
      bh.push_back(bare_in(brokers, in_topic, n_in, BareIn::kHeader).rate);
      bb.push_back(bare_in(brokers, in_topic, n_in, BareIn::kBatch).rate);
      bi.push_back(bare_i.rate);
      bi_up.push_back(bare_i.startup);
      ri.push_back(bridge_i.rate);
      ri_up.push_back(bridge_i.startup);
      if (verbose)
        std::fprintf(stderr, "rep %d %s: in bridge %.0f bare %.0f (%.2fx)\n", rep, sz.c_str(), bridge_i.rate,
                     bare_i.rate, bare_i.rate > 0 ? bridge_i.rate / bare_i.rate : 0.0);
    }
    if (!in_only) {
      std::printf("| out, %s, %llu records, first to last ack | %.0f rec/s | %.0f msg/s | %.2fx | 0.8x |\n",
                  sz.c_str(), static_cast<unsigned long long>(n_out), median(br), median(bo),
                  median(br) / median(bo));
      std::printf("| out start-up, %s: start -> first ack (bridge: incl. recovery scan) | %.1f ms | %.1f ms | %.2fx "
                  "| - |\n",
                  sz.c_str(), median(br_up) * 1e3, median(bo_up) * 1e3, median(br_up) / median(bo_up));
    }
    std::printf("| in, %s, %llu messages / %d partitions, first to last | %.0f rec/s | %.0f msg/s | %.2fx | 0.8x |\n",
                sz.c_str(), static_cast<unsigned long long>(n_in), kInPartitions, median(ri), median(bi),
                median(ri) / median(bi));
    std::printf("| in, %s, the bare loop also reading each message's shmbus.type header (as the bridge must) | %.0f rec/s | "
                "%.0f msg/s | %.2fx | - |\n",
                sz.c_str(), median(ri), median(bh), median(ri) / median(bh));
    std::printf("| in, %s, the bare loop taking batches as the bridge does (and reading the header) | %.0f rec/s | "
                "%.0f msg/s | %.2fx | - |\n",
                sz.c_str(), median(ri), median(bb), median(ri) / median(bb));
    std::printf("| in start-up, %s: start -> first message (bridge: incl. group join; bare: assign) | %.1f ms | %.1f ms | %.2fx | - |\n",
                sz.c_str(), median(ri_up) * 1e3, median(bi_up) * 1e3, median(ri_up) / median(bi_up));
    std::fflush(stdout);
  }
  if (in_only) return 0;
  (void)m.value()->create_topic({"rtt_bare", 1});
  (void)m.value()->create_topic({"rtt_bridge", 1});
  const int n = quick ? 100 : 1000;
  const Pct bare = bare_rtt(brokers, "rtt_bare", n);
  const Pct br = bridge_rtt(brokers, "rtt_bridge", n);
  std::printf("| round trip p50, 64 B, %d one at a time | %.0f us | %.0f us | %.2fx | - |\n", n, br.p50, bare.p50,
              br.p50 / bare.p50);
  std::printf("| round trip p99 | %.0f us | %.0f us | %.2fx | - |\n", br.p99, bare.p99, br.p99 / bare.p99);
  return 0;
}
