// Consumer::poll_batch(): poll()'s records in runs.  Every record once, in order, with
// its bytes; a durable batch stays in place (producers held back) until the next read,
// which commits it; a tailing batch is copied and its copies outlive a lap; an event met
// after some records were taken is reported by the next read, after them.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "layout.h"
#include "shmbus/detail/stream_control.h"
#include "mapping.h"
#include "ring.h"
#include "ring_util.h"
#include "../common/scratch.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;

// Record i: size 8 + (i * 37) % span, its first 8 bytes i, byte k after them
// i * 131 + k * 7 (bytes that vary, as a tag torn by them would: see TailingRacing).
void fill(std::string& s, uint64_t i, size_t from) {
  for (size_t k = from; k < s.size(); ++k) s[k] = static_cast<char>((i * 131 + k * 7) & 0xff);
}
bool same(const Record& r, const std::string& want) {
  return r.data.size() == want.size() &&
         (want.empty() || std::memcmp(r.data.data(), want.data(), want.size()) == 0);
}
std::string payload(uint64_t i, uint64_t span = 300) {
  std::string s(8 + (i * 37) % span, '\0');
  std::memcpy(s.data(), &i, 8);
  fill(s, i, 8);
  return s;
}
bool intact(const Record& r, uint64_t span = 300) { return same(r, payload(r.seq, span)); }
Bytes bytes_of(const std::string& s) { return Bytes(reinterpret_cast<const std::byte*>(s.data()), s.size()); }

uint64_t claim_pos(const std::string& ns) {
  auto m = StreamMapping::open(ns, "s", true);
  return m ? m.value()->header()->claim.pos : ~0ULL;
}

uint64_t group_next_seq(const std::string& ns, const std::string& group) {
  auto info = stream_info(ns, "s");
  if (!info) return ~0ULL;
  for (const ConsumerInfo& c : info->consumers)
    if (c.name == group) return c.next_seq;
  return ~0ULL;
}

TEST(PollBatch, DurableDeliversEveryRecordInOrderAndCommitsAtTheNextRead) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", test::small(1 << 16, 1024)));
  auto c = Consumer::open(ns.ns(), "s", test::durable("g"));
  ASSERT_TRUE(c);
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  for (uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(p->publish(bytes_of(payload(i))).ok());

  Record recs[7];
  size_t n = 99;
  uint64_t next = 0, batches = 0;
  while (next < 100) {
    ASSERT_EQ(c->poll_batch(recs, 7, &n, 0ns), ReadStatus::kOk) << next;
    ASSERT_GE(n, 1u);
    ASSERT_LE(n, 7u);
    // This read committed the previous batch (auto-commit), not this one.
    EXPECT_EQ(group_next_seq(ns.ns(), "g"), next);
    for (size_t k = 0; k < n; ++k) {  // every view of the batch is valid at once
      EXPECT_EQ(recs[k].seq, next + k);
      EXPECT_TRUE(intact(recs[k])) << recs[k].seq;
    }
    next += n;
    ++batches;
  }
  EXPECT_LE(batches, 100u / 7 + 1);
  EXPECT_EQ(c->next_seq(), 100u);
  EXPECT_EQ(c->poll_batch(recs, 7, &n, 0ns), ReadStatus::kTimeout);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(group_next_seq(ns.ns(), "g"), 100u);
  EXPECT_EQ(c->poll_batch(recs, 0, &n, 0ns), ReadStatus::kTimeout);  // max 0: nothing
  c->close();
  EXPECT_EQ(c->poll_batch(recs, 7, &n, 0ns), ReadStatus::kClosed);
  EXPECT_EQ(n, 0u);

  // The group continues after the last batch.
  ASSERT_TRUE(p->publish(bytes_of(payload(100))).ok());
  auto again = Consumer::open(ns.ns(), "s", test::durable("g"));
  ASSERT_TRUE(again);
  ASSERT_EQ(again->poll_batch(recs, 7, &n, 0ns), ReadStatus::kOk);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(recs[0].seq, 100u);
  EXPECT_TRUE(intact(recs[0]));
}

// Until the next read, a durable batch is not consumed: producers cannot write over it.
TEST(PollBatch, DurableBatchHoldsProducersBackUntilTheNextRead) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", test::small(4096, 256)));
  auto c = Consumer::open(ns.ns(), "s", test::durable("g"));
  ASSERT_TRUE(c);
  ProducerOptions po;
  po.when_full = FullPolicy::kFail;
  auto p = Producer::open(ns.ns(), "s", po);
  ASSERT_TRUE(p);
  uint64_t published = 0;
  while (p->publish(bytes_of(payload(published, 100))).ok()) ++published;
  ASSERT_GT(published, 10u);

  Record recs[64];
  size_t n = 0;
  ASSERT_EQ(c->poll_batch(recs, 64, &n, 0ns), ReadStatus::kOk);
  ASSERT_EQ(n, published);
  EXPECT_EQ(p->publish(bytes_of(payload(published, 100))).status, PubStatus::kFull);
  for (size_t k = 0; k < n; ++k) {
    EXPECT_EQ(recs[k].seq, k);
    EXPECT_TRUE(intact(recs[k], 100)) << k;
  }
  // The next read commits the batch: room again.
  EXPECT_EQ(c->poll_batch(recs, 64, &n, 0ns), ReadStatus::kTimeout);
  EXPECT_TRUE(p->publish(bytes_of(payload(published, 100))).ok());
}

// A tailing reader's batch is copied: the copies stay whole when producers lap the ring
// afterwards.  Its copy buffer starts at one record and grows between batches.
TEST(PollBatch, TailingCopiesOutliveALapAndTheBufferGrowsBetweenBatches) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", test::small(1 << 16, 1024)));
  auto c = Consumer::open(ns.ns(), "s", test::tailing());
  ASSERT_TRUE(c);
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  const uint64_t kSpan = 1000;
  uint64_t published = 0;
  for (; published < 40; ++published) ASSERT_TRUE(p->publish(bytes_of(payload(published, kSpan))).ok());

  Record recs[32];
  size_t n = 0, largest = 0;
  uint64_t next = 0;
  std::vector<size_t> sizes;
  while (next < published) {
    ASSERT_EQ(c->poll_batch(recs, 32, &n, 0ns), ReadStatus::kOk);
    for (size_t k = 0; k < n; ++k) {
      EXPECT_EQ(recs[k].seq, next + k);
      EXPECT_TRUE(intact(recs[k], kSpan)) << recs[k].seq;
    }
    next += n;
    sizes.push_back(n);
    largest = std::max(largest, n);
  }
  EXPECT_EQ(sizes.front(), 1u);  // the buffer held one record at first
  EXPECT_GE(largest, 4u) << "the copy buffer did not grow";

  // A batch, then three rings' worth of records over it.
  for (uint64_t i = 0; i < 8; ++i, ++published) ASSERT_TRUE(p->publish(bytes_of(payload(published, kSpan))).ok());
  ASSERT_EQ(c->poll_batch(recs, 32, &n, 0ns), ReadStatus::kOk);
  ASSERT_GE(n, 2u);
  const size_t batch = n;
  for (int i = 0; i < 200; ++i, ++published) ASSERT_TRUE(p->publish(bytes_of(payload(published, kSpan))).ok());
  for (size_t k = 0; k < batch; ++k) {
    EXPECT_EQ(recs[k].seq, next + k);
    EXPECT_TRUE(intact(recs[k], kSpan)) << "copy of " << recs[k].seq << " changed";
  }
  next += batch;
  // The next read finds the reader lapped, and counts what it lost exactly.
  EXPECT_EQ(c->poll_batch(recs, 32, &n, 0ns), ReadStatus::kLapped);
  EXPECT_EQ(n, 0u);
  uint64_t delivered = 0, first = ~0ULL;
  while (c->poll_batch(recs, 32, &n, 0ns) == ReadStatus::kOk) {
    for (size_t k = 0; k < n; ++k) {
      if (first == ~0ULL) first = recs[k].seq;
      EXPECT_EQ(recs[k].seq, first + delivered);
      EXPECT_TRUE(intact(recs[k], kSpan)) << recs[k].seq;
      ++delivered;
    }
  }
  EXPECT_EQ(first + delivered, published);
  EXPECT_EQ(c->lost(), first - next);
  EXPECT_EQ(c->last_loss().from, next);
  EXPECT_EQ(c->last_loss().to, first);
}

// Damage met after some records were taken ends the batch; the next read reports it.
TEST(PollBatch, EventAfterRecordsIsReportedByTheNextRead) {
  for (bool durable : {true, false}) {
    SCOPED_TRACE(durable ? "durable" : "tailing");
    test::ScopedNs ns;
    ASSERT_TRUE(create_stream(ns.ns(), "s", test::small(1 << 16, 1024)));
    auto c = Consumer::open(ns.ns(), "s", durable ? test::durable("g") : test::tailing());
    ASSERT_TRUE(c);
    auto p = Producer::open(ns.ns(), "s");
    ASSERT_TRUE(p);
    uint64_t pos3 = 0;
    for (uint64_t i = 0; i < 6; ++i) {
      if (i == 3) pos3 = claim_pos(ns.ns());
      ASSERT_TRUE(p->publish(bytes_of(payload(i))).ok());
    }
    {  // record 3's header: committed, and larger than any record may be
      auto m = StreamMapping::open(ns.ns(), "s", false);
      ASSERT_TRUE(m);
      m.value()->record_at(pos3)->tag.store(
          detail::make_tag(m.value()->salt(), m.value()->lap_shift(), pos3, detail::kData, 5000));
    }
    // (A tailing reader's first batches are short: its copy buffer starts small.)
    Record recs[10];
    size_t n = 0;
    uint64_t next = 0;
    ReadStatus st;
    while ((st = c->poll_batch(recs, 10, &n, 0ns)) == ReadStatus::kOk) {
      for (size_t k = 0; k < n; ++k) {
        EXPECT_EQ(recs[k].seq, next + k);
        EXPECT_TRUE(intact(recs[k]));
      }
      if (durable) {
        EXPECT_EQ(n, 3u);  // records 0-2 in one batch, which the damage ended
      }
      next += n;
    }
    EXPECT_EQ(st, ReadStatus::kCorrupt);
    EXPECT_EQ(n, 0u);
    EXPECT_EQ(next, 3u);
    // The read that reported the damage committed the records before it (as poll()).
    if (durable) {
      EXPECT_EQ(group_next_seq(ns.ns(), "g"), 3u);
    }
    Record r;
    EXPECT_EQ(c->poll(&r, 0ns), ReadStatus::kCorrupt);  // still there
  }
}

// A tailing reader's position in stat follows what it passed, also when a batch returns
// nothing: here every record lies before its start (a time still to come).
TEST(PollBatch, TailingPositionInStatAfterRecordsSkippedByTheStart) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", test::small(1 << 16, 1024)));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  for (uint64_t i = 0; i < 20; ++i) ASSERT_TRUE(p->publish(bytes_of(payload(i))).ok());
  auto c = Consumer::open(ns.ns(), "s", test::tailing(StartFrom::time_ns(~0ULL >> 1)));
  ASSERT_TRUE(c);
  Record recs[8];
  size_t n = 0;
  EXPECT_EQ(c->poll_batch(recs, 8, &n, 0ns), ReadStatus::kTimeout);
  auto info = stream_info(ns.ns(), "s");
  ASSERT_TRUE(info);
  ASSERT_EQ(info->consumers.size(), 1u);
  EXPECT_FALSE(info->consumers[0].durable);
  EXPECT_EQ(info->consumers[0].next_seq, 20u);
  EXPECT_EQ(info->consumers[0].lag, 0u);
}

// An empty record first in a batch, then one larger than the copy buffer: the batch
// ends before it (the buffer grows only between batches), and both arrive whole.
TEST(PollBatch, TailingBufferNeverGrowsInsideABatch) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", test::small(1 << 16, 8192)));
  auto c = Consumer::open(ns.ns(), "s", test::tailing());
  ASSERT_TRUE(c);
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  const std::string small(100, 's'), big(5000, 'b');
  ASSERT_TRUE(p->publish(bytes_of(small)).ok());
  Record r;
  ASSERT_EQ(c->poll(&r, 0ns), ReadStatus::kOk);  // the copy buffer: 100 bytes
  ASSERT_TRUE(p->publish(Bytes{}).ok());
  ASSERT_TRUE(p->publish(bytes_of(big)).ok());
  Record recs[4];
  size_t n = 0;
  ASSERT_EQ(c->poll_batch(recs, 4, &n, 0ns), ReadStatus::kOk);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(recs[0].seq, 1u);
  EXPECT_TRUE(recs[0].data.empty());
  ASSERT_EQ(c->poll_batch(recs, 4, &n, 0ns), ReadStatus::kOk);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(recs[0].seq, 2u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(recs[0].data.data()), recs[0].data.size()), big);
}

// A tailing reader (poll() or poll_batch()) while a producer laps it again and again,
// on both stream kinds: every record whole, in order; delivered + lost == published, and
// no gap (there are no aborted claims): a tag of the reader's own lap torn by a newer
// lap's payload once passed for a gap here, about once per 25k lapped records.
struct Racing {
  bool batch;
  bool single;
};
// Many small records, and sizes that end 1..7 bytes into a 32-byte slot (the ones that
// tear a former lap's tag), up to max_record; every byte depends on the sequence.
std::string racing_payload(uint64_t i) {
  static constexpr uint16_t kSizes[] = {0, 1, 2, 3, 5, 7, 8, 9, 15, 17, 31, 33, 34, 63, 65, 100, 1000, 1017, 1024};
  std::string s(kSizes[((i * 2654435761u) >> 7) % std::size(kSizes)], '\0');
  fill(s, i, 0);
  return s;
}
bool racing_intact(const Record& r) { return same(r, racing_payload(r.seq)); }
class TailingRacing : public ::testing::TestWithParam<Racing> {};

TEST_P(TailingRacing, NeverATornRecordNorAFalseGap) {
  test::ScopedNs ns;
  StreamOptions so = test::small(1 << 14, 1024);
  so.single_producer = GetParam().single;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  auto c = Consumer::open(ns.ns(), "s", test::tailing());
  ASSERT_TRUE(c);
  const uint64_t kTotal = 200000;
  std::atomic<bool> failed{false};
  std::thread producer([&] {
    auto p = Producer::open(ns.ns(), "s");
    if (!p) { failed = true; return; }
    for (uint64_t i = 0; i < kTotal; ++i) {
      if (!p->publish(bytes_of(racing_payload(i))).ok()) {
        failed = true;
        return;
      }
    }
  });
  Record recs[32];
  size_t n = 0;
  uint64_t delivered = 0, last = 0, laps = 0, reported = 0, batches = 0, full = 0;
  volatile uint64_t sink = 0;
  bool any = false;
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while ((!any || last + 1 < kTotal) && !failed && std::chrono::steady_clock::now() < give_up) {
    ReadStatus st;
    if (GetParam().batch) {
      st = c->poll_batch(recs, 32, &n, 1ms);
    } else {
      st = c->poll(&recs[0], 1ms);
      n = st == ReadStatus::kOk ? 1 : 0;
    }
    if (st == ReadStatus::kLapped) {  // every loss is reported, also one met mid-batch
      ++laps;
      reported += c->last_loss().count();
      continue;
    }
    if (st == ReadStatus::kTimeout) continue;
    ASSERT_EQ(st, ReadStatus::kOk);
    ++batches;
    full += n == 32;
    for (size_t k = 0; k < n; ++k) {
      ASSERT_TRUE(racing_intact(recs[k])) << "torn record " << recs[k].seq;
      if (any) {
        ASSERT_GT(recs[k].seq, last);
      }
      last = recs[k].seq;
      any = true;
      ++delivered;
      // A reader slower than the producer: lapped all the time, often in mid-read.
      for (int w = 0; w < 300; ++w) sink = sink + 1;
    }
  }
  producer.join();
  ASSERT_FALSE(failed);
  ASSERT_EQ(last + 1, kTotal);
  EXPECT_EQ(delivered + c->lost() + c->gaps(), kTotal);
  EXPECT_EQ(c->gaps(), 0u);
  EXPECT_EQ(reported, c->lost());
  std::printf("%llu reads (%llu full batches), %llu laps, %llu delivered, %llu lost\n",
              (unsigned long long)batches, (unsigned long long)full, (unsigned long long)laps,
              (unsigned long long)delivered, (unsigned long long)c->lost());
}

INSTANTIATE_TEST_SUITE_P(PollBatch, TailingRacing,
                         ::testing::Values(Racing{true, false}, Racing{true, true},
                                           Racing{false, false}, Racing{false, true}),
                         [](const ::testing::TestParamInfo<Racing>& i) {
                           return std::string(i.param.batch ? "poll_batch" : "poll") +
                                  (i.param.single ? "_single_producer" : "_multi_producer");
                         });

// A durable poll_batch() takes the records after its first in a loop of its own while
// each is a plain committed record (Consumer::Impl::next_durable_run()); anything else
// goes back to poll()'s path.  So two groups of one stream, one reading with poll() and
// one with poll_batch(), must get the same records, gaps and losses, whatever lies in the
// ring: aborted claims (gaps), pads at the wrap (sizes up to a quarter of the ring),
// records published in batches, a deletion watermark raised over records not read yet,
// a seek past some, and batches cut short (max 1..64).
TEST(PollBatch, DurableBatchReadsWhatPollReadsThroughGapsPadsTheWatermarkAndSeeks) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", test::small(1 << 14, 1024)));
  auto one = Consumer::open(ns.ns(), "s", test::durable("one"));
  auto many = Consumer::open(ns.ns(), "s", test::durable("many"));
  auto p = Producer::open(ns.ns(), "s");
  auto ctl = StreamControl::open(ns.ns(), "s");
  ASSERT_TRUE(one && many && p && ctl);
  uint64_t seq = 0, batch_runs = 0, deleted = 0, seeks = 0;
  Record recs[64];
  for (uint64_t round = 0; round < 400; ++round) {
    // At most 12 records of up to 1024 bytes (+ header and pad): both groups read all of
    // each round, so a round never waits for room.
    const uint64_t count = 1 + (round * 7) % 12;
    if (round % 5 == 2) {
      std::vector<std::string> texts;
      std::vector<Bytes> views;
      for (uint64_t k = 0; k < count; ++k) texts.push_back(racing_payload(seq + k));
      for (const std::string& t : texts) views.push_back(bytes_of(t));
      ASSERT_TRUE(p->publish_batch(views, uint32_t(round % 7)).ok());
      seq += count;
    } else {
      for (uint64_t k = 0; k < count; ++k, ++seq) {
        const std::string text = racing_payload(seq);
        if (seq % 11 == 3) {  // a gap
          PubStatus st;
          Claim c = p->claim(text.size(), 0, &st);
          ASSERT_TRUE(c.valid());
          ASSERT_EQ(c.abort(), PubStatus::kOk);
        } else {
          ASSERT_TRUE(p->publish(bytes_of(text), uint32_t(seq % 5)).ok());
        }
      }
    }
    if (round % 17 == 16) {  // records of this round below the watermark: never served
      ASSERT_TRUE(ctl->raise_deleted_below(seq - count / 2));
      ++deleted;
    }
    if (round % 29 == 28) {  // both skip what lies below the start
      ASSERT_TRUE(one->seek(StartFrom::seq(seq - count / 3)));
      ASSERT_TRUE(many->seek(StartFrom::seq(seq - count / 3)));
      ++seeks;
    }
    // Every field a reader gets: sequence, stamp, type, and the payload's size.
    using Got = std::tuple<uint64_t, uint64_t, uint32_t, size_t>;
    const auto got = [](const Record& r) { return Got{r.seq, r.ts_ns, r.type, r.data.size()}; };
    std::vector<Got> by_poll, by_batch;
    ReadStatus st;
    while ((st = one->poll(&recs[0], 0ns)) == ReadStatus::kOk) {
      ASSERT_TRUE(racing_intact(recs[0])) << recs[0].seq;
      ASSERT_NE(recs[0].ts_ns, 0u);
      by_poll.push_back(got(recs[0]));
    }
    ASSERT_EQ(st, ReadStatus::kTimeout);
    size_t n = 0;
    const size_t max = 1 + (round * 13) % 64;
    while ((st = many->poll_batch(recs, max, &n, 0ns)) == ReadStatus::kOk) {
      ASSERT_GE(n, 1u);
      batch_runs += n > 1;
      for (size_t k = 0; k < n; ++k) {
        ASSERT_TRUE(racing_intact(recs[k])) << recs[k].seq;
        by_batch.push_back(got(recs[k]));
      }
    }
    ASSERT_EQ(st, ReadStatus::kTimeout);
    ASSERT_EQ(by_batch, by_poll) << "round " << round;
    ASSERT_EQ(many->gaps(), one->gaps()) << "round " << round;
    ASSERT_EQ(many->lost(), one->lost()) << "round " << round;
    ASSERT_EQ(many->next_seq(), one->next_seq()) << "round " << round;
  }
  EXPECT_GT(one->gaps(), 0u);
  EXPECT_GT(batch_runs, 100u);
  EXPECT_GT(deleted, 0u);
  EXPECT_GT(seeks, 0u);
}

// Records whose spans fill the ring exactly (32-byte payloads, 64-byte spans, no pads):
// a durable batch's run crosses the ring's end, where the lap bits of the tags it
// believes change (next_durable_run() recomputes them there).  Every record once, in
// order, intact, for each of the two stream kinds, and many batches that hold a lap's
// last record and the next lap's first.
TEST(PollBatch, DurableBatchRunsAcrossTheRingsEndWhereNoPadLies) {
  for (const bool single : {true, false}) {
    test::ScopedNs ns;
    StreamOptions so = test::small(4096, 1024);
    so.single_producer = single;
    ASSERT_TRUE(create_stream(ns.ns(), "s", so));
    auto c = Consumer::open(ns.ns(), "s", test::durable("g"));
    auto p = Producer::open(ns.ns(), "s");
    ASSERT_TRUE(c && p);
    constexpr uint64_t kPerLap = 4096 / 64;
    const auto text = [](uint64_t i) {  // record i: 32 bytes, i in the first 8
      std::string t(32, '\0');
      std::memcpy(t.data(), &i, 8);
      fill(t, i, 8);
      return t;
    };
    uint64_t seq = 0, next = 0, across = 0, stamp = 1;
    Record recs[64];
    for (uint64_t round = 0; round < 300; ++round) {
      // 1..32 records a round (half the ring: publish_batch()'s most), in one batch: the
      // reader's batches start at every offset of the ring.
      const uint64_t count = 1 + (round * 7) % 32;
      std::vector<std::string> texts;
      std::vector<Bytes> views;
      for (uint64_t k = 0; k < count; ++k) texts.push_back(text(seq + k));
      for (const std::string& t : texts) views.push_back(bytes_of(t));
      ASSERT_TRUE(p->publish_batch(views, uint32_t(round)).ok());
      seq += count;
      size_t n = 0;
      ReadStatus st;
      while ((st = c->poll_batch(recs, 64, &n, 0ns)) == ReadStatus::kOk) {
        for (size_t k = 0; k < n; ++k) {
          ASSERT_EQ(recs[k].seq, next) << "round " << round;
          ASSERT_TRUE(same(recs[k], text(next))) << recs[k].seq;
          // Each round's batch is read in its round: its type, and its one stamp.
          ASSERT_EQ(recs[k].type, uint32_t(round)) << recs[k].seq;
          if (recs[k].seq == seq - count) {
            ASSERT_GE(recs[k].ts_ns, stamp) << recs[k].seq;
            stamp = recs[k].ts_ns;
          }
          ASSERT_EQ(recs[k].ts_ns, stamp) << recs[k].seq;
          if (k > 0 && recs[k].seq % kPerLap == 0) ++across;
          ++next;
        }
      }
      ASSERT_EQ(st, ReadStatus::kTimeout);
      ASSERT_EQ(next, seq);
    }
    EXPECT_EQ(c->lost(), 0u);
    EXPECT_EQ(c->gaps(), 0u);
    EXPECT_GT(across, 20u);  // batches that crossed the ring's end
  }
}

// Sequences that wrap past 2^64 (the cursors' sequences set near it, as a first
// sequence chosen there would make them) under a deletion watermark: a batch hands out
// what poll() does, the records below the watermark after the wrap skipped by both
// (a durable batch's run, which checks the watermark once, stops at 2^64 - 1; found by
// a review, where the batch handed out 0, 1, 2, 3).
TEST(PollBatch, DurableBatchReadsWhatPollReadsWhereSequencesWrap) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", test::small(4096, 512)));
  const uint64_t s0 = ~uint64_t{0} - 3;
  {
    auto m = StreamMapping::open(ns.ns(), "s", false);
    ASSERT_TRUE(m);
    auto* h = m.value()->header();
    for (detail::PosSeq* ps : {&h->floor, &h->head, &h->claim}) ps->seq = s0;
  }
  auto one = Consumer::open(ns.ns(), "s", test::durable("one"));
  auto many = Consumer::open(ns.ns(), "s", test::durable("many"));
  auto p = Producer::open(ns.ns(), "s");
  auto ctl = StreamControl::open(ns.ns(), "s");
  ASSERT_TRUE(one && many && p && ctl);
  std::vector<std::string> texts;
  std::vector<Bytes> views;
  for (int i = 0; i < 8; ++i) texts.push_back("r" + std::to_string(i));
  for (const std::string& t : texts) views.push_back(bytes_of(t));
  const PubResult r = p->publish_batch(views);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.seq, s0);
  ASSERT_TRUE(ctl->raise_deleted_below(s0 + 1));
  std::vector<uint64_t> by_poll, by_batch;
  Record recs[16];
  ReadStatus st;
  while ((st = one->poll(&recs[0], 0ns)) == ReadStatus::kOk) by_poll.push_back(recs[0].seq);
  ASSERT_EQ(st, ReadStatus::kTimeout);
  size_t n = 0;
  while ((st = many->poll_batch(recs, 16, &n, 0ns)) == ReadStatus::kOk)
    for (size_t k = 0; k < n; ++k) by_batch.push_back(recs[k].seq);
  ASSERT_EQ(st, ReadStatus::kTimeout);
  EXPECT_EQ(by_batch, by_poll);
  EXPECT_EQ(by_batch, (std::vector<uint64_t>{s0 + 1, s0 + 2, s0 + 3}));
}

// Producers racing a durable batch reader: every record once, intact, in each producer's
// order, and every aborted claim counted as a gap.  (TSan runs it too; each thread maps
// the ring at its own address, so TSan checks the process's own memory, not the ring's.)
TEST(PollBatch, DurableBatchRacingProducersNeverTornNorLostNorTwice) {
  for (const bool single : {true, false}) {
    test::ScopedNs ns;
    StreamOptions so = test::small(1 << 14, 2048);
    so.single_producer = single;
    ASSERT_TRUE(create_stream(ns.ns(), "s", so));
    auto c = Consumer::open(ns.ns(), "s", test::durable("g"));
    ASSERT_TRUE(c);
    const int kProducers = single ? 1 : 2;
    constexpr uint64_t kEach = 60000;
    std::atomic<bool> failed{false};
    std::atomic<uint64_t> aborted{0};
    std::vector<std::thread> producers;
    for (int id = 0; id < kProducers; ++id) {
      producers.emplace_back([&, id] {
        auto p = Producer::open(ns.ns(), "s");
        if (!p) { failed = true; return; }
        for (uint64_t i = 0; i < kEach && !failed; ++i) {
          // 16 bytes {id, i}, then racing_payload(i)'s bytes: a size that varies.
          const std::string rest = racing_payload(i);
          const uint64_t head[2] = {static_cast<uint64_t>(id), i};
          PubStatus st;
          Claim cl = p->claim(16 + rest.size(), 0, &st);
          if (!cl.valid()) {
            std::fprintf(stderr, "producer %d: claim %llu: status %d\n", id, (unsigned long long)i,
                         static_cast<int>(st));
            failed = true;
            return;
          }
          std::memcpy(cl.data().data(), head, 16);
          if (!rest.empty()) std::memcpy(cl.data().data() + 16, rest.data(), rest.size());
          if (i % 13 == 5) {
            if (cl.abort() != PubStatus::kOk) failed = true;
            aborted.fetch_add(1, std::memory_order_relaxed);
          } else if (cl.commit() != PubStatus::kOk) {
            failed = true;
          }
        }
      });
    }
    uint64_t next[2] = {0, 0}, delivered = 0, last_seq = 0;
    std::string bad;
    const uint64_t want = kProducers * (kEach - (kEach + 7) / 13);
    Record recs[64];
    size_t n = 0;
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (delivered < want && !failed && std::chrono::steady_clock::now() < give_up) {
      const ReadStatus st = c->poll_batch(recs, 64, &n, 1ms);
      if (st == ReadStatus::kTimeout) continue;
      if (st != ReadStatus::kOk) {
        bad = "poll_batch: status " + std::to_string(static_cast<int>(st));
        failed = true;
        break;
      }
      // A check that fails stops the producers and ends the loop: the threads are
      // joined before the test reports it (an ASSERT here would leave them running).
      for (size_t k = 0; k < n && bad.empty(); ++k) {
        uint64_t head[2] = {~0ULL, 0};
        if (recs[k].data.size() >= 16) std::memcpy(head, recs[k].data.data(), 16);
        if (head[0] >= static_cast<uint64_t>(kProducers)) {
          bad = "record " + std::to_string(recs[k].seq) + ": no producer's";
          break;
        }
        // The producer's next record, past its aborted claims.
        while (next[head[0]] % 13 == 5) ++next[head[0]];
        const std::string rest = racing_payload(head[1]);
        if (head[1] != next[head[0]]) {
          bad = "producer " + std::to_string(head[0]) + ": record " + std::to_string(head[1]) +
                " where " + std::to_string(next[head[0]]) + " was due";
        } else if (recs[k].data.size() != 16 + rest.size() ||
                   std::memcmp(recs[k].data.data() + 16, rest.data(), rest.size()) != 0) {
          bad = "torn record " + std::to_string(recs[k].seq);
        } else if (delivered != 0 && recs[k].seq <= last_seq) {
          bad = "sequence " + std::to_string(recs[k].seq) + " after " + std::to_string(last_seq);
        }
        last_seq = recs[k].seq;
        ++next[head[0]];
        ++delivered;
      }
      if (!bad.empty()) failed = true;
    }
    for (auto& t : producers) t.join();
    ASSERT_TRUE(bad.empty()) << bad;
    ASSERT_FALSE(failed);
    EXPECT_EQ(delivered, want);
    // Gaps are counted when a record after them is read: each producer's last claim
    // commits (kEach - 1 is not 5 modulo 13), so every aborted claim lies before a record.
    static_assert((kEach - 1) % 13 != 5);
    EXPECT_EQ(c->poll_batch(recs, 64, &n, 0ns), ReadStatus::kTimeout);
    EXPECT_EQ(c->gaps(), aborted.load());
    EXPECT_EQ(c->lost(), 0u);
  }
}

// The inline payload copy (ring.h) against memcpy, for every size around its branches
// and at every source and destination alignment within 16 bytes.
TEST(CopyPayload, EverySizeUpTo200AsMemcpy) {
  std::vector<std::byte> src(256), want(256), got(256);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::byte>(i * 7 + 1);
  for (uint64_t n = 0; n <= 200; ++n) {
    for (size_t a = 0; a < 16; a += 5) {
      std::fill(want.begin(), want.end(), std::byte{0xee});
      std::fill(got.begin(), got.end(), std::byte{0xee});
      std::memcpy(want.data() + a, src.data() + (15 - a), n);
      detail::copy_payload(got.data() + a, src.data() + (15 - a), n);
      ASSERT_EQ(std::memcmp(want.data(), got.data(), got.size()), 0) << "size " << n << " at " << a;
    }
  }
}

}  // namespace
}  // namespace shmbus
