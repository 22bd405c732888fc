// test_store.cc: the writer: sequence rules, durability, rolling, reopening, file
// permissions, names, and the pmem store writing the same bytes as the file store.
#include <fcntl.h>
#include <sys/stat.h>

#include "format.h"
#include "../common/process.h"
#include "test_util.h"

namespace shmbus::persist::test {
namespace {

TEST(Store, AppendFlushReadBack) {
  TempDir t;
  auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->next_seq(), 0u);
  fill(*s, 500, 600, 300);
  EXPECT_EQ(s->next_seq(), 600u);
  EXPECT_EQ(s->durable_seq(), 600u);
  auto st = s->stats();
  EXPECT_EQ(st.oldest_seq, 500u);
  EXPECT_EQ(st.end_seq, 600u);
  EXPECT_EQ(st.newest_seq, 599u);
  EXPECT_EQ(st.records_appended, 100u);
  EXPECT_EQ(st.kind, StoreKind::kFile);
  EXPECT_EQ(st.granularity, PmemGranularity::kNotPmem);
  EXPECT_GT(st.segments, 1u);
  expect_records(read_all(t.path()), 500, 600, 300);
}

// With its standard descriptors closed, a process's store files and lock are not opened
// on one of them (its output would land in a segment file): every file of the store
// lies above 2 (shmbus/detail/descriptors.h).
TEST(Store, FilesAreNeverOnAStandardDescriptor) {
  TempDir t;
  bool opened = false, appended = true;
  unsigned taken = 0;
  shmbus::test::StdioClosed closed;
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
    opened = s.ok();
    if (opened)
      for (uint64_t q = 0; q < 50; ++q) appended = appended && append_one(*s, q, 300).ok();
    taken = shmbus::test::StdioClosed::taken();
  }
  closed.restore();
  EXPECT_TRUE(opened);
  EXPECT_TRUE(appended);
  EXPECT_EQ(taken, 0u) << "descriptors taken (bits of 0, 1, 2)";
  expect_records(read_all(t.path()), 0, 50, 300);
}

TEST(Store, SequenceRules) {
  TempDir t;
  auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->append(10, 1, 0, as_bytes("a")).ok());
  auto dup = s->append(10, 1, 0, as_bytes("b"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::kInvalidArgument);
  auto gap = s->append(12, 1, 0, as_bytes("c"));
  ASSERT_FALSE(gap.ok());
  EXPECT_NE(gap.error().message.find("append_lost"), std::string::npos);
  EXPECT_FALSE(s->append_lost(11, 11).ok());  // empty range
  EXPECT_FALSE(s->append_lost(12, 20).ok());  // must start at next_seq
  ASSERT_TRUE(s->append_lost(11, 20).ok());
  EXPECT_EQ(s->next_seq(), 20u);
  ASSERT_TRUE(s->append(20, 2, 0, as_bytes("d")).ok());
  EXPECT_FALSE(s->append(UINT64_MAX, 1, 0, {}).ok());
  EXPECT_EQ(s->stats().lost_marked, 9u);
}

TEST(Store, DurabilityModes) {
  TempDir t;
  auto o = small_options();
  o.flush_interval = std::chrono::milliseconds(10);
  g_fake_now = 1'000'000'000;
  auto s = SegmentStore::open(t.path(), "ns", "st", o);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->append(0, 1, 0, as_bytes("x")).ok());
  ASSERT_TRUE(s->append(1, 1, 0, as_bytes("y")).ok());
  EXPECT_EQ(s->durable_seq(), 0u);  // async: not yet
  ASSERT_TRUE(s->tick().ok());
  EXPECT_EQ(s->durable_seq(), 0u);  // the interval has not passed
  g_fake_now += 10'000'000;
  ASSERT_TRUE(s->tick().ok());
  EXPECT_EQ(s->durable_seq(), 2u);
  ASSERT_TRUE(s->close().ok());
  EXPECT_EQ(s->append(2, 1, 0, {}).error().code, Errc::kClosed);

  TempDir t2;
  o.durability = Durability::kSync;
  auto y = SegmentStore::open(t2.path(), "ns", "st", o);
  ASSERT_TRUE(y.ok());
  for (uint64_t q = 0; q < 5; ++q) {
    ASSERT_TRUE(y->append(q, q, 0, as_bytes("z")).ok());
    EXPECT_EQ(y->durable_seq(), q + 1);
  }
}

TEST(Store, RollBySizeNamesSegmentsByFirstSequence) {
  TempDir t;
  auto o = small_options();
  o.segment_bytes = 4096;
  auto s = SegmentStore::open(t.path(), "ns", "st", o);
  ASSERT_TRUE(s.ok());
  fill(*s, 1000, 1100, 200);  // 232-byte frames: 16 per 4 KiB segment
  const auto segs = files_with_suffix(t.stream_dir(), ".seg");
  ASSERT_EQ(segs.size(), 7u);
  EXPECT_EQ(segs[0], "00000000000000001000.seg");
  EXPECT_EQ(segs[1], "00000000000000001016.seg");
  for (const auto& n : segs) EXPECT_LE(size_of(t.stream_dir() + "/" + n), 4096u) << n;
  EXPECT_EQ(files_with_suffix(t.stream_dir(), ".idx").size(), segs.size());
  EXPECT_EQ(s->stats().segments, 7u);
  // A record larger than a segment gets a segment of its own.
  ASSERT_TRUE(s->append(1100, 1, 0, as_bytes(std::string(10000, 'L'))).ok());
  ASSERT_TRUE(s->append(1101, 1, 0, as_bytes("after")).ok());
  ASSERT_TRUE(s->flush().ok());
  auto got = read_all(t.path());
  ASSERT_EQ(got.size(), 102u);
  EXPECT_EQ(got[100].data.size(), 10000u);
  EXPECT_EQ(got[101].data, "after");
}

TEST(Store, RollByAge) {
  TempDir t;
  auto o = small_options();
  o.roll_age = std::chrono::seconds(60);
  g_fake_now = 5'000'000'000'000;
  auto s = SegmentStore::open(t.path(), "ns", "st", o);
  ASSERT_TRUE(s.ok());
  fill(*s, 0, 3);
  g_fake_now += 59'000'000'000;
  fill(*s, 3, 5);
  EXPECT_EQ(s->stats().segments, 1u);
  g_fake_now += 1'000'000'000;
  fill(*s, 5, 7);
  EXPECT_EQ(s->stats().segments, 2u);
  EXPECT_EQ(files_with_suffix(t.stream_dir(), ".seg").back(), "00000000000000000005.seg");
  expect_records(read_all(t.path()), 0, 7);
}

// The writer's lock is an flock(), which belongs to the open file description that fork()
// shares with the child: a child of the writer's process that outlived the writer kept
// the store locked against the next writer for as long as it lived (a persister killed
// while a multiprocessing child lived; a review).  The child closes its copy at the fork.
TEST(Store, AForkedChildDoesNotKeepTheWritersLock) {
  TempDir t;
  shmbus::test::Children kids;
  shmbus::test::Pipe ready, go;
  pid_t child = -1;
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
    ASSERT_TRUE(s.ok()) << s.error().message;
    fill(*s, 0, 10);
    child = kids.spawn([&] {
      ready.put("r", 1);
      char c;
      return go.get(&c, 1) ? 0 : 1;
    });
    ASSERT_GT(child, 0);
    char c;
    ASSERT_TRUE(ready.get(&c, 1));
  }  // the writer is gone; its child lives on
  auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
  EXPECT_TRUE(s.ok()) << s.error().message;  // was kBusy: "another writer has ... open"
  if (s.ok()) {
    EXPECT_EQ(s->next_seq(), 10u);
  }
  go.put("g", 1);
  EXPECT_EQ(kids.wait(child), 0);
}

TEST(Store, ReopenContinuesAndLocks) {
  TempDir t;
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
    ASSERT_TRUE(s.ok());
    fill(*s, 0, 150);
    auto other = SegmentStore::open(t.path(), "ns", "st", small_options());
    ASSERT_FALSE(other.ok());
    EXPECT_EQ(other.error().code, Errc::kBusy);
  }
  auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->next_seq(), 150u);
  EXPECT_EQ(s->durable_seq(), 150u);
  EXPECT_EQ(s->stats().torn_bytes_dropped, 0u);
  EXPECT_FALSE(s->append(149, 0, 0, {}).ok());
  fill(*s, 150, 200);
  expect_records(read_all(t.path()), 0, 200);
}

TEST(Store, NamesAndOptionsAreValidated) {
  TempDir t;
  for (const char* bad : {"..", ".", "a/b", "", "x y"}) {
    auto s = SegmentStore::open(t.path(), bad, "st");
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().code, Errc::kInvalidArgument);
    EXPECT_FALSE(SegmentStore::open(t.path(), "ns", bad).ok()) << bad;
    EXPECT_FALSE(SegmentReader::open(t.path(), "ns", bad).ok()) << bad;
  }
  StoreOptions o;
  o.segment_bytes = 100;
  EXPECT_EQ(SegmentStore::open(t.path(), "ns", "st", o).error().code, Errc::kInvalidArgument);
  auto r = SegmentReader::open(t.path(), "ns", "nothing");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kNotFound);
}

TEST(Store, FilesArePrivateAndSymlinksAreNotFollowed) {
  TempDir t;
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
    ASSERT_TRUE(s.ok());
    fill(*s, 0, 10);
    ASSERT_TRUE(s->delete_before(1).ok());
  }
  struct stat st;
  ASSERT_EQ(::stat(t.stream_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const auto& e : std::filesystem::directory_iterator(t.stream_dir())) {
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << e.path();
  }
  // A namespace folder that is a symlink is refused.
  TempDir elsewhere;
  std::filesystem::create_directory_symlink(elsewhere.path(), t.path() + "/linked");
  auto s = SegmentStore::open(t.path(), "linked", "st", small_options());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kPermission) << s.error().message;
  EXPECT_TRUE(std::filesystem::is_empty(elsewhere.path()));
  // So is a segment that is a symlink.
  TempDir t2;
  std::filesystem::create_directories(t2.stream_dir());
  write_file(elsewhere.path() + "/target", std::vector<char>(10, 'x'));
  std::filesystem::create_symlink(elsewhere.path() + "/target",
                                  t2.stream_dir() + "/00000000000000000000.seg");
  auto s2 = SegmentStore::open(t2.path(), "ns", "st", small_options());
  ASSERT_FALSE(s2.ok());
  EXPECT_EQ(s2.error().code, Errc::kPermission) << s2.error().message;
  EXPECT_EQ(size_of(elsewhere.path() + "/target"), 10u);
}

// The same appends through the file store and the pmem store give the same files:
// sealed segments and all indexes byte for byte; the active pmem segment is the file
// store's bytes followed by its pre-allocated zeros.
TEST(Store, PmemAndFileStoresWriteIdenticalBytes) {
  TempDir f, p;
  for (const auto& [dir, kind] : {std::pair{&f, StoreKind::kFile}, std::pair{&p, StoreKind::kPmem}}) {
    g_fake_now = 7'000'000'000;
    auto o = small_options(kind);
    o.segment_bytes = 8192;
    auto s = SegmentStore::open(dir->path(), "ns", "st", o);
    ASSERT_TRUE(s.ok()) << s.error().message;
    for (uint64_t q = 0; q < 120; ++q) {
      g_fake_now += 1000;
      if (q == 50) {
        ASSERT_TRUE(s->append_lost(50, 55).ok());
      }
      if (q >= 50 && q < 55) continue;
      ASSERT_TRUE(s->append(q, 1000 * q, 3, as_bytes(payload_for(q, 10 + q * 3))).ok());
    }
    ASSERT_TRUE(s->flush().ok());
    if (kind == StoreKind::kPmem) {
      EXPECT_NE(s->stats().granularity, PmemGranularity::kNotPmem);
      EXPECT_EQ(s->stats().kind, StoreKind::kPmem);
    }
    ASSERT_TRUE(s->close().ok());
  }
  const auto segs = files_with_suffix(f.stream_dir(), ".seg");
  ASSERT_EQ(segs, files_with_suffix(p.stream_dir(), ".seg"));
  ASSERT_GT(segs.size(), 3u);
  for (size_t i = 0; i < segs.size(); ++i) {
    auto a = read_file(f.stream_dir() + "/" + segs[i]);
    auto b = read_file(p.stream_dir() + "/" + segs[i]);
    if (i + 1 < segs.size()) {
      EXPECT_EQ(a, b) << segs[i];
    } else {
      ASSERT_GE(b.size(), a.size());
      EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin())) << segs[i];
      EXPECT_TRUE(std::all_of(b.begin() + static_cast<ptrdiff_t>(a.size()), b.end(),
                              [](char c) { return c == 0; }));
    }
  }
  for (const auto& n : files_with_suffix(f.stream_dir(), ".idx"))
    EXPECT_EQ(read_file(f.stream_dir() + "/" + n), read_file(p.stream_dir() + "/" + n)) << n;
  EXPECT_EQ(read_all(f.path()).size(), read_all(p.path()).size());
}

TEST(Store, PmemStoreReopensAndCrossesKinds) {
  TempDir t;
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options(StoreKind::kPmem));
    ASSERT_TRUE(s.ok()) << s.error().message;
    fill(*s, 0, 40);
  }
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options(StoreKind::kPmem));
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->next_seq(), 40u);
    EXPECT_EQ(s->stats().torn_bytes_dropped, 0u);  // the pre-sized zeros are no damage
    fill(*s, 40, 80);
  }
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options(StoreKind::kFile));
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->next_seq(), 80u);
    fill(*s, 80, 100);
  }
  auto s = SegmentStore::open(t.path(), "ns", "st", small_options(StoreKind::kPmem));
  ASSERT_TRUE(s.ok());
  fill(*s, 100, 120);
  expect_records(read_all(t.path()), 0, 120);
}

// libpmem2 reads PMEM2_FORCE_GRANULARITY when it loads: CTest runs this test a second
// time with it set to cache_line (persist_pmem_cache_line), which drives the
// cache-flush path instead of msync.
TEST(Store, PmemGranularityIsReported) {
  const char* forced = std::getenv("PMEM2_FORCE_GRANULARITY");
  const bool cache_line = forced && std::string(forced) == "cache_line";
  TempDir t;
  auto s = SegmentStore::open(t.path(), "ns", "st", small_options(StoreKind::kPmem));
  ASSERT_TRUE(s.ok()) << s.error().message;
  fill(*s, 0, 100);
  EXPECT_EQ(s->stats().granularity,
            cache_line ? PmemGranularity::kCacheLine : PmemGranularity::kPage);
  expect_records(read_all(t.path()), 0, 100);
}

}  // namespace
}  // namespace shmbus::persist::test
