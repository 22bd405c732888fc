// test_batch_frames.cc: SegmentStore::append_batch() and the batch frames it writes
// (format version 2): what goes into one, a version 1 segment continued, damage and a
// torn tail inside one, fsck, kSync, and the reader's position inside one.
#include <algorithm>
#include <optional>
#include <cstring>
#include <string>
#include <vector>

#include "coding.h"
#include "crc32c.h"
#include "format.h"
#include "shmbus/persist/fsck.h"
#include "test_util.h"

namespace shmbus::persist::test {
namespace {

using namespace detail;

// Records [from, to) as fill() writes them (ts 1000 q, type q % 7, payload_for(q, size)),
// through append_batch() in calls of `per_call`.
struct Batch {
  std::vector<std::string> bodies;
  std::vector<Record> recs;
  Batch(uint64_t from, uint64_t to, size_t size) {
    for (uint64_t q = from; q < to; ++q) bodies.push_back(payload_for(q, size));
    for (uint64_t q = from; q < to; ++q)
      recs.push_back(Record{q, 1000 * q, static_cast<uint32_t>(q % 7), as_bytes(bodies[q - from])});
  }
};
void fill_batched(SegmentStore& s, uint64_t from, uint64_t to, size_t size, size_t per_call = 64) {
  Batch b(from, to, size);
  for (size_t i = 0; i < b.recs.size(); i += per_call) {
    const size_t n = std::min(per_call, b.recs.size() - i);
    auto r = s.append_batch(std::span<const Record>(b.recs).subspan(i, n));
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  auto f = s.flush();
  ASSERT_TRUE(f.ok()) << f.error().message;
}

struct FrameAt {
  uint64_t offset, seq, end_seq;
  FrameKind kind;
};
// Every frame of segment file `path`, in order (stops at the first that does not decode).
std::vector<FrameAt> frames_of(const std::string& path) {
  const auto raw = read_file(path);
  const Bytes all(reinterpret_cast<const std::byte*>(raw.data()), raw.size());
  std::vector<FrameAt> out;
  for (uint64_t off = kSegmentHeaderSize; off < all.size();) {
    FrameView v;
    if (decode_frame(all.subspan(off), &v) != FrameStatus::kOk) break;
    out.push_back(FrameAt{off, v.h.seq, v.end_seq, v.h.kind});
    off += v.size;
  }
  return out;
}

// The store under `t` holds exactly the records [0, to) as fill() writes them, and fsck
// finds it clean.
void expect_whole_store(TempDir& t, uint64_t to, size_t size) {
  auto r = SegmentReader::open(t.path(), "ns", "st");
  ASSERT_TRUE(r.ok());
  expect_records(drain(r.value()), 0, to, size);
  auto rep = fsck(t.path(), false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean());
  EXPECT_EQ(rep->records, to);
}

// Rewrites segment file `path`'s header as format version 1 (its CRC too), as an older
// build wrote it.
void make_version_1(const std::string& path) {
  auto raw = read_file(path);
  auto* head = reinterpret_cast<std::byte*>(raw.data());
  put_u16(head + kHdrVersion, 1);
  put_u32(head + kHdrCrc, crc32c(head, kHdrCrc));
  write_file(path, raw);
}

std::string first_segment(TempDir& t) {
  return t.stream_dir() + "/" + files_with_suffix(t.stream_dir(), ".seg").at(0);
}

TEST(BatchFrames, SmallRecordsShareFramesLargeOnesKeepTheirOwn) {
  TempDir t;
  auto o = small_options();
  o.segment_bytes = 1 << 20;
  auto s = SegmentStore::open(t.path(), "ns", "st", o);
  ASSERT_TRUE(s.ok()) << s.error().message;
  // 64 B records, one of 2000 B among them (its own data frame), one of exactly 1 KiB
  // (the largest a batch takes).
  std::vector<std::string> bodies;
  for (uint64_t q = 0; q < 200; ++q)
    bodies.push_back(payload_for(q, q == 50 ? 2000 : q == 120 ? kBatchRecordMax : 64));
  std::vector<Record> recs;
  for (uint64_t q = 0; q < 200; ++q)
    recs.push_back(Record{q, 1000 * q, static_cast<uint32_t>(q % 7), as_bytes(bodies[q])});
  ASSERT_TRUE(s->append_batch(recs).ok());
  ASSERT_TRUE(s->flush().ok());
  EXPECT_EQ(s->next_seq(), 200u);
  EXPECT_EQ(s->stats().records_appended, 200u);
  const auto frames = frames_of(first_segment(t));
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().end_seq, 200u);
  size_t batches = 0;
  for (const FrameAt& f : frames) {
    if (f.seq <= 50 && 50 < f.end_seq) {
      EXPECT_EQ(f.kind, FrameKind::kData);  // the 2000-byte record
      EXPECT_EQ(f.end_seq, 51u);
    }
    if (f.kind == FrameKind::kBatch) {
      ++batches;
      EXPECT_LE(f.end_seq - f.seq, kBatchPayloadMax / sub_record_size(64));
    }
  }
  // 64 B records: 80 bytes each in a frame of at most 4 KiB (51 of them).
  EXPECT_GE(batches, 4u);
  EXPECT_LE(frames.size(), 10u);
  auto r = SegmentReader::open(t.path(), "ns", "st");
  ASSERT_TRUE(r.ok());
  const auto got = drain(r.value());
  ASSERT_EQ(got.size(), 200u);
  for (uint64_t q = 0; q < 200; ++q) {
    ASSERT_EQ(got[q].kind, EntryKind::kRecord);
    ASSERT_EQ(got[q].seq, q);
    ASSERT_EQ(got[q].ts_ns, 1000 * q);
    ASSERT_EQ(got[q].type, q % 7);
    ASSERT_EQ(got[q].data, bodies[q]);
  }
}

// The first stamp of a sealed segment whose first frame is a batch, as a reopened store
// knows it from the index (DeletionReport::oldest_ts_ns): its first record's, not the
// batch's newest (a review: 1072 where the first deleted record was stamped 1000).
TEST(BatchFrames, AReopenedStoreKnowsTheFirstStampOfASegmentThatStartsWithABatch) {
  for (const bool reopen : {false, true}) {
    SCOPED_TRACE(reopen ? "reopened" : "same process");
    TempDir t;
    auto o = small_options();
    o.segment_bytes = 4096;
    std::optional<SegmentStore> s;
    s.emplace(std::move(SegmentStore::open(t.path(), "ns", "st", o).value()));
    std::vector<std::string> bodies;
    std::vector<Record> recs;
    for (uint64_t q = 0; q < 200; ++q) bodies.push_back(payload_for(q, 40));
    for (uint64_t q = 0; q < 200; ++q) recs.push_back(Record{q, 1000 + q, 0, as_bytes(bodies[q])});
    ASSERT_TRUE(s->append_batch(recs).ok());
    ASSERT_TRUE(s->flush().ok());
    if (reopen) {
      s.reset();
      s.emplace(std::move(SegmentStore::open(t.path(), "ns", "st", o).value()));
    }
    auto d = s->delete_before(150);
    ASSERT_TRUE(d.ok()) << d.error().message;
    ASSERT_GE(d->segments, 1u);
    EXPECT_EQ(d->oldest_ts_ns, 1000u);
  }
}

// A batch frame inside a version 1 segment: no writer puts one there (an older build
// would take it for damage), so no reader serves it and fsck reports it.
TEST(BatchFrames, ABatchInAVersion1SegmentIsDamage) {
  TempDir t;
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
    ASSERT_TRUE(s.ok());
    fill_batched(*s, 0, 100, 40);
  }
  const std::string seg = first_segment(t);
  make_version_1(seg);
  auto rep = fsck(t.path(), false);
  ASSERT_TRUE(rep.ok());
  EXPECT_FALSE(rep->clean());
  EXPECT_EQ(rep->records, 0u);
  auto r = SegmentReader::open(t.path(), "ns", "st");
  ASSERT_TRUE(r.ok());
  for (const Got& g : drain(r.value())) EXPECT_NE(g.kind, EntryKind::kRecord) << g.seq;
}

TEST(BatchFrames, RecordsThatAreNotConsecutiveAreRefusedAndNothingIsStored) {
  TempDir t;
  auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
  ASSERT_TRUE(s.ok());
  fill(*s, 0, 10, 20);
  Batch b(10, 20, 20);
  b.recs[5].seq = 40;
  auto r = s->append_batch(b.recs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(s->next_seq(), 10u);
  // Not the store's next sequence: refused as append() refuses it.
  Batch c(11, 20, 20);
  r = s->append_batch(c.recs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(s->next_seq(), 10u);
  // Nothing to store: nothing happens.
  EXPECT_TRUE(s->append_batch({}).ok());
  EXPECT_EQ(s->next_seq(), 10u);
}

// A store upgraded in place: its active segment is version 1, which a build that reads
// version 1 only must still read whole.  Batch frames wait for the next segment.
TEST(BatchFrames, AVersion1SegmentIsContinuedWithDataFramesOnly) {
  TempDir t;
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
    ASSERT_TRUE(s.ok());
    fill(*s, 0, 5, 50);
  }
  const std::string seg = first_segment(t);
  make_version_1(seg);
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_EQ(s->next_seq(), 5u);
    fill_batched(*s, 5, 400, 50);  // rolls: 16 KiB segments
    ASSERT_GE(s->stats().segments, 2u);
  }
  for (const FrameAt& f : frames_of(seg)) EXPECT_EQ(f.kind, FrameKind::kData) << f.seq;
  EXPECT_EQ(get_u16(reinterpret_cast<const std::byte*>(read_file(seg).data()) + kHdrVersion), 1);
  const auto names = files_with_suffix(t.stream_dir(), ".seg");
  const auto later = frames_of(t.stream_dir() + "/" + names.at(1));
  ASSERT_FALSE(later.empty());  // (its first record may be the one that rolled: a data frame)
  EXPECT_TRUE(std::any_of(later.begin(), later.end(),
                          [](const FrameAt& f) { return f.kind == FrameKind::kBatch; }));
  expect_whole_store(t, 400, 50);
}

// One flipped byte inside a batch frame of a sealed segment: the records of that frame
// are reported corrupt, every other record is read, fsck names the range and --repair
// keeps the rest.
TEST(BatchFrames, ADamagedBatchCostsItsOwnRecordsOnly) {
  TempDir t;
  {
    auto o = small_options();
    o.index_interval = 64 << 10;  // no index entry helps: the frame after is found by its span
    auto s = SegmentStore::open(t.path(), "ns", "st", o);
    ASSERT_TRUE(s.ok());
    fill_batched(*s, 0, 600, 40);
    ASSERT_GE(s->stats().segments, 2u);
  }
  const std::string seg = first_segment(t);
  const auto frames = frames_of(seg);
  ASSERT_GE(frames.size(), 4u);
  const FrameAt victim = frames[2];
  ASSERT_EQ(victim.kind, FrameKind::kBatch);
  auto raw = read_file(seg);
  raw[victim.offset + kFrameHeaderSize + 40] ^= 0x10;  // a byte of its second record
  write_file(seg, raw);

  auto r = SegmentReader::open(t.path(), "ns", "st");
  ASSERT_TRUE(r.ok());
  const auto got = drain(r.value());
  std::vector<Got> records;
  uint64_t corrupt_from = UINT64_MAX, corrupt_to = 0;
  for (const Got& g : got) {
    if (g.kind == EntryKind::kRecord) {
      records.push_back(g);
    } else {
      ASSERT_EQ(g.kind, EntryKind::kCorrupt) << g.detail;
      corrupt_from = std::min(corrupt_from, g.seq);
      corrupt_to = std::max(corrupt_to, g.end_seq);
    }
  }
  EXPECT_EQ(corrupt_from, victim.seq);
  EXPECT_EQ(corrupt_to, victim.end_seq);
  ASSERT_EQ(records.size(), 600 - (victim.end_seq - victim.seq));
  for (const Got& g : records) {
    EXPECT_TRUE(g.seq < victim.seq || g.seq >= victim.end_seq) << g.seq;
    ASSERT_EQ(g.data, payload_for(g.seq, 40)) << g.seq;
  }
  auto rep = fsck(t.path(), false);
  ASSERT_TRUE(rep.ok());
  EXPECT_FALSE(rep->clean());
  EXPECT_EQ(rep->records, 600 - (victim.end_seq - victim.seq));
  auto fixed = fsck(t.path(), true);
  ASSERT_TRUE(fixed.ok());
  auto again = fsck(t.path(), false);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->clean());
  auto r2 = SegmentReader::open(t.path(), "ns", "st");
  ASSERT_TRUE(r2.ok());
  uint64_t n = 0;
  for (const Got& g : drain(r2.value()))
    if (g.kind == EntryKind::kRecord) {
      ASSERT_EQ(g.data, payload_for(g.seq, 40));
      ++n;
    }
  EXPECT_EQ(n, records.size());
}

// A crash inside the write of a batch frame: recovery cuts the whole frame and the store
// continues at its first record (all of a frame or none of it).
TEST(BatchFrames, ATornBatchIsCutWhole) {
  TempDir t;
  {
    auto o = small_options();
    o.segment_bytes = 1 << 20;
    auto s = SegmentStore::open(t.path(), "ns", "st", o);
    ASSERT_TRUE(s.ok());
    fill_batched(*s, 0, 300, 30);
  }
  const std::string seg = first_segment(t);
  const auto frames = frames_of(seg);
  ASSERT_GE(frames.size(), 2u);
  const FrameAt last = frames.back();
  ASSERT_EQ(last.kind, FrameKind::kBatch);
  auto raw = read_file(seg);
  raw.resize(last.offset + kFrameHeaderSize + 100);  // cut inside its records
  write_file(seg, raw);
  {
    auto o = small_options();
    o.segment_bytes = 1 << 20;
    auto s = SegmentStore::open(t.path(), "ns", "st", o);
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->next_seq(), last.seq);
    fill_batched(*s, last.seq, 300, 30);
  }
  auto r = SegmentReader::open(t.path(), "ns", "st");
  ASSERT_TRUE(r.ok());
  expect_records(drain(r.value()), 0, 300, 30);
}

// The pmem store writes the same bytes (its sink has no write buffer to build a frame
// in: the frame goes through append()), across rolls and a reopen.
TEST(BatchFrames, ThePmemStoreWritesAndReopensThem) {
  TempDir t;
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options(StoreKind::kPmem));
    ASSERT_TRUE(s.ok()) << s.error().message;
    fill_batched(*s, 0, 500, 33, 50);
    ASSERT_GE(s->stats().segments, 2u);
  }
  EXPECT_EQ(frames_of(first_segment(t)).at(0).kind, FrameKind::kBatch);
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options(StoreKind::kPmem));
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->next_seq(), 500u);
    fill_batched(*s, 500, 700, 33, 50);
  }
  expect_whole_store(t, 700, 33);
}

TEST(BatchFrames, SyncDurabilityMakesAWholeCallDurable) {
  TempDir t;
  auto o = small_options();
  o.durability = Durability::kSync;
  auto s = SegmentStore::open(t.path(), "ns", "st", o);
  ASSERT_TRUE(s.ok());
  Batch b(0, 100, 16);
  ASSERT_TRUE(s->append_batch(b.recs).ok());
  EXPECT_EQ(s->durable_seq(), 100u);
  EXPECT_EQ(s->stats().records_appended, 100u);
}

// The reader's position inside a batch frame: a seek to any record of one, by sequence
// and by time, starts there; position() counts the records returned.
TEST(BatchFrames, TheReaderStopsAndSeeksInsideABatch) {
  TempDir t;
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
    ASSERT_TRUE(s.ok());
    fill_batched(*s, 0, 120, 24, 120);
  }
  auto r = SegmentReader::open(t.path(), "ns", "st");
  ASSERT_TRUE(r.ok());
  for (uint64_t q = 0; q < 5; ++q) {
    auto e = r->next();
    ASSERT_TRUE(e.ok());
    ASSERT_EQ(e->seq, q);
    EXPECT_EQ(r->position(), q + 1);
  }
  for (uint64_t q : {1, 17, 33, 34, 64, 99, 119}) {
    ASSERT_TRUE(r->seek_seq(q).ok());
    expect_records(drain(r.value()), q, 120, 24);
    ASSERT_TRUE(r->seek_time(1000 * q - 1).ok());
    expect_records(drain(r.value()), q, 120, 24);
  }
}

}  // namespace
}  // namespace shmbus::persist::test
