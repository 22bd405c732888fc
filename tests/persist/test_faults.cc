// test_faults.cc: a full disk, simulated with RLIMIT_FSIZE (SIGXFSZ ignored, so the
// writes fail with EFBIG): a clear kNoSpace, a consistent store, and appending that
// resumes once the limit is lifted.
#include <sys/resource.h>

#include <csignal>

#include "../common/process.h"
#include "fault_env.h"
#include "format.h"
#include "shmbus/store_admin.h"
#include "test_util.h"

namespace shmbus::persist::test {
namespace {

using namespace detail;

// Lowers the soft file-size limit of this process and ignores SIGXFSZ until lift().
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old_);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = old_;
    lim.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lim);
  }
  void lift() {
    if (lifted_) return;
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
    lifted_ = true;
  }
  ~FileSizeLimit() { lift(); }

 private:
  rlimit old_{};
  void (*old_handler_)(int) = SIG_DFL;
  bool lifted_ = false;
};

void expect_no_space(const Error& e) {
  EXPECT_EQ(e.code, Errc::kNoSpace) << e.message;
  EXPECT_NE(e.message.find("limit"), std::string::npos) << e.message;
}

TEST(Faults, FileStoreFullDiskAndResume) {
  TempDir t;
  auto o = small_options();
  o.segment_bytes = 1 << 20;  // the limit, not the roll, ends the segment
  auto s = SegmentStore::open(t.path(), "ns", "st", o);
  ASSERT_TRUE(s.ok());
  constexpr rlim_t kLimit = 96 << 10;
  uint64_t next = 0;
  bool failed_in_append = false;
  {
    FileSizeLimit limit(kLimit);
    for (; next < 1000; ++next) {
      auto r = append_one(*s, next, 500);
      if (!r) {
        expect_no_space(r.error());
        failed_in_append = true;
        break;
      }
      if (next % 10 == 9) {
        auto f = s->flush();
        if (!f) {
          expect_no_space(f.error());
          ++next;
          break;
        }
      }
    }
    ASSERT_LT(next, 1000u) << "the limit was never hit";
    // Consistent while still full: the file is within the limit, what is durable reads
    // back intact, and flushing keeps failing cleanly.
    const std::string segp = t.stream_dir() + "/" + segment_file_name(0);
    EXPECT_LE(size_of(segp), kLimit);
    EXPECT_LE(s->durable_seq(), s->next_seq());
    auto got = read_all(t.path());
    ASSERT_GE(got.size(), s->durable_seq());
    expect_records(got, 0, got.size(), 500);
    auto f = s->flush();
    ASSERT_FALSE(f.ok());
    expect_no_space(f.error());
    EXPECT_FALSE(s->stats().last_error.empty());
    limit.lift();
  }
  // Space is back: retry the refused record, go on, and everything is there.
  if (failed_in_append) {
    ASSERT_TRUE(append_one(*s, next, 500).ok());
    ++next;
  }
  EXPECT_EQ(s->next_seq(), next);
  for (uint64_t q = next; q < next + 50; ++q)
    ASSERT_TRUE(append_one(*s, q, 500).ok());
  ASSERT_TRUE(s->flush().ok());
  EXPECT_TRUE(s->stats().last_error.empty());
  EXPECT_EQ(s->durable_seq(), next + 50);
  expect_records(read_all(t.path()), 0, next + 50, 500);
  ASSERT_TRUE(s->close().ok());
  auto again = SegmentStore::open(t.path(), "ns", "st", o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->next_seq(), next + 50);
  EXPECT_EQ(again->stats().torn_bytes_dropped, 0u);
}

TEST(Faults, SyncStoreFullDiskRefusesTheRecord) {
  TempDir t;
  auto o = small_options();
  o.segment_bytes = 1 << 20;
  o.durability = Durability::kSync;
  auto s = SegmentStore::open(t.path(), "ns", "st", o);
  ASSERT_TRUE(s.ok());
  uint64_t next = 0;
  {
    FileSizeLimit limit(32 << 10);
    for (; next < 1000; ++next) {
      auto r = append_one(*s, next, 500);
      if (!r) {
        expect_no_space(r.error());
        break;
      }
      EXPECT_EQ(s->durable_seq(), next + 1);
    }
    ASSERT_LT(next, 1000u);
    EXPECT_EQ(s->next_seq(), next);  // the refused record is not in the store
    EXPECT_EQ(s->durable_seq(), next);
    expect_records(read_all(t.path()), 0, next, 500);
  }
  ASSERT_TRUE(append_one(*s, next, 500).ok());
  expect_records(read_all(t.path()), 0, next + 1, 500);
}

TEST(Faults, PmemStoreCannotAllocateASegment) {
  TempDir t;
  auto o = small_options(StoreKind::kPmem);
  o.segment_bytes = 16 << 10;
  auto s = SegmentStore::open(t.path(), "ns", "st", o);
  ASSERT_TRUE(s.ok());
  fill(*s, 0, 100, 100);
  const std::string big(200 << 10, 'B');
  {
    FileSizeLimit limit(128 << 10);
    auto r = s->append(100, 100'000, 0, as_bytes(big));  // needs a 200 KiB segment
    ASSERT_FALSE(r.ok());
    expect_no_space(r.error());
    EXPECT_FALSE(std::filesystem::exists(t.stream_dir() + "/" + segment_file_name(100)));
    expect_records(read_all(t.path()), 0, 100, 100);
    EXPECT_EQ(s->next_seq(), 100u);
  }
  ASSERT_TRUE(s->append(100, 100'000, 0, as_bytes(big)).ok());
  fill(*s, 101, 120, 100);
  auto got = read_all(t.path());
  ASSERT_EQ(got.size(), 120u);
  EXPECT_EQ(got[100].data.size(), big.size());
  EXPECT_EQ(got[119].seq, 119u);
}

TEST(Faults, PmemStoreFirstSegmentOverTheLimit) {
  TempDir t;
  auto o = small_options(StoreKind::kPmem);
  o.segment_bytes = 256 << 10;
  auto s = SegmentStore::open(t.path(), "ns", "st", o);
  ASSERT_TRUE(s.ok());
  {
    FileSizeLimit limit(64 << 10);
    auto r = s->append(0, 1, 0, as_bytes("x"));
    ASSERT_FALSE(r.ok());
    expect_no_space(r.error());
    EXPECT_EQ(s->stats().segments, 0u);
  }
  fill(*s, 0, 10);
  expect_records(read_all(t.path()), 0, 10);
}

// A new store whose very first record is refused may start at another sequence later.
TEST(Faults, NewStoreFirstRecordRefusedThenAnotherSequence) {
  TempDir t;
  auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
  ASSERT_TRUE(s.ok());
  {
    FileSizeLimit limit(2 << 10);
    auto r = s->append(5, 1, 0, as_bytes(std::string(8 << 10, 'b')));  // > write buffer
    ASSERT_FALSE(r.ok());
    expect_no_space(r.error());
  }
  fill(*s, 7, 9);
  expect_records(read_all(t.path()), 7, 9);
  EXPECT_EQ(files_with_suffix(t.stream_dir(), ".seg"),
            std::vector<std::string>{segment_file_name(7)});
}

// remove_store holds the store's lock while it removes the files: a child the process
// forks meanwhile must not keep it when the removal fails part-way (LOCK is kept then),
// or no writer can start while the child lives (note 65: a plain flock, shared with the
// child through the open file description).
TEST(Faults, AChildForkedDuringAFailedRemovalDoesNotKeepTheStoresLock) {
  TempDir t;
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
    ASSERT_TRUE(s.ok()) << s.error().message;
    fill(*s, 0, 60, 100);
  }
  struct ForkThenFail final : ForwardingEnv {
    shmbus::test::WaitingChild* child = nullptr;
    int unlinkat(int d, const char* n, int f) override {
      if (child->pid() < 0 && std::string_view(n).ends_with(".seg")) {
        child->fork_once();
        errno = EIO;
        return -1;
      }
      return ForwardingEnv::unlinkat(d, n, f);
    }
  };
  shmbus::test::WaitingChild child;
  {
    ForkThenFail env;
    env.child = &child;
    AdminOptions ao;
    ao.data_dir = t.path();
    EXPECT_FALSE(remove_store("ns", "st", ao).ok());
  }
  ASSERT_GT(child.pid(), 0);
  auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
  EXPECT_TRUE(s.ok()) << s.error().message;  // was kBusy: "another writer has ... open"
  EXPECT_EQ(child.release(), 0);
}

}  // namespace
}  // namespace shmbus::persist::test

namespace shmbus::persist::test {
namespace {

// rm --data took the writer's lock only when the store had a LOCK file: a writer that
// started during the removal of a store without one (a crash or an older build left it
// so) made one, locked it and wrote into files being removed (a review, stop 64).  The
// removal makes the lock now, and the writer is kept out until the store is gone.
TEST(Faults, RemovingAStoreWithoutALockFileKeepsAWriterOut) {
  TempDir t;
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", small_options());
    ASSERT_TRUE(s.ok()) << s.error().message;
    fill(*s, 0, 60, 100);
  }
  ASSERT_EQ(::unlink((t.stream_dir() + "/LOCK").c_str()), 0);
  struct WriterDuringRemoval final : ForwardingEnv {
    std::string root;
    bool tried = false;
    std::optional<Errc> refused;  // nullopt: the writer got the store
    int unlinkat(int d, const char* n, int f) override {
      if (!tried && std::string_view(n).ends_with(".seg")) {
        tried = true;
        auto s = SegmentStore::open(root, "ns", "st", small_options());
        if (!s) refused = s.error().code;
      }
      return ForwardingEnv::unlinkat(d, n, f);
    }
  } env;
  env.root = t.path();
  AdminOptions ao;
  ao.data_dir = t.path();
  auto r = remove_store("ns", "st", ao);
  EXPECT_TRUE(env.tried);
  ASSERT_TRUE(env.refused.has_value()) << "a writer opened the store while it was being removed";
  EXPECT_EQ(*env.refused, Errc::kBusy);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(std::filesystem::exists(t.stream_dir()));
}

}  // namespace
}  // namespace shmbus::persist::test
