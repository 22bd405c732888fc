// test_background_flush.cc: SegmentStore::flush_start / flush_finish and the persister
// that uses them (issue 10: writing overlaps syncing).  A record counts as durable only
// once the sync that covers it returned success; records appended while a sync runs
// are not covered by it; a failed background sync goes back as a failed flush() does.
#include <atomic>
#include <condition_variable>
#include <mutex>

#include "fault_env.h"
#include "shmbus/detail/stream_control.h"
#include "shmbus/persister.h"
#include "test_util.h"
#include "../common/scratch.h"

namespace shmbus::persist::test {
namespace {

using namespace detail;
using namespace std::chrono_literals;
using shmbus::test::eventually;

// An Env over another (a FaultEnv) whose data syncs wait while the gate is closed, so a
// test can look at the store while its sync is "on the disk".
class GateEnv final : public Env {
 public:
  explicit GateEnv(Env* next) : next_(next) { prev_ = set_env_for_testing(this); }
  ~GateEnv() override {
    open();
    set_env_for_testing(prev_);
  }
  void close_gate() {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      closed_ = false;
    }
    cv_.notify_all();
  }
  // Writes of kBigWrite bytes or more (a write buffer's, not an index entry's) fail
  // with ENOSPC while this is set.
  static constexpr size_t kBigWrite = 512 << 10;
  void refuse_big_writes(bool on) { refuse_big_.store(on); }
  // Syncs waiting at the gate now.
  int waiting() {
    std::lock_guard lock(mu_);
    return waiting_;
  }
  int openat(int d, const char* n, int f, mode_t m) override { return next_->openat(d, n, f, m); }
  int close(int fd) override { return next_->close(fd); }
  ssize_t pwrite(int fd, const void* b, size_t n, off_t o) override {
    if (n >= kBigWrite && refuse_big_.load()) {
      errno = ENOSPC;
      return -1;
    }
    return next_->pwrite(fd, b, n, o);
  }
  ssize_t pread(int fd, void* b, size_t n, off_t o) override { return next_->pread(fd, b, n, o); }
  int fdatasync(int fd) override {
    wait_gate();
    return next_->fdatasync(fd);
  }
  int fsync(int fd) override { return next_->fsync(fd); }  // directories: not gated
  int ftruncate(int fd, off_t s) override { return next_->ftruncate(fd, s); }
  int fallocate(int fd, off_t o, off_t l) override { return next_->fallocate(fd, o, l); }
  int fstat(int fd, struct stat* st) override { return next_->fstat(fd, st); }
  int mkdirat(int d, const char* n, mode_t m) override { return next_->mkdirat(d, n, m); }
  int renameat(int fd, const char* f, int td, const char* t) override { return next_->renameat(fd, f, td, t); }
  int linkat(int fd, const char* f, int td, const char* t) override { return next_->linkat(fd, f, td, t); }
  int unlinkat(int d, const char* n, int f) override { return next_->unlinkat(d, n, f); }

 private:
  void wait_gate() {
    std::unique_lock lock(mu_);
    ++waiting_;
    // Bounded: a test that forgets to open the gate fails, it does not hang.
    cv_.wait_for(lock, 60s, [&] { return !closed_; });
    --waiting_;
  }
  Env* next_;
  Env* prev_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> refuse_big_{false};
  bool closed_ = false;  // guarded by mu_
  int waiting_ = 0;      // guarded by mu_
};

StoreOptions big_segments(StoreKind kind) {
  StoreOptions o = small_options(kind);
  o.segment_bytes = 1 << 20;  // no roll inside these tests
  o.flush_interval = std::chrono::hours(1);
  return o;
}

void expect_store_holds_exactly(const std::string& root, uint64_t to, const std::string& ns = "ns",
                        const std::string& stream = "st") {
  std::vector<Got> records;
  for (auto& g : read_all(root, ns, stream))
    if (g.kind == EntryKind::kRecord) records.push_back(g);
  ASSERT_EQ(records.size(), to);
  expect_records(records, 0, to);
}

// FaultEnv does not see the bytes a pmem store copies into its mapping: a pmem store is
// checked after a crash of the writer, a file store after a power loss too.
void lose_power_if_modelled(FaultEnv& faults, StoreKind kind) {
  if (kind == StoreKind::kFile) faults.lose_power();
}

// Whether the store's syncs are fdatasyncs (the gate holds them): not on a DAX mapping
// (PMEM2_FORCE_GRANULARITY=cache_line pretends one).
bool gated(const SegmentStore& s) {
  const PmemGranularity g = s.stats().granularity;
  return g == PmemGranularity::kNotPmem || g == PmemGranularity::kPage;
}

class BackgroundFlush : public ::testing::TestWithParam<StoreKind> {};

TEST_P(BackgroundFlush, DurableOnlyOnceTheSyncReturnedAndOnlyWhatItCovered) {
  TempDir t;
  ScopedFaultEnv faults(t.path());
  GateEnv gate(&faults.get());
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", big_segments(GetParam()));
    ASSERT_TRUE(s) << s.error().message;
    fill(*s, 0, 20);
    if (!gated(*s)) GTEST_SKIP() << "a DAX mapping is persisted without an fdatasync to hold";
    for (uint64_t q = 20; q < 50; ++q) ASSERT_TRUE(append_one(*s, q));
    gate.close_gate();
    ASSERT_TRUE(s->flush_start());
    ASSERT_TRUE(s->flush_running());
    ASSERT_TRUE(eventually([&] { return gate.waiting() == 1; }, 30s));
    // The sync is on its way: nothing more is durable yet, and appending goes on.
    EXPECT_EQ(s->durable_seq(), 20u);
    for (uint64_t q = 50; q < 80; ++q) ASSERT_TRUE(append_one(*s, q));
    auto r = s->flush_finish(1ms);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(r.value());
    EXPECT_EQ(s->durable_seq(), 20u);
    ASSERT_TRUE(s->flush_start());  // one at a time: changes nothing
    gate.open();
    r = s->flush_finish(30s);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r.value());
    // What was appended before flush_start(), not what came after it.
    EXPECT_EQ(s->durable_seq(), 50u);
    EXPECT_FALSE(s->flush_running());
    faults->crash();
  }
  // Power fails: everything called durable is there.
  lose_power_if_modelled(faults.get(), GetParam());
  faults->revive();
  auto s = SegmentStore::open(t.path(), "ns", "st", big_segments(GetParam()));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_GE(s->next_seq(), 50u);
  for (uint64_t q = s->next_seq(); q < 80; ++q) ASSERT_TRUE(append_one(*s, q));
  ASSERT_TRUE(s->flush());
  EXPECT_EQ(s->durable_seq(), 80u);
  s = Result<SegmentStore>(make_error(Errc::kClosed, ""));
  expect_store_holds_exactly(t.path(), 80);
}

// fsyncgate in the background: the failed sync is never retried alone; the store goes
// back to its last synced record, whatever was appended while the sync ran.
TEST_P(BackgroundFlush, FailedBackgroundSyncGoesBack) {
  TempDir t;
  ScopedFaultEnv faults(t.path());
  GateEnv gate(&faults.get());
  {
    auto s = SegmentStore::open(t.path(), "ns", "st", big_segments(GetParam()));
    ASSERT_TRUE(s) << s.error().message;
    fill(*s, 0, 30);
    if (!gated(*s)) GTEST_SKIP() << "a DAX mapping is persisted without an fdatasync to hold";
    for (uint64_t q = 30; q < 60; ++q) ASSERT_TRUE(append_one(*s, q));
    faults->fail_next_syncs(FaultEnv::Fault::kEio);
    gate.close_gate();
    ASSERT_TRUE(s->flush_start());
    ASSERT_TRUE(eventually([&] { return gate.waiting() == 1; }, 30s));
    for (uint64_t q = 60; q < 70; ++q) ASSERT_TRUE(append_one(*s, q));
    gate.open();
    auto r = s->flush_finish(30s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kIo);
    EXPECT_EQ(s->durable_seq(), 30u);
    EXPECT_EQ(s->next_seq(), 30u) << "the store did not go back to its last synced record";
    EXPECT_EQ(s->stats().io_errors, 1u);
    // Written again "from the ring", then durable for real.
    for (uint64_t q = 30; q < 70; ++q) ASSERT_TRUE(append_one(*s, q));
    ASSERT_TRUE(s->flush_start());
    r = s->flush_finish(30s);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r.value());
    EXPECT_EQ(s->durable_seq(), 70u);
    faults->crash();
  }
  lose_power_if_modelled(faults.get(), GetParam());
  faults->revive();
  expect_store_holds_exactly(t.path(), 70);
}

// A roll (or flush(), close()) while a background sync runs waits for it first.
TEST_P(BackgroundFlush, RollAndCloseWaitForTheRunningSync) {
  TempDir t;
  ScopedFaultEnv faults(t.path());
  {
    StoreOptions o = small_options(GetParam());  // 16 KiB segments: rolls
    o.flush_interval = std::chrono::hours(1);
    auto s = SegmentStore::open(t.path(), "ns", "st", o);
    ASSERT_TRUE(s) << s.error().message;
    for (uint64_t q = 0; q < 400; ++q) {
      ASSERT_TRUE(append_one(*s, q, 200));
      if (q % 7 == 0) {
        ASSERT_TRUE(s->flush_start());
      }
      if (q % 11 == 0) {
        ASSERT_TRUE(s->flush_finish(0ns));
      }
    }
    ASSERT_TRUE(s->flush_start());
    ASSERT_TRUE(s->close());
    faults->crash();
  }
  lose_power_if_modelled(faults.get(), GetParam());
  faults->revive();
  std::vector<Got> records;
  for (auto& g : read_all(t.path()))
    if (g.kind == EntryKind::kRecord) records.push_back(g);
  ASSERT_EQ(records.size(), 400u);
  expect_records(records, 0, 400, 200);
}

INSTANTIATE_TEST_SUITE_P(Stores, BackgroundFlush, ::testing::Values(StoreKind::kFile, StoreKind::kPmem),
                         [](const auto& info) { return std::string(store_kind_name(info.param)); });

// The persister reads (and writes) on while its sync runs, and tells producers nothing
// is durable before that sync returned; then everything is.
TEST(Durability, PersisterReadsOnWhileItsSyncRunsAndCountsNothingDurableBeforeIt) {
  shmbus::test::ScopedNs ns;
  TempDir t;
  StreamOptions so;
  so.capacity = 1 << 20;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  ScopedFaultEnv faults(t.path());
  GateEnv gate(&faults.get());
  PersisterOptions po;
  po.data_dir = t.path();
  po.flush_interval = 1ms;
  auto p = Persister::start(ns.ns(), "s", po);
  ASSERT_TRUE(p) << p.error().message;
  auto prod = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(prod);
  auto ctl = StreamControl::open(ns.ns(), "s", true);
  ASSERT_TRUE(ctl);
  auto publish = [&](uint64_t from, uint64_t to) {
    for (uint64_t q = from; q < to; ++q)
      ASSERT_TRUE(prod->publish(as_bytes(payload_for(q, 300)), 0).ok());
  };
  publish(0, 10);
  ASSERT_TRUE(eventually([&] { return ctl->durable_seq() == 10; }, 30s));
  gate.close_gate();
  publish(10, 100);
  ASSERT_TRUE(eventually([&] { return gate.waiting() == 1; }, 30s));
  publish(100, 200);
  // Read and stored while the sync waits at the gate (a persister that waited in
  // fdatasync would still be at the records that sync covers).
  EXPECT_TRUE(eventually([&] { return p.value()->stats().records == 200; }, 30s))
      << p.value()->stats().records;
  EXPECT_EQ(ctl->durable_seq(), 10u);
  EXPECT_EQ(p.value()->stats().durable_seq, 10u);
  gate.open();
  EXPECT_TRUE(eventually([&] { return ctl->durable_seq() == 200; }, 30s)) << ctl->durable_seq();
  EXPECT_EQ(prod->wait_durable(199, 30s), PubStatus::kOk);
  ASSERT_TRUE(p.value()->stop());
  faults->crash();
  faults->lose_power();
  faults->revive();
  auto got = read_all(t.path(), ns.ns(), "s");
  ASSERT_EQ(got.size(), 200u);
  for (uint64_t q = 0; q < 200; ++q) {
    ASSERT_EQ(got[q].kind, EntryKind::kRecord) << q << ": " << got[q].detail;
    ASSERT_EQ(got[q].data, payload_for(q, 300)) << q;
  }
}

// A background sync of the persister fails: it is not retried alone, the persister
// reads the records again from the ring, and they become durable for real.
TEST(Durability, PersisterBackgroundSyncFailureWritesTheRecordsAgain) {
  shmbus::test::ScopedNs ns;
  TempDir t;
  StreamOptions so;
  so.capacity = 1 << 20;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  ScopedFaultEnv faults(t.path());
  GateEnv gate(&faults.get());
  PersisterOptions po;
  po.data_dir = t.path();
  po.flush_interval = 1ms;
  auto p = Persister::start(ns.ns(), "s", po);
  ASSERT_TRUE(p) << p.error().message;
  auto prod = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(prod);
  auto ctl = StreamControl::open(ns.ns(), "s", true);
  ASSERT_TRUE(ctl);
  auto publish = [&](uint64_t from, uint64_t to) {
    for (uint64_t q = from; q < to; ++q)
      ASSERT_TRUE(prod->publish(as_bytes(payload_for(q, 300)), 0).ok());
  };
  publish(0, 50);
  ASSERT_TRUE(eventually([&] { return ctl->durable_seq() == 50; }, 30s));
  gate.close_gate();
  faults->fail_next_syncs(FaultEnv::Fault::kEio);
  publish(50, 100);
  ASSERT_TRUE(eventually([&] { return gate.waiting() == 1; }, 30s));
  publish(100, 150);
  gate.open();
  EXPECT_TRUE(eventually([&] { return ctl->durable_seq() == 150; }, 30s)) << ctl->durable_seq();
  EXPECT_GE(p.value()->stats().store_errors, 1u);
  ASSERT_TRUE(p.value()->stop());
  faults->crash();
  faults->lose_power();
  faults->revive();
  auto got = read_all(t.path(), ns.ns(), "s");
  ASSERT_EQ(got.size(), 150u);
  for (uint64_t q = 0; q < 150; ++q) {
    ASSERT_EQ(got[q].kind, EntryKind::kRecord) << q << ": " << got[q].detail;
    ASSERT_EQ(got[q].data, payload_for(q, 300)) << q;
  }
}

// The store refuses a record with more records read behind it (a full disk for the
// write buffer's write, at the fourth of eleven 300 KiB records that waited in the ring
// while no persister ran): every one of them, before and after the refused one, is
// stored once the disk has room again, each exactly once and in order (a persister that
// read ahead of what it stored, and dropped the rest on a refusal, loses records 5-11).
TEST(Durability, ARefusalWithRecordsReadBehindItLosesNoneOfThem) {
  shmbus::test::ScopedNs ns;
  TempDir t;
  StreamOptions so;
  so.capacity = 8 << 20;
  so.max_record = 512 << 10;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  ScopedFaultEnv faults(t.path());
  GateEnv full(&faults.get());
  PersisterOptions po;
  po.data_dir = t.path();
  constexpr size_t kSize = 300 << 10;
  auto prod = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(prod);
  auto ctl = StreamControl::open(ns.ns(), "s", true);
  ASSERT_TRUE(ctl);
  {
    auto p = Persister::start(ns.ns(), "s", po);
    ASSERT_TRUE(p) << p.error().message;
    ASSERT_TRUE(prod->publish(as_bytes(payload_for(0, kSize)), 0).ok());
    ASSERT_TRUE(eventually([&] { return ctl->durable_seq() == 1; }, 30s));
    ASSERT_TRUE(p.value()->stop());  // the group stays: the next records wait in the ring
  }
  for (uint64_t q = 1; q < 12; ++q)
    ASSERT_TRUE(prod->publish(as_bytes(payload_for(q, kSize)), 0).ok());
  full.refuse_big_writes(true);
  auto p = Persister::start(ns.ns(), "s", po);
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_TRUE(eventually([&] { return p.value()->stats().disk_full_waits >= 1; }, 30s));
  EXPECT_EQ(ctl->durable_seq(), 1u);
  full.refuse_big_writes(false);
  EXPECT_TRUE(eventually([&] { return ctl->durable_seq() == 12; }, 30s)) << ctl->durable_seq();
  ASSERT_TRUE(p.value()->stop());
  auto got = read_all(t.path(), ns.ns(), "s");
  ASSERT_EQ(got.size(), 12u);
  for (uint64_t q = 0; q < 12; ++q) {
    ASSERT_EQ(got[q].kind, EntryKind::kRecord) << q << ": " << got[q].detail;
    ASSERT_EQ(got[q].data, payload_for(q, kSize)) << q;
  }
}

}  // namespace
}  // namespace shmbus::persist::test
