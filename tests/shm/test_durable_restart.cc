// A durable group restarted many times (kill -9 at random moments) while three
// producers publish records of varying sizes through publish(), claim()/commit() and
// publish_batch() into a small ring: no incarnation is ever handed a payload under a
// sequence that another payload had (issue 9: "an old payload under a new sequence").
//
// Every record delivered is noted in one word per sequence in a shared mapping (one
// store: a kill cannot leave it half-written); a sequence delivered again must carry
// the same payload, and in sequence order each producer's counters must rise by one.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>
#include <cstring>

#include "mp_util.h"
#include "../common/scratch.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kProducers = 3;

// Payload: producer, length, counter, a check of all three, then filler from them.
void fill(std::byte* out, uint32_t len, uint32_t producer, uint64_t counter) {
  test::Msg m{producer, len, counter, test::msg_check(producer, counter) ^ len};
  std::memcpy(out, &m, sizeof m);
  for (uint32_t i = sizeof m; i < len; ++i) out[i] = static_cast<std::byte>(counter * 131 + i + producer);
}
bool valid(Bytes b, test::Msg* m) {
  if (b.size() < sizeof *m) return false;
  std::memcpy(m, b.data(), sizeof *m);
  if (m->pad != b.size() || m->check != (test::msg_check(m->producer, m->index) ^ m->pad)) return false;
  for (uint32_t i = sizeof *m; i < b.size(); ++i)
    if (b[i] != static_cast<std::byte>(m->index * 131 + i + m->producer)) return false;
  return true;
}

int produce(const std::string& ns, uint32_t id, uint64_t per_producer) {
  auto p = Producer::open(ns, "f");
  if (!p) return 10;
  std::mt19937_64 rng(id + 1);
  std::vector<std::byte> buf[4];
  for (auto& b : buf) b.resize(256);
  for (uint64_t counter = 0; counter < per_producer;) {
    const uint32_t len = 32 + static_cast<uint32_t>(rng() % 224);
    const uint64_t kind = rng() % 16;
    if (kind == 0 && counter + 4 <= per_producer) {
      Bytes parts[4];
      for (int i = 0; i < 4; ++i) {
        const uint32_t l = 32 + static_cast<uint32_t>(rng() % 224);
        fill(buf[i].data(), l, id, counter + i);
        parts[i] = Bytes(buf[i].data(), l);
      }
      if (!p->publish_batch(parts).ok()) return 11;
      counter += 4;
    } else if (kind < 4) {
      PubStatus st;
      Claim c = p->claim(len, 1, &st);
      if (!c.valid()) return 12;
      fill(c.data().data(), len, id, counter++);
      if (kind == 1) std::this_thread::yield();
      if (c.commit() != PubStatus::kOk) return 13;
    } else {
      fill(buf[0].data(), len, id, counter++);
      if (!p->publish(Bytes(buf[0].data(), len)).ok()) return 14;
    }
  }
  return 0;
}

// One incarnation of the group: reads until the last sequence (or its kill).  Exit
// codes name the violation.
int read_group(const std::string& ns, uint64_t total, std::atomic<uint64_t>* seen,
               std::atomic<uint64_t>* bad) {
  ConsumerOptions co;
  co.group = "g";
  Result<Consumer> c = make_error(Errc::kBusy, "");
  for (int i = 0; i < 400 && !(c = Consumer::open(ns, "f", co)); ++i)
    std::this_thread::sleep_for(5ms);  // the killed holder may not be reaped yet
  if (!c) return 2;
  uint64_t last[kProducers];
  for (auto& l : last) l = ~0ULL;
  Record rec;
  for (;;) {
    if (c->next_seq() >= total) return 0;
    const ReadStatus st = c->poll(&rec, 20s);
    if (st != ReadStatus::kOk) return 3;
    test::Msg m;
    if (!valid(rec.data, &m) || m.producer >= kProducers || rec.seq >= total) {
      bad->fetch_add(1);
      return 4;
    }
    const uint64_t word = (uint64_t{m.producer} << 48 | m.index) + 1;
    uint64_t was = 0;
    if (!seen[rec.seq].compare_exchange_strong(was, word) && was != word) {
      bad->fetch_add(1);
      return 5;  // this sequence was delivered before with another payload
    }
    if (last[m.producer] != ~0ULL && m.index <= last[m.producer]) {
      bad->fetch_add(1);
      return 6;  // an older payload of this producer under a newer sequence
    }
    last[m.producer] = m.index;
  }
}

void restart_rounds(int rounds, uint64_t per_producer, uint64_t seed) {
  const uint64_t kTotal = kProducers * per_producer;
  test::ScopedNs ns;
  StreamOptions so;
  so.capacity = 1 << 16;
  so.abandon_timeout = 50ms;
  so.consumer_dead_timeout = 10s;  // restarts come quickly: no eviction expected
  ASSERT_TRUE(create_stream(ns.ns(), "f", so));
  {
    ConsumerOptions co;
    co.group = "g";
    ASSERT_TRUE(Consumer::open(ns.ns(), "f", co));  // registered before the producers start
  }
  const size_t bytes = (kTotal + 1) * sizeof(std::atomic<uint64_t>);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* seen = static_cast<std::atomic<uint64_t>*>(mem);  // zero-filled
  std::atomic<uint64_t>* bad = seen + kTotal;
  std::vector<pid_t> producers;
  for (uint32_t i = 0; i < kProducers; ++i)
    producers.push_back(test::spawn([&, i] { return produce(ns.ns(), i, per_producer); }));
  std::mt19937_64 rng(seed);
  for (int r = 0;; ++r) {
    pid_t reader = test::spawn([&] { return read_group(ns.ns(), kTotal, seen, bad); });
    if (r >= rounds) {
      EXPECT_EQ(test::reap(reader), 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 30000));
    kill(reader, SIGKILL);
    const int rc = test::reap(reader);
    ASSERT_TRUE(rc == 128 + SIGKILL || rc == 0) << "reader exit " << rc;
  }
  for (pid_t p : producers) EXPECT_EQ(test::reap(p), 0);
  EXPECT_EQ(bad->load(), 0u);
  // In sequence order, each producer's counters are 0, 1, 2, ... (no gaps: no producer died).
  uint64_t next[kProducers] = {};
  for (uint64_t s = 0; s < kTotal; ++s) {
    const uint64_t w = seen[s].load();
    ASSERT_NE(w, 0u) << "seq " << s << " never delivered";
    const uint64_t producer = (w - 1) >> 48, index = (w - 1) & ((uint64_t{1} << 48) - 1);
    ASSERT_LT(producer, kProducers);
    ASSERT_EQ(index, next[producer]) << "seq " << s << " producer " << producer;
    ++next[producer];
  }
  EXPECT_EQ(stream_info(ns.ns(), "f")->evictions, 0u);
  munmap(mem, bytes);
}

TEST(DurableRestart, KilledGroupNeverSeesAnOldPayloadUnderANewSequence) {
  restart_rounds(60, 20000, 9);
}
// Under the soak label (ctest -L soak): longer, more kills.
TEST(DurableRestart, DISABLED_SoakKilledGroupHundredsOfTimes) { restart_rounds(600, 400000, 11); }

}  // namespace
}  // namespace shmbus
