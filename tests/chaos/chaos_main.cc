// shmbus_chaos: the chaos harness for the ring protocol (issue 9).  Every protocol step
// of the shm library built with SHMBUS_CHAOS (shmbus_shm_chaos; steps numbered in
// shm/FORMAT.md) calls a handler that sleeps, yields or spins at random, and in child
// processes kills its own process (kill -9) at a seeded firing; the parent also kills
// child producers and consumers from outside.  Each round:
//   1. chaos: producers (threads and processes; single, batch, claim/commit, abort),
//      durable and tailing consumers (threads and processes; busy, spin-yield and futex
//      waiting), replaying consumers and a persister, killed and restarted; every
//      consumer records each sequence's outcome.  The threads run in one child process
//      of their own: the parent never has a second thread when it forks;
//   2. checks: all consumers agree on each sequence (same payload hash, or a gap); what
//      a producer published (or aborted) is what they saw; no torn payload; a durable
//      view unchanged until the next poll; delivered + gaps + lost == advanced (these
//      three in the consumers, after every poll);
//   3. stall: a producer killed inside publish_batch with up to 256 pending claims holds
//      a consumer back at most one abandon timeout (+ epsilon);
//   4. futex: a consumer killed asleep costs at most one futex call; then publish makes
//      none (the chaos build's futex counter).
// Usage: shmbus_chaos [--rounds N | --minutes M] [--seconds S] [--seed X]
//                     [--abandon-ms MS] [--epsilon-ms MS]
//        shmbus_chaos --repro replay-empty-store|fork-keeps-producer-alive
//                     (chaos_repro.cc: exit 1 while the defect shows)
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "chaos_roles.h"

using namespace shmbus;
using namespace shmbus::chaos;
using detail::ChaosStep;

namespace {

struct Options {
  int rounds = 2;
  double minutes = 0;      // > 0: rounds until this much time passed
  double seconds = 5;      // chaos phase per round
  uint64_t seed = 0;       // 0: from the clock
  uint64_t abandon_ms = 200;
  uint64_t epsilon_ms = 2000;  // a loaded 2-core machine under ASan; the unfixed bug
                               // held 32 claims (the fewest here) for 32 timeouts
};

uint64_t steady_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
void sleep_ms(uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

Shared* g_shared = nullptr;

struct Totals {
  uint64_t rounds = 0, published = 0, seqs_checked = 0, agreements = 0, gaps_agreed = 0;
  uint64_t stalls = 0, stall_max_ms = 0, stall_pending_max = 0, futex_checks = 0;
  uint64_t futex_dead_bits = 0;  // futex checks whose first publish found a dead sleeper
} g_tot;

// A child running one role.
struct Child {
  // kThreads: one process running producer and consumer threads (never killed: the
  // parent stays single-threaded, since a child forked while another thread holds a
  // lock, e.g. ASan's allocator's, would wait for it for ever).
  enum Kind { kConsumer, kProducer, kPersister, kReplayer, kThreads } kind = kConsumer;
  bool producer = false;  // kind == kProducer
  ProducerRole prod;
  ConsumerRole cons;
  std::vector<ProducerRole> thread_producers;
  std::vector<ConsumerRole> thread_consumers;
};

// The threads process: its consumers open at once; its producers start when the parent
// says (every consumer open) and it reports when they have returned.
int run_threads(Shared* s, const Child& ch) {
  std::vector<std::thread> consumers, producers;
  for (const ConsumerRole& cr : ch.thread_consumers) consumers.emplace_back([s, cr] { run_consumer(s, cr); });
  while (s->go_producers.load(std::memory_order_acquire) == 0 &&
         s->stop_producers.load(std::memory_order_acquire) == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (s->stop_producers.load(std::memory_order_acquire) == 0)
    for (const ProducerRole& pr : ch.thread_producers) producers.emplace_back([s, pr] { run_producer(s, pr); });
  for (std::thread& t : producers) t.join();
  s->thread_producers_done.store(1, std::memory_order_release);
  for (std::thread& t : consumers) t.join();
  return 0;
}
std::string g_data_dir;  // the persister's store of this round

pid_t spawn(const Child& ch, const HandlerConfig& hc) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid != 0) return pid;
  install_handler(hc);
  int rc = 0;
  switch (ch.kind) {
    case Child::kProducer: rc = run_producer(g_shared, ch.prod); break;
    case Child::kConsumer: rc = run_consumer(g_shared, ch.cons); break;
    case Child::kPersister: rc = run_persister(g_shared, ch.cons.ns, ch.cons.stream, g_data_dir); break;
    case Child::kReplayer: rc = run_replayer(g_shared, ch.cons, g_data_dir); break;
    case Child::kThreads: rc = run_threads(g_shared, ch); break;
  }
  _exit(rc);
}

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

WaitStrategy random_wait(Rng& rng) {
  const uint64_t w = rng.below(3);
  return w == 0 ? WaitStrategy::kBusySpin : w == 1 ? WaitStrategy::kSpinYield : WaitStrategy::kBlock;
}

uint64_t next_seq_of(const std::string& ns) {
  auto info = stream_info(ns, "s");
  return info ? info.value().next_seq : 0;
}

// Phase 1 and 2: chaos, then the checks of what every consumer saw.
void chaos_phase(const Options& o, const std::string& ns, Rng& rng, uint64_t round_seed) {
  Shared* s = g_shared;
  constexpr uint32_t kThreadConsumers = 4, kProcConsumers = 6, kThreadProducers = 2, kProcProducers = 3;
  constexpr uint32_t kReplayers = 2;
  constexpr uint32_t kLogical = kThreadConsumers + kProcConsumers + kReplayers;
  static_assert(kLogical <= kMaxLogical);
  HandlerConfig parent_hc{s, round_seed, 100, 1000, 0, -1, false};
  install_handler(parent_hc);

  // Consumers first (their start is then exact): logical 0..3 threads (of the threads
  // process), 4..9 processes; even ones durable.
  std::map<pid_t, Child> children;
  // A child dies (2 in 3) at a random firing of any hook, or at an early firing of one
  // step chosen at random, so that over a long run every step sees kills.
  auto child_hc = [&](bool may_die) {
    HandlerConfig hc{s, rng.next(), static_cast<uint32_t>(50 + rng.below(200)),
                     static_cast<uint32_t>(200 + rng.below(2000)), 0, -1, false};
    if (!may_die) return hc;
    switch (rng.below(3)) {
      case 0: break;
      case 1: hc.kill_at = 1 + rng.below(40000); break;
      default:
        hc.kill_step = static_cast<int>(rng.below(static_cast<uint64_t>(ChaosStep::kCount)));
        hc.kill_at = 1 + rng.below(64);
    }
    return hc;
  };
  uint32_t next_pid_id = 0;
  // Reaps children; restarts those killed (a tailing reader at the oldest record, a
  // durable group where it committed, a producer under a new id).
  auto restart_dead = [&](bool may_die, bool producers_too) {
    for (auto it = children.begin(); it != children.end();) {
      int st = 0;
      if (waitpid(it->first, &st, WNOHANG) != it->first) { ++it; continue; }
      Child ch = it->second;
      it = children.erase(it);
      if (WIFEXITED(st)) continue;  // done (or gave up after a violation it recorded)
      if (ch.kind == Child::kThreads) {
        violate(s, "the threads process died of signal %d", WTERMSIG(st));
        s->thread_producers_done.store(1);
        continue;
      }
      if (ch.producer && !producers_too) continue;
      // (A persister killed while it stopped starts again, sees the stop and detaches:
      // left dead, its group would hold producers for good.)
      if (ch.producer) {
        ch.prod.id = next_pid_id++;
        ch.prod.seed = rng.next();
      } else {
        ch.cons.seed = rng.next();
        ch.cons.wait = random_wait(rng);
        // A tailing reader starts again at the oldest record: its sequence there is a
        // lower bound, so its accounting starts at its first record.  A durable group
        // continues from its commit (exact).
        ch.cons.exact_start = ch.cons.durable;
      }
      children[spawn(ch, child_hc(may_die))] = ch;
    }
  };
  // The persister first (killed and restarted like the others; it holds producers while
  // it is away), so that the store holds every record from seq 0.
  {
    Child ch;
    ch.kind = Child::kPersister;
    ch.cons.ns = ns;
    ch.cons.stream = "s";
    children[spawn(ch, child_hc(false))] = ch;
    const uint64_t deadline = steady_ms() + 30000;
    for (bool up = false; !up && steady_ms() < deadline; sleep_ms(5)) {
      auto info = stream_info(ns, "s");
      if (info && info->persist)
        for (const auto& c : info->consumers) up |= c.name == "_persister" && c.alive;
    }
  }
  auto spawn_replayers = [&] {
    for (uint32_t i = kThreadConsumers + kProcConsumers; i < kLogical; ++i) {
      Child ch;
      ch.kind = Child::kReplayer;
      ch.cons = ConsumerRole{ns, "s", i, false, random_wait(rng), rng.next(), false};
      children[spawn(ch, child_hc(true))] = ch;
    }
  };
  Child threads;
  threads.kind = Child::kThreads;
  for (uint32_t i = 0; i < kThreadConsumers + kProcConsumers; ++i) {
    ConsumerRole cr{ns, "s", i, i % 2 == 0, random_wait(rng), rng.next(), true};
    if (i < kThreadConsumers) {
      threads.thread_consumers.push_back(cr);
    } else {
      Child ch;
      ch.cons = cr;
      children[spawn(ch, child_hc(true))] = ch;
    }
  }
  for (uint32_t i = 0; i < kThreadProducers; ++i)
    threads.thread_producers.push_back(ProducerRole{ns, "s", next_pid_id++, rng.next(), random_wait(rng)});
  children[spawn(threads, child_hc(false))] = threads;
  // Replaying consumers open before the first record too: from an empty store (where
  // one once skipped what the persister stored meanwhile; --repro replay-empty-store).
  spawn_replayers();
  const uint64_t open_deadline = steady_ms() + 30000;
  for (uint32_t i = 0; i < kLogical; ++i)
    while (s->opened[i].load(std::memory_order_acquire) == 0 && steady_ms() < open_deadline &&
           s->violations.load() == 0) {
      restart_dead(true, false);  // one killed at a hook while it opened
      sleep_ms(2);
    }

  s->go_producers.store(1, std::memory_order_release);
  for (uint32_t i = 0; i < kProcProducers; ++i) {
    Child ch;
    ch.kind = Child::kProducer;
    ch.producer = true;
    ch.prod = ProducerRole{ns, "s", next_pid_id++, rng.next(), random_wait(rng)};
    children[spawn(ch, child_hc(true))] = ch;
  }

  // Chaos: kill children from outside now and then.
  const uint64_t end = steady_ms() + static_cast<uint64_t>(o.seconds * 1000);
  while (steady_ms() < end && s->violations.load() == 0) {
    sleep_ms(20 + rng.below(180));
    restart_dead(true, true);
    if (!children.empty() && rng.below(3) == 0) {
      auto it = children.begin();
      std::advance(it, static_cast<long>(rng.below(children.size())));
      if (it->second.kind != Child::kThreads && kill(it->first, SIGKILL) == 0)
        s->ext_kills.fetch_add(1, std::memory_order_relaxed);
    }
    if (next_seq_of(ns) >= kSeqLimit) break;
  }

  // Stop the producers; then one last record so that every consumer passes the gaps
  // (if any) at the end.
  s->stop_producers.store(1, std::memory_order_release);
  const uint64_t stop_deadline = steady_ms() + 60000;
  for (;;) {
    restart_dead(false, false);
    bool any = false;
    for (auto& [pid, ch] : children) any |= ch.producer;
    if (!any && s->thread_producers_done.load(std::memory_order_acquire) != 0) break;
    if (steady_ms() > stop_deadline) {
      violate(s, "a producer did not stop within 60 s");
      break;
    }
    sleep_ms(5);
  }
  detail::set_chaos_handler(nullptr);
  {
    auto pr = Producer::open(ns, "s");
    if (!pr) {
      violate(s, "marker producer: open: %s", pr.error().message.c_str());
    } else {
      std::vector<std::byte> b(kMinPayload);
      make_payload(b.data(), b.size(), 9999, 0);
      const PubResult r = pr.value().publish(Bytes(b.data(), b.size()));
      if (!r.ok()) violate(s, "marker publish: status %d", static_cast<int>(r.status));
      else record_outcome(s, s->published, "marker", r.seq, kDelivered | (check_payload(b) & 0xffffffff));
      s->final_seq.store(r.ok() ? r.seq + 1 : next_seq_of(ns), std::memory_order_release);
    }
  }
  s->stop_consumers.store(1, std::memory_order_release);
  const uint64_t drain_deadline = steady_ms() + 90000;
  auto consumers_left = [&] {
    size_t n = 0;
    for (auto& [pid, ch] : children) n += ch.kind != Child::kPersister;
    return n;
  };
  while (consumers_left() != 0) {
    restart_dead(false, false);
    if (steady_ms() > drain_deadline) {
      violate(s, "%zu consumer processes did not finish within 90 s", consumers_left());
      break;
    }
    sleep_ms(5);
  }
  s->stop_persister.store(1, std::memory_order_release);
  while (!children.empty()) {
    restart_dead(false, false);
    if (steady_ms() > drain_deadline) {
      violate(s, "%zu processes did not finish within 90 s", children.size());
      for (auto& [pid, ch] : children) kill(pid, SIGKILL), waitpid(pid, nullptr, 0);
      children.clear();
    }
    sleep_ms(5);
  }

  // Every consumer's outcome of each sequence against every other's and the producers'.
  const uint64_t final_seq = std::min<uint64_t>(s->final_seq.load(), kMaxSeq);
  for (uint64_t q = 0; q < final_seq; ++q) {
    const uint64_t pub = s->published[q].load(std::memory_order_relaxed);
    uint64_t agreed = pub == kLost ? 0 : pub;
    int seen = 0;
    for (uint32_t i = 0; i < kLogical; ++i) {
      const uint64_t v = s->seen[i][q].load(std::memory_order_relaxed);
      if (v == 0 || v == kLost) continue;
      ++seen;
      if (agreed == 0) agreed = v;
      if (v != agreed) {
        violate(s, "seq %llu: consumer %u saw %s %08llx, %s says %s %08llx",
                static_cast<unsigned long long>(q), i, outcome_name(v),
                static_cast<unsigned long long>(v & 0xffffffff), pub != 0 ? "its producer" : "another consumer",
                outcome_name(agreed), static_cast<unsigned long long>(agreed & 0xffffffff));
        break;
      }
    }
    ++g_tot.seqs_checked;
    if (seen > 1) ++g_tot.agreements;
    if (agreed == kGap && seen > 0) ++g_tot.gaps_agreed;
    if ((pub & ~0xffffffffULL) == kDelivered) ++g_tot.published;
  }
}

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
  // Records of 24 bytes take 64 bytes each; a batch may take half the ring.
  const uint64_t n = std::min<uint64_t>(32 + rng.below(225), capacity / 2 / 64);
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
// make one futex call (it finds the sleeper dead and clears the bit), then none.
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
  if (first > 1 || rest != 0)
    violate(s, "after a %s consumer was killed asleep, publish made %llu futex calls, then %llu in 200 more (want <= 1, then 0)",
            durable ? "durable" : "tailing", static_cast<unsigned long long>(first),
            static_cast<unsigned long long>(rest));
  ++g_tot.futex_checks;
  g_tot.futex_dead_bits += first;
}

void reset_shared() {
  Shared* s = g_shared;
  s->stop_producers = 0;
  s->stop_consumers = 0;
  s->final_seq = ~0ULL;
  s->stop_persister = 0;
  s->go_producers = 0;
  s->thread_producers_done = 0;
  for (auto& v : s->opened) v = 0;
  std::memset(static_cast<void*>(s->published), 0, sizeof s->published);
  std::memset(static_cast<void*>(s->seen), 0, sizeof s->seen);
}

// Runs each of the library's one-time initialisations (function-local statics: the TSC
// calibration, the owner word, the SIGBUS handler) once before any thread starts: a
// child forked while another thread is inside one would wait for it for ever.
bool warm_up() {
  const std::string ns = "chaos" + std::to_string(getpid()) + "w";
  StreamOptions so;
  so.capacity = 4096;
  if (auto c = create_stream(ns, "s", so); !c) {
    std::fprintf(stderr, "chaos: create_stream: %s\n", c.error().message.c_str());
    return false;
  }
  {
    auto p = Producer::open(ns, "s");
    ConsumerOptions co;
    co.group = "w";
    auto c = Consumer::open(ns, "s", co);
    if (!p || !c) return false;
    std::vector<std::byte> b(kMinPayload);
    make_payload(b.data(), b.size(), 1, 0);
    Record rec;
    if (!p.value().publish(Bytes(b.data(), b.size())).ok() ||
        c.value().poll(&rec, std::chrono::seconds(5)) != ReadStatus::kOk)
      return false;
    (void)stream_info(ns, "s");
  }
  (void)remove_stream(ns, "s", true);
  return true;
}

bool round(const Options& o, int r, uint64_t seed) {
  Rng rng(mix(seed + static_cast<uint64_t>(r)));
  const std::string ns = "chaos" + std::to_string(getpid()) + "r" + std::to_string(r);
  StreamOptions so;
  so.capacity = rng.below(2) ? 64 << 10 : 16 << 10;  // small: many laps and wraps
  so.max_record = 512;
  so.abandon_timeout = std::chrono::milliseconds(o.abandon_ms);
  so.consumer_dead_timeout = std::chrono::milliseconds(300);
  if (auto c = create_stream(ns, "s", so); !c) {
    std::fprintf(stderr, "chaos: create_stream: %s\n", c.error().message.c_str());
    return false;
  }
  reset_shared();
  char dir[] = "/tmp/shmbus-chaos.XXXXXX";
  if (!mkdtemp(dir)) {
    std::perror("chaos: mkdtemp");
    return false;
  }
  g_data_dir = dir;
  chaos_phase(o, ns, rng, rng.next());
  for (int i = 0; i < 3 && g_shared->violations.load() == 0; ++i) stall_phase(o, ns, so.capacity, rng);
  if (g_shared->violations.load() == 0) futex_phase(ns, rng);
  (void)remove_stream(ns, "s", true);
  std::error_code ec;
  std::filesystem::remove_all(g_data_dir, ec);
  ++g_tot.rounds;
  return g_shared->violations.load() == 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) { std::fprintf(stderr, "shmbus_chaos: %s needs a value\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--rounds") o.rounds = std::atoi(val());
    else if (a == "--minutes") o.minutes = std::atof(val());
    else if (a == "--seconds") o.seconds = std::atof(val());
    else if (a == "--seed") o.seed = std::strtoull(val(), nullptr, 0);
    else if (a == "--abandon-ms") o.abandon_ms = std::strtoull(val(), nullptr, 0);
    else if (a == "--epsilon-ms") o.epsilon_ms = std::strtoull(val(), nullptr, 0);
    else if (a == "--repro" && i + 1 < argc && std::string(argv[i + 1]) == "replay-empty-store")
      return repro_replay_empty_store();
    else if (a == "--repro" && i + 1 < argc && std::string(argv[i + 1]) == "fork-keeps-producer-alive")
      return repro_fork_keeps_producer_alive();
    else {
      std::fprintf(stderr, "usage: shmbus_chaos [--rounds N | --minutes M] [--seconds S] [--seed X] "
                           "[--abandon-ms MS] [--epsilon-ms MS]\n");
      return 2;
    }
  }
  if (!detail::chaos_enabled()) {
    std::fprintf(stderr, "shmbus_chaos: linked against a library without SHMBUS_CHAOS\n");
    return 2;
  }
  if (o.seed == 0) o.seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { std::perror("shmbus_chaos: mmap"); return 1; }
  g_shared = new (mem) Shared();
  char span[48];
  if (o.minutes > 0) snprintf(span, sizeof span, "%.1f minutes", o.minutes);
  else snprintf(span, sizeof span, "%d rounds", o.rounds);
  std::printf("shmbus_chaos: seed %llu, %s, %.1f s of chaos per round, abandon timeout %llu ms (+ %llu ms)\n",
              static_cast<unsigned long long>(o.seed), span,
              o.seconds, static_cast<unsigned long long>(o.abandon_ms),
              static_cast<unsigned long long>(o.epsilon_ms));
  std::fflush(stdout);
  if (!warm_up()) {
    std::fprintf(stderr, "shmbus_chaos: the warm-up stream failed\n");
    return 1;
  }
  const uint64_t start = steady_ms();
  bool ok = true;
  for (int r = 0; ok; ++r) {
    if (o.minutes > 0 ? steady_ms() - start >= static_cast<uint64_t>(o.minutes * 60000) : r >= o.rounds) break;
    ok = round(o, r, o.seed);
  }
  Shared* s = g_shared;
  std::printf("chaos summary: %llu rounds in %.1f s; %llu records published, %llu deliveries checked, "
              "%llu seqs compared (%llu seen by 2+ consumers, %llu agreed gaps), %llu durable views re-checked; replays: %llu records, %llu gaps\n",
              static_cast<unsigned long long>(g_tot.rounds), (steady_ms() - start) / 1000.0,
              static_cast<unsigned long long>(g_tot.published), static_cast<unsigned long long>(s->delivered.load()),
              static_cast<unsigned long long>(g_tot.seqs_checked), static_cast<unsigned long long>(g_tot.agreements),
              static_cast<unsigned long long>(g_tot.gaps_agreed), static_cast<unsigned long long>(s->rechecked.load()),
              static_cast<unsigned long long>(s->replayed.load()), static_cast<unsigned long long>(s->replay_gaps.load()));
  std::printf("chaos summary: %llu hook firings, %llu interleavings (firings perturbed), %llu kills "
              "(%llu at hooks, %llu from outside)\n",
              static_cast<unsigned long long>(s->firings.load()), static_cast<unsigned long long>(s->perturbations.load()),
              static_cast<unsigned long long>(s->self_kills.load() + s->ext_kills.load()),
              static_cast<unsigned long long>(s->self_kills.load()), static_cast<unsigned long long>(s->ext_kills.load()));
  std::printf("chaos summary: kills at hooks by step:");
  for (uint32_t i = 0; i < static_cast<uint32_t>(ChaosStep::kCount); ++i)
    if (uint64_t k = s->kills_at[i].load())
      std::printf(" %s=%llu", detail::chaos_step_code(static_cast<ChaosStep>(i)), static_cast<unsigned long long>(k));
  std::printf("\nchaos summary: steps never reached:");
  int never = 0;
  for (uint32_t i = 0; i < static_cast<uint32_t>(ChaosStep::kCount); ++i)
    if (s->fired_at[i].load() == 0) {
      std::printf(" %s", detail::chaos_step_code(static_cast<ChaosStep>(i)));
      ++never;
    }
  if (never == 0) std::printf(" none (all %u fired)", static_cast<unsigned>(ChaosStep::kCount));
  std::printf("\nchaos summary: %llu batch kills, consumers held at most %llu ms (bound %llu ms, up to %llu pending claims); "
              "%llu futex checks (%llu first publishes cleared a dead sleeper's bit, then 0 calls)\n",
              static_cast<unsigned long long>(g_tot.stalls), static_cast<unsigned long long>(g_tot.stall_max_ms),
              static_cast<unsigned long long>(o.abandon_ms + o.epsilon_ms),
              static_cast<unsigned long long>(g_tot.stall_pending_max), static_cast<unsigned long long>(g_tot.futex_checks),
              static_cast<unsigned long long>(g_tot.futex_dead_bits));
  const uint64_t v = s->violations.load();
  if (v != 0) {
    std::printf("chaos: FAILED, %llu violations; the first: %s (seed %llu)\n", static_cast<unsigned long long>(v),
                s->violation, static_cast<unsigned long long>(o.seed));
    return 1;
  }
  std::printf("chaos: ok\n");
  return 0;
}
