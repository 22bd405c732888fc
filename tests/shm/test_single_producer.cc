// Single-producer streams (StreamOptions::single_producer): one producer at a time, which
// publishes with plain stores; blocking consumers complete the wake-up handshake with
// membarrier(2).  Each promise of stream.h attacked: a second producer, a kill -9 in the
// middle of a record, a fork, every publish form across laps, and wake-ups racing sleeps.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "layout.h"
#include "mapping.h"
#include "mp_util.h"
#include "../common/scratch.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;

StreamOptions sp_opts(uint64_t cap = 1 << 16) {
  StreamOptions so;
  so.capacity = cap;
  so.abandon_timeout = 50ms;
  so.consumer_dead_timeout = 200ms;
  so.single_producer = true;
  return so;
}

// Producers count their records where the stream's layout keeps the counters: a layout 4
// stream's (multi-producer, or an earlier build's) on the slot's first line, a
// single-producer one's on its second line, off the line that readers load on every
// catch-up.
TEST(SingleProducer, ProducerCountersAreWhereTheLayoutKeepsThem) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "new", sp_opts()));
  ASSERT_TRUE(create_stream(ns.ns(), "old", StreamOptions{}));  // multi-producer: layout 4
  for (const char* name : {"new", "old"}) {
    SCOPED_TRACE(name);
    auto p = Producer::open(ns.ns(), name);
    ASSERT_TRUE(p);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(p->publish(std::string_view("abc")).ok());
    auto info = stream_info(ns.ns(), name);
    ASSERT_TRUE(info);
    ASSERT_EQ(info->producers.size(), 1u);
    EXPECT_EQ(info->producers[0].records, 5u);
    EXPECT_EQ(info->producers[0].bytes, 15u);
    EXPECT_GT(info->producers[0].last_active_ns, 0u);
    auto m = StreamMapping::open(ns.ns(), name, true);
    ASSERT_TRUE(m);
    const detail::ProducerSlot* slot = m.value()->producer_slot(0);
    const bool layout4 = std::string(name) == "old";
    EXPECT_EQ(slot->records.load(), layout4 ? 5u : 0u);
    EXPECT_EQ(slot->line1_records.load(), layout4 ? 0u : 5u);
    EXPECT_EQ(info->layout_version, layout4 ? detail::kLayoutVersion4 : detail::kLayoutVersion);
  }
  for (const char* name : {"new", "old"}) {  // a closed producer's counts are retired
    auto info = stream_info(ns.ns(), name);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->records_published, 5u) << name;
  }
}

TEST(SingleProducer, IsRecordedInTheHeaderAndInStat) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", sp_opts()));
  ASSERT_TRUE(create_stream(ns.ns(), "m", StreamOptions{}));
  auto s = stream_info(ns.ns(), "s");
  auto m = stream_info(ns.ns(), "m");
  ASSERT_TRUE(s && m);
  EXPECT_TRUE(s->single_producer);
  EXPECT_EQ(s->layout_version, detail::kLayoutVersion);
  EXPECT_FALSE(m->single_producer);
  // A stream without flags keeps the bytes (and version) of layout 4, so that builds
  // that read only version 4 still open it.
  EXPECT_EQ(m->layout_version, detail::kLayoutVersion4);
  // exist_ok does not turn one kind into the other.
  StreamOptions again = sp_opts();
  again.exist_ok = true;
  EXPECT_TRUE(create_stream(ns.ns(), "s", again));
  StreamOptions other;
  other.exist_ok = true;
  other.capacity = sp_opts().capacity;
  auto r = create_stream(ns.ns(), "s", other);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("single-producer"), std::string::npos) << r.error().message;
}

TEST(SingleProducer, UnknownFlagsAndFlagsInVersion4AreRefused) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", sp_opts()));
  {
    auto m = StreamMapping::open(ns.ns(), "s", false);
    ASSERT_TRUE(m);
    m.value()->header()->flags |= 0x80;
  }
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Errc::kIncompatible);
  EXPECT_NE(p.error().message.find("flags"), std::string::npos) << p.error().message;
  {
    auto m = StreamMapping::open(ns.ns(), "s", true);
    EXPECT_FALSE(m);
  }
  // A version 4 stream (flags 0) is used as version 4 asks (CAS16 commits: its producers
  // may be of a build that does not barrier for plain ones); with a flag it is refused.
  ASSERT_TRUE(create_stream(ns.ns(), "v4", StreamOptions{}));
  auto m4 = StreamMapping::open(ns.ns(), "v4", false);
  ASSERT_TRUE(m4);
  EXPECT_FALSE(m4.value()->plain_commits());
  {
    auto p4 = Producer::open(ns.ns(), "v4");
    ConsumerOptions co;
    co.group = "g";
    auto c4 = Consumer::open(ns.ns(), "v4", co);
    ASSERT_TRUE(p4 && c4);
    auto info = stream_info(ns.ns(), "v4");
    EXPECT_EQ(info->layout_version, detail::kLayoutVersion4);
    for (uint64_t i = 0; i < 3000; ++i) {  // laps of the 64 KiB ring: commits and floors
      ASSERT_TRUE(p4->publish(std::string_view("v4 record")).ok());
      Record r;
      ASSERT_EQ(c4->poll(&r, 1s), ReadStatus::kOk);
      ASSERT_EQ(r.seq, i);
    }
  }
  m4.value()->header()->flags = detail::kFlagSingleProducer;  // version 4 has no flags
  auto q = Consumer::open(ns.ns(), "v4", ConsumerOptions{});
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().code, Errc::kIncompatible);
}

TEST(SingleProducer, ASecondProducerIsRefusedWhileTheFirstLives) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", sp_opts()));
  auto p1 = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p1);
  auto p2 = Producer::open(ns.ns(), "s");  // this process
  ASSERT_FALSE(p2);
  EXPECT_EQ(p2.error().code, Errc::kBusy);
  EXPECT_NE(p2.error().message.find("single-producer"), std::string::npos) << p2.error().message;
  EXPECT_NE(p2.error().message.find(std::to_string(getpid())), std::string::npos);
  pid_t other = test::spawn([&] {  // another process
    auto p = Producer::open(ns.ns(), "s");
    return !p && p.error().code == Errc::kBusy ? 0 : 1;
  });
  EXPECT_EQ(test::reap(other), 0);
  p1->close();
  auto p3 = Producer::open(ns.ns(), "s");
  EXPECT_TRUE(p3);
  // A multi-producer stream takes many.
  ASSERT_TRUE(create_stream(ns.ns(), "m", StreamOptions{}));
  auto a = Producer::open(ns.ns(), "m");
  auto b = Producer::open(ns.ns(), "m");
  EXPECT_TRUE(a && b);
}

// A forked child must not publish with its parent's producer beside it (plain stores
// from two processes would collide): its publishes are refused, and it opens a producer
// of its own (on a single-producer stream: not while the parent's lives).
// On a multi-producer stream too (found by a review): a child's abort of an inherited
// claim turned it into a gap that the parent's commit then brought back, and a child's
// stale commit a lap later overwrote a newer record's tag.
void forked_child_leaves_its_parents_producer(bool single) {
  test::ScopedNs ns;
  StreamOptions so = sp_opts();
  so.single_producer = single;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->publish(std::string_view("before")).ok());
  // A claim open across the fork stays the parent's: the child can neither commit nor
  // abort it (nor does its copy abort it when destroyed).
  PubStatus st;
  Claim open = p->claim(5, 0, &st);
  ASSERT_EQ(st, PubStatus::kOk);
  std::memcpy(open.data().data(), "after", 5);
  Claim other = p->claim(5, 0, &st);
  ASSERT_EQ(st, PubStatus::kOk);
  std::memcpy(other.data().data(), "other", 5);
  pid_t child = test::spawn([&] {
    if (p->publish(std::string_view("child")).status != PubStatus::kClosed) return 1;
    auto own = Producer::open(ns.ns(), "s");
    if (single ? (own || own.error().code != Errc::kBusy) : !own) return 2;
    std::memcpy(open.data().data(), "CHILD", 5);  // the ring is shared: the parent
                                                  // writes its bytes again below
    if (open.commit(3) != PubStatus::kClosed) return 3;
    if (other.abort() != PubStatus::kClosed) return 5;
    PubStatus cs;
    Claim mine = p->claim(4, 0, &cs);
    if (cs != PubStatus::kClosed) return 4;
    { Claim gone = std::move(open); }  // its destructor aborts nothing either
    return 0;
  });
  EXPECT_EQ(test::reap(child), 0);
  std::memcpy(open.data().data(), "after", 5);
  ASSERT_EQ(open.commit(), PubStatus::kOk);
  ASSERT_EQ(other.commit(), PubStatus::kOk);
  auto c = Consumer::open(ns.ns(), "s", ConsumerOptions{});
  ASSERT_TRUE(c);
  Record r;
  ASSERT_EQ(c->poll(&r, 1s), ReadStatus::kOk);
  EXPECT_EQ(r.seq, 0u);
  ASSERT_EQ(c->poll(&r, 1s), ReadStatus::kOk);
  EXPECT_EQ(r.seq, 1u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r.data.data()), r.data.size()), "after");
  ASSERT_EQ(c->poll(&r, 1s), ReadStatus::kOk);
  EXPECT_EQ(r.seq, 2u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r.data.data()), r.data.size()), "other");
  EXPECT_EQ(c->gaps(), 0u);
  EXPECT_EQ(stream_info(ns.ns(), "s")->aborted, 0u);
}

TEST(SingleProducer, AForkedChildDoesNotPublishBesideItsParent) {
  forked_child_leaves_its_parents_producer(true);
}
TEST(MultiProducer, AForkedChildDoesNotPublishBesideItsParent) {
  forked_child_leaves_its_parents_producer(false);
}

// Every publish form, records of every size class, many laps and wraps of a small ring:
// a durable group and a tailing reader see each sequence once, in order, intact; aborted
// claims are gaps.
TEST(SingleProducer, EveryPublishFormAcrossLapsArrivesIntact) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", sp_opts(1 << 14)));
  ConsumerOptions dc;
  dc.group = "g";
  dc.wait = WaitStrategy::kBusySpin;
  auto d = Consumer::open(ns.ns(), "s", dc);
  ASSERT_TRUE(d);
  constexpr uint64_t kRecords = 60000;
  std::atomic<uint64_t> expected_gaps{0};
  std::atomic<bool> failed{false};
  std::thread producer([&] {
    auto p = Producer::open(ns.ns(), "s");
    if (!p) { failed = true; return; }
    std::mt19937_64 rng(7);
    std::vector<std::byte> buf(1500);
    uint64_t i = 0;
    auto fill = [&](std::byte* to, size_t n, uint64_t seq) {
      for (size_t k = 0; k < n; ++k) to[k] = std::byte(static_cast<uint8_t>(seq * 31 + k));
    };
    while (i < kRecords && !failed) {
      const uint64_t op = rng() % 10;
      const size_t n = 8 + rng() % (op < 5 ? 64 : 1400);
      if (op < 5) {
        fill(buf.data(), n, i);
        const PubResult r = p->publish(Bytes(buf.data(), n));
        if (!r.ok() || r.seq != i) failed = true;
        ++i;
      } else if (op < 7) {
        const size_t k = 1 + rng() % 16;
        std::vector<std::vector<std::byte>> bs(k);
        std::vector<Bytes> views;
        for (size_t j = 0; j < k; ++j) {
          bs[j].resize(8 + rng() % 200);
          fill(bs[j].data(), bs[j].size(), i + j);
          views.emplace_back(bs[j].data(), bs[j].size());
        }
        const PubResult r = p->publish_batch(views);
        if (!r.ok() || r.seq != i) failed = true;
        i += k;
      } else {
        PubStatus st;
        Claim cl = p->claim(n, 0, &st);
        if (st != PubStatus::kOk) { failed = true; break; }
        const size_t used = op == 9 ? n / 2 : n;
        fill(cl.data().data(), used, i);
        if (op == 8) {
          if (cl.abort() != PubStatus::kOk) failed = true;
          ++expected_gaps;
        } else if (cl.commit(used) != PubStatus::kOk) {
          failed = true;
        }
        ++i;
      }
    }
  });
  uint64_t next = 0, gaps_seen = 0;
  Record r;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (!failed && next < kRecords && std::chrono::steady_clock::now() < deadline) {
    const ReadStatus st = d->poll(&r, 100ms);
    if (st == ReadStatus::kTimeout) continue;
    ASSERT_EQ(st, ReadStatus::kOk);
    ASSERT_GE(r.seq, next);
    gaps_seen += r.seq - next;
    for (size_t k = 0; k < r.data.size(); ++k)
      ASSERT_EQ(r.data[k], std::byte(static_cast<uint8_t>(r.seq * 31 + k))) << r.seq << " byte " << k;
    next = r.seq + 1;
  }
  producer.join();
  EXPECT_FALSE(failed.load());
  // The last records may be aborted claims: nothing after them to show the gap.
  EXPECT_GE(next + 64, kRecords);
  EXPECT_LE(gaps_seen, expected_gaps.load());
  EXPECT_EQ(gaps_seen, d->gaps());
}

// kill -9 of the single producer between claim and commit, then another process taking
// the stream over: Faults/ProducerKilledBetweenClaimAndCommit.*/single_* (test_faults.cc);
// kills at every other step of a publish: chaos_bounded_single_producer.

// The wake-up handshake without a fence on the producer's side: a blocking consumer in
// another process goes to sleep before each record; the producer publishes at once when
// it sees the consumer's sleeper bit (and at small random delays after it), the race
// window of a lost wake-up.  A lost one would cost the consumer the rest of its nap (up to
// 10 s, the stream's abandon timeout) asleep: no round may spend 90 ms (60 ms after a
// signal, see below) that the consumer did not spend waiting for a CPU (its run delay
// from /proc/self/schedstat: a loaded machine delays, it does not lose).
// ns this process waited on a run queue (field 2 of /proc/self/schedstat); 0 if unknown.
uint64_t run_delay_ns() {
  FILE* f = std::fopen("/proc/self/schedstat", "r");
  if (!f) return 0;
  unsigned long long run = 0, wait = 0;
  const int n = std::fscanf(f, "%llu %llu", &run, &wait);
  std::fclose(f);
  return n == 2 ? wait : 0;
}

// Producers of every stream commit by a plain store and, once registered, load
// data_sleepers without a fence; the consumer's membarrier completes the handshake.
void woken_for_every_record(bool single) {
  test::ScopedNs ns;
  StreamOptions so = sp_opts();
  so.single_producer = single;
  // Naps of 10 s (the abandon timeout): a lost wake-up costs up to that, not up to 50 ms
  // (sp_opts()), which no round's 60-90 ms limit would see (a review of de7c6f1).
  so.abandon_timeout = 10s;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  constexpr uint64_t kRounds = 400;
  test::Pipe acks;
  pid_t consumer = test::spawn([&] {
    // A handler without SA_RESTART: SIGUSR1 ends the consumer's FUTEX_WAIT with EINTR.
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    if (sigaction(SIGUSR1, &sa, nullptr) != 0) return 3;
    ConsumerOptions co;
    co.group = "g";
    co.wait = WaitStrategy::kBlock;
    auto c = Consumer::open(ns.ns(), "s", co);
    if (!c) return 1;
    Record r;
    for (uint64_t i = 0; i < kRounds; ++i) {
      const uint64_t before = run_delay_ns();
      if (c->poll(&r, 20s) != ReadStatus::kOk || r.seq != i) return 2;
      const uint64_t ack[2] = {i, run_delay_ns() - before};
      acks.put(ack, sizeof ack);
    }
    return 0;
  });
  auto mr = StreamMapping::open(ns.ns(), "s", true);
  ASSERT_TRUE(mr);
  detail::StreamHeader* h = mr.value()->header();
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  std::mt19937_64 rng(11);
  uint64_t slow = 0;
  auto worst = std::chrono::nanoseconds(0);
  for (uint64_t i = 0; i < kRounds; ++i) {
    // Every other round: wait until the consumer announced itself asleep (its bit),
    // then publish after 0..4000 pauses; else publish after 0..40000 pauses from its
    // last ack, somewhere in its spinning, yielding, announcing or sleeping.
    // Every 20th: 30 ms after its bit, a signal ends the consumer's futex wait; nothing
    // changed, it sleeps again without a new barrier (sleep_announced()): publish 1-6 ms
    // into that second sleep, where a lost wake-up costs it the rest of its poll.
    const bool after_bit = i % 2 == 0;
    const bool after_signal = i % 20 == 5;
    const auto wait_until = std::chrono::steady_clock::now() + 10s;
    while ((after_bit || after_signal) && h->data_sleepers.load(std::memory_order_seq_cst) == 0 &&
           std::chrono::steady_clock::now() < wait_until) {
    }
    if (after_signal) {
      std::this_thread::sleep_for(30ms);
      ASSERT_EQ(kill(consumer, SIGUSR1), 0);
      std::this_thread::sleep_for(1ms + std::chrono::milliseconds(rng() % 5));
    }
    const uint32_t spins = static_cast<uint32_t>(rng() % (after_bit ? 4000 : 40000));
    for (uint32_t k = 0; k < spins; ++k) __builtin_ia32_pause();
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(p->publish(std::string_view("x")).ok());
    uint64_t ack[2] = {~0ULL, 0};
    ASSERT_TRUE(acks.get(ack, sizeof ack, 30s));
    ASSERT_EQ(ack[0], i);
    const auto took = std::chrono::steady_clock::now() - t0;
    // Less the time the consumer was runnable but not running during its poll.
    const auto asleep = took - std::chrono::nanoseconds(ack[1]);
    worst = std::max(worst, std::chrono::duration_cast<std::chrono::nanoseconds>(asleep));
    if (asleep >= (after_signal ? 60ms : 90ms)) ++slow;
  }
  EXPECT_EQ(test::reap(consumer), 0);
  EXPECT_EQ(slow, 0u) << "rounds that took a nap (a lost wake-up); worst "
                      << std::chrono::duration_cast<std::chrono::microseconds>(worst).count() << " us";
}

TEST(SingleProducer, BlockingConsumerIsWokenForEveryRecord) { woken_for_every_record(true); }
TEST(MultiProducer, BlockingConsumerIsWokenForEveryRecord) { woken_for_every_record(false); }

}  // namespace
}  // namespace shmbus
