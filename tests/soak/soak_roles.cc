// soak_roles.cc: producers, durable consumers and tailing consumers of the soak (see
// soak_roles.h).  They use the public API only.
#include "soak_roles.h"

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "shmbus/shmbus.h"

namespace shmbus::soak {
namespace {

volatile sig_atomic_t g_stop = 0;
void on_term(int) { g_stop = 1; }
void install_term() {
  struct sigaction sa {};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

uint32_t fnv1a(const std::byte* p, size_t n, uint32_t h = 2166136261u) {
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint32_t>(p[i])) * 16777619u;
  return h;
}

std::string describe(const PayloadHeader& h) {
  return "producer incarnation " + std::to_string(h.incarnation) + " counter " +
         std::to_string(h.counter);
}

}  // namespace

const char* role_name(Role r) {
  switch (r) {
    case Role::kProducer: return "producer";
    case Role::kDurable: return "durable";
    case Role::kTailing: return "tailing";
    case Role::kPersister: return "persister";
    case Role::kReplay: return "replay";
    case Role::kCount: break;
  }
  return "?";
}

void make_payload(std::byte* out, uint32_t len, uint32_t inc, uint64_t counter, uint64_t seq) {
  PayloadHeader h{kPayloadMagic, inc, counter, seq, len, 0};
  for (uint32_t i = sizeof h; i < len; ++i) out[i] = static_cast<std::byte>(counter * 131 + i);
  std::memcpy(out, &h, sizeof h);
  h.sum = fnv1a(out, offsetof(PayloadHeader, sum));
  h.sum = fnv1a(out + sizeof h, len - sizeof h, h.sum);
  std::memcpy(out, &h, sizeof h);
}

bool check_payload(const std::byte* p, size_t len, PayloadHeader* out) {
  if (len < sizeof(PayloadHeader)) return false;
  PayloadHeader h;
  std::memcpy(&h, p, sizeof h);
  if (h.magic != kPayloadMagic || h.len != len) return false;
  uint32_t sum = fnv1a(p, offsetof(PayloadHeader, sum));
  sum = fnv1a(p + sizeof h, len - sizeof h, sum);
  if (sum != h.sum) return false;
  *out = h;
  return true;
}

void report(Incarnation* me, const std::string& what) {
  if (me->errors.fetch_add(1) == 0) {
    std::snprintf(me->error, sizeof me->error, "%s", what.c_str());
  }
}

// ---- producer ----------------------------------------------------------------------
// publish() mostly; every 8th record through claim()/commit() (the payload then carries
// its sequence; a claim is held 50 ms about every 0.5 s); every 32nd round a publish_batch() of 4.
int run_producer(const RoleArgs& a) {
  install_term();
  Incarnation* me = &a.shared->inc[a.inc];
  ProducerOptions po;
  po.full_timeout = std::chrono::seconds(30);  // a killed persister holds producers back
  auto p = Producer::open(a.ns, a.stream, po);
  if (!p) {
    report(me, "producer open: " + p.error().message);
    return 1;
  }
  std::mt19937_64 rng(a.seed);
  std::vector<std::byte> buf[4];
  for (auto& b : buf) b.resize(512);
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t counter = 0;
  auto next_hold = t0;  // about 10% of the time a producer holds a claim
  auto handle = [&](PubStatus st, uint64_t n) {
    if (st == PubStatus::kOk) {
      me->published.fetch_add(n, std::memory_order_relaxed);
    } else if (st == PubStatus::kAbandoned) {
      me->abandoned.fetch_add(n, std::memory_order_relaxed);
    } else {
      report(me, "publish failed with status " + std::to_string(static_cast<int>(st)) +
                     " (kFull after 30 s: the stream stalled)");
    }
  };
  for (uint64_t round = 0; !g_stop; ++round) {
    if (a.rate > 0 && counter % 16 == 0) {
      const auto due = t0 + std::chrono::nanoseconds(static_cast<int64_t>(counter * 1e9 / a.rate));
      if (due > std::chrono::steady_clock::now()) std::this_thread::sleep_until(due);
    }
    const uint32_t len = 32 + static_cast<uint32_t>(rng() % 224);
    if (round % 32 == 31) {
      Bytes parts[4];
      for (int i = 0; i < 4; ++i) {
        make_payload(buf[i].data(), len, a.inc, counter + i, ~0ULL);
        parts[i] = Bytes(buf[i].data(), len);
      }
      counter += 4;
      handle(p->publish_batch(parts).status, 4);
    } else if (round % 8 == 7) {
      PubStatus st;
      Claim c = p->claim(len, 1, &st);
      const uint64_t ctr = counter++;
      if (!c.valid()) {
        handle(st, 1);
        continue;
      }
      make_payload(c.data().data(), len, a.inc, ctr, c.seq());
      // Now and then hold the claim a while (well below the abandon timeout), so that
      // some kills land between claim and commit and leave a claim to abandon.
      if (std::chrono::steady_clock::now() >= next_hold) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        next_hold = std::chrono::steady_clock::now() + std::chrono::milliseconds(rng() % 1000);
      }
      handle(c.commit(), 1);
    } else {
      make_payload(buf[0].data(), len, a.inc, counter++, ~0ULL);
      handle(p->publish(Bytes(buf[0].data(), len)).status, 1);
    }
  }
  return 0;
}

// ---- durable consumer --------------------------------------------------------------
// Processes each sequence exactly once across kills: the group's progress (Group::next)
// is stored in shared memory before the commit, so the only record a kill can bring
// back is the last one processed, as the first record of the next incarnation.
int run_durable(const RoleArgs& a) {
  install_term();
  Incarnation* me = &a.shared->inc[a.inc];
  Group* g = &a.shared->groups[a.group];
  ConsumerOptions co;
  co.group = std::to_string(a.group);
  co.group.insert(0, 1, 'd');  // "d" + to_string() trips a false -Wrestrict in GCC 12
  co.auto_commit = false;
  auto c = Consumer::open(a.ns, a.stream, co);
  if (!c) {
    report(me, "durable open: " + c.error().message);
    return 1;
  }
  recover_group(g);  // the last record of a predecessor killed while recording it
  uint64_t gaps_seen = 0, lost_seen = 0;
  bool first = true;
  while (!g_stop) {
    Record rec;
    const ReadStatus st = c->poll(&rec, std::chrono::milliseconds(100));
    // Gaps count with the record after them (through the journal): a kill before it is
    // recorded lets the next incarnation count them again, once.
    const uint64_t new_gaps = c->gaps() - gaps_seen;
    if (c->lost() != lost_seen) {
      g->lost_reported.fetch_add(c->lost() - lost_seen);
      report(me, "a durable consumer lost " + std::to_string(c->lost() - lost_seen) + " records");
      lost_seen = c->lost();
    }
    if (st == ReadStatus::kTimeout) continue;
    if (st != ReadStatus::kOk) {
      report(me, "durable poll returned status " + std::to_string(static_cast<int>(st)));
      g->gaps_reported.fetch_add(new_gaps);
      break;
    }
    PayloadHeader h;
    if (!check_payload(rec.data.data(), rec.data.size(), &h) ||
        (h.seq != ~0ULL && h.seq != rec.seq)) {
      report(me, "durable: torn or foreign payload at seq " + std::to_string(rec.seq));
      g->gaps_reported.fetch_add(new_gaps);
      gaps_seen = c->gaps();
      c->commit();
      continue;
    }
    const bool was_first = first;
    first = false;
    const std::string v = record_durable(g, rec.seq, h, new_gaps, was_first);
    gaps_seen = c->gaps();
    if (!v.empty()) report(me, v);
    c->commit();  // a kill before it redelivers this record
  }
  c->close();
  return 0;
}

namespace {

// Stores the journal's values into the group's counters; `next` last (then the journal
// is spent: journal_next == next).  Every store is of an absolute value, so applying a
// journal twice (a kill in here, then recover_group()) changes nothing.
void apply_journal(Group* g, const std::function<bool()>& killed) {
  if (killed()) return;
  g->delivered.store(g->journal_delivered.load());
  if (killed()) return;
  g->skipped.store(g->journal_skipped.load());
  if (killed()) return;
  g->gaps_reported.store(g->journal_gaps.load());
  if (killed()) return;
  g->counter_skips.store(g->journal_counter_skips.load());
  const uint64_t inc = g->journal_inc.load();
  if (inc < kMaxIncarnations) {
    if (killed()) return;
    g->counter_next[inc].store(g->journal_counter_next.load());
  }
  if (killed()) return;
  g->next.store(g->journal_next.load());
}

}  // namespace

std::string record_durable(Group* g, uint64_t seq, const PayloadHeader& h, uint64_t new_gaps,
                           bool first, int* steps) {
  const std::function<bool()> killed = [steps] { return steps && (*steps)-- <= 0; };
  std::string v;
  const uint64_t next = g->next.load();
  if (seq < next) {
    // The gaps before it were counted when it was processed.
    if (first && seq + 1 == next) {
      g->redelivered.fetch_add(1);  // processed, then killed before the commit
    } else {
      g->duplicates.fetch_add(1);
      v = "durable: seq " + std::to_string(seq) + " delivered again (next was " +
          std::to_string(next) + ")";
    }
    return v;
  }
  uint64_t counter_skips = g->counter_skips.load();
  uint64_t counter_next = 0;
  if (h.incarnation < kMaxIncarnations) {
    const uint64_t want = g->counter_next[h.incarnation].load();
    if (h.counter > want) {
      counter_skips += h.counter - want;
    } else if (h.counter < want) {
      g->duplicates.fetch_add(1);
      v = "durable: " + describe(h) + " delivered again at seq " + std::to_string(seq);
    }
    counter_next = h.counter + 1;
  }
  // The journal (the group's single holder writes it: Consumer::open() refuses a group
  // that a live process holds, and a killed holder writes nothing more).
  if (killed()) return v;
  g->journal_delivered.store(g->delivered.load() + 1);
  if (killed()) return v;
  g->journal_skipped.store(g->skipped.load() + (seq - next));
  if (killed()) return v;
  g->journal_gaps.store(g->gaps_reported.load() + new_gaps);
  if (killed()) return v;
  g->journal_counter_skips.store(counter_skips);
  if (killed()) return v;
  g->journal_inc.store(h.incarnation < kMaxIncarnations ? h.incarnation : ~0ULL);
  if (killed()) return v;
  g->journal_counter_next.store(counter_next);
  if (killed()) return v;
  g->journal_next.store(seq + 1);  // the commit point: from here on the record counts
  apply_journal(g, killed);
  return v;
}

void recover_group(Group* g, int* steps) {
  if (g->journal_next.load() > g->next.load())
    apply_journal(g, [steps] { return steps && (*steps)-- <= 0; });
}

// ---- tailing consumer --------------------------------------------------------------
// Records what it advanced over; the driver checks delivered + lost + gaps == range.
int run_tailing(const RoleArgs& a) {
  install_term();
  Incarnation* me = &a.shared->inc[a.inc];
  ConsumerOptions co;
  co.start = (a.seed & 1) ? StartFrom::latest() : StartFrom::earliest();
  co.wait = (a.seed & 2) ? WaitStrategy::kSpinYield : WaitStrategy::kBlock;
  auto c = Consumer::open(a.ns, a.stream, co);
  if (!c) {
    report(me, "tailing open: " + c.error().message);
    return 1;
  }
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(a.lifetime_s * 1000));
  std::unordered_map<uint32_t, uint64_t> counters;
  uint64_t last = ~0ULL;
  while (!g_stop && (a.lifetime_s <= 0 || std::chrono::steady_clock::now() < end)) {
    Record rec;
    const ReadStatus st = c->poll(&rec, std::chrono::milliseconds(100));
    if (st == ReadStatus::kTimeout) continue;
    if (st == ReadStatus::kLapped) {
      me->laps.fetch_add(1);
      continue;
    }
    if (st != ReadStatus::kOk) {
      report(me, "tailing poll returned status " + std::to_string(static_cast<int>(st)));
      break;
    }
    PayloadHeader h;
    if (!check_payload(rec.data.data(), rec.data.size(), &h) ||
        (h.seq != ~0ULL && h.seq != rec.seq)) {
      report(me, "tailing: torn or foreign payload at seq " + std::to_string(rec.seq));
    } else {
      auto [it, fresh] = counters.emplace(h.incarnation, h.counter);
      if (!fresh && h.counter <= it->second)
        report(me, "tailing: " + describe(h) + " delivered again at seq " + std::to_string(rec.seq));
      it->second = h.counter;
    }
    if (last != ~0ULL && rec.seq <= last)
      report(me, "tailing: seq " + std::to_string(rec.seq) + " after " + std::to_string(last));
    last = rec.seq;
    // Seqlock: odd while the set changes.
    me->version.fetch_add(1);
    if (me->first_seq.load() == ~0ULL) {
      me->first_seq.store(rec.seq);
      me->base_lost.store(c->lost());
      me->base_gaps.store(c->gaps());
    }
    me->last_seq.store(rec.seq);
    me->delivered.fetch_add(1);
    me->lost.store(c->lost());
    me->gaps.store(c->gaps());
    me->version.fetch_add(1);
  }
  c->close();
  return 0;
}

}  // namespace shmbus::soak
