// ring.h: operations on the ring that producers and consumers share: process identity
// and liveness, the registry lock, the commit frontier (head), the reclaim floor,
// abandoning claims of dead producers, and the futex wait/wake words.
#pragma once

#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "atomics.h"
#include "layout.h"
#include "mapping.h"
#include "shmbus/detail/steady_clock.h"

namespace shmbus::detail {

// (pid << 32) | low 32 bits of the process start time: a reused pid differs.  A
// diagnostic only (stat's pid column): liveness is the OFD lock on the slot.
uint64_t self_owner_word();
uint32_t owner_pid(uint64_t owner) noexcept;

inline uint64_t producer_slot_off(uint32_t i) { return kProducerSlotsOff + i * sizeof(ProducerSlot); }
inline uint64_t consumer_slot_off(uint32_t i) { return kConsumerSlotsOff + i * sizeof(ConsumerSlot); }
// A participant is alive while it holds the OFD lock on its slot (see StreamMapping).
inline bool producer_alive(const StreamMapping& m, uint32_t i) { return m.held(producer_slot_off(i)); }
inline bool consumer_alive(const StreamMapping& m, uint32_t i) { return m.held(consumer_slot_off(i)); }
uint32_t consumer_index(const StreamMapping& m, const ConsumerSlot* s);

// Registry lock: held for attach/detach/evict only.  An exclusive OFD lock on a byte of
// the object: it excludes every other handle (other threads' handles too), the kernel
// drops it when its holder dies, and the wait for it is bounded (kRegistryWait) and
// gives up on a signal (EINTR), so a forged or stuck holder cannot hang anyone.
inline constexpr std::chrono::milliseconds kRegistryWait{3000};
class RegistryLock {
 public:
  explicit RegistryLock(const StreamMapping& m, std::chrono::milliseconds wait = kRegistryWait);
  ~RegistryLock();
  RegistryLock(const RegistryLock&) = delete;
  RegistryLock& operator=(const RegistryLock&) = delete;
  bool ok() const noexcept { return ok_; }
  // Why it was not taken (for an Error).
  Error error() const;

 private:
  const StreamMapping& m_;
  bool ok_ = false;
  bool interrupted_ = false;
};

// A consistent {pos, seq} snapshot with plain loads (works on read-only mappings):
// both halves only grow and change together, so an unchanged pos brackets the seq.
PosSeq read_posseq(const PosSeq* p) noexcept;
// Raises *p to v if v.pos is larger (CAS16 loop).
void raise_posseq(PosSeq* p, PosSeq v) noexcept;

// Producer slots a reader found dead (by their generation), so that their stale
// `claiming` words stop holding labelled_below() back without a liveness probe (a
// system call) each time.
struct DeadProducers {
  uint32_t gen_plus1[kMaxProducers] = {};  // 0: not known dead
  // True if slot i's current holder is dead: known already (here or in the slot's
  // dead_gen), else probed (its OFD lock).
  bool dead(const StreamMapping& m, uint32_t i);
};

// The position below which every claimed record header carries a tag that its producer
// wrote in this lap (pending, or what followed): min(claim, the `claiming` word of each
// producer between its claim CAS and its last pending tag).  A tag read at a position
// below it after this call is this lap's (or a newer lap's, which the lap check or the
// claim cursor tells); at or above it, the bytes may be stale, left by an older lap, and
// decode as a valid tag by chance (1 in ~2^30), so they must not be trusted.  With
// `dead`, producers found dead are passed over for positions <= `at` (their claim may
// then hold stale bytes for ever: see shm/FORMAT.md); without, never a system call.
uint64_t labelled_below(const StreamMapping& m, uint64_t at = ~0ULL, DeadProducers* dead = nullptr);

// Where a scan of the ring stands.
struct Stuck {
  uint64_t pos = ~0ULL;
  uint64_t since_ns = 0;
  uint32_t dead_label = 0;    // owner label last found dead
  uint64_t dead_end = ~0ULL;  // end of the last gap made for a dead owner
  DeadProducers dead;         // for labelled_below()
  // The `hold` word of the slot this participant registered in (abandon_at() stores it
  // around its gap CAS); without one (nullptr) it abandons nothing.
  std::atomic<uint64_t>* hold = nullptr;
  // Whether the uncommitted record at `pos` (tag `tag`) may be tried at once rather than
  // after the abandon timeout: its owner is already known dead (here or in its slot).
  bool dead_now(const StreamMapping& m, uint64_t pos, uint64_t tag) const;
};

// Moves head over committed records, pads and gaps, up to `want` (or the claim tail); a
// record left uncommitted longer than the stream's abandon timeout becomes a gap if its
// producer is dead (see abandon_at()).  Head
// moves lazily, only as far as producers need room, so that the records behind the
// claim tail stay readable ("earliest") for as long as possible.  Returns head.
PosSeq advance_head(const StreamMapping& m, Stuck* stuck, uint64_t want);

// Turns the uncommitted record at `pos` (its tag last read as `observed`) into a gap if
// and only if the producer that claimed it is dead: the owner label in the header names
// its slot and generation (a slot taken by someone else since means dead); a claim whose
// header was not written yet belongs to a producer between its claim CAS and its pending
// tag, which advertises the position in its slot's `claiming` word.  Returns kDone if
// this call made the gap, kAlive if the owner lives (wait on), kRetry if the tag changed.
// Records the dead owner in *stuck and in its slot, so that its other claims are
// abandoned at once (see Stuck::dead_now()).
enum class Abandon { kDone, kAlive, kRetry };
Abandon abandon_at(const StreamMapping& m, Stuck* stuck, uint64_t pos, uint64_t observed,
                   uint64_t tail);

// The gap log (StreamHeader::gap_log): whoever turns a claim into a gap (abort, a
// batch giving up, an abandoner) records its sequence number first, so that a reader
// lapped over the gap can tell it from a lost record.  log_gap() returns the entry's
// index for unlog_gap(), which clears it again if the gap was not made after all.  A
// gap whose sequences are unknown (a claim abandoned before its producer wrote its
// header) raises gap_unknown_end to its end position instead.
// Thread: any; lock-free; the slow path only (never on publish or poll).
uint32_t log_gap(StreamHeader* h, uint64_t seq) noexcept;
void unlog_gap(StreamHeader* h, uint32_t index, uint64_t seq) noexcept;
void log_unknown_gap(StreamHeader* h, uint64_t end_pos) noexcept;
// For a reader lapped over sequences [from, to) that lay at positions from `from_pos`
// on: *gaps = how many of them the gap log names.  Returns false if that may be short
// of the truth (entries that could lie in the range were overwritten, or a gap of
// unknown sequences lies at or after from_pos).  Bounded: one pass over the log.
bool count_logged_gaps(const StreamHeader* h, uint64_t from, uint64_t to, uint64_t from_pos,
                       uint64_t* gaps) noexcept;

// Where a consumer that wants only new records may start: the first position that is
// not committed (a pending claim, or one whose header is not written yet), or the claim
// tail.  Never above a pending claim, so that a consumer's position always has only
// committed records and gaps below it (producers and head rely on that).  The seq is a
// lower bound on the sequence number found there.  Walks at most one ring from
// max(head, the furthest consumer position); falls back to head if lapped meanwhile.
// Never past `limit` (a claim cursor the caller read before: every record below it has a
// sequence below that cursor's), so that a consumer that asked for the sequences from
// the cursor's on does not start past records committed while it opened (a review: a
// start at a sequence not yet published skipped those, with nothing counted).  A head
// above `limit` is taken as it is: the ring lapped the records below it meanwhile.
PosSeq committed_frontier(const StreamMapping& m, uint64_t limit = ~0ULL);

// The lowest position producers must keep, for a claim that ends at `end`:
// min(head, live durable consumers), raised into floor; then lowered to the lowest
// position a live abandoner holds (ProducerSlot::hold), which floor is not.  Producers
// claim no further than the value returned plus the capacity.
uint64_t compute_floor(const StreamMapping& m, Stuck* stuck, uint64_t end);

// Evicts durable consumers that hold producers back (position below `below`) and whose
// holder is gone past the stream's consumer_dead_timeout.  Returns how many.
uint32_t evict_dead_consumers(const StreamMapping& m, uint64_t below);
// Whether durable group slot i is past the stream's consumer_retention: no process holds
// it and its last activity is older than that (never for the persister's group, nor
// with a retention of 0).  Thread: under the registry lock (the slot is then freed).
bool group_expired(const StreamMapping& m, uint32_t i);

// 1 + the highest consumer slot index ever used (bounded by kMaxConsumers).
uint32_t consumer_slots_in_use(const StreamHeader* h);
// 1 + the highest producer slot index ever taken (bounded by kMaxProducers).
uint32_t producer_slots_in_use(const StreamHeader* h);

// The oldest record still in the ring (floor, or {0,0} before the first lap).
inline PosSeq oldest(const StreamMapping& m) { return read_posseq(&m.header()->floor); }
// The oldest sequence in the ring, given the claim cursor read just before (the floor
// read after it may have passed it).
inline uint64_t oldest_seq(const StreamMapping& m, const PosSeq& claim) {
  return std::min(oldest(m).seq, claim.seq);
}

// The persistence settings in the header, if the stream is persisted.
// (A store_dir that fails store_path_ok() is read as empty: no store named.)
std::optional<PersistSettings> read_persist_settings(const StreamHeader* h);
// Absolute, at most 2048 bytes, no NUL: what set_persist() writes and readers accept.
bool store_path_ok(std::string_view dir) noexcept;
// Whether `s` can be written into a header (an absolute store_dir that fits, a known kind).
Result<void> check_persist_settings(const PersistSettings& s);
// Writes `s` (checked) into the header's persistence fields, not persist_enabled: the
// caller withdraws and releases it around this (set_persist()), or the creator's release
// of `version` publishes it (StreamMapping::create()).
void write_persist_fields(StreamHeader* h, const PersistSettings& s);

// Futex on a 32-bit word in shared memory (process-shared).
void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout);
// Returns how many were woken.
long futex_wake_all(std::atomic<uint32_t>* word);

// Sleepers announce themselves by a bit per registry slot.  A waker that finds bits set
// bumps the futex word and wakes; if nobody was woken, a sleeper may have died in its
// sleep: bits of slots whose holder is gone are cleared, so that later publishes make no
// system call.  kData: the bits are consumer slots; kSpace, kDurable: producer slots.
enum class Sleepers { kData, kSpace, kDurable };
void wake_sleepers(const StreamMapping& m, Sleepers which);
// Clears `bits` (slots judged dead) in the sleepers word of `which`, then moves its futex
// word and wakes every sleeper: one that took such a slot and announced itself between
// the probe and the clear wakes, finds its bit gone and announces itself again.
void clear_dead_sleepers(const StreamMapping& m, Sleepers which, uint64_t bits);
std::atomic<uint64_t>& sleepers_word(StreamHeader* h, Sleepers which);
// Clears `bit` in every mask (a slot being taken over, or left).
void clear_sleeper_bits(StreamHeader* h, uint64_t producer_bit, uint64_t consumer_bit);

// Wakes consumers sleeping on new data, if any.  Call after a seq_cst commit.
inline void wake_data(const StreamMapping& m) {
  // seq_cst: pairs with the seq_cst fetch_or into data_sleepers by a consumer that then
  // re-checks the record tag: either it sees our commit or we see it asleep.
  if (load_seq_cst(m.header()->data_sleepers) != 0)
    wake_sleepers(m, Sleepers::kData);
}
// Wakes producers waiting for room.  Call after a seq_cst store of a consumer position,
// or after a plain one by a process that registered (register_fence_free()).
inline void wake_space(const StreamMapping& m) {
  // seq_cst: pairs with the producer's seq_cst fetch_or into space_sleepers before it
  // re-reads the consumer positions (seq_cst) in compute_floor(); after a plain store,
  // the producer's sleeper_barrier() between the two orders them instead.  (A plain mov
  // on x86 either way: the order comes from the store's locked instruction, or the
  // barrier.)
  if (load_seq_cst(m.header()->space_sleepers) != 0)
    wake_sleepers(m, Sleepers::kSpace);
}

// ---- hot paths without a locked instruction ----
//
// Producers write their records' tags (pending, then data) by release stores: nobody
// else writes the header of a live producer's claim (producer.cc).  The claim itself is
// a CAS16 of the cursor, except for the one producer of a single-producer stream
// (StreamHeader::flags & kFlagSingleProducer), which moves it by one 16-byte store.  A
// durable consumer of such a stream (flag
// kFlagPlainCommits) commits its {position, next_seq} pair by one 16-byte store too: it
// is the pair's only writer while it holds the slot.  Two things replace what the locked
// instructions gave:
//
// - A 16-byte store that readers see whole: an aligned 16-byte SSE store is atomic on
//   every x86-64 that has AVX (Intel SDM vol. 3A 9.1.1, AMD APM vol. 2 7.3.2, both since
//   2021).  Without AVX the CAS16 stays.
// - The wake-up handshakes (wake_data(), wake_space()): the waker's store and its load of
//   the sleepers word are not ordered without a fence (store -> load).  A process that
//   registered with membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)
//   (register_fence_free()) leaves the fence out; a sleeper that may face such a waker,
//   after it announced itself and before it re-checks, runs
//   membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) (sleeper_barrier()): every running thread
//   of a registered process executes a full barrier inside that call, so either the
//   waker's store is visible to the re-check or its later load of the sleepers word sees
//   the bit (the asymmetric form of the same Dekker handshake).  A process whose
//   registration failed keeps the locked instruction (or a full fence).  A sleeper whose
//   barrier call fails sleeps at most 1 ms at a time (a consumer inherited through fork(),
//   which announces no bit, 10 ms): late, never lost.  A data sleeper
//   whose barrier succeeded sleeps an abandon timeout at a time (what no waker reports:
//   a producer killed between its commit and its wake-up), and one whose nap ran out
//   with nothing changed and its bit still set sleeps again without a new barrier: the
//   bit was set all along, so every later store of a waker is followed by a load that
//   sees it (Consumer::Impl::sleep_announced()).
//   Sleepers on data: consumers of every stream (a consumer of an earlier build, which
//   calls it on single-producer streams only, may miss a wake-up on a multi-producer
//   one and then sleeps out its nap, at most 100 ms); sleepers on space: the producer
//   of a single-producer stream (kFlagPlainCommits).
bool avx_store16() noexcept;   // the 16-byte store above is available (CPUID)
inline void store16(PosSeq* p, PosSeq v) noexcept {
  // release on x86 (stores are not reordered with older stores); "memory": nor by the
  // compiler.  Callers check avx_store16() first.
  typedef long long v2di __attribute__((vector_size(16)));
  const v2di x = {static_cast<long long>(v.pos), static_cast<long long>(v.seq)};
  asm volatile("movdqa %1, %0" : "=m"(*p) : "x"(x) : "memory");
}
// Registers this process once (cached per pid): true if its wakers may leave the fence out.
bool register_fence_free() noexcept;
// The sleeper's side: false if the system call failed (the caller must not sleep long).
// A few microseconds (inter-processor interrupts to the CPUs of registered processes).
bool sleeper_barrier() noexcept;

// The process-wide stop check (shmbus::set_stop_check()) says stop.  Slow paths only
// (an indirect call): waits that sleep.
bool stop_check_says_stop() noexcept;

inline void cpu_relax() { __builtin_ia32_pause(); }

// Pauses for about `ticks` of the TSC (a pause per turn, at most 64 turns: bounded should
// the TSC stand still or jump).  A wait that lasts about as long on every CPU, where a
// count of pauses would not (15 ns a pause on one Xeon here, ~40 ns on Skylake-class cores).
inline void pause_ticks(uint64_t ticks) noexcept {
  const uint64_t until = __rdtsc() + ticks;
  for (int i = 0; i < 64 && __rdtsc() < until; ++i) cpu_relax();
}

// PREFETCHW: asks for the line of `p` in the state that a store needs (exclusive), so
// that the request leaves before the stores that need it retire.  A hint: never a fault,
// whatever `p` points at.  Callers check prefetchw_supported() first (CPUID PRFCHW).
bool prefetchw_supported() noexcept;
inline void prefetch_for_write(const void* p) noexcept {
  asm volatile("prefetchw %0" ::"m"(*static_cast<const char*>(p)));
}

// The first and the last N bytes of n (N <= n <= 2N): every byte, in two fixed moves.
template <uint64_t N>
inline void copy_ends(std::byte* dst, const std::byte* src, uint64_t n) noexcept {
  __builtin_memcpy(dst, src, N);
  __builtin_memcpy(dst + n - N, src + n - N, N);
}
// Copies a payload into or out of the ring (the two never overlap).  Up to 64 bytes
// inline, as two overlapping moves of a fixed size: no call and no size dispatch
// (publish_batch of 32 x 64 B on a single-producer stream: 66-67 -> 72-78 M/s, same
// runs).  Larger payloads through memcpy.
inline void copy_payload(std::byte* dst, const std::byte* src, uint64_t n) noexcept {
  if (n > 64) std::memcpy(dst, src, n);
  else if (n >= 32) copy_ends<32>(dst, src, n);
  else if (n >= 16) copy_ends<16>(dst, src, n);
  else if (n >= 8) copy_ends<8>(dst, src, n);
  else if (n >= 4) copy_ends<4>(dst, src, n);
  else
    for (uint64_t i = 0; i < n; ++i) dst[i] = src[i];
}

// Waiting with a strategy: spin, then yield, then (kBlock) sleep on a futex.
class Backoff {
 public:
  explicit Backoff(WaitStrategy s) : s_(s) {}
  // Returns false when it is time to sleep (kBlock only) instead of spinning more.
  bool spin() {
    ++n_;
    if (s_ == WaitStrategy::kBusySpin) { cpu_relax(); return true; }
    if (n_ < 2000) { cpu_relax(); return true; }
    if (s_ == WaitStrategy::kSpinYield || n_ < 2100) { sched_yield_(); return true; }
    return false;
  }
  void reset() { n_ = 0; }
  // True while spin() would still spin (not yet time to sleep).
  bool spinning() const { return s_ != WaitStrategy::kBlock || n_ < 2100; }

 private:
  static void sched_yield_();
  WaitStrategy s_;
  uint32_t n_ = 0;
};

}  // namespace shmbus::detail
