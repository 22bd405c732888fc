// test_untrusted.cc: files in a store are parsed with bounds (issue 7 point 9): a FIFO
// named like a segment never blocks, a huge index costs no memory, and a segment copied
// from another stream is not served.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "format.h"
#include "index.h"
#include "test_util.h"

namespace shmbus::persist::test {
namespace {

using namespace detail;

// Runs `body` in a child process that SIGALRM kills after 20 s; returns its exit code
// (-1 when it was killed: it hung).
int in_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(20);
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(Untrusted, FifoNamedLikeASegmentDoesNotHang) {
  TempDir t;
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
    ASSERT_TRUE(s.ok());
    fill(*s, 0, 10);
  }
  const std::string fifo = t.stream_dir() + "/" + segment_file_name(50);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Each of these returns (with an error) instead of blocking in open().
  EXPECT_EQ(in_child([&] {
              auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
              return s.ok() ? 1 : 0;
            }),
            0);
  EXPECT_EQ(in_child([&] {
              auto r = fsck(t.path(), false);
              return r.ok() && !r->clean() ? 0 : 1;
            }),
            0);
  EXPECT_EQ(in_child([&] {
              auto r = SegmentReader::open(t.path(), "ns", "st");
              if (!r.ok()) return 1;
              for (int i = 0; i < 20; ++i) (void)r->next();
              return 0;
            }),
            0);
}

// A sparse 1 GiB index beside a small segment: reading it allocates no more than the
// segment justifies (the old reader read up to 4 GiB whole).
TEST(Untrusted, HugeIndexIsReadOnlyAsFarAsItsSegmentJustifies) {
  TempDir t;
  {
    auto o = small_options();
    o.segment_bytes = 4096;
    auto s = SegmentStore::open(t.path(), "ns", "st", o);
    ASSERT_TRUE(s.ok());
    fill(*s, 0, 100, 100);
  }
  std::filesystem::resize_file(t.stream_dir() + "/" + index_file_name(0), uint64_t{1} << 30);
  rusage before{}, after{};
  ::getrusage(RUSAGE_SELF, &before);
  auto rep = fsck(t.path(), false);
  ASSERT_TRUE(rep.ok());
  EXPECT_FALSE(rep->clean());
  expect_records(read_all(t.path()), 0, 100, 100);
  ::getrusage(RUSAGE_SELF, &after);
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 256 * 1024) << "KiB of peak memory grew";
  auto fixed = fsck(t.path(), true);
  ASSERT_TRUE(fixed.ok());
  EXPECT_TRUE(fixed->clean());
  EXPECT_LT(size_of(t.stream_dir() + "/" + index_file_name(0)), 64u << 10);
}

// A segment copied from another stream into this one's folder (same name) is refused by
// the reader, not served as this stream's records.
TEST(Untrusted, SegmentOfAnotherStreamIsNotServed) {
  TempDir t;
  for (const char* st : {"st", "other"}) {
    auto o = small_options();
    o.segment_bytes = 4096;
    auto s = SegmentStore::open(t.path(), "ns", st, o);
    ASSERT_TRUE(s.ok());
    fill(*s, 0, 100, 100);
  }
  std::filesystem::copy_file(t.stream_dir("ns", "other") + "/" + segment_file_name(0),
                             t.stream_dir() + "/" + segment_file_name(0),
                             std::filesystem::copy_options::overwrite_existing);
  auto r = SegmentReader::open(t.path(), "ns", "st");
  ASSERT_TRUE(r.ok());
  auto e = r->next();
  ASSERT_FALSE(e.ok()) << "served a record of another stream";
  EXPECT_EQ(e.error().code, Errc::kCorrupt);
  EXPECT_NE(e.error().message.find("ns/other"), std::string::npos) << e.error().message;
  // Reading goes on with the stream's own next segment.
  auto next = r->next();
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next->seq, 28u);
}

// A review (2026-12-02): a directory, a FIFO or a symbolic link where a middle segment
// should be stopped every later read at its position (each next() returned the same
// error).  The reader reports it once and goes on with the next segment, as it does for
// a header it cannot read.
TEST(Untrusted, ANonRegularFileAsAMiddleSegmentIsReportedOnceAndPassed) {
  for (const char* what : {"directory", "fifo", "symlink"}) {
    SCOPED_TRACE(what);
    TempDir t;
    auto o = small_options();
    o.segment_bytes = 4096;
    {
      auto s = SegmentStore::open(t.path(), "ns", "st", o);
      ASSERT_TRUE(s.ok());
      fill(*s, 0, 100, 100);
    }
    const std::string seg = t.stream_dir() + "/" + segment_file_name(28);
    ASSERT_TRUE(std::filesystem::exists(t.stream_dir() + "/" + segment_file_name(56)));
    std::filesystem::remove(seg);
    if (std::string(what) == "directory") std::filesystem::create_directory(seg);
    if (std::string(what) == "fifo") {
      ASSERT_EQ(::mkfifo(seg.c_str(), 0600), 0);
    }
    if (std::string(what) == "symlink")
      std::filesystem::create_symlink(t.stream_dir() + "/" + segment_file_name(0), seg);
    EXPECT_EQ(in_child([&] {
                auto r = SegmentReader::open(t.path(), "ns", "st");
                if (!r.ok()) return 10;
                uint64_t want = 0;
                int errors = 0;
                for (int i = 0; i < 200; ++i) {
                  auto e = r->next();
                  if (!e.ok()) {
                    if (++errors > 1 || want != 28 || r->position() != 56) return 11;
                    want = 56;
                    continue;
                  }
                  if (e->kind == EntryKind::kEnd) break;
                  if (e->kind != EntryKind::kRecord || e->seq != want) return 12;
                  ++want;
                }
                return errors == 1 && want == 100 ? 0 : 13;
              }),
              0);
  }
}

}  // namespace
}  // namespace shmbus::persist::test
