// ring.cc: the shared slow paths of the ring (see ring.h).
#include "ring.h"

#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <thread>

namespace shmbus::detail {

uint64_t steady_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// Field 22 of /proc/PID/stat: start time in clock ticks since boot. 0 if unknown.
static uint64_t process_start_ticks(uint32_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%u/stat", pid);
  FILE* f = fopen(path, "re");
  if (!f) return 0;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char* p = strrchr(buf, ')');  // the command name may hold spaces
  if (!p) return 0;
  int field = 2;
  for (; *p && field < 22; ++p)
    if (*p == ' ') ++field;
  return strtoull(p, nullptr, 10);
}

uint64_t self_owner_word() {
  static const uint64_t word = [] {
    uint32_t pid = static_cast<uint32_t>(getpid());
    return (static_cast<uint64_t>(pid) << 32) | (process_start_ticks(pid) & 0xffffffffULL);
  }();
  // After fork() the child has another pid: recompute then.
  if ((word >> 32) != static_cast<uint32_t>(getpid())) {
    uint32_t pid = static_cast<uint32_t>(getpid());
    return (static_cast<uint64_t>(pid) << 32) | (process_start_ticks(pid) & 0xffffffffULL);
  }
  return word;
}

uint32_t owner_pid(uint64_t owner) noexcept { return static_cast<uint32_t>(owner >> 32); }

bool owner_alive(uint64_t owner) {
  if (owner == 0) return false;
  uint32_t pid = owner_pid(owner);
  if (pid == 0) return false;
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  uint64_t start = process_start_ticks(pid);
  if (start == 0) return false;  // gone between the two checks (or a zombie being reaped)
  // A zombie still has /proc/PID/stat; its state letter is 'Z'.
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%u/stat", pid);
  if (FILE* f = fopen(path, "re")) {
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char* p = strrchr(buf, ')');
    if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X')) return false;
  }
  return (start & 0xffffffffULL) == (owner & 0xffffffffULL);
}

void Backoff::sched_yield_() { sched_yield(); }

RegistryLock::RegistryLock(StreamHeader* h) : h_(h), me_(self_owner_word()) {
  uint64_t spins = 0;
  for (;;) {
    uint64_t cur = 0;
    // acquire: pairs with the release in ~RegistryLock of the previous holder.
    if (h_->registry_lock.compare_exchange_strong(cur, me_, std::memory_order_acquire)) return;
    if (cur == me_) return;  // re-entrant use by this process is a bug; do not deadlock
    if (++spins % 64 == 0 && !owner_alive(cur)) {
      // The holder died inside the lock: registry updates are single stores, so the
      // registry is consistent; break it.
      if (h_->registry_lock.compare_exchange_strong(cur, me_, std::memory_order_acquire)) return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

RegistryLock::~RegistryLock() {
  uint64_t expected = me_;
  h_->registry_lock.compare_exchange_strong(expected, 0, std::memory_order_release);
}

PosSeq read_posseq(const PosSeq* p) noexcept {
  for (;;) {
    uint64_t p1 = __atomic_load_n(&p->pos, __ATOMIC_ACQUIRE);
    uint64_t s = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
    uint64_t p2 = __atomic_load_n(&p->pos, __ATOMIC_ACQUIRE);
    if (p1 == p2) return PosSeq{p1, s};
  }
}

void raise_posseq(PosSeq* p, PosSeq v) noexcept {
  PosSeq cur = read_posseq(p);
  while (cur.pos < v.pos || (cur.pos == v.pos && cur.seq < v.seq)) {
    if (cas16(p, &cur, v)) return;
  }
}

bool abandon_at(const StreamMapping& m, uint64_t pos, uint64_t observed, uint64_t tail) {
  const uint64_t salt = m.salt();
  TagView tv = decode_tag(salt, observed, pos);
  uint64_t size;
  if (tv.lap_ok && tv.state == kPending && record_span(tv.size) <= tail - pos) {
    size = tv.size;
  } else {
    // The producer died before it wrote even its pending tag: the record's extent is
    // unknown.  It ends at the next header that belongs to this lap, at the end of the
    // ring, or at the claim tail.
    uint64_t q = pos + kRecordAlign;
    while (q < tail && (q & m.mask()) != 0) {
      TagView t = decode_tag(salt, m.record_at(q)->tag.load(std::memory_order_acquire), q);
      if (t.lap_ok && t.state >= kPending && t.state <= kGap) break;
      q += kRecordAlign;
    }
    size = q - pos - sizeof(RecordHeader);
  }
  uint64_t gap = make_tag(salt, pos, kGap, size);
  // seq_cst: as a commit; a producer that later tries to commit this record fails its
  // CAS and reports kAbandoned.
  if (!m.record_at(pos)->tag.compare_exchange_strong(observed, gap, std::memory_order_seq_cst))
    return false;
  m.header()->abandoned.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  wake_data(m.header());
  return true;
}

PosSeq advance_head(const StreamMapping& m, Stuck* stuck, uint64_t want) {
  StreamHeader* h = m.header();
  const uint64_t salt = m.salt();
  for (;;) {
    const PosSeq start = read_posseq(&h->head);
    const uint64_t tail = load_pos(&h->claim);
    PosSeq cur = start;
    bool restart = false;
    while (cur.pos < tail && cur.pos < want) {
      RecordHeader* rec = m.record_at(cur.pos);
      uint64_t tag = rec->tag.load(std::memory_order_acquire);
      TagView tv = decode_tag(salt, tag, cur.pos);
      uint64_t span = record_span(tv.size);
      if (tv.lap_ok && (tv.state == kData || tv.state == kPad || tv.state == kGap) &&
          span <= tail - cur.pos && (cur.pos & m.mask()) + span <= m.capacity() &&
          (tv.state != kData || tv.size <= m.max_record())) {
        if (tv.state == kData) cur.seq = rec->seq + 1;
        cur.pos += span;
        continue;
      }
      // Uncommitted (or not yet written) at cur.pos.  If another scanner moved head
      // meanwhile, what we read may belong to a newer lap: start over from its head.
      if (load_pos(&h->head) != start.pos) { restart = true; break; }
      uint64_t now = steady_ns();
      if (stuck->pos != cur.pos) {
        stuck->pos = cur.pos;
        stuck->since_ns = now;
        break;
      }
      if (now - stuck->since_ns < h->abandon_timeout_ns) break;
      if (abandon_at(m, cur.pos, tag, tail)) stuck->pos = ~0ULL;
      // re-read the same position: now a gap (ours or another's), or committed
    }
    if (restart) continue;
    if (cur.pos != start.pos) raise_posseq(&h->head, cur);
    return read_posseq(&h->head);
  }
}

uint32_t consumer_slots_in_use(const StreamHeader* h) {
  // A corrupt value only makes scans longer, never out of bounds.
  return std::min<uint32_t>(h->consumer_hwm.load(std::memory_order_seq_cst), kMaxConsumers);
}

namespace {
struct SlotScan {
  PosSeq durable_min;   // the slowest live durable consumer (or the limit passed in)
  PosSeq furthest;      // the furthest position any live consumer has read to
  PosSeq nearest_past;  // the nearest consumer position at or past `want` (pos ~0: none)
};
SlotScan scan_slots(const StreamMapping& m, PosSeq lim, uint64_t tail, uint64_t want = 0) {
  SlotScan r{lim, PosSeq{0, 0}, PosSeq{~0ULL, 0}};
  const uint32_t n = consumer_slots_in_use(m.header());
  for (uint32_t i = 0; i < n; ++i) {
    ConsumerSlot* s = m.consumer_slot(i);
    // seq_cst: pairs with the seq_cst store of state/evicted by a consumer that then
    // reads floor (Dekker): either it sees our floor or we see its slot.
    if (s->state.load(std::memory_order_seq_cst) != kSlotReady) continue;
    if (s->evicted.load(std::memory_order_seq_cst) != 0) continue;
    // acquire, seq before pos: the owner stores pos then seq, so this seq is never
    // larger than the true one at pos (a lower bound).
    uint64_t seq = s->next_seq.load(std::memory_order_acquire);
    uint64_t pos = s->position.load(std::memory_order_acquire);
    if (pos <= tail && pos > r.furthest.pos) r.furthest = PosSeq{pos, seq};
    if (pos <= tail && pos >= want && pos < r.nearest_past.pos) r.nearest_past = PosSeq{pos, seq};
    if (s->kind.load(std::memory_order_relaxed) == kKindTailing) continue;
    if (pos < r.durable_min.pos) r.durable_min = PosSeq{pos, seq};
  }
  return r;
}
}  // namespace

PosSeq committed_frontier(const StreamMapping& m) {
  StreamHeader* h = m.header();
  const uint64_t salt = m.salt();
  for (int attempt = 0; attempt < 4; ++attempt) {
    const uint64_t tail = load_pos(&h->claim);
    PosSeq cur = read_posseq(&h->head);
    if (cur.pos > tail) break;
    const PosSeq from = scan_slots(m, PosSeq{~0ULL, ~0ULL}, tail).furthest;
    if (from.pos > cur.pos && from.pos <= tail) cur = PosSeq{from.pos, std::max(from.seq, cur.seq)};
    const uint64_t start = cur.pos;
    while (cur.pos < tail && cur.pos - start < m.capacity()) {
      RecordHeader* rec = m.record_at(cur.pos);
      // acquire: pairs with the commit CAS; the seq read below belongs to this record.
      const TagView tv = decode_tag(salt, rec->tag.load(std::memory_order_acquire), cur.pos);
      const uint64_t span = record_span(tv.size);
      if (!tv.lap_ok || tv.state < kData || tv.state > kGap || span > tail - cur.pos ||
          (cur.pos & m.mask()) + span > m.capacity() ||
          (tv.state == kData && tv.size > m.max_record()))
        break;
      if (tv.state == kData) cur.seq = std::max(cur.seq, load_relaxed(&rec->seq) + 1);
      cur.pos += span;
    }
    // acquire fence: the tags read above before the lap check below.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (load_pos(&h->claim) <= start + m.capacity()) return cur;
  }
  return read_posseq(&h->head);
}

PosSeq compute_floor(const StreamMapping& m, Stuck* stuck, uint64_t end) {
  StreamHeader* h = m.header();
  // Free a sixteenth of the ring beyond what this claim needs, so that this runs once
  // per cap/16 bytes published rather than on every claim.  Head (and so floor, where
  // "earliest" starts) moves only that far: older records stay readable.
  const uint64_t want = end > m.capacity() ? end - m.capacity() + m.capacity() / 16 : 0;
  const uint64_t tail = load_pos(&h->claim);
  SlotScan first = scan_slots(m, PosSeq{~0ULL, ~0ULL}, tail, want);
  // Every record below a consumer's position is committed (or a gap): head can jump
  // there without reading the records, which keeps the scan off the hot path whenever
  // someone is reading: to the nearest such position past `want`, else the furthest.
  if (load_pos(&h->head) < want) {
    const PosSeq jump = first.nearest_past.pos != ~0ULL ? first.nearest_past : first.furthest;
    if (jump.pos > load_pos(&h->head)) raise_posseq(&h->head, jump);
  }
  PosSeq f = advance_head(m, stuck, want);
  if (first.durable_min.pos < f.pos) f = first.durable_min;
  raise_posseq(&h->floor, f);
  SlotScan second = scan_slots(m, f, tail);
  return second.durable_min;
}

uint32_t evict_dead_consumers(const StreamMapping& m, uint64_t below) {
  StreamHeader* h = m.header();
  uint32_t evicted = 0;
  const uint64_t now = now_ns();
  const uint32_t n = consumer_slots_in_use(h);
  for (uint32_t i = 0; i < n; ++i) {
    ConsumerSlot* s = m.consumer_slot(i);
    if (s->state.load(std::memory_order_acquire) != kSlotReady ||
        s->kind.load(std::memory_order_relaxed) == kKindTailing ||
        (s->kind.load(std::memory_order_relaxed) == kKindPersister &&
         h->on_persister_dead == 0) ||  // a dead persister holds producers: nothing unstored
        s->evicted.load(std::memory_order_relaxed) != 0 ||
        s->position.load(std::memory_order_acquire) >= below)
      continue;
    uint64_t last = s->last_active_ns.load(std::memory_order_relaxed);
    if (now < last || now - last < h->consumer_dead_timeout_ns) continue;
    uint64_t owner = s->owner.load(std::memory_order_acquire);
    if (owner != 0 && owner_alive(owner)) continue;
    RegistryLock lock(h);
    if (s->owner.load(std::memory_order_acquire) != owner) continue;  // re-attached
    // seq_cst: pairs with the seq_cst load in compute_floor().
    s->evicted.store(1, std::memory_order_seq_cst);
    h->evictions.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    ++evicted;
  }
  return evicted;
}

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout) {
  timespec ts{static_cast<time_t>(timeout.count() / 1000000000),
              static_cast<long>(timeout.count() % 1000000000)};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace shmbus::detail
