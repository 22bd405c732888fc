// The ring's edges an adversarial review of stop 51 broke: two producers alone, a start
// at a sequence not yet published, a consumer caught up behind trailing gaps; and what a
// review of those fixes broke: a group waiting behind them, a loss told at the frontier.
// Each failed on the code before its fix, but the live-producer start test (see there).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "layout.h"
#include "mapping.h"
#include "ring.h"
#include "../common/scratch.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;
using test::as_string;

StreamOptions ring(uint64_t cap, uint64_t max_record) {
  StreamOptions o;
  o.capacity = cap;
  o.max_record = max_record;
  o.abandon_timeout = 10s;
  o.consumer_dead_timeout = 20s;
  return o;
}

// Two producers and nobody reading, on small rings, with records of two sizes: each
// producer's head scan read a record's sequence after another producer had moved head
// past it and written over it, and raised head (and floor) to that payload's bytes + 1
// at the same position.  The stream's cursors stopped adding up: every publish returned
// kCorrupt and every open refused the stream, within 0.1-8 s.  Now the publishes go on
// and the header stays sound (about a second of publishing per ring).
TEST(Edges, TwoProducersAloneKeepHeadAndFloorSound) {
  struct Case {
    uint64_t cap, max_record;
    size_t a, b;  // the two record sizes, alternated
  };
  for (const Case k : {Case{4096, 512, 8, 500}, Case{4096, 2016, 2016, 0}, Case{65536, 8192, 8, 1000}}) {
    SCOPED_TRACE(std::to_string(k.cap) + " B ring, records of " + std::to_string(k.a) + " and " +
                 std::to_string(k.b) + " B");
    test::ScopedNs ns;
    ASSERT_TRUE(create_stream(ns.ns(), "s", ring(k.cap, k.max_record)));
    std::atomic<bool> stop{false};
    std::atomic<int> failed{0};
    std::atomic<uint64_t> published{0};
    auto producer = [&](char fill) {
      auto p = Producer::open(ns.ns(), "s");
      if (!p) {
        failed = 1;
        return;
      }
      // Payload bytes that read as a huge sequence number, as in the review's repro.
      const std::string buf(k.max_record, fill);
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        const size_t n = (i & 1) ? k.a : k.b;
        if (!p->publish(Bytes(reinterpret_cast<const std::byte*>(buf.data()), n)).ok()) {
          failed = 2;
          stop = true;
          return;
        }
        published.fetch_add(1, std::memory_order_relaxed);
      }
    };
    std::thread t1(producer, 'A'), t2(producer, 'B');
    for (int i = 0; i < 10 && !stop; ++i) std::this_thread::sleep_for(100ms);
    stop = true;
    t1.join();
    t2.join();
    EXPECT_EQ(failed.load(), 0) << "a publish failed after " << published.load() << " records";
    auto info = stream_info(ns.ns(), "s");
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->next_seq, published.load());
    EXPECT_LE(info->oldest_seq, info->next_seq);
    // A reader from the oldest record sees sequences in order up to the end.
    auto c = Consumer::open(ns.ns(), "s", ConsumerOptions{});
    ASSERT_TRUE(c) << c.error().message;
    Record r;
    uint64_t last = 0, n = 0;
    while (c->poll(&r, 0ns) == ReadStatus::kOk) {
      if (n++) {
        EXPECT_EQ(r.seq, last + 1);
      }
      last = r.seq;
    }
    EXPECT_GT(n, 0u);
    EXPECT_EQ(last + 1, published.load());
  }
}

// committed_frontier() with a limit stops there, where a consumer that asked for the
// sequences from that claim cursor on must start: records committed past it since are
// that consumer's.
TEST(Edges, TheCommittedFrontierStopsAtTheClaimCursorItWasGiven) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", ring(1 << 16, 1024)));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  for (const char* s : {"a", "b", "c"}) ASSERT_TRUE(p->publish(as_bytes(s)).ok());
  auto m = StreamMapping::open(ns.ns(), "s", false);
  ASSERT_TRUE(m) << m.error().message;
  const StreamMapping& sm = **m;
  const detail::PosSeq latest = detail::read_posseq(&sm.header()->claim);
  for (const char* s : {"d", "e"}) ASSERT_TRUE(p->publish(as_bytes(s)).ok());
  const detail::PosSeq all = detail::committed_frontier(sm);
  const detail::PosSeq bounded = detail::committed_frontier(sm, latest.pos);
  EXPECT_EQ(all.pos, detail::read_posseq(&sm.header()->claim).pos);
  EXPECT_EQ(bounded.pos, latest.pos);
  EXPECT_LE(bounded.seq, latest.seq);
}

// A start at a sequence not yet published (or at `latest`) while producers publish: the
// open walked to the committed frontier as it was by then, past records committed while
// it opened with the sequences it asked for, and skipped them without a word (kOk, lost
// 0, gaps 0).  Each open here asks for the next sequence but one; its first record must
// be that one, or a later one with the skipped ones counted.  The window is narrow (the
// review hit it in 5 of ~1100 opens of a 16 MiB ring, and under gdb every time): the
// test above checks the bound itself; this one runs the opens against live producers.
TEST(Edges, AStartAtTheNextSequencesWhileProducersPublishMissesNone) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", ring(4 << 20, 1024)));
  std::atomic<bool> stop{false};
  std::thread prod([&] {
    auto p = Producer::open(ns.ns(), "s");
    if (!p) return;
    while (!stop.load(std::memory_order_relaxed)) (void)p->publish(as_bytes("12345678"));
  });
  int missed = 0, opens = 0;
  for (int i = 0; i < 60; ++i) {
    for (const bool group : {false, true}) {
      auto info = stream_info(ns.ns(), "s");
      ASSERT_TRUE(info);
      const uint64_t want = info->next_seq + 1;
      ConsumerOptions co;
      co.start = (i % 3 == 0) ? StartFrom::latest() : StartFrom::seq(want);
      if (group) {
        co.group = "g";
        co.reset = true;  // the start applies to the group each time
      }
      auto c = Consumer::open(ns.ns(), "s", co);
      ASSERT_TRUE(c) << c.error().message;
      ++opens;
      Record r;
      if (c->poll(&r, 1s) != ReadStatus::kOk) continue;
      // (latest: records published between stream_info() and the open come before it;
      // what it may not skip is not known here: it runs for the open's sake.)
      if (i % 3 != 0 && r.seq > want && c->gaps() == 0 && c->lost() == 0) ++missed;
    }
  }
  stop = true;
  prod.join();
  EXPECT_EQ(missed, 0) << "of " << opens << " opens";
}

// A durable consumer that read everything, with aborted claims after its last record:
// it stepped over them without moving the position it commits, so producers that needed
// those bytes (a pad and a large record) waited for it (kFull) until a record came after
// the gaps, for ever for a stream of large records.  One gap is enough when a record may
// take half the ring; seven with the default max_record (an eighth).
TEST(Edges, ACaughtUpDurableConsumerCommitsPastTrailingGaps) {
  struct Case {
    uint64_t max_record;
    int aborts;
  };
  for (const Case k : {Case{2016, 1}, Case{512, 7}}) {
    SCOPED_TRACE(std::to_string(k.aborts) + " aborted claims of " + std::to_string(k.max_record) + " B");
    test::ScopedNs ns;
    StreamOptions so = ring(4096, k.max_record);
    ASSERT_TRUE(create_stream(ns.ns(), "s", so));
    ProducerOptions po;
    po.when_full = FullPolicy::kFail;
    auto p = Producer::open(ns.ns(), "s", po);
    ASSERT_TRUE(p);
    ConsumerOptions co;
    co.group = "g";
    auto c = Consumer::open(ns.ns(), "s", co);
    ASSERT_TRUE(c);
    ASSERT_TRUE(p->publish(as_bytes("12345678")).ok());
    Record r;
    ASSERT_EQ(c->poll(&r, 1s), ReadStatus::kOk);
    for (int i = 0; i < k.aborts; ++i) {
      PubStatus st;
      Claim cl = p->claim(k.max_record, 0, &st);
      ASSERT_EQ(st, PubStatus::kOk);
      cl.abort();
    }
    EXPECT_EQ(c->poll(&r, 0ns), ReadStatus::kTimeout);  // caught up: gaps only
    c->commit();
    const std::string big(k.max_record, 'x');
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(p->publish(as_bytes(big)).status, PubStatus::kOk) << "record " << i;
      ASSERT_EQ(c->poll(&r, 1s), ReadStatus::kOk) << i;
      EXPECT_EQ(r.seq, 1u + k.aborts + i);
      c->commit();  // (else the next poll commits it: one such record fills the ring)
    }
    EXPECT_EQ(c->gaps(), static_cast<uint64_t>(k.aborts));
  }
}

// The same while the group waits in a long poll (a review of the fix above: the position
// moved past the gaps but was committed only at the next read, so a producer waited for
// the whole poll), and with records skipped below a group's start (a time ahead): a read
// about to wait commits what it stepped over.
TEST(Edges, AWaitingGroupCommitsWhatItSteppedOver) {
  for (const bool skipped : {false, true}) {
    SCOPED_TRACE(skipped ? "records below the start" : "an aborted claim");
    test::ScopedNs ns;
    ASSERT_TRUE(create_stream(ns.ns(), "s", ring(4096, 2016)));
    ProducerOptions po;
    po.full_timeout = 1s;
    auto p = Producer::open(ns.ns(), "s", po);
    ASSERT_TRUE(p);
    ConsumerOptions co;
    co.group = "g";
    if (skipped) co.start = StartFrom::time_ns(now_ns() + 3'600'000'000'000ULL);
    auto c = Consumer::open(ns.ns(), "s", co);
    ASSERT_TRUE(c);
    const std::string big(2016, 'x');
    if (skipped) {
      for (int i = 0; i < 2; ++i) ASSERT_TRUE(p->publish(as_bytes(big)).ok());  // the ring is full
    } else {
      ASSERT_TRUE(p->publish(as_bytes("12345678")).ok());
      Record r;
      ASSERT_EQ(c->poll(&r, 1s), ReadStatus::kOk);
      PubStatus st;
      Claim cl = p->claim(2016, 0, &st);
      ASSERT_EQ(st, PubStatus::kOk);
      cl.abort();
    }
    std::atomic<int> got{-1};
    std::thread waiter([&] {
      Record r;
      got = static_cast<int>(c->poll(&r, 2s));  // steps over, then waits
    });
    std::this_thread::sleep_for(200ms);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(p->publish(as_bytes(big)).status, PubStatus::kOk) << "the waiting group held the producer";
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 900ms);
    waiter.join();
  }
}

// A loss reported at the frontier (a group starting below an empty ring) and then a
// read that found nothing, the holder killed: the next holder was told the same loss
// again (a review), because its clear reached the slot only with a later commit.
TEST(Edges, ALossReportedAtTheFrontierIsToldOnce) {
  test::ScopedNs ns;
  StreamOptions so = ring(1 << 16, 1024);
  so.first_seq = 100;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  ConsumerOptions co;
  co.group = "g";
  co.start = StartFrom::seq(50);
  const pid_t child = fork();
  if (child == 0) {
    auto c = Consumer::open(ns.ns(), "s", co);
    Record r;
    if (!c || c->poll(&r, 0ns) != ReadStatus::kBeforeOldest || c->last_loss().from != 50 ||
        c->last_loss().to != 100)
      _exit(1);
    if (c->poll(&r, 0ns) != ReadStatus::kTimeout) _exit(2);
    _exit(0);  // as a kill: no close
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto info = stream_info(ns.ns(), "s");
  ASSERT_TRUE(info);
  ASSERT_EQ(info->consumers.size(), 1u);
  EXPECT_FALSE(info->consumers[0].owed_from.has_value());
  auto c = Consumer::open(ns.ns(), "s", co);
  ASSERT_TRUE(c);
  Record r;
  EXPECT_EQ(c->poll(&r, 0ns), ReadStatus::kTimeout) << "the loss was told again";
  EXPECT_EQ(c->lost(), 0u);
}

}  // namespace
}  // namespace shmbus
