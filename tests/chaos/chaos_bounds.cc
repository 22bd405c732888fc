// chaos_bounds.cc: phases 3 and 4 of a chaos round (chaos_driver.h): a producer killed
// inside publish_batch holds a consumer back at most one abandon timeout (+ epsilon);
// a consumer killed asleep costs publish at most two futex calls, then none.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <string>
#include <vector>

#include "chaos_driver.h"

namespace shmbus::chaos {

using detail::ChaosStep;

namespace {

// Waits for pid at most timeout_ms; kills it if it is still there.  True if it ended by
// itself (any status).
bool reap_within(pid_t pid, uint64_t timeout_ms, int* status) {
  const uint64_t deadline = steady_ms() + timeout_ms;
  for (;;) {
    const pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0) return false;
    if (steady_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, status, 0);
      return false;
    }
    sleep_ms(5);
  }
}

}  // namespace

// Phase 3: a producer killed inside publish_batch (up to 256 pending claims) delays a
// consumer at most one abandon timeout (+ epsilon), whatever the number of claims.
void stall_phase(const Options& o, const std::string& ns, uint64_t capacity, Rng& rng) {
  Shared* s = g_shared;
  ConsumerOptions co;
  co.group = "stall";
  co.start = StartFrom::latest();
  co.reset = true;
  co.wait = WaitStrategy::kBlock;
  auto cr = Consumer::open(ns, "s", co);
  if (!cr) { violate(s, "stall consumer: open: %s", cr.error().message.c_str()); return; }
  Consumer c = std::move(cr.value());
  // Records of 24 bytes take 64 bytes each.  A batch is claimed in one piece, so the pad
  // before it (at a wrap) can be almost as large as the batch; the marker published after
  // the kill must still fit while the stall group is not reading: a batch takes at most a
  // quarter of the ring, so batch + pad + marker < the ring.  (Half the ring failed once:
  // 128 x 64 B + an 8160-byte pad + the marker on a 16 KiB ring gave the marker kFull.)
  const uint64_t n = std::min<uint64_t>(32 + rng.below(225), capacity / 4 / 64);
  struct Point { ChaosStep step; uint64_t at; };
  const Point points[] = {{ChaosStep::kClaimTaken, 1},
                          {ChaosStep::kBatchBegun, 1 + rng.below(n)},
                          {ChaosStep::kBatchBegun, n},
                          {ChaosStep::kBatchPayloads, 1},
                          {ChaosStep::kBatchCommitted, 1 + rng.below(n - 1)}};
  const Point pt = points[rng.below(std::size(points))];
  const uint64_t first = next_seq_of(ns);
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    install_handler(HandlerConfig{s, rng.next(), 0, 0, pt.at, static_cast<int>(pt.step), false});
    auto pr = Producer::open(ns, "s");
    if (!pr) _exit(2);
    std::vector<std::vector<std::byte>> bufs(n);
    std::vector<Bytes> views;
    for (uint64_t i = 0; i < n; ++i) {
      bufs[i].resize(kMinPayload);
      make_payload(bufs[i].data(), bufs[i].size(), 7777, i);
      views.emplace_back(bufs[i].data(), bufs[i].size());
    }
    (void)pr.value().publish_batch(views);
    _exit(3);  // not killed: the point was not reached
  }
  int st = 0;
  if (!reap_within(pid, 30000, &st) || !WIFSIGNALED(st)) {
    violate(s, "stall producer was not killed at %s #%llu (status %d)", detail::chaos_step_code(pt.step),
            static_cast<unsigned long long>(pt.at), st);
    return;
  }
  const uint64_t killed = steady_ms();
  auto pr = Producer::open(ns, "s");
  if (!pr) { violate(s, "stall marker: open: %s", pr.error().message.c_str()); return; }
  std::vector<std::byte> b(kMinPayload);
  make_payload(b.data(), b.size(), 8888, first);
  const PubResult m = pr.value().publish(Bytes(b.data(), b.size()));
  if (!m.ok()) {
    auto info = stream_info(ns, "s");
    std::string why = info ? explain_held_back(info.value()) : std::string("(no stream info)");
    if (info)
      for (const auto& pi : info->producers)
        why += " [producer pid " + std::to_string(pi.pid) + (pi.alive ? " alive]" : " dead]");
    violate(s, "stall marker: status %d; %s", static_cast<int>(m.status), why.c_str());
    return;
  }
  uint64_t delivered = 0, done = 0;
  const uint64_t gaps0 = c.gaps();
  while (done == 0 && steady_ms() < killed + 60000) {
    Record rec;
    const ReadStatus rs = c.poll(&rec, std::chrono::milliseconds(50));
    if (rs == ReadStatus::kTimeout) continue;
    if (rs != ReadStatus::kOk) { violate(s, "stall consumer: poll status %d", static_cast<int>(rs)); return; }
    if (check_payload(rec.data) == 0) violate(s, "stall consumer: torn seq %llu", static_cast<unsigned long long>(rec.seq));
    ++delivered;
    if (rec.seq == m.seq) done = steady_ms();
  }
  const uint64_t bound = o.abandon_ms + o.epsilon_ms;
  const uint64_t took = done ? done - killed : ~0ULL;
  const uint64_t pending = m.seq - first;  // claimed by the dead producer
  if (took > bound)
    violate(s, "a producer killed at %s #%llu with %llu records claimed held the consumer %llu ms (bound %llu ms)",
            detail::chaos_step_code(pt.step), static_cast<unsigned long long>(pt.at),
            static_cast<unsigned long long>(pending), static_cast<unsigned long long>(took),
            static_cast<unsigned long long>(bound));
  else if (delivered + (c.gaps() - gaps0) != pending + 1)
    violate(s, "stall consumer: %llu delivered + %llu gaps != %llu claimed + 1",
            static_cast<unsigned long long>(delivered), static_cast<unsigned long long>(c.gaps() - gaps0),
            static_cast<unsigned long long>(pending));
  ++g_tot.stalls;
  g_tot.stall_max_ms = std::max(g_tot.stall_max_ms, took);
  g_tot.stall_pending_max = std::max(g_tot.stall_pending_max, pending);
  s->self_kills.fetch_add(0);
}

// Phase 4: a consumer killed while asleep leaves its sleeper bit; the next publish may
// make two futex calls (a wake that finds nobody asleep; it finds the sleeper dead,
// clears the bit and wakes once more, for a holder that took the slot meanwhile:
// clear_dead_sleepers()), then none.
void futex_phase(const std::string& ns, Rng& rng) {
  Shared* s = g_shared;
  s->asleep.store(0);
  const bool durable = rng.below(2) == 0;
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    install_handler(HandlerConfig{s, 1, 0, 0, 0, -1, true});
    ConsumerOptions co;
    if (durable) co.group = "sleeper";
    co.start = StartFrom::latest();
    co.reset = true;
    co.wait = WaitStrategy::kBlock;
    auto cr = Consumer::open(ns, "s", co);
    if (!cr) _exit(2);
    Record rec;
    for (;;) (void)cr.value().poll(&rec, std::chrono::seconds(10));
  }
  const uint64_t deadline = steady_ms() + 30000;
  while (s->asleep.load(std::memory_order_acquire) == 0 && steady_ms() < deadline) sleep_ms(1);
  if (rng.below(2) == 0) sleep_ms(5);  // in its futex wait, or just before it
  kill(pid, SIGKILL);
  s->ext_kills.fetch_add(1, std::memory_order_relaxed);
  waitpid(pid, nullptr, 0);
  if (s->asleep.load() == 0) { violate(s, "futex phase: the consumer never slept"); return; }

  ProducerOptions po;
  po.when_full = FullPolicy::kFail;  // a publish that finds no room returns at once
  po.wait = WaitStrategy::kBusySpin;
  auto pr = Producer::open(ns, "s", po);
  if (!pr) { violate(s, "futex producer: open: %s", pr.error().message.c_str()); return; }
  std::vector<std::byte> b(kMinPayload);
  make_payload(b.data(), b.size(), 6666, 0);
  const uint64_t before = detail::chaos_futex_calls_this_thread();
  (void)pr.value().publish(Bytes(b.data(), b.size()));
  const uint64_t first = detail::chaos_futex_calls_this_thread() - before;
  for (int i = 0; i < 200; ++i) (void)pr.value().publish(Bytes(b.data(), b.size()));
  const uint64_t rest = detail::chaos_futex_calls_this_thread() - before - first;
  if (first > 2 || rest != 0)
    violate(s, "after a %s consumer was killed asleep, publish made %llu futex calls, then %llu in 200 more (want <= 2, then 0)",
            durable ? "durable" : "tailing", static_cast<unsigned long long>(first),
            static_cast<unsigned long long>(rest));
  ++g_tot.futex_checks;
  g_tot.futex_dead_bits += first > 0;
}

}  // namespace shmbus::chaos
