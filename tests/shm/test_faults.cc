// kill -9 at any point: the stream keeps flowing and the counters say what happened.
#include <gtest/gtest.h>

#include <cstring>
#include <cstdlib>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "shmbus/detail/stream_control.h"
#include "mp_util.h"
#include "../common/scratch.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::Msg;

StreamOptions fault_opts() {
  StreamOptions so;
  so.capacity = 1 << 16;
  so.abandon_timeout = 50ms;
  so.consumer_dead_timeout = 200ms;
  return so;
}

// A producer killed between claim and commit (its payload half written, or not at all):
// its slot becomes a gap after the abandon timeout, and a producer that keeps publishing
// is not stalled for longer than that.  On a single-producer stream (parameter) that
// producer is the dead one's successor, another process taking the stream over.
class ProducerKilledBetweenClaimAndCommit
    : public ::testing::TestWithParam<std::tuple<bool /*single*/, bool /*payload written*/>> {};

TEST_P(ProducerKilledBetweenClaimAndCommit, BecomesOneGapAndTheStreamFlows) {
  const bool single = std::get<0>(GetParam()), payload_written = std::get<1>(GetParam());
  test::ScopedNs ns;
  StreamOptions so = fault_opts();
  so.single_producer = single;
  ASSERT_TRUE(create_stream(ns.ns(), "f", so));
  ConsumerOptions co;
  co.group = "g";
  auto c = Consumer::open(ns.ns(), "f", co);
  ASSERT_TRUE(c);
  test::Pipe claimed;
  pid_t victim = test::spawn([&] {
    auto p = Producer::open(ns.ns(), "f");
    PubStatus st;
    Claim cl = p->claim(sizeof(Msg), 0, &st);
    if (st != PubStatus::kOk) return 1;
    if (payload_written) std::memset(cl.data().data(), 0xab, sizeof(Msg) / 2);
    char one = 1;
    claimed.put(&one, 1);
    pause();  // killed here, between claim and commit
    return 0;
  });
  char one;
  ASSERT_TRUE(claimed.get(&one, 1));
  kill(victim, SIGKILL);
  EXPECT_EQ(test::reap(victim), 128 + SIGKILL);

  auto p = Producer::open(ns.ns(), "f");
  ASSERT_TRUE(p) << p.error().message;
  const auto t0 = std::chrono::steady_clock::now();
  // Publish several laps' worth: the producer must get past the dead claim.
  for (uint64_t i = 0; i < 5000; ++i) {
    Msg m{0, 0, i, test::msg_check(0, i)};
    ASSERT_TRUE(p->publish(Bytes(reinterpret_cast<std::byte*>(&m), sizeof m)).ok()) << i;
    Record rec;
    ASSERT_EQ(c->poll(&rec, 2s), ReadStatus::kOk) << i;
    ASSERT_EQ(rec.seq, i + 1);  // seq 0 was the dead claim
    ASSERT_EQ(rec.data.size(), sizeof m);
    std::memcpy(&m, rec.data.data(), sizeof m);
    ASSERT_EQ(m.check, test::msg_check(m.producer, m.index)) << i;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(c->gaps(), 1u);
  auto info = stream_info(ns.ns(), "f");
  EXPECT_EQ(info->abandoned, 1u);
  ASSERT_EQ(info->producers.size(), 2u);  // the dead one is listed as not alive
  int alive = 0;
  for (auto& pi : info->producers) alive += pi.alive;
  EXPECT_EQ(alive, 1);
}
INSTANTIATE_TEST_SUITE_P(Faults, ProducerKilledBetweenClaimAndCommit,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "single" : "multi") +
                                  (std::get<1>(info.param) ? "_payload_half_written" : "_claim_only");
                         });

// A producer whose process forked (a worker pool, Python's multiprocessing) and was then
// killed with a claim pending: the child that outlives it must not keep it alive.  Found
// by the chaos harness: the slot's liveness lock belonged to an open file description
// that fork() shares with the child (and that the child's copy of the mapping kept
// open), so the dead producer's claim was never abandoned while the child lived.
TEST(Faults, ForkedChildDoesNotKeepAKilledProducerAlive) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "f", fault_opts()));
  ConsumerOptions co;
  co.group = "g";
  auto c = Consumer::open(ns.ns(), "f", co);
  ASSERT_TRUE(c);
  test::Pipe claimed;
  test::Pipe child_pid;
  pid_t victim = test::spawn([&] {
    auto p = Producer::open(ns.ns(), "f");
    pid_t kid = fork();  // lives on, with copies of everything; uses none of it
    if (kid == 0) {
      sleep(30);
      _exit(0);
    }
    child_pid.put(&kid, sizeof kid);
    PubStatus st;
    Claim cl = p->claim(24, 0, &st);
    char one = 1;
    claimed.put(&one, 1);
    pause();  // killed here, between claim and commit
    return 0;
  });
  pid_t kid = 0;
  ASSERT_TRUE(child_pid.get(&kid, sizeof kid));
  char one;
  ASSERT_TRUE(claimed.get(&one, 1));
  kill(victim, SIGKILL);
  EXPECT_EQ(test::reap(victim), 128 + SIGKILL);

  auto p = Producer::open(ns.ns(), "f");
  Msg m{0, 0, 0, test::msg_check(0, 0)};
  ASSERT_TRUE(p->publish(Bytes(reinterpret_cast<std::byte*>(&m), sizeof m)).ok());
  Record rec;
  // The dead claim (seq 0) becomes a gap after the abandon timeout (50 ms), while the
  // child still lives.
  const ReadStatus st = c->poll(&rec, 5s);
  kill(kid, SIGKILL);  // a grandchild: init reaps it
  ASSERT_EQ(st, ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 1u);
  EXPECT_EQ(c->gaps(), 1u);
}

// A child of fork() that closes (or destroys) the producers and consumers it inherited
// leaves its parent's registry slots alone: they are still the parent's.
TEST(Faults, ForkedChildClosingWhatItInheritedLeavesTheParentsSlots) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "f", fault_opts()));
  ConsumerOptions co;
  co.group = "g";
  auto c = Consumer::open(ns.ns(), "f", co);
  auto p = Producer::open(ns.ns(), "f");
  ASSERT_TRUE(c && p);
  pid_t kid = test::spawn([&] {
    p->close();
    c->close();
    return 0;
  });
  EXPECT_EQ(test::reap(kid), 0);
  auto info = stream_info(ns.ns(), "f");
  ASSERT_TRUE(info);
  ASSERT_EQ(info->producers.size(), 1u);
  EXPECT_TRUE(info->producers[0].alive);
  ASSERT_EQ(info->consumers.size(), 1u);
  EXPECT_TRUE(info->consumers[0].alive);
  EXPECT_EQ(info->consumers[0].pid, static_cast<uint32_t>(getpid()));
  // And a second holder of the group is still refused.
  auto again = Consumer::open(ns.ns(), "f", co);
  EXPECT_FALSE(again);
}

// How many open descriptors of this process refer to the file (dev, ino): raw system
// calls and stack buffers only, for a child of fork() whose parent had other threads
// (one of them may have held the allocator's lock at the fork).
int descriptors_on(dev_t dev, ino_t ino) {
  const int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return 100;
  int n = 0;
  alignas(8) char buf[4096];
  for (;;) {
    const long got = syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (got <= 0) break;
    for (long off = 0; off < got;) {
      // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, then the name.
      unsigned short reclen;
      std::memcpy(&reclen, buf + off + 16, sizeof reclen);
      const char* name = buf + off + 19;
      struct stat st;
      if (name[0] >= '0' && name[0] <= '9' && std::atoi(name) != dir &&
          fstatat(dir, name, &st, 0) == 0 && st.st_dev == dev && st.st_ino == ino)
        ++n;
      off += reclen;
    }
  }
  ::close(dir);
  return n;
}

// fork() from one thread while another opens and closes producers on a stream: the child
// keeps no open file description of the stream's object but the one its mapping came
// through (which never holds a lock).  A description through which its parent takes the
// registry lock or holds its slot's liveness lock would keep them for as long as the
// child lives, after the parent died (found by a review: the probe description was
// opened before the mapping was listed for the child's clean-up, after_fork_in_child(),
// and both lock descriptions were closed after it was unlisted).
TEST(Faults, AForkDuringAnOpenOrCloseLeavesTheChildNoLockDescription) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "f", fault_opts()));
  struct stat obj;
  ASSERT_EQ(::stat(("/dev/shm/" + object_name(ns.ns(), "f")).c_str(), &obj), 0);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> opens{0};
  std::thread opener([&] {
    while (!stop.load()) {
      auto p = Producer::open(ns.ns(), "f");
      if (p) ++opens;
    }
  });
  while (opens.load() == 0) std::this_thread::sleep_for(1ms);
  int worst = 0, forks = 0;
  for (int i = 0; i < 400; ++i) {
    const pid_t kid = fork();
    if (kid == 0) _exit(descriptors_on(obj.st_dev, obj.st_ino));
    ASSERT_GT(kid, 0);
    int status = 0;
    ASSERT_EQ(waitpid(kid, &status, 0), kid);
    if (WIFEXITED(status)) worst = std::max(worst, WEXITSTATUS(status));
    ++forks;
    std::this_thread::sleep_for(std::chrono::microseconds(20 + (i % 7) * 11));
  }
  stop = true;
  opener.join();
  // One: the mapping's own description (hold_fd_), when the fork found a mapping open.
  EXPECT_LE(worst, 1) << "a child of " << forks << " kept a lock description; opens: " << opens.load();
}

// Producers killed at random instructions while another keeps publishing: every sequence
// number is either a record with a good checksum or a counted gap, and the stream flows.
void producer_kill_rounds(int rounds, uint64_t seed) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "f", fault_opts()));
  ConsumerOptions co;
  co.group = "g";
  auto c = Consumer::open(ns.ns(), "f", co);
  ASSERT_TRUE(c);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bad{0}, got{0}, last{0};
  std::thread reader([&] {
    Record rec;
    while (!stop.load()) {
      ReadStatus st = c->poll(&rec, 20ms);
      if (st == ReadStatus::kTimeout) continue;
      if (st != ReadStatus::kOk) { ++bad; continue; }
      Msg m;
      if (rec.data.size() != sizeof m) { ++bad; continue; }
      std::memcpy(&m, rec.data.data(), sizeof m);
      if (m.check != test::msg_check(m.producer, m.index)) ++bad;
      ++got;
      last = rec.seq;
    }
  });
  pid_t steady = test::spawn([&] {
    auto p = Producer::open(ns.ns(), "f");
    for (uint64_t i = 0; i < 200000; ++i) {
      Msg m{0, 0, i, test::msg_check(0, i)};
      PubStatus s = p->publish(Bytes(reinterpret_cast<std::byte*>(&m), sizeof m)).status;
      if (s != PubStatus::kOk) return 20 + static_cast<int>(s);
    }
    return 0;
  });
  std::mt19937_64 rng(seed);
  for (int r = 0; r < rounds; ++r) {
    const uint32_t id = 1 + static_cast<uint32_t>(r);
    pid_t victim = test::spawn([&] {
      auto p = Producer::open(ns.ns(), "f");
      for (uint64_t i = 0;; ++i) {
        Msg m{id, 0, i, test::msg_check(id, i)};
        if (i % 3 == 0) {  // the zero-copy path too
          PubStatus st;
          Claim cl = p->claim(sizeof m, 0, &st);
          if (st != PubStatus::kOk) continue;
          std::memcpy(cl.data().data(), &m, sizeof m);
          (void)cl.commit();
        } else {
          (void)p->publish(Bytes(reinterpret_cast<std::byte*>(&m), sizeof m));
        }
      }
      return 0;
    });
    std::this_thread::sleep_for(std::chrono::microseconds(200 + rng() % 5000));
    kill(victim, SIGKILL);
    test::reap(victim);
  }
  EXPECT_EQ(test::reap(steady), 0) << "the surviving producer was stalled or failed";
  // A last record after every victim.  A victim killed in its claim at the very end of
  // the stream (the steady producer done before it) leaves a gap that the reader counts
  // only when a record follows it: a gap's number of sequences comes from the next
  // record (gaps()).  A CI run met that end: 200155 records read, the last sequence
  // abandoned, gaps() 0.
  // (EXPECT, not ASSERT: the reader thread runs; a failure still drains and joins it.)
  if (auto fin = Producer::open(ns.ns(), "f"); fin) {
    const uint32_t id = 1 + static_cast<uint32_t>(rounds);
    Msg m{id, 0, 0, test::msg_check(id, 0)};
    EXPECT_TRUE(fin->publish(Bytes(reinterpret_cast<std::byte*>(&m), sizeof m)).ok());
  } else {
    ADD_FAILURE() << "the last producer did not open: " << fin.error().message;
  }
  // Drain: the consumer must reach the end of the stream.
  const uint64_t end = stream_info(ns.ns(), "f")->next_seq;
  for (int i = 0; i < 300 && last.load() + 1 < end; ++i) std::this_thread::sleep_for(10ms);
  stop = true;
  reader.join();
  auto info = stream_info(ns.ns(), "f");
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(last.load() + 1, info->next_seq);
  // Every sequence is a record or a gap.
  EXPECT_EQ(got.load() + c->gaps(), info->next_seq);
  EXPECT_LE(c->gaps(), info->abandoned * 64 + info->aborted);  // a gap may hide a batch
  EXPECT_EQ(c->gaps() > 0, info->abandoned > 0);
}

TEST(Faults, ProducersKilledAtRandomPoints) { producer_kill_rounds(5, 1); }
TEST(Faults, DISABLED_SoakProducersKilledHundredsOfTimes) { producer_kill_rounds(300, 7); }

// A durable consumer killed mid-stream: its restarted process takes the name over and
// continues after its last commit (at-least-once); the producer was never held for long.
void consumer_kill_rounds(int rounds, uint64_t seed) {
  test::ScopedNs ns;
  StreamOptions so = fault_opts();
  so.consumer_dead_timeout = 10s;  // restarts come quickly: no eviction expected
  ASSERT_TRUE(create_stream(ns.ns(), "f", so));
  const uint64_t kTotal = 100000 + 5000ULL * rounds;
  {
    ConsumerOptions co;
    co.group = "g";
    auto reg = Consumer::open(ns.ns(), "f", co);  // registered before the producer starts
    ASSERT_TRUE(reg);
  }
  pid_t prod = test::spawn([&] {
    auto p = Producer::open(ns.ns(), "f");
    for (uint64_t i = 0; i < kTotal; ++i) {
      Msg m{0, 0, i, test::msg_check(0, i)};
      if (!p->publish(Bytes(reinterpret_cast<std::byte*>(&m), sizeof m)).ok()) return 1;
    }
    return 0;
  });
  std::mt19937_64 rng(seed);
  test::Pipe progress;
  uint64_t resumed_ok = 0;
  for (int r = 0;; ++r) {
    const bool last_round = r >= rounds;
    pid_t reader = test::spawn([&] {
      ConsumerOptions co;
      co.group = "g";
      Result<Consumer> c = make_error(Errc::kBusy, "");
      for (int i = 0; i < 200 && !(c = Consumer::open(ns.ns(), "f", co)); ++i)
        std::this_thread::sleep_for(5ms);  // the killed holder may not be reaped yet
      if (!c) return 2;
      uint64_t first = c->next_seq(), expected = first;
      progress.put(&first, sizeof first);
      if (first == kTotal) return 0;  // an earlier reader finished before it was killed
      Record rec;
      for (;;) {
        ReadStatus st = c->poll(&rec, 5s);
        if (st != ReadStatus::kOk) return 3;
        Msg m;
        std::memcpy(&m, rec.data.data(), sizeof m);
        if (m.index != rec.seq || m.check != test::msg_check(0, m.index)) return 4;
        if (rec.seq != expected) return 5;  // a durable consumer never skips
        expected = rec.seq + 1;
        if (rec.seq + 1 == kTotal) return 0;
      }
    });
    uint64_t first;
    ASSERT_TRUE(progress.get(&first, sizeof first));
    resumed_ok += first > 0;
    if (last_round) {
      EXPECT_EQ(test::reap(reader), 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    kill(reader, SIGKILL);
    test::reap(reader);
  }
  EXPECT_EQ(test::reap(prod), 0);
  EXPECT_GT(resumed_ok, 0u);
  auto info = stream_info(ns.ns(), "f");
  EXPECT_EQ(info->evictions, 0u);
}

TEST(Faults, DurableConsumerKilledAndRestarted) { consumer_kill_rounds(4, 3); }
TEST(Faults, DISABLED_SoakDurableConsumerKilledHundredsOfTimes) { consumer_kill_rounds(200, 11); }

// A tailing reader killed at any point never slows the producer.
TEST(Faults, TailingReaderKilledDoesNotHoldProducers) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "f", fault_opts()));
  pid_t t = test::spawn([&] {
    auto c = Consumer::open(ns.ns(), "f");
    Record rec;
    for (;;) (void)c->poll(&rec, 1s);
    return 0;
  });
  std::this_thread::sleep_for(20ms);
  kill(t, SIGKILL);
  test::reap(t);
  ProducerOptions po;
  po.when_full = FullPolicy::kFail;
  auto p = Producer::open(ns.ns(), "f");
  for (int i = 0; i < 20000; ++i) ASSERT_TRUE(p->publish(test::as_bytes("x")).ok()) << i;
}

}  // namespace
}  // namespace shmbus

namespace shmbus {
namespace {

using namespace std::chrono_literals;

// Defect 4: a killed producer holds the stream for at most one abandon timeout, however
// many claims it left pending (the stuck timer used to restart at every one of them).
// Returns how long a consumer starting at `latest` waited for a record published after
// the kill.
std::chrono::steady_clock::duration stall_after_kill(const std::string& ns, pid_t victim) {
  kill(victim, SIGKILL);
  EXPECT_EQ(test::reap(victim), 128 + SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  auto c = Consumer::open(ns, "f", ConsumerOptions{{}, StartFrom::latest()});
  EXPECT_TRUE(c);
  auto p = Producer::open(ns, "f");
  EXPECT_TRUE(p->publish(test::as_bytes("marker"), 7).ok());
  Record rec;
  for (;;) {
    ReadStatus st = c->poll(&rec, 30s);
    EXPECT_NE(st, ReadStatus::kTimeout);
    if (st == ReadStatus::kTimeout || (st == ReadStatus::kOk && rec.type == 7)) break;
  }
  return std::chrono::steady_clock::now() - t0;
}

TEST(Faults, SixteenPendingClaimsCostOneAbandonTimeout) {
  test::ScopedNs ns;
  StreamOptions so;
  so.capacity = 1 << 16;
  so.abandon_timeout = 300ms;
  ASSERT_TRUE(create_stream(ns.ns(), "f", so));
  test::Pipe claimed;
  pid_t victim = test::spawn([&] {
    auto p = Producer::open(ns.ns(), "f");
    std::vector<Claim> held;
    for (int i = 0; i < 16; ++i) {
      PubStatus st;
      held.push_back(p->claim(24, 0, &st));
    }
    char one = 1;
    claimed.put(&one, 1);
    pause();
    return 0;
  });
  char one;
  ASSERT_TRUE(claimed.get(&one, 1));
  const auto stall = stall_after_kill(ns.ns(), victim);
  // One timeout, with a second of room for a loaded machine's scheduling (the CI ran it at
  // 807 ms against a 200 ms timeout below with builds beside it); before the fix each
  // claim cost its own timeout: 16 x 300 ms = 4.8 s.
  EXPECT_LT(stall, 300ms * 2 + 1000ms) << "16 claims cost "
                                      << std::chrono::duration_cast<std::chrono::milliseconds>(stall).count()
                                      << " ms";
  EXPECT_EQ(stream_info(ns.ns(), "f")->abandoned, 16u);
}

TEST(Faults, KillDuringPublishBatchCostsOneAbandonTimeout) {
  for (int round = 0; round < 4; ++round) {
    test::ScopedNs ns;
    StreamOptions so;
    so.capacity = 1 << 16;
    so.abandon_timeout = 200ms;
    ASSERT_TRUE(create_stream(ns.ns(), "f", so));
    test::Pipe started;
    pid_t victim = test::spawn([&] {
      auto p = Producer::open(ns.ns(), "f");
      std::vector<std::string> bodies(256, std::string(64, 'b'));
      std::vector<Bytes> batch;
      for (auto& b : bodies) batch.push_back(test::as_bytes(b));
      char one = 1;
      started.put(&one, 1);
      for (;;) (void)p->publish_batch(batch);
      return 0;
    });
    char one;
    ASSERT_TRUE(started.get(&one, 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + 7 * round));
    const auto stall = stall_after_kill(ns.ns(), victim);
    // Before the fix: one timeout per pending claim (15 s seen for a batch of 256).
    EXPECT_LT(stall, 200ms * 2 + 1000ms)
        << "round " << round << ": "
        << std::chrono::duration_cast<std::chrono::milliseconds>(stall).count() << " ms";
  }
}

}  // namespace
}  // namespace shmbus

#include "layout.h"
#include "mapping.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;

// A child of fork() that polls the consumer it inherited announces nothing in the
// sleepers word: before, it set and then withdrew its parent's bit, and the parent,
// asleep in the same consumer's poll, slept past every later record until its nap ran
// out (a review of e5214fc: until its poll's deadline there).  Naps of 10 s here.
TEST(Faults, AChildPollingAnInheritedConsumerLeavesItsParentsWakeUpsAlone) {
  test::ScopedNs ns;
  StreamOptions so;
  so.capacity = 1 << 16;
  so.abandon_timeout = 10s;
  ASSERT_TRUE(create_stream(ns.ns(), "f", so));
  auto m = StreamMapping::open(ns.ns(), "f", true);
  ASSERT_TRUE(m);
  const detail::StreamHeader* h = m.value()->header();
  for (const bool durable : {false, true}) {
    SCOPED_TRACE(durable ? "durable" : "tailing");
    ConsumerOptions co;
    if (durable) co.group = "g";
    co.start = StartFrom::latest();  // not the record of the round before
    co.wait = WaitStrategy::kBlock;
    auto c = Consumer::open(ns.ns(), "f", co);
    auto p = Producer::open(ns.ns(), "f");
    ASSERT_TRUE(c && p);
    ReadStatus st = ReadStatus::kTimeout;
    std::atomic<int64_t> got{0};
    std::thread t([&] {
      Record r;
      st = c->poll(&r, 20s);
      got = std::chrono::steady_clock::now().time_since_epoch().count();
    });
    // The parent's poll announced itself (then sleeps: its re-check comes right after).
    const auto t0 = std::chrono::steady_clock::now();
    while (h->data_sleepers.load() == 0 && std::chrono::steady_clock::now() - t0 < 5s) {
    }
    if (h->data_sleepers.load() == 0) {
      (void)p->publish(test::as_bytes("x"));
      t.join();
      FAIL() << "the parent's poll never announced itself (status " << static_cast<int>(st) << ")";
    }
    std::this_thread::sleep_for(50ms);
    const pid_t kid = test::spawn([&] {
      Record r;
      const ReadStatus s = c->poll(&r, 200ms);  // the inherited consumer: nothing to read
      return s == ReadStatus::kTimeout || s == ReadStatus::kClosed ? 0 : 1;
    });
    ASSERT_EQ(test::reap(kid), 0);
    const auto pub = std::chrono::steady_clock::now();
    ASSERT_TRUE(p->publish(test::as_bytes("x")).ok());
    t.join();
    EXPECT_EQ(st, ReadStatus::kOk);
    EXPECT_LT(std::chrono::nanoseconds(got.load()) - pub.time_since_epoch(), 3s)
        << "the parent slept past the record";
  }
}

// Defect 5: a participant killed while asleep left its waiter count raised for ever, and
// every later publish (commit, durable mark) made a futex call.  A waker bumps the futex
// word before each FUTEX_WAKE, so an unchanged word over many publishes means no call.
TEST(Faults, KilledSleepersLeaveNoWakeCallsBehind) {
  test::ScopedNs ns;
  StreamOptions so;
  so.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "f", so));
  auto m = StreamMapping::open(ns.ns(), "f", true);
  ASSERT_TRUE(m);
  const detail::StreamHeader* h = m.value()->header();
  auto settle = [] { std::this_thread::sleep_for(300ms); };  // the victims fall asleep

  // A consumer asleep in poll().
  pid_t reader = test::spawn([&] {
    ConsumerOptions co;
    co.group = "sleeper";
    co.start = StartFrom::latest();
    auto c = Consumer::open(ns.ns(), "f", co);
    Record r;
    (void)c->poll(&r, 60s);
    return 0;
  });
  // A producer asleep in wait_durable().
  pid_t durable = test::spawn([&] {
    auto p = Producer::open(ns.ns(), "f");
    (void)p->wait_durable(1000, 60s);
    return 0;
  });
  settle();
  kill(reader, SIGKILL);
  kill(durable, SIGKILL);
  test::reap(reader);
  test::reap(durable);

  auto p = Producer::open(ns.ns(), "f");
  auto ctl = StreamControl::open(ns.ns(), "f");
  ASSERT_TRUE(p->publish(test::as_bytes("x")).ok());  // may wake (and find nobody)
  ctl->set_durable_seq(1);
  const uint32_t data0 = h->data_futex.load(), dur0 = h->durable_futex.load();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(p->publish(test::as_bytes("x")).ok());
    ctl->set_durable_seq(2 + i);
  }
  EXPECT_EQ(h->data_futex.load(), data0) << "publish still calls FUTEX_WAKE";
  EXPECT_EQ(h->durable_futex.load(), dur0) << "set_durable_seq still calls FUTEX_WAKE";
}

TEST(Faults, KilledProducerWaitingForRoomLeavesNoWakeCallsBehind) {
  test::ScopedNs ns;
  StreamOptions so;
  so.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "f", so));
  auto m = StreamMapping::open(ns.ns(), "f", true);
  const detail::StreamHeader* h = m.value()->header();
  ConsumerOptions co;
  co.group = "g";
  auto c = Consumer::open(ns.ns(), "f", co);  // holds producers back
  pid_t writer = test::spawn([&] {
    ProducerOptions po;
    po.full_timeout = 60s;
    auto p = Producer::open(ns.ns(), "f", po);
    std::string big(1000, 'x');
    for (;;) (void)p->publish(test::as_bytes(big));  // fills the ring, then sleeps
    return 0;
  });
  std::this_thread::sleep_for(500ms);
  kill(writer, SIGKILL);
  test::reap(writer);
  Record r;
  ASSERT_EQ(c->poll(&r, 1s), ReadStatus::kOk);
  ASSERT_EQ(c->poll(&r, 1s), ReadStatus::kOk);  // commits the first: may wake (nobody)
  const uint32_t space0 = h->space_futex.load();
  for (int i = 0; i < 20; ++i) ASSERT_EQ(c->poll(&r, 1s), ReadStatus::kOk);
  EXPECT_EQ(h->space_futex.load(), space0) << "a consumer's commit still calls FUTEX_WAKE";
}

}  // namespace
}  // namespace shmbus

#include <sched.h>
#include <sys/mount.h>

namespace shmbus {
namespace {

using namespace std::chrono_literals;

// Defect 8: liveness rested on pids, so a live durable consumer in another PID namespace
// (two containers sharing /dev/shm) was evicted and its records overwritten.  The slot's
// OFD lock says it lives, whatever pid it has here.
TEST(Faults, DurableConsumerInAnotherPidNamespaceIsNotEvicted) {
  test::ScopedNs ns;
  StreamOptions so;
  so.capacity = 1 << 16;
  so.consumer_dead_timeout = 200ms;
  ASSERT_TRUE(create_stream(ns.ns(), "f", so));
  auto p0 = Producer::open(ns.ns(), "f");
  ASSERT_TRUE(p0->publish(test::as_bytes("held")).ok());
  test::Pipe ready, done;
  pid_t outer = test::spawn([&] {
    // A PID namespace with its own /proc, as a container has (so that pids read there
    // mean nothing here).
    if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      char no = 2;
      ready.put(&no, 1);
      return 0;
    }
    pid_t inner = test::spawn([&] {  // pid 1 of the new namespace
      if (mount("proc", "/proc", "proc", 0, nullptr) != 0) return 5;
      ConsumerOptions co;
      co.group = "far";
      co.start = StartFrom::earliest();
      auto c = Consumer::open(ns.ns(), "f", co);
      Record rec;
      if (!c || c->poll(&rec, 1s) != ReadStatus::kOk) return 1;
      const std::string before = test::as_string(rec.data);
      char one = getpid() == 1 ? 1 : 3;
      ready.put(&one, 1);
      char go;
      (void)done.get(&go, 1, std::chrono::seconds(30));
      return test::as_string(rec.data) == before ? 0 : 4;  // the held record never changed
    });
    return test::reap(inner);
  });
  char r = 0;
  ASSERT_TRUE(ready.get(&r, 1));
  if (r == 2) {
    test::reap(outer);
    GTEST_SKIP() << "cannot create a PID namespace here (needs root)";
  }
  ASSERT_EQ(r, 1);
  std::this_thread::sleep_for(400ms);  // past the consumer dead timeout
  ProducerOptions po;
  po.full_timeout = 500ms;
  auto p = Producer::open(ns.ns(), "f", po);
  std::string big(1000, 'x');
  int full = 0;
  for (int i = 0; i < 200 && !full; ++i) full += p->publish(test::as_bytes(big)).status == PubStatus::kFull;
  EXPECT_EQ(full, 1) << "the consumer in the other namespace was evicted";
  char go = 1;
  done.put(&go, 1);
  EXPECT_EQ(test::reap(outer), 0);
  EXPECT_EQ(stream_info(ns.ns(), "f")->evictions, 0u);
}

}  // namespace
}  // namespace shmbus
