// consumer.cc: broadcast consumers.
//
// Every consumer walks the ring from its own position.  A durable consumer's position
// lives in its slot (producers never write past the slowest live one), so it reads in
// place.  A tailing consumer holds producers back for nothing: it copies each payload,
// then checks floor (and, only if floor passed the record, the claim cursor); if a
// producer may have reached the record meanwhile it was lapped, and it resumes at the
// ring's oldest record (half a ring further on when it was lapped again soon after it
// last resumed: see resync()), counting the sequences lost.
#include <emmintrin.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "mapping.h"
#include "chaos.h"
#include "ring.h"

namespace shmbus {
using namespace detail;

// How far ahead of a reader the ring is prefetched (Consumer::Impl::prefetch_ahead()).
constexpr uint64_t kPrefetchAhead = 16 * 1024;
// A durable batch's run (next_durable_run()) moves that window on once per this many
// bytes read, not after every record: for 64 B records one call in ~11, each of ~16
// prefetches, where a call a record issued 1-2 and cost ~20 instructions of the ~95 a
// record took.  The window's far end lags by less than a step (a sixteenth of the window
// on rings of 32 KiB or more).  Records of a step or more move it after each record;
// after one of the window's length (moved page-wise) the lines of the next step are left
// to the hardware's prefetcher.
constexpr uint64_t kPrefetchStep = 1024;
// Up to this many bytes of window, Impl::window_lines() prefetches line by line from
// positions (7 instructions a line, nothing to set up); more, by address (4 a line, ~12
// to set up).  The walk by address for every window cost a 64 B record's poll() 48.1 ->
// 46.3 M/s (bench/README.md, "The reader's prefetch by address").
constexpr uint64_t kPrefetchFewBytes = 256;
// TSC ticks a reader at the frontier pauses before it reads the claim cursor (next()):
// 128 ns at a 2 GHz TSC, about one cache-line hand-off at this VM's slower placements.
// 256, 512 and 1024 measured alike on 64 B rates; 256 is the least a reader waits.
constexpr uint64_t kFrontierPauseTicks = 256;

struct Consumer::Impl {
  std::shared_ptr<StreamMapping> m;
  StreamHeader* h = nullptr;
  uint64_t cap = 0, mask = 0, salt = 0, max_record = 0;
  unsigned shift = 0;  // log2(cap): the lap in record tags
  ConsumerOptions opts;
  ConsumerSlot* slot = nullptr;   // durable, or a writable tailing reader's registry entry
  bool durable = false;
  uint64_t pos = 0;               // next record to look at
  // Software prefetch of the ring ahead of the reader: every record returned moves a
  // window of prefetch_distance bytes past `pos` (one prefetch per cache line, each line
  // once; in a durable batch's run, once per kPrefetchStep bytes and below the labelled
  // bound: prefetch_below()).  A reader that fell a ring behind (the ring filled up: what
  // it reads was written a lap ago, out of the producer's caches) otherwise waits on
  // memory for each line and stays behind for good: shmbus-bench's single-producer 1 KiB
  // rate went from 4.3-4.8 to 14-19 M/s with it, 4 KiB 2.6-2.8 -> 4.6-4.8, a tailing
  // reader's 1 KiB 2.5-3.7 -> 5.7-6.4, multi-producer 64 B 4.3-4.6 -> 10-14 (3
  // alternating runs each, bench/README.md, which also says which other windows were
  // tried).  The price, while multi-producer tags were CASes: a reader that caught up met
  // its producers at the frontier more often (1 KiB 7.1-9.9 -> 5.1-7.0 M/s; bounding the
  // window below the claim cursor lost the gains and not this); with the tags plain
  // stores since, 10.6-11.5.
  // A hint only: never a fault or a store, whatever the bytes hold.
  uint64_t prefetched = 0;        // the ring is prefetched up to here (64-byte grid)
  uint64_t prefetch_distance = 0; // min(kPrefetchAhead, capacity / 2)
  void prefetch_ahead() noexcept { prefetch_ahead(pos); }
  void prefetch_ahead(uint64_t from) noexcept { window_lines<false>(from, 0); }
  // After a record of `span` bytes: prefetch_ahead()'s window, or, for records at least as
  // long as the window, one line per 4 KiB page of it.  At that size a line-by-line
  // prefetch of the window (256 prefetches a record) slowed readers that read the record in
  // place (none at all: 64 KiB +14%), and none at all left readers that copy the record at
  // half their rate in 2 of 4 rounds (likely waiting at each page boundary, which the
  // hardware prefetcher does not cross); a line per page measured better than both.
  // shmbus-bench at 64 KiB, 6 alternating rounds against the line-by-line window at a 60-65
  // ns cache line: durable +13%, single-producer +13%, in place +11%, tailing poll +9%, a
  // receiver that copies +6%, two producers +9%; the SPSC ring and the header ring (code
  // unchanged) 1.00x / 1.02x; smaller records take the path above, unchanged.
  void prefetch_after(uint64_t span) noexcept { prefetch_after(pos, span); }
  void prefetch_after(uint64_t from, uint64_t span) noexcept {
    move_window<false>(from, span, 0);
  }
  // A durable batch's run (next_durable_run()): the window prefetch_after() moves, but
  // no line that starts at or past `limit`, the labelled bound, which the run never reads
  // past either (one that starts below it and holds it, `limit` being 32 mod 64, is
  // taken: the run reads it next).  Past the bound the producers may still be writing: a
  // prefetch takes the line from them, and they take it back for their next store.
  // Against the run with the whole window, 1 KiB batches +44% (multi-producer) / +24%
  // (single), 64 B 1.00x (18 rounds of single repetitions at a 65-110 ns cache line;
  // bench/README.md, "A batch's run prefetches only below the labelled bound"), which
  // gives back what the run had cost 1 KiB batches.  Every line it prefetches is one
  // prefetch_after() would have; `prefetched` moves as there, and stays where it is when
  // it lies ahead within the window (the lines past `limit` are left for next(), which
  // prefetches the whole window).
  void prefetch_below(uint64_t from, uint64_t span, uint64_t limit) noexcept {
    move_window<true>(from, span, limit);
  }
  // The two above in one: kBounded adds the limit (at compile time, so that next()'s
  // window, after every record it returns, pays no compare for it).
  template <bool kBounded>
  void move_window(uint64_t from, uint64_t span, uint64_t limit) noexcept {
    if (span < prefetch_distance) {
      window_lines<kBounded>(from, limit);
      return;
    }
    for (uint64_t off = 0; off < prefetch_distance; off += 4096) {  // (at most 4 lines)
      if constexpr (kBounded)
        if (from + off >= limit) break;
      __builtin_prefetch(m->record_at(from + off));
    }
  }
  // The window line by line: each line from the reader's (or from `prefetched`, when it
  // lies ahead within the window) to prefetch_distance past `from`, below `limit` when
  // kBounded.
  template <bool kBounded>
  void window_lines(uint64_t from, uint64_t limit) noexcept {
    // In offsets from the reader's line, modulo 2^64, so that no position (a forged one
    // near 2^64 too, where `at += 64` wrapped and looped ~2^58 times: found by a review)
    // makes it long: at most prefetch_distance / 64 + 1 lines a call.
    const uint64_t base = from & ~uint64_t{63};
    const uint64_t window = prefetch_distance + (from & 63);
    uint64_t off = prefetched - base;  // (wraps when prefetched lies behind the reader)
    if (off > window) off = 0;         // behind, or far ahead after a rewind: start anew
    uint64_t end = window;
    if constexpr (kBounded) end = limit > base ? std::min(window, limit - base) : 0;
    if (end <= off + kPrefetchFewBytes) {
      // A few lines (a small record's step, per record): each by its position.
      for (; off < end; off += 64) __builtin_prefetch(m->record_at(base + off));
      prefetched = base + off;
      return;
    }
    // More (a larger record's step; a batch's run, every kPrefetchStep bytes): by address,
    // the lines up to the ring's end, then from its start (window < capacity:
    // prefetch_distance <= capacity / 2).  The same lines in the same order as above.
    const uint64_t cap = m->capacity(), at = (base + off) & (cap - 1);  // (64-aligned)
    const uint64_t left = end - off, before_end = std::min(left, cap - at);
    const std::byte* const data = m->data();
    lines(data + at, before_end);
    lines(data, left - before_end);
    prefetched = base + off + ((left + 63) & ~uint64_t{63});
  }
  // A prefetch of each line of [p, p + n), four to a turn (a turn a line took 4
  // instructions, 1.5 lines a 64 B record's share of a durable batch's run: 6 of its
  // ~44; now 2.6), then the rest one by one: none past the end.
  static void lines(const std::byte* p, uint64_t n) noexcept {
    const std::byte* const e = p + n;
    for (; e - p >= 256; p += 256) {
      __builtin_prefetch(p);
      __builtin_prefetch(p + 64);
      __builtin_prefetch(p + 128);
      __builtin_prefetch(p + 192);
    }
    for (; p < e; p += 64) __builtin_prefetch(p);
  }
  uint64_t expected = 0;          // sequence the next data record should carry
  uint64_t done_pos = 0, done_seq = 0;        // after the last record returned
  uint64_t committed_pos = ~0ULL;
  PosSeq committed{0, 0};         // the slot's pair as this consumer last stored it (a
                                  // guess for the CAS16 in store_pair())
  // Durable commits by one 16-byte store and no fence (ring.h): AVX and this process
  // registered with membarrier.  Otherwise CAS16.
  bool fence_free = false;
  uint64_t skip_seq = 0, skip_ts = 0;         // start filters
  // A start at the claim cursor (latest, or a sequence not yet published): skip_seq is
  // then exactly the first sequence this consumer accounts for.
  bool start_at_claim = false;
  uint64_t lost = 0, gaps = 0;
  bool lost_exact = true;         // see Consumer::lost_exact()
  bool after_resync = false;
  uint64_t lap_from_pos = 0;      // done_pos when the lap (or eviction) was found: the
                                  // gaps of unknown sequences that count start there
  // What the loss counted at the next record after a resync is reported as: kLapped (a
  // tailing reader overrun), kEvicted (a durable group evicted and overrun), or
  // kBeforeOldest (a start below the oldest record still in the ring).
  ReadStatus resync_status = ReadStatus::kLapped;
  LossRange last_loss;
  // A durable group's loss not told yet, or kept owed by still_owed(): what the slot's
  // owed_* fields say after this holder's next commit (layout.h).  owed_dirty: they do
  // not yet.  told_kind / told_pos: the last loss reported, for still_owed().
  uint32_t owed_kind = kOwedNone;
  uint64_t owed_seq = 0, owed_pos = 0, owed_counted = 0;
  // Kept owed by still_owed(): the loss's end (the records from there on are the ring's;
  // once one is returned, nothing is owed any more).  Not told yet: ~0.
  uint64_t owed_end = ~0ULL;
  bool owed_dirty = false;
  uint32_t told_kind = kOwedNone;
  uint64_t told_pos = 0;
  void write_owed() noexcept;
  // After a lap, an eviction or a start below the oldest record (after_resync): counts
  // the sequences from the last one accounted for up to `seq` (the next one there is)
  // as lost, less the gaps the ring's gap log names; returns how many were lost.
  [[gnu::cold, gnu::noinline]] uint64_t count_resync_loss(uint64_t seq) noexcept;
  // Ends the resync, `reported` whether a loss is reported now (for still_owed()).
  [[gnu::cold, gnu::noinline]] void end_resync(bool reported) noexcept;
  // At the frontier (nothing claimed at pos) with a loss of a durable group still to
  // report (an eviction, a start below the oldest record): reports it now, up to the
  // claim cursor's sequence, instead of at a record that may never come.  kTimeout when
  // there is nothing to report.
  [[gnu::cold, gnu::noinline]] ReadStatus report_loss_at_frontier() noexcept;
  [[gnu::cold, gnu::noinline]] void settle_owed() noexcept {
    if (owed_kind != kOwedNone && done_seq > owed_end) told();
    if (owed_dirty) write_owed();
  }
  void set_owed(uint32_t kind, uint64_t seq, uint64_t pos, uint64_t counted) noexcept {
    owed_kind = kind;
    owed_seq = seq;
    owed_pos = pos;
    owed_counted = kind == kOwedNone ? 0 : counted;
    owed_end = ~0ULL;
    owed_dirty = true;
  }
  // Producers passed this holder's position (seq, pos): the loss is owed from there, or
  // from an earlier loss still owed, in the slot before the pair moves to the floor, so
  // that a holder that stops before it is told leaves it to the next (not as gaps).
  void owe_eviction(uint64_t seq, uint64_t pos) noexcept {
    if (owed_kind == kOwedNone) set_owed(kOwedEvicted, seq, pos, 0);
    else set_owed(kOwedEvicted, owed_seq, owed_pos, owed_counted);
    write_owed();
  }
  // The loss was returned to the caller: nothing is owed any more (unless still_owed()).
  void told() noexcept {
    if (owed_kind != kOwedNone) set_owed(kOwedNone, 0, 0, 0);
  }
  // false when `expected` is only a lower bound (a start at the oldest record: the ring's
  // floor carries the lowest sequence that may be there): the first record fixes it.
  bool seq_exact = true;
  uint32_t since_activity = 0;
  // Stale bytes (see labelled_below()): a tag is believed at a position below `labelled`
  // (a bound read earlier), or once it differs from the first value read at that position
  // (a write since then: its producer's, who had claimed it).  Otherwise the first look at
  // a position found a committed-looking value that may be an older lap's bytes.
  uint64_t labelled = 0;
  uint64_t first_pos = ~0ULL, first_tag = 0;
  // Since it last waited, this reader found a record committed above `labelled` before
  // its read waited (next(): the frontier pause).
  bool met_frontier = false;
  Stuck stuck;
  // A tailing reader's records passed since its slot's position was last published
  // (stat only: nobody resumes from it), and how many it lets pass between two (two
  // release stores per record: its 1 KiB rate 25.2-25.9 -> 27.0-27.6 M/s, same runs).
  uint32_t tail_unpublished = 0;
  static constexpr uint32_t kTailStatEvery = 64;
  std::vector<std::byte> buf;      // a tailing reader's copies (poll_batch: several)
  bool grow_batch_buf = false;     // the last batch stopped because buf was full
  // An event a poll_batch met after it had taken records: the next read returns it.
  ReadStatus pending = ReadStatus::kOk;
  // A tailing reader's record returned in place by poll_in_place() (every read clears
  // it): where it lies and its sequence, and whether validate() found it overwritten
  // (then every later validate() says so, until the next read).
  bool in_place_armed = false, in_place_failed = false;
  uint64_t in_place_pos = 0, in_place_seq = 0;
  // A tailing reader's copy buffer for batches grows up to this (or one largest record).
  static constexpr uint64_t kBatchCopyBytes = 256 * 1024;
  uint64_t batch_buf_limit() const noexcept {
    return std::max<uint64_t>(max_record, kBatchCopyBytes);
  }

  ReadStatus begin_read() noexcept;
  // One record: poll()'s loop.  A tailing reader copies the payload to buf + *off and
  // advances *off.  `more`: a batch that already took records, which stops (kTimeout) at
  // the first record not committed yet or not fitting in buf.  `batch`: the caller
  // publishes a tailing reader's position once for the batch.
  // `stop_at_start`: commit() after a seek: skip what lies below the start (skip_seq,
  // skip_ts) and stop before the first record to return, which the next read returns
  // (kTimeout; an event met on the way waits in `pending`).  `in_place`: a tailing
  // reader returns the payload where it lies in the ring, uncopied (poll_in_place()).
  ReadStatus next(Record* out, std::chrono::nanoseconds timeout, size_t* off, bool more,
                  bool batch = false, bool stop_at_start = false, bool in_place = false) noexcept;
  // poll_batch()'s durable reader, at a batch's start below the labelled bound or after a
  // record next() returned: out[k..max) with the records from pos on while each is the
  // plain case (below); returns the new k.  Handing out none, it changes nothing.
  size_t next_durable_run(Record* out, size_t k, size_t max) noexcept;
  // A durable reader's start filters not passed yet (a seek not followed by a read): moves
  // to the first record at or after the start, as far as it is committed, so that a commit
  // now commits the start and not the position the seek began from.
  void settle_start() noexcept;

  [[nodiscard]] bool resync() noexcept;
  // Where the last resync resumed (~0: never lapped).  A reader lapped again before it
  // got half a ring past it is slower than the producers (see resync()).
  uint64_t resumed_at = ~0ULL;
  // From `from` (the floor, everything below it committed), the position after the
  // committed records, pads and gaps up to half a ring (at most kSkipRecords of them)
  // ahead, never at or above `tail` or labelled_below(); `from` if floor passed `from`
  // while they were read (a header read may then be a newer lap's, torn).
  [[nodiscard]] uint64_t skip_ahead(uint64_t from, uint64_t tail) const noexcept;
  // Durable: our slot was evicted, or producers passed our position: take the slot back
  // at the oldest record (as open() does) and count the loss when reading resumes.
  [[nodiscard]] bool rejoin() noexcept;
  bool evicted() const noexcept {
    // relaxed: our own slot's flag; a producer that set it no longer reads our position.
    return durable && load_relaxed(slot->evicted) != 0;
  }
  void publish_position() noexcept;
  // The futex sleep of next(), entered announced in data_sleepers (`bit`; 0 for a reader
  // that cannot announce itself or whose barrier failed: one nap) after the barrier and
  // a re-check that found the tag at the position still `tag`.  Returns when the futex
  // word moved from `v` (a wake-up), the tag or the claim cursor (`tail`) moved, the
  // stream broke, our bit was cleared, or at `deadline`, and after one nap when a claim
  // waits at our position; the caller's loop then looks at everything again.
  void sleep_announced(const RecordHeader* r, uint64_t tag, uint32_t v, uint64_t bit,
                       uint64_t tail, uint64_t deadline, uint64_t nap) noexcept;
  bool tail_passed(uint64_t p) const noexcept { return load_pos(&h->claim) > p + cap; }
  // A tailing reader's check after it copied the record at p (and an acquire fence):
  // may a producer have written over it meanwhile?  Every claim ends at or below
  // floor + capacity, where floor is what its producer raised or read before its claim
  // (compute_floor(): the limit a producer claims up to is at most the floor it raised
  // into the header, and floor only grows).  So a copy that saw any byte of a newer lap
  // sees, in the floor read after it, a floor above p: a floor at or below p proves the
  // copy clean.  Floor's line changes once per capacity/16 bytes published; the claim
  // cursor's on every publish, so reading it per record would pull the producers'
  // hottest line to this core each time.  Below floor, the claim cursor decides as before
  // (lapped when a claim passed p + capacity).
  bool copy_overwritten(uint64_t p) const noexcept {
    // acquire: pairs with the seq_cst CAS16 that raised floor (raise_posseq()).
    return load_pos(&h->floor) > p && tail_passed(p);
  }
};

// How long an announced consumer sleeps at a time when nothing wakes it: the stream's
// abandon timeout (default 1 s), read from shared memory, kept within [100 ms, 60 s] (a
// short timeout would wake an idle reader ten times a second or more: a review).  It
// bounds what no waker reports (sleep_announced()) as the abandon timeout bounds a dead
// producer's claims; a longer timeout costs fewer wake-ups of an idle reader and a later
// delivery in those cases.
static uint64_t sleep_cap_ns(const StreamHeader& h) noexcept {
  return std::clamp<uint64_t>(h.abandon_timeout_ns, 100'000'000, 60'000'000'000);
}

// A slot's {position, next_seq} as one 16-byte pair (layout.h): one CAS16 writes both, so
// a holder killed in the middle of a commit never leaves a position with another
// position's sequence (the group's next holder would see a phantom gap).  seq_cst (a
// locked instruction): pairs with the producer's seq_cst fetch_or into space_sleepers
// before it re-reads positions (no lost wake-up, see wake_space()) and with the seq_cst
// floor read that follows in open() and rejoin().  `expected` is what the caller last
// stored (a failed CAS retries with what is there).
static void store_pair(ConsumerSlot* s, PosSeq* expected, PosSeq v) noexcept {
  PosSeq* pair = reinterpret_cast<PosSeq*>(&s->position);
  while (!cas16(pair, expected, v)) {
  }
  *expected = v;
}

// The slot's owed loss as this holder has it (layout.h): set before the pair moves past
// it (rejoin, open), cleared after (publish_position()).
void Consumer::Impl::write_owed() noexcept {
  owed_dirty = false;
  if (!slot || !durable || m->read_only()) return;
  if (owed_kind != kOwedNone) {
    store_relaxed(slot->owed_pos, owed_pos);
    store_relaxed(slot->owed_seq, owed_seq);
    store_relaxed(slot->owed_counted, owed_counted);
  }
  // release: the fields above (and the pair, stored before a clear) happen before it.
  store_release(slot->owed_kind, owed_kind);
}

void Consumer::Impl::publish_position() noexcept {
  if (!slot) return;
  if (durable && fence_free) {
    // The pair's only writer while we hold the slot: one 16-byte store (release on x86),
    // seen whole by readers (ring.h).  A sleeping producer's sleeper_barrier() orders it
    // before our load of space_sleepers in wake_space().
    committed = PosSeq{done_pos, done_seq};
    store16(reinterpret_cast<PosSeq*>(&slot->position), committed);
  } else if (durable) {
    store_pair(slot, &committed, PosSeq{done_pos, done_seq});
  } else {
    // A tailing reader's entry is for stat only (nobody resumes from it): release
    // (position, then next_seq): producers read next_seq first, then position, so the
    // seq they pair with a position is never larger than the true one.
    store_release(slot->position, done_pos);
    store_release(slot->next_seq, done_seq);
  }
  committed_pos = done_pos;
  tail_unpublished = 0;
  // After the pair: a kill between tells the loss twice.  A loss kept owed by still_owed()
  // is told once this holder reads on past it in the ring.
  if (owed_kind != kOwedNone || owed_dirty) [[unlikely]] settle_owed();
  if (++since_activity >= 256) {
    since_activity = 0;
    store_relaxed(slot->last_active_ns, now_ns());  // relaxed: diagnostics
  }
  if (durable) wake_space(*m);
}

// At most this many records are skipped by one resync of a reader that races the
// producers: the walk reads one header per record (one cache line each at worst).
constexpr uint32_t kSkipRecords = 256;

bool Consumer::Impl::resync() noexcept {
  // Lapped: restart at the oldest record still in the ring; find the first committed data
  // record there so that the loss is counted exactly from its sequence.  Claim first, then
  // floor: claim <= floor + capacity must hold for what we read, or the header was forged
  // (and resyncing would loop for ever).
  SHMBUS_CHAOS_POINT(kResync);
  const uint64_t tail = load_pos(&h->claim);
  const PosSeq f = oldest(*m);
  // (floor may have passed the tail we read: producers moved on meanwhile.)
  if (!position_ok(f.pos) || (tail > f.pos && tail - f.pos > cap) || m->broken() ||
      tail >= kMaxPosition)
    return false;
  // Lapped again before it got half a ring past where it last resumed: this reader is
  // slower than the producers.  The oldest record is the next one they overwrite (floor
  // moves a sixteenth of the ring at a time), so resuming there again would copy records
  // while they are being written over, only to lose them too, lap after lap.  It resumes
  // half a ring (at most kSkipRecords records) past the oldest record instead; the
  // records it skips are lost and counted as such, exactly as the lapped ones.
  const bool racing = resumed_at != ~0ULL && pos < resumed_at + cap / 2;
  if (!after_resync) lap_from_pos = done_pos;
  pos = racing ? skip_ahead(f.pos, tail) : f.pos;
  resumed_at = pos;
  after_resync = true;
  return true;
}

uint64_t Consumer::Impl::skip_ahead(uint64_t from, uint64_t tail) const noexcept {
  // Tags at or above labelled_below() may be stale bytes (invariant 8): never past it.
  const uint64_t limit = std::min({from + cap / 2, tail, labelled_below(*m)});
  uint64_t q = from;
  for (uint32_t n = 0; n < kSkipRecords && q < limit; ++n) {
    // acquire: pairs with the producer's release commit store (as in poll()).
    const TagView tv = decode_tag(salt, shift, load_acquire(m->record_at(q)->tag), q);
    if (!tv.lap_ok || tv.state < kData || tv.state > kGap) break;
    const uint64_t span = record_span(tv.size);
    if ((q & mask) + span > cap || span > limit - q || (tv.state == kData && tv.size > max_record))
      break;
    q += span;
  }
  // acquire fence: the header reads above happen before the floor read below.  As for a
  // copy (copy_overwritten()): a floor at or below `from` proves that no producer wrote
  // over any header from `from` on while we read them, so each was this lap's, whole.
  std::atomic_thread_fence(std::memory_order_acquire);
  return load_pos(&h->floor) > from ? from : q;
}

bool Consumer::Impl::rejoin() noexcept {
  RegistryLock lock(*m);
  if (!lock.ok()) return false;
  // As in open(): position, then the slot counts again (seq_cst), then check the floor.
  // Our own position while producers have not passed it (nothing lost), else the floor.
  for (int i = 0; i < 1000; ++i) {
    const PosSeq f = oldest(*m);
    if (!position_ok(f.pos)) return false;
    const bool passed = f.pos > done_pos;
    const PosSeq at = passed ? f : PosSeq{done_pos, done_seq};
    if (passed) owe_eviction(done_seq, done_pos);
    store_pair(slot, &committed, at);
    store_seq_cst(slot->evicted, 0);
    SHMBUS_CHAOS_POINT(kRejoin);
    if (oldest(*m).pos <= at.pos) {
      committed_pos = at.pos;
      if (passed) {
        if (!after_resync) lap_from_pos = done_pos;
        pos = done_pos = at.pos;
        after_resync = true;  // the first record there counts the loss exactly
        resync_status = ReadStatus::kEvicted;
      }
      return true;
    }
  }
  return false;
}

// A start for sequence `target` closer than the floor: the furthest consumer position
// whose record carries a sequence <= target (read from the record itself, so exact),
// so that a consumer starting near the live end need not walk the whole ring.
static PosSeq nearest_start(const StreamMapping& m, PosSeq earliest, PosSeq latest,
                            uint64_t target) {
  PosSeq best = earliest;
  // A header at or above it may hold stale bytes (see labelled_below()); liveness probes
  // only if a candidate lies there.
  uint64_t labelled = labelled_below(m);
  bool probed = false;
  const uint32_t n = consumer_slots_in_use(m.header());
  for (uint32_t i = 0; i < n; ++i) {
    ConsumerSlot* s = m.consumer_slot(i);
    if (load_acquire(s->state) != kSlotReady) continue;
    const uint64_t p = load_acquire(s->position);
    if (p <= best.pos || p >= latest.pos || (p & (kRecordAlign - 1)) != 0) continue;
    if (p >= labelled && !probed) {
      DeadProducers dead;
      labelled = std::max(labelled, labelled_below(m, latest.pos, &dead));
      probed = true;
    }
    if (p >= labelled) continue;
    RecordHeader* r = m.record_at(p);
    const uint64_t tag = load_acquire(r->tag);
    TagView tv = decode_tag(m.salt(), m.lap_shift(), tag, p);
    if (!tv.lap_ok || tv.state != kData) continue;
    const uint64_t seq = load_relaxed(&r->seq);
    // The record must still be this lap's when we are done reading it.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (load_relaxed(r->tag) != tag || load_pos(&m.header()->claim) > p + m.capacity())
      continue;
    if (seq <= target) best = PosSeq{p, seq};
  }
  return best;
}

namespace {
// `keep`: seek() of a tailing reader that keeps its own registry slot (held, ready).
Result<std::unique_ptr<Consumer::Impl>> open_mapped(std::shared_ptr<StreamMapping> m,
                                                    const ConsumerOptions& opts,
                                                    ConsumerSlot* keep = nullptr);
}  // namespace

Consumer::Consumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Consumer::Consumer(Consumer&&) noexcept = default;
Consumer& Consumer::operator=(Consumer&& o) noexcept {
  if (this != &o) {
    close();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
Consumer::~Consumer() { close(); }

Result<Consumer> Consumer::open(std::string_view ns, std::string_view name,
                                const ConsumerOptions& opts) {
  const bool durable = !opts.group.empty();
  if (durable) {
    if (auto r = validate_name("consumer group", opts.group); !r) return r.error();
    // The persister's group: another reader that took it would commit its position, and
    // the records it read would never be stored (a walkthrough: `tail --group _persister`).
    if (opts.group == "_persister" && !opts.persister)
      return make_error(Errc::kInvalidArgument,
                        "consumer group name '_persister' is reserved for the stream's persister "
                        "(shmbus persist): choose another name");
    if (opts.read_only)
      return make_error(Errc::kInvalidArgument,
                        "a durable consumer (--group) needs write access to the stream; "
                        "read-only access allows tailing consumers only");
  }
  auto mr = StreamMapping::open(ns, name, opts.read_only);
  if (!mr) return mr.error();
  mr.value()->populate();
  auto impl = open_mapped(std::move(mr.value()), opts);
  if (!impl) return impl.error();
  return Consumer(std::move(impl.value()));
}

namespace {
// Consumer::open() on a mapping of the stream already made (seek() reuses its own).
Result<std::unique_ptr<Consumer::Impl>> open_mapped(std::shared_ptr<StreamMapping> m,
                                                    const ConsumerOptions& opts,
                                                    ConsumerSlot* keep) {
  using Impl = Consumer::Impl;
  const bool durable = !opts.group.empty();
  const std::string name = m->name();
  auto impl = std::make_unique<Impl>();
  Impl& c = *impl;
  c.m = std::move(m);
  c.h = c.m->header();
  c.cap = c.m->capacity();
  c.prefetch_distance = std::min(kPrefetchAhead, c.cap / 2);
  c.mask = c.m->mask();
  c.salt = c.m->salt();
  c.shift = c.m->lap_shift();
  c.max_record = c.m->max_record();
  c.opts = opts;
  c.durable = durable;
  c.fence_free = durable && c.m->plain_commits() && avx_store16() && register_fence_free();

  // Where to start.
  uint64_t evicted_owed = ~0ULL;
  const PosSeq earliest = oldest(*c.m);
  const PosSeq latest = read_posseq(&c.h->claim);
  PosSeq start = earliest;
  bool found_exact = false;
  bool passed = false;  // producers passed the start while this open registered
  // A start (StartFrom::seq) below the oldest record in the ring: when the open looked,
  // or after producers passed it while the open registered (then `start` is the floor).
  // A start at the claim cursor (`latest`) passed so is the same: the records from the
  // cursor's sequence (skip_seq) on were this reader's (a tailing reader read on from the
  // floor with no report: found by a review, 2026-12-06; chaos repro latest-start-passed).
  auto start_below_oldest = [&] {
    return (opts.start.kind == StartFrom::Kind::kSeq && !found_exact &&
            ((opts.start.value < earliest.seq && opts.start.value < latest.seq) ||
             (passed && opts.start.value < start.seq))) ||
           (opts.start.kind == StartFrom::Kind::kLatest && !found_exact && passed &&
            c.skip_seq < start.seq);
  };
  switch (opts.start.kind) {
    // Never above a pending claim (see committed_frontier()): the records claimed before
    // the start that commit later are skipped by sequence.
    // Nor above `latest`: records committed while this opens, numbered from latest.seq
    // on, are this consumer's (they were skipped, uncounted: a review).
    case StartFrom::Kind::kLatest:
      start = committed_frontier(*c.m, latest.pos);
      c.skip_seq = latest.seq;
      c.start_at_claim = true;
      break;
    case StartFrom::Kind::kSeq:
      if (opts.start.value >= latest.seq) start = committed_frontier(*c.m, latest.pos), c.start_at_claim = true;
      else start = nearest_start(*c.m, earliest, latest, opts.start.value);
      c.skip_seq = opts.start.value;
      break;
    case StartFrom::Kind::kTime: c.skip_ts = opts.start.value; break;
    default: break;
  }

  if (!c.m->read_only()) {
    const uint64_t me = self_owner_word();
    // A tailing reader's seek() keeps its slot: no registry lock (its system calls were
    // most of a seek's ~50 us here), and no moment at which the slot is free.  Only the
    // position below is written again.
    std::optional<RegistryLock> lock;
    if (!keep) {
      lock.emplace(*c.m);
      if (!lock->ok()) return lock->error();
    }
    ConsumerSlot* found = nullptr;
    ConsumerSlot* free_slot = nullptr;
    for (uint32_t i = 0; i < (keep ? 0 : kMaxConsumers); ++i) {
      ConsumerSlot* s = c.m->consumer_slot(i);
      uint32_t st = load_acquire(s->state);  // (reassigned when reaped)
      const uint32_t kind = load_relaxed(s->kind);
      if (st == kSlotReady && kind == kKindDurable && group_expired(*c.m, i)) {
        // Its holder has been gone longer than the stream's retention: forgotten (and
        // what it owed with it: a slot taken by an earlier build keeps these bytes).
        store_relaxed(s->owed_kind, kOwedNone);
        store_seq_cst(s->state, kSlotFree);
        st = kSlotFree;
      }
      if (st == kSlotReady && durable && kind != kKindTailing &&
          std::strncmp(s->name, opts.group.c_str(), kNameBytes) == 0) {
        found = s;
        break;
      }
      if (st == kSlotReady && kind == kKindTailing && !consumer_alive(*c.m, i))
        store_release(s->state, kSlotFree);  // reap
      if (!free_slot && load_acquire(s->state) == kSlotFree) free_slot = s;
    }
    if (found) {
      uint64_t o = load_acquire(found->owner);
      if (consumer_alive(*c.m, consumer_index(*c.m, found)))
        return make_error(Errc::kBusy, "consumer group '" + opts.group + "' is held by pid " +
                                           std::to_string(owner_pid(o)));
      // `start` is where a *new* group begins (Kafka's auto.offset.reset): an existing
      // group continues from its committed position unless asked to reset (seek).
      if (opts.start.kind == StartFrom::Kind::kCommitted || !opts.reset) {
        // One snapshot of the pair (a CAS16 that writes back what it read): the holder
        // wrote both in one step, so they agree however it died.
        start = load16(reinterpret_cast<PosSeq*>(&found->position));
        c.committed = start;
        found_exact = true;
        c.skip_seq = 0;
        c.skip_ts = 0;
        c.start_at_claim = false;
        // A loss its last holder was told of and did not read, or was not told of: owed
        // still (layout.h).  Checked: a kind this build writes, and a sequence at or below
        // the pair's (else forged, and ignored).
        const uint32_t kind = load_acquire(found->owed_kind);
        const uint64_t seq = load_relaxed(found->owed_seq);
        if ((kind == kOwedEvicted || kind == kOwedBeforeOldest) && seq <= start.seq) {
          c.set_owed(kind, seq, std::min(load_relaxed(found->owed_pos), start.pos),
                     load_relaxed(found->owed_counted));
          c.owed_dirty = false;
        }
      }
      // Anything else the slot says is owed goes (a reset, or forged): after the pair.
      if (c.owed_kind == kOwedNone && load_relaxed(found->owed_kind) != kOwedNone)
        c.owed_dirty = true;
      c.slot = found;
    } else if (keep) {
      c.slot = keep;  // its name, kind and flags are this reader's already
    } else {
      if (!free_slot)
        return make_error(Errc::kBusy, "stream '" + std::string(name) + "' has no free consumer slot (" +
                                           std::to_string(kMaxConsumers) + " in use)");
      c.slot = free_slot;
      std::memset(c.slot->name, 0, kNameBytes);
      std::string label = durable ? opts.group : "tail-" + std::to_string(owner_pid(me));
      std::memcpy(c.slot->name, label.data(), std::min<size_t>(label.size(), kNameBytes - 1));
      store_relaxed(c.slot->kind, !durable ? kKindTailing : opts.persister ? kKindPersister : kKindDurable);
      store_relaxed(c.slot->evicted, 0);
      store_relaxed(c.slot->owed_kind, kOwedNone);  // (a slot made ready below: release)
    }
    if (!keep)
      clear_sleeper_bits(c.h, 0, uint64_t{1} << consumer_index(*c.m, c.slot));  // died asleep?
    // A previous holder that died holding (abandon_at()) CASes nothing any more.
    store_relaxed(c.slot->hold, 0);
    c.stuck.hold = &c.slot->hold;
    if (!keep && !c.m->hold(consumer_slot_off(consumer_index(*c.m, c.slot))))
      return make_error(Errc::kBusy, "consumer slot of stream '" + std::string(name) +
                                         "' is locked by a process that is not a consumer");
    SHMBUS_CHAOS_POINT(kRegSlotHeld);
    store_release(c.slot->owner, me);
    store_relaxed(c.slot->last_active_ns, now_ns());
    // seq_cst: raised before the slot turns ready below (see consumer_slots_in_use()).
    const uint32_t idx = static_cast<uint32_t>(c.slot - c.m->consumer_slot(0));
    if (load_seq_cst(c.h->consumer_hwm) < idx + 1)
      store_seq_cst(c.h->consumer_hwm, idx + 1);
    // Publish the position, then make the slot count (seq_cst), then check that no
    // producer already reclaimed past it (seq_cst read of floor): see compute_floor().
    const uint64_t owed = start.seq;  // an existing group: the first record it has not read
    const uint64_t owed_pos = start.pos;
    for (;;) {
      if (passed && found_exact) {
        c.owe_eviction(owed, owed_pos);  // the group was evicted while away
      } else if (durable && c.owed_kind == kOwedNone && start_below_oldest()) {
        // A new group (or a reset) starting below the oldest record: owed until told, so
        // that a holder that stops before its first read leaves it to the next.
        c.set_owed(kOwedBeforeOldest, c.skip_seq, 0, 0);  // (kSeq: opts.start.value)
        c.write_owed();
      }
      store_pair(c.slot, &c.committed, start);
      store_seq_cst(c.slot->evicted, 0);
      store_seq_cst(c.slot->state, kSlotReady);
      SHMBUS_CHAOS_POINT(kRegPublished);
      PosSeq f = oldest(*c.m);
      if (f.pos <= start.pos) break;
      passed = true;
      start = f;
    }
    if (c.owed_dirty) c.write_owed();  // a clear: after the pair
    if (c.owed_kind != kOwedNone) {
      // A group that producers passed while it was away (it was evicted), a loss owed by
      // its last holder, or a new group's start below the oldest record: the first record
      // it reads counts the loss from the owed sequence exactly (less the gaps the gap
      // log names from owed_pos), reported as the kind says.
      c.after_resync = true;
      c.resync_status =
          c.owed_kind == kOwedEvicted ? ReadStatus::kEvicted : ReadStatus::kBeforeOldest;
      c.lap_from_pos = c.owed_pos;
      evicted_owed = c.owed_seq;
    }
  }
  if ((start.pos & (kRecordAlign - 1)) != 0 || start.pos > load_pos(&c.h->claim))
    return make_error(Errc::kCorrupt, "stream '" + std::string(name) +
                                          "': the start position in its header is corrupt");
  c.pos = c.done_pos = start.pos;
  c.expected = c.done_seq = start.seq;
  // Positions taken from the floor, head or the committed frontier carry a lower-bound
  // sequence.
  c.seq_exact = (!(start.pos == earliest.pos && start.pos != latest.pos) &&
                 opts.start.kind != StartFrom::Kind::kLatest &&
                 !(opts.start.kind == StartFrom::Kind::kSeq && opts.start.value >= latest.seq)) ||
                found_exact;
  c.committed_pos = start.pos;
  if (evicted_owed != ~0ULL) {
    c.expected = c.done_seq = evicted_owed;
    c.seq_exact = true;
  } else if (start_below_oldest()) {
    // A start below the oldest record still in the ring: the first record read says how
    // many were skipped (kBeforeOldest).
    c.after_resync = true;
    c.resync_status = ReadStatus::kBeforeOldest;
    c.expected = c.done_seq = c.skip_seq;  // (kSeq: opts.start.value)
    c.seq_exact = true;
  }
  return impl;
}
}  // namespace

Result<void> Consumer::seek(StartFrom where) {
  if (!impl_) return make_error(Errc::kClosed, "consumer is closed");
  ConsumerOptions o = impl_->opts;
  o.start = where;
  o.reset = true;
  const std::string ns = impl_->m->ns(), name = impl_->m->name();
  const bool auto_commit = o.auto_commit;
  impl_->opts.auto_commit = false;  // the old position is not committed on the way out
  // The same stream still under its name: its mapping again, without mapping (and
  // populating: ~0.7 us a 4 KiB page) the ring anew.  Else the stream now under the name.
  std::shared_ptr<StreamMapping> m;
  if (name_state() == NameState::kSame && !impl_->m->inherited() && !impl_->m->broken()) m = impl_->m;
  // A tailing reader keeps its registry slot if it still holds it as this process's
  // (ready, owned by us: a slot is reaped only when its lock is free, and ours is held).
  ConsumerSlot* keep = nullptr;
  if (m && !impl_->durable && impl_->slot && !m->read_only() &&
      load_acquire(impl_->slot->state) == kSlotReady &&
      load_acquire(impl_->slot->owner) == self_owner_word())
    keep = impl_->slot;
  if (!keep) close();  // (a kept slot stays with the old reader until the new one has it)
  if (m) {
    auto impl = open_mapped(std::move(m), o, keep);
    if (!impl) {
      close();  // on error the consumer is closed (and a kept slot freed)
      return impl.error();
    }
    impl_ = std::move(impl.value());  // (an old reader that kept its slot releases nothing)
  } else {
    auto c = open(ns, name, o);
    if (!c) return c.error();
    *this = std::move(c.value());
  }
  impl_->opts.auto_commit = auto_commit;
  return {};
}

void Consumer::close() noexcept {
  if (!impl_) return;
  Impl& c = *impl_;
  if (c.slot && !c.m->inherited()) {  // (a child of fork(): the slot is its parent's)
    if (c.durable && c.opts.auto_commit) {
      c.settle_start();
      c.publish_position();
    }
    // Without the lock (it timed out) these are still single stores to our own slot.
    RegistryLock lock(*c.m);
    store_relaxed(c.slot->last_active_ns, now_ns());
    if (c.durable) {
      store_release(c.slot->owner, 0);  // detached: the name stays
    } else {
      store_release(c.slot->owner, 0);
      store_release(c.slot->state, kSlotFree);
    }
    SHMBUS_CHAOS_POINT(kRegLeaving);
    c.m->release(consumer_slot_off(consumer_index(*c.m, c.slot)));
  }
  impl_.reset();
}

void Consumer::Impl::settle_start() noexcept {
  if (!durable || pending != ReadStatus::kOk || (skip_seq <= done_seq && skip_ts == 0)) return;
  Record r;
  size_t off = 0;
  const ReadStatus st = next(&r, std::chrono::nanoseconds(0), &off, false, false, true);
  if (st != ReadStatus::kOk && st != ReadStatus::kTimeout) pending = st;
}

void Consumer::commit() noexcept {
  if (!impl_ || !impl_->durable) return;
  impl_->settle_start();
  impl_->publish_position();
}

Consumer::Mark Consumer::mark() const noexcept {
  return impl_ ? Mark{impl_->done_pos, impl_->done_seq} : Mark{};
}

void Consumer::commit(Mark m) noexcept {
  if (!impl_ || !impl_->durable) return;
  Impl& c = *impl_;
  if (m.pos <= c.committed_pos || m.pos > c.done_pos) return;
  if (m.pos == c.done_pos && m.seq != c.done_seq) return;  // not this consumer's mark
  const uint64_t pos = c.done_pos, seq = c.done_seq;
  c.done_pos = m.pos;
  c.done_seq = m.seq;
  c.publish_position();
  c.done_pos = pos;
  c.done_seq = seq;
}

void Consumer::still_owed(uint64_t from_seq) noexcept {
  if (!impl_ || !impl_->durable) return;
  Impl& c = *impl_;
  // Only right after the report: the group's position is then the loss's end.
  if (c.told_kind == kOwedNone || c.done_seq != c.last_loss.to || c.pending != ReadStatus::kOk)
    return;
  if (from_seq >= c.last_loss.to) {
    c.told();
    return;
  }
  c.set_owed(c.told_kind, std::max(from_seq, c.last_loss.from), c.told_pos, c.last_loss.to);
  c.owed_end = c.last_loss.to;
}

uint64_t Consumer::next_seq() const noexcept {
  return impl_ ? std::max(impl_->expected, impl_->skip_seq) : 0;
}
uint64_t Consumer::read_pos() const noexcept {
  // After a lap, an eviction or a start below the oldest record, `pos` (and done_pos,
  // after an eviction) moved past claims that were neither returned nor stepped over
  // (lost): until the first record after them counts the loss, where the reader stood
  // before it (lap_from_pos: 0 for a start below the oldest record).
  if (!impl_) return 0;
  return impl_->after_resync ? std::min(impl_->lap_from_pos, impl_->done_pos) : impl_->pos;
}
uint64_t Consumer::lost() const noexcept { return impl_ ? impl_->lost : 0; }
LossRange Consumer::last_loss() const noexcept { return impl_ ? impl_->last_loss : LossRange{}; }
uint64_t Consumer::gaps() const noexcept { return impl_ ? impl_->gaps : 0; }
bool Consumer::lost_exact() const noexcept { return !impl_ || impl_->lost_exact; }
NameState Consumer::name_state() const noexcept {
  return impl_ ? impl_->m->name_state() : NameState::kSame;
}
bool Consumer::durable() const noexcept { return impl_ && impl_->durable; }

// What every read does first: an event a batch met after it had taken records, a rejoin
// after eviction, and the auto-commit of what the previous read returned.  kOk: go on.
ReadStatus Consumer::Impl::begin_read() noexcept {
  // The record poll_in_place() returned is no longer the caller's.
  in_place_armed = in_place_failed = false;
  if (evicted() && !rejoin()) return ReadStatus::kCorrupt;
  // (owed_dirty: a loss reported where the position did not move, at the frontier: its
  // clear reaches the slot now, not only once a record is read after it, so that a
  // holder killed meanwhile does not leave it to be told again: a review.)
  if (durable && opts.auto_commit && (committed_pos != done_pos || owed_dirty)) publish_position();
  // (after the commit: the records before the event were returned, as poll() commits
  // the last one before it meets the event)
  if (pending != ReadStatus::kOk) {
    if (pending == ReadStatus::kEvicted || pending == ReadStatus::kBeforeOldest) told();
    return std::exchange(pending, ReadStatus::kOk);
  }
  return ReadStatus::kOk;
}

uint64_t Consumer::Impl::count_resync_loss(uint64_t seq) noexcept {
  // Lost to the lap: what we would have returned, so nothing below the start, less the
  // sequences of aborted and abandoned claims (gaps) that the ring's gap log names.  A
  // tailing reader's lap over records below the deletion watermark (`shmbus delete
  // --before`) lost none of them: it would have skipped them (next()).  acquire: as
  // there.
  uint64_t from = std::max(expected, skip_seq);
  if (resync_status == ReadStatus::kLapped && !durable && !opts.persister)
    from = std::max(from, load_acquire(h->deleted_below));
  uint64_t lap_lost = seq > from ? seq - from : 0;
  uint64_t lap_gaps = 0;
  if (lap_lost != 0 && !count_logged_gaps(h, from, seq, lap_from_pos, &lap_gaps)) lost_exact = false;
  lap_gaps = std::min(lap_gaps, lap_lost);  // (a forged log cannot make more)
  lap_lost -= lap_gaps;
  gaps += lap_gaps;
  lost += lap_lost;
  if (lap_lost) last_loss = LossRange{from, seq};
  // Read-only readers keep their count privately (the mapping cannot be written).
  // relaxed, both: statistics.
  if (resync_status == ReadStatus::kLapped && !durable && !m->read_only()) stat_add(h->tail_lost, lap_lost);
  if (resync_status == ReadStatus::kEvicted) {
    // A loss told again (its last holder counted it up to owed_counted): only what lies
    // above that is new.
    const uint64_t above = std::max(from, owed_counted);
    stat_add(h->evicted_lost, std::min(lap_lost, seq > above ? seq - above : 0));
  }
  if (owed_kind != kOwedNone) {
    // Counted: in the slot now (its owed kind is set), so that a holder killed before it
    // commits leaves the loss told again but not counted again.
    owed_counted = seq;
    if (slot) store_relaxed(slot->owed_counted, seq);
  }
  return lap_lost;
}

void Consumer::Impl::end_resync(bool reported) noexcept {
  told_kind = !reported ? kOwedNone
              : resync_status == ReadStatus::kEvicted ? kOwedEvicted
              : resync_status == ReadStatus::kBeforeOldest ? kOwedBeforeOldest : kOwedNone;
  told_pos = lap_from_pos;
  if (!reported) told();  // nothing lost after all (gaps only): nothing owed
  after_resync = false;
  resync_status = ReadStatus::kLapped;
}

ReadStatus Consumer::Impl::report_loss_at_frontier() noexcept {
  // The claim cursor as one pair: at our position, nothing is claimed there, so its
  // sequence is the next one exactly.  Before, a group that started below an empty ring
  // (created again over its store, after a reboot) or was evicted with nothing published
  // since was told nothing until a record came: a new group at `earliest` read nothing
  // from the store (a review).
  const PosSeq t = read_posseq(&h->claim);
  if (t.pos != pos || t.seq < expected || t.seq < skip_seq) return ReadStatus::kTimeout;
  const ReadStatus report = resync_status;
  const uint64_t n = count_resync_loss(t.seq);
  end_resync(n > 0);
  expected = t.seq;
  done_pos = pos;
  done_seq = t.seq;
  if (n == 0) return ReadStatus::kTimeout;
  told();  // reported now (poll_batch() does not come here with records taken)
  return report;
}

ReadStatus Consumer::poll(Record* out, std::chrono::nanoseconds timeout) noexcept {
  if (!impl_) return ReadStatus::kClosed;
  Impl& c = *impl_;
  if (const ReadStatus st = c.begin_read(); st != ReadStatus::kOk) return st;
  size_t off = 0;
  return c.next(out, timeout, &off, false);
}

ReadStatus Consumer::poll_in_place(Record* out, std::chrono::nanoseconds timeout) noexcept {
  if (!impl_) return ReadStatus::kClosed;
  Impl& c = *impl_;
  if (const ReadStatus st = c.begin_read(); st != ReadStatus::kOk) return st;
  size_t off = 0;
  return c.next(out, timeout, &off, false, false, false, true);
}

bool Consumer::validate() noexcept {
  if (!impl_) return false;  // closed: its views are gone
  Impl& c = *impl_;
  if (c.in_place_failed) return false;
  if (!c.in_place_armed) return true;
  // acquire fence: the caller's loads of the record happen before the check, as a
  // copy's do in next() (copy_overwritten()).  Armed still when it passes: a caller that
  // reads more of the record validates again.
  std::atomic_thread_fence(std::memory_order_acquire);
  // A mapping broken meanwhile (the object shrunk: the library's SIGBUS handler mapped
  // zeros over the rest, mapping.h) read zeros: refused, and the next read says kCorrupt.
  if (!c.m->broken() && !c.copy_overwritten(c.in_place_pos)) return true;
  // Producers wrote over it while the caller read it: it is lost with the lap.  The
  // reader resumes as after a lap met in next(), counting from this record's sequence,
  // so the next read reports kLapped with it.
  c.in_place_armed = false;
  c.in_place_failed = true;
  c.expected = c.in_place_seq;
  if (!c.resync()) c.pending = ReadStatus::kCorrupt;
  return false;
}

ReadStatus Consumer::poll_batch(Record* out, size_t max, size_t* n,
                                std::chrono::nanoseconds timeout) noexcept {
  *n = 0;
  if (!impl_) return ReadStatus::kClosed;
  Impl& c = *impl_;
  if (max == 0) return ReadStatus::kTimeout;
  if (const ReadStatus st = c.begin_read(); st != ReadStatus::kOk) return st;
  if (!c.durable && c.grow_batch_buf) {
    // The last batch stopped because the copies filled the buffer: double it, up to
    // kBatchCopyBytes (or one largest record).  Between batches: no view points into it.
    c.grow_batch_buf = false;
    c.buf.resize(
        std::min<uint64_t>(c.batch_buf_limit(), std::max<uint64_t>(4096, 2 * c.buf.size())));
  }
  size_t off = 0, k = 0;
  ReadStatus st = ReadStatus::kOk;
  // A durable batch whose first record lies below the labelled bound starts with the
  // run: next()'s look at a plain record there (its wait, frontier and event cases) cost
  // ~80 instructions a call.  Anything else (an event, a gap, a record to skip) is
  // next()'s, as before, and so is a batch that starts at the bound (a reader at the
  // frontier), where the run would find nothing.
  if (c.durable && c.pos < c.labelled) k = c.next_durable_run(out, 0, max);
  for (; k < max; ++k) {
    st = c.next(&out[k], k == 0 ? timeout : std::chrono::nanoseconds(0), &off, k != 0, true);
    if (st != ReadStatus::kOk) break;
    if (c.durable) k = c.next_durable_run(out, k + 1, max) - 1;
  }
  // A tailing reader's position for stat (lag and rates): once per batch.
  if (c.tail_unpublished != 0) c.publish_position();
  if (k == 0) return st;
  // kTimeout: nothing more committed yet (or the copy buffer is full).  An event is
  // reported by the next read, as poll() would have at this point.
  if (st != ReadStatus::kOk && st != ReadStatus::kTimeout) c.pending = st;
  *n = k;
  return ReadStatus::kOk;
}

void Consumer::Impl::sleep_announced(const RecordHeader* r, uint64_t tag, uint32_t v,
                                     uint64_t bit, uint64_t tail, uint64_t deadline,
                                     uint64_t nap) noexcept {
  // Woken by the nap's end alone, with nothing changed, we sleep again still announced
  // and without a new barrier: while our bit stays set (only we set it; others clear it
  // only for a holder they judge dead, and then wake every sleeper, so that one that took
  // the slot meanwhile announces itself again: clear_dead_sleepers()), every commit after
  // the barrier we ran is followed by its producer's load of data_sleepers, which sees
  // the bit and wakes us (ring.h).  A wake-up is then a few loads instead of a
  // membarrier, whose inter-processor interrupts also reach the producers' CPUs.
  // The naps (an abandon timeout each, 100 ms-60 s: sleep_cap_ns()) bound what no waker
  // reports: a producer killed between its commit and its wake-up, a claim whose producer
  // died, a stream cut under us.  Each costs this VM's thread 14 us to ~1 ms of CPU.
  for (uint64_t at = steady_ns();;) {
    const uint64_t left = deadline > at ? deadline - at : 0;
    futex_wait(&h->data_futex, v, std::chrono::nanoseconds(std::min(nap, left)));
    // seq_cst: as the re-check before the first sleep (pairs with the producers' side).
    // A claim at our position (pos < tail) goes back too: next() times its producer out.
    if (bit == 0 || pos < tail || load_seq_cst(h->data_futex) != v ||
        load_seq_cst(r->tag) != tag || (load_seq_cst(h->data_sleepers) & bit) == 0 ||
        load_pos(&h->claim) != tail || m->broken() || evicted())
      return;
    at = steady_ns();
    if (at >= deadline) return;
    if (slot) store_relaxed(slot->last_active_ns, now_ns());  // relaxed: diagnostics
  }
}

// Writes *out with 16-byte stores ({seq, ts_ns}, then the view {data, size}), so that a
// caller that copies the view (or the pair) with one 16-byte load, as compilers do for a
// std::span, gets it forwarded from the store buffer.  Field by field, that load spanned
// two 8-byte stores, and on this AMD host it waited for them to reach the cache: in
// shmbus-bench's receiver (it copies the span) that stall was ~2/3 of the samples of its
// recv() and left the reader slower than the producer (single-producer stream, 64 B).
// Loads of one field still forward from the wider store.
// The view's two words are stored as libstdc++ lays out a std::span, {pointer, size}:
// every test that reads a record's bytes would fail on another layout.  (Copying the
// record's own bytes into the vectors instead made the compiler spill it to the stack
// with 8-byte stores and load it back in 16: the same stall, moved here.)
// `stamp`: {seq, ts_ns} in its low and high halves (a durable batch's run loads it so
// from the header).
[[gnu::always_inline]] inline void hand_out(Record* out, __m128i stamp, uint32_t type,
                                            const std::byte* data, uint64_t size) noexcept {
  static_assert(offsetof(Record, ts_ns) == offsetof(Record, seq) + 8);
  static_assert(sizeof(Bytes) == 16 && std::is_trivially_copyable_v<Bytes>);
  const __m128i view = _mm_set_epi64x(static_cast<int64_t>(size), reinterpret_cast<int64_t>(data));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(&out->seq), stamp);
  out->type = type;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(&out->data), view);
}
[[gnu::always_inline]] inline void hand_out(Record* out, const Record& rec) noexcept {
  hand_out(out, _mm_set_epi64x(static_cast<int64_t>(rec.ts_ns), static_cast<int64_t>(rec.seq)),
           rec.type, rec.data.data(), rec.data.size());
}

// The plain case of next() for a durable reader, in a loop of its own: a data record
// committed below `labelled` (its tag believed), of the expected sequence, at or above
// the start and the deletion watermark, with no lap or loss being accounted.  What next()
// does for such a record, this does, and nothing else; at any other record it stops, and
// next() takes that record as it always has.  On one core (local lines) next() per
// record, with its wait, frontier and tailing cases around this one, took ~16 TSC cycles
// a record of 64 B and this loop ~12 (170 -> 112 instructions; bench/README.md, "A
// durable batch's plain records in a loop of their own"), ~11 (98) since it moves its
// prefetch window once per kPrefetchStep bytes.  Its loop: 50 -> 38 instructions a
// 64 B record since one compare a record covers the bound, the lap's end and the
// prefetch, one rotate and compare the tag, and {seq, ts_ns} move in one 16-byte load
// and store (bench/README.md, "The batch loops, shorter").  Since one compare of where a
// record ends stands for the bound, the lap's end and the window, and the window's lines
// are prefetched four a turn (and publish_batch() checks the sizes in one pass), a
// durable 64 B batch costs 124 instructions a record, both sides, where it cost 131
// (shmbus-ir-driver; polls of 64 after batches of 256, where most batches start below
// the bound and so with the run: 105 -> 96; on one core no faster: bench/README.md, "The
// batch loops, shorter again").  (Records below the start or the watermark stop it: each
// has the expected sequence, checked against both once; next() then skips them.)
size_t Consumer::Impl::next_durable_run(Record* out, size_t k, size_t max) noexcept {
  if (after_resync || !seq_exact || skip_ts != 0) return k;
  // acquire: pairs with the deleter's release CAS, as in next(); once per run: a delete
  // that returned before this read began is seen.
  const uint64_t floor_seq =
      std::max(skip_seq, opts.persister ? uint64_t{0} : load_acquire(h->deleted_below));
  // Every record of the run has the expected sequence, which only grows: checked against
  // the watermark once, for the run's first.  Up to sequence 2^64 - 1 only: a stream
  // whose sequences wrap (a first sequence forged or chosen near 2^64) goes back to
  // next() for the record after it, which skips it as below the watermark, as poll()
  // does (found by a review: the run handed out 0, 1, 2, ... that poll() skipped).
  if (expected < floor_seq) return k;
  if (k < max && max - k - 1 > ~expected) max = k + 1 + ~expected;  // (~expected: records after it)
  // Records lie at multiples of kRecordAlign: a position that is not (forged) is next()'s.
  uint64_t at = pos;
  if (at % kRecordAlign != 0) return k;
  // In locals: the stores into out[] could alias this object's fields, and the compiler
  // would load each of them again for every record.
  std::byte* const data = reinterpret_cast<std::byte*>(m->record_at(0));
  const uint64_t bound = labelled, ring_mask = mask, largest = max_record;
  uint64_t want = expected;
  // A data tag of this lap, XORed with `key` (the salt, this lap's bits and kData:
  // tag_key()), leaves size << 3, nothing above bit 34; rotated right by 3, a size, and
  // any other state or lap lands above bit 32: one compare with `largest` (< 2^32)
  // checks the state, the lap and the size at once.  The key changes where the lap does
  // (a record that ends at the ring's end; one that would cross it is a pad).
  static_assert(kMaxCapacity / 2 <= (uint64_t{1} << 32) && kTagLapMask == ~((uint64_t{1} << 35) - 1),
                "a record's size (<= capacity / 2, StreamMapping) below the lap bits");
  uint64_t lap_end = (at | ring_mask) + 1;  // 0 only in the last lap below 2^64
  uint64_t key = tag_key(salt, shift, at) ^ kData;
  // One compare a record, of where it ends, for the bound, the lap's end and the prefetch
  // window's next move (once per kPrefetchStep bytes, and at the run's first record):
  // `limit`, the first of them, set again each time a record ends at or past it.  A
  // record's address is `lap_base + at` (in integers: the lap's start in the ring's bytes,
  // less the lap's first position), one register for both and no add a record.
  uint64_t prefetch_at = at, limit = at;
  uintptr_t lap_base = reinterpret_cast<uintptr_t>(data) - (at & ~ring_mask);
  Record* o = out + k;
  Record* const o_end = out + max;
  for (; o < o_end; ++o) {
    const auto* r = reinterpret_cast<const RecordHeader*>(lap_base + at);
    // acquire: pairs with the producer's release commit store; fields follow.
    const uint64_t size = std::rotr(load_acquire(r->tag) ^ key, 3);
    if (size > largest) break;
    const uint64_t next = at + record_span(size);
    if (next >= limit) [[unlikely]] {
      // At or past the labelled bound the tag is not believed (read all the same: next()
      // reads it right after the run).  Past the ring's end it is no record: a pad stands
      // where a record would cross it.  (lap_end 0, the last lap below 2^64: positions
      // stay below kMaxPosition, never.)
      if (at >= bound || next > lap_end) break;
      if (next == lap_end) {  // the next record is the next lap's, at `data`
        key = tag_key(salt, shift, next) ^ kData;
        lap_end += ring_mask + 1;
        lap_base -= ring_mask + 1;  // (at `next`: `data`)
      }
      if (next >= prefetch_at) {
        prefetch_below(next, next - at, bound);
        prefetch_at = next + kPrefetchStep;
      }
      limit = std::min({bound, lap_end, prefetch_at});
    }
    // {seq, ts_ns} in one 16-byte load, checked and handed out as they are (hand_out()).
    // Under TSan two relaxed loads, as the fields are written: a reader evicted while it
    // reads (the consumer timeout) may see them rewritten, and TSan would call the plain
    // load a race with the producer's atomic stores (a review).
    static_assert(offsetof(RecordHeader, ts_ns) == offsetof(RecordHeader, seq) + 8);
#if defined(__SANITIZE_THREAD__)
    const __m128i stamp = _mm_set_epi64x(static_cast<int64_t>(load_relaxed(&r->ts_ns)),
                                         static_cast<int64_t>(load_relaxed(&r->seq)));
#else
    const __m128i stamp = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&r->seq));
#endif
    if (static_cast<uint64_t>(_mm_cvtsi128_si64(stamp)) != want) break;
    hand_out(o, stamp, load_relaxed(&r->type),
             reinterpret_cast<const std::byte*>(r) + sizeof(RecordHeader), size);
    ++want;
    at = next;
  }
  // None handed out: nothing moves (a batch that starts with the run may find pos past
  // done_pos, after a record next() refused: the commit stays before it, as after
  // next() alone; found by a review).
  if (o == out + k) return k;
  pos = done_pos = at;
  expected = done_seq = want;
  return static_cast<size_t>(o - out);
}

// Inlined into its two callers (poll() and poll_batch()): a call per record measured
// slower on a single-producer stream's 64 B rate.
[[gnu::always_inline]] inline ReadStatus Consumer::Impl::next(
    Record* out, std::chrono::nanoseconds timeout, size_t* off, bool more, bool batch,
    bool stop_at_start, bool in_place) noexcept {
  Impl& c = *this;
  uint64_t deadline = 0;
  uint32_t spins = 0;
  Backoff backoff(c.opts.wait);
  for (;;) {
    RecordHeader* r = c.m->record_at(c.pos);
    // acquire: pairs with the producer's release commit store; fields and payload follow.
    uint64_t tag = load_acquire(r->tag);
    if (c.pos != c.first_pos) {
      c.first_pos = c.pos;
      c.first_tag = tag;
    }
    TagView tv = decode_tag(c.salt, c.shift, tag, c.pos);
    bool committed = tv.lap_ok && tv.state >= kData && tv.state <= kGap;
    if (committed && c.pos >= c.labelled && tag == c.first_tag) {
      // Slow path (a reader that finds records already committed past its last bound, or
      // at the frontier): is the claim at pos labelled?  Liveness probes (for producers
      // that died between their claim and their tag) on the first look and on every 64th
      // turn only.
      //
      // Found committed before this read waited, above the bound: the reader may be at
      // the frontier, right behind a producer that keeps publishing (a reader that waited
      // for the record saw its tag change and believes it without a bound).  There the
      // claim cursor, read now, would cover this record and perhaps one more, and each
      // read takes the producers' hottest line from them.  So the second time this
      // happens since the reader last waited, it first pauses ~a cache-line hand-off to
      // let them claim further, and one read covers several records (64 B rates
      // 1.3-1.7x, one-way p50 unchanged: bench/README.md, "A reader at the frontier").
      // The first time costs nothing: the second record of a burst, read right after the
      // first was waited for, is not delayed.  A reader far behind pays one pause per
      // bound it outruns, each covering many records.
      if (spins == 0) {
        if (c.met_frontier) pause_ticks(kFrontierPauseTicks);
        c.met_frontier = true;
      }
      c.labelled = std::max(c.labelled, labelled_below(*c.m, c.pos, spins % 64 == 0 ? &c.stuck.dead : nullptr));
      if (c.pos < c.labelled) continue;  // labelled: read the tag again, believed now
      committed = false;  // maybe stale bytes: nothing is known committed at pos
    }
    if (committed) {
      const uint64_t span = record_span(tv.size);
      if ((c.pos & c.mask) + span > c.cap || (tv.state == kData && tv.size > c.max_record)) {
        if (!c.durable && c.tail_passed(c.pos)) {  // a newer lap's bytes: we were lapped
          if (!c.resync()) return ReadStatus::kCorrupt;
          continue;
        }
        return ReadStatus::kCorrupt;
      }
      if (tv.state != kData) {
        // A tailing reader that is being lapped here may read its own lap's tag with its
        // low bytes torn by a newer lap's payload (layout.h): that can pass for a pad or a
        // gap of any size.  Step over one only if nothing overwrote it, as for a copy.
        if (!c.durable) {
          // acquire fence: the tag read above happens before the check (see copy_overwritten()).
          std::atomic_thread_fence(std::memory_order_acquire);
          if (c.copy_overwritten(c.pos)) {
            if (!c.resync()) return ReadStatus::kCorrupt;
            continue;
          }
        }
        c.pos += span;
        continue;
      }
      Record rec;
      rec.seq = load_relaxed(&r->seq);
      rec.ts_ns = load_relaxed(&r->ts_ns);
      rec.type = load_relaxed(&r->type);
      const std::byte* payload = c.m->payload_at(c.pos);
      size_t copied = 0;  // where in buf this payload went (tailing)
      if (!c.durable) {
        SHMBUS_CHAOS_POINT(kTailFields);
        // In place (poll_in_place()) nothing is copied: the header's fields are checked
        // below, before this reader counts by the sequence; the payload by validate(),
        // after the caller read it.
        if (!in_place) {
          if (tv.size > (*off < c.buf.size() ? c.buf.size() - *off : 0)) {
            // A batch's records stay where they were copied: it ends before this one (and
            // the next batch starts with a larger buffer).
            if (more) {
              c.grow_batch_buf = c.buf.size() < c.batch_buf_limit();
              return ReadStatus::kTimeout;
            }
            // The buffer grows to the largest record read (never to the creator's
            // max_record up front): an allocation only when a larger record than ever
            // before arrives.
            c.buf.resize(std::min<uint64_t>(c.max_record, std::max<uint64_t>(tv.size, 2 * c.buf.size())));
          }
          copied = std::min<size_t>(*off, c.buf.size());  // (an empty record: within buf)
          copy_payload(c.buf.data() + copied, payload, tv.size);
        }
        // acquire fence: the field loads and the copy above happen before the check below,
        // so a producer that had started to overwrite the record is seen in floor (and
        // the cursor).  It also refuses bytes read from a mapping that broke meanwhile
        // (the object shrank and the SIGBUS guard answered the reads with zeros):
        // resync() then reports kCorrupt.
        std::atomic_thread_fence(std::memory_order_acquire);
        if (!in_place) SHMBUS_CHAOS_POINT(kResyncCopied);
        if (c.copy_overwritten(c.pos) || c.m->broken()) {
          if (!c.resync()) return ReadStatus::kCorrupt;
          continue;
        }
        if (!in_place) payload = c.buf.data() + copied;
      }
      c.pos += span;
      c.prefetch_after(span);
      if (!c.seq_exact) {
        // The start's sequence was a lower bound: the first record fixes it, but never
        // above skip_seq when that was read from the claim cursor (exact), so that the
        // claims that turned into gaps since the open are counted.  Not a record found
        // after a lap that came before the first read (after_resync: a tailing reader
        // overrun between its open or seek and its first poll): the records from the
        // start (the bound, or the sought sequence) up to it were lost, and are counted
        // below as any lap's (less the gaps the gap log names).  The first record used to
        // fix the start there, and the lapped records went unreported (found while
        // testing a seek: a reader sought to 1 and lapped read 340 as kOk, lost() 0).
        // A start at a time (skip_ts) lapped so: a first record stamped before it says the
        // lapped ones were too (stamps follow the sequence), none wanted; one stamped at or
        // after it cannot say how many of them were: the count is an upper bound.
        c.seq_exact = true;
        const uint64_t first = c.start_at_claim ? std::min(rec.seq, c.skip_seq) : rec.seq;
        const bool before_time = c.skip_ts != 0 && rec.ts_ns < c.skip_ts;
        if (c.after_resync && c.skip_ts != 0 && !before_time) c.lost_exact = false;
        if (first > c.expected && (!c.after_resync || before_time)) c.expected = first;
      }
      if (c.after_resync && rec.seq < c.expected) continue;  // seen before the lap
      uint64_t lap_lost = 0;
      if (rec.seq != c.expected) {
        if (rec.seq < c.expected) return ReadStatus::kCorrupt;
        if (c.after_resync) {
          lap_lost = c.count_resync_loss(rec.seq);
        } else {
          // Gaps below the start were never ours to count.
          const uint64_t from = std::max(c.expected, c.skip_seq);
          c.gaps += rec.seq > from ? rec.seq - from : 0;
        }
      }
      const bool was_resync = c.after_resync && lap_lost > 0;
      const ReadStatus report = c.resync_status;
      if (c.after_resync) c.end_resync(was_resync);  // (resync_status is kLapped otherwise)
      c.expected = rec.seq + 1;
      c.done_pos = c.pos;
      c.done_seq = c.expected;
      // For stat (lag and rates): a tailing reader's entry every kTailStatEvery records
      // and whenever it finds nothing more (below); a batch publishes once, at its end.
      if (!c.durable && c.slot && ++c.tail_unpublished >= kTailStatEvery && !batch)
        c.publish_position();
      rec.data = Bytes(payload, tv.size);
      // Below the stream's deletion watermark (`shmbus delete --before`): never served,
      // from the ring as from the store; skipped as records below the start are (not
      // lost: deleted on purpose).  The persister reads them all: its store applies the
      // watermark itself, and a record it skipped would be stored as lost.  acquire:
      // pairs with the deleter's release CAS (a locked instruction: a read that starts
      // after `delete` returned sees it).  Its line changes once per persister flush.
      if (rec.seq < c.skip_seq || rec.ts_ns < c.skip_ts ||
          (!c.opts.persister && rec.seq < load_acquire(c.h->deleted_below))) {
        if (was_resync) {
          if (!more) c.told();  // (a batch's: when the next read returns it)
          return report;
        }
        continue;
      }
      // @TIME follows sequence order: from the first record stamped at or after it, every
      // record counts, whatever its stamp (producers stamp after they claim, and the wall
      // clock may step back).
      c.skip_ts = 0;
      if (stop_at_start) {
        // The first record to return: the next read's (as for a loss report below).
        c.pos -= span;
        c.expected = rec.seq;
        c.done_pos = c.pos;
        c.done_seq = rec.seq;
        if (was_resync) c.pending = report;
        return ReadStatus::kTimeout;
      }
      if (was_resync) {
        // Report the loss first; the record itself comes with the next poll.
        if (!more) c.told();  // (a batch's: when the next read returns it)
        c.pos -= span;
        c.expected = rec.seq;
        c.done_pos = c.pos;
        c.done_seq = rec.seq;
        return report;
      }
      if (!c.durable) *off = copied + ((tv.size + 15) & ~uint64_t{15});  // next copy aligned
      if (!c.durable && in_place) {
        c.in_place_armed = true;
        c.in_place_pos = c.pos - span;
        c.in_place_seq = rec.seq;
      }
      hand_out(out, rec);
      return ReadStatus::kOk;
    }

    // Nothing committed at pos (yet).  Only gaps and pads lie between the last record
    // returned and pos (every record read moves done_pos): the position to commit moves
    // past them, its sequence staying a lower bound (the next record there counts the
    // gaps, for this holder or the group's next).  Else a consumer that read everything
    // held producers before trailing gaps until a record came after them: a claim that
    // needed those bytes (a pad and a large record) failed kFull for ever (a review).
    if (c.pos != c.done_pos && !c.after_resync) c.done_pos = c.pos;
    // A batch that took records ends here, without reading the claim cursor or the clock
    // (the next read does, if it must wait).
    if (more) return ReadStatus::kTimeout;
    if (c.after_resync && c.durable && c.seq_exact && !c.opts.persister &&
        c.resync_status != ReadStatus::kLapped) [[unlikely]] {
      if (const ReadStatus st = c.report_loss_at_frontier(); st != ReadStatus::kTimeout) return st;
    }
    // About to wait: an auto-committing group commits what this read stepped over (gaps,
    // pads, records below its start) now, not at its next read: producers that need those
    // bytes would wait for it as long as this poll does (a review: a 8 s poll held a
    // producer past its 3 s full_timeout).  The last record returned was committed when
    // this read began (begin_read()).
    if (c.durable && c.opts.auto_commit && c.committed_pos != c.done_pos && !c.after_resync)
      c.publish_position();
    c.met_frontier = false;  // it waits now (see the frontier pause above)
    if (c.tail_unpublished != 0) c.publish_position();  // caught up: stat's lag exact
    // While spinning, only re-read the claim cursor
    // (the producers' hottest line: reading it steals it from them) and the clock every
    // 64th turn; they only serve lap detection and the abandon timeout.
    if (timeout.count() > 0 && (++spins & 63) != 0 && backoff.spinning()) {
      backoff.spin();
      continue;
    }
    const uint64_t tail = load_pos(&c.h->claim);
    if (c.m->broken() || tail >= kMaxPosition) return ReadStatus::kCorrupt;
    if (c.evicted() || (c.durable && tail > c.pos + c.cap)) {  // overrun: we were evicted
      if (!c.rejoin()) return ReadStatus::kCorrupt;
      // Claims end at or below floor + capacity, and floor is at or below a position it
      // did not pass: still overrun after the rejoin, the cursors are forged (it rejoined
      // at its own position for ever, at 100% CPU, even in poll(0): a review).
      if (c.tail_passed(c.pos) && !c.m->cursors_ok()) return ReadStatus::kCorrupt;
      continue;
    }
    if (!c.durable && tail > c.pos + c.cap) {
      if (!c.resync()) return ReadStatus::kCorrupt;
      continue;
    }
    const uint64_t now = steady_ns();
    if (c.pos < tail && !c.m->read_only()) {
      // Claimed but not committed: a producer is writing it, or died doing so.
      const bool at_once = c.stuck.dead_now(*c.m, c.pos, tag);
      if (c.stuck.pos != c.pos && !at_once) {
        c.stuck.pos = c.pos;
        c.stuck.since_ns = now;
      } else if (at_once || now - c.stuck.since_ns >= c.h->abandon_timeout_ns) {
        if (abandon_at(*c.m, &c.stuck, c.pos, tag, tail) == Abandon::kAlive) {
          c.stuck.pos = c.pos;  // a live producer, only slow: ask again after a timeout
          c.stuck.since_ns = now;
        } else {
          c.stuck.pos = ~0ULL;
          continue;
        }
      }
    }
    if (timeout.count() <= 0) return ReadStatus::kTimeout;
    if (deadline == 0) deadline = now + static_cast<uint64_t>(timeout.count());
    if (now >= deadline) return ReadStatus::kTimeout;
    if (backoff.spin()) continue;
    // Sleep.  A writable consumer announces itself in data_sleepers so that producers
    // wake it; a read-only one cannot, and naps 1 ms at a time.  With no claim at our
    // position we sleep an abandon timeout at a time (sleep_announced()), and count our
    // wait at `pos` from now: a claim made there while we sleep is older than that when a
    // wake-up shows it, so a dead producer's claim is abandoned at once then, within one
    // abandon timeout of its claim (abandon_at() still finds a live owner alive).
    uint64_t nap = std::min<uint64_t>(deadline - now, c.pos < tail ? 10'000'000 : sleep_cap_ns(*c.h));
    if (c.m->read_only()) nap = std::min<uint64_t>(nap, 1'000'000);
    if (c.pos == tail && c.stuck.pos != c.pos) {
      c.stuck.pos = c.pos;
      c.stuck.since_ns = now;
    }
    // A child of fork() polling the consumer it inherited announces nothing and naps
    // 10 ms at a time: the bit is its parent's (its withdrawal below would leave the
    // parent asleep unannounced: a review), and so is the slot's last_active_ns.
    const bool inherited = c.m->inherited();
    if (c.slot && !inherited) store_relaxed(c.slot->last_active_ns, now_ns());
    uint32_t v = load_seq_cst(c.h->data_futex);
    const uint64_t bit =
        c.slot && !inherited ? uint64_t{1} << consumer_index(*c.m, c.slot) : 0;
    if (bit) announce_sleeper(c.h->data_sleepers, bit);
    // Producers commit without a fence (a plain store; registered processes leave the
    // fence out): this barrier is the handshake's other half (ring.h).  Should it fail
    // (or a reader have no bit to announce), nap 1 ms at a time instead (10 ms in a child
    // of fork(): unannounced, it is woken only by a wake-up meant for others).
    const bool barrier = bit && sleeper_barrier();
    if (!barrier) nap = std::min<uint64_t>(nap, inherited ? 10'000'000 : 1'000'000);
    SHMBUS_CHAOS_POINT(kDataSleep);
    // seq_cst: pairs with the producer's fence (or, fence-free, the barrier above) between
    // its commit store and its load of data_sleepers.
    if (load_seq_cst(r->tag) == tag)
      c.sleep_announced(r, tag, v, barrier ? bit : 0, tail, deadline, nap);
    if (bit) withdraw_sleeper(c.h->data_sleepers, bit);
  }
}

}  // namespace shmbus
