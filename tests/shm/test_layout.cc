// The layout is a contract between processes (and builds): pin it.
#include <gtest/gtest.h>

#include "layout.h"

namespace shmbus::detail {

TEST(Layout, SizesAndOffsetsArePinned) {
  EXPECT_EQ(sizeof(StreamHeader), 4096u);
  EXPECT_EQ(sizeof(RecordHeader), 32u);
  EXPECT_EQ(sizeof(ProducerSlot), 128u);
  EXPECT_EQ(sizeof(ConsumerSlot), 256u);
  EXPECT_EQ(kDataOff, 28672u);
  EXPECT_EQ(kLayoutVersion, 5u);
  EXPECT_EQ(kLayoutVersion4, 4u);  // still read
  EXPECT_EQ(offsetof(StreamHeader, flags), 84u);
  EXPECT_EQ(offsetof(StreamHeader, producer_hwm), 724u);  // version 4
  EXPECT_EQ(offsetof(StreamHeader, gap_log_next), 3600u);  // the gap log (version 3)
  EXPECT_EQ(offsetof(StreamHeader, gap_log), 3632u);
  EXPECT_EQ(kGapLog, 56u);
  EXPECT_EQ(kMagic, 0x315355424d48530aULL);
  EXPECT_TRUE(std::atomic<uint64_t>::is_always_lock_free);
}

TEST(Layout, TagRoundTrip) {
  const uint64_t salt = 0xdeadbeefcafef00dULL & ~7ULL;
  // The lap field is position >> log2(capacity) for every ring from 4 KiB to 4 GiB.
  for (uint64_t cap = kMinCapacity; cap <= kMaxCapacity; cap <<= 1) {
    const unsigned shift = static_cast<unsigned>(__builtin_ctzll(cap));
    for (uint64_t pos : {0ULL, 32ULL, 4096ULL, (1ULL << 34) + 64, ~0ULL & ~31ULL}) {
      for (uint64_t st : {kPending, kData, kPad, kGap}) {
        uint64_t t = make_tag(salt, shift, pos, st, 12345);
        TagView v = decode_tag(salt, shift, t, pos);
        EXPECT_TRUE(v.lap_ok);
        EXPECT_EQ(v.state, st);
        EXPECT_EQ(v.size, 12345u);
        // A tag of the previous lap does not pass for this lap.
        if (pos >= cap) { EXPECT_FALSE(decode_tag(salt, shift, make_tag(salt, shift, pos - cap, st, 1), pos).lap_ok); }
        // The batch paths' form: the lap's key XOR (size << 3 | state) is the tag, and a
        // tag XOR its lap's key leaves just that; another lap's tag leaves lap bits.
        const uint64_t key = tag_key(salt, shift, pos);
        EXPECT_EQ(keyed_tag(key, st, 12345), t);
        EXPECT_EQ(t ^ key, (12345u << 3) | st);
        if (pos >= cap) { EXPECT_NE(make_tag(salt, shift, pos - cap, st, 12345) ^ key, (12345u << 3) | st); }
      }
    }
  }
  // All-zero memory is never a valid record.
  EXPECT_EQ(decode_tag(salt, 12, 0, 0).state, 0u);
}

TEST(Layout, SpanIsAlignedAndCoversHeader) {
  EXPECT_EQ(record_span(0), 32u);
  EXPECT_EQ(record_span(1), 64u);
  EXPECT_EQ(record_span(32), 64u);
  EXPECT_EQ(record_span(33), 96u);
  EXPECT_EQ(record_span(64), 96u);
}

}  // namespace shmbus::detail

#include <thread>

#include "clock.h"

namespace shmbus::detail {

// Record timestamps come from the TSC between clock_gettime anchors: they must stay
// within a microsecond of the wall clock and never go backwards.
TEST(FastClock, TracksWallClockAndIsMonotonic) {
  FastClock c;
  uint64_t last = 0;
  for (int i = 0; i < 200000; ++i) {
    const uint64_t before = now_ns();
    const uint64_t t = c.now();
    const uint64_t after = now_ns();
    ASSERT_GE(t, last);
    ASSERT_GE(t + 1000, before) << i;
    ASSERT_LE(t, after + 1000) << i;
    last = t;
    if (i % 50000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(7));  // re-anchor
  }
}

}  // namespace shmbus::detail
