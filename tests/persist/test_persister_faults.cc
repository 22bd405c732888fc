// The persister under faults: kill -9 at random points, a full disk, and the let-go mode
// in which producers do not wait for a dead persister.
#include <sys/mount.h>
#include <sched.h>

#include <fstream>
#include <numeric>
#include <random>

#include "test_persister_util.h"

namespace shmbus::persist::it {
namespace {

// Everything stored so far is a prefix of the stream: records [0, end) each once, in
// order, intact (a single producer: index == seq), and end >= the durable position.
// With `from`, only [from, end) is read (the rest was checked before).
void expect_durable_prefix(const std::string& root, const std::string& ns, const std::string& s,
                           uint64_t durable, const std::string& when, uint64_t from = 0) {
  const StoreScan sc = scan_store(root, ns, s, /*single_producer=*/true, from);
  ASSERT_TRUE(sc.ok) << when << ": " << sc.error;
  if (sc.entries == 0) {
    EXPECT_LE(durable, from) << when;
    return;
  }
  EXPECT_EQ(sc.first, from) << when;
  EXPECT_GE(sc.end, durable) << when << ": a durable record is missing from the store";
  EXPECT_EQ(sc.order.records, sc.end - from) << when;
  EXPECT_EQ(sc.discontinuities, 0u) << when << ": " << sc.first_discontinuity;
  EXPECT_TRUE(sc.lost.empty()) << when;
  EXPECT_TRUE(sc.corrupt.empty()) << when << ": corrupt " << sc.corrupt.front();
  EXPECT_EQ(sc.order.bad, 0u) << when << ": " << sc.order.first_problem;
  EXPECT_EQ(sc.order.skips, 0u) << when << ": " << sc.order.first_problem;
  EXPECT_EQ(sc.seq_not_index, 0u) << when;
}

// kill -9 the persister process at random points (also while it starts) while a producer
// process publishes; restart it each time.  After each kill every record below the
// durable position is in the store exactly once; at the end (producers are held while
// no persister runs) every record is.
// per_second > 0 paces the producer (the soak spreads it over its rounds); each round
// then re-reads the store only from a little below the previous durable position.
void kill_rounds(int rounds, uint64_t seed, uint64_t records, uint64_t per_second = 0) {
  ScopedNs ns;
  DataDir dir;
  StreamOptions so = stream_opts(256 << 10);
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  PersisterOptions o;
  o.data_dir = dir.path();
  o.segment_bytes = 1 << 20;  // many rolls: more places to die in
  o.flush_interval = 5ms;
  Children kids;
  std::mt19937_64 rng(seed);
  {
    PersisterChild first;  // attached before the producer starts
    ASSERT_TRUE(first.start(kids, ns.ns(), "s", o)) << first.start_error();
    first.kill9(kids);
  }
  ProduceSpec spec{ns.ns(), "s", 1, records, 64, 1000};
  spec.full_timeout = 120s;
  spec.per_second = per_second;
  pid_t prod = kids.spawn([&] { return produce(spec); });
  uint64_t last_durable = 0, advanced = 0, checked = 0;
  for (int r = 0; r < rounds; ++r) {
    PersisterChild pc;
    const bool wait_ready = rng() % 4 != 0;  // a quarter die while starting
    ASSERT_TRUE(pc.start(kids, ns.ns(), "s", o, 0, wait_ready)) << pc.start_error();
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % (wait_ready ? 150000 : 3000)));
    if (r == rounds - 1 && advanced == 0) {
      // A loaded machine may not have let any persister make progress before its kill:
      // the last one must (judged by progress, not by a clock).
      ASSERT_TRUE(eventually([&] { return durable_seq_of(ns.ns(), "s") > last_durable; }, 60s))
          << "no persister made progress";
    }
    pc.kill9(kids);
    const uint64_t durable = durable_seq_of(ns.ns(), "s");
    EXPECT_GE(durable, last_durable) << "the durable position went back";
    advanced += durable > last_durable;
    last_durable = durable;
    const uint64_t from = per_second && checked > 20000 ? checked - 20000 : 0;
    expect_durable_prefix(dir.path(), ns.ns(), "s", durable, "after kill " + std::to_string(r), from);
    checked = durable;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(advanced, 0u);
  PersisterChild final_pc;
  ASSERT_TRUE(final_pc.start(kids, ns.ns(), "s", o)) << final_pc.start_error();
  ASSERT_EQ(kids.wait(prod, 180s), 0) << "the producer failed or was stalled";
  ASSERT_TRUE(eventually([&] { return durable_seq_of(ns.ns(), "s") == records; }))
      << durable_seq_of(ns.ns(), "s");
  PersisterChild::Report rep;
  ASSERT_TRUE(final_pc.stats(&rep));
  EXPECT_EQ(rep.lost, 0u);
  EXPECT_EQ(final_pc.stop(kids), 0);
  expect_complete(scan_store(dir.path(), ns.ns(), "s", true), records);
  auto fs = fsck(dir.path(), false);
  ASSERT_TRUE(fs) << fs.error().message;
  EXPECT_TRUE(fs->clean());
  auto info = stream_info(ns.ns(), "s");
  EXPECT_EQ(info->evictions, 0u) << "a dead persister must hold producers back";
}

TEST(PersisterFaults, KillNineAtRandomPoints) { kill_rounds(6, 1, 150'000); }
TEST(PersisterFaults, DISABLED_SoakKillNineHundredsOfTimes) {
  kill_rounds(300, 7, 600'000, 20'000);
}

// Reads the store while the persister is stalled: what is there is intact.
void expect_intact_prefix(const std::string& root, const std::string& ns, const std::string& s) {
  const StoreScan sc = scan_store(root, ns, s, true);
  ASSERT_TRUE(sc.ok) << sc.error;
  EXPECT_EQ(sc.discontinuities, 0u);
  EXPECT_TRUE(sc.corrupt.empty());
  EXPECT_TRUE(sc.lost.empty());
  EXPECT_EQ(sc.order.bad, 0u) << sc.order.first_problem;
  EXPECT_EQ(sc.order.skips, 0u) << sc.order.first_problem;
}

// Drives a persister child into "no space" (by `block`), checks the error, the
// backpressure and the store, frees space (by `unblock`) and checks the end state.
void full_disk_scenario(const std::string& ns, const std::string& root, Children& kids,
                        PersisterChild& pc, const std::function<void()>& unblock,
                        uint64_t records, const std::string& expect_in_error) {
  // kFail: refused publishes are counted in producer_full; the producer retries.
  ProduceSpec spec{ns, "s", 1, records, 64, 300, FullPolicy::kFail};
  pid_t prod = kids.spawn([&] { return produce(spec); });
  PersisterChild::Report rep;
  ASSERT_TRUE(eventually(
      [&] { return pc.stats(&rep) && rep.last_error[0] != 0 && rep.disk_full_waits > 0; }, 20s))
      << "the persister did not report the full disk: last_error '" << rep.last_error
      << "', disk_full_waits " << rep.disk_full_waits << ", records " << rep.records;
  EXPECT_NE(std::string(rep.last_error).find(expect_in_error), std::string::npos)
      << rep.last_error;
  // Producers are held: refusals grow, the stream does not move.  The ring may still
  // have room when the persister reports the error (it fills behind it first): wait for
  // the hold, bounded.
  StreamInfo before, after;
  EXPECT_TRUE(eventually(
      [&] {
        before = stream_info(ns, "s").value();
        std::this_thread::sleep_for(300ms);
        after = stream_info(ns, "s").value();
        return after.next_seq == before.next_seq && after.producer_full > before.producer_full;
      },
      20s))
      << "producers were not held: next_seq " << before.next_seq << " -> " << after.next_seq
      << ", producer_full " << before.producer_full << " -> " << after.producer_full;
  EXPECT_LT(after.next_seq, records);
  int code = -1;
  EXPECT_FALSE(kids.done(prod, &code)) << "the producer ended with " << code;
  EXPECT_LE(after.durable_seq, after.next_seq);
  expect_intact_prefix(root, ns, "s");

  unblock();
  ASSERT_EQ(kids.wait(prod, 60s), 0) << "the producer did not finish after space returned";
  ASSERT_TRUE(eventually([&] { return durable_seq_of(ns, "s") == records; }))
      << durable_seq_of(ns, "s");
  ASSERT_TRUE(eventually([&] { return pc.stats(&rep) && rep.last_error[0] == 0; }, 5s))
      << rep.last_error;
  EXPECT_EQ(rep.lost, 0u);
  EXPECT_EQ(pc.stop(kids), 0);
  expect_complete(scan_store(root, ns, "s", true), records);
  auto fs = fsck(root, false);
  ASSERT_TRUE(fs) << fs.error().message;
  EXPECT_TRUE(fs->clean());
  for (const auto& i : fs->issues) ADD_FAILURE() << i.path << ": " << i.problem;
}

// RLIMIT_FSIZE (soft) in the persister process: EFBIG, a clear error, producers held,
// nothing corrupt; the limit raised back through the command pipe, it resumes.
TEST(PersisterFaults, FileSizeLimitHoldsProducersThenResumes) {
  ScopedNs ns;
  DataDir dir;
  ASSERT_TRUE(create_stream(ns.ns(), "s", stream_opts(256 << 10)));
  PersisterOptions o;
  o.data_dir = dir.path();
  o.segment_bytes = 4 << 20;  // larger than the limit: the first segment hits it
  Children kids;
  PersisterChild pc;
  ASSERT_TRUE(pc.start(kids, ns.ns(), "s", o, /*fsize_soft=*/600 << 10)) << pc.start_error();
  full_disk_scenario(ns.ns(), dir.path(), kids, pc, [&] { ASSERT_TRUE(pc.raise_fsize_limit()); },
                     30'000, "file size limit");
}

// A small tmpfs (in a private mount namespace) filled up by a filler file: ENOSPC; the
// filler deleted, the persister resumes.  Skipped where mounting is not permitted.
TEST(PersisterFaults, FullTmpfsHoldsProducersThenResumes) {
  ScopedNs ns;
  DataDir dir;
  // This process gets a mount namespace of its own (children inherit it); the tmpfs is
  // seen by nobody else and goes away with the namespace.
  if (::unshare(CLONE_NEWNS) != 0) GTEST_SKIP() << "unshare(CLONE_NEWNS): " << std::strerror(errno);
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    GTEST_SKIP() << "cannot make / private: " << std::strerror(errno);
  const std::string mnt = dir.path() + "/mnt";
  std::filesystem::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m,mode=0700") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  const std::string filler = mnt + "/filler";
  {
    std::ofstream f(filler, std::ios::binary);
    std::string block(64 << 10, 'f');
    for (int i = 0; i < 52; ++i) f.write(block.data(), static_cast<std::streamsize>(block.size()));
    ASSERT_TRUE(f.good());
  }  // 3.25 MiB of 4: the store gets the rest
  ASSERT_TRUE(create_stream(ns.ns(), "s", stream_opts(256 << 10)));
  PersisterOptions o;
  o.data_dir = mnt;
  o.segment_bytes = 1 << 20;
  Children kids;
  PersisterChild pc;
  ASSERT_TRUE(pc.start(kids, ns.ns(), "s", o)) << pc.start_error();
  full_disk_scenario(ns.ns(), mnt, kids, pc, [&] { std::filesystem::remove(filler); }, 12'000,
                     "disk full");
}

// After the first persister of stream s was killed, another takes over: the producer
// `prod` finishes, all `records` become durable, and it stops cleanly; *rep: its
// statistics.
void another_persister_finishes(Children& kids, const std::string& ns, const PersisterOptions& o, pid_t prod,
                                uint64_t records, PersisterChild::Report* rep) {
  PersisterChild pc;
  ASSERT_TRUE(pc.start(kids, ns, "s", o)) << pc.start_error();
  ASSERT_EQ(kids.wait(prod, 60s), 0);
  ASSERT_TRUE(eventually([&] { return durable_seq_of(ns, "s") == records; }));
  ASSERT_TRUE(pc.stats(rep));
  EXPECT_EQ(pc.stop(kids), 0);
}

// Let-go mode: aborted claims the store holds as skipped, then a persister killed -9 after
// its write buffer reached the file but before it committed its ring position, then a
// lap.  The restarted persister's ring consumer counts the lap's gaps from that position,
// below the store's end: the records the lap took after the store's end are lost, never
// "skipped" (a review: they were recorded as never published, a silent loss).
TEST(PersisterFaults, ALapPastAbortedClaimsTheStoreHeldIsLostNotSkipped) {
  ScopedNs ns;
  DataDir dir;
  StreamOptions so = stream_opts(4 << 20);
  so.max_record = 128 << 10;
  so.consumer_dead_timeout = 200ms;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  PersisterOptions o;
  o.data_dir = dir.path();
  o.hold_producers = false;
  o.flush_interval = std::chrono::hours(1);  // no commit before the kill
  Children kids;
  PersisterChild pc;
  ASSERT_TRUE(pc.start(kids, ns.ns(), "s", o)) << pc.start_error();
  auto prod = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(prod);
  const std::string big(100 << 10, 'x');
  ASSERT_TRUE(prod->publish(test::as_bytes(std::string("r0"))).ok());
  for (int i = 0; i < 40; ++i) {  // seqs 1..40
    PubStatus st = PubStatus::kOk;
    Claim c = prod->claim(10, 0, &st);
    ASSERT_EQ(st, PubStatus::kOk);
    ASSERT_EQ(c.abort(), PubStatus::kOk);
  }
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(prod->publish(test::as_bytes(big)).ok());  // 41..52
  // The persister's 1 MiB write buffer reaches the file (and so the page cache, which a
  // kill -9 keeps); nothing is synced or committed.
  const std::string seg = dir.path() + "/" + ns.ns() + "/s/" + std::string(20, '0') + ".seg";
  ASSERT_TRUE(eventually([&] {
    std::error_code ec;
    return std::filesystem::file_size(seg, ec) > (1u << 20) && !ec;
  })) << "the write buffer never reached " << seg;
  pc.kill9(kids);
  // Producers go on after the eviction, well past a ring.
  for (int i = 0; i < 80; ++i) {
    PubResult r = prod->publish(test::as_bytes(big));
    ASSERT_TRUE(r.ok() || r.status == PubStatus::kFull) << static_cast<int>(r.status);
    if (!r.ok()) {
      std::this_thread::sleep_for(50ms);
      --i;
    }
  }
  o.flush_interval = 5ms;
  PersisterChild again;
  ASSERT_TRUE(again.start(kids, ns.ns(), "s", o)) << again.start_error();
  const uint64_t end = next_seq_of(ns.ns(), "s");
  ASSERT_TRUE(eventually([&] { return durable_seq_of(ns.ns(), "s") == end; }, 20s));
  EXPECT_EQ(again.stop(kids), 0);
  const StoreScan sc = scan_store(dir.path(), ns.ns(), "s");
  ASSERT_TRUE(sc.ok) << sc.error;
  ASSERT_FALSE(sc.skipped.empty());
  for (const Range& r : sc.skipped) {
    EXPECT_GE(r.from, 1u) << "a published record recorded as skipped";
    EXPECT_LE(r.to, 41u) << "a published record recorded as skipped";
  }
  ASSERT_FALSE(sc.lost.empty()) << "the lap recorded no loss";
  EXPECT_GE(sc.lost.front().from, 41u);
}

// A --let-go stream whose persister stopped (or died by kill -9) before its store got a
// single record: its group is evicted and producers write over a ring's worth of records.
// The next persister, told of the loss (kEvicted), records it in the store before the
// first record it stores, and producers waiting for those records hear that they were
// not persisted: the empty store once took any first sequence, the loss went unmarked,
// and wait_durable(0) said durable for a record never stored (a review).
TEST(PersisterFaults, ALossBeforeAnEmptyStoresFirstRecordIsRecorded) {
  for (const bool kill9 : {false, true}) {
    SCOPED_TRACE(kill9 ? "kill -9" : "stopped");
    ScopedNs ns;
    DataDir dir;
    PersisterOptions o = let_go_stream(ns.ns(), dir.path(), 64 << 10, 100ms);
    ASSERT_FALSE(o.data_dir.empty());
    o.flush_interval = 5ms;
    Children kids;
    if (kill9) {
      PersisterChild pc;
      ASSERT_TRUE(pc.start(kids, ns.ns(), "s", o)) << pc.start_error();
      pc.kill9(kids);
    } else {
      auto p = Persister::start(ns.ns(), "s", o);
      ASSERT_TRUE(p) << p.error().message;
      ASSERT_TRUE(p.value()->stop());
    }
    ProducerOptions po;
    po.full_timeout = 10s;
    auto prod = Producer::open(ns.ns(), "s", po);
    ASSERT_TRUE(prod);
    const std::string body(100, 'x');
    for (int i = 0; i < 5000; ++i) ASSERT_TRUE(prod->publish(test::as_bytes(body)).ok()) << i;
    auto p2 = Persister::start(ns.ns(), "s", o);
    ASSERT_TRUE(p2) << p2.error().message;
    ASSERT_TRUE(p2.value()->flush(10s));
    EXPECT_GT(p2.value()->stats().lost, 0u);
    EXPECT_EQ(prod->wait_durable(0, 1s), PubStatus::kNotPersisted);
    ASSERT_TRUE(p2.value()->stop());
    const StoreScan sc = scan_store(dir.path(), ns.ns(), "s");
    ASSERT_TRUE(sc.ok) << sc.error;
    EXPECT_EQ(sc.first, 0u) << "the loss before the first record stored is not in the store";
    EXPECT_EQ(sc.end, 5000u);
    EXPECT_EQ(sc.discontinuities, 0u) << sc.first_discontinuity;
    ASSERT_FALSE(sc.lost.empty());
    EXPECT_EQ(sc.lost.front().from, 0u);
    EXPECT_TRUE(sc.skipped.empty());
  }
}

// The default mode (hold_producers): a persister killed -9 and left dead for many times
// the stream's consumer_dead_timeout is never evicted, so producers wait for it with the
// ring full instead of overwriting what was never stored; a restarted persister stores
// everything, with no lost range (a survey: the kill tests restart within the timeout).
TEST(PersisterFaults, ADeadPersisterHoldsProducersPastTheConsumerTimeout) {
  ScopedNs ns;
  DataDir dir;
  StreamOptions so = stream_opts(64 << 10);
  so.consumer_dead_timeout = 100ms;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  PersisterOptions o;
  o.data_dir = dir.path();
  o.segment_bytes = 1 << 20;
  o.flush_interval = 5ms;
  Children kids;
  PersisterChild pc;
  ASSERT_TRUE(pc.start(kids, ns.ns(), "s", o)) << pc.start_error();
  const uint64_t records = 20'000;
  ProduceSpec spec{ns.ns(), "s", 1, records, 64, 256};
  spec.full_timeout = 60s;
  spec.pause_every_record = 10us;  // still running at the kill
  pid_t prod = kids.spawn([&] { return produce(spec); });
  ASSERT_TRUE(eventually([&] { return durable_seq_of(ns.ns(), "s") > 1000; }));
  pc.kill9(kids);
  // The ring fills and stays full: next_seq stops moving, for 15 timeouts.
  uint64_t held = 0;
  ASSERT_TRUE(eventually([&] {
    const uint64_t a = next_seq_of(ns.ns(), "s");
    std::this_thread::sleep_for(250ms);
    held = next_seq_of(ns.ns(), "s");
    return a == held;
  }, 20s)) << "producers were not held";
  ASSERT_LT(held, records) << "the producer finished before the ring filled";
  std::this_thread::sleep_for(1500ms);
  const StreamInfo info = stream_info(ns.ns(), "s").value();
  EXPECT_EQ(info.next_seq, held) << "a producer overwrote what the dead persister never stored";
  EXPECT_EQ(info.evictions, 0u);
  for (const auto& c : info.consumers) {
    if (c.name == "_persister") {
      EXPECT_FALSE(c.evicted);
    }
  }
  EXPECT_GT(info.producer_waits, 0u);
  int code = -1;
  ASSERT_FALSE(kids.done(prod, &code)) << "the producer gave up (" << code << ")";
  // A new persister takes over: everything is stored, nothing lost.
  PersisterChild::Report rep;
  ASSERT_NO_FATAL_FAILURE(another_persister_finishes(kids, ns.ns(), o, prod, records, &rep));
  EXPECT_EQ(rep.lost, 0u);
  expect_complete(scan_store(dir.path(), ns.ns(), "s", true), records);
}

// Let-go mode (hold_producers = false): kill -9 the persister; after the stream's
// consumer_dead_timeout producers go on without it; a restarted persister records the
// records that went by as a lost range, exactly, and a replay reports them as a gap.
TEST(PersisterFaults, LetGoRecordsExactlyTheLostRange) {
  ScopedNs ns;
  DataDir dir;
  PersisterOptions o = let_go_stream(ns.ns(), dir.path(), 64 << 10, 200ms);
  ASSERT_FALSE(o.data_dir.empty());
  o.segment_bytes = 1 << 20;
  o.flush_interval = 5ms;
  Children kids;
  PersisterChild pc;
  ASSERT_TRUE(pc.start(kids, ns.ns(), "s", o)) << pc.start_error();
  const uint64_t records = 25'000;
  ProduceSpec spec{ns.ns(), "s", 1, records, 64, 256};
  spec.full_timeout = 30s;
  spec.pause_every_record = 10us;  // the stream must still be running after the kill
  pid_t prod = kids.spawn([&] { return produce(spec); });
  ASSERT_TRUE(eventually([&] { return durable_seq_of(ns.ns(), "s") > 1000; }));
  pc.kill9(kids);
  const uint64_t at_kill = next_seq_of(ns.ns(), "s");
  // The producer goes on (after the eviction) well past a ring's worth of records.
  ASSERT_TRUE(eventually([&] {
    auto i = stream_info(ns.ns(), "s");
    return i && i->evictions >= 1 && i->next_seq > at_kill + 3000;
  }, 20s)) << "producers were not let go";
  const StreamInfo evicted_info = stream_info(ns.ns(), "s").value();
  for (const auto& c : evicted_info.consumers) {
    if (c.name == "_persister") {
      EXPECT_TRUE(c.evicted);
    }
  }
  int code = -1;
  ASSERT_FALSE(kids.done(prod, &code)) << "the producer ended early (" << code << ")";
  PersisterChild::Report rep;
  ASSERT_NO_FATAL_FAILURE(another_persister_finishes(kids, ns.ns(), o, prod, records, &rep));

  const StoreScan sc = scan_store(dir.path(), ns.ns(), "s", /*single_producer=*/true);
  ASSERT_TRUE(sc.ok) << sc.error;
  EXPECT_EQ(sc.first, 0u);
  EXPECT_EQ(sc.end, records);
  EXPECT_EQ(sc.discontinuities, 0u) << sc.first_discontinuity;
  EXPECT_EQ(sc.order.bad, 0u) << sc.order.first_problem;
  EXPECT_EQ(sc.seq_not_index, 0u);
  ASSERT_FALSE(sc.lost.empty()) << "no lost range recorded";
  uint64_t lost = 0;
  for (const Range& r : sc.lost) {
    EXPECT_LT(r.from, r.to);
    EXPECT_GE(r.from, 1000u) << "records durable before the kill were marked lost";
    lost += r.to - r.from;
  }
  // Each sequence is a record or inside a lost range, never both (entries are contiguous).
  EXPECT_EQ(sc.order.records + lost, records);
  EXPECT_EQ(rep.lost, lost) << "the persister's count differs from the store";

  // A replay from the beginning: records, and the lost ranges as "not persisted" gaps.
  auto rc = ReplayConsumer::open(ns.ns(), "s", ReplayOptions{});
  ASSERT_TRUE(rc) << rc.error().message;
  std::vector<Range> gaps;
  uint64_t expect = 0, got = 0;
  OrderCheck order;
  order.from_any = true;
  while (expect < records) {
    Record rec;
    ReplayStatus st = rc->poll(&rec, 2s);
    if (st == ReplayStatus::kGap) {
      EXPECT_EQ(rc->gap().reason, "not persisted");
      EXPECT_EQ(rc->gap().from, expect);
      gaps.push_back({rc->gap().from, rc->gap().to});
      expect = rc->gap().to;
      continue;
    }
    ASSERT_EQ(st, ReplayStatus::kOk) << "at " << expect << ": "
                                     << (st == ReplayStatus::kError ? rc->error().message : "");
    ASSERT_EQ(rec.seq, expect);
    order.add(rec.seq, rec.data);
    ++expect;
    ++got;
  }
  EXPECT_EQ(gaps, sc.lost);
  EXPECT_EQ(got, sc.order.records);
  EXPECT_EQ(order.bad, 0u);
}

}  // namespace
}  // namespace shmbus::persist::it
