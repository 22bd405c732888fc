// chaos_phase.cc: phases 1 and 2 of a chaos round (chaos_driver.h): producers and
// consumers (threads and processes), replayers and a persister run, killed and
// restarted; then every consumer's outcome of each sequence is checked against the others.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "chaos_driver.h"

namespace shmbus::chaos {

using detail::ChaosStep;

namespace {

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

WaitStrategy random_wait(Rng& rng) {
  const uint64_t w = rng.below(3);
  return w == 0 ? WaitStrategy::kBusySpin : w == 1 ? WaitStrategy::kSpinYield : WaitStrategy::kBlock;
}

}  // namespace

// Phase 1 and 2: chaos, then the checks of what every consumer saw.
void chaos_phase(const Options& o, const std::string& ns, Rng& rng, uint64_t round_seed) {
  Shared* s = g_shared;
  constexpr uint32_t kThreadConsumers = 4, kProcConsumers = 6;
  // A single-producer stream takes one producer at a time: one process, restarted when
  // killed (the restart follows the reaping, so the dead one's slot is free).
  const uint32_t kThreadProducers = o.single_producer ? 0 : 2;
  const uint32_t kProcProducers = o.single_producer ? 1 : 3;
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
    cr.in_place = i % 4 == 3;  // half the tailing readers
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

}  // namespace shmbus::chaos
