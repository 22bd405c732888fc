// poll_in_place() + validate() against a producer in another process that laps the
// reader while it reads: every record validate() vouches for is whole, every record
// returned has the header it was published with, and what was neither read nor vouched
// for is counted lost, exactly.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <thread>

#include <chrono>
#include <cstring>
#include <string>

#include "../common/scratch.h"
#include "mp_util.h"
#include "shmbus/shmbus.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;

// The producer publishes until the reader has seen enough records written over while it
// read them, then says how many it published.
struct Shared {
  std::atomic<uint32_t> stop{0};
  std::atomic<uint64_t> published{0};  // set before the producer exits
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);
constexpr uint64_t kWanted = 200;       // refusals, and
constexpr uint64_t kWantedWhole = 20000;  // records vouched for, before the producer stops

// Every record's size and bytes follow from its sequence alone.
uint64_t size_of(uint64_t seq) { return 8 * (1 + (seq * 7919) % 256); }  // 8 .. 2048
uint64_t word_of(uint64_t seq, uint64_t i) { return test::msg_check(static_cast<uint32_t>(i), seq); }

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
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  Shared* sh = new (mem) Shared;

  const pid_t prod = test::spawn([&] {
    auto p = Producer::open(ns.ns(), "s");
    if (!p) return 2;
    std::vector<uint64_t> words(2048 / 8);
    uint64_t seq = 0;
    for (; sh->stop.load(std::memory_order_relaxed) == 0 && seq < (1ULL << 40); ++seq) {
      const uint64_t n = size_of(seq) / 8;
      for (uint64_t i = 0; i < n; ++i) words[i] = word_of(seq, i);
      const PubResult r = p->publish(Bytes(reinterpret_cast<const std::byte*>(words.data()), n * 8));
      if (!r.ok() || r.seq != seq) return 3;
    }
    sh->published.store(seq, std::memory_order_release);
    return 0;
  });
  ASSERT_GT(prod, 0);

  uint64_t vouched = 0, refused = 0, torn_vouched = 0, bad_header = 0, laps = 0;
  uint64_t last = ~0ULL, last_vouched = ~0ULL, total = 0;
  bool done = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    if ((refused >= kWanted && vouched >= kWantedWhole) || std::chrono::steady_clock::now() + 30s > deadline)
      sh->stop.store(1, std::memory_order_relaxed);
    if (total == 0) total = sh->published.load(std::memory_order_acquire);
    // The last one published cannot be written over: the reader ends once it vouched
    // for it.
    if (total != 0 && last_vouched + 1 == total) {
      done = true;
      break;
    }
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
    if ((last != ~0ULL && rec.seq <= last) || rec.data.size() != size_of(rec.seq))
      ++bad_header;
    last = rec.seq;
    // Read the payload in place, pausing halfway through every 16th record (the producer
    // laps a 64 KiB ring in microseconds, on the other core or on this one meanwhile),
    // then ask whether what was read was the record.
    bool whole = true;
    const uint64_t n = rec.data.size() / 8;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t w;
      std::memcpy(&w, rec.data.data() + 8 * i, 8);
      if (w != word_of(rec.seq, i)) whole = false;
      if (i == n / 2 && rec.seq % 16 == 0) std::this_thread::sleep_for(20us);
    }
    if (t->validate()) {
      ++vouched;
      if (!whole) ++torn_vouched;
      last_vouched = rec.seq;
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
  EXPECT_GT(total, 0u);
  EXPECT_EQ(vouched + t->lost(), total) << "vouched " << vouched << ", refused " << refused
                                           << ", laps " << laps << ", lost " << t->lost();
  EXPECT_GE(t->lost(), refused);
  munmap(mem, sizeof(Shared));
}

}  // namespace
}  // namespace shmbus
