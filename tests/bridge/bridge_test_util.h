// bridge_test_util.h: what the Kafka bridge tests share (test_bridge_out.cc,
// test_bridge_in.cc): the Bridge fixture (an in-process librdkafka mock cluster, a
// namespace of its own), and bare librdkafka helpers to read and write topics.  The
// bridge runs as the `shmbus` command (a child process, so that it can be killed with
// SIGKILL); the tests publish and read streams through the library.
#pragma once

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/scratch.h"
#include "shmbus/kafka.h"
#include "shmbus/persister.h"
#include "shmbus/shmbus.h"
#include "tools/run_cli.h"

namespace shmbus::test {

using namespace std::chrono_literals;

inline bool soak() { return std::getenv("SHMBUS_SOAK") != nullptr; }

struct Msg {
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::string key, value;
  std::map<std::string, std::string> headers;
};

inline std::string header_of(const rd_kafka_message_t* m, const char* name) {
  rd_kafka_headers_t* h = nullptr;
  if (rd_kafka_message_headers(m, &h) || !h) return {};
  const void* v = nullptr;
  size_t n = 0;
  if (rd_kafka_header_get_last(h, name, &v, &n)) return {};
  return std::string(static_cast<const char*>(v), n);
}

// Every message of topic[partition], read with a bare librdkafka consumer.
inline std::vector<Msg> read_partition(const std::string& brokers, const std::string& topic, int32_t partition) {
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

inline int64_t high_watermark(const std::string& brokers, const std::string& topic, int32_t partition) {
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
inline bool wait_for_messages(const std::string& brokers, const std::string& topic, int64_t n,
                       std::chrono::seconds deadline = 180s) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (high_watermark(brokers, topic, 0) >= n) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// Produces `values` to topic[partition] (a header shmbus.type when `type` is set).
// `props`: more producer properties (e.g. batch.num.messages=1: one message per batch).
inline void produce(const std::string& brokers, const std::string& topic, const std::vector<std::string>& values,
             std::optional<uint32_t> type = std::nullopt, int32_t partition = RD_KAFKA_PARTITION_UA,
             const std::vector<std::pair<std::string, std::string>>& props = {}) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "2", err, sizeof err);
  for (const auto& [k, v] : props) ASSERT_EQ(rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err), 0) << err;
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
inline std::string payload_for(uint64_t i, size_t size) {
  std::string s = "r" + std::to_string(i) + ":";
  while (s.size() < size) s += static_cast<char>('a' + (i + s.size()) % 26);
  s.resize(std::max(size, s.size()));
  return s;
}
// The i of a payload_for(i, size).
inline uint64_t payload_index(std::string_view v) {
  return std::stoull(std::string(v.substr(1, v.find(':') - 1)));
}

class Bridge : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = kafka::MockCluster::start(1);
    ASSERT_TRUE(m) << m.error().message;
    mock_ = std::move(m.value());
    brokers_ = mock_->bootstraps();
  }

  // Status files of bridges this test killed with SIGKILL (a clean exit removes its own).
  void TearDown() override {
    std::error_code ec;
    const std::string prefix = "shmbus-bridge." + ns_.ns() + ".";
    for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(prefix, 0) == 0) std::filesystem::remove(e.path(), ec);
      // And the one-bridge locks they held (kept by a kill -9, see bridge/src/lock.h).
      if (name.rfind("shmbus-bridge-out.", 0) == 0) {
        std::ifstream in(e.path());
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (text.find("\nns " + ns_.ns() + "\n") != std::string::npos) std::filesystem::remove(e.path(), ec);
      }
    }
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
  // A persister on stream "s" storing into `data_dir` (stopped when dropped).
  Result<std::unique_ptr<persist::Persister>> persisted_into(const std::string& data_dir) {
    persist::PersisterOptions po;
    po.data_dir = data_dir;
    return persist::Persister::start(ns_.ns(), "s", po);
  }
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
  // A bridge out of stream s into topic t: 3000 records through, then Produce answers
  // Kafka error `error` once (round trips of `rtt_ms` until the rest is in), then 3000
  // more.  Every record must reach Kafka exactly once and the bridge exit 0 on SIGTERM;
  // *err: its stderr.
  void out_through_one_produce_error(int error, int rtt_ms, std::string* err,
                                     const std::vector<std::string>& extra = {}) {
    create("s", 4 << 20);
    topic("t");
    Background b(out_args("s", "t", extra));
    const uint64_t n = 6000;
    publish("s", 0, n / 2);
    ASSERT_TRUE(wait_for_messages(brokers_, "t", static_cast<int64_t>(n / 2)));
    if (rtt_ms > 0) {
      ASSERT_TRUE(mock_->set_broker_rtt(1, rtt_ms));
    }
    mock_->push_request_errors(0, 1, error);
    publish("s", n / 2, n / 2);
    EXPECT_TRUE(wait_for_messages(brokers_, "t", static_cast<int64_t>(n)));
    if (rtt_ms > 0) {
      ASSERT_TRUE(mock_->set_broker_rtt(1, 0));
    }
    CliResult r = b.stop(SIGTERM);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    *err = r.err;
    SCOPED_TRACE("the bridge said:\n" + r.err);  // (a loaded CI run found 5999 of 6000)
    expect_exactly_once("t", "s", n);
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
    ASSERT_EQ(msgs.size(), n) << "messages; " << [&] {
      // Which sequences are missing, or there twice, and at which offsets.
      std::map<uint64_t, std::vector<int64_t>> at;
      for (const Msg& m : msgs)
        if (auto it = m.headers.find(kafka::kHeaderSeq); it != m.headers.end())
          at[std::stoull(it->second)].push_back(m.offset);
      std::string said;
      for (uint64_t i = 0; i < n && said.size() < 2000; ++i)
        if (at[i].size() != 1) said += "seq " + std::to_string(i) + " at " + std::to_string(at[i].size()) + " offsets; ";
      return said.empty() ? std::string("every seq once") : said;
    }();
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

}  // namespace shmbus::test
