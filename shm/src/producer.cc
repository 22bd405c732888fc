// producer.cc: lock-free multi-producer publish.
//
// A publish is: CAS16 the claim cursor {pos, seq} forward by the record's span (plus a
// pad record at the ring's end), write the header fields and a pending tag, the payload,
// then the data tag, each tag by a release store: the claim CAS16 is the one locked
// instruction (a single-producer stream's claim is a plain 16-byte store: ring.h).
// Nobody else writes the header of a live producer's claim: an abandoner turns a claim
// into a gap only once its producer is dead.
// Room is checked against a locally cached limit; only when a claim would pass it does
// the producer scan (advance head, read the durable consumers) and maybe wait.
#include <cstring>

#include "clock.h"
#include "mapping.h"
#include "chaos.h"
#include "ring.h"

namespace shmbus {
using namespace detail;

namespace {
// Tag `t` with its state `from` replaced by `to`: the state is bits 0..2 of the value
// XORed with the salt (layout.h), so one record's tags differ only there.  Lets the hot
// path derive a record's gap or data tag from its pending tag instead of recomputing the
// lap field (and reloading salt and shift after each atomic) for every tag.
constexpr uint64_t with_state(uint64_t t, uint64_t from, uint64_t to) { return t ^ from ^ to; }
static_assert(with_state(make_tag(0x5a5a5a5a5a5a5a58ULL, 12, (77ULL << 12) + 96, kPending, 1000),
                         kPending, kGap) ==
              make_tag(0x5a5a5a5a5a5a5a58ULL, 12, (77ULL << 12) + 96, kGap, 1000));
static_assert(with_state(make_tag(0xfedcba9876543210ULL, 32, (300ULL << 32) + 4096, kPending, 0),
                         kPending, kData) ==
              make_tag(0xfedcba9876543210ULL, 32, (300ULL << 32) + 4096, kData, 0));
}  // namespace

struct Producer::Impl {
  std::shared_ptr<StreamMapping> m;
  StreamHeader* h = nullptr;
  uint64_t cap = 0, mask = 0, max_record = 0, salt = 0;
  unsigned shift = 0;  // log2(cap): the lap in record tags
  ProducerOptions opts;
  ProducerSlot* slot = nullptr;
  ProducerCounters counters{};  // slot's diagnostics counters (layout.h producer_counters)
  uint32_t slot_idx = 0;
  uint32_t label = 0;   // owner label written into every record header (layout.h)
  uint64_t limit = 0;   // claims may end at or below this position (cached)
  // A single-producer stream (layout.h kFlagSingleProducer; see ring.h): claims by one
  // 16-byte store (store16) instead of the CAS16.  fence_free: this process registered
  // its membarrier, so wake() needs no fence before its load of data_sleepers (ring.h).
  bool single = false, single_store16 = false, fence_free = false;
  bool prefetch_w = false;  // prefetchw_supported()
  // Single: the claim cursor as this producer last wrote it (it is its only writer), so
  // that a publish never loads the cursor's line, which consumers read now and then
  // (a load that missed would wait a whole cache-line transfer).
  PosSeq next{0, 0};
  Stuck stuck;
  uint64_t records = 0, bytes = 0;
  FastClock clock;  // record timestamps
  std::atomic<bool> closed{false};  // relaxed: set by close(); outstanding Claims check it

  // Reserves `total` bytes of records (+ a pad if they do not fit before the ring's
  // end) and `nseq` sequence numbers.  *rec_pos = first record's position.
  PubStatus reserve(uint64_t total, uint64_t nseq, uint64_t* rec_pos, uint64_t* seq) noexcept;
  PubStatus make_room(uint64_t end) noexcept;
  // Writes the header fields and the pending tag.  Nobody else writes this header while
  // we live: an abandoner makes a gap only of a dead producer's claim (label_dead(),
  // unlabelled_dead(): a live producer's `claiming` word or its label keeps it off), and
  // other producers write inside their own claims.  So plain stores, no CAS: a CAS here
  // (and at the commit) waited for the header's line, which a consumer spinning at the
  // frontier holds, twice a record (multi-producer 64 B: publish 8.1-16.5 -> 16.4-19.9
  // M/s, claim/commit 3.5-3.7 -> 9.5-16.8, publish_batch of 32 20-24 -> 37-46; 3
  // alternating shmbus-bench runs, bench/README.md).
  // Nor is the header read first: whatever bytes it holds (an older lap's, or forged) are
  // written over.  Multi-producer streams used to load the tag and refuse a claim that
  // held this lap's gap for it (kAbandoned): that load fetched the line a consumer
  // spinning at the frontier holds, and the store then had to take it back, one more
  // cache-line hand-off per record (64 B ping-pong p50 230-245 -> 172-183 ns, as a
  // single-producer stream's, in alternating runs at a ~100 ns cache line; rate +2-5%).
  // Only a forged header could hold that value while we live, and a forger can as well
  // put any other tag there; and it twice refused live claims when stale bytes passed
  // for this lap (test_laps.cc).
  void begin(uint64_t pos, uint64_t seq, uint64_t size, uint32_t type, uint64_t ts) noexcept {
    begin_header(m->record_at(pos), seq, type, ts, make_tag(salt, shift, pos, kPending, size));
  }
  // begin() at a header's address, with its pending tag made (publish_batch()).
  void begin_header(RecordHeader* r, uint64_t seq, uint32_t type, uint64_t ts,
                    uint64_t pending) noexcept {
    store_relaxed(&r->owner, label);
    store_relaxed(&r->seq, seq);
    store_relaxed(&r->ts_ns, ts);
    store_relaxed(&r->type, type);
    SHMBUS_CHAOS_POINT(kFillFields);
    // release: the owner label and fields above are visible to whoever acquires the
    // pending tag (an abandoner reading the label, a reader).
    store_release(r->tag, pending);
    SHMBUS_CHAOS_POINT(kFillPending);
  }
  // Every header of the claim carries its pending tag now (release: pairs with the
  // acquire load of `claiming` in abandoners, which then re-read the tag).
  void claimed() noexcept {
    store_release(slot->claiming, ~0ULL);
    SHMBUS_CHAOS_POINT(kFillClaimed);
  }
  // Commits the record claimed at `pos` with `claimed` payload bytes, as `size` bytes
  // (<= claimed).  A shorter record spans less: a pad record fills the rest of the claim
  // (written inside our own claimed bytes, so nobody reads it before the commit).
  void commit(uint64_t pos, uint64_t claimed, uint64_t size) noexcept {
    const uint64_t span = record_span(size), claimed_span = record_span(claimed);
    if (span < claimed_span) {
      RecordHeader* pad = m->record_at(pos + span);
      const uint64_t pad_size = claimed_span - span - sizeof(RecordHeader);
      store_relaxed(&pad->seq, uint64_t{0});
      store_relaxed(&pad->owner, label);
      // relaxed: published by the release commit store below, before which no reader
      // looks past the pending record.
      store_relaxed(pad->tag, make_tag(salt, shift, pos + span, kPad, pad_size));
    }
    const uint64_t pending = make_tag(salt, shift, pos, kPending, claimed);
    const uint64_t data = size == claimed ? with_state(pending, kPending, kData)
                                          : make_tag(salt, shift, pos, kData, size);
    // release: the fields and payload (pairs with the consumer's acquire load of the
    // tag); wake() orders it before the load of data_sleepers.  No CAS: nobody else
    // writes our pending tag (see begin()).
    store_release(m->record_at(pos)->tag, data);
  }
  // Wakes sleeping consumers after commits (the waker's half of the handshake, ring.h).
  void wake() noexcept {
    if (!fence_free) std::atomic_thread_fence(std::memory_order_seq_cst);
    // Fence-free, the compiler must still keep the load below after the commit store
    // (C++ alone would let it move the relaxed load up): the membarrier orders the two
    // only as the instructions stand.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    // relaxed: ordered after the commit stores by the fence above, or, fence-free, by the
    // sleeper's membarrier (ring.h); a system call only when a consumer announced itself.
    if (load_relaxed(h->data_sleepers) != 0) wake_sleepers(*m, Sleepers::kData);
  }
  void account(uint64_t n, uint64_t b, uint64_t ts) noexcept {
    records += n;
    bytes += b;
    // relaxed: single writer (this producer); readers only need a recent value.
    store_relaxed(*counters.records, records);
    store_relaxed(*counters.bytes, bytes);
    store_relaxed(*counters.last_active_ns, ts);
  }
};

PubStatus Producer::Impl::make_room(uint64_t end) noexcept {
  const uint64_t deadline = steady_ns() + static_cast<uint64_t>(opts.full_timeout.count());
  uint64_t next_evict_check = 0;
  bool counted = false;
  Backoff backoff(opts.wait);
  for (;;) {
    if (m->broken() || !m->cursors_ok()) return PubStatus::kCorrupt;
    limit = compute_floor(*m, &stuck, end) + cap;
    if (end <= limit) return PubStatus::kOk;
    const uint64_t now = steady_ns();
    if (opts.when_full == FullPolicy::kFail || now >= deadline) {
      stat_add(h->producer_full, 1);  // relaxed: statistics
      return PubStatus::kFull;
    }
    if (!counted) {
      stat_add(h->producer_waits, 1);  // relaxed: statistics
      counted = true;
    }
    if (now >= next_evict_check) {
      evict_dead_consumers(*m, end - cap);
      next_evict_check = now + 10'000'000;
    }
    if (backoff.spin()) continue;
    // A stop requested through set_stop_check() (the CLI's Ctrl-C) ends the wait as its
    // deadline would: `pub` into a ring held full sat out --full-timeout (a review).
    if (stop_check_says_stop()) {
      stat_add(h->producer_full, 1);  // relaxed: statistics
      return PubStatus::kFull;
    }
    // Futex handshake, sleeper side (the waker is wake_space(), called by a consumer
    // after its seq_cst position store): read the futex word first (a wake after this
    // read changes it, so futex_wait() returns at once), announce our bit (seq_cst),
    // re-check the floor (seq_cst loads of the positions in compute_floor()), sleep only
    // if still no room, withdraw the bit.  Either the consumer's load of space_sleepers
    // sees our bit or our re-check sees its new position (see atomics.h).  The 1 ms
    // bound covers a consumer that died between its store and its wake.
    uint32_t v = load_seq_cst(h->space_futex);
    const uint64_t bit = uint64_t{1} << slot_idx;
    announce_sleeper(h->space_sleepers, bit);
    // Durable consumers commit their positions without a fence (plain_commits()): this
    // barrier is the handshake's other half (ring.h); should it fail, the 1 ms bound
    // below covers it.
    if (m->plain_commits()) (void)sleeper_barrier();
    SHMBUS_CHAOS_POINT(kSpaceSleep);
    if (compute_floor(*m, &stuck, end) + cap < end)
      futex_wait(&h->space_futex, v, std::chrono::milliseconds(1));
    withdraw_sleeper(h->space_sleepers, bit);
  }
}

PubStatus Producer::Impl::reserve(uint64_t total, uint64_t nseq, uint64_t* rec_pos,
                                  uint64_t* seq) noexcept {
  PosSeq c = single ? next : read_posseq(&h->claim);
  uint64_t pad;
  for (;;) {
    // A forged claim cursor off the 32-byte grid would put records across the end.
    SHMBUS_CHAOS_POINT(kClaimRead);
    if ((c.pos & (kRecordAlign - 1)) != 0 || m->broken()) return PubStatus::kCorrupt;
    // A child of fork() does not publish with its parent's producer (it opens one of its
    // own): under the parent's label, with tags by plain stores, the two could write one
    // header (found by a review).
    if (m->inherited()) return PubStatus::kClosed;
    const uint64_t to_end = cap - (c.pos & mask);
    pad = total <= to_end ? 0 : to_end;
    const uint64_t end = c.pos + pad + total;
    if (end > limit) {
      claimed();  // not claiming while waiting for room
      if (PubStatus s = make_room(end); s != PubStatus::kOk) return s;
      c = single ? next : read_posseq(&h->claim);
      continue;
    }
    // release: after the pending tags of this producer's previous claim (pairs with the
    // acquire in labelled_below(): a reader that sees this value sees those tags); the
    // CAS16 below publishes it to abandoners (see ProducerSlot::claiming).  A plain store
    // on x86 as relaxed would be.
    store_release(slot->claiming, c.pos);
    SHMBUS_CHAOS_POINT(kClaimAdvertised);
    if (single_store16) {
      // The only producer: one 16-byte store (ring.h) takes [c.pos, end) and seqs
      // [c.seq, c.seq + nseq); release (x86 store order): after `claiming` above.
      store16(&h->claim, PosSeq{end, c.seq + nseq});
      break;
    }
    // seq_cst CAS16: takes [c.pos, end) and seqs [c.seq, c.seq + nseq) in one step.
    if (cas16(&h->claim, &c, PosSeq{end, c.seq + nseq})) break;
    // A single producer loses only to a forged cursor: refuse it (as one off the grid).
    if (single) {
      claimed();
      return PubStatus::kCorrupt;
    }
    // Lost the race: no claim at the position advertised, so stop holding readers back
    // there (labelled_below()) should this thread be preempted before it tries again.
    claimed();
  }
  if (single) next = PosSeq{c.pos + pad + total, c.seq + nseq};
  SHMBUS_CHAOS_POINT(kClaimTaken);
  if (pad) {
    // release: a pad carries no payload; consumers read it through the acquire of its
    // tag.  A plain store over whatever the header holds, as begin()'s: nobody else
    // writes a live producer's claim.
    store_release(m->record_at(c.pos)->tag, make_tag(salt, shift, c.pos, kPad, pad - sizeof(RecordHeader)));
    SHMBUS_CHAOS_POINT(kClaimPadded);
  }
  *rec_pos = c.pos + pad;
  *seq = c.seq;
  return PubStatus::kOk;
}

Producer::Producer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Producer::Producer(Producer&&) noexcept = default;
Producer& Producer::operator=(Producer&& o) noexcept {
  if (this != &o) {
    close();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
Producer::~Producer() { close(); }

Result<Producer> Producer::open(std::string_view ns, std::string_view name,
                                const ProducerOptions& opts) {
  auto mr = StreamMapping::open(ns, name, false);
  if (!mr) return mr.error();
  auto impl = std::make_unique<Impl>();
  impl->m = std::move(mr.value());
  impl->m->populate();
  impl->h = impl->m->header();
  impl->cap = impl->m->capacity();
  impl->mask = impl->m->mask();
  impl->max_record = impl->m->max_record();
  impl->salt = impl->m->salt();
  impl->shift = impl->m->lap_shift();
  impl->opts = opts;
  impl->fence_free = register_fence_free();
  impl->prefetch_w = prefetchw_supported();
  {
    RegistryLock lock(*impl->m);
    if (!lock.ok()) return lock.error();
    const uint64_t me = self_owner_word();
    if (impl->m->single_producer()) {
      // One producer at a time: a live one (any process, this one too) keeps the stream.
      // A dead one's slot is reaped below; its last claim is abandoned by the consumers
      // as any dead producer's is.
      const uint32_t n = producer_slots_in_use(impl->h);
      for (uint32_t i = 0; i < n; ++i) {
        // acquire: pairs with the release store of owner when the slot was taken.
        const uint64_t owner = load_acquire(impl->m->producer_slot(i)->owner);
        if (owner != 0 && producer_alive(*impl->m, i))
          return make_error(Errc::kBusy, "stream '" + std::string(name) +
                                             "' is a single-producer stream and pid " +
                                             std::to_string(owner_pid(owner)) +
                                             " publishes to it; close that producer first");
      }
      impl->single = true;
      impl->single_store16 = avx_store16();
      // Final: no other producer lives (a dead one's last claim ended there).
      impl->next = read_posseq(&impl->h->claim);
    }
    // A free slot first, so that `stat` keeps showing dead producers; else reap one.
    for (int pass = 0; pass < 2 && !impl->slot; ++pass) {
      for (uint32_t i = 0; i < kMaxProducers && !impl->slot; ++i) {
        ProducerSlot* s = impl->m->producer_slot(i);
        uint64_t owner = load_acquire(s->owner);
        if (pass == 0 ? owner != 0 || producer_alive(*impl->m, i)
                      : producer_alive(*impl->m, i))
          continue;
        // A previous owner that died holding (abandon_at()) CASes nothing: its hold goes
        // before the slot is alive again (else producers would honour it meanwhile).
        store_relaxed(s->hold, 0);
        if (!impl->m->hold(producer_slot_off(i))) continue;  // a foreign lock there
        SHMBUS_CHAOS_POINT(kRegSlotHeld);
        const ProducerCounters ctr = producer_counters(s, impl->m->flags());
        if (owner != 0) {  // reap a dead producer: keep its counts
          stat_add(impl->h->retired_records, load_relaxed(*ctr.records));
          stat_add(impl->h->retired_bytes, load_relaxed(*ctr.bytes));
        }
        store_relaxed(*ctr.records, 0);
        store_relaxed(*ctr.bytes, 0);
        store_relaxed(s->start_ns, now_ns());
        store_relaxed(*ctr.last_active_ns, now_ns());
        clear_sleeper_bits(impl->h, uint64_t{1} << i, 0);  // a previous owner died asleep
        // relaxed, all three: under the registry lock; published by the owner store.
        uint32_t gen = (load_relaxed(s->generation) + 1) & 0xffffff;
        if (gen == 0) gen = 1;
        store_relaxed(s->generation, gen);
        store_relaxed(s->dead_gen, 0);
        store_relaxed(s->claiming, ~0ULL);
        // seq_cst: raised before the owner store below, so before any claim of this
        // slot's producer (see labelled_below(), which walks the slots below it).
        if (load_seq_cst(impl->h->producer_hwm) < i + 1) store_seq_cst(impl->h->producer_hwm, i + 1);
        // release: pairs with the acquire load of owner by registry readers.
        store_release(s->owner, me);
        impl->slot = s;
        impl->stuck.hold = &s->hold;
        impl->counters = ctr;
        impl->slot_idx = i;
        impl->label = owner_label(i, gen);
      }
    }
  }
  if (!impl->slot)
    return make_error(Errc::kBusy, "stream '" + std::string(name) + "' already has " +
                                       std::to_string(kMaxProducers) + " live producers");
  return Producer(std::move(impl));
}

void Producer::close() noexcept {
  if (!impl_) return;
  Impl& p = *impl_;
  if (!p.m->inherited()) {  // (a child of fork(): the slot is its parent's)
    // Without the lock (it timed out) the stores below are still single stores to our
    // own slot: the registry stays consistent.
    RegistryLock lock(*p.m);
    stat_add(p.h->retired_records, p.records);
    stat_add(p.h->retired_bytes, p.bytes);
    store_relaxed(*p.counters.records, 0);
    store_relaxed(*p.counters.bytes, 0);
    store_relaxed(p.slot->claiming, ~0ULL);
    store_release(p.slot->owner, 0);
    SHMBUS_CHAOS_POINT(kRegLeaving);
    p.m->release(producer_slot_off(p.slot_idx));
  }
  store_relaxed(p.closed, true);  // relaxed: same thread contract
  impl_.reset();
}

namespace {

// Once durable_seq passed `seq`: was `seq` stored, or recorded as lost?  Ranges are
// recorded in sequence order, so entries overwritten in the log lie below the oldest
// one kept: if that one starts above `seq`, an overwritten one may hold it (unknown:
// never acknowledged).  A seqlock-style re-read of the count catches an overwrite
// while scanning.
bool lost_or_unknown(const StreamHeader* h, uint64_t seq) noexcept {
  // acquire: pairs with the release in StreamControl::record_lost(), which comes before
  // the persister moves durable_seq past the range.
  const uint64_t n = load_acquire(h->lost_count);
  if (n == 0) return false;
  const uint64_t first = n > kLostLog ? n - kLostLog : 0;
  bool lost = false;
  uint64_t oldest_from = 0;
  for (uint64_t i = first; i < n; ++i) {
    const LostRange& e = h->lost_log[i % kLostLog];
    const uint64_t from = load_relaxed(e.from);
    const uint64_t to = load_relaxed(e.to);
    if (i == first) oldest_from = from;
    if (from <= seq && seq < to) lost = true;
  }
  // acquire (seqlock-style re-check): entries below n2 - kLostLog were overwritten while
  // we read them: we cannot tell.
  const uint64_t n2 = load_acquire(h->lost_count);
  if (n2 - first > kLostLog) return true;
  if (lost) return true;
  // Older ranges than the log keeps: if even the oldest kept starts above seq, one of
  // the dropped ones may hold it.
  return first > 0 && oldest_from > seq;
}

}  // namespace

PubStatus Producer::wait_durable(uint64_t seq, std::chrono::nanoseconds timeout) noexcept {
  if (!impl_) return PubStatus::kClosed;
  StreamHeader* h = impl_->h;
  const uint64_t deadline = steady_ns() + static_cast<uint64_t>(timeout.count());
  Backoff backoff(impl_->opts.wait);
  for (;;) {
    // acquire: pairs with the persister's store in StreamControl::set_durable_seq().
    if (load_acquire(h->durable_seq) > seq)
      return lost_or_unknown(h, seq) ? PubStatus::kNotPersisted : PubStatus::kOk;
    const uint64_t now = steady_ns();
    if (now >= deadline) return PubStatus::kTimeout;
    if (backoff.spin()) continue;
    // Futex handshake, sleeper side (the waker is StreamControl::set_durable_seq(): a
    // seq_cst store of durable_seq, then a seq_cst load of durable_sleepers): futex word
    // first, our bit (seq_cst), re-check durable_seq (seq_cst), sleep, withdraw the bit.
    // Either the persister sees our bit or we see its new durable_seq (see atomics.h);
    // the sleep is bounded (100 ms, and the deadline).
    uint32_t v = load_seq_cst(h->durable_futex);
    const uint64_t bit = uint64_t{1} << impl_->slot_idx;
    announce_sleeper(h->durable_sleepers, bit);
    if (load_seq_cst(h->durable_seq) <= seq)
      futex_wait(&h->durable_futex, v, std::chrono::nanoseconds(std::min<uint64_t>(deadline - now, 100'000'000)));
    withdraw_sleeper(h->durable_sleepers, bit);
  }
}

PubResult Producer::publish_durable(Bytes payload, uint32_t type,
                                    std::chrono::nanoseconds timeout) noexcept {
  PubResult r = publish(payload, type);
  if (!r.ok()) return r;
  return {wait_durable(r.seq, timeout), r.seq};
}

uint64_t Producer::max_record() const noexcept { return impl_ ? impl_->max_record : 0; }
uint64_t Producer::capacity() const noexcept { return impl_ ? impl_->cap : 0; }
NameState Producer::name_state() const noexcept {
  return impl_ ? impl_->m->name_state() : NameState::kSame;
}

PubResult Producer::publish(Bytes payload, uint32_t type) noexcept {
  if (!impl_) return {PubStatus::kClosed, 0};
  Impl& p = *impl_;
  const uint64_t size = payload.size();
  if (size > p.max_record) return {PubStatus::kTooLarge, 0};
  uint64_t pos, seq;
  if (PubStatus s = p.reserve(record_span(size), 1, &pos, &seq); s != PubStatus::kOk) return {s, 0};
  // The record's first and last lines are asked for, to write, before anything else: a
  // consumer spinning at the frontier holds the first, and the stores below would
  // otherwise ask for them one after the other, only as they retire.  The clock is read
  // before the payload is copied on a single-producer stream, after it on a
  // multi-producer one (where the read waits behind the claim's locked instruction).
  // Three alternating shmbus-bench runs against the clock read first and no prefetch
  // (bench/README.md): multi-producer 64 B 16.1-17.8 -> 22.5-23.9 M/s, 1 KiB 9.4-9.5 ->
  // 12.7-12.9, two producers 64 B 16.2-17.0 -> 18.6-20.0; single-producer rates and the
  // one-way p50 within noise (the prefetch alone: single 64 B +8%; the clock after the
  // copy on a single-producer stream: 64 B -10%, so not there).  The stamp is taken
  // between the claim and the commit either way.
  if (p.prefetch_w) {
    const std::byte* r = reinterpret_cast<const std::byte*>(p.m->record_at(pos));
    prefetch_for_write(r);
    prefetch_for_write(r + record_span(size) - 1);
  }
  uint64_t ts = p.single ? p.clock.now() : 0;
  p.begin(pos, seq, size, type, ts);
  p.claimed();
  copy_payload(p.m->payload_at(pos), payload.data(), size);  // (ring.h: inline up to 64 B)
  if (!p.single) {
    ts = p.clock.now();
    // relaxed: published with the record by the release commit store below (nobody reads
    // the stamp of a pending record).
    store_relaxed(&p.m->record_at(pos)->ts_ns, ts);
  }
  SHMBUS_CHAOS_POINT(kFillPayload);
  p.commit(pos, size, size);
  SHMBUS_CHAOS_POINT(kCommitted);
  p.account(1, size, ts);
  // Futex handshake, waker side: after the commit store, a fence (or the sleeper's
  // membarrier) and one load of data_sleepers; a system call only when a consumer
  // announced itself asleep (its re-check of the tag then sees our commit, or we see its
  // bit: see ring.h).
  p.wake();
  SHMBUS_CHAOS_POINT(kCommitWoken);
  return {PubStatus::kOk, seq};
}

PubResult Producer::publish_batch(std::span<const Bytes> payloads, uint32_t type) noexcept {
  if (!impl_) return {PubStatus::kClosed, 0};
  Impl& p = *impl_;
  if (payloads.empty()) return {PubStatus::kOk, read_posseq(&p.h->claim).seq};
  // Every record takes a header's bytes at least: a batch of more records than half the
  // ring holds headers cannot fit.  With no more than that (2^26 at the largest capacity),
  // no sum below can wrap: spans are at most 2^31 + 48 bytes.
  const size_t count = payloads.size();
  if (count > p.cap / 2 / sizeof(RecordHeader)) return {PubStatus::kTooLarge, 0};
  // One pass for the checks and the byte count; the spans' sum only for a batch of mixed
  // sizes (one size: count spans of one).  A compare-and-branch, a span and a compare a
  // payload before: 64 B batches 59 -> 56 instructions a record (shmbus-ir-driver).
  const uint64_t size0 = payloads[0].size();
  uint64_t bytes = 0, largest = 0, differ = 0;
  for (Bytes b : payloads) {
    bytes += b.size();
    largest = std::max<uint64_t>(largest, b.size());
    differ |= b.size() ^ size0;
  }
  if (largest > p.max_record) return {PubStatus::kTooLarge, 0};
  const bool uniform = differ == 0;  // every payload of the first's size
  uint64_t total = 0;
  if (uniform) {
    total = count * record_span(size0);
  } else {
    for (Bytes b : payloads) total += record_span(b.size());
  }
  if (total > p.cap / 2) return {PubStatus::kTooLarge, 0};
  uint64_t pos, seq;
  if (PubStatus s = p.reserve(total, payloads.size(), &pos, &seq); s != PubStatus::kOk)
    return {s, 0};
  const uint64_t ts = p.clock.now();
  // The claim lies in one lap of the ring (reserve() pads to the ring's end a claim that
  // would cross it): each header lies at the first's address plus the spans before it,
  // and every tag carries the first's lap bits, in one key computed once (tag_key():
  // XORing a size and state into it makes the tag).  Per record that left the loops ~30
  // instructions shorter (shmbus-ir-driver under callgrind).
  std::byte* const first = reinterpret_cast<std::byte*>(p.m->record_at(pos));
  const uint64_t key = tag_key(p.salt, p.shift, pos);
  // Every pending tag first (so that the whole claim is labelled as ours), then the
  // payloads, then the commits.  A batch of one size (the usual case) has one span and
  // two tags: made once, not per record in each loop (64 B records: 70 -> 59
  // instructions a record, shmbus-ir-driver).
  const auto write = [&](auto one_size) noexcept {
    const auto size_of = [&](size_t i) noexcept -> uint64_t {
      if constexpr (one_size) return size0;
      else return payloads[i].size();
    };
    const uint64_t span0 = record_span(size0);
    const uint64_t pending0 = keyed_tag(key, kPending, size0), data0 = keyed_tag(key, kData, size0);
    std::byte* at = first;
    for (size_t i = 0; i < count; ++i) {
      const uint64_t size = size_of(i);
      p.begin_header(reinterpret_cast<RecordHeader*>(at), seq + i, type, ts,
                     one_size ? pending0 : keyed_tag(key, kPending, size));
      SHMBUS_CHAOS_POINT(kBatchBegun);
      at += one_size ? span0 : record_span(size);
    }
    p.claimed();
    at = first;
    for (size_t i = 0; i < count; ++i) {
      const uint64_t size = size_of(i);
      copy_payload(at + sizeof(RecordHeader), payloads[i].data(), size);
      at += one_size ? span0 : record_span(size);
    }
    SHMBUS_CHAOS_POINT(kBatchPayloads);
    at = first;
    for (size_t i = 0; i < count; ++i) {
      const uint64_t size = size_of(i);
      // release: the fields and payload, as commit()'s store (which this is for a record
      // committed at its claimed size).
      store_release(reinterpret_cast<RecordHeader*>(at)->tag,
                    one_size ? data0 : keyed_tag(key, kData, size));
      SHMBUS_CHAOS_POINT(kBatchCommitted);
      at += one_size ? span0 : record_span(size);
    }
  };
  if (uniform)
    write(std::true_type{});
  else
    write(std::false_type{});
  p.account(payloads.size(), bytes, ts);
  p.wake();
  return {PubStatus::kOk, seq};
}

Claim Producer::claim(size_t size, uint32_t type, PubStatus* status) noexcept {
  Claim c;
  PubStatus dummy;
  if (!status) status = &dummy;
  if (!impl_) { *status = PubStatus::kClosed; return c; }
  Impl& p = *impl_;
  if (size > p.max_record) { *status = PubStatus::kTooLarge; return c; }
  uint64_t pos, seq;
  *status = p.reserve(record_span(size), 1, &pos, &seq);
  if (*status != PubStatus::kOk) return c;
  p.begin(pos, seq, size, type, p.clock.now());
  p.claimed();
  c.producer_ = impl_;
  c.pos_ = pos;
  c.seq_ = seq;
  c.data_ = MutableBytes(p.m->payload_at(pos), size);
  return c;
}

Claim::Claim(Claim&& o) noexcept
    : producer_(std::move(o.producer_)), pos_(o.pos_), seq_(o.seq_), data_(o.data_) {
  o.producer_.reset();
}
Claim& Claim::operator=(Claim&& o) noexcept {
  if (this != &o) {
    if (producer_) (void)abort();
    producer_ = std::move(o.producer_);
    o.producer_.reset();
    pos_ = o.pos_;
    seq_ = o.seq_;
    data_ = o.data_;
  }
  return *this;
}
Claim::~Claim() {
  if (producer_) (void)abort();
}

PubStatus Claim::commit() noexcept { return commit(data_.size()); }

// A child of fork() leaves its parent's claims alone: tags are plain stores, so parent
// and child could both commit one record (with two sizes), or the child abort it and the
// parent commit it after consumers skipped the gap (found by a review: a record came
// back; a stale commit a lap later lost an acknowledged record).  The claim stays its
// parent's (whose copy of it commits or aborts it).
static bool parents_claim(const std::shared_ptr<Producer::Impl>& p) noexcept {
  return p->m->inherited();
}

PubStatus Claim::commit(size_t size) noexcept {
  if (!producer_) return PubStatus::kClosed;
  if (size > data_.size()) return PubStatus::kTooLarge;
  if (parents_claim(producer_)) {
    producer_.reset();
    return PubStatus::kClosed;
  }
  if (load_relaxed(producer_->closed)) {  // its producer is gone
    (void)abort();
    return PubStatus::kClosed;
  }
  std::shared_ptr<Producer::Impl> held = std::move(producer_);
  producer_.reset();
  Producer::Impl& p = *held;
  SHMBUS_CHAOS_POINT(kFillPayload);
  p.commit(pos_, data_.size(), size);
  SHMBUS_CHAOS_POINT(kCommitted);
  p.account(1, size, p.clock.now());
  p.wake();
  SHMBUS_CHAOS_POINT(kCommitWoken);
  return PubStatus::kOk;
}

PubStatus Claim::abort() noexcept {
  if (!producer_) return PubStatus::kClosed;
  if (parents_claim(producer_)) {
    producer_.reset();
    return PubStatus::kClosed;
  }
  std::shared_ptr<Producer::Impl> held = std::move(producer_);
  producer_.reset();
  Producer::Impl& p = *held;
  uint64_t expected = make_tag(p.salt, p.shift, pos_, kPending, data_.size());
  SHMBUS_CHAOS_POINT(kAbortBefore);
  // The gap log first (see log_gap()).  Should the CAS fail, an abandoner made the gap
  // (and logged it too): the entry is true either way.
  (void)log_gap(p.h, seq_);
  // seq_cst: as a commit (consumers skip the gap).
  if (!cas_seq_cst(p.m->record_at(pos_)->tag, expected, make_tag(p.salt, p.shift, pos_, kGap, data_.size())))
    return PubStatus::kAbandoned;
  SHMBUS_CHAOS_POINT(kAborted);
  stat_add(p.h->aborted, 1);  // relaxed: statistics
  wake_data(*p.m);
  return PubStatus::kOk;
}

}  // namespace shmbus
