// poll_in_place() + validate() against a producer in another process that laps the
// reader while it reads: every record validate() vouches for is whole, every record
// returned has the header it was published with, and what was neither read nor vouched
// for is counted lost, exactly.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>

#include "../common/scratch.h"
#include "mp_util.h"
#include "shmbus/shmbus.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kRecords = 400'000;

// Every record's size and bytes follow from its sequence alone.
uint64_t size_of(uint64_t seq) { return 8 * (1 + (seq * 7919) % 256); }  // 8 .. 2048
uint64_t word_of(uint64_t seq, uint64_t i) { return test::msg_check(static_cast<uint32_t>(i), seq); }

void spin_for(std::chrono::nanoseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

TEST(InPlaceMp, ValidatedRecordsAreWholeWhileAProducerLapsTheReader) {
  test::ScopedNs ns;
  StreamOptions so;
  so.capacity = 64 * 1024;
  so.max_record = 2048;
  ASSERT_TRUE(create_stream(ns.ns(), "s", so));
  ConsumerOptions co;  // tailing, from the start
  co.start = StartFrom::earliest();
  co.wait = WaitStrategy::kBusySpin;
  auto t = Consumer::open(ns.ns(), "s", co);
  ASSERT_TRUE(t) << t.error().message;

  const pid_t prod = test::spawn([&] {
    auto p = Producer::open(ns.ns(), "s");
    if (!p) return 2;
    std::vector<uint64_t> words(2048 / 8);
    for (uint64_t seq = 0; seq < kRecords; ++seq) {
      const uint64_t n = size_of(seq) / 8;
      for (uint64_t i = 0; i < n; ++i) words[i] = word_of(seq, i);
      const PubResult r = p->publish(Bytes(reinterpret_cast<const std::byte*>(words.data()), n * 8));
      if (!r.ok() || r.seq != seq) return 3;
    }
    return 0;
  });
  ASSERT_GT(prod, 0);

  uint64_t vouched = 0, refused = 0, torn_vouched = 0, bad_header = 0, laps = 0;
  uint64_t last = ~0ULL;
  bool done = false;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    Record rec;
    const ReadStatus st = t->poll_in_place(&rec, 200ms);
    if (st == ReadStatus::kLapped) {
      ++laps;
      continue;
    }
    if (st == ReadStatus::kTimeout) continue;  // (the producer may still be starting)
    ASSERT_EQ(st, ReadStatus::kOk);
    // The header is checked before the record is returned: its sequence goes up and its
    // size is the one published with it, torn payload or not.
    if ((last != ~0ULL && rec.seq <= last) || rec.seq >= kRecords || rec.data.size() != size_of(rec.seq))
      ++bad_header;
    last = rec.seq;
    // Read the payload in place, slowly every 8th record (the producer laps a 64 KiB ring
    // in microseconds), then ask whether what was read was the record.
    bool whole = true;
    const uint64_t n = rec.data.size() / 8;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t w;
      std::memcpy(&w, rec.data.data() + 8 * i, 8);
      if (w != word_of(rec.seq, i)) whole = false;
      if (i == n / 2 && rec.seq % 8 == 0) spin_for(20us);
    }
    if (t->validate()) {
      ++vouched;
      if (!whole) ++torn_vouched;
      // The last one published cannot be written over: the reader ends there.
      if (rec.seq + 1 == kRecords) done = true;
    } else {
      ++refused;
    }
  }
  const int rc = test::reap(prod, 60s);
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(done);
  EXPECT_EQ(torn_vouched, 0u) << "records vouched for whose bytes were not the record's";
  EXPECT_EQ(bad_header, 0u);
  EXPECT_GT(refused, 0u) << "the producer never wrote over a record being read: nothing tested";
  // Exact accounting: every record was vouched for or counted lost, none twice (the last
  // one read was the last published, so nothing is left to lose after it).
  EXPECT_EQ(vouched + t->lost(), kRecords) << "vouched " << vouched << ", refused " << refused
                                           << ", laps " << laps << ", lost " << t->lost();
  EXPECT_GE(t->lost(), refused);
}

}  // namespace
}  // namespace shmbus
