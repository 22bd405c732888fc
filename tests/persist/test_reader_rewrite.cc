// test_reader_rewrite.cc: a reader following a live store while the writer's segment
// files change under it in the ways a writer legitimately changes them: a segment whose
// creation was never synced is removed and created again under the same name, the
// active segment is cut back to its last synced byte and written again, a crashed
// writer's store is recovered and goes on.  The reader must deliver every record that
// is in the store exactly once, in order, and never report a hole (kCorrupt) for
// records the store holds.
#include <optional>

#include "fault_env.h"
#include "watermark.h"
#include "test_util.h"

namespace shmbus::persist::test {
namespace {

StoreOptions rewrite_options() {
  StoreOptions o = small_options();
  o.segment_bytes = 16 << 10;  // about 48 records of 300 bytes
  o.write_buffer = 4096;       // about 12
  o.durability = Durability::kAsync;
  o.flush_interval = std::chrono::hours(1);  // flushes only when the test says
  return o;
}

// Reads from `r` until kEnd, checking that it delivers exactly the records
// [*expect, ...) in order, and advances *expect.
void read_on(SegmentReader& r, uint64_t* expect, size_t size) {
  for (int i = 0; i < 100000; ++i) {
    auto e = r.next();
    ASSERT_TRUE(e.ok()) << e.error().message;
    if (e->kind == EntryKind::kEnd) return;
    ASSERT_EQ(e->kind, EntryKind::kRecord)
        << entry_kind_name(e->kind) << " [" << e->seq << ", " << e->end_seq << "): " << e->detail;
    ASSERT_EQ(e->seq, *expect) << "a record delivered twice or skipped";
    const std::string data(reinterpret_cast<const char*>(e->data.data()), e->data.size());
    ASSERT_EQ(data, payload_for(e->seq, size));
    ++*expect;
  }
  FAIL() << "the reader never reached the end";
}

// A new segment's first sync fails: the writer removes the segment (its header was
// never durable) and creates it again under the same name when it writes the records
// again.  A reader that had opened the first file (its bytes were in the page cache)
// must move to the new one, not conclude at the next roll that the records are gone.
TEST(ReaderRewrite, SegmentRemovedAndCreatedAgainUnderTheSameName) {
  TempDir t;
  ScopedFaultEnv env(t.path());
  constexpr size_t kSize = 300;
  auto s = SegmentStore::open(t.path(), "ns", "st", rewrite_options());
  ASSERT_TRUE(s) << s.error().message;
  fill(*s, 0, 100, kSize);  // a few segments, all synced
  auto r = SegmentReader::open(t.path(), "ns", "st");
  ASSERT_TRUE(r) << r.error().message;
  uint64_t expect = 0;
  read_on(*r, &expect, kSize);
  ASSERT_EQ(expect, 100u);
  // A new segment starts at 20; its buffer reaches the file (not synced).
  const uint64_t segments = s->stats().segments;
  uint64_t q = 100;
  while (s->stats().segments == segments) ASSERT_TRUE(append_one(*s, q++, kSize));
  const uint64_t first = q - 1;  // the record that opened the new segment
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(append_one(*s, q++, kSize));  // the buffer is written
  read_on(*r, &expect, kSize);
  ASSERT_GT(expect, first) << "the test needs the reader inside the new segment";
  // Its first sync fails: the store goes back to the end of the sealed segments.
  env->fail_next_syncs(FaultEnv::Fault::kEio);
  ASSERT_FALSE(s->flush());
  ASSERT_EQ(s->next_seq(), first);
  // Written again "from the ring", with more, across a few rolls.
  fill(*s, first, first + 150, kSize);
  ASSERT_GT(s->stats().segments, segments + 1);
  read_on(*r, &expect, kSize);
  EXPECT_EQ(expect, first + 150);
}

// Retention (or delete_before) deletes the segment the reader is in and the ones after
// it while the reader sits at that segment's end (the file it holds is unlinked; the
// next segment listed is the first one kept).  The writer raised the watermark before it
// unlinked anything: the reader must report the range deleted, never corrupt, however
// recently it last read the watermark (the soak's "sequences missing between" reports).
TEST(ReaderRewrite, SegmentsDeletedUnderTheReaderAreReportedDeleted) {
  TempDir t;
  constexpr size_t kSize = 300;
  auto s = SegmentStore::open(t.path(), "ns", "st", rewrite_options());
  ASSERT_TRUE(s) << s.error().message;
  fill(*s, 0, 300, kSize);
  std::vector<uint64_t> firsts;
  for (const auto& n : files_with_suffix(t.stream_dir(), ".seg")) firsts.push_back(std::stoull(n.substr(0, 20)));
  ASSERT_GE(firsts.size(), 5u);
  // Within the time the reader trusts the watermark it read: made long, so that the edge
  // is reached whatever the machine's speed.
  const uint64_t saved = detail::watermark_recheck_ns();
  detail::set_watermark_recheck_ns_for_testing(uint64_t{3600} * 1'000'000'000);
  auto r = SegmentReader::open(t.path(), "ns", "st");
  ASSERT_TRUE(r) << r.error().message;
  for (uint64_t q = 0; q < firsts[1]; ++q) {  // the whole first segment, not its end
    auto e = r->next();
    ASSERT_TRUE(e.ok()) << e.error().message;
    ASSERT_EQ(e->kind, EntryKind::kRecord);
    ASSERT_EQ(e->seq, q);
  }
  // The first three segments go (watermark first, then the files).
  auto d = s->delete_before(firsts[3]);
  ASSERT_TRUE(d) << d.error().message;
  ASSERT_EQ(d->segments, 3u);
  auto e = r->next();
  detail::set_watermark_recheck_ns_for_testing(saved);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->kind, EntryKind::kDeleted) << entry_kind_name(e->kind) << ": " << e->detail;
  EXPECT_EQ(e->seq, firsts[1]);
  EXPECT_EQ(e->end_seq, firsts[3]);
  uint64_t expect = firsts[3];
  read_on(*r, &expect, kSize);
  EXPECT_EQ(expect, 300u);
}

// A reader has read records the writer had not synced; the sync fails and the store cuts
// back to its last synced record; the writer then writes otherwise from there (a lost
// range, as a let-go persister whose ring lapped it would, then newer records) and the
// file grows past the reader's offset before the reader sees it shorter.  Found by a
// review: the reader took the new bytes at its old offset for damage and reported intact
// records 40 and 41 corrupt.  It finds its position again by sequence first.
TEST(ReaderRewrite, ACutBackWrittenOtherwiseIsFoundBySequenceNotReportedCorrupt) {
  for (const StoreKind kind : {StoreKind::kFile, StoreKind::kPmem}) {
    SCOPED_TRACE(kind == StoreKind::kFile ? "file" : "pmem");
    TempDir t;
    ScopedFaultEnv env(t.path());
    constexpr size_t kSize = 300;
    StoreOptions o = rewrite_options();
    o.kind = kind;
    o.segment_bytes = 1 << 20;  // one segment
    auto s = SegmentStore::open(t.path(), "ns", "st", o);
    ASSERT_TRUE(s) << s.error().message;
    fill(*s, 0, 30, kSize);  // synced
    auto r = SegmentReader::open(t.path(), "ns", "st");
    ASSERT_TRUE(r) << r.error().message;
    uint64_t expect = 0;
    read_on(*r, &expect, kSize);
    ASSERT_EQ(expect, 30u);
    ASSERT_TRUE(append_one(*s, 30, kSize));
    ASSERT_TRUE(append_one(*s, 31, kSize));
    env->fail_next_syncs(FaultEnv::Fault::kEio);
    ASSERT_TRUE(s->flush_start());  // the bytes reach the file; their sync will fail
    read_on(*r, &expect, kSize);
    ASSERT_EQ(expect, 32u) << "the test needs the reader past the unsynced records";
    Result<bool> done = false;
    while ((done = s->flush_finish(std::chrono::milliseconds(100))) && !done.value()) {
    }
    ASSERT_FALSE(done) << "the sync was to fail";
    ASSERT_EQ(s->next_seq(), 30u);
    ASSERT_TRUE(s->append_lost(30, 40));
    fill(*s, 40, 80, kSize);
    auto e = r->next();
    ASSERT_TRUE(e.ok()) << e.error().message;
    ASSERT_EQ(e->kind, EntryKind::kLost) << entry_kind_name(e->kind) << ": " << e->detail;
    EXPECT_EQ(e->seq, 32u);
    EXPECT_EQ(e->end_seq, 40u);
    expect = 40;
    read_on(*r, &expect, kSize);
    EXPECT_EQ(expect, 80u);
  }
}

}  // namespace
}  // namespace shmbus::persist::test
