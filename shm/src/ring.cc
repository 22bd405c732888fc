// ring.cc: the shared slow paths of the ring (see ring.h).
#include "ring.h"

#include "chaos.h"

#include <cpuid.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

namespace shmbus::detail {

// Field 22 of /proc/PID/stat: start time in clock ticks since boot. 0 if unknown.
// open/read into a stack buffer, not stdio: no allocation, so a child of fork() can call
// it whatever another thread of its parent held at the fork.
static uint64_t process_start_ticks(uint32_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%u/stat", pid);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  size_t n = 0;
  for (int tries = 0; tries < 8 && n < sizeof buf - 1; ++tries) {  // bounded
    const ssize_t r = ::read(fd, buf + n, sizeof buf - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += static_cast<size_t>(r);
  }
  ::close(fd);
  buf[n] = 0;
  const char* p = strrchr(buf, ')');  // the command name may hold spaces
  if (!p) return 0;
  int field = 2;
  for (; *p && field < 22; ++p)
    if (*p == ' ') ++field;
  return strtoull(p, nullptr, 10);
}

uint64_t self_owner_word() {
  // Cached without a guarded static: a child forked while another thread of its parent
  // was inside a static's first initialisation would wait on that guard for ever.
  // relaxed: a racing recomputation stores the same value.
  static std::atomic<uint64_t> cached{0};
  const uint32_t pid = static_cast<uint32_t>(getpid());
  uint64_t word = load_relaxed(cached);
  if (word == 0 || (word >> 32) != pid) {  // first use, or a child of fork()
    word = (static_cast<uint64_t>(pid) << 32) | (process_start_ticks(pid) & 0xffffffffULL);
    store_relaxed(cached, word);
  }
  return word;
}

uint32_t owner_pid(uint64_t owner) noexcept { return static_cast<uint32_t>(owner >> 32); }

uint32_t consumer_index(const StreamMapping& m, const ConsumerSlot* s) {
  return static_cast<uint32_t>(s - m.consumer_slot(0));
}

void Backoff::sched_yield_() { sched_yield(); }

bool avx_store16() noexcept {
  // Not cached in a guarded static (see self_owner_word()): a read of libgcc's CPU
  // model, filled in before main(); called at open only.
  return __builtin_cpu_supports("avx");
}

bool prefetchw_supported() noexcept {
  unsigned a, b, c, d;
  return __get_cpuid(0x80000001u, &a, &b, &c, &d) && (c & bit_PRFCHW) != 0;
}

namespace {
long membarrier_(int cmd) { return syscall(__NR_membarrier, cmd, 0, 0); }
// (pid << 2) | 1 registered, | 2 failed; 0 not tried.  Keyed by pid so that a child of
// fork() registers itself rather than trusting its parent's result.  relaxed: a racing
// first call registers twice, which the kernel accepts.
std::atomic<uint64_t> g_barrier_state{0};
}  // namespace

bool register_fence_free() noexcept {
  const uint64_t pid = static_cast<uint64_t>(getpid());
  uint64_t st = load_relaxed(g_barrier_state);
  if (st == 0 || (st >> 2) != pid) {
    st = (pid << 2) | (membarrier_(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0 ? 1 : 2);
    store_relaxed(g_barrier_state, st);
  }
  return (st & 3) == 1;
}

bool sleeper_barrier() noexcept {
  return membarrier_(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
}

namespace {
std::atomic<StopCheck> g_stop_check{nullptr};
}
}  // namespace shmbus::detail

void shmbus::set_stop_check(StopCheck check) noexcept {
  detail::store_release(detail::g_stop_check, check);  // release: set once
}

namespace shmbus::detail {

bool stop_check_says_stop() noexcept {
  // acquire: pairs with the release in set_stop_check().
  const StopCheck stop = load_acquire(g_stop_check);
  return stop && stop();
}

RegistryLock::RegistryLock(const StreamMapping& m, std::chrono::milliseconds wait) : m_(m) {
  if (m_.read_only()) return;
  const uint64_t deadline = steady_ns() + static_cast<uint64_t>(
                                              std::chrono::nanoseconds(wait).count());
  for (;;) {
    if (m_.try_lock_registry()) {
      ok_ = true;
      // relaxed: a diagnostic for stat; the OFD lock is what excludes.
      store_relaxed(m_.header()->registry_lock, self_owner_word());
      SHMBUS_CHAOS_POINT(kRegLocked);
      return;
    }
    if (steady_ns() >= deadline) return;
    if (stop_check_says_stop()) {
      interrupted_ = true;
      return;
    }
    timespec ts{0, 1'000'000};
    if (nanosleep(&ts, nullptr) != 0 && errno == EINTR) {  // a stop signal: give up
      interrupted_ = true;
      return;
    }
  }
}

RegistryLock::~RegistryLock() {
  if (!ok_) return;
  store_relaxed(m_.header()->registry_lock, 0);  // relaxed: diagnostic
  m_.unlock_registry();
}

Error RegistryLock::error() const {
  if (interrupted_)
    return make_error(Errc::kTimeout, "interrupted while waiting for the registry lock of stream '" +
                                          m_.name() + "'");
  if (m_.read_only())
    return make_error(Errc::kPermission, "stream '" + m_.name() + "' is mapped read-only");
  const uint64_t holder = load_relaxed(m_.header()->registry_lock);
  return make_error(Errc::kTimeout,
                    "the registry lock of stream '" + m_.name() + "' was held for over " +
                        std::to_string(kRegistryWait.count()) + " ms (by pid " +
                        std::to_string(owner_pid(holder)) +
                        " according to the header); is another process stuck on it?");
}

PosSeq read_posseq(const PosSeq* p) noexcept { return read_posseq_bounded(p); }

void raise_posseq(PosSeq* p, PosSeq v) noexcept {
  PosSeq cur = read_posseq(p);
  while (cur.pos < v.pos || (cur.pos == v.pos && cur.seq < v.seq)) {
    if (cas16(p, &cur, v)) return;
  }
}

namespace {
// The owner of the claim at `pos`, from the label in its header (tag pending): dead when
// its slot was taken since (another generation) or nobody holds the slot's lock.
bool label_dead(const StreamMapping& m, uint32_t label) {
  const uint32_t idx = (label & 0xff) - 1;
  if (idx >= kMaxProducers) return true;  // no producer wrote that: nothing to wait for
  ProducerSlot* s = m.producer_slot(idx);
  // relaxed: generation changes under the registry lock only; a stale read errs on
  // "alive" only if the slot was re-taken, when the lock probe below settles it.
  if ((load_relaxed(s->generation) & 0xffffff) != (label >> 8)) return true;
  return !producer_alive(m, idx);
}
// A claim without a header yet: its owner is a producer whose `claiming` word is at or
// below pos (it stores it before its claim CAS and clears it after its pending tags).
bool unlabelled_dead(const StreamMapping& m, uint64_t pos) {
  for (uint32_t i = 0; i < kMaxProducers; ++i) {
    // acquire: pairs with the release store of ~0 after the producer's pending tags.
    const uint64_t c = load_acquire(m.producer_slot(i)->claiming);
    if (c != ~0ULL && c <= pos && producer_alive(m, i)) return false;
  }
  return true;
}
uint32_t label_of(const StreamMapping& m, uint64_t pos, uint64_t tag) {
  const TagView tv = decode_tag(m.salt(), m.lap_shift(), tag, pos);
  if (!tv.lap_ok || tv.state != kPending) return 0;
  return load_relaxed(&m.record_at(pos)->owner);
}
}  // namespace

bool DeadProducers::dead(const StreamMapping& m, uint32_t i) {
  ProducerSlot* s = m.producer_slot(i);
  // relaxed: generation changes under the registry lock only; a stale value only costs a
  // probe (a slot taken again since is held, so never found dead by mistake).
  const uint32_t gen = load_relaxed(s->generation) & 0xffffff;
  if (gen_plus1[i] == gen + 1) return true;
  // relaxed: a hint set by an abandoner that found this generation dead.
  if (gen != 0 && load_relaxed(s->dead_gen) == gen) return true;
  if (producer_alive(m, i)) return false;
  gen_plus1[i] = gen + 1;
  return true;
}

uint64_t labelled_below(const StreamMapping& m, uint64_t at, DeadProducers* dead) {
  // acquire: every claim is a CAS (a read-modify-write) of the cursor, so this load
  // synchronizes with the claim CAS of every record below the value read, and so with
  // the store of `claiming` its producer made before that CAS.
  uint64_t low = load_pos(&m.header()->claim);
  // Only the slots below the producer high-water mark were ever taken; the rest are as
  // created (owner 0, skipped below anyway).  seq_cst load, after the acquire of the
  // claim cursor above: a producer raises the mark before it takes its slot, and so
  // before its claim CAS; a producer whose claim CAS lies below the cursor value read is
  // seen by this load (the acquire synchronizes with that CAS, the claim cursor being
  // changed by read-modify-writes only).  A producer not seen yet has claimed nothing
  // below `low` (its CAS would fail there: the cursor only grows), so skipping it is
  // what the walk would conclude anyway.  Most streams have one or a few producers, so
  // the poll path reads one or a few slots, not kMaxProducers.
  const uint32_t n = producer_slots_in_use(m.header());
  for (uint32_t i = 0; i < n; ++i) {
    ProducerSlot* s = m.producer_slot(i);
    // acquire: pairs with the release store of owner when the slot was taken, which comes
    // before any claim of its producer: a slot found free (never taken: its claiming word
    // is 0 from creation; or closed, after its last pending tag) claims nothing below
    // `low`.  Same cache line as `claiming`.
    if (load_acquire(s->owner) == 0) continue;
    // acquire: pairs with the release stores of `claiming` (~0 after the claim's pending
    // tags; the next claim's start, later still): a producer that no longer advertises a
    // claim at or below `low` has its pending tags seen by tag loads after this one.
    const uint64_t c = load_acquire(s->claiming);
    if (c >= low) continue;  // ~0: not claiming
    if (dead && c <= at && dead->dead(m, i)) continue;
    low = c;
  }
  return low;
}

namespace {
// Raises *word to v (seq_cst: readers order it against the log entries, see log_gap()).
void raise_max(std::atomic<uint64_t>* word, uint64_t v) noexcept {
  uint64_t cur = load_seq_cst(*word);
  while (cur < v && !cas_weak_seq_cst(*word, cur, v)) {
  }
}
}  // namespace

uint32_t log_gap(StreamHeader* h, uint64_t seq) noexcept {
  // seq_cst, all: the entry (and any drop) is ordered before the caller's gap tag CAS,
  // which every reader that passes the gap, or is lapped over it, synchronizes with
  // (through the tag itself, or head, floor and the claim cursor that moved past it).
  const uint32_t i =
      static_cast<uint32_t>(fetch_add_seq_cst(h->gap_log_next, 1) % kGapLog);
  std::atomic<uint64_t>& e = h->gap_log[i];
  uint64_t old = load_seq_cst(e);
  // The entry we overwrite leaves the log: say so first (a reader that then misses it
  // sees gap_log_dropped).  The CAS fails only if another writer changed the entry
  // meanwhile; then its value is the one to drop.
  do {
    if (old != 0) raise_max(&h->gap_log_dropped, old);
  } while (!cas_weak_seq_cst(e, old, seq + 1));
  return i;
}

void unlog_gap(StreamHeader* h, uint32_t index, uint64_t seq) noexcept {
  uint64_t mine = seq + 1;
  // seq_cst: as log_gap(); only if the entry is still ours.
  cas_seq_cst(h->gap_log[index % kGapLog], mine, 0);
}

void log_unknown_gap(StreamHeader* h, uint64_t end_pos) noexcept {
  raise_max(&h->gap_unknown_end, end_pos);
}

bool count_logged_gaps(const StreamHeader* h, uint64_t from, uint64_t to, uint64_t from_pos,
                       uint64_t* gaps) noexcept {
  uint64_t seen[kGapLog];
  uint32_t n = 0;
  StreamHeader* w = const_cast<StreamHeader*>(h);  // atomics are only loaded
  for (uint32_t i = 0; i < kGapLog; ++i) {
    // seq_cst: pairs with log_gap()'s CAS; an entry overwritten before this load had its
    // old value raised into gap_log_dropped first (read below).
    const uint64_t v = load_seq_cst(w->gap_log[i]);
    if (v != 0 && v - 1 >= from && v - 1 < to) seen[n++] = v - 1;
  }
  // A gap is logged again when two make it (an abort racing an abandoner): count once.
  std::sort(seen, seen + n);
  *gaps = static_cast<uint64_t>(std::unique(seen, seen + n) - seen);
  // seq_cst: after the entries (see above).
  const bool dropped = load_seq_cst(w->gap_log_dropped) > from;
  const bool unknown = load_seq_cst(w->gap_unknown_end) > from_pos;
  return !dropped && !unknown;
}

bool Stuck::dead_now(const StreamMapping& m, uint64_t at, uint64_t tag) const {
  const uint32_t label = label_of(m, at, tag);
  if (label == 0) return at == dead_end;  // the unwritten rest of a dead owner's claim
  if (label == dead_label) return true;
  const uint32_t idx = (label & 0xff) - 1;
  // relaxed: a hint; abandon_at() checks liveness itself.
  return idx < kMaxProducers &&
         load_relaxed(m.producer_slot(idx)->dead_gen) == (label >> 8);
}

Abandon abandon_at(const StreamMapping& m, Stuck* stuck, uint64_t pos, uint64_t observed,
                   uint64_t tail) {
  // Without a slot to hold the claim from (below), leave it to those with one; so does a
  // child of fork() with what it inherited (its hold would count as alive as long as its
  // parent lives, also after the child died holding).
  if (stuck->hold == nullptr || m.inherited()) return Abandon::kAlive;
  const uint64_t salt = m.salt();
  RecordHeader* rec = m.record_at(pos);
  // Until the claim at pos is known labelled, the tag observed there may be stale bytes
  // of an older lap (see labelled_below()): neither its state nor its owner label count.
  const bool labelled = pos < labelled_below(m, pos, &stuck->dead);
  const TagView ov = decode_tag(salt, m.lap_shift(), observed, pos);
  if (ov.lap_ok && ov.state >= kData && ov.state <= kGap) {
    // Stale bytes in the header of a claim whose live producer has not written its
    // pending tag yet: wait for it.
    if (!labelled) return Abandon::kAlive;
    const uint64_t span = record_span(ov.size);
    if (span <= tail - pos && (pos & m.mask()) + span <= m.capacity() &&
        (ov.state != kData || ov.size <= m.max_record()))
      return Abandon::kRetry;  // committed: nothing to abandon (read it again)
    // A header that cannot be (damaged): as one never written, below.
  }
  uint32_t label = labelled ? label_of(m, pos, observed) : 0;
  if (label != 0) {
    if (!label_dead(m, label)) return Abandon::kAlive;
  } else {
    if (!unlabelled_dead(m, pos)) return Abandon::kAlive;
    // acquire: a pending tag stored before its producer cleared `claiming` is seen now.
    if (load_acquire(rec->tag) != observed) return Abandon::kRetry;
  }
  TagView tv = decode_tag(salt, m.lap_shift(), observed, pos);
  uint64_t size;
  bool one_record = false;  // the extent is the labelled record's own
  if (tv.lap_ok && tv.state == kPending && record_span(tv.size) <= tail - pos &&
      (pos & m.mask()) + record_span(tv.size) <= m.capacity()) {
    size = tv.size;
    one_record = label != 0;
  } else {
    // The producer died before it wrote even its pending tag: the record's extent is
    // unknown.  It ends at the next header that belongs to this lap, at the end of the
    // ring, at the claim tail, or where another producer's claim starts (every `claiming`
    // value was the claim cursor once, so it is a record boundary at or past the end of
    // the dead claim; a claim there may not have its tag yet, and this gap must not
    // swallow it).  A tag is believed only if it fits (stale bytes pass the lap check
    // once in ~2^30 values, a plausible size too once in ~2^50).
    uint64_t end = tail;
    for (uint32_t i = 0; i < kMaxProducers; ++i) {
      // acquire: as in labelled_below().
      const uint64_t c = load_acquire(m.producer_slot(i)->claiming);
      if (c > pos && c < end && (c & (kRecordAlign - 1)) == 0) end = c;
    }
    uint64_t q = pos + kRecordAlign;
    while (q < end && (q & m.mask()) != 0) {
      TagView t = decode_tag(salt, m.lap_shift(), load_acquire(m.record_at(q)->tag), q);
      const uint64_t span = record_span(t.size);
      if (t.lap_ok && t.state >= kPending && t.state <= kGap && span <= tail - q &&
          (q & m.mask()) + span <= m.capacity() &&
          (t.state > kData || t.size <= m.max_record()))
        break;
      q += kRecordAlign;
    }
    size = q - pos - sizeof(RecordHeader);
  }
  uint64_t gap = make_tag(salt, m.lap_shift(), pos, kGap, size);
  SHMBUS_CHAOS_POINT(kAbandonDead);
  // The gap log first (see log_gap()): a labelled claim is one record whose sequence its
  // header names; the extent of a claim without a header holds sequences nobody knows.
  const uint64_t seq = one_record ? load_relaxed(&rec->seq) : 0;
  uint32_t logged = 0;
  if (one_record) logged = log_gap(m.header(), seq);
  else log_unknown_gap(m.header(), pos + record_span(size));
  // The ring may have moved on a lap since we decided (someone else made the gap and the
  // producers went on); then `observed`, when it was stale bytes of a header never
  // written, could equal 8 payload bytes of a later lap's record at pos (zeros, say), and
  // the CAS below would write our gap into that record after some consumers read it
  // (found by a review: ctest chaos_repro_stale_abandoner).  So: hold pos (producers
  // claim no further than pos + capacity while the hold stands, compute_floor()), then
  // re-read head: the ring cannot lap pos while head is below it, and a limit that lets a
  // claim pass pos + capacity was computed from a head above pos, either before the hold
  // (then this load sees that head) or after it (then that producer saw the hold).
  // seq_cst, both: the store before the load (a full barrier on x86), and in one order
  // with the producers' head reads and their seq_cst loads of holds (shm/FORMAT.md).
  store_seq_cst(*stuck->hold, pos | 1);
  const bool lapped = load_pos_seq_cst(&m.header()->head) > pos;
  if (!lapped) SHMBUS_CHAOS_POINT(kAbandonHeld);
  // seq_cst: as a commit (its producer is dead: nothing writes this header after us but
  // the next lap, which the hold keeps away).
  const bool done = !lapped && cas_seq_cst(rec->tag, observed, gap);
  // seq_cst: after the CAS (whose bytes a producer that sees 0 may then write over), and
  // before the load of space_sleepers: a producer sleeping for room announces itself,
  // then re-loads the holds (seq_cst, compute_floor()); one of the two sees the other.
  store_seq_cst(*stuck->hold, 0);
  if (load_seq_cst(m.header()->space_sleepers) != 0) wake_sleepers(m, Sleepers::kSpace);
  if (!done) {
    // Head passed pos (the claim is committed or another abandoner's gap), or the CAS
    // found someone else's gap (then logged by it too) or, were its owner alive after
    // all, a record: the entry must go then (not for another's gap).
    const TagView now = decode_tag(salt, m.lap_shift(), observed, pos);
    if (one_record && (lapped || !(now.lap_ok && now.state == kGap))) unlog_gap(m.header(), logged, seq);
    return Abandon::kRetry;
  }
  SHMBUS_CHAOS_POINT(kAbandoned);
  if (label != 0) {
    stuck->dead_label = label;
    const uint32_t idx = (label & 0xff) - 1;
    if (idx < kMaxProducers)  // relaxed: a hint for other scanners
      store_relaxed(m.producer_slot(idx)->dead_gen, label >> 8);
  }
  stuck->dead_end = pos + record_span(size);
  stat_add(m.header()->abandoned, 1);  // relaxed: statistics
  wake_data(m);
  return Abandon::kDone;
}

namespace {
// After a scan from head `from` (the tags and sequences it read, then this): were those
// bytes still the records the scan took them for?  A claim overwrites the record at p
// only once it may pass p + capacity, that is once floor, and so head, passed p
// (compute_floor(): floor <= head, claims end at or below floor + capacity).  So while
// head is still `from`, nothing the scan read from `from` on was written over.  Another
// scanner may have raised head meanwhile and a producer reused the bytes: then the
// sequence read could be a payload's (a review: two producers alone made head and floor
// take "BBBBBBBB" + 1 as their sequence, and the stream refused every publish and open
// after it), and raise_posseq() would take it at an equal position.
bool still_ours(StreamHeader* h, uint64_t from) noexcept {
  // acquire fence: the tag and sequence loads of the scan happen before the load below.
  std::atomic_thread_fence(std::memory_order_acquire);
  return load_pos(&h->head) == from;
}
}  // namespace

PosSeq advance_head(const StreamMapping& m, Stuck* stuck, uint64_t want) {
  StreamHeader* h = m.header();
  const uint64_t salt = m.salt();
  for (;;) {
    const PosSeq start = read_posseq(&h->head);
    const uint64_t tail = load_pos(&h->claim);
    // Tags at or above it may be stale bytes (see labelled_below()): not trusted there.
    // Liveness probes only if the scan gets there.
    uint64_t labelled = labelled_below(m);
    bool probed = false;
    PosSeq cur = start;
    bool restart = false;
    while (cur.pos < tail && cur.pos < want) {
      if (cur.pos >= labelled && !probed) {
        labelled = std::max(labelled, labelled_below(m, cur.pos, &stuck->dead));
        probed = true;
      }
      RecordHeader* rec = m.record_at(cur.pos);
      uint64_t tag = load_acquire(rec->tag);
      TagView tv = decode_tag(salt, m.lap_shift(), tag, cur.pos);
      uint64_t span = record_span(tv.size);
      if (cur.pos < labelled && tv.lap_ok && (tv.state == kData || tv.state == kPad || tv.state == kGap) &&
          span <= tail - cur.pos && (cur.pos & m.mask()) + span <= m.capacity() &&
          (tv.state != kData || tv.size <= m.max_record())) {
        if (tv.state == kData) cur.seq = load_relaxed(&rec->seq) + 1;
        cur.pos += span;
        continue;
      }
      // Uncommitted (or not yet written) at cur.pos.  If another scanner moved head
      // meanwhile, what we read may belong to a newer lap: start over from its head.
      if (load_pos(&h->head) != start.pos) { restart = true; break; }
      uint64_t now = steady_ns();
      const bool at_once = stuck->dead_now(m, cur.pos, tag);
      if (stuck->pos != cur.pos && !at_once) {
        stuck->pos = cur.pos;
        stuck->since_ns = now;
        break;
      }
      if (!at_once && now - stuck->since_ns < h->abandon_timeout_ns) break;
      const Abandon a = abandon_at(m, stuck, cur.pos, tag, tail);
      if (a == Abandon::kAlive) {  // a live (slow) producer: ask again after a timeout
        stuck->pos = cur.pos;
        stuck->since_ns = now;
        break;
      }
      stuck->pos = ~0ULL;
      // Changed, or committed after all (labelled since `labelled` was read): a new pass.
      if (a == Abandon::kRetry) {
        if (cur.pos != start.pos && still_ours(h, start.pos))
          raise_posseq(&h->head, cur);  // (all below is committed)
        restart = true;
        break;
      }
      // re-read the same position: now a gap (ours or another's), or committed
    }
    if (restart) continue;
    SHMBUS_CHAOS_POINT(kHeadScanned);
    if (cur.pos != start.pos) {
      if (!still_ours(h, start.pos)) continue;  // what was read may be a newer lap's: again
      raise_posseq(&h->head, cur);
    }
    return read_posseq(&h->head);
  }
}

uint32_t producer_slots_in_use(const StreamHeader* h) {
  // A corrupt value only makes scans longer, never out of bounds.
  return std::min<uint32_t>(load_seq_cst(h->producer_hwm), kMaxProducers);
}

uint32_t consumer_slots_in_use(const StreamHeader* h) {
  // A corrupt value only makes scans longer, never out of bounds.
  return std::min<uint32_t>(load_seq_cst(h->consumer_hwm), kMaxConsumers);
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
    if (load_seq_cst(s->state) != kSlotReady) continue;
    if (load_seq_cst(s->evicted) != 0) continue;
    // acquire, seq before pos: the owner stores pos then seq, so this seq is never
    // larger than the true one at pos (a lower bound).
    // seq_cst position: pairs with the durable consumer's seq_cst position store before
    // it reads space_sleepers (Dekker, see wake_space()).
    uint64_t seq = load_acquire(s->next_seq);
    uint64_t pos = load_seq_cst(s->position);
    if ((pos & (kRecordAlign - 1)) != 0) continue;  // forged: ignore it
    if (pos <= tail && pos > r.furthest.pos) r.furthest = PosSeq{pos, seq};
    if (pos <= tail && pos >= want && pos < r.nearest_past.pos) r.nearest_past = PosSeq{pos, seq};
    if (load_relaxed(s->kind) == kKindTailing) continue;
    if (pos < r.durable_min.pos) r.durable_min = PosSeq{pos, seq};
  }
  return r;
}
}  // namespace

PosSeq committed_frontier(const StreamMapping& m, uint64_t limit) {
  StreamHeader* h = m.header();
  const uint64_t salt = m.salt();
  for (int attempt = 0; attempt < 4; ++attempt) {
    PosSeq cur = read_posseq(&h->head);
    const uint64_t tail = std::min(load_pos(&h->claim), std::max(limit, cur.pos));
    if (cur.pos > tail) break;
    const PosSeq from = scan_slots(m, PosSeq{~0ULL, ~0ULL}, tail).furthest;
    if (from.pos > cur.pos && from.pos <= tail) cur = PosSeq{from.pos, std::max(from.seq, cur.seq)};
    const uint64_t start = cur.pos;
    // Tags at or above it may be stale bytes (see labelled_below()): stop there.
    // Liveness probes only if the walk gets there.
    uint64_t labelled = labelled_below(m);
    bool probed = false;
    while (cur.pos < tail && cur.pos - start < m.capacity()) {
      if (cur.pos >= labelled && !probed) {
        DeadProducers dead;
        labelled = std::max(labelled, labelled_below(m, cur.pos, &dead));
        probed = true;
      }
      if (cur.pos >= labelled) break;
      RecordHeader* rec = m.record_at(cur.pos);
      // acquire: pairs with the commit CAS; the seq read below belongs to this record.
      const TagView tv = decode_tag(salt, m.lap_shift(), load_acquire(rec->tag), cur.pos);
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

namespace {
// `lim` lowered to the lowest position a live abandoner holds (ProducerSlot::hold).
uint64_t lowest_hold(const StreamMapping& m, uint64_t lim) {
  auto check = [&](const std::atomic<uint64_t>& word, bool producer, uint32_t i) {
    // seq_cst: pairs with the abandoner's seq_cst hold store before its head re-read
    // (abandon_at()); this load comes after our head read and floor CAS.
    const uint64_t v = load_seq_cst(word);
    const uint64_t at = v & ~uint64_t{1};
    if ((v & 1) == 0 || at >= lim || !position_ok(at)) return;  // none, higher, or forged
    // A holder that died CASes nothing any more (the slot's next taker clears the word).
    if (producer ? !producer_alive(m, i) : !consumer_alive(m, i)) return;
    lim = at;
  };
  const uint32_t np = producer_slots_in_use(m.header());
  for (uint32_t i = 0; i < np; ++i) check(m.producer_slot(i)->hold, true, i);
  const uint32_t nc = consumer_slots_in_use(m.header());
  for (uint32_t i = 0; i < nc; ++i) check(m.consumer_slot(i)->hold, false, i);
  return lim;
}
}  // namespace

uint64_t compute_floor(const StreamMapping& m, Stuck* stuck, uint64_t end) {
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
  SHMBUS_CHAOS_POINT(kFloorRaised);
  SlotScan second = scan_slots(m, f, tail);
  return lowest_hold(m, second.durable_min.pos);
}

uint32_t evict_dead_consumers(const StreamMapping& m, uint64_t below) {
  StreamHeader* h = m.header();
  uint32_t evicted = 0;
  const uint64_t now = now_ns();
  const uint32_t n = consumer_slots_in_use(h);
  for (uint32_t i = 0; i < n; ++i) {
    ConsumerSlot* s = m.consumer_slot(i);
    if (load_acquire(s->state) != kSlotReady ||
        load_relaxed(s->kind) == kKindTailing ||
        (load_relaxed(s->kind) == kKindPersister &&
         h->on_persister_dead == 0) ||  // a dead persister holds producers: nothing unstored
        load_relaxed(s->evicted) != 0 ||
        load_acquire(s->position) >= below)
      continue;
    uint64_t last = load_relaxed(s->last_active_ns);
    if (now < last || now - last < h->consumer_dead_timeout_ns) continue;
    if (consumer_alive(m, i)) continue;
    uint64_t owner = load_acquire(s->owner);
    SHMBUS_CHAOS_POINT(kEvictFound);
    RegistryLock lock(m);
    if (!lock.ok()) return evicted;
    if (load_acquire(s->owner) != owner || consumer_alive(m, i))
      continue;  // re-attached
    // seq_cst: pairs with the seq_cst load in compute_floor().
    store_seq_cst(s->evicted, 1);
    SHMBUS_CHAOS_POINT(kEvicted);
    stat_add(h->evictions, 1);  // relaxed: statistics
    ++evicted;
  }
  return evicted;
}

bool group_expired(const StreamMapping& m, uint32_t i) {
  const StreamHeader* h = m.header();
  ConsumerSlot* s = m.consumer_slot(i);
  if (h->consumer_retention_ns == 0 || load_relaxed(s->kind) != kKindDurable)
    return false;
  const uint64_t now = now_ns();
  const uint64_t last = load_relaxed(s->last_active_ns);  // relaxed: a time
  if (now < last || now - last < h->consumer_retention_ns) return false;
  return !consumer_alive(m, i);
}

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout) {
  timespec ts{static_cast<time_t>(timeout.count() / 1000000000),
              static_cast<long>(timeout.count() % 1000000000)};
  SHMBUS_CHAOS_FUTEX();
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

long futex_wake_all(std::atomic<uint32_t>* word) {
  SHMBUS_CHAOS_FUTEX();
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr,
                 nullptr, 0);
}

std::atomic<uint64_t>& sleepers_word(StreamHeader* h, Sleepers which) {
  switch (which) {
    case Sleepers::kData: return h->data_sleepers;
    case Sleepers::kSpace: return h->space_sleepers;
    default: return h->durable_sleepers;
  }
}

namespace {
std::atomic<uint32_t>& futex_word(StreamHeader* h, Sleepers which) {
  return which == Sleepers::kData    ? h->data_futex
         : which == Sleepers::kSpace ? h->space_futex
                                     : h->durable_futex;
}
}  // namespace

void wake_sleepers(const StreamMapping& m, Sleepers which) {
  StreamHeader* h = m.header();
  std::atomic<uint32_t>& word = futex_word(h, which);
  fetch_add_seq_cst(word, 1);
  if (futex_wake_all(&word) > 0) return;
  // Nobody was asleep: either a sleeper is between its bit and its futex wait (alive),
  // or it died asleep.  Clear the bits of dead slots.
  uint64_t bits = load_seq_cst(sleepers_word(h, which)), dead = 0;
  while (bits != 0) {
    const uint32_t i = static_cast<uint32_t>(__builtin_ctzll(bits));
    bits &= bits - 1;
    const bool alive = which == Sleepers::kData ? consumer_alive(m, i) : producer_alive(m, i);
    if (!alive) dead |= uint64_t{1} << i;
  }
  if (dead != 0) clear_dead_sleepers(m, which, dead);
}

void clear_dead_sleepers(const StreamMapping& m, Sleepers which, uint64_t bits) {
  StreamHeader* h = m.header();
  // seq_cst: as the sleeper's own clear.
  withdraw_sleeper(sleepers_word(h, which), bits);
  // Between our probe and that clear, a new holder may have taken a slot and announced
  // itself in its bit (a review of e5214fc): it loaded the futex word before it
  // announced, so this move of the word (after the clear, seq_cst) ends its wait, and it
  // finds its bit gone and announces itself again.  (Rare: only when bits were cleared.)
  std::atomic<uint32_t>& word = futex_word(h, which);
  fetch_add_seq_cst(word, 1);
  (void)futex_wake_all(&word);
}

void clear_sleeper_bits(StreamHeader* h, uint64_t producer_bit, uint64_t consumer_bit) {
  // seq_cst: as a sleeper's own clear.
  if (producer_bit) {
    withdraw_sleeper(h->space_sleepers, producer_bit);
    withdraw_sleeper(h->durable_sleepers, producer_bit);
  }
  if (consumer_bit) withdraw_sleeper(h->data_sleepers, consumer_bit);
}

}  // namespace shmbus::detail
