// test_bridge_in.cc: `shmbus bridge in` (topic -> stream, at least once), the round trip,
// `stat`, and every bad input, against the in-process mock cluster.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bridge_test_util.h"

namespace shmbus::test {
namespace {

using namespace std::chrono_literals;

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
  shmbus::test::TempDir dir("shmbus-bridge");
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
  po.data_dir = dir.path();
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
