// open_tail (shmbus/tail.h): the one decision of how a reader without a group reads,
// and the replay's one filter of store entries.
#include "shmbus/tail.h"
#include "test_persister_util.h"
#include "shmbus/detail/stream_control.h"

namespace shmbus::persist::it {
namespace {

void publish_n(const std::string& ns, uint64_t from, uint64_t to,
               std::chrono::nanoseconds full_timeout = 10s) {
  ProducerOptions po;
  po.full_timeout = full_timeout;
  auto p = Producer::open(ns, "s", po);
  ASSERT_TRUE(p) << p.error().message;
  std::byte buf[200];
  for (uint64_t i = from; i < to; ++i) {
    const size_t n = payload_size(1, i, 64, 200);
    fill_payload(1, i, n, buf);
    PubResult r = p->publish(Bytes(buf, n), 1);
    ASSERT_TRUE(r.ok()) << i;
    ASSERT_EQ(r.seq, i);
  }
}

std::unique_ptr<Persister> start_persister(const std::string& ns, const std::string& dir,
                                           bool hold_producers = true) {
  PersisterOptions o;
  o.data_dir = dir;
  o.segment_bytes = 16 << 10;
  o.hold_producers = hold_producers;
  auto p = Persister::start(ns, "s", o);
  EXPECT_TRUE(p) << p.error().message;
  return p ? std::move(p.value()) : nullptr;
}

// Starts a persister on NS/s, publishes [from, to) and waits until they are durable.
std::unique_ptr<Persister> persist_range(const std::string& ns, const std::string& dir, uint64_t from,
                                         uint64_t to, bool hold_producers = true) {
  auto per = start_persister(ns, dir, hold_producers);
  if (!per) return nullptr;
  publish_n(ns, from, to);
  EXPECT_TRUE(eventually([&] { return durable_seq_of(ns, "s") >= to; }));
  return per;
}

// A stream that is not persisted: the ring, as a tailing reader (it counts laps).
TEST(Replay, OpenTailReadsAPlainStreamFromTheRing) {
  ScopedNs ns;
  DataDir dir;
  ASSERT_TRUE(create_stream(ns.ns(), "s", stream_opts(64 << 10)));
  publish_n(ns.ns(), 0, 5);
  TailOptions o;
  o.data_dir = dir.path();
  auto t = open_tail(ns.ns(), "s", o);
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_TRUE(t->ring.has_value());
  EXPECT_FALSE(t->replay.has_value());
  EXPECT_FALSE(t->replaying());
  EXPECT_FALSE(t->ring->ring().durable());
  Record rec;
  ASSERT_EQ(t->ring->poll(&rec, 1s), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 0u);  // the default start: the earliest
}

// A persisted stream whose ring has moved on: the store first, then the ring.
TEST(Replay, OpenTailReplaysAPersistedStream) {
  ScopedNs ns;
  DataDir dir;
  ASSERT_TRUE(create_stream(ns.ns(), "s", stream_opts(16 << 10)));
  auto per = persist_range(ns.ns(), dir.path(), 0, 2000);
  ASSERT_TRUE(per);
  ASSERT_GT(stream_info(ns.ns(), "s")->oldest_seq, 0u);
  TailOptions o;
  o.start = StartFrom{};  // "committed": the earliest, for a reader without a group
  auto t = open_tail(ns.ns(), "s", o);
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_TRUE(t->replaying());
  EXPECT_FALSE(t->ring.has_value());
  EXPECT_TRUE(t->replay->from_store());
  Record rec;
  ASSERT_EQ(t->replay->poll(&rec, 1s), ReplayStatus::kOk);
  EXPECT_EQ(rec.seq, 0u);
}

// No ring (a reboot) but a store in the data dir: the store.  Neither: kNotFound.
TEST(Replay, OpenTailReadsAStoreWhoseRingIsGone) {
  ScopedNs ns;
  DataDir dir;
  ASSERT_TRUE(create_stream(ns.ns(), "s", stream_opts(64 << 10)));
  {
    auto per = persist_range(ns.ns(), dir.path(), 0, 10);
    ASSERT_TRUE(per);
    ASSERT_TRUE(per->stop());
  }
  ASSERT_TRUE(remove_stream(ns.ns(), "s", /*force=*/true));
  TailOptions o;
  o.data_dir = dir.path();
  auto t = open_tail(ns.ns(), "s", o);
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_TRUE(t->replaying());
  Record rec;
  for (uint64_t i = 0; i < 10; ++i) {
    ASSERT_EQ(t->replay->poll(&rec, 1s), ReplayStatus::kOk) << i;
    EXPECT_EQ(rec.seq, i);
  }
  EXPECT_EQ(t->replay->poll(&rec, 0ns), ReplayStatus::kTimeout);
  DataDir empty;
  o.data_dir = empty.path();
  auto none = open_tail(ns.ns(), "s", o);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::kNotFound);
}

// A "not persisted" entry of the store that lies wholly below the header's watermark
// (raised while no persister ran to apply it) is deleted, not a gap: a replay from the
// earliest starts at the watermark without reporting it (the records below it were
// skipped silently already; before the one filter, the gap entry was reported).
TEST(Replay, AStoreGapBelowTheWatermarkIsNotReported) {
  ScopedNs ns;
  DataDir dir;
  StreamOptions so = stream_opts(16 << 10);
  so.consumer_dead_timeout = 100ms;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  {
    auto per = persist_range(ns.ns(), dir.path(), 0, 10, /*hold_producers=*/false);
    ASSERT_TRUE(per);
    ASSERT_TRUE(per->stop());
  }
  publish_n(ns.ns(), 10, 2000);  // waits for the persister's eviction, then laps it
  const uint64_t oldest = stream_info(ns.ns(), "s")->oldest_seq;
  ASSERT_GT(oldest, 10u);
  {
    // The restarted persister records [10, oldest) as not persisted, then stores the rest.
    auto per = start_persister(ns.ns(), dir.path(), /*hold_producers=*/false);
    ASSERT_TRUE(per);
    ASSERT_TRUE(eventually([&] { return durable_seq_of(ns.ns(), "s") >= 2000; }));
    ASSERT_TRUE(per->stop());
  }
  {
    auto rc = ReplayConsumer::open(ns.ns(), "s");
    ASSERT_TRUE(rc) << rc.error().message;
    Record rec;
    ASSERT_EQ(rc->poll(&rec, 1s), ReplayStatus::kOk);  // 0..9 are stored
    ASSERT_EQ(rec.seq, 0u);
    for (uint64_t i = 1; i < 10; ++i) ASSERT_EQ(rc->poll(&rec, 1s), ReplayStatus::kOk);
    ASSERT_EQ(rc->poll(&rec, 1s), ReplayStatus::kGap) << "the store should hold the lost range";
    EXPECT_EQ(rc->gap().from, 10u);
    EXPECT_EQ(rc->gap().to, oldest);
    EXPECT_EQ(rc->gap().reason, "not persisted");
  }
  StreamControl::open(ns.ns(), "s")->raise_deleted_below(oldest);
  auto rc = ReplayConsumer::open(ns.ns(), "s");
  ASSERT_TRUE(rc) << rc.error().message;
  Record rec;
  const ReplayStatus st = rc->poll(&rec, 1s);
  ASSERT_EQ(st, ReplayStatus::kOk) << (st == ReplayStatus::kGap ? rc->gap().reason + " " +
                                                                       std::to_string(rc->gap().from) + ".." +
                                                                       std::to_string(rc->gap().to)
                                                                 : std::string());
  EXPECT_EQ(rec.seq, oldest);
}

}  // namespace
}  // namespace shmbus::persist::it
