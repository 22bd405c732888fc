// Stale bytes at a header position (issue 9, found by the soak): the 8 bytes where the
// next record's tag will go hold whatever an older lap left there (payload bytes, the
// unwritten tail of a padded record, an old tag).  One in about 2^30 such values decodes
// as a valid tag of this lap.  Each test plants such a value where no producer has
// written its tag yet and checks that no reader trusts it; each failed on the code
// before the fix (kCorrupt, a garbage record delivered, a record skipped, a publish
// refused, or a consumer started above a pending claim).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "layout.h"
#include "mapping.h"
#include "ring.h"
#include "../common/scratch.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;
using test::as_string;

StreamOptions small_ring() {
  StreamOptions o;
  o.capacity = 1 << 16;
  o.max_record = 1024;
  o.abandon_timeout = std::chrono::milliseconds(10'000);
  o.consumer_dead_timeout = std::chrono::milliseconds(20'000);
  return o;
}

// A value that decode_tag() accepts at `pos` for this lap: what stale bytes look like
// once in ~2^30.
uint64_t forged_tag(const StreamMapping& m, uint64_t pos, uint64_t state, uint64_t size) {
  return detail::make_tag(m.salt(), m.lap_shift(), pos, state, size);
}

enum class Stale { kDataBadSize, kDataPlausible, kGapPlausible, kPadPlausible };
struct StaleCase {
  Stale what;
  bool durable;
};
std::string stale_name(Stale s) {
  static const char* names[] = {"DataBadSize", "DataPlausible", "GapPlausible", "PadPlausible"};
  return names[static_cast<int>(s)];
}
std::string case_name(const ::testing::TestParamInfo<StaleCase>& i) {
  return stale_name(i.param.what) + (i.param.durable ? "Durable" : "Tailing");
}
std::string claimed_name(const ::testing::TestParamInfo<Stale>& i) { return stale_name(i.param); }

ConsumerOptions from(StartFrom where, std::string group = {}) {
  ConsumerOptions o;
  o.group = std::move(group);
  o.start = where;
  return o;
}

void plant(const StreamMapping& m, uint64_t pos, Stale what, uint64_t next_seq) {
  detail::RecordHeader* r = m.record_at(pos);
  switch (what) {
    case Stale::kDataBadSize: r->tag.store(forged_tag(m, pos, detail::kData, 100'000)); break;
    case Stale::kDataPlausible:
      // As plausible as stale bytes can be: the sequence the reader expects next.
      r->seq = next_seq;
      std::memcpy(m.payload_at(pos), "stale!", 6);
      r->tag.store(forged_tag(m, pos, detail::kData, 6));
      break;
    case Stale::kGapPlausible: r->tag.store(forged_tag(m, pos, detail::kGap, 40)); break;
    case Stale::kPadPlausible: r->tag.store(forged_tag(m, pos, detail::kPad, 40)); break;
  }
}

class StaleTagAtFrontier : public ::testing::TestWithParam<StaleCase> {};

// The soak's case: a caught-up consumer waits at pos == claim.pos (nothing claimed there)
// and reads old bytes that decode as this lap's tag.  Nothing is committed there: the
// poll must time out, and the record later published there must be read as usual.
TEST_P(StaleTagAtFrontier, UnclaimedIsNeverTrusted) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small_ring()));
  auto m = StreamMapping::open(ns.ns(), "s", false);
  ASSERT_TRUE(m);
  const StreamMapping& map = *m.value();
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  ConsumerOptions co;
  co.start = StartFrom::earliest();
  if (GetParam().durable) co.group = "g";
  auto c = Consumer::open(ns.ns(), "s", co);
  ASSERT_TRUE(c);
  Record rec;
  for (const char* s : {"a", "bb", "ccc"}) {
    ASSERT_TRUE(p->publish(as_bytes(s)).ok());
    ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);
    EXPECT_EQ(as_string(rec.data), s);
  }
  const uint64_t pos = detail::load_pos(&map.header()->claim);
  plant(map, pos, GetParam().what, 3);
  EXPECT_EQ(c->poll(&rec, 20ms), ReadStatus::kTimeout);
  EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);
  // The producer that then claims pos writes its own tag over the stale one.
  ASSERT_EQ(p->publish(as_bytes("dddd")).status, PubStatus::kOk);
  ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 3u);
  EXPECT_EQ(as_string(rec.data), "dddd");
  EXPECT_EQ(c->gaps(), 0u);
  EXPECT_EQ(c->lost(), 0u);
  // A consumer opened now reads all four.
  auto c2 = Consumer::open(ns.ns(), "s", from(StartFrom::earliest()));
  ASSERT_TRUE(c2);
  for (const char* s : {"a", "bb", "ccc", "dddd"}) {
    ASSERT_EQ(c2->poll(&rec, 1s), ReadStatus::kOk);
    EXPECT_EQ(as_string(rec.data), s);
  }
  EXPECT_EQ(c2->poll(&rec, 0ns), ReadStatus::kTimeout);
}

INSTANTIATE_TEST_SUITE_P(Ring, StaleTagAtFrontier,
                         ::testing::Values(StaleCase{Stale::kDataBadSize, false},
                                           StaleCase{Stale::kDataBadSize, true},
                                           StaleCase{Stale::kDataPlausible, false},
                                           StaleCase{Stale::kDataPlausible, true},
                                           StaleCase{Stale::kGapPlausible, false},
                                           StaleCase{Stale::kGapPlausible, true},
                                           StaleCase{Stale::kPadPlausible, false},
                                           StaleCase{Stale::kPadPlausible, true}),
                         case_name);

// A producer between its claim CAS and its pending tag (as a producer preempted there,
// done by hand): the position is claimed, but its header still holds stale bytes.
// Neither a consumer at that position nor one opening at `latest` may trust them.
class ClaimedNotLabelled : public ::testing::TestWithParam<Stale> {};

TEST_P(ClaimedNotLabelled, IsNeverTrusted) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small_ring()));
  auto m = StreamMapping::open(ns.ns(), "s", false);
  ASSERT_TRUE(m);
  const StreamMapping& map = *m.value();
  detail::StreamHeader* h = map.header();
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  auto c = Consumer::open(ns.ns(), "s", from(StartFrom::earliest()));
  ASSERT_TRUE(c);
  Record rec;
  ASSERT_TRUE(p->publish(as_bytes("a")).ok());
  ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);

  // The live producer's slot (the only one taken) claims [pos, pos + span) as reserve()
  // does: `claiming` first, then the CAS16; its tag is not written yet.
  detail::ProducerSlot* slot = map.producer_slot(0);
  ASSERT_NE(slot->owner.load(), 0u);
  detail::PosSeq cur = detail::load16(&h->claim);
  const uint64_t pos = cur.pos;
  const uint64_t span = detail::record_span(6);
  slot->claiming.store(pos, std::memory_order_release);
  ASSERT_TRUE(detail::cas16(&h->claim, &cur, detail::PosSeq{pos + span, cur.seq + 1}));
  plant(map, pos, GetParam(), cur.seq);

  EXPECT_EQ(c->poll(&rec, 20ms), ReadStatus::kTimeout);
  // A durable consumer opening at `latest` must not start above the pending claim.
  auto late = Consumer::open(ns.ns(), "s", from(StartFrom::latest(), "late"));
  ASSERT_TRUE(late);
  for (uint32_t i = 0; i < detail::kMaxConsumers; ++i) {
    detail::ConsumerSlot* s = map.consumer_slot(i);
    if (s->state.load() == detail::kSlotReady && std::strcmp(s->name, "late") == 0) {
      EXPECT_LE(s->position.load(), pos) << "started above a pending claim";
    }
  }

  // The producer goes on: its pending tag, the fields, the payload, `claiming` cleared,
  // the commit (as begin(), claimed() and commit() do).
  detail::RecordHeader* r = map.record_at(pos);
  r->seq = cur.seq;
  r->ts_ns = 1;
  r->type = 0;
  r->owner = detail::owner_label(0, slot->generation.load());
  r->tag.store(forged_tag(map, pos, detail::kPending, 6), std::memory_order_release);
  slot->claiming.store(~0ULL, std::memory_order_release);
  std::memcpy(map.payload_at(pos), "real!!", 6);
  r->tag.store(forged_tag(map, pos, detail::kData, 6));
  ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);
  EXPECT_EQ(as_string(rec.data), "real!!");
  EXPECT_EQ(rec.seq, cur.seq);
  EXPECT_EQ(c->gaps(), 0u);
  ASSERT_TRUE(p->publish(as_bytes("b")).ok());
  ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);
  EXPECT_EQ(as_string(rec.data), "b");
}

INSTANTIATE_TEST_SUITE_P(Ring, ClaimedNotLabelled,
                         ::testing::Values(Stale::kDataBadSize, Stale::kDataPlausible,
                                           Stale::kGapPlausible, Stale::kPadPlausible),
                         claimed_name);

// The head scan of a producer that needs room meets the same claim: stale bytes there
// that look like a committed record must not move head (and so the floor) past it, or
// other producers overwrite the claim before its producer has even written its tag.
TEST(Ring, HeadNeverPassesAClaimWithoutItsTag) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small_ring()));
  auto m = StreamMapping::open(ns.ns(), "s", false);
  ASSERT_TRUE(m);
  const StreamMapping& map = *m.value();
  detail::StreamHeader* h = map.header();
  auto slow = Producer::open(ns.ns(), "s");  // slot 0: the one between claim and tag
  ASSERT_TRUE(slow);
  ProducerOptions po;
  po.when_full = FullPolicy::kFail;
  auto fast = Producer::open(ns.ns(), "s", po);
  ASSERT_TRUE(fast);
  ASSERT_TRUE(fast->publish(as_bytes("a")).ok());
  detail::ProducerSlot* slot = map.producer_slot(0);
  detail::PosSeq cur = detail::load16(&h->claim);
  const uint64_t pos = cur.pos;
  slot->claiming.store(pos, std::memory_order_release);
  ASSERT_TRUE(detail::cas16(&h->claim, &cur, detail::PosSeq{pos + detail::record_span(6), cur.seq + 1}));
  // Stale bytes that pass for a committed 1000-byte record.
  map.record_at(pos)->tag.store(forged_tag(map, pos, detail::kData, 1000));
  const std::string payload(100, 'x');
  PubStatus st = PubStatus::kOk;
  for (int i = 0; i < 10'000 && st == PubStatus::kOk; ++i) st = fast->publish(as_bytes(payload)).status;
  EXPECT_EQ(st, PubStatus::kFull);
  EXPECT_LE(detail::load_pos(&h->claim), pos + map.capacity()) << "a claim overwrote the pending one";
  EXPECT_LE(detail::load_pos(&h->head), pos) << "head passed it";
  slot->claiming.store(~0ULL, std::memory_order_release);
}

// labelled_below() walks only the producer slots below the high-water mark (layout
// version 4): a producer in a higher slot raises it before its first claim, so its
// advertised claim still holds readers back; the mark never falls when producers leave,
// and a forged mark only makes the walk longer.
TEST(Ring, LabelledBelowSeesEveryProducerSlotEverTaken) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small_ring()));
  auto m = StreamMapping::open(ns.ns(), "s", false);
  ASSERT_TRUE(m);
  const StreamMapping& map = *m.value();
  detail::StreamHeader* h = map.header();
  EXPECT_EQ(detail::producer_slots_in_use(h), 0u);
  auto p0 = Producer::open(ns.ns(), "s");
  auto p1 = Producer::open(ns.ns(), "s");
  auto p2 = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p0 && p1 && p2);
  EXPECT_EQ(detail::producer_slots_in_use(h), 3u);
  ASSERT_TRUE(p2->publish(as_bytes("a")).ok());
  p0->close();
  p1->close();
  EXPECT_EQ(detail::producer_slots_in_use(h), 3u) << "the mark fell";

  // Slot 2 (the only one still taken) claims as reserve() does: `claiming`, then CAS16.
  detail::ProducerSlot* slot = map.producer_slot(2);
  ASSERT_NE(slot->owner.load(), 0u);
  detail::PosSeq cur = detail::load16(&h->claim);
  const uint64_t pos = cur.pos;
  slot->claiming.store(pos, std::memory_order_release);
  ASSERT_TRUE(detail::cas16(&h->claim, &cur, detail::PosSeq{pos + detail::record_span(6), cur.seq + 1}));
  EXPECT_EQ(detail::labelled_below(map), pos);
  // A consumer at that position trusts no stale bytes there.
  map.record_at(pos)->tag.store(forged_tag(map, pos, detail::kData, 6));
  auto c = Consumer::open(ns.ns(), "s", from(StartFrom::earliest()));
  ASSERT_TRUE(c);
  Record rec;
  ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);
  EXPECT_EQ(as_string(rec.data), "a");
  EXPECT_EQ(c->poll(&rec, 20ms), ReadStatus::kTimeout);
  slot->claiming.store(~0ULL, std::memory_order_release);

  h->producer_hwm.store(1000);  // forged: bounded by the slot count
  EXPECT_EQ(detail::producer_slots_in_use(h), detail::kMaxProducers);
  EXPECT_EQ(detail::labelled_below(map), detail::load_pos(&h->claim));
}

// Stale bytes are not always chance: they are payload, and whoever writes payloads may
// choose them.  One producer's record of one lap carries, where the next lap will put
// the header of a later record, that header: a data tag of that lap and position and
// the very sequence a caught-up reader will expect there (the salt is readable by anyone
// who can open the stream).  Nothing published there yet: the reader must wait, and then
// read the honest producer's record.  A first-look belief by sequence (be54093, reverted)
// returned the forged record and skipped the honest one, uncounted (found by a review).
class ForgedNextLapHeader : public ::testing::TestWithParam<bool> {};

TEST_P(ForgedNextLapHeader, InAPayloadIsNeverBelieved) {
  test::ScopedNs ns;
  StreamOptions so;
  so.capacity = 4096;
  so.max_record = 1024;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  auto m = StreamMapping::open(ns.ns(), "s", true);
  ASSERT_TRUE(m);
  const StreamMapping& map = *m.value();
  auto evil = Producer::open(ns.ns(), "s");
  auto honest = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(evil && honest);
  ConsumerOptions co;
  co.start = StartFrom::earliest();
  if (GetParam()) co.group = "g";
  auto c = Consumer::open(ns.ns(), "s", co);
  ASSERT_TRUE(c);
  Record rec;
  // Lap 0, position 0 (seq 0): the payload lies at 32..95, where lap 1's record at
  // 4096 + 32 (seq 127, after 126 empty records of 32 bytes) will have its header.
  uint64_t forged[8] = {forged_tag(map, 4096 + 32, detail::kData, 6), 127, 0x1111, 0, 0, 0, 0, 0};
  std::memcpy(&forged[4], "FORGED", 6);
  ASSERT_TRUE(evil->publish(Bytes(reinterpret_cast<const std::byte*>(forged), sizeof forged)).ok());
  ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);
  for (int i = 0; i < 126; ++i) {  // seqs 1..126: the rest of lap 0, then 4096 in lap 1
    ASSERT_TRUE(honest->publish(as_bytes("")).ok());
    ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);
  }
  ASSERT_EQ(rec.seq, 126u);
  EXPECT_EQ(c->poll(&rec, 20ms), ReadStatus::kTimeout);
  ASSERT_EQ(honest->publish(as_bytes("real-1")).seq, 127u);
  ASSERT_EQ(honest->publish(as_bytes("real-2")).seq, 128u);
  for (const char* s : {"real-1", "real-2"}) {
    ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);
    EXPECT_EQ(as_string(rec.data), s);
  }
  EXPECT_EQ(c->gaps(), 0u);
  EXPECT_EQ(c->lost(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Ring, ForgedNextLapHeader, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return std::string(i.param ? "Durable" : "Tailing");
                         });

}  // namespace
}  // namespace shmbus
