// test_bridge.cc: the Kafka bridge against librdkafka's in-process mock cluster.  The
// bridge runs as the `shmbus` command (a child process, so that it can be killed with
// SIGKILL); the test publishes and reads streams through the library and reads or
// writes the topic with a bare librdkafka client.
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "shm/test_util.h"
#include "shmbus/kafka.h"
#include "shmbus/persister.h"
#include "shmbus/shmbus.h"
#include "tools/run_cli.h"

namespace shmbus::test {
namespace {

using namespace std::chrono_literals;

bool soak() { return std::getenv("SHMBUS_SOAK") != nullptr; }

struct Msg {
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::string key, value;
  std::map<std::string, std::string> headers;
};

std::string header_of(const rd_kafka_message_t* m, const char* name) {
  rd_kafka_headers_t* h = nullptr;
  if (rd_kafka_message_headers(m, &h) || !h) return {};
  const void* v = nullptr;
  size_t n = 0;
  if (rd_kafka_header_get_last(h, name, &v, &n)) return {};
  return std::string(static_cast<const char*>(v), n);
}

// Every message of topic[partition], read with a bare librdkafka consumer.
std::vector<Msg> read_partition(const std::string& brokers, const std::string& topic, int32_t partition) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "2", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  EXPECT_NE(rk, nullptr) << err;
  std::vector<Msg> out;
  if (!rk) return out;
  int64_t low = 0, high = 0;
  EXPECT_EQ(rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, 10000), 0);
  // A test that wrote more than the mock keeps would see its oldest messages gone.
  EXPECT_EQ(low, 0) << "the mock cluster dropped the oldest messages of " << topic
                    << " (it keeps ~5 MiB per partition): the test wrote too much";
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  if (high > low) {
    rd_kafka_consume_start(rkt, partition, RD_KAFKA_OFFSET_BEGINNING);
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (std::chrono::steady_clock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consume(rkt, partition, 1000);
      if (!m) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        rd_kafka_message_destroy(m);
        if (!out.empty() && out.back().offset >= high - 1) break;
        continue;
      }
      EXPECT_EQ(m->err, 0) << rd_kafka_message_errstr(m);
      if (!m->err) {
        Msg x;
        x.partition = m->partition;
        x.offset = m->offset;
        x.timestamp_ms = rd_kafka_message_timestamp(m, nullptr);
        if (m->key) x.key.assign(static_cast<const char*>(m->key), m->key_len);
        if (m->payload) x.value.assign(static_cast<const char*>(m->payload), m->len);
        for (const char* h : {kafka::kHeaderSeq, kafka::kHeaderType, kafka::kHeaderTsNs, kafka::kHeaderStream})
          x.headers[h] = header_of(m, h);
        out.push_back(std::move(x));
      }
      const bool last = m->offset >= high - 1;
      rd_kafka_message_destroy(m);
      if (last) break;
    }
    rd_kafka_consume_stop(rkt, partition);
  }
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  return out;
}

// Reads topic[partition] from its beginning on a thread of its own while it is written:
// the mock cluster keeps only the newest ~5 MiB of a partition, so a long run is checked
// as it goes.  fell_behind(): the partition's start passed the follower (a test failure
// of the follower, not of the bridge).
class Follower {
 public:
  Follower(const std::string& brokers, const std::string& topic, int32_t partition, uint64_t want)
      : want_(want) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof err);
    rd_kafka_conf_set(conf, "auto.offset.reset", "error", err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    rkt_ = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
    rd_kafka_consume_start(rkt_, partition, RD_KAFKA_OFFSET_BEGINNING);
    thread_ = std::thread([this, partition] {
      while (!stop_ && msgs_.size() < want_) {
        rd_kafka_message_t* m = rd_kafka_consume(rkt_, partition, 200);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        } else if (m->err) {
          fell_behind_ = true;
          error_ = rd_kafka_message_errstr(m);
        } else {
          Msg x;
          x.offset = m->offset;
          x.timestamp_ms = rd_kafka_message_timestamp(m, nullptr);
          if (m->payload) x.value.assign(static_cast<const char*>(m->payload), m->len);
          for (const char* h : {kafka::kHeaderSeq, kafka::kHeaderType, kafka::kHeaderTsNs, kafka::kHeaderStream})
            x.headers[h] = header_of(m, h);
          msgs_.push_back(std::move(x));
          count_ = msgs_.size();
        }
        rd_kafka_message_destroy(m);
      }
      rd_kafka_consume_stop(rkt_, partition);
    });
  }
  ~Follower() {
    stop_ = true;
    thread_.join();
    rd_kafka_topic_destroy(rkt_);
    rd_kafka_destroy(rk_);
  }
  // Waits (up to `deadline`) until `want` messages arrived; then the thread has ended.
  const std::vector<Msg>& wait(std::chrono::seconds deadline) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (count_ < want_ && std::chrono::steady_clock::now() < end && !fell_behind_)
      std::this_thread::sleep_for(50ms);
    stop_ = true;
    thread_.join();
    thread_ = std::thread([] {});
    return msgs_;
  }
  bool fell_behind() const { return fell_behind_; }
  const std::string& error() const { return error_; }

 private:
  uint64_t want_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* rkt_ = nullptr;
  std::vector<Msg> msgs_;
  std::atomic<uint64_t> count_{0};
  std::atomic<bool> stop_{false}, fell_behind_{false};
  std::string error_;
  std::thread thread_;
};

int64_t high_watermark(const std::string& brokers, const std::string& topic, int32_t partition) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "2", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  int64_t low = 0, high = -1;
  if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, 5000)) high = -1;
  rd_kafka_destroy(rk);
  return high;
}

// Waits (generously) until topic[partition] holds `n` messages; false if it never does.
bool wait_for_messages(const std::string& brokers, const std::string& topic, int64_t n,
                       std::chrono::seconds deadline = 180s) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (high_watermark(brokers, topic, 0) >= n) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// Produces `values` to topic[partition] (a header shmbus.type when `type` is set).
void produce(const std::string& brokers, const std::string& topic, const std::vector<std::string>& values,
             std::optional<uint32_t> type = std::nullopt, int32_t partition = RD_KAFKA_PARTITION_UA) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "2", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  ASSERT_NE(rk, nullptr) << err;
  const std::string t = type ? std::to_string(*type) : "";
  // partition <= -2: spread, value i to partition i % (-2 - partition).
  const int32_t spread = partition <= -2 ? -2 - partition : 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const auto& v = values[i];
    if (spread) partition = static_cast<int32_t>(i % static_cast<size_t>(spread));
    for (;;) {
      rd_kafka_resp_err_t e;
      if (type)
        e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_VALUE(const_cast<char*>(v.data()), v.size()),
                              RD_KAFKA_V_HEADER(kafka::kHeaderType, t.data(), static_cast<ssize_t>(t.size())),
                              RD_KAFKA_V_END);
      else
        e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_VALUE(const_cast<char*>(v.data()), v.size()), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk, 10);
        continue;
      }
      ASSERT_EQ(e, 0) << rd_kafka_err2str(e);
      break;
    }
    rd_kafka_poll(rk, 0);
  }
  ASSERT_EQ(rd_kafka_flush(rk, 60000), 0);
  rd_kafka_destroy(rk);
}

// The payload of record i: its number, then filler bytes that depend on it.
std::string payload_for(uint64_t i, size_t size) {
  std::string s = "r" + std::to_string(i) + ":";
  while (s.size() < size) s += static_cast<char>('a' + (i + s.size()) % 26);
  s.resize(std::max(size, s.size()));
  return s;
}

class Bridge : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = kafka::MockCluster::start(1);
    ASSERT_TRUE(m) << m.error().message;
    mock_ = std::move(m.value());
    brokers_ = mock_->bootstraps();
  }

  // A cluster of three brokers instead, with topic t whose partition 0 is led by broker 1.
  void three_brokers() {
    mock_.reset();
    auto m = kafka::MockCluster::start(3);
    ASSERT_TRUE(m) << m.error().message;
    mock_ = std::move(m.value());
    brokers_ = mock_->bootstraps();
    topic("t");
    ASSERT_TRUE(mock_->set_partition_leader("t", 0, 1));
  }
  void create(const std::string& stream, uint64_t capacity = 1 << 20, uint64_t max_record = 0) {
    StreamOptions o;
    o.capacity = capacity;
    o.max_record = max_record;
    o.consumer_dead_timeout = std::chrono::milliseconds(120000);  // a killed bridge comes back
    ASSERT_TRUE(create_stream(ns_.ns(), stream, o));
  }
  void topic(const std::string& name, int partitions = 1) {
    ASSERT_TRUE(mock_->create_topic({name, partitions}));
  }
  // Publishes records [first, first + n) of payload_for(i, size), type i % 7.
  void publish(const std::string& stream, uint64_t first, uint64_t n, size_t size = 64) {
    auto p = Producer::open(ns_.ns(), stream);
    ASSERT_TRUE(p);
    for (uint64_t i = first; i < first + n; ++i) {
      const std::string v = payload_for(i, size);
      ASSERT_TRUE(p->publish(as_bytes(v), static_cast<uint32_t>(i % 7)).ok());
    }
  }
  std::vector<std::string> out_args(const std::string& stream, const std::string& t,
                                    std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"bridge", "out", stream, "--brokers", brokers_, "--topic", t,
                                  "--namespace", ns_.ns()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  CliResult run(const std::vector<std::string>& args, std::chrono::milliseconds deadline = 240s) {
    return run_program(SHMBUS_CLI, args, {}, {}, deadline);
  }
  // Checks that topic[partition] holds records [0, n) of `stream` exactly once and in order,
  // as publish() made them.
  void expect_exactly_once(const std::string& t, const std::string& stream, uint64_t n, size_t size = 64,
                           int32_t partition = 0) {
    expect_records(read_partition(brokers_, t, partition), stream, n, size);
  }
  void expect_records(const std::vector<Msg>& msgs, const std::string& stream, uint64_t n, size_t size) {
    ASSERT_EQ(msgs.size(), n) << "messages";
    for (uint64_t i = 0; i < n; ++i) {
      const Msg& m = msgs[i];
      ASSERT_EQ(m.headers.at(kafka::kHeaderSeq), std::to_string(i)) << "offset " << m.offset;
      ASSERT_EQ(m.headers.at(kafka::kHeaderType), std::to_string(i % 7));
      ASSERT_EQ(m.headers.at(kafka::kHeaderStream), ns_.ns() + "/" + stream);
      ASSERT_EQ(m.value, payload_for(i, size));
      const std::string ts = m.headers.at(kafka::kHeaderTsNs);
      ASSERT_FALSE(ts.empty());
      ASSERT_EQ(m.timestamp_ms, static_cast<int64_t>(std::stoull(ts) / 1000000));
    }
  }

  // n records published live at `rate` per second while `bridge out` runs; a Follower
  // checks the topic as it fills (the mock keeps only ~5 MiB per partition).
  void out_many(uint64_t n, uint64_t rate) {
    create("s", 16 << 20);
    topic("t");
    Follower f(brokers_, "t", 0, n);
    Background b(out_args("s", "t"));
    const auto t0 = std::chrono::steady_clock::now();
    {
      auto p = Producer::open(ns_.ns(), "s", ProducerOptions{WaitStrategy::kBlock, FullPolicy::kWait, 120s});
      ASSERT_TRUE(p);
      for (uint64_t i = 0; i < n; ++i) {
        const std::string v = payload_for(i, 16);
        ASSERT_TRUE(p->publish(as_bytes(v), static_cast<uint32_t>(i % 7)).ok());
        if (i % 1000 == 999) {
          const auto due = t0 + std::chrono::microseconds((i + 1) * 1000000 / rate);
          std::this_thread::sleep_until(due);
        }
      }
    }
    const auto& msgs = f.wait(std::chrono::seconds(120 + n / 1000));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_FALSE(f.fell_behind()) << "the test's reader fell behind the mock's retention: " << f.error();
    std::printf("bridge out: %llu records published at %llu/s, all in Kafka after %.2f s\n",
                static_cast<unsigned long long>(n), static_cast<unsigned long long>(rate), secs);
    CliResult r = b.stop(SIGTERM);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    expect_records(msgs, "s", n, 16);
    // Nothing came after them.
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers_.c_str(), err, sizeof err);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    int64_t low = 0, high = 0;
    EXPECT_EQ(rd_kafka_query_watermark_offsets(rk, "t", 0, &low, &high, 10000), 0);
    EXPECT_EQ(high, static_cast<int64_t>(n));
    rd_kafka_destroy(rk);
  }

  ScopedNs ns_;
  std::unique_ptr<kafka::MockCluster> mock_;
  std::string brokers_;
};

// ---- kafka-mock ---------------------------------------------------------------------

TEST(KafkaMock, PrintsTheBootstrapListFirstAndStopsCleanlyOnSigintAndSigterm) {
  for (int sig : {SIGINT, SIGTERM}) {
    Background m({"kafka-mock", "--brokers", "3", "--topic", "a", "--topic", "b:4"});
    ASSERT_TRUE(m.wait_for([](const std::string& out, const std::string&) { return out.find('\n') != std::string::npos; }));
    const std::string first = m.out().substr(0, m.out().find('\n'));
    EXPECT_EQ(std::count(first.begin(), first.end(), ','), 2) << first;
    EXPECT_EQ(first.rfind("127.0.0.1:", 0), 0u) << first;
    // The topics exist, with their partitions.
    auto parts = kafka::highest_seqs(first, {}, "b", {0, 1, 2, 3}, "x/y", 10000ms);
    ASSERT_TRUE(parts) << parts.error().message;
    EXPECT_EQ(parts->size(), 4u);
    CliResult r = m.stop(sig);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
}

TEST(KafkaMock, BadTopicSpecIsAOneLineError) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"kafka-mock", "--topic", "a:0"}, {"kafka-mock", "--topic", "bad/name"},
        {"kafka-mock", "--brokers", "0"}}) {
    CliResult r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args.back();
    EXPECT_EQ(r.err.rfind("shmbus: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// ---- bridge out ------------------------------------------------------------------

// n records published live at `rate` per second, bridged, and checked by a Follower.
TEST_F(Bridge, OutManyRecordsExactlyOnceInOrderWithHeadersAndPayloads) { out_many(100000, 10000); }

TEST_F(Bridge, SoakOutOneMillionRecords) {
  if (!soak()) GTEST_SKIP() << "soak only (SHMBUS_SOAK=1)";
  out_many(1000000, 20000);
}

TEST_F(Bridge, OutRestartedContinuesAfterWhatKafkaHolds) {
  create("s");
  topic("t");
  publish("s", 0, 100);
  ASSERT_EQ(run(out_args("s", "t", {"--exit-at-end"})).exit_code, 0);
  publish("s", 100, 50);
  // A new consumer name: the group knows nothing; Kafka says where to continue.
  CliResult r = run(out_args("s", "t", {"--exit-at-end", "--name", "other"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_exactly_once("t", "s", 150);
}


// kill -9 of `bridge out` at random moments while a producer publishes: nothing lost,
// nothing duplicated.
TEST_F(Bridge, OutKilledNineAtRandomMomentsLosesAndDuplicatesNothing) {
  create("s", 1 << 20);
  topic("t");
  const int kills = 10;
  const uint64_t n = 12000;  // at most ~3.5 MiB in Kafka (small batches): within what the mock keeps
  std::atomic<bool> done{false};
  std::thread producer([&] {
    auto p = Producer::open(ns_.ns(), "s", ProducerOptions{WaitStrategy::kBlock, FullPolicy::kWait, 120s});
    ASSERT_TRUE(p);
    for (uint64_t i = 0; i < n; ++i) {
      const std::string v = payload_for(i, 64);
      ASSERT_TRUE(p->publish(as_bytes(v), static_cast<uint32_t>(i % 7)).ok());
      if (i % 3 == 0) std::this_thread::sleep_for(1ms);  // at most 3000/s: kills land mid-stream
    }
    done = true;
  });
  std::mt19937 rng(12345);
  for (int k = 0; k < kills; ++k) {
    Background b(out_args("s", "t"));
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 600));
    ::kill(b.pid(), SIGKILL);
    b.stop(SIGKILL);
  }
  // The last bridge runs while the producer finishes (a producer held back by the dead
  // bridge's group would otherwise wait for it until the consumer timeout).
  Background last(out_args("s", "t"));
  producer.join();
  EXPECT_TRUE(wait_for_messages(brokers_, "t", static_cast<int64_t>(n)));
  CliResult r = last.stop(SIGTERM);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_exactly_once("t", "s", n);
}

TEST_F(Bridge, SoakOutKilledNineFiftyTimes) {
  if (!soak()) GTEST_SKIP() << "soak only (SHMBUS_SOAK=1)";
  create("s", 1 << 20);
  topic("t");
  const uint64_t n = 12000;  // within what the mock keeps; published over ~25 s of kills
  std::thread producer([&] {
    auto p = Producer::open(ns_.ns(), "s", ProducerOptions{WaitStrategy::kBlock, FullPolicy::kWait, 300s});
    ASSERT_TRUE(p);
    for (uint64_t i = 0; i < n; ++i) {
      const std::string v = payload_for(i, 64);
      ASSERT_TRUE(p->publish(as_bytes(v), static_cast<uint32_t>(i % 7)).ok());
      std::this_thread::sleep_for(2ms);
    }
  });
  std::mt19937 rng(777);
  for (int k = 0; k < 50; ++k) {
    Background b(out_args("s", "t"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 800));
    ::kill(b.pid(), SIGKILL);
    b.stop(SIGKILL);
  }
  Background last(out_args("s", "t"));
  producer.join();
  EXPECT_TRUE(wait_for_messages(brokers_, "t", static_cast<int64_t>(n), 600s));
  CliResult r = last.stop(SIGTERM);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_exactly_once("t", "s", n);
}

// The target partition goes offline (no leader) for seconds while records arrive, its
// broker then answers seconds late, then the leadership moves to another broker, and
// produce requests fail.  (rd_kafka_mock_broker_set_down is not used: see MockCluster.)
TEST_F(Bridge, OutRidesOutBrokersDownAndRequestErrors) {
  three_brokers();
  create("s", 4 << 20);
  Background b(out_args("s", "t"));
  const uint64_t n = 15000;
  publish("s", 0, n / 3);
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(mock_->set_partition_leader("t", 0, -1));
  publish("s", n / 3, n / 3);
  std::this_thread::sleep_for(3s);
  ASSERT_TRUE(mock_->set_broker_rtt(1, 2000));
  ASSERT_TRUE(mock_->set_partition_leader("t", 0, 1));
  std::this_thread::sleep_for(3s);
  ASSERT_TRUE(mock_->set_broker_rtt(1, 0));
  ASSERT_TRUE(mock_->set_partition_leader("t", 0, 2));
  // Produce (API key 0) answers NOT_LEADER_FOR_PARTITION (6) and REQUEST_TIMED_OUT (7).
  mock_->push_request_errors(0, 3, 6);
  mock_->push_request_errors(0, 3, 7);
  publish("s", 2 * (n / 3), n - 2 * (n / 3));
  EXPECT_TRUE(wait_for_messages(brokers_, "t", static_cast<int64_t>(n)));
  CliResult r = b.stop(SIGTERM);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  expect_exactly_once("t", "s", n);
}

// On a persisted stream the bridge reads through the store: an outage longer than the
// ring holds never makes producers wait for the bridge.
TEST_F(Bridge, OutOnAPersistedStreamNeverHoldsProducersBack) {
  three_brokers();
  char tmpl[] = "/tmp/shmbus-bridge-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  create("s", 64 << 10, 1024);
  persist::PersisterOptions po;
  po.data_dir = dir;
  auto pers = persist::Persister::start(ns_.ns(), "s", po);
  ASSERT_TRUE(pers) << pers.error().message;
  Background b(out_args("s", "t", {"--data-dir", dir}));
  ASSERT_TRUE(mock_->set_partition_leader("t", 0, -1));  // Kafka away: the partition is offline
  // 1.5 MiB of records through a 64 KiB ring while Kafka is away.
  const uint64_t n = 12000;
  {
    auto p = Producer::open(ns_.ns(), "s", ProducerOptions{WaitStrategy::kBlock, FullPolicy::kWait, 60s});
    ASSERT_TRUE(p);
    for (uint64_t i = 0; i < n; ++i) {
      const std::string v = payload_for(i, 128);
      ASSERT_TRUE(p->publish(as_bytes(v), static_cast<uint32_t>(i % 7)).ok());
      if (i % 200 == 0) std::this_thread::sleep_for(2ms);  // the persister keeps up
    }
  }
  std::this_thread::sleep_for(2s);  // the outage goes on a while
  auto info = stream_info(ns_.ns(), "s");
  ASSERT_TRUE(info);
  for (const auto& c : info->consumers) EXPECT_NE(c.name, "_bridge.t") << "a group would hold producers";
  std::printf("producer waits during the outage: %llu (the persister's, if any)\n",
              static_cast<unsigned long long>(info->producer_waits));
  ASSERT_TRUE(mock_->set_partition_leader("t", 0, 2));
  EXPECT_TRUE(wait_for_messages(brokers_, "t", static_cast<int64_t>(n)));
  EXPECT_EQ(b.stop(SIGTERM).exit_code, 0);
  expect_exactly_once("t", "s", n, 128);
  EXPECT_TRUE(pers.value()->stop());
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST_F(Bridge, OutKeyTypeKeepsOrderPerTypeAcrossPartitions) {
  create("s");
  topic("t", 3);
  publish("s", 0, 700);
  ASSERT_EQ(run(out_args("s", "t", {"--exit-at-end", "--key", "type"})).exit_code, 0);
  publish("s", 700, 70);
  ASSERT_EQ(run(out_args("s", "t", {"--exit-at-end", "--key", "type"})).exit_code, 0);
  std::map<std::string, std::vector<uint64_t>> by_type;
  size_t total = 0;
  for (int32_t p = 0; p < 3; ++p)
    for (const Msg& m : read_partition(brokers_, "t", p)) {
      EXPECT_EQ(m.key, m.headers.at(kafka::kHeaderType));
      by_type[m.key].push_back(std::stoull(m.headers.at(kafka::kHeaderSeq)));
      ++total;
    }
  EXPECT_EQ(total, 770u);
  for (const auto& [type, seqs] : by_type)
    for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], std::stoull(type) + 7 * i);
}

// ---- bridge in -----------------------------------------------------------------------

// n messages over `partitions` partitions (message i to partition i % partitions, so
// that each stays within what the mock keeps), bridged in: each once, in order per
// partition; a second run finds everything committed.
void in_many(const std::string& ns, const std::string& brokers, uint64_t n, int partitions) {
  std::vector<std::string> values;
  for (uint64_t i = 0; i < n; ++i) values.push_back(payload_for(i, 64));
  produce(brokers, "t", values, std::nullopt, -2 - partitions);  // message i to partition i % partitions
  const auto t0 = std::chrono::steady_clock::now();
  CliResult r = run_program(SHMBUS_CLI, {"bridge", "in", "t", "--brokers", brokers, "--stream", "s", "--exit-at-end",
                                         "--type", "9", "--namespace", ns}, {}, {}, 1800s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::printf("bridge in: %llu messages in %.2f s (group join included)\n", static_cast<unsigned long long>(n),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  ConsumerOptions co;
  co.start = StartFrom::earliest();
  auto c = Consumer::open(ns, "s", co);
  ASSERT_TRUE(c);
  Record rec;
  std::vector<int64_t> last(static_cast<size_t>(partitions), -1);
  std::vector<bool> seen(n, false);
  for (uint64_t k = 0; k < n; ++k) {
    ASSERT_EQ(c->poll(&rec, 10s), ReadStatus::kOk) << k;
    const std::string v = as_string(rec.data);
    const uint64_t i = std::stoull(v.substr(1, v.find(':') - 1));
    ASSERT_LT(i, n);
    ASSERT_EQ(v, payload_for(i, 64));
    ASSERT_FALSE(seen[i]) << "message " << i << " twice";
    seen[i] = true;
    auto& l = last[i % static_cast<uint64_t>(partitions)];
    ASSERT_GT(static_cast<int64_t>(i), l) << "out of order within its partition";
    l = static_cast<int64_t>(i);
    ASSERT_EQ(rec.type, 9u);
  }
  EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout) << "a duplicate";
  r = run_program(SHMBUS_CLI, {"bridge", "in", "t", "--brokers", brokers, "--stream", "s", "--exit-at-end",
                               "--namespace", ns}, {}, {}, 300s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout) << "read twice";
}

TEST_F(Bridge, InManyMessagesEveryOneInOrderPerPartition) {
  create("s", 64 << 20);
  topic("t", 16);
  in_many(ns_.ns(), brokers_, 200000, 16);
}

TEST_F(Bridge, SoakInOneMillionMessages) {
  if (!soak()) GTEST_SKIP() << "soak only (SHMBUS_SOAK=1)";
  create("s", 256 << 20);
  topic("t", 64);
  in_many(ns_.ns(), brokers_, 1000000, 64);
}

TEST_F(Bridge, RoundTripStreamTopicStreamKeepsPayloadsTypesAndOrder) {
  create("a");
  create("b");
  topic("t");
  publish("a", 0, 5000, 100);
  ASSERT_EQ(run(out_args("a", "t", {"--exit-at-end"})).exit_code, 0);
  CliResult r = run({"bridge", "in", "t", "--brokers", brokers_, "--stream", "b", "--exit-at-end", "--namespace",
                     ns_.ns()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ConsumerOptions co;
  co.start = StartFrom::earliest();
  auto c = Consumer::open(ns_.ns(), "b", co);
  ASSERT_TRUE(c);
  Record rec;
  for (uint64_t i = 0; i < 5000; ++i) {
    ASSERT_EQ(c->poll(&rec, 10s), ReadStatus::kOk) << i;
    ASSERT_EQ(as_string(rec.data), payload_for(i, 100));
    ASSERT_EQ(rec.type, i % 7);
  }
  EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);
}

TEST_F(Bridge, InWithSyncCommitsOnlyDurableRecords) {
  char tmpl[] = "/tmp/shmbus-bridge-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  create("s");
  topic("t");
  produce(brokers_, "t", {"one", "two", "three"});
  // No persister: the records are published but never durable, so nothing is committed
  // and the run fails at the end.
  CliResult r = run({"bridge", "in", "t", "--brokers", brokers_, "--stream", "s", "--sync", "--sync-timeout",
                     "500ms", "--exit-at-end", "--namespace", ns_.ns()}, 60s);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("shmbus: "), std::string::npos) << r.err;
  persist::PersisterOptions po;
  po.data_dir = tmpl;
  {
    auto pers = persist::Persister::start(ns_.ns(), "s", po);
    ASSERT_TRUE(pers) << pers.error().message;
    // The same group again: the offsets were not committed, so all three come again.
    CliResult r2 = run({"bridge", "in", "t", "--brokers", brokers_, "--stream", "s", "--sync", "--exit-at-end",
                        "--namespace", ns_.ns()}, 120s);
    ASSERT_EQ(r2.exit_code, 0) << r2.err;
    auto info = stream_info(ns_.ns(), "s");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->next_seq, 6u);
    EXPECT_GE(info->durable_seq, 6u);
    EXPECT_TRUE(pers.value()->stop());
  }
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
}

// ---- stat --------------------------------------------------------------------------

TEST_F(Bridge, StatShowsARunningBridge) {
  create("s");
  topic("t");
  publish("s", 0, 10);
  Background b(out_args("s", "t"));
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    CliResult r = run_cli({"stat", "s", "--json", "--namespace", ns_.ns()});
    seen = r.out.find("\"bridges\":[{\"kind\":\"bridge\",\"direction\":\"out\"") != std::string::npos &&
           r.out.find("\"delivered\":10,") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(seen);
  CliResult text = run_cli({"stat", "s", "--namespace", ns_.ns()});
  EXPECT_NE(text.out.find("bridges (1)"), std::string::npos) << text.out;
  EXPECT_EQ(b.stop(SIGINT).exit_code, 0);  // SIGINT too is a clean stop
  CliResult after = run_cli({"stat", "s", "--json", "--namespace", ns_.ns()});
  EXPECT_EQ(after.out.find("\"bridges\""), std::string::npos) << "status file left behind";
}

// ---- bad input ---------------------------------------------------------------------

void expect_one_line_error(const CliResult& r, const std::string& what) {
  EXPECT_NE(r.exit_code, 0) << what;
  EXPECT_EQ(r.err.rfind("shmbus: ", 0), 0u) << what << ": " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << ": " << r.err;
  EXPECT_FALSE(r.timed_out) << what;
}

TEST_F(Bridge, EveryBadInputIsAOneLineErrorAndANonZeroExit) {
  create("s");
  topic("t");
  const std::string ns = ns_.ns();
  const std::vector<std::vector<std::string>> cases = {
      {"bridge", "out", "s", "--brokers", "127.0.0.1:1", "--topic", "t", "--connect-timeout", "2s", "--namespace", ns},
      {"bridge", "out", "s", "--brokers", "no-such-host.invalid:9092", "--topic", "t", "--connect-timeout", "2s",
       "--namespace", ns},
      {"bridge", "out", "s", "--brokers", brokers_, "--topic", "missing", "--namespace", ns},
      {"bridge", "out", "s", "--brokers", brokers_, "--topic", "t", "-X", "no.such.property=1", "--namespace", ns},
      {"bridge", "out", "s", "--brokers", brokers_, "--topic", "t", "-X", "novalue", "--namespace", ns},
      {"bridge", "out", "s", "--brokers", brokers_, "--topic", "t", "-X", "enable.idempotence=false", "--namespace", ns},
      {"bridge", "out", "s", "--brokers", brokers_, "--topic", "t", "-X", "acks=1", "--namespace", ns},
      {"bridge", "out", "bad/name", "--brokers", brokers_, "--topic", "t", "--namespace", ns},
      {"bridge", "out", "nosuch", "--brokers", brokers_, "--topic", "t", "--namespace", ns},
      {"bridge", "out", "s", "--brokers", brokers_, "--topic", "bad topic", "--namespace", ns},
      {"bridge", "out", "s", "--brokers", brokers_, "--topic", "t", "--partition", "5", "--namespace", ns},
      {"bridge", "out", "s", "--brokers", brokers_, "--topic", "t", "--key", "color", "--namespace", ns},
      {"bridge", "out", "s", "--brokers", brokers_, "--topic", "t", "--from", "yesterday-ish", "--namespace", ns},
      {"bridge", "in", "t", "--brokers", "127.0.0.1:1", "--stream", "s", "--connect-timeout", "2s", "--namespace", ns},
      {"bridge", "in", "missing", "--brokers", brokers_, "--stream", "s", "--namespace", ns},
      {"bridge", "in", "t", "--brokers", brokers_, "--stream", "bad/name", "--namespace", ns},
      {"bridge", "in", "t", "--brokers", brokers_, "--stream", "nosuch", "--namespace", ns},
      {"bridge", "in", "t", "--brokers", brokers_, "--stream", "s", "-X", "bogus=1", "--namespace", ns},
      {"bridge", "in", "t", "--brokers", brokers_, "--stream", "s", "--from", "middle", "--namespace", ns},
      {"bridge", "in", "t", "--stream", "s", "--namespace", ns},
  };
  for (const auto& args : cases) {
    std::string what;
    for (const auto& a : args) what += a + " ";
    expect_one_line_error(run(args, 30s), what);
  }
}

TEST_F(Bridge, OversizedRecordsAreCountedLoggedSkips) {
  create("s", 1 << 20, 64 << 10);
  create("small", 64 << 10, 100);
  topic("t");
  {
    auto p = Producer::open(ns_.ns(), "s");
    ASSERT_TRUE(p);
    ASSERT_TRUE(p->publish(as_bytes(std::string("small"))).ok());
    ASSERT_TRUE(p->publish(as_bytes(std::string(40000, 'x'))).ok());
    ASSERT_TRUE(p->publish(as_bytes(std::string("after"))).ok());
  }
  // Out: a record above the producer's message.max.bytes is skipped, counted, logged.
  CliResult r = run(out_args("s", "t", {"--exit-at-end", "-X", "message.max.bytes=10000"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("skipped"), std::string::npos) << r.err;
  const auto msgs = read_partition(brokers_, "t", 0);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].value, "small");
  EXPECT_EQ(msgs[1].value, "after");
  // In: a message above the stream's maximum record is skipped, counted, logged.
  produce(brokers_, "t", {std::string(500, 'y'), "fits"});
  r = run({"bridge", "in", "t", "--brokers", brokers_, "--stream", "small", "--exit-at-end", "--namespace",
           ns_.ns()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("skipped"), std::string::npos) << r.err;
  ConsumerOptions co;
  co.start = StartFrom::earliest();
  auto c = Consumer::open(ns_.ns(), "small", co);
  ASSERT_TRUE(c);
  Record rec;
  std::vector<std::string> got;
  while (c->poll(&rec, 0ns) == ReadStatus::kOk) got.push_back(as_string(rec.data));
  EXPECT_EQ(got, (std::vector<std::string>{"small", "after", "fits"}));
}

}  // namespace
}  // namespace shmbus::test
