// test_retention.cc: deleting old segments by age and by size (never the active
// one), delete_before inside a segment, deletion statistics, secure deletion.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "format.h"
#include "test_util.h"
#include "watermark.h"
#include "crc32c.h"
#include "fault_env.h"

namespace shmbus::persist::test {
namespace {

using namespace detail;

// Records 0..99 (ts = 1000 * seq, 100-byte payloads, 136-byte frames) in 4 KiB
// segments of 28 records: [0,28) [28,56) [56,84) sealed, [84,100) active.
class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override { open_store(); }
  void open_store(bool secure = false) {
    auto o = small_options();
    o.segment_bytes = 4096;
    o.secure_delete = secure;
    auto s = SegmentStore::open(t_.path(), "ns", "st", o);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_.emplace(std::move(s.value()));
    if (store_->next_seq() == 0) {
      fill(*store_, 0, 100, 100);
      ASSERT_EQ(store_->stats().segments, 4u);
    }
  }
  uint64_t seg_bytes(uint64_t first) {
    return size_of(t_.stream_dir() + "/" + segment_file_name(first)) +
           size_of(t_.stream_dir() + "/" + index_file_name(first));
  }
  TempDir t_;
  std::optional<SegmentStore> store_;
};

TEST_F(RetentionTest, ByAge) {
  const uint64_t bytes0 = seg_bytes(0);
  // Segment 0's newest record is at 27000; segment 1's at 55000.
  auto rep = store_->apply_retention(std::chrono::nanoseconds(50'000), 0, 100'000);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  EXPECT_EQ(rep->segments, 1u);
  EXPECT_EQ(rep->records, 28u);
  EXPECT_EQ(rep->bytes, bytes0);
  EXPECT_EQ(rep->first_seq, 0u);
  EXPECT_EQ(rep->end_seq, 28u);
  EXPECT_EQ(rep->oldest_ts_ns, 0u);
  EXPECT_EQ(rep->newest_ts_ns, 27'000u);
  EXPECT_EQ(rep->at_ns, 100'000u);
  EXPECT_EQ(rep->deleted_below, 28u);
  EXPECT_FALSE(std::filesystem::exists(t_.stream_dir() + "/" + segment_file_name(0)));
  EXPECT_FALSE(std::filesystem::exists(t_.stream_dir() + "/" + index_file_name(0)));
  // A cutoff equal to a segment's newest record keeps it (strictly older only).
  rep = store_->apply_retention(std::chrono::nanoseconds(45'000), 0, 100'000);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->segments, 0u);
  auto st = store_->stats();
  EXPECT_EQ(st.oldest_seq, 28u);
  EXPECT_EQ(st.segments, 3u);
  EXPECT_EQ(st.deleted_records, 28u);
  EXPECT_EQ(st.deleted_bytes, bytes0);
  EXPECT_EQ(st.last_delete_ns, 100'000u);
  expect_records(read_all(t_.path()), 28, 100, 100);
  // Everything is old: every sealed segment goes, the active one stays.
  rep = store_->apply_retention(std::chrono::nanoseconds(1), 0, 1'000'000'000);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->segments, 2u);
  EXPECT_EQ(rep->records, 56u);
  EXPECT_EQ(rep->first_seq, 28u);
  EXPECT_EQ(rep->end_seq, 84u);
  EXPECT_EQ(store_->stats().segments, 1u);
  rep = store_->apply_retention(std::chrono::nanoseconds(1), 0, 1'000'000'000);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->segments, 0u);
  expect_records(read_all(t_.path()), 84, 100, 100);
  EXPECT_EQ(store_->stats().deleted_records, 84u);
}

TEST_F(RetentionTest, ByBytes) {
  const uint64_t total = store_->stats().bytes_on_disk;
  const uint64_t bytes0 = seg_bytes(0);
  EXPECT_EQ(total, bytes0 + seg_bytes(28) + seg_bytes(56) + seg_bytes(84));
  auto rep = store_->apply_retention(std::chrono::nanoseconds(0), total, 0);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->segments, 0u);  // at the limit: nothing to do
  rep = store_->apply_retention(std::chrono::nanoseconds(0), total - 1, 0);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->segments, 1u);  // one byte over: the oldest segment
  EXPECT_EQ(store_->stats().bytes_on_disk, total - bytes0);
  rep = store_->apply_retention(std::chrono::nanoseconds(0), 1, 0);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->segments, 2u);  // all sealed ones; the active one is never deleted
  EXPECT_EQ(store_->stats().segments, 1u);
  EXPECT_EQ(store_->stats().bytes_on_disk, seg_bytes(84));
  // Appending goes on, and retention by age and size combine.
  fill(*store_, 100, 200, 100);
  const uint64_t before = store_->stats().segments;
  rep = store_->apply_retention(std::chrono::nanoseconds(1000 * 100), 1, 200'000);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(store_->stats().segments, 1u);
  EXPECT_EQ(rep->segments, before - 1);
}

TEST_F(RetentionTest, DeleteBeforeInsideASegment) {
  auto rep = store_->delete_before(40);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  EXPECT_EQ(rep->segments, 1u);  // [0,28) lies wholly below; [28,56) is kept
  EXPECT_EQ(rep->end_seq, 28u);
  EXPECT_EQ(rep->deleted_below, 40u);
  EXPECT_TRUE(std::filesystem::exists(t_.stream_dir() + "/" + segment_file_name(28)));
  auto check = [&] {
    expect_records(read_all(t_.path()), 40, 100, 100);
    auto r = SegmentReader::open(t_.path(), "ns", "st");
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->seek_seq(30).ok());
    auto got = drain(r.value());
    ASSERT_EQ(got.size(), 61u);
    EXPECT_EQ(got[0].kind, EntryKind::kDeleted);
    EXPECT_EQ(got[0].seq, 30u);
    EXPECT_EQ(got[0].end_seq, 40u);
    EXPECT_EQ(got[1].seq, 40u);
    ASSERT_TRUE(r->seek_time(0).ok());  // by time: the first record still served
    got = drain(r.value());
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got[0].kind, EntryKind::kRecord);
    EXPECT_EQ(got[0].seq, 40u);
    EXPECT_EQ(got.size(), 60u);
    ASSERT_TRUE(r->seek_time(35'000).ok());
    EXPECT_EQ(drain(r.value()).front().seq, 40u);
  };
  check();
  EXPECT_EQ(store_->stats().oldest_seq, 40u);
  // Lower requests change nothing; the watermark survives a reopen.
  rep = store_->delete_before(10);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->segments, 0u);
  EXPECT_EQ(rep->deleted_below, 40u);
  store_.reset();
  open_store();
  EXPECT_EQ(store_->stats().deleted_below, 40u);
  check();
}

// Issue 7 point 10: a sequence above the store's end is refused (it would hide every
// later record for ever); the end itself deletes everything stored.
TEST_F(RetentionTest, DeleteBeforeBeyondTheEndIsRefused) {
  auto rep = store_->delete_before(150);
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.error().code, Errc::kInvalidArgument);
  EXPECT_NE(rep.error().message.find("ends at sequence 100"), std::string::npos)
      << rep.error().message;
  EXPECT_EQ(store_->stats().deleted_below, 0u);
  EXPECT_EQ(read_all(t_.path()).size(), 100u);
  rep = store_->delete_before(100);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  EXPECT_EQ(rep->segments, 3u);
  EXPECT_EQ(read_all(t_.path()).size(), 0u);
  fill(*store_, 100, 160, 100);
  expect_records(read_all(t_.path()), 100, 160, 100);
}

TEST_F(RetentionTest, ReaderInsideASegmentSeesTheWatermark) {
  auto r = SegmentReader::open(t_.path(), "ns", "st");
  ASSERT_TRUE(r.ok());
  for (int i = 0; i < 5; ++i) ASSERT_EQ(r->next()->kind, EntryKind::kRecord);
  ASSERT_TRUE(store_->delete_before(40).ok());  // unlinks the segment being read
  std::this_thread::sleep_for(std::chrono::milliseconds(15));
  auto e = r->next();
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, EntryKind::kDeleted);
  EXPECT_EQ(e->seq, 5u);
  EXPECT_EQ(e->end_seq, 40u);
  EXPECT_EQ(r->next()->seq, 40u);
}

TEST_F(RetentionTest, SecureDeleteOverwritesBeforeUnlinking) {
  store_.reset();
  open_store(/*secure=*/true);
  const std::string path = t_.stream_dir() + "/" + segment_file_name(0);
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const uint64_t size = size_of(path);
  ASSERT_TRUE(store_->delete_before(28).ok());
  EXPECT_FALSE(std::filesystem::exists(path));
  std::vector<char> buf(size);
  ASSERT_EQ(::pread(fd, buf.data(), size, 0), static_cast<ssize_t>(size));
  ::close(fd);
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](char c) { return c == 0; }));
}

// Issue 7 point 7: a crash during a secure erase leaves the oldest segment half zeroed
// (its header first) with the watermark already above it.  The next open finishes the
// deletion (overwriting the rest with --secure) instead of refusing the store.
TEST_F(RetentionTest, CrashDuringSecureEraseIsFinishedByTheNextOpen) {
  store_.reset();
  const std::string path = t_.stream_dir() + "/" + segment_file_name(0);
  const uint64_t size = size_of(path);
  {
    auto dir = ::open(t_.stream_dir().c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(dir, 0);
    ASSERT_TRUE(write_watermark(dir, Watermark{28, 1}).ok());
    ::close(dir);
  }
  std::vector<char> bytes = read_file(path);
  std::fill(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(size / 2), '\0');
  write_file(path, bytes);
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  open_store(/*secure=*/true);
  ASSERT_TRUE(store_);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(t_.stream_dir() + "/" + index_file_name(0)));
  std::vector<char> buf(size);
  ASSERT_EQ(::pread(fd, buf.data(), size, 0), static_cast<ssize_t>(size));
  ::close(fd);
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](char c) { return c == 0; }))
      << "the rest of the segment's plaintext survived";
  expect_records(read_all(t_.path()), 28, 100, 100);
}

// Issue 7 point 6: on a completely full file system retention and delete_before still
// delete (the watermark is raised in place, in a file made at open), and the raised
// watermark survives a power loss.
TEST_F(RetentionTest, DeletionWorksOnAFullDisk) {
  store_.reset();
  ScopedFaultEnv env(t_.path());
  open_store();
  env->set_disk_full(true);
  auto rep = store_->apply_retention(std::chrono::nanoseconds(0), 1, 0);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  EXPECT_EQ(rep->segments, 3u);
  EXPECT_EQ(rep->deleted_below, 84u);
  auto d = store_->delete_before(90);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->deleted_below, 90u);
  env->crash();
  store_.reset();
  env->lose_power();
  env->set_disk_full(false);
  open_store();
  EXPECT_EQ(store_->stats().deleted_below, 90u);
  expect_records(read_all(t_.path()), 90, 100, 100);
  EXPECT_FALSE(std::filesystem::exists(t_.stream_dir() + "/" + segment_file_name(0)));
}

// A version 1 watermark file (40 bytes, replaced by rename) is still read, and the
// writer turns it into version 2 at open.
TEST_F(RetentionTest, Version1WatermarkIsReadAndConverted) {
  store_.reset();
  std::vector<char> v1(40, 0);
  std::memcpy(v1.data(), "SHMBWMK", 8);
  v1[8] = 1;
  v1[10] = 40;
  const uint64_t below = 30, at = 7;
  std::memcpy(v1.data() + 16, &below, 8);  // little-endian host (as the tests assume)
  std::memcpy(v1.data() + 24, &at, 8);
  const uint32_t crc = crc32c(reinterpret_cast<const std::byte*>(v1.data()), 32);
  std::memcpy(v1.data() + 32, &crc, 4);
  write_file(t_.stream_dir() + "/watermark", v1);
  auto r = SegmentReader::open(t_.path(), "ns", "st");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(drain(r.value()).front().seq, 30u);
  open_store();
  EXPECT_EQ(store_->stats().deleted_below, 30u);
  EXPECT_EQ(size_of(t_.stream_dir() + "/watermark"), 1024u);
  ASSERT_TRUE(store_->delete_before(40).ok());
  store_.reset();
  open_store();
  EXPECT_EQ(store_->stats().deleted_below, 40u);
}

}  // namespace
}  // namespace shmbus::persist::test

namespace shmbus::persist::test {
namespace {

// Issue 14 point 5: a segment fsck quarantined (NNNN.seg.corrupt) is freed by retention
// once everything around it is deleted, and overwritten first with secure_delete.
TEST_F(RetentionTest, QuarantinedSegmentsGoWithRetentionOverwrittenWhenSecure) {
  store_.reset();
  open_store(/*secure=*/true);
  const std::string q = t_.stream_dir() + "/" + segment_file_name(0) + ".corrupt";
  const std::string q_later = t_.stream_dir() + "/" + segment_file_name(56) + ".corrupt.1";
  write_file(q, std::vector<char>(4096, 'S'));
  write_file(q_later, std::vector<char>(100, 'L'));
  const int fd = ::open(q.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  auto d = store_->delete_before(28);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->quarantined, 1u);
  EXPECT_FALSE(std::filesystem::exists(q));
  EXPECT_TRUE(std::filesystem::exists(q_later)) << "a quarantine newer than what was deleted stays";
  std::vector<char> buf(4096);
  ASSERT_EQ(::pread(fd, buf.data(), buf.size(), 0), 4096);
  ::close(fd);
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](char c) { return c == 0; }))
      << "the quarantined plaintext survived its deletion";
}

// Runs one secure retention right after the reader's first openat() of the oldest
// segment: between its listing of the segments (and its watermark read) and its read of
// that segment's header, which then reads the zeros of the erase.
class RetentionInTheReadersWindow final : public ForwardingEnv {
 public:
  explicit RetentionInTheReadersWindow(SegmentStore* s) : store_(s) {}
  bool fired() const { return fired_; }
  bool retention_ok() const { return ok_; }
  int openat(int d, const char* n, int f, mode_t m) override {
    const int fd = real().openat(d, n, f, m);
    if (!fired_ && fd >= 0 && segment_file_name(0) == n && (f & O_ACCMODE) == O_RDONLY) {
      fired_ = true;
      auto rep = store_->apply_retention(std::chrono::nanoseconds(0), 1, 0);  // all but the active one
      ok_ = rep.ok() && rep->deleted_below == 84;
    }
    return fd;
  }

 private:
  SegmentStore* store_;
  bool fired_ = false, ok_ = false;
};

// A review (2026-12-02): a segment erased (secure_delete) and removed between a reader's
// listing and its header read was reported as a damaged segment ("bad magic ...
// skipped"), which ended `shmbus tail` and counted as corruption in a group, although
// the watermark said it was deleted.  The reader reads the watermark again before it
// calls a segment unreadable: deleted, reported once as such.
TEST_F(RetentionTest, ASegmentErasedUnderTheReadersHeaderReadIsReportedDeleted) {
  store_.reset();
  open_store(/*secure=*/true);
  auto r = SegmentReader::open(t_.path(), "ns", "st");
  ASSERT_TRUE(r.ok());
  std::vector<Got> got;
  {
    RetentionInTheReadersWindow hook(&store_.value());
    got = drain(r.value(), 200);
    ASSERT_TRUE(hook.fired());
    ASSERT_TRUE(hook.retention_ok());
  }
  ASSERT_EQ(got.size(), 1u + 16u) << (got.empty() ? "" : got.front().detail);
  EXPECT_EQ(got[0].kind, EntryKind::kDeleted) << got[0].detail;
  EXPECT_EQ(got[0].seq, 0u);
  EXPECT_EQ(got[0].end_seq, 84u);
  for (uint64_t q = 84; q < 100; ++q) {
    ASSERT_EQ(got[1 + q - 84].kind, EntryKind::kRecord);
    EXPECT_EQ(got[1 + q - 84].seq, q);
  }
}

}  // namespace
}  // namespace shmbus::persist::test
