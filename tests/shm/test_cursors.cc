// Cursor-setting edge tests of the ring (as Aeron's ring-buffer tests do): the claim,
// head and floor cursors of a freshly created stream are set directly in its header
// (shm/src/layout.h) to reach the edges without publishing gigabytes first: a ring full
// at exactly its capacity, a record that would straddle the end (a pad, then the wrap),
// the first record after a wrap over the previous lap's bytes, a tailing reader lapped
// by one record, by exactly one lap and by more, and all of it at positions around 2^32
// and near 2^63.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "layout.h"
#include "mapping.h"
#include "../common/scratch.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;
using test::as_string;

constexpr uint64_t kCap = 4096;
constexpr uint64_t kSpan = 256;                                  // one record in the tests
constexpr uint64_t kPayload = kSpan - sizeof(detail::RecordHeader);  // 224 bytes
constexpr uint64_t kPerLap = kCap / kSpan;                       // 16 records fill the ring

// Where the cursors start: the beginning, both sides of 2^32 (a 32-bit position would
// wrap there), a lap before 2^32 so that the test crosses it, and near 2^63.
const std::vector<uint64_t>& bases() {
  static const std::vector<uint64_t> b = {
      0,
      (uint64_t{1} << 32) - 2 * kCap,
      uint64_t{1} << 32,
      (uint64_t{1} << 32) + 7 * kCap,
      (uint64_t{1} << 63) - 2 * kCap,
      (uint64_t{1} << 63) + kCap,
  };
  return b;
}
constexpr uint64_t kBaseSeq = 5'000'000'000ULL;  // above 2^32 too

StreamOptions opts() {
  StreamOptions o;
  o.capacity = kCap;
  o.max_record = 1024;
  o.abandon_timeout = 10s;
  o.consumer_dead_timeout = 60s;
  return o;
}

// A created stream whose claim, head and floor all stand at {pos, seq}: as if `pos`
// bytes and `seq` records had gone through it, and nothing is in the ring now.
struct Stream {
  test::ScopedNs ns;
  std::shared_ptr<StreamMapping> m;
  detail::StreamHeader* h = nullptr;

  void create_at(uint64_t pos, uint64_t seq, const StreamOptions& o = opts()) {
    ASSERT_TRUE(create_stream(ns.ns(), "s", o));
    auto r = StreamMapping::open(ns.ns(), "s", false);
    ASSERT_TRUE(r) << r.error().message;
    m = r.value();
    h = m->header();
    for (detail::PosSeq* ps : {&h->floor, &h->head, &h->claim}) {
      ps->pos = pos;
      ps->seq = seq;
    }
    ASSERT_TRUE(m->cursors_ok());
  }
  detail::PosSeq claim() const { return detail::read_posseq_bounded(&h->claim); }
  detail::PosSeq floor() const { return detail::read_posseq_bounded(&h->floor); }
  detail::TagView tag_at(uint64_t pos) const {
    return detail::decode_tag(m->salt(), m->lap_shift(), m->record_at(pos)->tag.load(), pos);
  }
};

std::string payload_for(uint64_t i, size_t n = kPayload) {
  std::string s(n, 'a');
  for (size_t k = 0; k < n; ++k) s[k] = static_cast<char>('a' + (i + k) % 26);
  return s;
}

ProducerOptions fail_when_full() {
  ProducerOptions o;
  o.when_full = FullPolicy::kFail;
  return o;
}

// A durable group at the floor holds producers back: the ring takes records up to
// exactly floor + capacity (16 records of 256 bytes on a 4 KiB ring), the next one is
// refused (kFull), and one record consumed makes room for exactly one more.
TEST(Cursors, FullAtExactlyCapacity) {
  for (uint64_t base : bases()) {
    SCOPED_TRACE(base);
    Stream s;
    s.create_at(base, kBaseSeq);
    ConsumerOptions co;
    co.group = "g";
    auto c = Consumer::open(s.ns.ns(), "s", co);
    ASSERT_TRUE(c) << c.error().message;
    auto p = Producer::open(s.ns.ns(), "s", fail_when_full());
    ASSERT_TRUE(p) << p.error().message;
    for (uint64_t i = 0; i < kPerLap; ++i) {
      auto r = p->publish(as_bytes(payload_for(i)));
      ASSERT_EQ(r.status, PubStatus::kOk) << "record " << i;
      EXPECT_EQ(r.seq, kBaseSeq + i);
    }
    EXPECT_EQ(s.claim().pos, base + kCap);  // full to the byte
    EXPECT_EQ(p->publish(as_bytes(payload_for(99))).status, PubStatus::kFull);
    // The smallest record does not fit either.
    EXPECT_EQ(p->publish(as_bytes("")).status, PubStatus::kFull);
    EXPECT_EQ(s.claim().pos, base + kCap);
    EXPECT_EQ(stream_info(s.ns.ns(), "s")->producer_full, 2u);

    Record rec;
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(rec.seq, kBaseSeq);
    EXPECT_EQ(as_string(rec.data), payload_for(0));
    c->commit();
    auto r = p->publish(as_bytes(payload_for(kPerLap)));  // the first record of the next lap
    ASSERT_EQ(r.status, PubStatus::kOk);
    EXPECT_EQ(r.seq, kBaseSeq + kPerLap);
    EXPECT_EQ(p->publish(as_bytes(payload_for(99))).status, PubStatus::kFull);

    // The group reads everything in order, the wrapped record last.
    for (uint64_t i = 1; i <= kPerLap; ++i) {
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk) << "record " << i;
      EXPECT_EQ(rec.seq, kBaseSeq + i);
      EXPECT_EQ(as_string(rec.data), payload_for(i));
    }
    EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);
    EXPECT_EQ(c->lost(), 0u);
  }
}

// A record that would straddle the end of the ring: a pad record fills the rest of the
// ring and the record starts at index 0 of the next lap.  One that ends exactly at the
// end needs no pad; the record after it starts the next lap.
TEST(Cursors, RecordThatWouldStraddleTheEndIsPaddedAndWraps) {
  for (uint64_t base : bases()) {
    SCOPED_TRACE(base);
    {
      Stream s;
      const uint64_t at = base + kCap - 64;  // 64 bytes to the end of the ring
      s.create_at(at, kBaseSeq);
      auto c = Consumer::open(s.ns.ns(), "s");
      auto p = Producer::open(s.ns.ns(), "s", fail_when_full());
      ASSERT_TRUE(c && p);
      const std::string big = payload_for(1, 40);  // spans 96 bytes: does not fit in 64
      auto r = p->publish(as_bytes(big));
      ASSERT_EQ(r.status, PubStatus::kOk);
      EXPECT_EQ(r.seq, kBaseSeq);
      const detail::TagView pad = s.tag_at(at);
      EXPECT_TRUE(pad.lap_ok);
      EXPECT_EQ(pad.state, detail::kPad);
      EXPECT_EQ(pad.size, 64 - sizeof(detail::RecordHeader));
      const uint64_t wrapped = base + kCap;  // index 0 of the next lap
      EXPECT_EQ((wrapped & (kCap - 1)), 0u);
      const detail::TagView rec_tag = s.tag_at(wrapped);
      EXPECT_TRUE(rec_tag.lap_ok);
      EXPECT_EQ(rec_tag.state, detail::kData);
      EXPECT_EQ(rec_tag.size, big.size());
      EXPECT_EQ(s.claim().pos, wrapped + detail::record_span(big.size()));
      EXPECT_EQ(s.claim().seq, kBaseSeq + 1);  // a pad takes no sequence number
      Record rec;
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
      EXPECT_EQ(rec.seq, kBaseSeq);
      EXPECT_EQ(as_string(rec.data), big);
      EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);
      EXPECT_EQ(c->gaps(), 0u);
    }
    {
      Stream s;
      const uint64_t at = base + kCap - 64;
      s.create_at(at, kBaseSeq);
      auto c = Consumer::open(s.ns.ns(), "s");
      auto p = Producer::open(s.ns.ns(), "s", fail_when_full());
      ASSERT_TRUE(c && p);
      const std::string exact = payload_for(2, 64 - sizeof(detail::RecordHeader));  // 32
      ASSERT_EQ(p->publish(as_bytes(exact)).status, PubStatus::kOk);
      EXPECT_EQ(s.claim().pos, base + kCap);  // no pad: it ends at the end
      EXPECT_EQ(s.tag_at(at).state, detail::kData);
      auto r = p->publish(as_bytes("next lap"));
      ASSERT_EQ(r.status, PubStatus::kOk);
      EXPECT_EQ(r.seq, kBaseSeq + 1);
      EXPECT_EQ(s.claim().pos, base + kCap + detail::record_span(8));
      Record rec;
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
      EXPECT_EQ(as_string(rec.data), exact);
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
      EXPECT_EQ(rec.seq, kBaseSeq + 1);
      EXPECT_EQ(as_string(rec.data), "next lap");
    }
  }
}

// The first record after a wrap lands on the bytes the previous lap left at index 0 (a
// committed record of the same size and state, only its lap differs): a reader that kept
// up reads every record of three laps exactly once, in order, and never the old one.
TEST(Cursors, FirstRecordAfterAWrapOverThePreviousLap) {
  for (uint64_t base : bases()) {
    SCOPED_TRACE(base);
    Stream s;
    const uint64_t at = base + kCap - 2 * kSpan;  // two records before the end
    s.create_at(at, kBaseSeq);
    auto c = Consumer::open(s.ns.ns(), "s");
    auto p = Producer::open(s.ns.ns(), "s");
    ASSERT_TRUE(c && p);
    Record rec;
    for (uint64_t i = 0; i < 3 * kPerLap; ++i) {
      auto r = p->publish(as_bytes(payload_for(i)));
      ASSERT_EQ(r.status, PubStatus::kOk) << "record " << i;
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk) << "record " << i;
      ASSERT_EQ(rec.seq, kBaseSeq + i);
      ASSERT_EQ(as_string(rec.data), payload_for(i));
      // Nothing else: the bytes of the previous lap at the next index are not a record.
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout) << "after record " << i;
    }
    EXPECT_EQ(c->lost(), 0u);
    EXPECT_EQ(c->gaps(), 0u);
    EXPECT_EQ(s.claim().pos, at + 3 * kCap);
  }
}

// Records 0, 1 and 2, each read as soon as it is published.
void publish_and_read_three(Producer& p, Consumer& c) {
  Record rec;
  for (uint64_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(p.publish(as_bytes(payload_for(i))).ok());
    ASSERT_EQ(c.poll(&rec, 0ns), ReadStatus::kOk);
  }
}

// Every record from sequence `next` up to `end_seq`, once, in order, each with its
// payload; then nothing more.
void expect_every_record_from(Consumer& c, uint64_t next, uint64_t end_seq) {
  Record rec;
  ReadStatus st;
  while ((st = c.poll(&rec, 0ns)) == ReadStatus::kOk) {
    ASSERT_EQ(rec.seq, next);
    ASSERT_EQ(as_string(rec.data), payload_for(rec.seq - kBaseSeq));
    ++next;
  }
  EXPECT_EQ(st, ReadStatus::kTimeout);
  EXPECT_EQ(next, end_seq);
}

// A tailing reader that read 3 records and then stood still while `more` records went
// by.  Up to a full ring it loses nothing; past it, its next poll says kLapped and
// lost() grows by exactly the records between its position and the oldest record still
// in the ring (the floor), last_loss() names them, and the rest comes in order.
void lapped_case(uint64_t base, uint64_t more) {
  SCOPED_TRACE("base " + std::to_string(base) + ", records after the reader " +
               std::to_string(more));
  Stream s;
  s.create_at(base, kBaseSeq);
  auto c = Consumer::open(s.ns.ns(), "s");
  auto p = Producer::open(s.ns.ns(), "s");
  ASSERT_TRUE(c && p);
  publish_and_read_three(*p, *c);
  Record rec;
  for (uint64_t i = 3; i < 3 + more; ++i) ASSERT_TRUE(p->publish(as_bytes(payload_for(i))).ok());
  const uint64_t end_seq = kBaseSeq + 3 + more;
  ASSERT_EQ(s.claim().seq, end_seq);
  const detail::PosSeq floor = s.floor();
  if (more <= kPerLap) {
    // The reader's records were not overwritten: nothing lost.
    for (uint64_t i = 3; i < 3 + more; ++i) {
      ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
      ASSERT_EQ(rec.seq, kBaseSeq + i);
      ASSERT_EQ(as_string(rec.data), payload_for(i));
    }
    EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);
    EXPECT_EQ(c->lost(), 0u);
    return;
  }
  ASSERT_GT(floor.seq, kBaseSeq + 3);
  const uint64_t want_lost = floor.seq - (kBaseSeq + 3);
  // The ring holds at most a ring's worth: at least `more - 16` are gone, and producers
  // free a sixteenth of the ring ahead (one record here), no more.
  EXPECT_GE(want_lost, more - kPerLap);
  EXPECT_LE(want_lost, more - kPerLap + 1);
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kLapped);
  EXPECT_EQ(c->lost(), want_lost);
  EXPECT_TRUE(c->lost_exact());
  EXPECT_EQ(c->last_loss().from, kBaseSeq + 3);
  EXPECT_EQ(c->last_loss().to, floor.seq);
  EXPECT_EQ(c->gaps(), 0u);
  EXPECT_EQ(stream_info(s.ns.ns(), "s")->tail_lost, want_lost);
  // Then the oldest record in the ring and every one after it, once, in order.
  expect_every_record_from(*c, floor.seq, end_seq);
  EXPECT_EQ(c->lost(), want_lost);
}

TEST(Cursors, ReaderNotLappedByAFullRing) {
  for (uint64_t base : bases()) {
    lapped_case(base, kPerLap - 1);
    lapped_case(base, kPerLap);
  }
}
TEST(Cursors, ReaderLappedByOneRecord) {
  for (uint64_t base : bases()) lapped_case(base, kPerLap + 1);
}
// The record at the reader's index was rewritten exactly one lap later: same index, same
// size, same state; only the lap in its tag tells it apart.
TEST(Cursors, ReaderLappedByExactlyOneLap) {
  for (uint64_t base : bases()) lapped_case(base, 2 * kPerLap);
}
TEST(Cursors, ReaderLappedByMoreThanOneLap) {
  for (uint64_t base : bases()) {
    lapped_case(base, 3 * kPerLap + 5);
    lapped_case(base, 10 * kPerLap);
  }
}

// A tailing reader lapped once resumes at the oldest record (above).  Lapped again
// before it read half a ring past that point, it is slower than the producers: the
// oldest record is the next one they write over, so it resumes half a ring (8 records
// here) past the oldest one instead, and counts what it skipped as lost, exactly.
// `read_after` records are read between the two laps; `aborted` (indices into the
// second batch, which land in the skipped half ring) are aborted claims: gaps, not lost.
void lapped_twice_case(uint64_t base, uint64_t read_after, std::vector<uint64_t> aborted = {}) {
  SCOPED_TRACE("base " + std::to_string(base) + ", read between the laps " +
               std::to_string(read_after));
  Stream s;
  s.create_at(base, kBaseSeq);
  auto c = Consumer::open(s.ns.ns(), "s");
  auto p = Producer::open(s.ns.ns(), "s");
  ASSERT_TRUE(c && p);
  publish_and_read_three(*p, *c);
  Record rec;
  uint64_t i = 3;
  for (; i < 3 + 2 * kPerLap; ++i) ASSERT_TRUE(p->publish(as_bytes(payload_for(i))).ok());
  const detail::PosSeq floor1 = s.floor();
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kLapped);
  const uint64_t lost1 = floor1.seq - (kBaseSeq + 3);
  ASSERT_EQ(c->lost(), lost1);
  uint64_t next = floor1.seq;  // the first lap resumes at the oldest record
  for (uint64_t k = 0; k < read_after; ++k, ++next) {
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
    ASSERT_EQ(rec.seq, next);
    ASSERT_EQ(as_string(rec.data), payload_for(rec.seq - kBaseSeq));
  }
  const uint64_t batch = i;
  for (; i < batch + 2 * kPerLap; ++i) {
    if (std::find(aborted.begin(), aborted.end(), i - batch) != aborted.end()) {
      PubStatus st = PubStatus::kOk;
      Claim cl = p->claim(kPayload, 0, &st);
      ASSERT_TRUE(cl.valid()) << int(st);
      ASSERT_EQ(cl.abort(), PubStatus::kOk);
    } else {
      ASSERT_TRUE(p->publish(as_bytes(payload_for(i))).ok());
    }
  }
  const uint64_t end_seq = kBaseSeq + i;
  ASSERT_EQ(s.claim().seq, end_seq);
  const detail::PosSeq floor2 = s.floor();
  const bool racing = read_after < kPerLap / 2;
  const uint64_t resume = floor2.seq + (racing ? kPerLap / 2 : 0);
  ASSERT_LE(resume, end_seq);
  uint64_t want_gaps = 0;
  for (uint64_t a : aborted) want_gaps += kBaseSeq + batch + a < resume ? 1 : 0;
  ASSERT_EQ(want_gaps, aborted.size()) << "the aborted claims must lie in the lapped range";
  const uint64_t want_lost = lost1 + (resume - next) - want_gaps;
  ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kLapped);
  EXPECT_EQ(c->lost(), want_lost);
  EXPECT_EQ(c->gaps(), want_gaps);
  EXPECT_TRUE(c->lost_exact());
  EXPECT_EQ(c->last_loss().from, next);
  EXPECT_EQ(c->last_loss().to, resume);
  EXPECT_EQ(stream_info(s.ns.ns(), "s")->tail_lost, want_lost);
  // Then every record from there on, once, in order.
  expect_every_record_from(*c, resume, end_seq);
  EXPECT_EQ(c->lost(), want_lost);
}

TEST(Cursors, TailingReaderLappedAgainSoonAfterResumingSkipsHalfARing) {
  for (uint64_t base : bases())
    for (uint64_t read_after : {uint64_t{0}, uint64_t{1}, kPerLap / 2 - 1}) lapped_twice_case(base, read_after);
}
// Half a ring read after resuming: the next lap resumes at the oldest record again.
TEST(Cursors, TailingReaderLappedAgainAfterHalfARingResumesAtTheOldest) {
  for (uint64_t base : bases()) lapped_twice_case(base, kPerLap / 2);
}
// The claims aborted in the half ring skipped count as gaps, as lapped-over ones do.
TEST(Cursors, TailingReaderSkippingAheadCountsAbortedClaimsAsGaps) {
  for (uint64_t base : bases()) lapped_twice_case(base, 1, {18, 20});
}

// The position of the very record at the reader's index one lap later: the tag written
// there for position pos + capacity is not a record of position pos.
TEST(Cursors, TagOfTheNextLapAtTheSameIndexIsNotThisLaps) {
  for (uint64_t base : bases()) {
    const unsigned shift = static_cast<unsigned>(__builtin_ctzll(kCap));
    const uint64_t salt = 0x0123456789abcdefULL;
    for (uint64_t laps : {1, 2, 255, 256}) {
      const uint64_t tag = detail::make_tag(salt, shift, base + laps * kCap, detail::kData, kPayload);
      EXPECT_FALSE(detail::decode_tag(salt, shift, tag, base).lap_ok) << base << " " << laps;
      EXPECT_TRUE(detail::decode_tag(salt, shift, tag, base + laps * kCap).lap_ok);
    }
  }
}

// A tailing reader checks each copy against floor and reads the claim cursor only when
// floor passed the record: a record below floor that no claim has reached yet (floor
// moves a sixteenth of the ring ahead of what producers need) is still delivered, with
// nothing counted lost; one that a claim did reach is a lap (ReaderLappedBy* above).
TEST(Cursors, TailingReaderBelowFloorButNotOverwrittenReadsOn) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = kCap;
  o.max_record = 256;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto m = StreamMapping::open(ns.ns(), "s", false);
  ASSERT_TRUE(m);
  detail::StreamHeader* h = m.value()->header();
  auto p = Producer::open(ns.ns(), "s");
  ConsumerOptions co;
  co.start = StartFrom::earliest();
  auto c = Consumer::open(ns.ns(), "s", co);
  ASSERT_TRUE(p && c);
  const std::string payload(63, 'f');  // + a digit: 96-byte records
  Record rec;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(p->publish(as_bytes(payload + std::to_string(i % 10))).ok());
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
  }
  const uint64_t at = detail::load_pos(&h->claim);  // the reader's position: 288
  uint64_t n = 3;
  while (detail::load_pos(&h->floor) <= at) {
    ASSERT_TRUE(p->publish(as_bytes(payload + std::to_string(n % 10))).ok());
    ASSERT_LT(++n, 1000u);
  }
  // Floor passed the reader's next record; no claim reached it (the cursor is within a
  // ring of it).
  ASSERT_LE(detail::load_pos(&h->claim), at + kCap);
  for (uint64_t i = 3; i < n; ++i) {
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk) << i;
    EXPECT_EQ(rec.seq, i);
    EXPECT_EQ(as_string(rec.data), payload + std::to_string(i % 10));
  }
  EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);
  EXPECT_EQ(c->lost(), 0u);
}

// A durable group reading with poll_batch(), whose records after a batch's first go
// through a run of their own (next_durable_run()) with a prefetch window that stops at
// the labelled bound, at every base and just below the highest position a stream takes
// (kMaxPosition): batches of records from 0 bytes (a 32-byte span, so that bounds fall
// at 32 mod 64) to one as long as the reader's whole prefetch window (2048 bytes on this
// ring: the window's page-wise branch), 12 laps; every record once, whole, in order.
TEST(Cursors, DurableBatchReaderAtEveryBaseAndJustBelowTheTopOfTheRange) {
  std::vector<uint64_t> starts = bases();
  starts.push_back(detail::kMaxPosition - 32 * kCap);
  const std::vector<size_t> sizes = {0, 1, 31, 32, 33, 64, 100, 200, 500};  // 1376 bytes of spans
  for (uint64_t base : starts) {
    SCOPED_TRACE(base);
    Stream s;
    StreamOptions o = opts();
    o.max_record = 2048 - sizeof(detail::RecordHeader);  // a span of half the ring
    s.create_at(base, kBaseSeq, o);
    ConsumerOptions co;
    co.group = "g";
    co.start = StartFrom::earliest();
    auto c = Consumer::open(s.ns.ns(), "s", co);
    ASSERT_TRUE(c) << c.error().message;
    auto p = Producer::open(s.ns.ns(), "s", fail_when_full());
    ASSERT_TRUE(p) << p.error().message;
    uint64_t seq = kBaseSeq;
    Record recs[16];
    for (size_t round = 0; round < 40; ++round) {
      // Every 4th batch one record of the window's length; the others the small sizes,
      // in an order that turns each round, so that the bounds fall at other offsets.
      std::vector<std::string> batch;
      if (round % 4 == 3) {
        batch.push_back(payload_for(round, o.max_record));
      } else {
        for (size_t k = 0; k < sizes.size(); ++k)
          batch.push_back(payload_for(round + k, sizes[(k + round) % sizes.size()]));
      }
      std::vector<Bytes> views;
      for (const std::string& b : batch) views.push_back(as_bytes(b));
      auto r = p->publish_batch(views);
      ASSERT_EQ(r.status, PubStatus::kOk) << "round " << round;
      ASSERT_EQ(r.seq, seq);
      size_t got = 0;
      while (got < batch.size()) {
        size_t n = 0;
        ASSERT_EQ(c->poll_batch(recs, 16, &n, 0ns), ReadStatus::kOk) << "round " << round;
        ASSERT_LE(got + n, batch.size());
        for (size_t k = 0; k < n; ++k, ++got) {
          EXPECT_EQ(recs[k].seq, seq + got);
          EXPECT_EQ(as_string(recs[k].data), batch[got]) << "round " << round << ", record " << got;
        }
      }
      size_t n = 0;
      EXPECT_EQ(c->poll_batch(recs, 16, &n, 0ns), ReadStatus::kTimeout);
      c->commit();
      seq += batch.size();
    }
    EXPECT_GT(s.claim().pos, base + 12 * kCap);
    EXPECT_EQ(c->lost(), 0u);
  }
}

}  // namespace
}  // namespace shmbus
