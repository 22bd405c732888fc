// chaos_roles.cc: producers, consumers and the hook handler of the chaos harness.
#include "chaos_roles.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

namespace shmbus::chaos {
using detail::ChaosStep;
static_assert(static_cast<uint32_t>(ChaosStep::kCount) <= kSteps, "a counter per step");

namespace {

HandlerConfig g_cfg;                    // written before the handler is installed
std::atomic<uint64_t> g_kill_count{0};  // relaxed: only counts firings toward kill_at
std::atomic<uint64_t> g_thread_seeds{0};
thread_local uint64_t t_rng = 0;

uint64_t thread_rand() {
  if (t_rng == 0)
    t_rng = mix(g_cfg.seed ^ (static_cast<uint64_t>(getpid()) << 20) ^
                g_thread_seeds.fetch_add(1, std::memory_order_relaxed) * 0x9e3779b97f4a7c15ULL) | 1;
  t_rng ^= t_rng << 13;
  t_rng ^= t_rng >> 7;
  t_rng ^= t_rng << 17;
  return t_rng;
}

void handler(ChaosStep step) noexcept {
  Shared* s = g_cfg.shared;
  s->firings.fetch_add(1, std::memory_order_relaxed);
  s->fired_at[static_cast<uint32_t>(step) % kSteps].fetch_add(1, std::memory_order_relaxed);
  if (g_cfg.signal_sleep && step == ChaosStep::kDataSleep)
    s->asleep.store(1, std::memory_order_release);
  if (g_cfg.kill_at != 0 && (g_cfg.kill_step < 0 || g_cfg.kill_step == static_cast<int>(step)) &&
      g_kill_count.fetch_add(1, std::memory_order_relaxed) + 1 == g_cfg.kill_at) {
    s->self_kills.fetch_add(1, std::memory_order_relaxed);
    s->kills_at[static_cast<uint32_t>(step) % kSteps].fetch_add(1, std::memory_order_relaxed);
    kill(getpid(), SIGKILL);
  }
  const uint64_t r = thread_rand();
  const uint32_t dice = static_cast<uint32_t>(r % 1000);
  if (dice >= g_cfg.perturb_per_mille) return;
  s->perturbations.fetch_add(1, std::memory_order_relaxed);
  const uint32_t what = static_cast<uint32_t>((r >> 20) % 16);
  if (what < 2 && g_cfg.max_sleep_us > 0) {  // a sleep: another process or thread runs
    const uint64_t us = (r >> 32) % g_cfg.max_sleep_us + 1;
    timespec ts{0, static_cast<long>(us * 1000)};
    nanosleep(&ts, nullptr);
  } else if (what < 9) {
    sched_yield();
  } else {
    const uint32_t n = static_cast<uint32_t>((r >> 32) % 4000);
    for (uint32_t i = 0; i < n; ++i) __builtin_ia32_pause();
  }
}

}  // namespace

void install_handler(const HandlerConfig& cfg) {
  g_cfg = cfg;
  g_kill_count.store(0, std::memory_order_relaxed);
  t_rng = 0;  // a forked child reseeds with its own pid
  detail::set_chaos_handler(&handler);
}

int run_producer(Shared* s, const ProducerRole& role) {
  ProducerOptions po;
  po.wait = role.wait;
  po.full_timeout = std::chrono::seconds(5);
  auto pr = Producer::open(role.ns, role.stream, po);
  if (!pr) {
    violate(s, "producer %u: open: %s", role.id, pr.error().message.c_str());
    return 1;
  }
  Producer p = std::move(pr.value());
  Rng rng(role.seed);
  const size_t max = std::min<uint64_t>(p.max_record(), 400);
  uint64_t index = 0;
  std::vector<std::vector<std::byte>> bufs(32);
  std::vector<Bytes> views;
  auto payload = [&](std::vector<std::byte>& b) {
    b.resize(kMinPayload + rng.below(max - kMinPayload + 1));
    make_payload(b.data(), b.size(), role.id, index++);
    return Bytes(b.data(), b.size());
  };
  auto outcome = [](Bytes b) { return kDelivered | (check_payload(b) & 0xffffffff); };
  auto bad = [&](const char* op, PubStatus st, uint64_t seq) {
    if (st == PubStatus::kFull) return;  // a dead durable consumer holds the ring a while
    violate(s, "producer %u: %s returned status %d (seq %llu)", role.id, op,
            static_cast<int>(st), static_cast<unsigned long long>(seq));
  };
  char who[32];
  snprintf(who, sizeof who, "producer %u", role.id);
  while (s->stop_producers.load(std::memory_order_acquire) == 0) {
    const uint64_t op = rng.below(100);
    uint64_t last = 0;
    if (op < 60) {
      Bytes b = payload(bufs[0]);
      const PubResult r = p.publish(b, 1);
      if (!r.ok()) { bad("publish", r.status, r.seq); continue; }
      record_outcome(s, s->published, who, r.seq, outcome(b));
      last = r.seq;
    } else if (op < 78) {
      const size_t k = 1 + rng.below(32);
      views.clear();
      uint64_t total = 0;  // a batch may take at most half the ring
      for (size_t i = 0; i < k; ++i) {
        views.push_back(payload(bufs[i]));
        total += (views.back().size() + 32 + 31) / 32 * 32;
        if (total > p.capacity() / 2) {
          views.pop_back();
          break;
        }
      }
      if (views.empty()) continue;
      const PubResult r = p.publish_batch(views, 2);
      if (!r.ok()) { bad("publish_batch", r.status, r.seq); continue; }
      for (size_t i = 0; i < views.size(); ++i) record_outcome(s, s->published, who, r.seq + i, outcome(views[i]));
      last = r.seq + views.size() - 1;
    } else {
      const bool commit = op < 92;
      std::vector<std::byte>& b = bufs[0];
      b.resize(kMinPayload + rng.below(max - kMinPayload + 1));
      PubStatus st;
      Claim c = p.claim(b.size(), 3, &st);
      if (!c.valid()) { bad("claim", st, 0); continue; }
      make_payload(c.data().data(), b.size(), role.id, index++);
      const uint64_t out = outcome(Bytes(c.data().data(), b.size()));
      const uint64_t seq = c.seq();
      st = commit ? c.commit() : c.abort();
      if (st != PubStatus::kOk) { bad(commit ? "commit" : "abort", st, seq); continue; }
      record_outcome(s, s->published, who, seq, commit ? out : kGap);
      last = seq;
    }
    if (last >= kSeqLimit) break;
  }
  p.close();
  return 0;
}

int run_consumer(Shared* s, const ConsumerRole& role) {
  ConsumerOptions co;
  if (role.durable) {
    char group[16];
    snprintf(group, sizeof group, "g%u", role.logical);
    co.group = group;
  }
  co.start = StartFrom::earliest();
  co.wait = role.wait;
  char who[64];
  snprintf(who, sizeof who, "%s consumer %u (pid %d)",
           role.durable ? "durable" : role.in_place ? "tailing in-place" : "tailing", role.logical,
           getpid());
  std::optional<Consumer> opened;
  for (int attempt = 0;; ++attempt) {
    auto cr = Consumer::open(role.ns, role.stream, co);
    if (cr) { opened.emplace(std::move(cr.value())); break; }
    // A group whose dead holder is still being let go, or the registry lock held by a
    // participant stalled at a hook: retry a while.
    if (attempt >= 500) {
      violate(s, "%s: open: %s", who, cr.error().message.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Consumer& c = *opened;
  s->opened[role.logical % kMaxLogical].fetch_add(1, std::memory_order_release);
  std::atomic<uint64_t>* table = s->seen[role.logical % kMaxLogical];
  Rng rng(role.seed);
  bool have_base = role.exact_start;
  uint64_t base_next = c.next_seq(), base_gaps = c.gaps(), base_lost = c.lost();
  uint64_t expect = base_next, last_gaps = base_gaps, last_lost = base_lost, delivered = 0;
  std::vector<std::byte> held;
  Bytes view;
  bool holding = false;
  auto account = [&](const char* when) {
    if (!have_base) return true;
    const uint64_t advanced = c.next_seq() - base_next;
    const uint64_t counted = delivered + (c.gaps() - base_gaps) + (c.lost() - base_lost);
    if (advanced == counted) return true;
    violate(s, "%s: after %s: delivered %llu + gaps %llu + lost %llu != advanced %llu", who, when,
            static_cast<unsigned long long>(delivered),
            static_cast<unsigned long long>(c.gaps() - base_gaps),
            static_cast<unsigned long long>(c.lost() - base_lost),
            static_cast<unsigned long long>(advanced));
    return false;
  };
  uint64_t give_up = 0;  // steady ns: the drain's deadline
  for (;;) {
    if (holding) {
      // The view of a durable consumer points into the ring: it must not change before
      // the next poll commits it.
      if (view.size() != held.size() || std::memcmp(view.data(), held.data(), held.size()) != 0)
        violate(s, "%s: a record delivered as valid changed before the next poll", who);
      s->rechecked.fetch_add(1, std::memory_order_relaxed);
      holding = false;
    }
    if (s->stop_consumers.load(std::memory_order_acquire) != 0 &&
        c.next_seq() >= s->final_seq.load(std::memory_order_acquire))
      break;
    if (s->stop_consumers.load(std::memory_order_acquire) != 0) {
      const uint64_t now = static_cast<uint64_t>(
          std::chrono::steady_clock::now().time_since_epoch().count());
      if (give_up == 0) give_up = now + 60'000'000'000ULL;
      if (now > give_up) {
        violate(s, "%s: stuck at seq %llu for 60 s after the producers stopped (final %llu)", who,
                static_cast<unsigned long long>(c.next_seq()),
                static_cast<unsigned long long>(s->final_seq.load()));
        return 1;
      }
    }
    Record rec;
    const ReadStatus st = role.in_place ? c.poll_in_place(&rec, std::chrono::milliseconds(20))
                                        : c.poll(&rec, std::chrono::milliseconds(20));
    if (st == ReadStatus::kTimeout) continue;
    if (st == ReadStatus::kLapped || st == ReadStatus::kEvicted) {
      if (!account(st == ReadStatus::kLapped ? "kLapped" : "kEvicted")) return 1;
      continue;
    }
    if (st != ReadStatus::kOk) {
      violate(s, "%s: poll returned status %d at seq %llu", who, static_cast<int>(st),
              static_cast<unsigned long long>(c.next_seq()));
      return 1;
    }
    // In place: let producers try to write over the record before it is read in the ring.
    if (role.in_place && rng.below(8) == 0) sched_yield();
    const uint64_t h = check_payload(rec.data);
    if (role.in_place) {
      if (!c.validate()) {
        // Lost with a lap: the next read says kLapped from its sequence on (accounted
        // there); nothing of it counts.
        s->refused.fetch_add(1, std::memory_order_relaxed);
        if (!account("a refused validate()")) return 1;
        continue;
      }
    }
    if (h == 0)
      violate(s, "%s: seq %llu delivered torn (%zu bytes)", who,
              static_cast<unsigned long long>(rec.seq), rec.data.size());
    if (!have_base) {
      have_base = true;
      base_next = expect = rec.seq;
      base_gaps = last_gaps = c.gaps();
      base_lost = last_lost = c.lost();
    }
    if (rec.seq < expect) {
      violate(s, "%s: seq %llu delivered after %llu", who, static_cast<unsigned long long>(rec.seq),
              static_cast<unsigned long long>(expect - 1));
      return 1;
    }
    const uint64_t g = c.gaps() - last_gaps, l = c.lost() - last_lost;
    if (g + l != rec.seq - expect) {
      violate(s, "%s: seqs [%llu, %llu) skipped but gaps grew %llu and lost %llu", who,
              static_cast<unsigned long long>(expect), static_cast<unsigned long long>(rec.seq),
              static_cast<unsigned long long>(g), static_cast<unsigned long long>(l));
    } else if (g == 0 || l == 0) {  // (both at once: which is which is unknown)
      for (uint64_t q = expect; q < rec.seq; ++q) record_outcome(s, table, who, q, l == 0 ? kGap : kLost);
    }
    record_outcome(s, table, who, rec.seq, kDelivered | (h & 0xffffffff));
    ++delivered;
    s->delivered.fetch_add(1, std::memory_order_relaxed);
    expect = rec.seq + 1;
    last_gaps = c.gaps();
    last_lost = c.lost();
    if (!account("kOk")) return 1;
    if (role.durable) {
      held.assign(rec.data.begin(), rec.data.end());
      view = rec.data;
      holding = true;
      if (rng.below(8) == 0) sched_yield();  // let producers try to write over it
      // Now and then a slow reader: producers fill the ring and wait for room (W2).
      if (rng.below(1024) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng.below(600)));
    }
  }
  c.close();
  return 0;
}

}  // namespace shmbus::chaos
