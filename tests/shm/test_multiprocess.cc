// Many processes, many records, every one accounted for.
#include <gtest/gtest.h>

#include <climits>
#include <cstring>
#include <vector>

#include "mp_util.h"
#include "../common/scratch.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::Msg;

struct ConsumerResult {
  uint64_t records = 0;     // records returned
  uint64_t seq_jumps = 0;   // sum of (seq - expected) over all discontinuities
  uint64_t lost = 0;        // what the consumer said it lost (lapped)
  uint64_t gaps = 0;        // what the consumer said was abandoned
  uint64_t errors = 0;      // checksum, order or duplicate failures
  uint64_t last_seq = 0;
};

// What a consumer child reports, in one pipe write.
struct Tagged {
  int32_t kind;
  ConsumerResult result;
};
static_assert(sizeof(Tagged) < PIPE_BUF);

// Reads until it has seen seq `total - 1` (or times out); checks every record.
ConsumerResult consume(Consumer& c, uint64_t total, uint32_t producers, bool strict) {
  ConsumerResult r;
  std::vector<uint64_t> next_index(producers, 0);
  uint64_t expected = 0;
  Record rec;
  for (;;) {
    ReadStatus st = c.poll(&rec, 10s);
    if (st == ReadStatus::kLapped) continue;
    if (st != ReadStatus::kOk) { ++r.errors; break; }
    if (rec.seq != expected) {
      if (rec.seq < expected || strict) ++r.errors;
      r.seq_jumps += rec.seq > expected ? rec.seq - expected : 0;
    }
    expected = rec.seq + 1;
    Msg m;
    if (rec.data.size() != sizeof m) { ++r.errors; continue; }
    std::memcpy(&m, rec.data.data(), sizeof m);
    if (m.producer >= producers || m.check != test::msg_check(m.producer, m.index)) { ++r.errors; continue; }
    // Per-producer order: strictly increasing; with no loss, exactly the next one.
    if (m.index < next_index[m.producer] || (strict && m.index != next_index[m.producer])) ++r.errors;
    next_index[m.producer] = m.index + 1;
    ++r.records;
    r.last_seq = rec.seq;
    if (rec.seq + 1 >= total) break;
  }
  r.lost = c.lost();
  r.gaps = c.gaps();
  return r;
}

// 2 producer processes, 2 durable and 1 tailing consumer process, 10 million records.
TEST(MultiProcess, TwoProducersThreeConsumersTenMillion) {
  test::ScopedNs ns;
  constexpr uint64_t kPerProducer = 5'000'000;
  constexpr uint32_t kProducers = 2;
  constexpr uint64_t kTotal = kPerProducer * kProducers;
  StreamOptions so;
  so.capacity = 1 << 20;
  so.consumer_dead_timeout = 60s;
  ASSERT_TRUE(create_stream(ns.ns(), "mp", so));

  test::Pipe ready, results;
  std::vector<pid_t> consumers;
  for (int k = 0; k < 3; ++k) {
    consumers.push_back(test::spawn([&, k] {
      ConsumerOptions o;
      o.group = k < 2 ? "durable" + std::to_string(k) : "";
      o.start = StartFrom::earliest();
      auto c = Consumer::open(ns.ns(), "mp", o);
      if (!c) return 10;
      char one = 1;
      ready.put(&one, 1);
      // One write (< PIPE_BUF, so atomic): three children share the pipe.
      Tagged t{k, consume(c.value(), kTotal, kProducers, k < 2)};
      results.put(&t, sizeof t);
      return 0;
    }));
  }
  for (int k = 0; k < 3; ++k) {
    char one;
    ASSERT_TRUE(ready.get(&one, 1));
  }
  std::vector<pid_t> producers;
  for (uint32_t id = 0; id < kProducers; ++id) {
    producers.push_back(test::spawn([&, id] {
      auto p = Producer::open(ns.ns(), "mp");
      if (!p) return 10;
      for (uint64_t i = 0; i < kPerProducer; ++i) {
        Msg m{id, 0, i, test::msg_check(id, i)};
        if (!p->publish(Bytes(reinterpret_cast<std::byte*>(&m), sizeof m)).ok()) return 11;
      }
      return 0;
    }));
  }
  for (pid_t p : producers) EXPECT_EQ(test::reap(p), 0);
  for (int k = 0; k < 3; ++k) {
    Tagged t;
    ASSERT_TRUE(results.get(&t, sizeof t));
    const int32_t kind = t.kind;
    const ConsumerResult& r = t.result;
    EXPECT_EQ(r.errors, 0u) << "consumer " << kind;
    EXPECT_EQ(r.last_seq, kTotal - 1) << "consumer " << kind;
    EXPECT_EQ(r.gaps, 0u);
    if (kind < 2) {
      EXPECT_EQ(r.records, kTotal) << "durable consumer " << kind << " saw every record once";
      EXPECT_EQ(r.seq_jumps, 0u);
    } else {
      // The tailing reader's reported loss is exactly its sequence gaps.
      EXPECT_EQ(r.lost, r.seq_jumps);
      EXPECT_EQ(r.records + r.lost, kTotal);
    }
  }
  for (pid_t c : consumers) EXPECT_EQ(test::reap(c), 0);
  auto info = stream_info(ns.ns(), "mp");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->next_seq, kTotal);
  EXPECT_EQ(info->records_published, kTotal);
  EXPECT_EQ(info->bytes_published, kTotal * sizeof(Msg));
  EXPECT_EQ(info->abandoned, 0u);
}

}  // namespace
}  // namespace shmbus
