// The soak's durable bookkeeping (record_durable(), recover_group()) survives a kill -9
// between any two of its stores: the next incarnation of the group, which the ring hands
// the same uncommitted record again, reports no duplicate and the counts stay exact.
#include <gtest/gtest.h>

#include <memory>

#include "soak_roles.h"

namespace shmbus::soak {
namespace {

PayloadHeader payload(uint32_t inc, uint64_t counter) {
  return PayloadHeader{kPayloadMagic, inc, counter, ~0ULL, 64, 0};
}

TEST(SoakDurableBook, AKillBetweenAnyTwoStoresReportsNoDuplicate) {
  // Records 0 and 1, a gap at 2 (an abandoned claim: producer counter 2 never arrives),
  // then 3 and 4.  The incarnation processing 3 dies after `k` stores, before its
  // commit; the ring gives the next incarnation 3 again (the committed position is after
  // 1), with the gap counted again by its new consumer.
  for (int k = 0; k < 40; ++k) {
    SCOPED_TRACE("killed after " + std::to_string(k) + " stores");
    auto g = std::make_unique<Group>();  // zeroed, as the soak's shared mapping
    recover_group(g.get());
    EXPECT_EQ(record_durable(g.get(), 0, payload(7, 0), 0, true), "");
    EXPECT_EQ(record_durable(g.get(), 1, payload(7, 1), 0, false), "");
    int steps = k;
    EXPECT_EQ(record_durable(g.get(), 3, payload(7, 3), 1, false, &steps), "");
    // The next incarnation.
    int rsteps = k;  // a kill during recovery too, then one more incarnation
    recover_group(g.get(), &rsteps);
    recover_group(g.get());
    EXPECT_EQ(record_durable(g.get(), 3, payload(7, 3), 1, true), "");
    EXPECT_EQ(record_durable(g.get(), 4, payload(7, 4), 0, false), "");
    EXPECT_EQ(g->duplicates.load(), 0u);
    EXPECT_EQ(g->next.load(), 5u);
    EXPECT_EQ(g->delivered.load(), 4u);
    EXPECT_EQ(g->skipped.load(), 1u);
    EXPECT_EQ(g->gaps_reported.load(), 1u);
    EXPECT_EQ(g->counter_skips.load(), 1u);
    EXPECT_EQ(g->counter_next[7].load(), 5u);
  }
}

TEST(SoakDurableBook, ARealDuplicateIsStillReported) {
  auto g = std::make_unique<Group>();
  recover_group(g.get());
  EXPECT_EQ(record_durable(g.get(), 0, payload(7, 0), 0, true), "");
  EXPECT_EQ(record_durable(g.get(), 1, payload(7, 1), 0, false), "");
  // An old payload under a new sequence.
  EXPECT_NE(record_durable(g.get(), 2, payload(7, 1), 0, false), "");
  // A sequence delivered again (not the first record of an incarnation).
  EXPECT_NE(record_durable(g.get(), 1, payload(7, 9), 0, false), "");
  // After a restart, the last record is redelivered once, not an older one.
  recover_group(g.get());
  EXPECT_NE(record_durable(g.get(), 0, payload(7, 0), 0, true), "");
  EXPECT_EQ(g->duplicates.load(), 3u);
}

}  // namespace
}  // namespace shmbus::soak
