// Regression tests for the ring protocol's edges (issue 9): each one failed on the code
// before its fix.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "layout.h"
#include "mapping.h"
#include "mp_util.h"
#include "../common/scratch.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;
using test::as_string;

StreamOptions opts(uint64_t cap, std::chrono::milliseconds abandon = 10s) {
  StreamOptions o;
  o.capacity = cap;
  o.max_record = 1024;
  o.abandon_timeout = abandon;
  o.consumer_dead_timeout = 20s;
  return o;
}

// Defect 1: a consumer that starts at `latest` (or at a sequence not yet published)
// while a claim is pending must not let producers reuse that claim's bytes.
enum class LateStart { kDurableLatest, kTailingLatest, kDurableFutureSeq, kTailingFutureSeq };
class StartAbovePendingClaim : public ::testing::TestWithParam<LateStart> {};

TEST_P(StartAbovePendingClaim, NeverLetsProducersOverwriteIt) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts(1 << 16)));
  auto a = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(a);
  PubStatus st;
  Claim held = a->claim(1000, 0, &st);
  ASSERT_TRUE(held.valid());
  std::memset(held.data().data(), 'A', 1000);

  ConsumerOptions co;
  const LateStart mode = GetParam();
  if (mode == LateStart::kDurableLatest || mode == LateStart::kDurableFutureSeq) co.group = "g";
  co.start = (mode == LateStart::kDurableLatest || mode == LateStart::kTailingLatest)
                 ? StartFrom::latest()
                 : StartFrom::seq(5);
  auto c = Consumer::open(ns.ns(), "s", co);
  ASSERT_TRUE(c) << c.error().message;

  ProducerOptions po;
  po.when_full = FullPolicy::kFail;
  auto b = Producer::open(ns.ns(), "s", po);
  ASSERT_TRUE(b);
  std::string payload(1000, 'B');
  uint64_t ok_bytes = 0, full = 0;
  for (int i = 0; i < 300; ++i) {
    auto r = b->publish(as_bytes(payload));
    if (r.ok()) ok_bytes += 1024;
    else if (r.status == PubStatus::kFull) ++full;
    else FAIL() << "status " << int(r.status);
  }
  EXPECT_GT(full, 0u);
  EXPECT_LE(ok_bytes, uint64_t{1} << 16);
  for (std::byte x : held.data()) ASSERT_EQ(x, std::byte{'A'}) << "a pending claim was overwritten";
  EXPECT_EQ(held.commit(), PubStatus::kOk);
}

INSTANTIATE_TEST_SUITE_P(Ring, StartAbovePendingClaim,
                         ::testing::Values(LateStart::kDurableLatest, LateStart::kTailingLatest,
                                           LateStart::kDurableFutureSeq,
                                           LateStart::kTailingFutureSeq));

// A consumer at `latest` still gets exactly the records published after it opened, and
// waits for the pending claim below them to commit first (ring order).
TEST(Ring, LatestStartSkipsRecordsClaimedBeforeIt) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts(1 << 16)));
  auto a = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(a->publish(as_bytes("old")).ok());
  PubStatus st;
  Claim held = a->claim(3, 0, &st);
  std::memcpy(held.data().data(), "mid", 3);
  ConsumerOptions co;
  co.group = "g";
  co.start = StartFrom::latest();
  auto c = Consumer::open(ns.ns(), "s", co);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->next_seq(), 2u);
  auto b = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(b->publish(as_bytes("new")).ok());
  Record rec;
  EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);  // the claim is still pending
  ASSERT_EQ(held.commit(), PubStatus::kOk);
  ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 2u);
  EXPECT_EQ(as_string(rec.data), "new");
  EXPECT_EQ(c->gaps(), 0u);
  EXPECT_EQ(c->lost(), 0u);
}

// Defect 3: a producer that is slow, not dead, keeps its claim however long it holds it
// past the abandon timeout: no consumer or producer turns it into a gap.
TEST(Ring, SlowLiveProducerIsNeverAbandoned) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts(1 << 16, 30ms)));
  ConsumerOptions co;
  co.group = "g";
  auto c = Consumer::open(ns.ns(), "s", co);
  auto other = Consumer::open(ns.ns(), "s");  // a tailing reader too
  auto slow = Producer::open(ns.ns(), "s");
  auto fast = Producer::open(ns.ns(), "s");
  PubStatus st;
  Claim held = slow->claim(5, 0, &st);
  std::memcpy(held.data().data(), "slow!", 5);
  ASSERT_TRUE(fast->publish(as_bytes("fast")).ok());
  Record rec;
  EXPECT_EQ(c->poll(&rec, 300ms), ReadStatus::kTimeout);  // 10 abandon timeouts
  EXPECT_EQ(other->poll(&rec, 100ms), ReadStatus::kTimeout);
  EXPECT_EQ(held.commit(), PubStatus::kOk);
  for (auto* r : {&c.value(), &other.value()}) {
    ASSERT_EQ(r->poll(&rec, 1s), ReadStatus::kOk);
    EXPECT_EQ(as_string(rec.data), "slow!");
    ASSERT_EQ(r->poll(&rec, 1s), ReadStatus::kOk);
    EXPECT_EQ(as_string(rec.data), "fast");
    EXPECT_EQ(r->gaps(), 0u);
  }
  EXPECT_EQ(stream_info(ns.ns(), "s")->abandoned, 0u);
}

// The same with a stopped process (SIGSTOP), and a producer that needs the room.
TEST(Ring, StoppedProducerProcessIsNeverAbandoned) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts(1 << 16, 30ms)));
  test::Pipe ready;
  pid_t child = test::spawn([&] {
    auto p = Producer::open(ns.ns(), "s");
    PubStatus st;
    Claim cl = p->claim(5, 0, &st);
    std::memcpy(cl.data().data(), "child", 5);
    char one = 1;
    ready.put(&one, 1);
    raise(SIGSTOP);
    return cl.commit() == PubStatus::kOk ? 0 : 3;
  });
  char one;
  ASSERT_TRUE(ready.get(&one, 1));
  int st = 0;
  ASSERT_EQ(waitpid(child, &st, WUNTRACED), child);
  ASSERT_TRUE(WIFSTOPPED(st));
  ProducerOptions po;
  po.full_timeout = 300ms;
  auto p = Producer::open(ns.ns(), "s", po);
  uint64_t ok = 0, full = 0;
  std::string big(1000, 'x');
  for (int i = 0; i < 200; ++i) {
    auto r = p->publish(as_bytes(big));
    ok += r.ok();
    full += r.status == PubStatus::kFull;
    if (full) break;
  }
  EXPECT_EQ(full, 1u) << "the stopped producer's claim was abandoned";
  kill(child, SIGCONT);
  EXPECT_EQ(test::reap(child), 0);
  auto c = Consumer::open(ns.ns(), "s");
  Record rec;
  ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);
  EXPECT_EQ(as_string(rec.data), "child");
  EXPECT_EQ(stream_info(ns.ns(), "s")->abandoned, 0u);
}

// A live producer writes its claim's header over whatever it holds, this lap's gap for
// the claim too: only a forged header can hold that while the producer lives (an
// abandoner gaps only a dead producer's claim), and multi-producer streams used to load
// the tag first to refuse it (kAbandoned), which cost the consumer spinning at the
// frontier one more hand-off of the header's line per record.  Through publish(),
// claim() and publish_batch(), on both kinds of stream.
TEST(Ring, AGapForgedInAFreshClaimIsWrittenOver) {
  for (bool single : {false, true}) {
    for (int how = 0; how < 3; ++how) {
      SCOPED_TRACE(std::to_string(single) + " " + std::to_string(how));
      test::ScopedNs ns;
      StreamOptions o = opts(1 << 16);
      o.single_producer = single;
      ASSERT_TRUE(create_stream(ns.ns(), "s", o));
      auto m = StreamMapping::open(ns.ns(), "s", false);
      ASSERT_TRUE(m);
      detail::StreamHeader* h = m.value()->header();
      auto p = Producer::open(ns.ns(), "s");
      ASSERT_TRUE(p);
      ASSERT_TRUE(p->publish(as_bytes("one")).ok());
      const uint64_t pos = h->claim.pos;
      const uint64_t gap = detail::make_tag(m.value()->salt(), m.value()->lap_shift(), pos, detail::kGap, 5);
      m.value()->record_at(pos)->tag.store(gap);
      if (how == 0) {
        EXPECT_EQ(p->publish(as_bytes("late!")).status, PubStatus::kOk);
      } else if (how == 1) {
        PubStatus st;
        Claim cl = p->claim(5, 0, &st);
        ASSERT_TRUE(cl.valid());
        std::memcpy(cl.data().data(), "late!", 5);
        EXPECT_EQ(cl.commit(), PubStatus::kOk);
      } else {
        const std::string late = "late!";  // (as_bytes() views it: it must outlive the call)
        const Bytes batch[] = {as_bytes(late)};
        EXPECT_EQ(p->publish_batch(batch).status, PubStatus::kOk);
      }
      EXPECT_NE(m.value()->record_at(pos)->tag.load(), gap);
      auto c = Consumer::open(ns.ns(), "s");
      Record rec;
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
      EXPECT_EQ(as_string(rec.data), "one");
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
      EXPECT_EQ(as_string(rec.data), "late!");
      EXPECT_EQ(rec.seq, 1u);
      EXPECT_EQ(c->gaps(), 0u);
    }
  }
}

}  // namespace
}  // namespace shmbus

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;

// Defect 2: the registry lock did not exclude threads of one process: threads opening
// durable groups at once shared slots.
TEST(Ring, ConcurrentDurableOpensGetTheirOwnSlots) {
  for (int round = 0; round < 20; ++round) {
    test::ScopedNs ns;
    StreamOptions o;
    o.capacity = 1 << 16;
    ASSERT_TRUE(create_stream(ns.ns(), "s", o));
    std::vector<std::thread> ts;
    std::vector<std::optional<Consumer>> cs(8);
    std::atomic<int> go{0};
    for (int i = 0; i < 8; ++i)
      ts.emplace_back([&, i] {
        go.fetch_add(1);
        while (go.load() < 8) {
        }
        ConsumerOptions co;
        co.group = "g" + std::to_string(i);
        auto c = Consumer::open(ns.ns(), "s", co);
        if (c) cs[i].emplace(std::move(c.value()));
      });
    for (auto& t : ts) t.join();
    for (auto& c : cs) ASSERT_TRUE(c.has_value());
    auto info = stream_info(ns.ns(), "s");
    ASSERT_TRUE(info);
    std::set<std::string> names;
    for (auto& ci : info->consumers) names.insert(ci.name);
    ASSERT_EQ(names.size(), 8u) << "round " << round << ": two groups shared a slot";
  }
}

// A durable consumer whose slot was evicted (or whose position producers passed) says
// so, then resumes at the oldest record with the exact loss (it used to wait for ever
// with lost() == 0).
TEST(Ring, EvictedDurableConsumerReportsItAndResumes) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  ConsumerOptions co;
  co.group = "g";
  auto c = Consumer::open(ns.ns(), "s", co);
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p->publish(as_bytes("first")).ok());
  Record rec;
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
  c->commit();
  {  // what an evictor does (under the registry lock) when it takes us for dead
    auto m = StreamMapping::open(ns.ns(), "s", false);
    for (uint32_t i = 0; i < detail::kMaxConsumers; ++i) {
      auto* s = m.value()->consumer_slot(i);
      if (std::string(s->name) == "g") s->evicted.store(1);
    }
  }
  std::string big(1000, 'x');
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(p->publish(as_bytes(big)).ok()) << i;
  ASSERT_EQ(c->poll(&rec, 100ms), ReadStatus::kEvicted);
  ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);
  EXPECT_GT(rec.seq, 1u);
  EXPECT_EQ(c->lost(), rec.seq - 1);  // exactly the records it never saw
  uint64_t next = rec.seq + 1;
  while (c->poll(&rec, 0ns) == ReadStatus::kOk) ASSERT_EQ(rec.seq, next++);
  EXPECT_EQ(next, 301u);
  // It holds producers back again.
  ProducerOptions po;
  po.when_full = FullPolicy::kFail;
  auto q = Producer::open(ns.ns(), "s", po);
  int full = 0;
  for (int i = 0; i < 200 && !full; ++i) full += q->publish(as_bytes(big)).status == PubStatus::kFull;
  EXPECT_EQ(full, 1);
}

// A group that was evicted but whose records producers have not overwritten yet loses
// nothing and reports nothing.
TEST(Ring, EvictedGroupWithNothingOverwrittenGoesOn) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts(4096)));
  auto p = Producer::open(ns.ns(), "s");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p->publish(as_bytes("r")).ok());
  auto g = Consumer::open(ns.ns(), "s", [] { ConsumerOptions o; o.group = "g"; return o; }());
  {  // what an evictor does when it takes us for dead
    auto m = StreamMapping::open(ns.ns(), "s", false);
    for (uint32_t i = 0; i < detail::kMaxConsumers; ++i) {
      auto* s = m.value()->consumer_slot(i);
      if (std::string(s->name) == "g") s->evicted.store(1);
    }
  }
  Record rec;
  for (uint64_t i = 0; i < 3; ++i) {
    ASSERT_EQ(g->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, i);
  }
  EXPECT_EQ(g->lost(), 0u);
  EXPECT_FALSE(stream_info(ns.ns(), "s")->consumers[0].evicted);
}

// Issue 14 point 6: a read-only tailing reader that is lapped keeps its loss privately
// (it wrote the stream's counter through its read-only mapping: SIGSEGV).
TEST(Ring, ReadOnlyReaderLappedDoesNotWriteTheHeader) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto p = Producer::open(ns.ns(), "s");
  ConsumerOptions co;
  co.read_only = true;
  auto c = Consumer::open(ns.ns(), "s", co);
  ASSERT_TRUE(c);
  Record rec;
  std::string big(1000, 'x');
  ASSERT_TRUE(p->publish(as_bytes(big)).ok());
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(p->publish(as_bytes(big)).ok());
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kLapped);
  EXPECT_GT(c->lost(), 0u);
  EXPECT_EQ(stream_info(ns.ns(), "s")->tail_lost, 0u);
}

}  // namespace
}  // namespace shmbus

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;
using test::as_string;

// Defect 7: a start at a time filtered by timestamp for the consumer's whole life, so
// after CLOCK_REALTIME stepped back later records were dropped (lost 0, gaps 0).  @TIME
// follows sequence order: the consumer starts at the first record, in sequence order,
// stamped at or after TIME, and from there delivers every record whatever its stamp
// (stamps of different producers need not grow with the sequence).
TEST(Ring, StartAtTimeFiltersOnlyUntilTheFirstRecordAtOrAfterIt) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto p = Producer::open(ns.ns(), "s");
  auto m = StreamMapping::open(ns.ns(), "s", false);
  auto stamp = [&](uint64_t seq, uint64_t ts) {  // find record `seq` and restamp it
    for (uint64_t pos = 0; pos < m.value()->header()->claim.pos;) {
      auto* r = m.value()->record_at(pos);
      const auto tv = detail::decode_tag(m.value()->salt(), m.value()->lap_shift(), r->tag.load(), pos);
      if (tv.state == detail::kData && r->seq == seq) { r->ts_ns = ts; return; }
      pos += detail::record_span(tv.size);
    }
    FAIL() << "no record " << seq;
  };
  const uint64_t t = 1'000'000'000'000'000'000ULL;
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(p->publish(as_bytes(std::to_string(i))).ok());
  stamp(0, t - 30);
  stamp(1, t - 20);
  stamp(2, t + 10);  // the first at/after t in sequence order
  stamp(3, t - 10);  // another producer's earlier stamp (or the clock stepped back)
  stamp(4, t - 5000);
  stamp(5, t + 20);
  for (bool durable : {false, true}) {
    ConsumerOptions co;
    if (durable) co.group = "g";
    co.start = StartFrom::time_ns(t);
    auto c = Consumer::open(ns.ns(), "s", co);
    Record rec;
    for (uint64_t want = 2; want < 6; ++want) {
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk) << want;
      EXPECT_EQ(rec.seq, want);
    }
    EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);
    EXPECT_EQ(c->lost() + c->gaps(), 0u);
  }
}

}  // namespace
}  // namespace shmbus

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;
using test::as_string;

// A Claim pointed at its Producer object: moving the Producer left it dangling (commit
// said kClosed), destroying it made commit a use after free.
TEST(Ring, ClaimSurvivesItsProducerMovingAndDying) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto c = Consumer::open(ns.ns(), "s");
  PubStatus st;
  Claim moved_claim;
  {
    auto p = Producer::open(ns.ns(), "s");
    moved_claim = p->claim(5, 0, &st);
    std::memcpy(moved_claim.data().data(), "moved", 5);
    Producer q = std::move(p.value());
    EXPECT_EQ(moved_claim.commit(), PubStatus::kOk);
    Claim orphan = q.claim(6, 0, &st);
    std::memcpy(orphan.data().data(), "orphan", 6);
    q.close();
    EXPECT_EQ(orphan.commit(), PubStatus::kClosed);  // aborted: a gap, at once
  }
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p->publish(as_bytes("after")).ok());
  Record rec;
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
  EXPECT_EQ(as_string(rec.data), "moved");
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);  // no abandon timeout to wait for
  EXPECT_EQ(as_string(rec.data), "after");
  EXPECT_EQ(c->gaps(), 1u);
}

}  // namespace
}  // namespace shmbus

namespace shmbus {
namespace {

using namespace std::chrono_literals;

// seek() on the stream still under its name reuses the consumer's mapping (no new
// mapping of the ring: what made a replay's switch to the ring cost ~0.7 ms on a 4 MiB
// ring); once the name refers to a stream created again, seek() reads that one, as
// before.
TEST(Ring, SeekFollowsTheNameToAStreamCreatedAgain) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  {
    auto p = Producer::open(ns.ns(), "s");
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(p->publish(test::as_bytes("old" + std::to_string(i))).ok());
  }
  auto c = Consumer::open(ns.ns(), "s", {});
  ASSERT_TRUE(c);
  Record rec;
  for (int round = 0; round < 3; ++round) {  // the same mapping, again and again
    ASSERT_TRUE(c->seek(StartFrom::seq(7)));
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, 7u);
    EXPECT_EQ(test::as_string(rec.data), "old7");
  }
  EXPECT_EQ(stream_info(ns.ns(), "s")->consumers.size(), 1u) << "a slot left behind by a seek";
  ASSERT_TRUE(remove_stream(ns.ns(), "s", true));
  o.first_seq = 100;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  {
    auto p = Producer::open(ns.ns(), "s");
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(p->publish(test::as_bytes("new" + std::to_string(i))).ok());
  }
  EXPECT_EQ(c->name_state(), NameState::kReplaced);
  ASSERT_TRUE(c->seek(StartFrom::earliest()));
  EXPECT_EQ(c->name_state(), NameState::kSame);
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 100u);
  EXPECT_EQ(test::as_string(rec.data), "new0");
  EXPECT_EQ(stream_info(ns.ns(), "s")->consumers.size(), 1u);
}

// A tailing reader's seek() keeps its registry slot (no registry lock, no moment at
// which the slot is free for another reader): the same slot, alive, reading from the
// sought record on, through a lap of the ring too, and freed at close.
TEST(Ring, ATailingReadersSeekKeepsItsSlot) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 4096;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  ASSERT_TRUE(test::publish_numbered(*p, 0, 10));
  auto c = Consumer::open(ns.ns(), "s", {});
  ASSERT_TRUE(c);
  const auto before = stream_info(ns.ns(), "s")->consumers;
  ASSERT_EQ(before.size(), 1u);
  Record rec;
  for (uint64_t at : {7u, 2u, 9u, 0u}) {
    ASSERT_TRUE(c->seek(StartFrom::seq(at)));
    auto info = stream_info(ns.ns(), "s");
    ASSERT_TRUE(info);
    ASSERT_EQ(info->consumers.size(), 1u) << "a slot left behind by a seek";
    EXPECT_EQ(info->consumers[0].name, before[0].name);
    EXPECT_TRUE(info->consumers[0].alive);
    EXPECT_FALSE(info->consumers[0].durable);
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, at);
    EXPECT_EQ(test::as_string(rec.data), "r" + std::to_string(at));
  }
  // Another reader opened now takes another slot: the first is still held.
  auto c2 = Consumer::open(ns.ns(), "s", {});
  ASSERT_TRUE(c2);
  EXPECT_EQ(stream_info(ns.ns(), "s")->consumers.size(), 2u);
  c2->close();
  // Lapped after a seek (a 4 KiB ring): the loss is reported and reading goes on.
  ASSERT_TRUE(c->seek(StartFrom::seq(1)));
  ASSERT_TRUE(test::publish_numbered(*p, 10, 400));
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kLapped);
  EXPECT_EQ(c->last_loss().from, 1u);
  uint64_t last = 0;
  ReadStatus st;
  while ((st = c->poll(&rec, 0ns)) == ReadStatus::kOk) last = rec.seq;
  EXPECT_EQ(st, ReadStatus::kTimeout);
  EXPECT_EQ(last, 399u);
  EXPECT_EQ(stream_info(ns.ns(), "s")->consumers.size(), 1u);
  c->close();
  EXPECT_EQ(stream_info(ns.ns(), "s")->consumers.size(), 0u) << "the kept slot not freed at close";
}

// A producer keeps the ring it opened (publishing into it after the name went still
// succeeds); name_state() tells it the name now means nothing (kRemoved) or another
// stream (kReplaced), as `shmbus pub` asks.
TEST(Producer, NameStateSaysWhenItsStreamWasRemovedOrReplaced) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 4096;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name_state(), NameState::kSame);
  ASSERT_TRUE(remove_stream(ns.ns(), "s", true));
  EXPECT_EQ(p->name_state(), NameState::kRemoved);
  EXPECT_TRUE(p->publish(test::as_bytes("into the removed ring")).ok());
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  EXPECT_EQ(p->name_state(), NameState::kReplaced);
  EXPECT_EQ(stream_info(ns.ns(), "s")->next_seq, 0u);
  p->close();
  EXPECT_EQ(p->name_state(), NameState::kSame) << "closed: nothing to tell";
}

// Issue 13 point 3: `start` is where a *new* group begins; an existing group continues
// from its commit (the README's own example re-read from 0 on every run); rewinding it
// is explicit (reset / seek).
TEST(Ring, StartAppliesToNewGroupsOnlyAndSeekRewinds) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto p = Producer::open(ns.ns(), "s");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(p->publish(test::as_bytes(std::to_string(i))).ok());
  ConsumerOptions co;
  co.group = "analytics";
  co.start = StartFrom::earliest();
  Record rec;
  {
    auto c = Consumer::open(ns.ns(), "s", co);
    for (uint64_t want = 0; want < 4; ++want) {
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
      EXPECT_EQ(rec.seq, want);
    }
    c->commit();
  }
  {
    auto c = Consumer::open(ns.ns(), "s", co);  // the same options, the next run
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, 4u) << "an existing group rewound to its start";
    // Explicit: seek rewinds the group, and its position with it.
    ASSERT_TRUE(c->seek(StartFrom::seq(1)));
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, 1u);
    c->commit();
  }
  co.start = StartFrom::latest();
  {
    auto c = Consumer::open(ns.ns(), "s", co);  // latest, but the group exists
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, 2u);
  }
  co.reset = true;  // the explicit form at open
  {
    auto c = Consumer::open(ns.ns(), "s", co);
    EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);
    ASSERT_TRUE(p->publish(test::as_bytes("new")).ok());
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, 10u);
  }
}

// A commit (or a close) right after a seek commits the seek's target: the group's next
// holder starts there (as a Kafka consumer's commit after seek() commits the position it
// sought).  It used to keep the position the seek began from (a skip forward: the records
// between came again) or the oldest record's (a rewind: those below the target came again).
TEST(Ring, ACommitRightAfterASeekCommitsTheTarget) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 64 * 1024;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto p = Producer::open(ns.ns(), "s");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(p->publish(test::as_bytes(std::to_string(i))).ok());
  ConsumerOptions co;
  co.group = "g";
  co.start = StartFrom::earliest();
  Record rec;
  uint64_t ts5 = 0;
  // The group's next holder: the first record it reads (put back for the next one).
  const auto next_of_group = [&] {
    auto c = Consumer::open(ns.ns(), "s", co);
    EXPECT_TRUE(c);
    if (!c || c->poll(&rec, 0ns) != ReadStatus::kOk) return ~uint64_t{0};
    const uint64_t seq = rec.seq;
    if (seq == 5) ts5 = rec.ts_ns;
    EXPECT_TRUE(c->seek(StartFrom::seq(seq)));
    c->commit();
    return seq;
  };
  {
    auto c = Consumer::open(ns.ns(), "s", co);
    for (uint64_t want = 0; want < 3; ++want) {
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
      EXPECT_EQ(rec.seq, want);
    }
    c->commit();
    ASSERT_TRUE(c->seek(StartFrom::seq(7)));  // forward, then commit at once
    c->commit();
  }
  EXPECT_EQ(next_of_group(), 7u) << "the position the seek began from was kept";
  {
    auto c = Consumer::open(ns.ns(), "s", co);
    ASSERT_TRUE(c->seek(StartFrom::seq(5)));  // back, then close (auto-commit)
  }
  EXPECT_EQ(next_of_group(), 5u) << "the oldest record's position was kept";
  ASSERT_NE(ts5, 0u);
  {
    auto c = Consumer::open(ns.ns(), "s", co);
    ASSERT_TRUE(c->seek(StartFrom::seq(8)));
    c->commit();
    ASSERT_TRUE(c->seek(StartFrom::time_ns(ts5)));  // by time
    c->commit();
  }
  EXPECT_EQ(next_of_group(), 5u);
  {
    auto c = Consumer::open(ns.ns(), "s", co);
    ASSERT_TRUE(c->seek(StartFrom::seq(9)));
    c->commit();
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);  // the commit took nothing away
    EXPECT_EQ(rec.seq, 9u);
    EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);
    ASSERT_TRUE(c->seek(StartFrom::seq(20)));  // past the end: committed up to the end
    c->commit();
  }
  ASSERT_TRUE(p->publish(test::as_bytes("10")).ok());
  EXPECT_EQ(next_of_group(), 10u);
}

}  // namespace
}  // namespace shmbus
