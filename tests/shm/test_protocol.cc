// Regression tests for the ring protocol's edges (issue 9): each one failed on the code
// before its fix.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <vector>

#include "test_util.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;
using test::as_string;

StreamOptions opts(uint64_t cap, std::chrono::milliseconds abandon = 10s) {
  StreamOptions o;
  o.capacity = cap;
  o.max_record = 1024;
  o.abandon_timeout = abandon;
  o.consumer_dead_timeout = 20s;
  return o;
}

// Defect 1: a consumer that starts at `latest` (or at a sequence not yet published)
// while a claim is pending must not let producers reuse that claim's bytes.
enum class LateStart { kDurableLatest, kTailingLatest, kDurableFutureSeq, kTailingFutureSeq };
class StartAbovePendingClaim : public ::testing::TestWithParam<LateStart> {};

TEST_P(StartAbovePendingClaim, NeverLetsProducersOverwriteIt) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts(1 << 16)));
  auto a = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(a);
  PubStatus st;
  Claim held = a->claim(1000, 0, &st);
  ASSERT_TRUE(held.valid());
  std::memset(held.data().data(), 'A', 1000);

  ConsumerOptions co;
  const LateStart mode = GetParam();
  if (mode == LateStart::kDurableLatest || mode == LateStart::kDurableFutureSeq) co.group = "g";
  co.start = (mode == LateStart::kDurableLatest || mode == LateStart::kTailingLatest)
                 ? StartFrom::latest()
                 : StartFrom::seq(5);
  auto c = Consumer::open(ns.ns(), "s", co);
  ASSERT_TRUE(c) << c.error().message;

  ProducerOptions po;
  po.when_full = FullPolicy::kFail;
  auto b = Producer::open(ns.ns(), "s", po);
  ASSERT_TRUE(b);
  std::string payload(1000, 'B');
  uint64_t ok_bytes = 0, full = 0;
  for (int i = 0; i < 300; ++i) {
    auto r = b->publish(as_bytes(payload));
    if (r.ok()) ok_bytes += 1024;
    else if (r.status == PubStatus::kFull) ++full;
    else FAIL() << "status " << int(r.status);
  }
  EXPECT_GT(full, 0u);
  EXPECT_LE(ok_bytes, uint64_t{1} << 16);
  for (std::byte x : held.data()) ASSERT_EQ(x, std::byte{'A'}) << "a pending claim was overwritten";
  EXPECT_EQ(held.commit(), PubStatus::kOk);
}

INSTANTIATE_TEST_SUITE_P(Ring, StartAbovePendingClaim,
                         ::testing::Values(LateStart::kDurableLatest, LateStart::kTailingLatest,
                                           LateStart::kDurableFutureSeq,
                                           LateStart::kTailingFutureSeq));

// A consumer at `latest` still gets exactly the records published after it opened, and
// waits for the pending claim below them to commit first (ring order).
TEST(Ring, LatestStartSkipsRecordsClaimedBeforeIt) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts(1 << 16)));
  auto a = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(a->publish(as_bytes("old")).ok());
  PubStatus st;
  Claim held = a->claim(3, 0, &st);
  std::memcpy(held.data().data(), "mid", 3);
  ConsumerOptions co;
  co.group = "g";
  co.start = StartFrom::latest();
  auto c = Consumer::open(ns.ns(), "s", co);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->next_seq(), 2u);
  auto b = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(b->publish(as_bytes("new")).ok());
  Record rec;
  EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);  // the claim is still pending
  ASSERT_EQ(held.commit(), PubStatus::kOk);
  ASSERT_EQ(c->poll(&rec, 1s), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 2u);
  EXPECT_EQ(as_string(rec.data), "new");
  EXPECT_EQ(c->gaps(), 0u);
  EXPECT_EQ(c->lost(), 0u);
}

}  // namespace
}  // namespace shmbus
