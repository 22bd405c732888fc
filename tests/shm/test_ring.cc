// In-process tests of the ring: records, sequences, wrap, backpressure, laps, gaps.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../common/scratch.h"
#include "shmbus/detail/stream_control.h"
#include "ring_util.h"
#include "layout.h"
#include "ring.h"
#include "mapping.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;
using test::as_string;
using test::durable;
using test::small;
using test::tailing;

TEST(Ring, PublishThenReadRoundTrip) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small()));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p) << p.error().message;
  auto c = Consumer::open(ns.ns(), "s", tailing());
  ASSERT_TRUE(c) << c.error().message;
  for (int i = 0; i < 10; ++i) {
    auto r = p->publish(as_bytes("msg" + std::to_string(i)), 7);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.seq, static_cast<uint64_t>(i));
  }
  for (int i = 0; i < 10; ++i) {
    Record rec;
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, static_cast<uint64_t>(i));
    EXPECT_EQ(rec.type, 7u);
    EXPECT_EQ(as_string(rec.data), "msg" + std::to_string(i));
    EXPECT_GT(rec.ts_ns, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(rec.data.data()) % 8, 0u);
  }
  Record rec;
  EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);
  EXPECT_EQ(c->poll(&rec, 5ms), ReadStatus::kTimeout);
}

// Every size from 0 to the maximum, through many wraps, for both consumer kinds.
TEST(Ring, EveryRecordSizeAcrossWraps) {
  test::ScopedNs ns;
  const uint64_t max = 1000;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small(8192, max)));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  auto d = Consumer::open(ns.ns(), "s", durable("g"));
  ASSERT_TRUE(d);
  auto t = Consumer::open(ns.ns(), "s", tailing());
  ASSERT_TRUE(t);
  std::vector<std::byte> buf(max);
  uint64_t seq = 0;
  for (uint64_t size = 0; size <= max; ++size) {
    for (uint64_t i = 0; i < size; ++i) buf[i] = std::byte((size * 31 + i) & 0xff);
    auto r = p->publish(Bytes(buf.data(), size), static_cast<uint32_t>(size));
    ASSERT_TRUE(r.ok()) << "size " << size;
    ASSERT_EQ(r.seq, seq);
    for (Consumer* c : {&d.value(), &t.value()}) {
      Record rec;
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk) << "size " << size;
      ASSERT_EQ(rec.seq, seq);
      ASSERT_EQ(rec.type, size);
      ASSERT_EQ(rec.data.size(), size);
      for (uint64_t i = 0; i < size; ++i)
        ASSERT_EQ(rec.data[i], std::byte((size * 31 + i) & 0xff)) << size << " " << i;
    }
    ++seq;
  }
  EXPECT_EQ(p->publish(Bytes(buf.data(), 0), 0).seq, seq);
  std::vector<std::byte> big(max + 1);
  EXPECT_EQ(p->publish(Bytes(big.data(), big.size()), 0).status, PubStatus::kTooLarge);
  EXPECT_EQ(d->gaps(), 0u);
  EXPECT_EQ(t->lost(), 0u);
}

TEST(Ring, ClaimCommitAbortAndBatch) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small()));
  auto p = Producer::open(ns.ns(), "s");
  auto c = Consumer::open(ns.ns(), "s", tailing());
  ASSERT_TRUE(p && c);
  PubStatus st;
  {
    Claim cl = p->claim(5, 1, &st);
    ASSERT_EQ(st, PubStatus::kOk);
    std::memcpy(cl.data().data(), "hello", 5);
    EXPECT_EQ(cl.commit(), PubStatus::kOk);
  }
  {
    Claim cl = p->claim(3, 1, &st);
    ASSERT_EQ(st, PubStatus::kOk);
    EXPECT_EQ(cl.seq(), 1u);
    EXPECT_EQ(cl.abort(), PubStatus::kOk);
  }
  { Claim dropped = p->claim(3, 1, &st); }  // destroyed uncommitted: aborted
  std::vector<std::string> parts{"a", "bb", "ccc"};
  std::vector<Bytes> views;
  for (auto& s : parts) views.push_back(as_bytes(s));
  auto r = p->publish_batch(views, 9);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.seq, 3u);
  Record rec;
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
  EXPECT_EQ(as_string(rec.data), "hello");
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, 3u + i);
    EXPECT_EQ(as_string(rec.data), parts[i]);
  }
  EXPECT_EQ(c->gaps(), 2u);  // seqs 1 and 2 were aborted
  auto info = stream_info(ns.ns(), "s");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->aborted, 2u);
  EXPECT_EQ(info->next_seq, 6u);
}

// A tailing reader that falls a lap behind is told exactly how many records it lost.
TEST(Ring, TailingReaderLappedCountsExactLoss) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small(4096, 256)));
  auto p = Producer::open(ns.ns(), "s");
  auto t = Consumer::open(ns.ns(), "s", tailing());
  ASSERT_TRUE(p && t);
  std::string payload(64, 'y');
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(p->publish(as_bytes(payload)).ok());
  Record rec;
  ASSERT_EQ(t->poll(&rec, 0ns), ReadStatus::kLapped);
  const uint64_t lost = t->lost();
  uint64_t got = 0, first = ~0ULL;
  ReadStatus st;
  while ((st = t->poll(&rec, 0ns)) == ReadStatus::kOk) {
    if (first == ~0ULL) first = rec.seq;
    ++got;
  }
  EXPECT_EQ(st, ReadStatus::kTimeout);
  EXPECT_EQ(first, lost);            // records 0..lost-1 are gone, no more, no less
  EXPECT_EQ(lost + got, 1000u);
  EXPECT_EQ(stream_info(ns.ns(), "s")->tail_lost, lost);
}

// Issue 13 point 9: a claim sized for the largest message commits only the bytes
// written (it used to store the whole claim, NULs included); the rest of the claim is
// skipped by readers, also when the ring wraps over it, and a commit larger than the
// claim is refused.
TEST(Ring, ClaimCommitsFewerBytesThanClaimed) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small(4096, 512)));
  auto p = Producer::open(ns.ns(), "s");
  auto g = Consumer::open(ns.ns(), "s", durable("g"));
  auto t = Consumer::open(ns.ns(), "s", tailing());
  ASSERT_TRUE(p && g && t);
  PubStatus st;
  for (int i = 0; i < 100; ++i) {  // ~8 laps of the ring
    Claim cl = p->claim(300, 7, &st);
    ASSERT_EQ(st, PubStatus::kOk) << i;
    const std::string msg = "m" + std::to_string(i);
    std::memcpy(cl.data().data(), msg.data(), msg.size());
    EXPECT_EQ(cl.commit(301), PubStatus::kTooLarge);
    ASSERT_TRUE(cl.valid());
    ASSERT_EQ(cl.commit(msg.size()), PubStatus::kOk);
    ASSERT_TRUE(p->publish(as_bytes("after" + std::to_string(i))).ok());
    for (Consumer* c : {&g.value(), &t.value()}) {
      Record rec;
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk) << i;
      EXPECT_EQ(as_string(rec.data), msg);
      EXPECT_EQ(rec.type, 7u);
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk) << i;
      EXPECT_EQ(as_string(rec.data), "after" + std::to_string(i));
    }
    g->commit();
  }
  EXPECT_EQ(g->gaps(), 0u);
  EXPECT_EQ(t->gaps(), 0u);
  EXPECT_EQ(t->lost(), 0u);
  EXPECT_EQ(stream_info(ns.ns(), "s")->bytes_published, 0u + [] {
    uint64_t n = 0;
    for (int i = 0; i < 100; ++i) n += ("m" + std::to_string(i)).size() + ("after" + std::to_string(i)).size();
    return n;
  }());
}

// Issue 13 point 2: a start below the oldest record still in the ring says so, with the
// records skipped (it used to start at the oldest without a word).
TEST(Ring, StartBelowOldestIsReported) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small(4096, 256)));
  auto p = Producer::open(ns.ns(), "s");
  std::string payload(64, 'y');
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(p->publish(as_bytes(payload)).ok());
  const uint64_t oldest = stream_info(ns.ns(), "s")->oldest_seq;
  ASSERT_GT(oldest, 10u);
  for (ConsumerOptions co : {tailing(StartFrom::seq(0)), durable("newg")}) {
    co.start = StartFrom::seq(0);
    auto c = Consumer::open(ns.ns(), "s", co);
    ASSERT_TRUE(c);
    Record rec;
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kBeforeOldest) << co.group;
    EXPECT_EQ(c->last_loss().from, 0u);
    EXPECT_GE(c->last_loss().to, oldest);
    EXPECT_EQ(c->lost(), c->last_loss().to);
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, c->last_loss().to);
  }
  // A start still in the ring reports nothing.
  auto c = Consumer::open(ns.ns(), "s", tailing(StartFrom::seq(oldest + 1)));
  Record rec;
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, oldest + 1);
  EXPECT_EQ(c->lost(), 0u);
}

// A claim whose producer died is skipped after the abandon timeout.
TEST(Ring, AbandonedClaimBecomesGap) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small()));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p->publish(as_bytes("before")).ok());
  pid_t child = fork();
  if (child == 0) {
    auto cp = Producer::open(ns.ns(), "s");
    PubStatus st;
    Claim c = cp->claim(10, 0, &st);
    std::memset(c.data().data(), 'q', 10);
    _exit(0);  // dies holding the claim (no destructor runs)
  }
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(p->publish(as_bytes("after")).ok());
  auto c = Consumer::open(ns.ns(), "s", tailing());
  Record rec;
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
  EXPECT_EQ(as_string(rec.data), "before");
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(c->poll(&rec, 2s), ReadStatus::kOk);
  EXPECT_EQ(as_string(rec.data), "after");
  EXPECT_EQ(rec.seq, 2u);
  EXPECT_EQ(c->gaps(), 1u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 90ms);
  EXPECT_EQ(stream_info(ns.ns(), "s")->abandoned, 1u);
}

TEST(Ring, StartFromLatestSeqAndTime) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small(65536)));
  auto p = Producer::open(ns.ns(), "s");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(p->publish(as_bytes(std::to_string(i))).ok());
  const uint64_t mid = now_ns();
  std::this_thread::sleep_for(2ms);
  for (int i = 10; i < 20; ++i) ASSERT_TRUE(p->publish(as_bytes(std::to_string(i))).ok());
  Record rec;
  auto latest = Consumer::open(ns.ns(), "s", tailing(StartFrom::latest()));
  EXPECT_EQ(latest->poll(&rec, 0ns), ReadStatus::kTimeout);
  auto at = Consumer::open(ns.ns(), "s", tailing(StartFrom::seq(7)));
  ASSERT_EQ(at->poll(&rec, 0ns), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 7u);
  auto t = Consumer::open(ns.ns(), "s", tailing(StartFrom::time_ns(mid)));
  ASSERT_EQ(t->poll(&rec, 0ns), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 10u);
  ASSERT_TRUE(p->publish(as_bytes("20")).ok());
  ASSERT_EQ(latest->poll(&rec, 0ns), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 20u);
}

TEST(Ring, BlockingConsumerWakesOnPublish) {
  test::ScopedNs ns;
  StreamOptions so = small();
  so.abandon_timeout = 10s;  // naps of 10 s: a lost wake-up fails the poll below
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  auto p = Producer::open(ns.ns(), "s");
  ConsumerOptions o = tailing();
  o.wait = WaitStrategy::kBlock;
  auto c = Consumer::open(ns.ns(), "s", o);
  std::thread t([&] {
    std::this_thread::sleep_for(30ms);
    (void)p->publish(as_bytes("wake"));
  });
  Record rec;
  ASSERT_EQ(c->poll(&rec, 5s), ReadStatus::kOk);
  EXPECT_EQ(as_string(rec.data), "wake");
  t.join();
}

// An idle blocking consumer, once asleep, is woken by a record, its deadline, or the end
// of a nap as long as the stream's abandon timeout (what no waker reports: a producer
// killed between its commit and its wake-up, chaos_repro_killed_after_commit*), nothing
// else (bench/README.md: each wake-up costs this VM's thread up to ~1 ms of CPU).  On a
// stream whose abandon timeout is 2 s, a durable and a tailing reader's threads, once
// seen asleep in a poll of 4 s, make no voluntary context switch for 0.6 s (read from
// /proc; naps of 100 ms doubling to 1 s, until 2026-12-07, made 1-2 there), and at
// least one in the next 2 s (their nap ended: one FUTEX_WAIT to the deadline, e5214fc,
// made none).  Then a record wakes them.
std::string thread_status(pid_t tid, const char* key) {
  FILE* f = std::fopen(("/proc/self/task/" + std::to_string(tid) + "/status").c_str(), "r");
  if (!f) return "";
  char line[256];
  std::string v;
  const size_t n = std::strlen(key);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, key, n) == 0 && line[n] == ':') v = line + n + 1;
  std::fclose(f);
  return v;
}
uint64_t voluntary_switches(pid_t tid) {
  const std::string v = thread_status(tid, "voluntary_ctxt_switches");
  return v.empty() ? ~0ULL : std::strtoull(v.c_str(), nullptr, 10);
}
// Whether thread `tid` sleeps (state S) and has stayed asleep across 50 ms.
bool thread_asleep(pid_t tid) {
  const uint64_t before = voluntary_switches(tid);
  if (thread_status(tid, "State").find('S') == std::string::npos) return false;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return thread_status(tid, "State").find('S') != std::string::npos && voluntary_switches(tid) == before;
}

TEST(Ring, AnIdleBlockingConsumerSleepsAnAbandonTimeoutAtATime) {
  test::ScopedNs ns;
  StreamOptions so = small();
  so.abandon_timeout = std::chrono::seconds(2);
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  auto p = Producer::open(ns.ns(), "s");
  ConsumerOptions d = durable("g"), t = tailing();
  d.wait = t.wait = WaitStrategy::kBlock;
  auto cd = Consumer::open(ns.ns(), "s", d);
  auto ct = Consumer::open(ns.ns(), "s", t);
  ASSERT_TRUE(cd && ct);
  std::atomic<pid_t> tids[2] = {0, 0};
  ReadStatus idle[2], woken[2];
  Record recs[2];
  auto reader = [&](int i, Consumer* c) {
    tids[i].store(gettid());
    idle[i] = c->poll(&recs[i], 4000ms);
    woken[i] = c->poll(&recs[i], 20s);
  };
  std::thread a(reader, 0, &cd.value()), b(reader, 1, &ct.value());
  // Once both sleep (their spin and yield phase may take long on a loaded machine).
  const auto t0 = std::chrono::steady_clock::now();
  while ((tids[0] == 0 || tids[1] == 0 || !thread_asleep(tids[0]) || !thread_asleep(tids[1])) &&
         std::chrono::steady_clock::now() - t0 < 1200ms) {
  }
  const auto asleep_at = std::chrono::steady_clock::now() - t0;
  const uint64_t before[2] = {voluntary_switches(tids[0]), voluntary_switches(tids[1])};
  std::this_thread::sleep_for(600ms);
  const uint64_t after[2] = {voluntary_switches(tids[0]), voluntary_switches(tids[1])};
  std::this_thread::sleep_for(2000ms);  // their first nap (2 s, begun before `before`) ended
  const uint64_t napped[2] = {voluntary_switches(tids[0]), voluntary_switches(tids[1])};
  std::this_thread::sleep_until(t0 + 4500ms);  // both polls time out; then they sleep again
  ASSERT_TRUE(p->publish(as_bytes("wake")).ok());
  a.join();
  b.join();
  ASSERT_LT(asleep_at, 1200ms) << "the readers were not seen asleep in time";
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i == 0 ? "durable" : "tailing");
    ASSERT_NE(before[i], ~0ULL);
    EXPECT_EQ(after[i], before[i]) << "the idle consumer's thread woke while asleep";
    EXPECT_GT(napped[i], after[i]) << "no nap ended: a record whose waker died would wait for the deadline";
    EXPECT_EQ(idle[i], ReadStatus::kTimeout);
    EXPECT_EQ(woken[i], ReadStatus::kOk);
    EXPECT_EQ(as_string(recs[i].data), "wake");
  }
}

// A waker that judged a sleeper's slot dead clears its bit (wake_sleepers()); a consumer
// that took the slot and announced itself between that probe and the clear (a review of
// e5214fc: it then slept past every commit until its nap ran out) is woken by the clear
// itself and announces itself again.  Here the clear hits a live sleeper's bit directly.
TEST(Ring, ASleeperWhoseBitAnotherClearedAnnouncesItselfAgain) {
  test::ScopedNs ns;
  StreamOptions so = small();
  so.abandon_timeout = std::chrono::seconds(10);  // its naps: none in this test
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  auto m = StreamMapping::open(ns.ns(), "s", /*read_only=*/false);
  ASSERT_TRUE(m);
  detail::StreamHeader* h = m.value()->header();
  auto p = Producer::open(ns.ns(), "s");
  ConsumerOptions d = durable("g");
  d.wait = WaitStrategy::kBlock;
  auto c = Consumer::open(ns.ns(), "s", d);
  ASSERT_TRUE(c);
  std::atomic<pid_t> tid{0};
  ReadStatus st = ReadStatus::kTimeout;
  Record rec;
  std::atomic<int64_t> got_ns{0};
  std::thread reader([&] {
    tid.store(gettid());
    st = c->poll(&rec, 20s);
    got_ns = std::chrono::steady_clock::now().time_since_epoch().count();
  });
  const auto t0 = std::chrono::steady_clock::now();
  while ((tid == 0 || h->data_sleepers.load() == 0 || !thread_asleep(tid)) &&
         std::chrono::steady_clock::now() - t0 < 5s) {
  }
  const uint64_t bits = h->data_sleepers.load();
  if (bits == 0) {
    (void)p->publish(as_bytes("after"));
    reader.join();
    FAIL() << "the consumer never announced itself";
  }
  detail::clear_dead_sleepers(*m.value(), detail::Sleepers::kData, bits);
  bool again = false;
  for (auto t1 = std::chrono::steady_clock::now(); !again && std::chrono::steady_clock::now() - t1 < 3s;)
    again = (h->data_sleepers.load() & bits) == bits;
  const auto pub = std::chrono::steady_clock::now();
  ASSERT_TRUE(p->publish(as_bytes("after")).ok());
  reader.join();
  EXPECT_TRUE(again) << "the sleeper did not announce itself again";
  ASSERT_EQ(st, ReadStatus::kOk);
  EXPECT_EQ(as_string(rec.data), "after");
  EXPECT_LT(std::chrono::nanoseconds(got_ns.load()) - pub.time_since_epoch(), 3s)
      << "the record waited for the consumer's nap";
}

TEST(Ring, ConcurrentProducersKeepPerProducerOrder) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small(1 << 16)));
  auto d = Consumer::open(ns.ns(), "s", durable("g"));
  constexpr int kThreads = 3, kEach = 20000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      auto p = Producer::open(ns.ns(), "s");
      for (uint32_t i = 0; i < kEach; ++i) {
        uint32_t v[2] = {static_cast<uint32_t>(t), i};
        ASSERT_TRUE(p->publish(Bytes(reinterpret_cast<std::byte*>(v), sizeof v)).ok());
      }
    });
  std::vector<uint32_t> next(kThreads, 0);
  Record rec;
  for (uint64_t n = 0; n < kThreads * kEach; ++n) {
    ASSERT_EQ(d->poll(&rec, 5s), ReadStatus::kOk);
    ASSERT_EQ(rec.seq, n);
    uint32_t v[2];
    std::memcpy(v, rec.data.data(), sizeof v);
    ASSERT_EQ(v[1], next[v[0]]++);
  }
  for (auto& t : ts) t.join();
}

}  // namespace
}  // namespace shmbus

namespace shmbus {
namespace {

TEST(Control, PersistSettingsDurableSeqAndWatermark) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto ctl = StreamControl::open(ns.ns(), "s");
  ASSERT_TRUE(ctl);
  EXPECT_FALSE(ctl->persist());
  PersistSettings ps;
  ps.store_dir = "relative/not/allowed";
  EXPECT_FALSE(ctl->set_persist(ps));
  ps.store_dir = "/var/lib/x/ns/s";
  ps.store_kind = StoreKind::kPmem;
  ps.hold_producers = false;
  ps.retention_age = std::chrono::hours(1);
  ASSERT_TRUE(ctl->set_persist(ps));
  auto info = stream_info(ns.ns(), "s");
  ASSERT_TRUE(info->persist);
  EXPECT_EQ(info->persist->store_dir, "/var/lib/x/ns/s");
  EXPECT_EQ(info->persist->store_kind, StoreKind::kPmem);
  EXPECT_FALSE(info->persist->hold_producers);
  EXPECT_EQ(info->persist->retention_age, std::chrono::hours(1));
  ctl->raise_deleted_below(10);
  ctl->raise_deleted_below(5);
  EXPECT_EQ(ctl->deleted_below(), 10u);

  auto p = Producer::open(ns.ns(), "s");
  auto r = p->publish(test::as_bytes("x"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(p->wait_durable(r.seq, std::chrono::milliseconds(5)), PubStatus::kTimeout);
  std::thread persister([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ctl->set_durable_seq(r.seq + 1);
  });
  EXPECT_EQ(p->wait_durable(r.seq, std::chrono::seconds(5)), PubStatus::kOk);
  persister.join();
  EXPECT_EQ(stream_info(ns.ns(), "s")->durable_seq, 1u);
}

// `shmbus delete --before SEQ` on a stream: records below SEQ are never served again,
// from the ring too (a review: the ring served them, while `delete` said they would
// not be).  Every kind of reader skips them, as records below its start, without a loss;
// only the persister's own consumer reads them (its store applies the watermark).
TEST(Deletion, RecordsBelowTheWatermarkAreNeverServedFromTheRing) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small(1 << 16)));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  auto early_tail = Consumer::open(ns.ns(), "s", tailing());
  auto early_group = Consumer::open(ns.ns(), "s", durable("g"));
  ASSERT_TRUE(early_tail && early_group);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(p->publish(as_bytes("r" + std::to_string(i))).ok());
  Record rec;
  ASSERT_EQ(early_tail->poll(&rec, 0ns), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 0u);
  ASSERT_EQ(early_group->poll(&rec, 0ns), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 0u);

  auto ctl = StreamControl::open(ns.ns(), "s");
  ASSERT_TRUE(ctl);
  ASSERT_TRUE(ctl->raise_deleted_below(5));

  // The next record any reader gets is 5, then 6..9, and nothing counts as lost.
  auto expect_from_5 = [&](Consumer& c, const char* who) {
    SCOPED_TRACE(who);
    for (uint64_t q = 5; q < 10; ++q) {
      Record r;
      ASSERT_EQ(c.poll(&r, 0ns), ReadStatus::kOk);
      EXPECT_EQ(r.seq, q);
      EXPECT_EQ(as_string(r.data), "r" + std::to_string(q));
    }
    Record r;
    EXPECT_EQ(c.poll(&r, 0ns), ReadStatus::kTimeout);
    EXPECT_EQ(c.lost(), 0u);
  };
  expect_from_5(*early_tail, "a tailing reader that had read record 0");
  expect_from_5(*early_group, "a group that had read record 0");
  auto tail = Consumer::open(ns.ns(), "s", tailing());
  ASSERT_TRUE(tail);
  expect_from_5(*tail, "a new tailing reader from the oldest record");
  ConsumerOptions ro = tailing();
  ro.read_only = true;
  auto read_only = Consumer::open(ns.ns(), "s", ro);
  ASSERT_TRUE(read_only);
  expect_from_5(*read_only, "a read-only tailing reader");
  ConsumerOptions at2 = durable("h");
  at2.start = StartFrom::seq(2);
  auto group = Consumer::open(ns.ns(), "s", at2);
  ASSERT_TRUE(group);
  expect_from_5(*group, "a new group starting at sequence 2");
  {
    auto c = Consumer::open(ns.ns(), "s", tailing());
    ASSERT_TRUE(c);
    std::vector<uint64_t> seqs;  // (a tailing reader's first batches are short: its copy buffer grows)
    Record out[16];
    size_t n = 0;
    while (c->poll_batch(out, 16, &n, 0ns) == ReadStatus::kOk)
      for (size_t i = 0; i < n; ++i) seqs.push_back(out[i].seq);
    EXPECT_EQ(seqs, (std::vector<uint64_t>{5, 6, 7, 8, 9})) << "poll_batch";
  }
  {
    auto c = Consumer::open(ns.ns(), "s", tailing());
    ASSERT_TRUE(c);
    ASSERT_EQ(c->poll_in_place(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, 5u);
    EXPECT_TRUE(c->validate());
  }
  ConsumerOptions po = durable("_persister");
  po.persister = true;
  auto persister = Consumer::open(ns.ns(), "s", po);
  ASSERT_TRUE(persister);
  for (uint64_t q = 0; q < 10; ++q) {
    ASSERT_EQ(persister->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, q) << "the persister's consumer reads every record";
  }
}

// The setters of a read-only StreamControl write nothing and say so (false); a writable
// one's say true.  (They used to return nothing, so a caller with a read-only handle
// believed it had published a durable position or a watermark.)
TEST(Control, ReadOnlySettersWriteNothingAndSaySo) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small(1 << 16)));
  auto rw = StreamControl::open(ns.ns(), "s");
  auto ro = StreamControl::open(ns.ns(), "s", /*read_only=*/true);
  ASSERT_TRUE(rw && ro);
  EXPECT_FALSE(ro->set_durable_seq(7));
  EXPECT_FALSE(ro->raise_deleted_below(9));
  EXPECT_FALSE(ro->set_oldest_persisted_seq(3));
  EXPECT_FALSE(ro->record_lost(1, 2));
  EXPECT_FALSE(ro->beat());
  EXPECT_FALSE(ro->set_store_stats(100, 2, 3, 4, 1, 5));
  PersistSettings ps;
  ps.store_dir = "/var/lib/x/ns/s";
  auto set = ro->set_persist(ps);
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code, Errc::kPermission);
  EXPECT_EQ(ro->clear_persist().error().code, Errc::kPermission);
  EXPECT_EQ(ro->remove_group("g").error().code, Errc::kPermission);
  auto info = stream_info(ns.ns(), "s");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->durable_seq, 0u);
  EXPECT_EQ(info->deleted_below, 0u);
  EXPECT_EQ(info->oldest_persisted_seq, 0u);
  EXPECT_EQ(info->persister_beat_ns, 0u);
  EXPECT_EQ(info->disk_bytes, 0u);
  EXPECT_EQ(info->segments, 0u);
  EXPECT_FALSE(info->persist);
  EXPECT_EQ(ro->durable_seq(), 0u);

  EXPECT_TRUE(rw->set_durable_seq(7));
  EXPECT_TRUE(rw->raise_deleted_below(9));
  EXPECT_TRUE(rw->raise_deleted_below(4));  // no change (never lowered), not an error
  EXPECT_TRUE(rw->set_oldest_persisted_seq(3));
  EXPECT_TRUE(rw->record_lost(1, 2));
  EXPECT_FALSE(rw->record_lost(2, 2));      // an empty range: nothing recorded
  EXPECT_TRUE(rw->beat());
  EXPECT_TRUE(rw->set_store_stats(100, 2, 3, 4, 1, 5));
  info = stream_info(ns.ns(), "s");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->durable_seq, 7u);
  EXPECT_EQ(info->deleted_below, 9u);
  EXPECT_EQ(info->oldest_persisted_seq, 3u);
  EXPECT_NE(info->persister_beat_ns, 0u);
  EXPECT_EQ(info->disk_bytes, 100u);
  EXPECT_EQ(info->segments, 2u);
  EXPECT_EQ(ro->durable_seq(), 7u);  // the read-only handle sees the writer's values
  EXPECT_EQ(ro->deleted_below(), 9u);
}

}  // namespace
}  // namespace shmbus

namespace shmbus {
namespace {

// A start at a sequence may begin at another consumer's position (a shortcut): the
// records it returns must be exactly those from the sequence on, whatever the shortcut.
TEST(Ring, StartAtSeqUsesConsumerPositionsExactly) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto p = Producer::open(ns.ns(), "s");
  ConsumerOptions dopt;
  dopt.group = "ahead";
  dopt.start = StartFrom::earliest();
  auto ahead = Consumer::open(ns.ns(), "s", dopt);
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(p->publish(test::as_bytes("r" + std::to_string(i))).ok());
  Record rec;
  for (int i = 0; i < 200; ++i) ASSERT_EQ(ahead->poll(&rec, std::chrono::nanoseconds(0)), ReadStatus::kOk);
  ahead->commit();  // position: seq 200
  for (uint64_t target : {0ULL, 150ULL, 199ULL, 200ULL, 201ULL, 299ULL}) {
    ConsumerOptions t;
    t.start = StartFrom::seq(target);
    auto c = Consumer::open(ns.ns(), "s", t);
    ASSERT_EQ(c->poll(&rec, std::chrono::nanoseconds(0)), ReadStatus::kOk) << target;
    EXPECT_EQ(rec.seq, target);
    EXPECT_EQ(test::as_string(rec.data), "r" + std::to_string(target));
    EXPECT_EQ(c->gaps(), 0u);
  }
}

}  // namespace
}  // namespace shmbus

namespace shmbus {
namespace {

// Overrun while still skipping to its start: nothing the reader owed was lost, so no
// lap is reported and next_seq never goes below the start.
TEST(Ring, LappedWhileSkippingToStartLosesNothing) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 16 << 10;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto p = Producer::open(ns.ns(), "s");
  std::string payload(100, 'x');
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(p->publish(test::as_bytes(payload)).ok());
  ConsumerOptions t;
  t.start = StartFrom::seq(190);
  auto c = Consumer::open(ns.ns(), "s", t);
  EXPECT_EQ(c->next_seq(), 190u);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(p->publish(test::as_bytes(payload)).ok());
  Record rec;
  ASSERT_EQ(c->poll(&rec, std::chrono::nanoseconds(0)), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 190u);
  EXPECT_EQ(c->lost(), 0u);
}

}  // namespace
}  // namespace shmbus

namespace shmbus {
namespace {

// Every wait strategy gets a record published while it waits, and times out when none is.
class WaitStrategies : public ::testing::TestWithParam<WaitStrategy> {};

TEST_P(WaitStrategies, WakesOnPublishAndTimesOut) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto p = Producer::open(ns.ns(), "s");
  for (bool durable : {false, true}) {
    ConsumerOptions co;
    co.wait = GetParam();
    co.start = StartFrom::latest();
    if (durable) co.group = "g";
    auto c = Consumer::open(ns.ns(), "s", co);
    ASSERT_TRUE(c);
    Record rec;
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(c->poll(&rec, std::chrono::milliseconds(20)), ReadStatus::kTimeout);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(20));
    std::thread t([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      (void)p->publish(test::as_bytes("w"));
    });
    ASSERT_EQ(c->poll(&rec, std::chrono::seconds(5)), ReadStatus::kOk);
    EXPECT_EQ(test::as_string(rec.data), "w");
    t.join();
  }
}

INSTANTIATE_TEST_SUITE_P(All, WaitStrategies,
                         ::testing::Values(WaitStrategy::kBusySpin, WaitStrategy::kSpinYield,
                                           WaitStrategy::kBlock));

}  // namespace
}  // namespace shmbus
