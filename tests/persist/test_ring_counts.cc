// test_ring_counts.cc: the persister's split of the ring consumer's counts between
// batches (persist/src/ring_counts.h), fed as Consumer::poll_batch() feeds it: a read
// that met a lap after its records returns them and the lap with the next read, but
// lost(), gaps() and last_loss() already count the lap.
#include <gtest/gtest.h>

#include <vector>

#include "ring_counts.h"

namespace shmbus::persist::detail {
namespace {

std::vector<Record> recs_at(std::initializer_list<uint64_t> seqs) {
  std::vector<Record> out;
  for (uint64_t s : seqs) out.push_back(Record{s, 0, 0, {}});
  return out;
}

void expect_first(const RingCounts& c, uint64_t gaps, uint64_t lost, LossRange loss = {}) {
  EXPECT_EQ(c.first_gaps(), gaps);
  EXPECT_EQ(c.first_lost(), lost);
  EXPECT_EQ(c.first_loss().from, loss.from);
  EXPECT_EQ(c.first_loss().to, loss.to);
}

// An aborted claim at 4 before the batch [5, 6, 8] (7: another, between two records).
TEST(RingCounts, GapsBeforeTheFirstRecordAreThoseNotBetweenRecords) {
  RingCounts c;
  auto r = recs_at({5, 6, 8});
  c.after_batch(r, 2, 0, {});
  expect_first(c, 1, 0);
}

// The review's false loss: an aborted claim at 4, the batch [5, 6], then in the same
// read a lap over [7, 20) of which 3 were aborted claims: 10 lost.  The batch's first
// record had only the aborted claim before it; the lap belongs before 20 (stop 45 left
// it counted with [5, 6], and 4 was stored as lost).
TEST(RingCounts, ALapMetAfterABatchIsCountedBeforeTheNextOne) {
  RingCounts c;
  auto first = recs_at({5, 6});
  c.after_batch(first, 4, 10, {7, 20});
  expect_first(c, 1, 0);
  c.after_event(4, 10, {7, 20});  // the next read returns kLapped: nothing grew
  auto next = recs_at({20, 21});
  c.after_batch(next, 4, 10, {7, 20});
  expect_first(c, 3, 10, {7, 20});
  // And then nothing more.
  auto third = recs_at({22});
  c.after_batch(third, 4, 10, {7, 20});
  expect_first(c, 0, 0);
}

// A lap met before any record is returned alone (kLapped): it precedes the next batch.
TEST(RingCounts, ALapReturnedAloneIsCountedBeforeTheNextBatch) {
  RingCounts c;
  c.after_event(3, 10, {4, 17});
  auto r = recs_at({17, 18});
  c.after_batch(r, 3, 10, {4, 17});
  expect_first(c, 3, 10, {4, 17});
}

// Two batches in a row each followed by a lap: each lap goes before the batch after it.
TEST(RingCounts, EachLapGoesBeforeTheBatchAfterIt) {
  RingCounts c;
  auto a = recs_at({1, 2});
  c.after_batch(a, 0, 7, {3, 10});
  expect_first(c, 0, 0);
  auto b = recs_at({10, 11});
  c.after_batch(b, 2, 23, {12, 30});  // [12, 30): 16 lost, 2 gaps
  expect_first(c, 0, 7, {3, 10});
  auto d = recs_at({30});
  c.after_batch(d, 2, 23, {12, 30});
  expect_first(c, 2, 16, {12, 30});
}

// Two events between two batches (a lap, then another before a record was read): their
// counts add up and their ranges join.
TEST(RingCounts, TwoEventsBetweenBatchesAddUp) {
  RingCounts c;
  c.after_event(0, 5, {0, 5});
  c.after_event(1, 9, {5, 10});
  auto r = recs_at({10});
  c.after_batch(r, 1, 9, {5, 10});
  expect_first(c, 1, 9, {0, 10});
}

// A loss that does not lie after the batch's last record, or whose range cannot hold the
// counts, stays before the first record: judged lost (a false loss at worst), never
// carried away from a range it may belong to.
TEST(RingCounts, ALossThatCannotBePlacedAfterTheBatchStaysBeforeIt) {
  {
    RingCounts c;
    auto r = recs_at({5, 6});
    c.after_batch(r, 0, 3, {2, 5});  // before the batch, counted with it
    expect_first(c, 0, 3, {2, 5});
  }
  {
    RingCounts c;
    auto r = recs_at({5, 6});
    c.after_batch(r, 1, 3, {7, 14});  // 7 in the range, 3 lost: 4 gaps, but 1 counted
    expect_first(c, 1, 3, {7, 14});
  }
}

// A count that went backwards (a consumer opened anew without reset()) cannot be judged.
TEST(RingCounts, ACountGoingBackCannotBeJudged) {
  RingCounts c;
  auto r = recs_at({5});
  c.after_batch(r, 4, 2, {1, 3});
  auto s = recs_at({9});
  c.after_batch(s, 1, 2, {1, 3});
  EXPECT_EQ(c.first_gaps(), RingCounts::kUnknown);
  c.reset();
  c.after_batch(s, 1, 0, {});
  expect_first(c, 1, 0);
}

}  // namespace
}  // namespace shmbus::persist::detail
