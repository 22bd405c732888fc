// Regression tests for defects the chaos harness (tests/chaos) found: each failed on
// the code before its fix.
#include <gtest/gtest.h>

#include "../common/scratch.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;

// Found by the chaos harness's stall phase: a consumer that starts at `latest` (or at a
// sequence not yet published) took the sequence of its first record as its start, so
// claims abandoned or aborted between its open and that record were counted nowhere:
// delivered + gaps + lost fell short of the range it advanced over.
enum class Start { kDurableLatest, kTailingLatest, kDurableFutureSeq, kTailingFutureSeq };
class LateStartCountsLaterGaps : public ::testing::TestWithParam<Start> {};

TEST_P(LateStartCountsLaterGaps, Exactly) {
  test::ScopedNs ns;
  StreamOptions so;
  so.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p->publish(as_bytes("before")).ok());  // seqs 0..2

  const Start mode = GetParam();
  ConsumerOptions co;
  if (mode == Start::kDurableLatest || mode == Start::kDurableFutureSeq) co.group = "g";
  const bool latest = mode == Start::kDurableLatest || mode == Start::kTailingLatest;
  co.start = latest ? StartFrom::latest() : StartFrom::seq(5);
  auto c = Consumer::open(ns.ns(), "s", co);
  ASSERT_TRUE(c) << c.error().message;
  const uint64_t start = c->next_seq();
  EXPECT_EQ(start, latest ? 3u : 5u);

  for (int i = 0; i < 3; ++i) {  // seqs 3..5 become gaps
    PubStatus st;
    Claim cl = p->claim(8, 0, &st);
    ASSERT_TRUE(cl.valid());
    ASSERT_EQ(cl.abort(), PubStatus::kOk);
  }
  const PubResult r = p->publish(as_bytes("after"));  // seq 6
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.seq, 6u);

  Record rec;
  ASSERT_EQ(c->poll(&rec, 2s), ReadStatus::kOk);
  EXPECT_EQ(rec.seq, 6u);
  EXPECT_EQ(c->next_seq(), 7u);
  // Advanced over [start, 7): one delivered, the rest gaps it passed (none lost).
  EXPECT_EQ(c->lost(), 0u);
  EXPECT_EQ(1 + c->gaps() + c->lost(), c->next_seq() - start);
}

INSTANTIATE_TEST_SUITE_P(Chaos, LateStartCountsLaterGaps,
                         ::testing::Values(Start::kDurableLatest, Start::kTailingLatest,
                                           Start::kDurableFutureSeq, Start::kTailingFutureSeq),
                         [](const ::testing::TestParamInfo<Start>& i) {
                           switch (i.param) {
                             case Start::kDurableLatest: return "DurableLatest";
                             case Start::kTailingLatest: return "TailingLatest";
                             case Start::kDurableFutureSeq: return "DurableFutureSeq";
                             default: return "TailingFutureSeq";
                           }
                         });

}  // namespace
}  // namespace shmbus
